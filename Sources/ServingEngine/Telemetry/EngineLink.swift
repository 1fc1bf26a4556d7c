/// What a face holds to talk to an engine: read the newest snapshot, send one command line.
///
/// The embedded engine (a thread in this process) and a remote `xds serve` both provide it,
/// so the console works the same against either (architecture.md principle 2).
public protocol EngineLink: AnyObject, Sendable {
    /// The newest published snapshot; never blocks the engine.
    func latestSnapshot() -> Snapshot
    /// Sends one line of the operator command language. The reply is what the command did,
    /// or a message saying what was expected; a rejected command changes nothing.
    func send(commandLine: String) -> CommandReply
    /// Features that exist in this build (e.g. faults, rebalance); the console greys out the rest.
    var capabilities: Set<EngineCapability> { get }
}

public enum EngineCapability: String, Sendable, Hashable, CaseIterable {
    case faults, rebalance, drain, speed
}

public struct CommandReply: Sendable, Equatable {
    public var accepted: Bool
    public var message: String
    /// Accepted, and it leaves no TE of a side taking new work (a drain of the last such node):
    /// every arrival is rejected from here on. The engine's own verdict, so that a face (and the
    /// event's severity) need not read it from the wording of `message`.
    public var capacityLost: Bool
    public init(accepted: Bool, message: String, capacityLost: Bool = false) {
        self.accepted = accepted
        self.message = message
        self.capacityLost = capacityLost
    }
}
