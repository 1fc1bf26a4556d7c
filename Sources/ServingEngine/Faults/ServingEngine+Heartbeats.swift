import SimKit

/// Detection (system.md §4 "Faults"): multi-tier heartbeats — the control plane pings each
/// TE-shell, the TE-shell pings its DP masters — once per interval, one round for the whole pod
/// (a single event, linear in TEs, not in dies). A DP master answers only while its loop is
/// live, so a die dead inside a barrier shows up as its whole TE going silent; after
/// ``FaultSettings/missedHeartbeatsToDeclare`` silent rounds the TE-shell checks its devices and
/// names the dead die. KV links are probed with dummy payloads: an unanswered probe means the
/// link is blocked (dead), an answered one while transfers wait means decode is saturated
/// (delayed).
extension ServingEngine {
    func heartbeatRound() {
        let settings = configuration.faults
        scheduleHeartbeatRound(at: now.after(settings.heartbeatIntervalSeconds))
        // Tier 2–3: TE-shells and DP masters.
        for i in instances.indices {
            if let rounds = faults.heartbeat(instance: i) { detectStalled(instance: i, rounds: rounds) }
        }
        // Faults that do not stall a barrier answer (or fail to) on the first round.
        for index in faults.records.indices where faults.records[index].active && faults.records[index].detectedAt == nil {
            detectWithoutStall(faults.records[index].id)
        }
        probeKVLinks()
        announceDrainedNodes()
    }

    /// Every DP master of the TE has been silent for `rounds` rounds: a collective is hung. The
    /// TE-shell's device check finds the dead dies; recovery starts.
    private func detectStalled(instance i: Int, rounds: Int) {
        let (found, dies) = faults.detectDead(stalling: i, at: now, how: "\(instances[i].name): DP masters silent for "
            + "\(rounds) heartbeats (stuck in a collective); device check finds the dead dies")
        guard !found.isEmpty else { return }
        let masters = instances[i].dp.filter { !$0.outOfService }.count
        logDetected(found, "\(instances[i].name): \(masters) DP masters silent for \(rounds) heartbeats "
            + "(\(Int(saturating: configuration.faults.heartbeatIntervalSeconds * Double(rounds) * 1_000)) ms, stuck in a collective); "
            + "device check: dies \(dies.filter(faults.isDead).map(String.init).joined(separator: ", ")) dead")
        faults.learnDead(dies)
        recoverDead(instance: i, faults: found)
        // Other TEs stalled by the same fault are told by the control plane at once.
        for other in instances.indices where other != i {
            let stalledToo = found.contains { id in faults.record(id)?.stalled.contains(other) ?? false }
            if stalledToo { recoverDead(instance: other, faults: found) }
        }
    }

    private func detectWithoutStall(_ id: Int) {
        guard let record = faults.record(id) else { return }
        switch record.kind {
        case .dead(let dies):
            guard record.stalled.isEmpty else { return }
            faults.learnDead(dies)
            faults.markDetected(id, at: now, how: "control plane: node agent reports the devices dead")
            faults.markRecovered(id, at: now)
            faults.noteRecovery(id, "no traffic on it (spare, drained or already out of service)")
            logDetected([record.id], "control plane: \(record.label) reported by the node agent; no TE uses it")
            logRecovered(record.id, "nothing to move: the hardware carried no traffic")
            refreshFaultState()
        case .hbm(let die):
            faults.markDetected(id, at: now, how: "DP master reports an uncorrectable ECC error in its heartbeat answer")
            logDetected([record.id], "die \(die): uncorrectable ECC error reported by its DP master")
            recoverHBM(id, die: die)
        case .straggler(let die, let factor):
            guard let (i, _) = locate(die: die) else {
                markDetected(id, "control plane: no TE uses die \(die)")
                return
            }
            guard instances[i].stepping else { return }
            markDetected(id, "\(instances[i].name): step timing in the heartbeat answers shows die \(die) "
                + "\(OperatorCommand.format(factor))× slower than its peers (the barrier waits for it)")
        case .link(let a, let b, let degrade):
            let paths = channels.indices.filter { linkJoins(a, b, channels[$0].prefillInstance, channels[$0].decodeInstance) }
            if paths.isEmpty {
                markDetected(id, "control plane: link NPU \(a) ↔ NPU \(b) carries no KV path")
                if degrade == nil { finish([record.id], (0, 0), "no KV path uses the link; nothing to reroute") }
            } else if let degrade {
                markDetected(id, "KV probe NPU \(a) ↔ NPU \(b): answered \(OperatorCommand.format(degrade))× slower than "
                    + "baseline (link degraded)")
            } else {
                markDetected(id, "KV probe NPU \(a) ↔ NPU \(b): no answer within \(OperatorCommand.format(configuration.faults.heartbeatIntervalSeconds)) s (link blocked)")
                rerouteLink(id, paths: paths)
            }
        case .glitch:
            break
        }
    }

    private func markDetected(_ id: Int, _ how: String) {
        faults.markDetected(id, at: now, how: how)
        logDetected([id], how)
        if faults.record(id)?.kind.isPerformance == true {
            faults.noteRecovery(id, "kept until healed (performance fault; the policy does not isolate it)")
        }
    }

    /// Probes answered while KV waits for decode room: delayed, not blocked — logged once per
    /// episode so operators see back-pressure is not a link fault.
    private func probeKVLinks() {
        for d in instances.indices where instances[d].role == .decode {
            let waiting = instances[d].decode?.transferQueue.count ?? 0
            if faults.probeKV(decode: d, waiting: waiting) {
                telemetry.log(EngineEvent(time: now, kind: .info, message: "KV probes to \(instances[d].name) answered: "
                    + "\(waiting) transfers delayed (decode saturated), not blocked"))
            }
        }
    }

    func logDetected(_ ids: [Int], _ message: String) {
        let label = ids.count == 1 ? "fault \(ids[0])" : "faults \(ids.map(String.init).joined(separator: ", "))"
        telemetry.log(EngineEvent(time: now, kind: .faultDetected, severity: .warning,
                                  message: "\(label) detected\(sinceInjection(ids[0])): \(message)"))
    }

    func logRecovered(_ id: Int, _ message: String) {
        telemetry.log(EngineEvent(time: now, kind: .recovery, message: "fault \(id) recovered\(sinceInjection(id)): \(message)"))
    }

    /// " 3.00 s after injection", for the Events view's per-fault timing.
    private func sinceInjection(_ id: Int) -> String {
        guard let record = faults.record(id) else { return "" }
        return " \(OperatorCommand.format(((now - record.injectedAt) * 1_000).rounded() / 1_000)) s after injection"
    }
}
