import ServingEngine
import Synchronization

/// An ``EngineLink`` over a snapshot the test controls, recording every command line it receives.
///
/// Commands are parsed with the real command language; valid ones are accepted (a `drain node N`
/// also marks the node drained in the snapshot and logs an event, so observers can see an effect),
/// malformed ones are rejected with the parser's message and change nothing.
///
/// ```swift
/// let link = RecordingEngineLink()
/// link.update { $0.paused = true }
/// #expect(link.receivedCommands == ["drain node 5"])
/// ```
public final class RecordingEngineLink: EngineLink {
    private let snapshot: Mutex<Snapshot>
    private let commands = Mutex<[String]>([])
    public let capabilities: Set<EngineCapability> = Set(EngineCapability.allCases)

    public init(snapshot: Snapshot = RecordingEngineLink.smallPod()) {
        self.snapshot = Mutex(snapshot)
    }

    public func latestSnapshot() -> Snapshot { snapshot.withLock { $0 } }

    /// Every line passed to ``send(commandLine:)``, accepted or not, in order.
    public var receivedCommands: [String] { commands.withLock { $0 } }

    /// Changes the published snapshot (as the engine would by publishing a new one).
    public func update(_ change: (inout Snapshot) -> Void) {
        snapshot.withLock { change(&$0) }
    }

    /// Appends an event to the snapshot's ring, dropping the oldest beyond `ringSize`.
    public func log(_ event: EngineEvent, ringSize: Int = 64) {
        update { s in
            s.events.append(event)
            if s.events.count > ringSize { s.events.removeFirst(s.events.count - ringSize) }
        }
    }

    public func send(commandLine: String) -> CommandReply {
        commands.withLock { $0.append(commandLine) }
        switch OperatorCommand.parse(commandLine) {
        case .failure(let error):
            return CommandReply(accepted: false, message: error.message)
        case .success(let command):
            if case .drain(let node) = command {
                update { s in
                    if !s.drainedNodes.contains(node) { s.drainedNodes.append(node) }
                }
            }
            let time = latestSnapshot().simTime
            log(EngineEvent(time: time, kind: .command, message: command.description))
            return CommandReply(accepted: true, message: "\(command.description): done")
        }
    }

    /// Two nodes: node 0 holds 4 prefill NPUs, node 1 holds 4 decode NPUs; running, not paused.
    public static func smallPod() -> Snapshot {
        var s = Snapshot()
        s.deploymentName = "test-pod"
        s.modelName = "deepseek-r1"
        s.simTime = 1
        s.npus = (0..<8).map { id in
            NPUStatus(
                id: id, node: id / 4, role: id < 4 ? .prefill : .decode,
                instance: id < 4 ? "prefill-0" : "decode-0", utilization: Double(id) / 10)
        }
        s.instances = [
            InstanceStatus(name: "prefill-0", kind: "prefill", npus: 4),
            InstanceStatus(name: "decode-0", kind: "decode", npus: 4),
        ]
        s.requests.running = 3
        s.requests.waiting = 2
        s.kv.decodeUsage = 0.42
        s.experts.imbalance = 1.25
        return s
    }
}
