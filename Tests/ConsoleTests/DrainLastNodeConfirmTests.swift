import PodModel
import ServingEngine
import Testing

@testable import Console

/// `d` on the only node of a one-node GPU cluster asked "drain node 0? y/n", the question every
/// drain gets; `y` then left nothing serving and every arrival was rejected. The question now
/// says so ("no capacity left: new requests rejected") before the operator answers; a drain that
/// leaves capacity is asked as before.
@Suite struct DrainLastNodeConfirmTests {
    static func question(_ spec: String, node: Int) throws -> String? {
        let engine = try ServingEngine(configuration: EngineConfiguration(deployment: try Deployment.resolve(spec),
                                                                          seed: 1, syntheticRate: 2))
        engine.run(until: 5)
        var state = ConsoleUpdate.update(ConsoleState(width: 200, height: 60), .tick(engine.snapshot())).0
        state.selectedNPU = node * ConsoleState.npusPerNode
        state = ConsoleUpdate.update(state, .key(.char("d"))).0
        return state.confirmation?.question
    }

    @Test func lastGPUNodeQuestionWarns() throws {
        let q = try Self.question("colocated:2:llama-2-7b:nvidia-a100:tp1", node: 0)
        #expect(q == "drain node 0? no capacity left: new requests rejected", "\(q ?? "nil")")
    }

    /// At 80 columns the question keeps a way out beside it (the footer drops hints that do not fit).
    @Test func questionFitsAt80Columns() throws {
        let engine = try ServingEngine(configuration: EngineConfiguration(
            deployment: try Deployment.resolve("colocated:2:llama-2-7b:nvidia-a100:tp1"), seed: 1, syntheticRate: 2))
        engine.run(until: 5)
        let s = engine.snapshot()
        var state = ConsoleUpdate.update(ConsoleState(width: 80, height: 24), .tick(s)).0
        state = ConsoleUpdate.update(state, .key(.char("d"))).0
        let footer = ConsoleScreen.render(state, s, theme: .builtinDark, width: 80, height: 24).lines.last ?? ""
        #expect(footer.contains("drain node 0? no capacity left: new requests rejected y/n") && footer.contains("cancel"),
                "\(footer)")
    }

    /// The reply of that drain is accepted, but it is not good news: the footer shows it in the
    /// warning colour with ⚠, not the green ✓ of a drain that leaves capacity.
    @Test func replyOfTheLastDrainIsAWarning() throws {
        let engine = try ServingEngine(configuration: EngineConfiguration(
            deployment: try Deployment.resolve("colocated:2:llama-2-7b:nvidia-a100:tp1"), seed: 1, syntheticRate: 2))
        engine.run(until: 5)
        let reply = engine.apply(.drain(node: 0))
        let s = engine.snapshot()
        var state = ConsoleUpdate.update(ConsoleState(width: 200, height: 60), .tick(s)).0
        state = ConsoleUpdate.update(state, .reply(reply, commandLine: "drain node 0")).0
        let b = ConsoleScreen.render(state, s, theme: .builtinDark, width: 200, height: 60)
        let row = try #require(b.lines.lastIndex { $0.contains("node 0 draining") })
        #expect(b.lines[row].hasPrefix("⚠ node 0 draining"), "\(b.lines[row])")
        #expect(b[0, row].style.fg == Style.warn.fg, "\(b[0, row].style)")
    }

    /// The footer's warning follows the engine's verdict (``CommandReply/capacityLost``, which a
    /// remote console reads from the admin API), not the reply's last words.
    @Test func theFooterWarnsOnTheEnginesVerdictNotItsWording() {
        let ending = "no decode TE is left taking new work: every new request will be rejected until a node is undrained"
        for (message, lost, warns) in [("node 0 draining; " + ending, false, false), ("node 0 draining", true, true)] {
            let reply = CommandReply(accepted: true, message: message, capacityLost: lost)
            let state = ConsoleUpdate.update(ConsoleState(width: 200, height: 60), .reply(reply, commandLine: "drain node 0")).0
            #expect(state.status?.isWarning == warns, "\(message)")
        }
    }

    @Test func otherDrainsAskAsBefore() throws {
        #expect(try Self.question("superpod", node: 0) == "drain node 0?")
        #expect(try Self.question("colocated:2:llama-2-7b:nvidia-a100:tp1", node: 0) != "drain node 0?")
    }
}
