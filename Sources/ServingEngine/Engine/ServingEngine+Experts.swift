import PodModel
import SimKit

/// The engine's side of the expert system (issue 5; the state is ``ExpertSystem``'s): what it
/// needs to know about each TE, the calls from the step loop, the telemetry tick and the
/// operator's `rebalance`, and the event-log lines the expert system returns.
extension ServingEngine {
    func setUpExperts() {
        guard let moe = model.moe else { return }
        experts.start(shape: ModelSpecShape(moeLayers: model.moeLayers, experts: moe.routedExperts),
                      seed: configuration.seed, skewed: configuration.expertSkew, hosts: instances.map(expertHost))
    }

    /// TE `te` as the expert system sees it: routed-expert dies, slots per die, cost, role.
    func expertHost(_ te: InstanceState) -> ExpertSystem.Host {
        let spec = te.groupSpec
        let dies = max(1, spec.ep - spec.sharedExpertDies)
        let slotsPerDie = max(1, spec.routedSlots(for: model) / dies)
        return ExpertSystem.Host(dies: dies, slotsPerDie: slotsPerDie, cost: te.cost, decodes: te.hasDecode)
    }

    /// The routing and the step pricing of each decode TE follow its vertical shrink: the routed
    /// expert dies it runs without (known dead, not yet healed or replaced) serve no token, their
    /// replicas' tokens going to the experts' other replicas (system.md §4: the shrink keeps at
    /// least one replica of every expert and drops the excess ones on the lost dies). The routing
    /// kept the pre-shrink layout: a hot expert's tokens were still split with its replica on a
    /// lost die, so the hottest die was priced lighter than it was. Called whenever the fault
    /// state changes (a shrink, a heal, an NPU replaced).
    func followShrinks() {
        guard experts.hasExperts else { return }
        for i in instances.indices where instances[i].role == .decode {
            let spec = instances[i].groupSpec
            let routed = spec.ep - spec.sharedExpertDies
            let indices = cluster.deadExpertIndices(of: i, dead: faults.knownDead)
            let lost = indices.filter { $0 < routed }.sorted()
            instances[i].lostRoutedDies = lost.count
            instances[i].lostSharedDies = indices.count - lost.count
            experts.setLostDies(i, lost)
        }
    }

    /// Adds a decode step's MoE part (gate and experts, dispatch, combine, summed over layers and
    /// microbatches: the work the expert barrier waits on) to the report's per-step figure.
    func noteDecodeMoE(_ index: Int, _ step: DecodeStepCost) {
        guard instances[index].role != .prefill else { return }
        experts.noteDecodeMoE(moeSeconds: step.breakdown.moe + step.breakdown.dispatch + step.breakdown.combine,
                              stepSeconds: step.stepSeconds)
    }

    /// Telemetry-interval work: drift and traffic mix, EPLB cadence and swap phases, heat window.
    func expertsTick() {
        logRebalances(experts.tick(now: now, queue: &queue, halted: faults.isHalted, blocked: cadenceBlocker))
    }

    /// Counts an arrival's traffic class for the popularity mix (synthetic tags; traces have none).
    func noteTrafficClass(_ tag: String?) {
        experts.noteArrival(tag: tag)
    }

    /// An `.expertSwap` event: TE `index`'s swap phase may end now.
    func advanceEPLB(_ index: Int) {
        logRebalances(experts.advanceSwap(index, now: now, queue: &queue, halted: faults.isHalted))
    }

