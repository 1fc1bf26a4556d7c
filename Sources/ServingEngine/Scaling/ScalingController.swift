import PodModel
import SimKit

/// The scaling lifecycle and the autoscaler slot (engine-components.md §2, the `ClusterManager`
/// row; system.md §1.5: the Cluster Manager handles health and scaling), owned by the
/// ``ClusterManager`` as ``ClusterManager/scaling``.
///
/// It keeps the life of every TE that was started or scaled in (``TELifecycle``), the scale
/// operations for the report (``ScaleDetail``) with the TEs each still waits for, the pre-warmed
/// spare NPUs, the two timer flags (drain check, autoscale tick), the autoscaler policy and the
/// busy sums the autoscaler reads over its evaluation interval. Its state changes only through
/// the methods below; it decides nothing about requests or hardware. The engine (the coordinator)
/// builds and wires TEs, keeps the cluster's hold-off in step with ``phase(_:)``, owns the clock
/// and hands its event queue in per call for this component's timers (as ``ExpertSystem`` does).
/// What the autoscaler needs from a TE (how much of its running step is left) and from telemetry
/// (the counters) comes in as arguments.
///
/// Every field is a value; ``copy()`` is a deep copy for `fork()`. The autoscaler policy is a value
/// too (``Autoscaler``), so its hysteresis and cooldowns are copied with it.
///
/// ```swift
/// let scaling = ScalingController()
/// let op = scaling.openOperation(role: .prefill, from: 8, to: 9, at: 10)
/// scaling.beginStart(te: 9, operation: op, path: nil)       // allocating; the operation waits for TE 9
/// scaling.beginLoading(te: 9, path: .npuFork, source: 0)    // the operation's slowest path: npu-fork
/// scaling.beginWarmUp(te: 9)
/// scaling.finishStart(te: 9, ready: true, at: 14)           // in service; the operation is ready at 14 s
/// ```
final class ScalingController {
    /// Telemetry counters the autoscaler turns into rates over its evaluation interval.
    struct EvaluationCounters: Equatable {
        var prefillComputedTokens = 0
        var completed = 0
        var sloMet = 0
    }

    /// TEs that were started or scaled in, by TE index (untouched TEs of the initial layout have
    /// no entry: they are in service).
    private(set) var lifecycle: [Int: TELifecycle] = [:]
    /// Scale operations in the order they were asked for (the report's `scaling.details`).
    private(set) var details: [ScaleDetail] = []
    /// TEs of each operation still under way, by operation index (absent: none).
    private var pendingTEs: [Int: Int] = [:]
    /// Operations that start TEs (scale-ups), and when the latest of each one's TEs came into
    /// service: a scale-up is ready when its last TE reached service, not when its last start was
    /// cancelled, and never if none reached it.
    private var scaleUpOperations: Set<Int> = []
    private var lastInService: [Int: SimTime] = [:]
    /// Spare NPUs whose hosts keep the weights in DRAM (pre-warmed); they stay warm after use.
    private(set) var prewarmedNPUs: Set<Int> = []
    /// A drain check is on the event queue (one at a time, however many TEs drain).
    private(set) var drainCheckScheduled = false
    private(set) var autoscaler: any Autoscaler = OffAutoscaler()
    /// An autoscale tick is on the event queue (one at a time, across policy swaps).
    private(set) var autoscaleTickPending = false
    /// Where the current evaluation interval started, and the counters then.
    private(set) var lastEvaluation: SimTime = 0
    private var countersAtEvaluation = EvaluationCounters()
    /// Share of the DP groups of the prefill batch just formed that got work (set when the batch
    /// forms, read when its step starts).
    private(set) var batchGroupShare = 0.0
    /// While an autoscaler runs, per prefill TE: step seconds started (cumulative), the same
    /// weighted by the share of its DP groups working in each step, and that share for the
    /// running step; and both sums done at the last evaluation. Their differences are the busy
    /// shares over the evaluation interval (a 0.5 s telemetry sample is too noisy to scale on).
    private var prefillBusyStarted: [Int: Double] = [:]
    private var prefillGroupBusyStarted: [Int: Double] = [:]
    private var prefillStepGroupShare: [Int: Double] = [:]
    private var prefillBusyAtEvaluation: [Int: Double] = [:]
    private var prefillGroupBusyAtEvaluation: [Int: Double] = [:]

    init() {}

