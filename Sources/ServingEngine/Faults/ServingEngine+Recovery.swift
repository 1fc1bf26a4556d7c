import Foundation
import PodModel
import SimKit

/// Recovery (system.md §4 "Faults"): the fault system detects and its policy decides
/// (``FaultSystem/heartbeatRound(at:pod:act:)``, RecoveryPlaybook.swift, reading the pod
/// through ``EnginePodView``); these are the mechanisms it drives through
/// ``EngineRecoveryActuator``.
extension ServingEngine {
    // MARK: Decode: shrink, kill prefill

    /// Vertical shrink: TE `i` drops its `lost` groups (their requests re-prefilled) and runs on
    /// `live` groups with fewer EP ranks.
    func shrink(_ i: Int, lost: Set<Int>, live: Int, ids: [Int]) {
        let moved = evict(requestsOn(instance: i, groups: lost), outcome: .reprefill)
        let ep = instances[i].groupSpec.ep - expertDiesLost(instance: i)
        finish(ids, moved, "vertical shrink of \(instances[i].name): DP \(instances[i].groupCount) → "
            + "\(live), EP \(instances[i].groupSpec.ep) → \(ep); every expert keeps a replica, "
            + "excess replicas on the lost dies dropped; \(Self.counted(moved.reprefilled, "request")) re-prefilled")
        refreshFaultState()
    }

    /// "Kill prefill to preserve decode": prefill TE `donor` is killed, its requests re-queued on
    /// the other prefill TEs, and `given` NPUs leave it (the decode TE forks onto them next).
    func killPrefill(_ donor: Int, giving given: [Int], ids: [Int]) {
        faults.beginOutage(donor, .killed)
        refreshFaultState()
        let moved = evict(requestsOn(instance: donor), outcome: .reprefill)
        cluster.give(given, from: donor)
        layoutChanged()
        note(ids, "kill prefill to preserve decode: \(instances[donor].name) killed, "
            + "\(moved.reprefilled) of its requests re-queued on the other prefill TEs")
        add(ids, moved)
    }

    /// "NPU 170" or "NPUs 170, 171" ("GPU 3" on a GPU cluster): a recovery line names one
    /// device in the singular.
    func devices(_ list: [Int]) -> String {
        "\(hardware.deviceKind)\(list.count == 1 ? "" : "s") " + list.map(String.init).joined(separator: ", ")
    }

    /// NPU-fork (DeepServe): the lost NPUs are replaced by `donors`, whose weights are copied
    /// from running peers over UB; the TE is out of service for the copy.
    func startFork(_ i: Int, ids: [Int], lost: Set<Int>, deadNPUs: [Int], donors: [Int], how: String) {
        let seconds = Self.delay(cost.weightCopy(bytes: weightBytesPerDie(instances[i].groupSpec)))
        faults.beginOutage(i, .forking(until: now.after(seconds), spares: Dictionary(uniqueKeysWithValues: zip(deadNPUs, donors))))
        refreshFaultState()
        let moved = evict(requestsOn(instance: i, groups: lost), outcome: .reprefill)
        add(ids, moved)
        faults.awaitRecovery(ids, onReturnOf: i)
        note(ids, "replacing \(devices(deadNPUs)) of \(instances[i].name) with \(how) \(devices(donors)): NPU-fork weight copy "
            + "\(String(format: "%.3f", seconds)) s over UB; \(Self.counted(moved.reprefilled, "request")) re-prefilled")
        queue.schedule(at: now.after(seconds), .fault(.outageEnds(instance: i)))
    }

    /// Restart of one TE: its requests go back to prefill, it is out for the restart time
    /// (system.md §4: up to 5 minutes), then returns on spares or without the lost dies.
    func restartInstance(_ i: Int, ids: [Int], why: String) {
        restartInstances([i], ids: ids) { _ in why }
    }

    /// TEs `tes` restart at once: all leave service first, then each one's requests go back to
    /// prefill on a TE still in service (one that is itself restarting would only lose them).
    func restartInstances(_ tes: [Int], ids: [Int], why: (Int) -> String) {
        let seconds = configuration.faults.componentRestartSeconds
        for i in tes { faults.beginOutage(i, .restarting(until: now.after(seconds))) }
        refreshFaultState()
        for i in tes {
            let moved = evict(requestsOn(instance: i), outcome: .reprefill)
            add(ids, moved)
            faults.awaitRecovery(ids, onReturnOf: i)
            note(ids, "\(why(i)): out for \(OperatorCommand.format(seconds)) s; "
                + "\(Self.counted(moved.reprefilled, "request")) re-prefilled, \(moved.failed) failed")
            queue.schedule(at: now.after(seconds), .fault(.outageEnds(instance: i)))
        }
    }

