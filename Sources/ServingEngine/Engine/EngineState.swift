import DequeModule
import PodModel
import SimKit

/// What the engine's event queue carries.
enum EngineEventKind {
    /// The next request of the workload arrives.
    case arrival(RequestSpec)
    /// An instance finished its current step (prefill batch, decode step, or colocated step).
    case stepEnd(instance: Int)
    /// A KV transfer channel finished its current transfer.
    case transferDone(channel: Int)
    /// Telemetry interval boundary: utilisation and sparkline points.
    case telemetryTick
    /// Fault machinery: heartbeat rounds, KV-link probes, recovery steps (Faults/).
    case fault(FaultTimer)
    /// An instance's expert swap reaches its next phase (system.md §4's four phases).
    case expertSwap(instance: Int)
    /// Elastic scaling: a starting TE's phase ends, scale-in checks, autoscaler evaluations (Scaling/).
    case scaling(ScalingTimer)
}

/// Per-request state. Changed only when something happens to the request (architecture.md
/// principle 4): never per token.
///
/// Laid out for the in-flight table, which a saturated superpod hour fills with hundreds of
/// thousands of these: indices are 32-bit, times are NaN until set (read as optionals), the
/// small fields sit together at the end, and the engine-size prefix keys are kept once
/// (chained; the unchained ones were only ever tested for emptiness).
struct RequestState {
    var spec: RequestSpec
    /// The prompt's prefix keys in KV blocks of the engine's block size, chained
    /// (``PrefixHashes/chain(_:)``), computed once for cache probes.
    var chainedKeys: [UInt64]
    /// The client's `max_tokens` (external requests); workload requests have no cap.
    var maxTokens = Int.max
    /// When its first prefill chunk was scheduled (queue time ends here); NaN until then.
    private var prefillStarted: SimTime = .nan
    /// When it passed each later stage, for a face's request detail (RequestTimes.swift).
    var times = RequestTimes()
    /// Prefill side: instance and the number of its prefill ticket there (``PrefillScheduler``);
    /// decode side: instance and the number of its decode seat there (``DecodeScheduler``); -1:
    /// none yet. The ticket and seat (groups, remaining prompt, cache hits, join and finish steps,
    /// first token) are the schedulers' state, read through them (``ServingEngine/placement(of:)``).
    private var instancesAndHolds: (prefillInstance: Int32, prefillTicket: Int32, decodeInstance: Int32, decodeSeat: Int32)
        = (-1, -1, -1, -1)
    var stage: RequestStage = .queued
    /// The client went away: the request leaves at its next decode step, counted as cancelled.
    var cancelled = false

    /// The workload's own prefix keys are not kept: the engine reads only `chainedKeys`, made
    /// from them at admission (one array less per request in flight).
    init(spec: consuming RequestSpec, chainedKeys: [UInt64]) {
        // The keys swapped out of the spec before it is stored: emptying it in `self` built the
        // state aside and copied it out, and assigning to the spec's keys (in a local copy or in
        // the parameter) copied the whole spec and destroyed the original, a retain and release
        // of the tag per arrival (0.6% of a saturated superpod). The swap moves the keys out;
        // keys already taken out (admission's) need none (an empty array swapped and released
        // per arrival: 2 M instructions a saturated superpod's two minutes, issue 12).
        if !spec.prefixHashes.isEmpty {
            var dropped: [UInt64] = []
            swap(&dropped, &spec.prefixHashes)
        }
        self.spec = spec
        self.chainedKeys = chainedKeys
    }

    /// Whether the prompt has prefix keys at all.
    var hasPrefixKeys: Bool { !chainedKeys.isEmpty }

