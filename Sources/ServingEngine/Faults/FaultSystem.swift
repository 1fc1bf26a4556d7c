import PodModel
import SimKit

/// The fault system (engine-components.md §2, system.md §4 "Faults"): the injected faults and
/// what they did to the hardware, the heartbeat state that finds them, and the recovery policy
/// with the bookkeeping of recoveries under way.
///
/// Its state changes only through the methods below. It decides nothing about requests,
/// batches, channels or KV. Its heartbeat round (FaultSystem+HeartbeatRound.swift) detects
/// faults and hands each to the ``policy`` (RecoveryPlaybook.swift); both read the pod through
/// a ``PodView`` and act through a ``RecoveryActuator`` given per call, whose mechanisms (the
/// engine's, Faults/ServingEngine+*.swift) record their outcome here. The engine (the
/// coordinator) asks the rest (`isHalted`, `takeRedo`, …). Facts about the pod it needs come in
/// per call (views, non-escaping closures, never stored), so a ``copy()`` has nothing to re-wire.
///
/// Children are values: ``HeartbeatMonitor`` (silent rounds, KV-probe episodes) and
/// ``GlitchRedo``. Which die is which expert die is the hardware map's (``ClusterManager``).
///
/// Fault ids are 1, 2, 3… in injection order and records are never removed, so a fault's
/// record sits at `id - 1`.
///
/// ```swift
/// let faults = FaultSystem(settings: FaultSettings())
/// let id = faults.inject(.dead(dies: [4, 5]), label: "fault npu 2", at: 1, stalled: [0])
/// faults.killDies([4, 5])
/// faults.recomputeHalted()                          // [] resumed; TE 0 is now halted
/// faults.heartbeat(instance: 0)                     // nil, nil, then 3 (declared; default settings)
/// faults.markDetected(id, at: 4, how: "DP masters silent")
/// ```
final class FaultSystem {
    /// Detection and recovery knobs (the configuration's).
    let settings: FaultSettings
    /// How each kind of fault is handled (``Policies/recovery``).
    private(set) var policy: any RecoveryPolicy = FineGrainedRecovery()
    private(set) var records: [FaultRecord] = []
    private(set) var nextID = 1
    /// Dies that are dead, with how many active faults kill each (a die and its node may both).
    private(set) var deadDies: [Int: Int] = [:]
    /// Dead dies the control plane knows about (detected); recovery has acted on them.
    private(set) var knownDead: Set<Int> = []
    /// Straggler factor per die (largest active), and the resulting factor per instance.
    private(set) var stragglers: [Int: Double] = [:]
    private(set) var instanceSlowdown: [Int: Double] = [:]
    /// The same over the instance's dies that run attention (hold a DP group), and over those that
    /// run experts only (a MoE–attention layout's expert dies): a straggler there slows one barrier.
    private(set) var attentionDieSlowdown: [Int: Double] = [:]
    private(set) var expertOnlyDieSlowdown: [Int: Double] = [:]
    /// Instances that start no steps: stalled by an undetected dead die, or out of service.
    private(set) var halted: Set<Int> = []
    /// Faults whose recovery completes when an instance's outage ends.
    private(set) var pendingRecovery: [Int: [Int]] = [:]
    /// Arrivals waiting in a TE's queue for its return from an outage (by TE): they are told
    /// apart from re-queued requests when it comes back unable to serve.
    private(set) var arrivalsWaiting: [Int: [Int]] = [:]
    /// Per-instance outage (restart, NPU-fork, awaiting repair, killed, migrating).
    private(set) var outages: [Int: InstanceOutage] = [:]
    /// Silent heartbeat rounds and KV-probe episodes (``HeartbeatMonitor``).
    private(set) var heartbeats = HeartbeatMonitor()
    /// Glitch redos owed and done (``GlitchRedo``).
    private(set) var glitches = GlitchRedo()
    // Where an HBM fault's masked region is held is the KV store's (``KVCacheStore/mask(_:tokens:fault:)``).

    init(settings: FaultSettings = FaultSettings()) { self.settings = settings }