    /// TE `i` is restarting when faults `ids` hit it: they are recovered when it returns.
    func joinRestart(_ i: Int, ids: [Int]) {
        guard case .restarting(let until) = faults.outage(of: i) else { return }
        faults.awaitRecovery(ids, onReturnOf: i)
        note(ids, "\(instances[i].name) is already restarting (back in \(OperatorCommand.format(until - now)) s): it returns "
            + "on spare \(hardware.deviceKind)s if there are enough, else without the lost \(hardware.dieWord)s")
    }

    // MARK: Prefill

    /// A prefill (or colocated) TE lost a die and no spare can replace it: it is out of service
    /// until repaired; its requests are re-queued on the other prefill TEs (colocated TEs in a pod
    /// without a prefill side: "prefill TEs" named TEs a colocated pod does not have).
    func awaitRepair(_ i: Int, ids: [Int]) {
        faults.beginOutage(i, .awaitingRepair)
        refreshFaultState()
        let moved = evict(requestsOn(instance: i), outcome: .reprefill)
        let why = scaling.phase(i) == .draining ? "being scaled in: it retires once empty, no spare \(hardware.deviceKind) spent on it"
            : "until repaired (no spare \(hardware.deviceKind)s)"
        finish(ids, moved, "\(instances[i].name) out of service \(why); "
            + "\(Self.counted(moved.reprefilled, "request")) re-queued on the other \(prefillingTE)s, \(moved.failed) failed")
    }

    // MARK: Restart the world

    /// The baseline: every TE restarts, decode before prefill; everything in flight fails. A TE
    /// already restarting keeps its return time (restarting it again pushed the world's return
    /// out by the gap between the two faults).
    func restartWorld(ids: [Int]) {
        let seconds = configuration.faults.componentRestartSeconds
        // A TE scaling retired holds no hardware: there is nothing of it to restart.
        let restarting = instances.indices.filter { !isRetired($0) }
        var returns: [Int: SimTime] = [:]
        var kept: [String] = []
        for i in restarting {
            if case .restarting(let until) = faults.outage(of: i) {
                returns[i] = until
                kept.append(instances[i].name)
                continue
            }
            let until = now.after(instances[i].role == .prefill ? 2 * seconds : seconds)
            returns[i] = until
            faults.beginOutage(i, .restarting(until: until))
            queue.schedule(at: until, .fault(.outageEnds(instance: i)))
        }
        refreshFaultState()
        let moved = evict(requests.keys.sorted(), outcome: .fail("restart of the world after fault \(ids[0])"))
        add(ids, moved)
        // The world is back when the last TE to return does (a prefill TE: restarting takes it
        // twice as long; the last of those returning together).
        let last = restarting.max { (returns[$0] ?? now, $0) < (returns[$1] ?? now, $1) }
        faults.awaitRecovery(ids, onReturnOf: last ?? instances.count - 1)
        note(ids, "restart the world: every TE restarts (decode \(OperatorCommand.format(seconds)) s, then prefill)"
            + (kept.isEmpty ? "" : "; \(kept.joined(separator: ", ")) already restarting \(kept.count == 1 ? "keeps its" : "keep their") return")
            + "; \(Self.counted(moved.failed, "request")) in flight failed")
    }

    /// Whether TE `i` is out for a fault's recovery or a drain's migration (an outage).
    func hasOutage(_ i: Int) -> Bool { faults.hasOutage(i) }

    /// A drain's decode migration asks for TE `d` to pause until `until` while its KV copies
    /// run: an outage the fault state owns and ``endOutage(_:)`` ends, so the drain asks here
    /// instead of writing fault state itself.
    func haltForMigration(_ d: Int, until: SimTime) {
        faults.beginOutage(d, .migrating(until: until))
        queue.schedule(at: until, .fault(.outageEnds(instance: d)))
        refreshFaultState()
    }