    /// The operator's `rebalance`: every MoE instance plans now.
    func rebalanceNow() -> CommandReply {
        guard experts.hasExperts else { return CommandReply(accepted: false, message: "\(model.name) has no experts") }
        // A TE out of service (restarting, copying weights onto spares, awaiting repair, killed,
        // paused for a drain's migration) runs no step and cannot move experts: it used to start
        // and finish a swap during a world restart ("decode-0: rebalance done in 0.02 s: served
        // imbalance 3.96 → 1.16", counted in `experts.rebalances`) on a TE that served nothing.
        let reply = experts.rebalanceNow(now: now, queue: &queue) { i in rebalanceBlocker(i) }
        logRebalances(reply.lines)
        guard reply.started > 0 else {
            // Every decode TE's placement is already the plan of its counts: nothing is wrong and
            // nothing was refused, so it is answered and logged at info (it was a WARN "refused"
            // line and a failed command, as for a bad one). It changes nothing: no command counted.
            if reply.refusals.isEmpty, let first = reply.nothingToGain.first {
                let figures = first.hasPrefix("rebalance skipped: ") ? String(first.dropFirst("rebalance skipped: ".count)) : first
                let message = "rebalance: nothing to gain: \(figures)"
                telemetry.log(EngineEvent(time: now, kind: .rebalance, message: message))
                return CommandReply(accepted: true, message: message)
            }
            return CommandReply(accepted: false, message: reply.refusals.first ?? "nothing to rebalance")
        }
        commandsApplied += 1
        // A decode TE left out says so (the prefill TEs starting hid a stalled decode TE's refusal).
        for why in reply.refusals { telemetry.log(EngineEvent(time: now, kind: .rebalance, severity: .warning, message: "rebalance: \(why)")) }
        let skipped = reply.refusals.isEmpty ? "" : "; left out: " + reply.refusals.joined(separator: "; ")
        return CommandReply(accepted: true, message: "rebalance started on \(Self.counted(reply.started, "instance"))" + skipped)
    }

    /// Why TE `i` cannot move experts now (nil: it can). Besides an outage, a TE holding a dead
    /// die cannot: while the fault is undetected its barrier is stalled (a swap "done" there served
    /// nothing), and the planner spreads experts over every die of the TE, the dead ones included
    /// (a rebalance issued 0.1 s after `fault die 5` logged "rebalance done … 3.96 → 1.16" with
    /// experts placed on die 5).
    func rebalanceBlocker(_ i: Int) -> String? {
        let name = instances[i].name
        if faults.hasOutage(i) {
            return "\(name) is out of service (fault recovery or a drain's migration); rebalance it when it is back"
        }
        let dead = deadDiesAPlanWouldUse(i)
        guard !dead.isEmpty else { return nil }
        let dies = (dead.count == 1 ? "die " : "dies ") + dead.map(String.init).joined(separator: ", ")
        if faults.isSilent(i) {
            let settings = configuration.faults
            let within = Double(settings.missedHeartbeatsToDeclare) * settings.heartbeatIntervalSeconds
            return "\(name) is stalled by a fault on \(dies) not yet detected (detection takes up to "
                + "\(OperatorCommand.format(within)) s of silent heartbeats); a plan now would place experts on the dead "
                + "\(dead.count == 1 ? "die" : "dies"): rebalance it once recovery has run"
        }
        return "\(name) holds dead \(dies) (recovery runs it without them until they are healed); a plan now would place "
            + "experts on them: rebalance it after `heal`"
    }

    /// TE `i`'s dead dies that stop it moving experts (``rebalanceBlocker(_:)``, ``cadenceBlocker(_:)``):
    /// every dead die while the TE is out of service or stalled by the fault; once a decode TE
    /// serves again (shrunk around them), only its dead routed-expert dies, as the planner places
    /// no routed expert on a shared-expert die (npu-loss's NPU 280: `rebalance` said "a plan now
    /// would place experts on them" of two shared-expert dies, and refused).
    func deadDiesAPlanWouldUse(_ i: Int) -> [Int] {
        let dead = cluster.dies(of: i).filter(faults.isDead)
        guard !dead.isEmpty, instances[i].role == .decode, !faults.hasOutage(i), !faults.isSilent(i) else { return dead }
        let spec = instances[i].groupSpec
        let routed = spec.ep - spec.sharedExpertDies
        return dead.filter { die in cluster.expertSlots[die].map { $0.instance == i && $0.index < routed } ?? false }
    }