    /// A deep, independent copy (for the engine's `fork()`): every field is a value.
    func copy() -> ScalingController {
        let copy = ScalingController()
        copy.lifecycle = lifecycle
        copy.details = details
        copy.pendingTEs = pendingTEs
        copy.scaleUpOperations = scaleUpOperations
        copy.lastInService = lastInService
        copy.prewarmedNPUs = prewarmedNPUs
        copy.drainCheckScheduled = drainCheckScheduled
        copy.autoscaler = autoscaler
        copy.autoscaleTickPending = autoscaleTickPending
        copy.lastEvaluation = lastEvaluation
        copy.countersAtEvaluation = countersAtEvaluation
        copy.batchGroupShare = batchGroupShare
        copy.prefillBusyStarted = prefillBusyStarted
        copy.prefillGroupBusyStarted = prefillGroupBusyStarted
        copy.prefillStepGroupShare = prefillStepGroupShare
        copy.prefillBusyAtEvaluation = prefillBusyAtEvaluation
        copy.prefillGroupBusyAtEvaluation = prefillGroupBusyAtEvaluation
        return copy
    }

    // MARK: Queries (snapshot, report, the engine's decisions)

    /// TE `te`'s phase (in service when scaling never touched it).
    func phase(_ te: Int) -> InstancePhase { lifecycle[te]?.phase ?? .inService }
    /// Whether scaling ever started or scaled in a TE (most runs: never).
    var hasLifecycles: Bool { !lifecycle.isEmpty }
    /// The TEs scaled in and still finishing their work, in index order.
    func drainingTEs() -> [Int] { lifecycle.filter { $0.value.phase == .draining }.map(\.key).sorted() }
    func operation(_ index: Int) -> ScaleDetail { details[index] }
    /// TEs operation `index` still waits for.
    func pendingTEs(of index: Int) -> Int { pendingTEs[index, default: 0] }
    func isPrewarmed(_ npu: Int) -> Bool { prewarmedNPUs.contains(npu) }

    /// The report's `scaling` section.
    func report() -> ScalingReport {
        var r = ScalingReport()
        r.details = details
        // A scale-up all of whose starts were cancelled reached nothing: it is no scale-up.
        r.scaleUps = details.filter { $0.to > $0.from }.count
        r.scaleDowns = details.filter { $0.to < $0.from }.count
        return r
    }

    // MARK: Pre-warmed spares

    /// `npus` keep the model's weights in their hosts' DRAM from now on.
    func markPrewarmed(_ npus: Set<Int>) { prewarmedNPUs.formUnion(npus) }

    // MARK: Scale operations

    /// Records a scale operation of `role` from `from` to `to` TEs asked for at `now`; returns its
    /// index (what the TEs' lifecycles point at).
    func openOperation(role: InstanceRole, from: Int, to: Int, at now: SimTime) -> Int {
        details.append(ScaleDetail(role: role.rawValue, from: from, to: to, requestedS: now, readyS: nil, loadPath: nil))
        if to > from { scaleUpOperations.insert(details.count - 1) }
        return details.count - 1
    }

    /// Drops the operation just opened (a scale-up none of whose TEs could be built).
    func withdrawOperation(_ index: Int) {
        precondition(index == details.count - 1, "only the last operation can be withdrawn")
        details.removeLast()
        scaleUpOperations.remove(index)
    }

    /// Operation `index` aims at `to` TEs after all (fewer were built than asked for).
    func setTarget(of index: Int, to: Int) { details[index].to = to }

    /// Operation `index` is ready at `now` if it waits for no TE (a scale-down of starting TEs only).
    func readyIfNothingPending(_ index: Int, at now: SimTime) {
        if pendingTEs[index, default: 0] == 0 { details[index].readyS = now }
    }

    /// One TE of operation `index` is done (in service, start cancelled, or scaled in); the
    /// operation is complete when it was the last.
    func finishOne(of index: Int, at now: SimTime) {
        let left = pendingTEs[index, default: 1] - 1
        pendingTEs[index] = left > 0 ? left : nil
        if left <= 0 { complete(index, at: now) }
    }

    /// Operation `index` waits for no TE any more. A scale-down is ready now (its last TE gave its
    /// NPUs back); a scale-up when the last TE it reached came into service, or never (`ready_s`
    /// null) when every start was cancelled or given up.
    private func complete(_ index: Int, at now: SimTime) {
        guard scaleUpOperations.contains(index) else {
            details[index].readyS = now
            return
        }
        details[index].readyS = details[index].to > details[index].from ? lastInService[index] : nil
    }

    /// A start of operation `index` lost its hardware: the operation waits for a replacement
    /// (called before the replacement is tried, so the abandoned start does not complete it).
    func awaitReplacement(of index: Int) {
        pendingTEs[index, default: 0] += 1
        details[index].readyS = nil
        // The abandoned start's path no longer describes the operation: the slowest path among
        // its TEs still standing (the replacement adds its own when it loads).
        details[index].loadPath = LoadPath.slowest(lifecycle.values
            .filter { $0.detail == index && $0.phase != .retired }
            .compactMap(\.loadPath))
    }

