import Foundation
import ServingEngine
import SimKit
import Testing
@testable import EngineRuntime

/// A core that only keeps time and records what it was asked.
final class ClockCore: SimulationCore, @unchecked Sendable {
    var simTime: SimTime = 0
    var applied: [OperatorCommand] = []
    func run(until time: SimTime) { simTime = max(simTime, time) }
    func apply(_ command: OperatorCommand) -> CommandReply {
        if case .drain(let node) = command, node >= 48 {
            return CommandReply(accepted: false, message: "no node \(node): the pod has nodes 0–47")
        }
        applied.append(command)
        return CommandReply(accepted: true, message: "\(command)")
    }
    func snapshot() -> Snapshot {
        var s = Snapshot()
        s.simTime = simTime
        return s
    }
    func submitExternal(promptTokens: Int, maxTokens: Int) -> Int { 0 }
    func cancelExternal(id: Int) {}
    func takeStreamUpdates() -> [StreamUpdate] { [] }
}

@Suite struct PacerTests {
    @Test func mapsWallToSimulatedTimeAtEachSpeed() {
        var p = Pacer(speed: 1)
        p.start(wall: 100, sim: 0)
        #expect(p.target(wall: 102.5) == 2.5)
        p.setSpeed(10, wall: 102.5, sim: 2.5)
        #expect(p.target(wall: 103.5) == 12.5)
        p.pause(wall: 103.5, sim: 12.5)
        #expect(p.target(wall: 200) == 12.5)
        p.resume(wall: 200, sim: 12.5)
        #expect(p.target(wall: 201) == 22.5)
        p.setSpeed(nil, wall: 201, sim: 22.5)
        #expect(p.target(wall: 500) == nil)
    }

    @Test func ladderSpansTheConsoleRange() {
        #expect(Pacer.ladder.first == 0.1 && Pacer.ladder.last == 1000)
        #expect(zip(Pacer.ladder, Pacer.ladder.dropFirst()).allSatisfy { $0 < $1 })
    }
}

/// Polls `condition` for up to five seconds (the machine may be busy with parallel tests).
/// Waits for `condition` up to a generous deadline (it returns as soon as it holds): a fixed
/// count of short sleeps ran out in a few seconds on a machine loaded by other suites.
func eventually(within seconds: Double = 30, _ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if condition() { return true }
        Thread.sleep(forTimeInterval: 0.005)
    }
    return condition()
}

@Suite struct EngineHostTests {
    @Test func commandsAreAppliedLoggedAndAnswered() throws {
        let core = ClockCore()
        let host = EngineHost(core: core, speed: 100, publishInterval: 0.01)
        host.start()
        defer { host.stop() }
        let ok = host.send(commandLine: "drain node 3")
        #expect(ok.accepted)
        let refused = host.send(commandLine: "drain node 99")
        #expect(!refused.accepted && refused.message.contains("no node 99"))
        let malformed = host.send(commandLine: "drain nod 3")
        #expect(!malformed.accepted && malformed.message.contains("expected"))
        #expect(host.commandLog.map(\.line) == ["drain node 3"])
        // Time moves at the set speed, and pause stops it.
        #expect(eventually { host.latestSnapshot().simTime > 0 })
        #expect(host.send(commandLine: "pause").accepted)
        // The reply comes before the next snapshot is published: wait for a paused one.
        #expect(eventually { host.latestSnapshot().paused })
        let frozen = host.latestSnapshot().simTime
        Thread.sleep(forTimeInterval: 0.1)
        #expect(host.latestSnapshot().simTime == frozen)
        #expect(host.send(commandLine: "speed max").accepted)
        #expect(host.send(commandLine: "resume").accepted)
        #expect(eventually { host.latestSnapshot().speed == nil && host.latestSnapshot().simTime > frozen + 10 })
    }

    /// An operator's `rate` in a scenario that sets the rate again later (the console's demo
    /// cycle steps it every 15 s) says until when it holds: `rate 10000` in the demo was
    /// answered "set to 10000" and undone by the cycle's next step without a word.
    @Test func aRateSaysWhenTheScenarioSetsTheRateAgain() throws {
        let steps = [Scenario.Step(at: 15, command: .drain(node: 3)), Scenario.Step(at: 40, command: .rate(requestsPerSecond: 25)),
                     Scenario.Step(at: 60, command: .rate(requestsPerSecond: 30))]
        let core = ClockCore()
        let host = EngineHost(core: core, speed: 1, publishInterval: 0.01, scenario: Scenario(name: "t", steps: steps))
        host.start()
        defer { host.stop() }
        #expect(host.send(commandLine: "pause").accepted)
        let at = host.latestSnapshot().simTime
        let reply = host.send(commandLine: "rate 100")
        let wait = OperatorCommand.format(((40 - at) * 10).rounded() / 10)
        #expect(reply.accepted && reply.message == "rate 100 until the scenario's next rate step in \(wait) s (rate 25)", "\(reply)")
        // Once the scenario has no rate step left, a rate holds and nothing is added.
        #expect(host.send(commandLine: "speed max").accepted && host.send(commandLine: "resume").accepted)
        #expect(eventually { host.latestSnapshot().simTime > 61 })
        #expect(host.send(commandLine: "rate 100").message == "rate 100")
        let plain = EngineHost(core: ClockCore(), speed: 1, publishInterval: 0.01)
        plain.start()
        defer { plain.stop() }
        #expect(plain.send(commandLine: "rate 100").message == "rate 100")
    }

    /// The console's `:` line and `POST /admin/commands` go through the host: a bad node, NPU or
    /// die word names the engine's pod (the fault pod: nodes 0…5, NPUs 0…47, dies 0…95), not
    /// the grammar's 0…999999 as `drain node -1` did.
    @Test func badIndexWordsNameTheEnginesPod() throws {
        let host = EngineHost(core: try CommandLogReplayTests.engine(), speed: 10, publishInterval: 0.05)
        host.start()
        defer { host.stop() }
        let expected = [
            "drain node -1": "expected a node number after 'drain node', got '-1'; the pod has nodes 0…5",
            "fault npu x": "expected an NPU number after 'fault npu', got 'x'; the pod has NPUs 0…47",
            "fault die -2": "expected a die number after 'fault die', got '-2'; the pod has dies 0…95",
            "drain node 6": "node 6 does not exist; the pod has nodes 0…5",
        ]
        for (line, message) in expected {
            #expect(host.send(commandLine: line) == CommandReply(accepted: false, message: message), "\(line)")
        }
        #expect(host.commandLog.isEmpty, "nothing applied")
        // A core that knows no pod: the grammar's range, as before.
        let bare = EngineHost(core: ClockCore(), speed: 1, publishInterval: 0.01)
        bare.start()
        defer { bare.stop() }
        #expect(bare.send(commandLine: "drain node -1").message
            == "expected a node number between 0 and 999999 after 'drain node', got '-1'")
    }

    @Test func aStoppedHostRefusesCommandsAndKeepsTheLastSnapshot() {
        let host = EngineHost(core: ClockCore(), speed: 1, publishInterval: 0.01)
        #expect(!host.send(commandLine: "drain node 1").accepted)
        host.start()
        host.stop()
        #expect(!host.send(commandLine: "drain node 1").accepted)
        #expect(host.latestSnapshot().speed == 1)
    }
}
