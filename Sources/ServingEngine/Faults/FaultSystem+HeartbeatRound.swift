import PodModel
import SimKit

/// Detection (system.md §4 "Faults"): multi-tier heartbeats — the control plane pings each
/// TE-shell, the TE-shell pings its DP masters — once per interval, one round for the whole pod
/// (a single event, linear in TEs, not in dies). A DP master answers only while its loop is
/// live, so a die dead inside a barrier shows up as its whole TE going silent; after
/// ``FaultSettings/missedHeartbeatsToDeclare`` silent rounds the TE-shell checks its devices and
/// names the dead die. KV links are probed with dummy payloads: an unanswered probe means the
/// link is blocked (dead), an answered one while transfers wait means decode is saturated
/// (delayed).
///
/// The round decides what is detected and records it here; it hands each detected fault to the
/// recovery ``policy`` (RecoveryPlaybook.swift) with the same view and actuator. The engine
/// schedules the next round and announces drained nodes around this call.
///
/// ```swift
/// var act = engineActuator                          // any HeartbeatActuator
/// faults.heartbeatRound(at: now, pod: view, act: &act)
/// ```
extension FaultSystem {
    /// One heartbeat round at `now`: silent TEs counted and, once declared, their dead dies
    /// found and recovered; faults that stall no barrier detected (and recovered) on their first
    /// round; KV probes answered.
    func heartbeatRound(at now: SimTime, pod: some HeartbeatView, act: inout some HeartbeatActuator) {
        // Tier 2–3: TE-shells and DP masters.
        for te in 0..<pod.teCount {
            if let rounds = heartbeat(instance: te) { detectStalled(te, rounds: rounds, at: now, pod: pod, act: &act) }
        }
        // Faults that do not stall a barrier answer (or fail to) on the first round.
        for index in records.indices where records[index].active && records[index].detectedAt == nil {
            detectWithoutStall(records[index].id, at: now, pod: pod, act: &act)
        }
        probeKVLinks(at: now, pod: pod, act: &act)
    }

    /// Every DP master of the TE has been silent for `rounds` rounds: a collective is hung. The
    /// TE-shell's device check finds the dead dies; recovery starts.
    private func detectStalled(_ te: Int, rounds: Int, at now: SimTime, pod: some HeartbeatView,
                               act: inout some HeartbeatActuator) {
        let name = pod.name(of: te)
        let masters = (0..<pod.groupCount(of: te)).filter { !pod.isOutOfService(te, group: $0) }.count
        // A TE out for a restart or repair has no DP master running to fall silent ("0 DP masters
        // silent" said nothing true): its TE-shell's device check is what finds the dies. The
        // report's detection says the same as the event line (it kept "DP masters silent").
        let outOfService = "out of service (\(pod.isRestarting(te) ? "restarting" : "recovering")), no DP master running"
        let (found, dies) = detectDead(stalling: te, at: now, how: "\(name): "
            + (masters > 0 ? "DP masters silent for \(rounds) heartbeats (stuck in a collective)" : outOfService)
            + "; device check finds the dead \(pod.dieWord)s")
        guard !found.isEmpty else { return }
        // Each die once: faults found together can share dies (`fault die 0`, then `fault node 0`).
        var listed = Set<Int>()
        let dead = dies.filter { isDead($0) && listed.insert($0).inserted }.map(String.init)
        // The rounds count from the last one the TE answered, which came before the fault: the
        // milliseconds say so, or "3000 ms" beside "detected 2.3 s after injection" read as a
        // contradiction.
        let silence = masters > 0
            ? "\(ServingEngine.counted(masters, "DP master")) silent for \(rounds) heartbeats "
                + "(\(Int(saturating: settings.heartbeatIntervalSeconds * Double(rounds) * 1_000)) ms since the last "
                + "answered round, stuck in a collective)"
            : outOfService
        act.log(detectedEvent(found, "\(name): \(silence); "
            + "device check: \(pod.dieWord)\(dead.count == 1 ? "" : "s") \(dead.joined(separator: ", ")) dead", at: now))
        learnDead(dies)
        recoverDead(te, faults: found, pod: pod, act: &act)
        // Other TEs stalled by the same fault are told by the control plane at once.
        for other in 0..<pod.teCount where other != te {
            let stalledToo = found.contains { id in record(id)?.stalled.contains(other) ?? false }
            if stalledToo { recoverDead(other, faults: found, pod: pod, act: &act) }
        }
    }

    /// Dead dies were found in TE `te`: scaling takes a TE that was still starting; the policy
    /// recovers the others.
    private func recoverDead(_ te: Int, faults ids: [Int], pod: some HeartbeatView, act: inout some HeartbeatActuator) {
        guard let first = ids.first, let kind = record(first)?.kind else { return }
        if act.scalingTakesRecovery(te, faults: ids) { return }
        policy.recoverDead(te: te, faults: ids, kind: kind, pod: pod, act: &act)
    }