    /// A deep, independent copy (for the engine's `fork()`): every field is a value.
    func copy() -> FaultSystem {
        let c = FaultSystem(settings: settings)
        c.policy = policy
        c.records = records
        c.nextID = nextID
        c.deadDies = deadDies
        c.knownDead = knownDead
        c.stragglers = stragglers
        c.instanceSlowdown = instanceSlowdown
        c.attentionDieSlowdown = attentionDieSlowdown
        c.expertOnlyDieSlowdown = expertOnlyDieSlowdown
        c.halted = halted
        c.pendingRecovery = pendingRecovery
        c.arrivalsWaiting = arrivalsWaiting
        c.outages = outages
        c.heartbeats = heartbeats
        c.glitches = glitches
        return c
    }

    // MARK: Policy

    /// Replaces the recovery policy (at build, and by `policy recovery NAME`).
    func use(_ policy: any RecoveryPolicy) { self.policy = policy }

    /// What the policy does with a fault of `kind` on a TE of `role`.
    func plan(_ kind: FaultKind, role: InstanceRole?) -> RecoveryAction { policy.plan(kind, role: role, settings: settings) }

    // MARK: Records

    func isDead(_ die: Int) -> Bool { deadDies[die, default: 0] > 0 }

    /// Position of fault `id` in ``records`` (ids are dense from 1; nil for an unknown id).
    func index(of id: Int) -> Int? {
        let i = id - 1
        return i >= 0 && i < records.count && records[i].id == id ? i : records.firstIndex { $0.id == id }
    }

    func record(_ id: Int) -> FaultRecord? { index(of: id).map { records[$0] } }

    var active: [FaultRecord] { records.filter(\.active) }
    var activeCount: Int { records.lazy.filter(\.active).count }

    /// Ids of the active faults nobody has detected yet, in id order.
    var undetectedIDs: [Int] { records.filter { $0.active && $0.detectedAt == nil }.map(\.id) }

    /// Records a new fault under a fresh id (returned). `stalled`: TEs whose barrier it stalls
    /// until it is detected. `listing` is the label in the hardware's words (``FaultRecord/listing``);
    /// the label when nil.
    @discardableResult
    func inject(_ kind: FaultKind, label: String, listing: String? = nil, at time: SimTime, stalled: Set<Int> = []) -> Int {
        let id = nextID
        nextID += 1
        records.append(FaultRecord(id: id, kind: kind, label: label, listing: listing ?? label, injectedAt: time,
                                   stalled: stalled))
        return id
    }

    /// The dies stop answering (one more fault kills each).
    func killDies(_ dies: [Int]) {
        for die in dies { deadDies[die, default: 0] += 1 }
    }

    /// Die `die` runs `factor` times slower (the largest active factor per die counts).
    func slowDie(_ die: Int, by factor: Double) {
        stragglers[die] = max(stragglers[die] ?? 1, factor)
    }

    /// The operator repaired fault `id` at `time`: it ends (recovered now unless a restart or
    /// NPU-fork under way recovers it later, or it was never detected: then it is healed before
    /// detection and not counted recovered, since no recovery acted), its dies revive and its
    /// straggler factor goes.
    /// An instance waiting for repair returns when `holdsKnownDeadDie` says it no longer holds
    /// a known-dead die. Returns the healed record (nil: not an active fault).
    func heal(_ id: Int, at time: SimTime, holdsKnownDeadDie: (Int) -> Bool) -> FaultRecord? {
        guard let index = index(of: id), records[index].active else { return nil }
        var record = records[index]
        record.healedAt = time
        let recovering = pendingRecovery.values.contains { $0.contains(record.id) }
        if !record.recoveryOver && !recovering {
            if record.detectedAt == nil {
                record.healedBeforeDetection = true
                record.recovery += (record.recovery.isEmpty ? "" : "; ") + "healed by the operator before detection (no recovery acted)"
            } else {
                record.recoveredAt = time
                record.recovery += (record.recovery.isEmpty ? "" : "; ") + "healed by the operator"
            }
        }
        records[index] = record
        switch record.kind {
        case .dead(let dies):
            for die in dies {
                deadDies[die, default: 1] -= 1
                if deadDies[die] == 0 {
                    deadDies[die] = nil
                    knownDead.remove(die)
                }
            }
            for (i, outage) in outages where outage == .awaitingRepair {
                if !holdsKnownDeadDie(i) { outages[i] = nil }
            }
        case .straggler:
            stragglers = [:]
            for other in records where other.active {
                if case .straggler(let die, let factor) = other.kind { stragglers[die] = max(stragglers[die] ?? 1, factor) }
            }
        case .hbm, .link, .glitch:
            break
        }
        return record
    }