    /// The replacement was tried: started (it now counts for itself) or not (the operation falls
    /// one TE short, counts the start as lost, and is ready at `now` when nothing else is pending).
    func replacementTried(for index: Int, started: Bool, at now: SimTime) {
        pendingTEs[index, default: 1] -= 1
        guard !started else { return }
        details[index].to -= 1
        details[index].lost += 1
        if pendingTEs[index, default: 0] <= 0 {
            pendingTEs[index] = nil
            complete(index, at: now)
        }
    }

    // MARK: Lifecycle of a TE

    /// TE `te` starts for operation `index`: allocating its NPUs (`path`: a forced load path).
    func beginStart(te: Int, operation index: Int, path: LoadPath?) {
        lifecycle[te] = TELifecycle(phase: .allocating, phaseEndsAt: nil, loadPath: path, forkSource: nil, detail: index)
        pendingTEs[index, default: 0] += 1
    }

    /// TE `te` is scaled in by operation `index`: it takes no new work and drains.
    func beginScaleIn(te: Int, operation index: Int) {
        lifecycle[te] = TELifecycle(phase: .draining, phaseEndsAt: nil, loadPath: nil, forkSource: nil, detail: index)
        pendingTEs[index, default: 0] += 1
    }

    /// TE `te`'s current phase ends at `at`; the wake-up goes on `queue` (an earlier one for the
    /// TE turns stale: ``ScalingTimer/phaseEnds(instance:)`` checks the time).
    func schedulePhaseEnd(te: Int, at: SimTime, queue: inout EngineEventQueue) {
        lifecycle[te]?.phaseEndsAt = at
        queue.schedule(at: at, .scaling(.phaseEnds(instance: te)))
    }

    /// TE `te` loads its weights by `path` (from TE `source` for an NPU-fork); its operation
    /// reports the slowest path among its TEs.
    func beginLoading(te: Int, path: LoadPath, source: Int?) {
        guard var life = lifecycle[te] else { return }
        life.phase = .loading
        life.loadPath = path
        life.forkSource = source
        lifecycle[te] = life
        details[life.detail].loadPath = LoadPath.slowest([details[life.detail].loadPath, path].compactMap { $0 })
    }

    /// TE `te`'s load failed part-way (its fork source lost hardware): back to allocated, path
    /// open, so the next load picks again.
    func restartLoad(te: Int) {
        lifecycle[te]?.phase = .allocating
        lifecycle[te]?.loadPath = nil
    }

    /// TE `te`'s weights are in HBM: it warms up (the fork source is free again).
    func beginWarmUp(te: Int) {
        lifecycle[te]?.phase = .warmingUp
        lifecycle[te]?.forkSource = nil
    }

    /// TE `te` leaves its start: in service (`ready`) or retired (abandoned); its operation is
    /// complete when this was its last TE. False when `te` was not starting through scaling.
    @discardableResult
    func finishStart(te: Int, ready: Bool, at now: SimTime) -> Bool {
        guard let life = lifecycle[te] else { return false }
        lifecycle[te]?.phase = ready ? .inService : .retired
        lifecycle[te]?.phaseEndsAt = nil
        lifecycle[te]?.forkSource = nil
        if ready { lastInService[life.detail] = now }
        finishOne(of: life.detail, at: now)
        return true
    }

    /// TE `te`'s start is cancelled by a scale-down before it came into service: its scale-up
    /// reaches one TE fewer and counts the cancellation. Its load path is the slowest among the
    /// TEs it still has (in service or starting); with none left it keeps the cancelled ones'
    /// (that load was under way). Returns the scale-up's index, nil when `te` was not starting.
    @discardableResult
    func cancelStart(te: Int, at now: SimTime) -> Int? {
        guard let life = lifecycle[te], life.phase.isStarting else { return nil }
        let index = life.detail
        details[index].to -= 1
        details[index].cancelled += 1
        finishStart(te: te, ready: false, at: now)
        let standing = lifecycle.values.filter { $0.detail == index && $0.phase != .retired }
        if !standing.isEmpty { details[index].loadPath = LoadPath.slowest(standing.compactMap(\.loadPath)) }
        return index
    }

    /// TE `te` gave its hardware back (also a TE of the initial layout, given up by recovery).
    func retire(te: Int) {
        if lifecycle[te] == nil {
            lifecycle[te] = TELifecycle(phase: .retired, phaseEndsAt: nil, loadPath: nil, forkSource: nil, detail: 0)
        }
        lifecycle[te]?.phase = .retired
        lifecycle[te]?.phaseEndsAt = nil
    }

    // MARK: Drain check