    /// An outage ends: forked NPUs take the lost NPUs' place; a restarted TE comes back on spares
    /// if it can, without its lost dies otherwise (a decode TE's restart lays its experts out
    /// over the live dies, ``layOutExpertsAfterRestart(_:)``, or leaves it out until repaired
    /// when they cannot hold every expert).
    func endOutage(_ i: Int) {
        guard let outage = faults.outage(of: i) else { return }
        switch outage {
        case .forking(let until, let spares) where until == now:
            let pairs = spares.sorted { $0.key < $1.key }
            // (A lost NPU healed meanwhile needs no spare: it stays, whatever became of its spare.)
            let failed = pairs.filter { npuHasDeadDie($0.value) && npuHasDeadDie($0.key) }
            guard failed.isEmpty else { return forkOntoDeadSpares(i, pairs: pairs, failed: failed) }
            for (dead, spare) in pairs where !npuHasDeadDie(spare) { replaceNPU(i, dead: dead, with: spare) }
        case .migrating(let until) where until == now:
            break
        case .restarting(let until) where until == now:
            let deadNPUs = knownDeadNPUs(of: i)
            let spares = spareNPUs()
            if spares.count >= deadNPUs.count {
                for (dead, spare) in zip(deadNPUs, spares) { replaceNPU(i, dead: dead, with: spare) }
            }
        default:
            return
        }
        faults.endOutage(i)
        if hasKnownDeadDie(i) && instances[i].role != .decode { faults.beginOutage(i, .awaitingRepair) }
        var layout: String?
        if case .restarting = outage, instances[i].role == .decode { layout = layOutExpertsAfterRestart(i) }
        let pending = faults.takePendingRecovery(of: i)
        if let layout {
            if pending.isEmpty { telemetry.log(EngineEvent(time: now, kind: .recovery, message: layout)) }
            else { note(pending, layout) }
        }
        let arrivals = faults.takeArrivalsWaiting(on: i)
        if faults.outage(of: i) == .awaitingRepair {
            // Requests re-queued to wait for this TE's return (``requeue(_:reasonIfNowhere:)``)
            // would wait for a repair that may never come: they go to a TE in service or fail.
            // Arrivals that waited for it (``admit(_:)``) were never prefilled: they are not
            // counted as re-prefilled, and fail saying what they waited for.
            refreshFaultState()
            let held = requestsOn(instance: i)
            if !held.isEmpty {
                let waited = held.filter(arrivals.contains)
                var moved = evict(held.filter { !arrivals.contains($0) }, outcome: .reprefill)
                let more = evict(waited, outcome: .requeue(ifNowhere: Self.waitedAndNowhere(te: prefillingTE)))
                moved.failed += more.failed
                add(pending, moved)
                let requeued = moved.reprefilled + waited.filter { requests[$0] != nil }.count
                if !pending.isEmpty { note(pending, "\(instances[i].name) came back without its lost dies: "
                    + "\(Self.counted(requeued, "request")) that waited for it re-queued, \(moved.failed) failed") }
            }
        }
        for id in pending {
            guard faults.record(id).map({ !$0.recoveryOver }) == true else { continue }
            faults.markRecovered(id, at: now)
            logRecovered(id, "\(instances[i].name) back in service"
                + (faults.outage(of: i) == .awaitingRepair ? " as soon as its dies are repaired" : ""))
        }
        refreshFaultState()
    }

    /// Whether a die of NPU `npu` is dead (known to the control plane or not).
    private func npuHasDeadDie(_ npu: Int) -> Bool {
        (0..<topology.diesPerNPU).contains { faults.isDead(npu * topology.diesPerNPU + $0) }
    }

    /// TE `i`'s NPU-fork ends and some of the spares it copied onto died during the copy: those
    /// copies failed (the target never answered), so those spares are not taken. The TE took them
    /// ("replacing NPU 170 of decode-0 with spare NPU 288", then `fault npu 288` "recovered: no
    /// traffic on it") and served on with a dead NPU, decode's experts whose only replica had
    /// been on the lost NPU routed to it. The good copies take their lost NPUs' place; the TE stays
    /// out and its recovery goes on: a new copy onto fresh spares, else a restart (which returns on
    /// spares or without the lost dies).
    private func forkOntoDeadSpares(_ i: Int, pairs: [(key: Int, value: Int)], failed: [(key: Int, value: Int)]) {
        for (dead, spare) in pairs where !npuHasDeadDie(spare) { replaceNPU(i, dead: dead, with: spare) }
        // Ended, so that the dead spares are no longer promised to it; what waited goes on waiting.
        faults.endOutage(i)
        let ids = faults.takePendingRecovery(of: i)
        let lost = failed.map(\.key)
        let draining = scaling.phase(i) == .draining
        let fresh = draining ? [] : Array(spareNPUs().prefix(lost.count))
        let line = "spare \(devices(failed.map(\.value))) died during the NPU-fork copy onto "
            + "\(failed.count == 1 ? "it" : "them"): \(instances[i].name) stays out without \(devices(lost))"
        if ids.isEmpty { telemetry.log(EngineEvent(time: now, kind: .recovery, severity: .warning, message: line)) }
        else { note(ids, line) }
        if fresh.count == lost.count {
            startFork(i, ids: ids, lost: [], deadNPUs: lost, donors: fresh, how: "spare")
        } else if instances[i].role == .decode && !draining {
            // As the decode failover's last fallback: the restart returns on spares or lays its
            // experts out over the live dies.
            restartInstance(i, ids: ids, why: "no spare \(hardware.deviceKind) left to copy onto: \(instances[i].name) restarts")
        } else {
            // As a prefill TE without spares (or one being scaled in): out until repaired.
            awaitRepair(i, ids: ids)
        }
    }