    // MARK: Detection and recovery records

    /// Fault `id` was found at `time`, and how.
    func markDetected(_ id: Int, at time: SimTime, how: String) {
        guard let index = index(of: id) else { return }
        records[index].detectedAt = time
        records[index].detection = how
    }

    /// Fault `id` was recovered at `time` (the first recovery time stands).
    func markRecovered(_ id: Int, at time: SimTime) {
        guard let index = index(of: id), !records[index].recoveryOver else { return }
        records[index].recoveredAt = time
    }

    /// Fault `id` is over at `time` without an operator (a glitch; the first time stands).
    func markHealed(_ id: Int, at time: SimTime) {
        guard let index = index(of: id), records[index].healedAt == nil else { return }
        records[index].healedAt = time
    }

    /// Appends a step to fault `id`'s recovery story (`; `-separated).
    func noteRecovery(_ id: Int, _ text: String) {
        guard let index = index(of: id) else { return }
        records[index].recovery += (records[index].recovery.isEmpty ? "" : "; ") + text
    }

    /// Requests fault `id` cost: re-prefilled and failed.
    func count(_ id: Int, reprefilled: Int, failed: Int) {
        guard let index = index(of: id) else { return }
        records[index].requestsReprefilled += reprefilled
        records[index].requestsFailed += failed
    }

    /// A step of faults `ids`' recovery at `now`, appended to each one's story. Returns the log
    /// line.
    func noteStep(_ ids: [Int], _ step: String, at now: SimTime) -> EngineEvent {
        for id in ids { noteRecovery(id, step) }
        let label = ids.count == 1 ? "fault \(ids[0])" : "faults \(ids.map(String.init).joined(separator: ", "))"
        return EngineEvent(time: now, kind: .recovery, severity: .warning, message: "\(label): \(step)")
    }

    /// Faults `ids` are recovered at `now`, `message` ending each one's story; the requests the
    /// recovery re-prefilled and failed count on the first. Returns the log lines, one per fault.
    func finishRecovery(_ ids: [Int], reprefilled: Int, failed: Int, _ message: String, at now: SimTime) -> [EngineEvent] {
        if let first = ids.first { count(first, reprefilled: reprefilled, failed: failed) }
        var lines: [EngineEvent] = []
        for id in ids where record(id) != nil {
            noteRecovery(id, message)
            markRecovered(id, at: now)
            lines.append(recoveredEvent(id, message, at: now))
        }
        return lines
    }

    /// TE `i`'s device check after its heartbeats went silent: every active, undetected
    /// dead-die fault stalling it is detected at `time` (how: `how`). Returns their ids and
    /// dies, in id order (empty: nothing to recover).
    func detectDead(stalling i: Int, at time: SimTime, how: String) -> (ids: [Int], dies: [Int]) {
        var found: [Int] = []
        var dies: [Int] = []
        for index in records.indices {
            let record = records[index]
            guard record.active, record.detectedAt == nil, record.stalled.contains(i),
                  case .dead(let recordDies) = record.kind else { continue }
            records[index].detectedAt = time
            records[index].detection = how
            found.append(record.id)
            dies += recordDies
        }
        return (found, dies)
    }

