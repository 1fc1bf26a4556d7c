import PodModel

/// What recovery may read of the pod while it plans (engine-components.md §2, the `PodView`
/// port): the TEs' roles and hardware, which of it is known dead, the spare pool and the
/// expert coverage. Read-only; given per call, never stored. TEs are named by index, DP groups
/// by index within their TE (today's ids).
protocol PodView {
    /// Detection and recovery knobs (the configuration's).
    var faultSettings: FaultSettings { get }
    /// TEs are `0..<teCount`.
    var teCount: Int { get }
    func role(of te: Int) -> InstanceRole
    func name(of te: Int) -> String
    /// Decode and colocated TEs still serving (the ones a glitch restarts): not a TE scaling has
    /// retired, which holds no hardware and has nothing to restart.
    func decodes(_ te: Int) -> Bool
    /// A TE whose hardware is outside the pod (it has no NPUs to give).
    func isExternal(_ te: Int) -> Bool
    /// The TE's NPUs, in its order.
    func npus(of te: Int) -> [Int]
    func groupCount(of te: Int) -> Int
    /// Group `g` of `te` is out of service (a lost die, or its TE in an outage).
    func isOutOfService(_ te: Int, group g: Int) -> Bool
    /// Group `g` of `te` holds a die the control plane knows is dead.
    func holdsKnownDeadDie(_ te: Int, group g: Int) -> Bool
    /// The TE is out for a recovery or a drain's migration.
    func hasOutage(_ te: Int) -> Bool
    /// The TE is restarting (its own restart or the world's).
    func isRestarting(_ te: Int) -> Bool
    /// Scaling retired the TE: it holds no hardware and has nothing to restart.
    func isRetired(_ te: Int) -> Bool
    /// A scale-in is draining the TE: it retires once empty, so recovery spends no spare NPU
    /// (and kills no prefill TE) to bring it back.
    func isScalingIn(_ te: Int) -> Bool
    /// The TE has an iteration in flight and is not halted (it would redo it after a glitch).
    func hasIterationInFlight(_ te: Int) -> Bool
    /// NPUs of `te` with a known-dead die, in the TE's order.
    func knownDeadNPUs(of te: Int) -> [Int]
    /// Healthy NPUs no TE uses, not on a drained node, in id order.
    func spareNPUs() -> [Int]
    /// Routed experts of decode TE `te` left without a live replica if its known-dead dies
    /// are dropped (sorted).
    func missingExperts(of te: Int) -> [Int]
    /// The TE and DP group (nil: an expert-only die) that own `die`, if any.
    func locate(die: Int) -> (te: Int, group: Int?)?
    /// Die `die` as the texts name it: "GPU 1" on a one-die GPU, "die 1" on Ascend
    /// (``HardwareProfile/dieName(_:)``).
    func dieName(_ die: Int) -> String
    /// Device `npu` as the texts name it: "GPU 3" on a GPU cluster, "NPU 3" on Ascend.
    func deviceName(_ npu: Int) -> String
    /// What the texts call one die (``HardwareProfile/dieWord``): "GPU" on a one-die GPU, "die" on Ascend.
    var dieWord: String { get }
}

extension PodView {
    /// Pods without elastic scaling (test doubles) scale nothing in.
    func isScalingIn(_ te: Int) -> Bool { false }
    /// Test doubles are Ascend pods: their texts say "die" and "NPU".
    func dieName(_ die: Int) -> String { "die \(die)" }
    func deviceName(_ npu: Int) -> String { "NPU \(npu)" }
    var dieWord: String { "die" }
}

