import PodModel
import ServingEngine
import Synchronization

/// An ``EngineLink`` with no engine behind it, for console tests and demos: it returns a
/// settable ``Snapshot``, records every command line, and parses each with the engine's own
/// parser (``OperatorCommand/parse(_:)``), so it refuses exactly what the engine refuses, with
/// the engine's message.
///
/// ```swift
/// let link = FakeEngineLink(snapshot: SnapshotFixtures.superpod)
/// link.send(commandLine: "drain node 3")     // accepted; node 3 appears drained
/// link.send(commandLine: "explode")          // rejected: "unknown command 'explode'; expected one of: …"
/// link.sentCommands                          // ["drain node 3", "explode"]
/// ```
public final class FakeEngineLink: EngineLink {
    private struct State {
        var snapshot: Snapshot
        var sent: [String] = []
        var capabilities: Set<EngineCapability>
    }
    private let state: Mutex<State>

    public init(
        snapshot: Snapshot = SnapshotFixtures.superpod,
        capabilities: Set<EngineCapability> = Set(EngineCapability.allCases)
    ) {
        state = Mutex(State(snapshot: snapshot, capabilities: capabilities))
    }

    public var snapshot: Snapshot {
        get { state.withLock { $0.snapshot } }
        set { state.withLock { $0.snapshot = newValue } }
    }

    /// Every line passed to ``send(commandLine:)``, accepted or not, oldest first.
    public var sentCommands: [String] { state.withLock { $0.sent } }

    public var capabilities: Set<EngineCapability> {
        get { state.withLock { $0.capabilities } }
        set { state.withLock { $0.capabilities = newValue } }
    }

    public func latestSnapshot() -> Snapshot { state.withLock { $0.snapshot } }

    public func send(commandLine: String) -> CommandReply {
        state.withLock { s in
            s.sent.append(commandLine)
            let reply = Self.answer(commandLine, applyingTo: &s.snapshot)
            let event = EngineEvent(
                time: s.snapshot.simTime, kind: reply.accepted ? .command : .commandRejected,
                severity: reply.accepted ? .info : .warning,
                message: reply.accepted ? commandLine : "\(commandLine): \(reply.message)")
            s.snapshot.events.append(event)
            return reply
        }
    }

    /// Moves simulated time forward and wiggles the live numbers, so a demo looks alive.
    public func advance(seconds: Double) {
        state.withLock { s in
            guard !s.snapshot.paused else { return }
            let speed = s.snapshot.speed ?? 1000
            s.snapshot.simTime += seconds * speed
            let phase = s.snapshot.simTime / 7
            let wave = 0.5 + 0.5 * ((phase - phase.rounded(.down)) * 2 - 1).magnitude
            s.snapshot.outputTokensPerSecond = 170_000 + 25_000 * wave
            s.snapshot.series.outputTokensPerSecond.append(s.snapshot.outputTokensPerSecond)
            if s.snapshot.series.outputTokensPerSecond.count > 240 {
                s.snapshot.series.outputTokensPerSecond.removeFirst()
            }
        }
    }

    // MARK: the operator command language: the engine's own parser

    /// Parses with ``OperatorCommand/parse(_:)`` — the parser `EngineHost` and the HTTP admin
    /// route use — so a line the engine would refuse is refused here with the engine's words,
    /// and a line it would take is taken. Accepted commands change the snapshot as far as a
    /// fake can (pause, speed, rate, drain); the node checks use the engine's messages.
    static func answer(_ line: String, applyingTo s: inout Snapshot) -> CommandReply {
        let command: OperatorCommand
        switch OperatorCommand.parse(line) {
        case .failure(let error): return CommandReply(accepted: false, message: error.message)
        case .success(let parsed): command = parsed
        }
        let nodes = (s.npus.map(\.node).max() ?? -1) + 1
        func checkNode(_ node: Int) -> String? {
            nodes == 0 || node < nodes ? nil : PodTopology.missing("node", node, count: nodes)
        }
        switch command {
        // What EngineHost answers for the pacer's commands.
        case .pause:
            s.paused = true
            return CommandReply(accepted: true, message: "paused")
        case .resume:
            s.paused = false
            return CommandReply(accepted: true, message: "resumed")
        case .speed(let value):
            s.speed = value
            return CommandReply(accepted: true, message: "speed \(value)×")
        case .speedMax:
            s.speed = nil
            return CommandReply(accepted: true, message: "speed max")
        // What ServingEngine answers.
        case .rate(let rate):
            s.arrivalRate = rate
            return CommandReply(accepted: true, message: "synthetic arrival rate set to \(String(OperatorCommand.rate(requestsPerSecond: rate).description.dropFirst(5))) requests/s")
        case .drain(let node):
            if let problem = checkNode(node) { return CommandReply(accepted: false, message: problem) }
            guard !s.drainedNodes.contains(node) else {
                return CommandReply(accepted: false, message: "node \(node) is already drained")
            }
            s.drainedNodes.append(node)
            s.events.append(EngineEvent(time: s.simTime, kind: .drain, message: "node \(node) drained"))
            return CommandReply(accepted: true, message: "node \(node) draining: no new work is placed on its NPUs")
        case .undrain(let node):
            if let problem = checkNode(node) { return CommandReply(accepted: false, message: problem) }
            guard s.drainedNodes.contains(node) else {
                return CommandReply(accepted: false, message: "node \(node) is not drained")
            }
            s.drainedNodes.removeAll { $0 == node }
            s.events.append(EngineEvent(time: s.simTime, kind: .undrain, message: "node \(node) back in service"))
            return CommandReply(accepted: true, message: "node \(node) accepts work again")
        default:
            // Faults, heals and rebalance: a fake has no hardware to break; it takes them as said.
            return CommandReply(accepted: true, message: "\(command)")
        }
    }
}