    /// Starting TE `i` (holding `dies`) saw its load fail on a dead device: the undetected
    /// dead-die faults on those dies stop stalling it, and those stalling no other TE are
    /// detected at `time` (their dies known dead). Returns the detected ids, in id order.
    func settleFailedStart(instance i: Int, dies: Set<Int>, at time: SimTime, how: String) -> [Int] {
        var settled: [Int] = []
        for index in records.indices where records[index].active && records[index].detectedAt == nil {
            guard case .dead(let recordDies) = records[index].kind, recordDies.contains(where: dies.contains) else { continue }
            records[index].stalled.remove(i)
            guard records[index].stalled.isEmpty else { continue }
            records[index].detectedAt = time
            records[index].detection = how
            learnDead(recordDies)
            settled.append(records[index].id)
        }
        return settled
    }

    /// The state of the UB links on one KV path (`joins(a, b)`: the link between NPUs a and b
    /// carries it): blocked by a down link not yet rerouted, rerouted over RoCE, or slowed by
    /// the product of the degraded links' factors.
    func linkState(joins: (Int, Int) -> Bool) -> (blocked: Bool, rerouted: Bool, slowdown: Double) {
        var blocked = false, rerouted = false, slowdown = 1.0
        for record in records where record.active {
            guard case .link(let a, let b, let degrade) = record.kind, joins(a, b) else { continue }
            if let degrade { slowdown *= degrade } else if record.recoveredAt != nil { rerouted = true } else { blocked = true }
        }
        return (blocked, rerouted, slowdown)
    }

    /// The control plane now knows these dies (those still dead) are dead.
    func learnDead(_ dies: [Int]) {
        for die in dies where isDead(die) { knownDead.insert(die) }
    }

    /// Whether any of `dies` is known dead.
    func holdsKnownDead(_ dies: [Int]) -> Bool { dies.contains(where: knownDead.contains) }

    /// Test seam: sets the known-dead dies directly (the expert-coverage rule in isolation).
    func overrideKnownDead(_ dies: Set<Int>) { knownDead = dies }

    // MARK: Heartbeats

    /// Whether TE `i`'s DP masters are silent: an undetected fault stalls its barrier.
    func isSilent(_ i: Int) -> Bool { records.contains { $0.active && $0.detectedAt == nil && $0.stalled.contains(i) } }

    /// One heartbeat round for TE `i`: an answer clears its count; silence counts a round.
    /// Returns the rounds when that reaches ``FaultSettings/missedHeartbeatsToDeclare`` (the
    /// TE is declared and the count starts over), nil otherwise.
    func heartbeat(instance i: Int) -> Int? {
        heartbeats.round(instance: i, silent: isSilent(i), declareAfter: settings.missedHeartbeatsToDeclare)
    }

    /// KV probes to decode TE `d` with `waiting` transfers queued: true when this starts a
    /// "delayed, not blocked" episode (logged once); an empty queue ends the episode.
    func probeKV(decode d: Int, waiting: Int) -> Bool {
        heartbeats.probeKV(decode: d, waiting: waiting, halted: isHalted(d))
    }

    var silentRounds: [Int: Int] { heartbeats.silentRounds }
    var delayedChannels: Set<Int> { heartbeats.delayedChannels }

    // MARK: Halts and slowdowns

    /// An instance does not start steps while a dead die stalls its barrier (undetected) or
    /// while it is out of service.
    func isHalted(_ i: Int) -> Bool { !halted.isEmpty && halted.contains(i) }

    /// Recomputes the halted set from the outages and the undetected stalls; returns the
    /// instances that left it (they resume).
    @discardableResult
    func recomputeHalted() -> Set<Int> {
        var next = Set(outages.keys)
        for record in records where record.active && record.detectedAt == nil { next.formUnion(record.stalled) }
        let resumed = halted.subtracting(next)
        halted = next
        return resumed
    }

    /// TE `i` is gone (retired by scaling): no outage, not halted.
    func forget(instance i: Int) {
        outages[i] = nil
        halted.remove(i)
    }