/// The recovery mechanisms the pod offers a policy (engine-components.md §2, the
/// `RecoveryActuator` port). Each carries out one step the way the hardware and the schedulers
/// need it (take requests off, go out of service, schedule the return) and writes the step into
/// the faults' recovery story; which step, on what and in which order is the policy's.
protocol RecoveryActuator {
    /// A step of the story that changed nothing (a fallback found impossible).
    mutating func note(_ faults: [Int], _ step: String)
    /// The faults are recovered now with nothing to move.
    mutating func finish(_ faults: [Int], _ message: String)
    /// Detected now (a glitch notices itself), logged.
    mutating func markDetected(_ fault: Int, how: String)
    /// Vertical shrink: `te` drops `groups` (their requests re-prefilled) and runs on `live` groups.
    mutating func shrink(_ te: Int, dropping groups: Set<Int>, live: Int, faults: [Int])
    /// NPU-fork: `dead` NPUs of `te` are replaced by `donors` (by position) after a weight copy;
    /// the requests on `groups` are re-prefilled; `te` is out until the copy ends.
    mutating func fork(_ te: Int, replacing dead: [Int], with donors: [Int], how: String, dropping groups: Set<Int>,
                       faults: [Int])
    /// "Kill prefill to preserve decode": prefill TE `te` leaves service for good (its requests
    /// re-queued) and gives up `npus`.
    mutating func killPrefill(_ te: Int, giving npus: [Int], faults: [Int])
    /// `te` restarts (its requests re-prefilled), out for the restart time.
    mutating func restart(_ te: Int, faults: [Int], why: String)
    /// `tes` restart at once (one fault hit them all): every one leaves service before any
    /// request moves, so none is re-prefilled on a TE about to restart and counted twice (once
    /// re-prefilled, then failed). Each TE's line reads "NAME `why`".
    mutating func restartTogether(_ tes: [Int], faults: [Int], why: String)
    /// Every TE restarts, decode before prefill; everything in flight fails.
    mutating func restartWorld(faults: [Int])
    /// `te` is already restarting: the new faults wait for its return (it comes back on spares
    /// or without the lost dies) instead of cutting the restart short with a fork or a shrink.
    mutating func joinRestart(_ te: Int, faults: [Int])
    /// `te` leaves service until repaired; its requests are re-queued elsewhere.
    mutating func awaitRepair(_ te: Int, faults: [Int])
    /// HBM: fails the requests whose KV lived on group `group` of `te` and masks the region.
    mutating func maskAndFail(fault: Int, te: Int, group: Int, die: Int)
    /// Glitch: `tes` roll back and redo their iteration in flight (none: nothing to redo).
    mutating func redoIteration(on tes: [Int], fault: Int)
    /// A dead link: the KV `paths` (channel ids) move to RoCE.
    mutating func rerouteOverRoCE(fault: Int, paths: [Int])
}

/// What a heartbeat round observes beyond what recovery reads (``FaultSystem/heartbeatRound(at:pod:act:)``):
/// which TEs have a step under way, which KV paths a UB link carries, and how many transfers
/// wait on each decode TE. Read-only; given per call, never stored.
protocol HeartbeatView: PodView {
    /// The TE has a step under way, halted or not (its heartbeat answers carry step timing).
    func isStepping(_ te: Int) -> Bool
    /// The KV paths (channel ids, in id order) between a prefill and a decode TE that the UB
    /// link NPU `a` ↔ NPU `b` joins.
    func kvPaths(joining a: Int, _ b: Int) -> [Int]
    /// KV transfers queued for decode TE `te` (waiting for decode room).
    func transfersWaiting(on te: Int) -> Int
}

/// What a heartbeat round asks of the pod beyond the recovery mechanisms: the event log, the
/// scaling lifecycle's claim on a starting TE, and re-reading the fault state.
protocol HeartbeatActuator: RecoveryActuator {
    /// Appends `event` to the pod's event log.
    mutating func log(_ event: EngineEvent)
    /// Dead dies were found in `te` (faults `faults`): scaling restarts the weight loads forking
    /// from it, and takes over a TE that was still starting (true: rebuilt or given up; the
    /// recovery policy is not asked).
    mutating func scalingTakesRecovery(_ te: Int, faults: [Int]) -> Bool
    /// The fault state changed outside a mechanism (dead hardware nobody used): the pod re-reads
    /// it (halts, slowdowns, groups out of service, KV paths) and TEs that can, resume.
    mutating func applyFaultState()
}