    /// Why the automatic EPLB cadence skips TE `i` now (nil: it plans as usual): the TE holds a
    /// dead die, known or not, and is out of service, stalled by it (a swap started there serves
    /// nothing), or runs with it among its routed-expert dies: the planner spreads experts over
    /// every routed die, so a plan now would put experts on the dead ones (a TE back from a
    /// restart without a spare). A decode TE shrunk around dead shared-expert dies still plans:
    /// the planner places no routed expert there (npu-loss's NPU 280).
    func cadenceBlocker(_ i: Int) -> String? {
        let dead = deadDiesAPlanWouldUse(i)
        guard !dead.isEmpty else { return nil }
        let name = instances[i].name
        let dies = (dead.count == 1 ? "die " : "dies ") + dead.map(String.init).joined(separator: ", ")
        let onThem = "a plan now would place experts on the dead \(dead.count == 1 ? "die" : "dies")"
        if faults.hasOutage(i) { return "\(name) is out of service with dead \(dies) (fault recovery); \(onThem)" }
        if faults.isSilent(i) { return "\(name) is stalled by a fault on \(dies) not yet detected; \(onThem)" }
        return "\(name) holds dead \(dies) until healed or replaced; \(onThem)"
    }

    /// The fault state changed: a swap under way stops while its TE serves nothing and goes on
    /// when it serves again, or is abandoned when recovery changes the TE's dies. Its phase clock
    /// ran on: a swap whose die died 5 ms in logged "decode-0: rebalance done in 0.02 s" while
    /// decode-0 was stalled (the fault detected 3 s later) and counted in `experts.rebalances`.
    func followSwaps() {
        guard experts.hasSwaps else { return }
        logRebalances(experts.followHalts(now: now, queue: &queue, halted: faults.isHalted, abandon: swapAbandonReason))
    }

    /// Why TE `i`'s swap cannot go on (nil: it can, held while the TE serves nothing): the plan was
    /// for its dies as they were, and recovery is changing them, or reloading its weights.
    func swapAbandonReason(_ i: Int) -> String? {
        let name = instances[i].name
        switch faults.outage(of: i) {
        case .restarting?: return "\(name) restarts (its weights are loaded afresh)"
        case .forking(_, let spares)?: return "an NPU-fork replaces \(devices(spares.keys.sorted())) of \(name)"
        case .awaitingRepair?: return "\(name) is out of service until its dead \(hardware.dieWord)s are repaired"
        case .killed?: return "\(name) was killed to give its NPUs to decode"
        case .migrating?, nil: break
        }
        // Detected dead dies: recovery runs the TE without them (a vertical shrink, or back from
        // a restart with no spare), so the plan's placement on them would be wrong.
        let dead = cluster.dies(of: i).filter(faults.knownDead.contains)
        guard !dead.isEmpty else { return nil }
        return "\(name) lost dead \(dead.count == 1 ? "die" : "dies") \(dead.map(String.init).joined(separator: ", "))"
    }

    private func logRebalances(_ lines: [ExpertSystem.Rebalance]) {
        for line in lines {
            telemetry.log(EngineEvent(time: now, kind: .rebalance, severity: line.warning ? .warning : .info,
                                      message: "\(instances[line.instance].name): \(line.message)"))
        }
    }

    /// Rebalances finished by the decode side (the report's `experts.rebalances`).
    var decodeRebalances: Int { experts.decodeRebalances }

    /// The snapshot's `experts.placementFixed` without building a snapshot: one expert per routed
    /// die and no redundant slot, so EPLB on has nothing to move (`xds run`'s summary line asks
    /// this once at the end; a whole snapshot for one flag cost ~1% of a run's instructions).
    public var expertPlacementFixed: Bool { experts.placementFixed }

    /// The Experts view's data, from the first decode instance.
    func expertSummary(dieLoads: [Double]? = nil) -> ExpertSummary {
        experts.summary(dieLoads: dieLoads)
    }
}