    var prefillInstance: Int {
        get { Int(instancesAndHolds.prefillInstance) }
        set { instancesAndHolds.prefillInstance = Int32(truncatingIfNeeded: newValue) }
    }
    var prefillTicket: Int {
        get { Int(instancesAndHolds.prefillTicket) }
        set { instancesAndHolds.prefillTicket = Int32(truncatingIfNeeded: newValue) }
    }
    var decodeInstance: Int {
        get { Int(instancesAndHolds.decodeInstance) }
        set { instancesAndHolds.decodeInstance = Int32(truncatingIfNeeded: newValue) }
    }
    var decodeSeat: Int {
        get { Int(instancesAndHolds.decodeSeat) }
        set { instancesAndHolds.decodeSeat = Int32(truncatingIfNeeded: newValue) }
    }
    var prefillStartedAt: SimTime? {
        get { RequestTimes.time(prefillStarted) }
        set { prefillStarted = newValue ?? .nan }
    }

    var outputTokens: Int { max(1, spec.outputTokens) }
    /// Prompt plus output, saturating: a trace may carry any count, and a request too large
    /// for every DP group fails with a reason instead of overflowing.
    var totalTokens: Int { Saturating.add(spec.promptTokens, outputTokens) }
}

/// One task executor (TE): a prefill, decode or colocated instance with its DP groups.
///
/// A reference type (engine-components.md §6 step 2): the engine reads and filters its TEs on
/// every arrival and finished prefill, and a struct this size was copied on each read (10–23% of
/// all instructions). `instances[i]` now aliases the live TE; ``forked()`` is the deep copy.
final class InstanceState {
    var role: InstanceRole
    var name: String
    /// Index of the deployment group it comes from and its index in that group.
    var groupSpec: InstanceGroup
    var external: Bool
    /// Cost model of the instance's hardware (external prefill may run on other NPUs).
    /// Fixed for the TE's life: a `let`, so reading it for a cost call borrows it in place instead of
    /// copying the struct (four copies a decode step were 12% of a 4-replica colocated replay).
    let cost: CostModel
    /// The decode attention rates ``ServingEngine/decodeStepSeconds(_:)`` reads off `cost` for
    /// `queryTokens` (a pure function of both), kept after the first step: three cost-model
    /// calls a step were 10% of a 4-replica colocated replay. A fork recomputes them.
    var decodeAttentionRates: (queryTokens: Double, base: Double, perRequest: Double, perToken: Double)?
    /// The decode step's figures fixed by the slowest group's batch size, per size (a pure
    /// function of `cost`, the TE's shape and the size: ``PodModel/DecodeBatchMemo``). A fork
    /// works them out again.
    var decodeBatchMemo = DecodeBatchMemo()
    /// KV transfer plane towards decode: UB inside the pod, RoCE from outside (system.md §2).
    var plane: FabricPlane { external ? .roce : .ub }
    // The NPUs the TE holds are the hardware map's (``ClusterManager``), by the TE's index.
    /// Its DP groups (system.md §1.4: each self-contained). A group's KV cache is the
    /// ``KVCacheStore``'s (by ``GroupRef``); its NPUs and dies, and whether it may take new work,
    /// the hardware map's; its prefill queue and batch are the TE's ``PrefillScheduler``'s, its
    /// decode seats and running batch its ``DecodeScheduler``'s.
    let groupCount: Int
    /// The TE's DP group indices.
    var groups: Range<Int> { 0..<groupCount }
    /// The prefill leader of a prefill or colocated TE (nil on a decode TE): the groups' prefill
    /// queues and batches (``PrefillScheduler``). A `let`, as ``decode``: read through a `var`, each
    /// call into it was wrapped in a retain and release (issue 12: several per request).
    let prefill: PrefillScheduler?
    /// Requests placed on the instance that have not started prefill (admission bound).
    var waiting: Int { prefill?.waiting ?? 0 }
    /// Whether a step event is scheduled.
    var stepping = false
    /// When the scheduled step ends; a step-end event at another time is stale (faults).
    var stepEndsAt: SimTime?
    var stepIndex = 0
    /// Routed-expert dies a vertical shrink took out of this decode TE (its known-dead ones, until
    /// healed or replaced): its steps are priced on the EP group it has left
    /// (``ServingEngine/followShrinks()``).
    var lostRoutedDies = 0
    /// Shared-expert dies the same shrink took out (``ServingEngine/expertShapeLeft(_:)``).
    var lostSharedDies = 0
    var lastStepSeconds = 0.0
    /// Of ``lastStepSeconds``, the prefill chunk a colocated TE mixed into that step (0: none):
    /// the report says so beside a bench of pure decode.
    var lastStepPrefillSeconds = 0.0
    /// The hottest expert die's load over the mean that the last decode step was priced at (1
    /// without experts or under perfect balance), and its layer groups' (the factors times their
    /// noise scale; empty: every layer at the mean): where EPLB's plan stands at that moment, which
    /// a fresh plan (`bench decode`'s) does not show (the report's `decode_batch_at_end`).
    var lastStepLoad: (factor: Double, layers: [Double], scale: Double) = (1, [], 1)
    var busySeconds = 0.0
    var utilization = 0.0
    /// Decode and colocated TEs: the decode side (transfer queue, joiners, running batch, seats
    /// per DP group and the indices kept from them); nil for a prefill TE.
    let decode: DecodeScheduler?
    // Whether scaling holds the TE off is the cluster manager's (``ClusterManager/isHeldOff(te:)``).