    /// Decode TE `i` is back from a restart still holding known-dead routed-expert dies (no spare
    /// replaced them). system.md §4: the decode failover must keep at least one replica of every
    /// expert. The restart loaded the weights afresh, so the experts are laid out over the live
    /// dies; its routing kept the old placement, and experts whose only replica sat on a dead die
    /// (why the shrink was refused and it restarted) still sent their tokens there. When the live
    /// dies cannot hold every expert, it stays out until repaired. The recovery's line (nil:
    /// no routed-expert die lost, nothing to lay out).
    private func layOutExpertsAfterRestart(_ i: Int) -> String? {
        guard experts.hasExperts, let moe = model.moe else { return nil }
        let spec = instances[i].groupSpec
        let routed = spec.ep - spec.sharedExpertDies
        let lost = cluster.deadExpertIndices(of: i, dead: faults.knownDead).filter { $0 < routed }.sorted()
        guard !lost.isEmpty else { return nil }
        let name = instances[i].name, live = routed - lost.count
        let without = "\(name) came back without its \(Self.counted(lost.count, "dead routed-expert die"))"
        if experts.layOutAfterRestart(i, without: lost) {
            return without + ": its experts laid out afresh over the \(live) live ones, each with a replica"
        }
        faults.beginOutage(i, .awaitingRepair)
        let slots = live * (experts.routing(of: i)?.slotsPerDie ?? 1)
        return without + ": the \(live) live ones hold \(slots) expert slots and cannot hold every expert "
            + "(\(moe.routedExperts)); it stays out until repaired"
    }

    /// Moves a TE from a dead NPU onto a healthy one: the dead NPU leaves the TE for repair.
    private func replaceNPU(_ i: Int, dead: Int, with spare: Int) {
        cluster.replaceNPU(of: i, dead: dead, with: spare)
    }

    // MARK: Spares and experts

    /// NPUs of TE `i` with a die the control plane knows is dead, in the TE's order.
    func knownDeadNPUs(of i: Int) -> [Int] {
        cluster.npus(of: i).filter { npu in (0..<topology.diesPerNPU).contains { faults.knownDead.contains(npu * topology.diesPerNPU + $0) } }
    }

    /// Healthy NPUs no TE uses and not on a drained node, in id order (the spare pool).
    func spareNPUs() -> [Int] {
        // NPUs an NPU-fork in progress will take are promised already.
        var promised = Set<Int>()
        for outage in faults.outages.values { if case .forking(_, let spares) = outage { promised.formUnion(spares.values) } }
        return cluster.spareNPUs(podNPUs: topology.npuCount, reserved: promised, isDeadDie: faults.isDead)
    }

    /// Bytes of weights one die of the TE holds: non-expert weights split over TP plus its
    /// routed-expert slots (the same split as the KV sizing in ServingEngine+Layout).
    func weightBytesPerDie(_ spec: InstanceGroup) -> Double {
        guard let moe = model.moe else { return model.weightBytes / Double(spec.tp) }
        let expertBytes = Double((model.moeLayers + model.mtpModules) * moe.routedExperts) * model.expertParameters
            * model.weightType.bytes
        let routedDies = max(1, spec.ep - spec.sharedExpertDies)
        let slotsPerDie = (Double(spec.routedSlots(for: model)) / Double(routedDies)).rounded(.up)
        return (model.weightBytes - expertBytes) / Double(spec.tp) + expertBytes / Double(moe.routedExperts) * slotsPerDie
    }

    // MARK: Bookkeeping

    /// A step of the faults' recovery story (recorded by the fault system), logged.
    func note(_ ids: [Int], _ message: String) {
        telemetry.log(faults.noteStep(ids, message, at: now))
    }

    func add(_ ids: [Int], _ moved: (reprefilled: Int, failed: Int)) {
        guard let first = ids.first else { return }
        faults.count(first, reprefilled: moved.reprefilled, failed: moved.failed)
    }

    /// Records an immediate recovery (the fault system records it) and logs it.
    func finish(_ ids: [Int], _ moved: (reprefilled: Int, failed: Int), _ message: String) {
        for line in faults.finishRecovery(ids, reprefilled: moved.reprefilled, failed: moved.failed, message, at: now) {
            telemetry.log(line)
        }
    }
}
