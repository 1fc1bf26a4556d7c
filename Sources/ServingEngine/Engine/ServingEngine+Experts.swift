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

    /// The hottest expert die's load over the mean for one step of `tokens` routed tokens.
    @inline(__always)
    func moeLoadFactor(_ index: Int, tokens: Double) -> Double {
        experts.loadFactor(index, tokens: tokens)
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
        logRebalances(experts.tick(now: now, queue: &queue))
    }

    /// Counts an arrival's traffic class for the popularity mix (synthetic tags; traces have none).
    func noteTrafficClass(_ tag: String?) {
        experts.noteArrival(tag: tag)
    }

    /// An `.expertSwap` event: TE `index`'s swap phase may end now.
    func advanceEPLB(_ index: Int) {
        logRebalances(experts.advanceSwap(index, now: now, queue: &queue))
    }

    /// The operator's `rebalance`: every MoE instance plans now.
    func rebalanceNow() -> CommandReply {
        guard experts.hasExperts else { return CommandReply(accepted: false, message: "\(model.name) has no experts") }
        // A TE out of service (restarting, copying weights onto spares, awaiting repair, killed,
        // paused for a drain's migration) runs no step and cannot move experts: it used to start
        // and finish a swap during a world restart ("decode-0: rebalance done in 0.02 s: served
        // imbalance 3.96 → 1.16", counted in `experts.rebalances`) on a TE that served nothing.
        let reply = experts.rebalanceNow(now: now, queue: &queue) { i in
            faults.hasOutage(i) ? "\(instances[i].name) is out of service (fault recovery or a drain's migration); rebalance it when it is back" : nil
        }
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
        return CommandReply(accepted: true, message: "rebalance started on \(Self.counted(reply.started, "instance"))")
    }

    private func logRebalances(_ lines: [ExpertSystem.Rebalance]) {
        for line in lines {
            telemetry.log(EngineEvent(time: now, kind: .rebalance, message: "\(instances[line.instance].name): \(line.message)"))
        }
    }

    /// Rebalances finished by the decode side (the report's `experts.rebalances`).
    var decodeRebalances: Int { experts.decodeRebalances }

    /// The Experts view's data, from the first decode instance.
    func expertSummary(dieLoads: [Double]? = nil) -> ExpertSummary {
        experts.summary(dieLoads: dieLoads)
    }
}