    /// Puts a drain check on `queue` at `at` unless one is there already.
    func scheduleDrainCheck(at: SimTime, queue: inout EngineEventQueue) {
        guard !drainCheckScheduled else { return }
        drainCheckScheduled = true
        queue.schedule(at: at, .scaling(.drainCheck))
    }

    /// The drain check popped: the next one may be scheduled.
    func drainCheckFired() { drainCheckScheduled = false }

    // MARK: Autoscaler slot

    var autoscalerName: String { autoscaler.name }
    /// Whether an autoscaler runs (`off` has no interval): only then are busy sums kept.
    var isAutoscaling: Bool { autoscaler.intervalSeconds > 0 }
    /// An autoscaler runs and no tick of it is on the queue.
    var needsAutoscaleTick: Bool { !autoscaleTickPending && autoscaler.intervalSeconds > 0 }

    /// The operator (or the configuration) puts `policy` in the slot. A tick already on the queue
    /// stays and evaluates the new policy.
    func swapAutoscaler(_ policy: any Autoscaler) { autoscaler = policy }

    /// Starts an evaluation interval at `now` and puts the tick that ends it on `queue` (nothing
    /// when one is pending or no autoscaler runs). Baselines: the telemetry `counters`, and the busy
    /// sums done by now of the prefill TEs in service (`stepSecondsLeft`: of each one's running
    /// step), in TE order; TEs not listed are measured from the next interval on.
    func scheduleAutoscaleTick(now: SimTime, counters: EvaluationCounters,
                               inServicePrefill: [(te: Int, stepSecondsLeft: Double)], queue: inout EngineEventQueue) {
        guard needsAutoscaleTick else { return }
        autoscaleTickPending = true
        lastEvaluation = now
        countersAtEvaluation = counters
        prefillBusyAtEvaluation = [:]
        prefillGroupBusyAtEvaluation = [:]
        for (te, left) in inServicePrefill {
            (prefillBusyAtEvaluation[te], prefillGroupBusyAtEvaluation[te]) = busyDone(te: te, stepSecondsLeft: left)
        }
        queue.schedule(at: now.after(autoscaler.intervalSeconds), .scaling(.autoscaleTick))
    }

    /// The autoscale tick popped: the next one may be scheduled.
    func autoscaleTickFired() { autoscaleTickPending = false }

    /// The policy's decisions on `load` (it updates its own hysteresis and cooldowns).
    func evaluate(_ load: ClusterLoad, now: SimTime) -> [ScalingDecision] {
        autoscaler.evaluate(load, now: now)
    }

    // MARK: Busy sums (per step, while an autoscaler runs)

    /// A prefill batch formed with work on `groupShare` of its TE's DP groups (0: nothing queued).
    func noteBatchFormed(groupShare: Double) { batchGroupShare = groupShare }

    /// A step of `seconds` starts on prefill TE `te` with the batch just formed.
    func recordPrefillStep(te: Int, seconds: Double) {
        prefillBusyStarted[te, default: 0] += seconds
        prefillGroupBusyStarted[te, default: 0] += seconds * batchGroupShare
        prefillStepGroupShare[te] = batchGroupShare
    }

    /// Busy seconds of prefill TE `te` done by now (the steps started, less `stepSecondsLeft` of
    /// the running one), plain and weighted by the share of DP groups working.
    func busyDone(te: Int, stepSecondsLeft left: Double) -> (busy: Double, groupBusy: Double) {
        (prefillBusyStarted[te, default: 0] - left,
         prefillGroupBusyStarted[te, default: 0] - left * prefillStepGroupShare[te, default: 0])
    }

    /// Seconds since the evaluation interval started (at least 1 ns: a divisor).
    func evaluationInterval(now: SimTime) -> Double { max(1e-9, now - lastEvaluation) }

    /// Prefill TE `te`'s busy shares over the `interval` (plain, DP-group weighted), each within
    /// 0…1; nil when it was not in service when the interval started.
    func busyShares(te: Int, stepSecondsLeft: Double, interval: Double) -> (busy: Double, groupBusy: Double)? {
        guard let base = prefillBusyAtEvaluation[te], let groupBase = prefillGroupBusyAtEvaluation[te] else { return nil }
        let done = busyDone(te: te, stepSecondsLeft: stepSecondsLeft)
        return (min(1, max(0, done.busy - base) / interval), min(1, max(0, done.groupBusy - groupBase) / interval))
    }

    /// What the telemetry counters grew by since the interval started (`current`: their values now).
    func countsSinceEvaluation(_ current: EvaluationCounters) -> EvaluationCounters {
        EvaluationCounters(prefillComputedTokens: current.prefillComputedTokens - countersAtEvaluation.prefillComputedTokens,
                           completed: current.completed - countersAtEvaluation.completed,
                           sloMet: current.sloMet - countersAtEvaluation.sloMet)
    }
}