    private func detectWithoutStall(_ id: Int, at now: SimTime, pod: some HeartbeatView, act: inout some HeartbeatActuator) {
        guard let fault = record(id) else { return }
        switch fault.kind {
        case .dead(let dies):
            guard fault.stalled.isEmpty else { return }
            learnDead(dies)
            markDetected(id, at: now, how: "control plane: node agent reports the devices dead")
            markRecovered(id, at: now)
            noteRecovery(id, "no traffic on it (spare, drained or already out of service)")
            act.log(detectedEvent([id], "control plane: \(fault.listing) reported by the node agent; no TE uses it", at: now))
            act.log(recoveredEvent(id, "nothing to move: the hardware carried no traffic", at: now))
            act.applyFaultState()
        case .hbm(let die):
            markDetected(id, at: now, how: "DP master reports an uncorrectable ECC error in its heartbeat answer")
            act.log(detectedEvent([id], "\(pod.dieName(die)): uncorrectable ECC error reported by its DP master", at: now))
            policy.recoverHBM(id, die: die, kind: fault.kind, pod: pod, act: &act)
        case .straggler(let die, let factor):
            guard let (te, _) = pod.locate(die: die) else {
                detect(id, at: now, how: "control plane: no TE uses \(pod.dieName(die))", act: &act,
                       keptBecause: "nothing runs on the die now; a TE placed on it later would run at its pace")
                return
            }
            guard pod.isStepping(te) else { return }
            detect(id, at: now, how: "\(pod.name(of: te)): step timing in the heartbeat answers shows \(pod.dieName(die)) "
                + "\(OperatorCommand.format(factor))× slower than its peers (the barrier waits for it)", act: &act)
        case .link(let a, let b, let degrade):
            let paths = pod.kvPaths(joining: a, b)
            if paths.isEmpty {
                detect(id, at: now, how: "control plane: link \(pod.deviceName(a)) ↔ \(pod.deviceName(b)) carries no KV path", act: &act)
                if degrade == nil { act.finish([id], "no KV path uses the link; nothing to reroute") }
            } else if let degrade {
                detect(id, at: now, how: "KV probe \(pod.deviceName(a)) ↔ \(pod.deviceName(b)): answered \(OperatorCommand.format(degrade))× slower "
                    + "than baseline (link degraded)", act: &act)
            } else {
                // The first round after the link failed finds it, often less than an interval after
                // (rounds sit on the interval's grid, faults anywhere): "no answer within 1 s" read
                // "detected 0.642 s after injection" as a contradiction. The round's probe went
                // unanswered, no more is known.
                detect(id, at: now, how: "KV probe \(pod.deviceName(a)) ↔ \(pod.deviceName(b)): this round's probe got no answer (link blocked)",
                       act: &act)
                policy.recoverLink(id, paths: paths, kind: fault.kind, pod: pod, act: &act)
            }
        case .glitch:
            break
        }
    }

    /// Fault `id` is detected now (`how`) and logged; a performance fault is kept until healed.
    private func detect(_ id: Int, at now: SimTime, how: String, act: inout some HeartbeatActuator,
                        keptBecause: String = "performance fault; the policy does not isolate it") {
        markDetected(id, at: now, how: how)
        act.log(detectedEvent([id], how, at: now))
        if record(id)?.kind.isPerformance == true {
            noteRecovery(id, "kept until healed (\(keptBecause))")
        }
    }

    /// Probes answered while KV waits for decode room: delayed, not blocked — logged once per
    /// episode so operators see back-pressure is not a link fault.
    private func probeKVLinks(at now: SimTime, pod: some HeartbeatView, act: inout some HeartbeatActuator) {
        for d in 0..<pod.teCount where pod.role(of: d) == .decode {
            let waiting = pod.transfersWaiting(on: d)
            if probeKV(decode: d, waiting: waiting) {
                act.log(EngineEvent(time: now, kind: .info, message: "KV probes to \(pod.name(of: d)) answered: "
                    + "\(waiting) transfers delayed (decode saturated), not blocked"))
            }
        }
    }

    // MARK: Event lines

    /// The log line for faults `ids` detected at `now` (`message`: how), timed from the first's injection.
    func detectedEvent(_ ids: [Int], _ message: String, at now: SimTime) -> EngineEvent {
        let label = ids.count == 1 ? "fault \(ids[0])" : "faults \(ids.map(String.init).joined(separator: ", "))"
        return EngineEvent(time: now, kind: .faultDetected, severity: .warning,
                           message: "\(label) detected\(sinceInjection(ids[0], at: now)): \(message)")
    }

    /// The log line for fault `id` recovered at `now`.
    func recoveredEvent(_ id: Int, _ message: String, at now: SimTime) -> EngineEvent {
        EngineEvent(time: now, kind: .recovery, message: "fault \(id) recovered\(sinceInjection(id, at: now)): \(message)",
                    faultId: id)
    }

    /// " 3.00 s after injection", for the Events view's per-fault timing.
    private func sinceInjection(_ id: Int, at now: SimTime) -> String {
        guard let record = record(id) else { return "" }
        return " \(OperatorCommand.format(((now - record.injectedAt) * 1_000).rounded() / 1_000)) s after injection"
    }
}