    convenience init(role: InstanceRole, name: String, groupSpec: InstanceGroup, external: Bool, cost: CostModel,
                     groups: Int) {
        self.init(role: role, name: name, groupSpec: groupSpec, external: external, cost: cost, groups: groups,
                  prefill: role == .decode ? nil : PrefillScheduler(groups: groups),
                  decode: role == .prefill ? nil : DecodeScheduler(groups: groups, colocated: role == .colocated))
    }

    /// A TE with these schedulers (``forked()``: copies of another TE's).
    private init(role: InstanceRole, name: String, groupSpec: InstanceGroup, external: Bool, cost: CostModel,
                 groups: Int, prefill: PrefillScheduler?, decode: DecodeScheduler?) {
        self.role = role
        self.name = name
        self.groupSpec = groupSpec
        self.external = external
        self.cost = cost
        groupCount = groups
        self.prefill = prefill
        self.decode = decode
    }

    /// A deep, independent copy (for the engine's `fork()`): every stored property is a value
    /// (arrays, deques and dictionaries of values) or a component the TE owns, copied by its
    /// `copy()` (the prefill leader, the decode scheduler), so the two copies share nothing they
    /// can write. Add new stored properties here.
    func forked() -> InstanceState {
        let copy = InstanceState(role: role, name: name, groupSpec: groupSpec, external: external, cost: cost,
                                 groups: groupCount, prefill: prefill?.copy(), decode: decode?.copy())
        copy.stepping = stepping
        copy.stepEndsAt = stepEndsAt
        copy.stepIndex = stepIndex
        copy.lostRoutedDies = lostRoutedDies
        copy.lostSharedDies = lostSharedDies
        copy.lastStepSeconds = lastStepSeconds
        copy.lastStepPrefillSeconds = lastStepPrefillSeconds
        copy.lastStepLoad = lastStepLoad
        copy.busySeconds = busySeconds
        copy.utilization = utilization
        return copy
    }

    /// Same as ``forked()`` (engine-components.md's `copy()` of every component).
    func copy() -> InstanceState { forked() }

    var hasPrefill: Bool { role != .decode }
    var hasDecode: Bool { role != .prefill }
    var runningRequests: Int { decode?.runningRequests ?? 0 }
}

/// The engine-components.md name of a TE.
typealias TaskExecutor = InstanceState

/// One KV transfer instance per prefill–decode pair (system.md §4); transfers on it run one
/// after the other.
struct TransferChannel {
    var prefillInstance: Int
    var decodeInstance: Int
    var plane: FabricPlane
    var queue = Deque<Int>()
    var busy = false
    /// When the running transfer ends; a transfer-done event at another time is stale (faults).
    var doneAt: SimTime?
    /// When the running transfer began (for the transfer observer: the timeline's KV slices).
    var startedAt: SimTime = 0
    /// UB link fault: transfers take `slowdown` times longer; `blocked` = link down.
    var slowdown = 1.0
    var blocked = false
}
