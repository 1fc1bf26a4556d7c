import ServingEngine
import Synchronization

/// An ``EngineLink`` with no engine behind it, for console tests and demos: it returns a
/// settable ``Snapshot``, records every command line, and accepts or rejects commands with
/// the operator language's grammar (interfaces.md) so replies look like the real engine's.
///
/// ```swift
/// let link = FakeEngineLink(snapshot: SnapshotFixtures.superpod)
/// link.send(commandLine: "drain node 3")     // accepted; node 3 appears drained
/// link.send(commandLine: "explode")          // rejected with what was expected
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
            let reply = Self.validate(commandLine)
            if reply.accepted { Self.apply(commandLine, to: &s.snapshot) }
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

    // MARK: the operator command language, as far as a fake needs it

    static let expected =
        "expected drain node N, undrain node N, fault die|npu|node|link|straggler|hbm|glitch …, heal ID|all, rebalance, rate R, speed S|max, pause or resume"

    static func validate(_ line: String) -> CommandReply {
        let w = line.split(separator: " ").map(String.init)
        func isInt(_ i: Int) -> Bool { i < w.count && Int(w[i]) != nil }
        func isNumber(_ i: Int) -> Bool { i < w.count && Double(w[i]) != nil }
        guard let verb = w.first else {
            return CommandReply(accepted: false, message: "empty command; " + expected)
        }
        let ok: Bool
        switch verb {
        case "drain", "undrain": ok = w.count == 3 && w[1] == "node" && isInt(2)
        case "fault":
            switch w.count > 1 ? w[1] : "" {
            case "die", "npu", "node": ok = w.count == 3 && isInt(2)
            case "hbm": ok = w.count == 4 && w[2] == "die" && isInt(3)
            case "glitch": ok = w.count == 2
            case "straggler":
                ok =
                    (w.count == 4 || (w.count == 6 && w[4] == "slowdown" && isNumber(5))) && w[2] == "die"
                    && isInt(3)
            case "link": ok = w.count == 3 || (w.count == 5 && w[3] == "degrade" && isNumber(4))
            default:
                return CommandReply(
                    accepted: false,
                    message:
                        "fault: expected die D, npu N, node N, link A-B, straggler die D, hbm die D or glitch"
                )
            }
        case "heal": ok = w.count == 2 && (w[1] == "all" || isInt(1))
        case "rebalance", "pause", "resume": ok = w.count == 1
        case "rate": ok = w.count == 2 && isNumber(1)
        case "speed": ok = w.count == 2 && (w[1] == "max" || isNumber(1))
        default:
            return CommandReply(accepted: false, message: "unknown command '\(verb)'; " + expected)
        }
        return ok
            ? CommandReply(accepted: true, message: "ok: \(line)")
            : CommandReply(accepted: false, message: "malformed '\(verb)' command; " + expected)
    }

    static func apply(_ line: String, to s: inout Snapshot) {
        let w = line.split(separator: " ").map(String.init)
        switch w[0] {
        case "pause": s.paused = true
        case "resume": s.paused = false
        case "speed": s.speed = w[1] == "max" ? nil : Double(w[1])
        case "rate": s.arrivalRate = Double(w[1]) ?? s.arrivalRate
        case "drain":
            let node = Int(w[2])!
            if !s.drainedNodes.contains(node) { s.drainedNodes.append(node) }
            s.events.append(EngineEvent(time: s.simTime, kind: .drain, message: "node \(node) drained"))
        case "undrain":
            let node = Int(w[2])!
            s.drainedNodes.removeAll { $0 == node }
            s.events.append(
                EngineEvent(time: s.simTime, kind: .undrain, message: "node \(node) back in service"))
        default: break
        }
    }
}
