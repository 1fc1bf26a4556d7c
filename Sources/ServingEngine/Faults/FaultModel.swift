import SimKit

/// Knobs of fault detection and recovery. The papers give no heartbeat intervals or recovery
/// times (system.md §5), so every default here is our documented choice.
///
/// ```swift
/// var config = EngineConfiguration(deployment: .superpod)
/// config.faults.heartbeatIntervalSeconds = 0.5
/// config.recoveryPolicy = "restart-world"
/// ```
public struct FaultSettings: Sendable, Equatable {
    /// One heartbeat round (control plane → TE-shell → DP masters) per interval. 1 s: our choice,
    /// in line with common cluster managers (Kubernetes probes default to 10 s; we want faster).
    public var heartbeatIntervalSeconds = 1.0
    /// Consecutive unanswered rounds before a component is declared dead (3: our choice, the
    /// usual "three strikes" that rides out one slow round without false alarms).
    public var missedHeartbeatsToDeclare = 3
    /// Full restart of one component (TE). system.md §4: "a full restart of a component takes
    /// up to 5 minutes in DeepServe".
    public var componentRestartSeconds = 300.0
    /// Slowdown of `fault straggler die D` without a factor (our choice).
    public var defaultStragglerSlowdown = 3.0
    /// "Kill prefill to preserve decode" (system.md §4): when a decode TE needs replacement
    /// hardware and the spare pool is empty, a prefill TE is killed (its work re-queued on the
    /// others) and its NPUs replace the lost ones.
    public var killPrefillToPreserveDecode = false
    /// `drain node N` migrates the node's running decode requests to other DP groups of their TE
    /// over UB instead of letting them finish in place (the TE pauses for the KV copy).
    public var migrateDecodeOnDrain = false

    public init() {}
}

/// What an operator broke.
public enum FaultKind: Equatable, Sendable {
    /// Dies that stop answering (die, NPU, node faults).
    case dead(dies: [Int])
    /// A UB link between two NPUs, down (`degrade` nil) or slowed by a factor.
    case link(npuA: Int, npuB: Int, degrade: Double?)
    case straggler(die: Int, slowdown: Double)
    case hbm(die: Int)
    case glitch

    /// Performance faults slow things down but break nothing.
    var isPerformance: Bool {
        switch self {
        case .straggler: true
        case .link(_, _, let degrade): degrade != nil
        default: false
        }
    }
}

/// One injected fault and what it cost.
struct FaultRecord {
    var id: Int
    var kind: FaultKind
    /// The operator's words, e.g. "fault npu 170" (the report's `command`).
    var label: String
    /// The same command with the hardware's device names, as the Faults panel, the ticker and the
    /// heal event list it: "fault hbm GPU 0" on a one-die GPU, where the command reads "fault hbm
    /// die 0"; the label itself on an Ascend pod, whose words are the language's.
    var listing: String
    var injectedAt: SimTime
    var detectedAt: SimTime?
    /// When recovery had the fault handled (or, for a fault kept until healed, when the operator
    /// healed it after detection). Never set for a fault healed before detection: nothing had
    /// noticed it, so no recovery acted (``healedBeforeDetection``).
    var recoveredAt: SimTime?
    var healedAt: SimTime?
    /// The operator healed the fault before any heartbeat, probe or device check found it.
    var healedBeforeDetection = false
    /// How it was found and how it was handled, for the report.
    var detection = ""
    var recovery = ""
    var requestsFailed = 0
    var requestsReprefilled = 0
    /// Instances whose barrier this fault stalls until it is detected.
    var stalled: Set<Int> = []

    var active: Bool { healedAt == nil }
    /// Recovery has nothing more to do for it: recovered, or healed before it was detected.
    var recoveryOver: Bool { recoveredAt != nil || healedBeforeDetection }
}

/// Why an instance is out of service as a whole after a fault.
enum InstanceOutage: Equatable {
    /// Restarting (restart-the-world, or a TE restart as the last fallback) until the time.
    case restarting(until: SimTime)
    /// NPU-fork weight copy onto spare NPUs (lost → spare) until the time.
    case forking(until: SimTime, spares: [Int: Int])
    /// A prefill or colocated TE with a lost die and no spare: out until healed.
    case awaitingRepair
    /// Killed to give its NPUs to decode ("kill prefill to preserve decode").
    case killed
    /// Paused while a drain migrates decode KV to other DP groups, until the time.
    case migrating(until: SimTime)
}

/// Timed steps of the fault machinery, carried by the engine's event queue.
enum FaultTimer {
    /// One heartbeat round over every TE (and the KV-link probes).
    case heartbeatRound
    /// A restart or NPU-fork of an instance finishes.
    case outageEnds(instance: Int)
    /// A recovery that takes time (glitch redo) completes.
    case recovered(fault: Int)
}