    /// Recomputes each instance's straggler factor: the slowest of its in-service dies;
    /// `instanceOf(die)` names the instance whose in-service part holds the die (nil: none) and
    /// whether the die runs attention (holds a DP group) or experts only.
    func recomputeSlowdowns(instanceOf: (Int) -> (te: Int, runsAttention: Bool)?) {
        var slowdown: [Int: Double] = [:], attention: [Int: Double] = [:], expertOnly: [Int: Double] = [:]
        for (die, factor) in stragglers {
            guard let (i, runsAttention) = instanceOf(die) else { continue }
            slowdown[i] = max(slowdown[i] ?? 1, factor)
            if runsAttention {
                attention[i] = max(attention[i] ?? 1, factor)
            } else {
                expertOnly[i] = max(expertOnly[i] ?? 1, factor)
            }
        }
        instanceSlowdown = slowdown
        attentionDieSlowdown = attention
        expertOnlyDieSlowdown = expertOnly
    }

    /// Straggler factor of instance `i` (nil: runs at full speed).
    func slowdown(of i: Int) -> Double? {
        guard !stragglers.isEmpty else { return nil }
        return instanceSlowdown[i]
    }

    /// Straggler factors of instance `i`'s attention dies and of its expert-only dies (1: none slow).
    func slowdownByRole(of i: Int) -> (attention: Double, expertOnly: Double) {
        guard !stragglers.isEmpty else { return (1, 1) }
        return (attentionDieSlowdown[i] ?? 1, expertOnlyDieSlowdown[i] ?? 1)
    }

    // MARK: Outages and pending recoveries

    func outage(of i: Int) -> InstanceOutage? { outages[i] }
    func hasOutage(_ i: Int) -> Bool { outages[i] != nil }

    /// TE `i` goes out of service (a restart, an NPU-fork, awaiting repair, killed, migrating).
    func beginOutage(_ i: Int, _ outage: InstanceOutage) { outages[i] = outage }

    /// TE `i` is back in service.
    func endOutage(_ i: Int) { outages[i] = nil }

    /// Faults `ids` are recovered when TE `i`'s outage ends.
    func awaitRecovery(_ ids: [Int], onReturnOf i: Int) { pendingRecovery[i, default: []] += ids }

    /// The faults waiting for TE `i`'s return (forgotten here).
    func takePendingRecovery(of i: Int) -> [Int] { pendingRecovery.removeValue(forKey: i) ?? [] }

    /// Arrival `id` waits in TE `i`'s queue for its outage to end.
    func noteArrivalWaiting(_ id: Int, on i: Int) { arrivalsWaiting[i, default: []].append(id) }
    /// Whether request `id` is an arrival waiting for a TE's return; forgotten here (it is taken
    /// off that TE's queue). Only the TE's own list can hold it.
    func forgetArrivalWaiting(_ id: Int) -> Bool {
        guard !arrivalsWaiting.isEmpty, let te = arrivalsWaiting.first(where: { $0.value.contains(id) })?.key else { return false }
        arrivalsWaiting[te]?.removeAll { $0 == id }
        return true
    }
    /// The arrivals that waited for TE `i` (its outage is over), forgotten here.
    func takeArrivalsWaiting(on i: Int) -> Set<Int> { Set(arrivalsWaiting.removeValue(forKey: i) ?? []) }

    // MARK: Glitch redo

    /// Every TE in `instances` redoes the iteration in flight for glitch `id`.
    func scheduleRedo(_ instances: [Int], fault id: Int) { glitches.schedule(instances, fault: id) }

    /// The glitches whose redo TE `i` still owes (taken: the redo starts now), oldest first.
    func takeRedo(_ i: Int) -> [Int] { glitches.take(i) }

    /// TE `name` redoes its iteration for glitch `id`, ending at `end`. Returns when the last
    /// redone iteration ends once no TE owes a redo for it any more (the recovery time).
    func noteRedone(fault id: Int, by name: String, endingAt end: SimTime, now: SimTime) -> SimTime? {
        glitches.noteRedone(fault: id, by: name, endingAt: end, now: now)
    }

    /// The TEs that redid an iteration for glitch `id`, in order.
    func redone(fault id: Int) -> [String] { glitches.redone[id] ?? [] }

    /// Glitch `id`'s redo bookkeeping is over.
    func endGlitch(_ id: Int) { glitches.end(id) }

    /// Whether some TE still owes a glitch redo.
    var redoPending: [Int: [Int]] { glitches.pending }
}
