import PodModel
import SimKit

/// Expert routing, load and rebalancing inside the engine (issue 5): one traffic popularity for
/// the model, per-instance placements, a per-step aggregate imbalance that feeds the cost
/// model's barrier, and the EPLB controllers.
extension ServingEngine {
    /// Seconds of simulated time between drift and traffic-mix updates of expert popularity.
    static let expertDriftInterval: SimTime = 30

    func setUpExperts() {
        guard let moe = model.moe else { return }
        let shape = ModelSpecShape(moeLayers: model.moeLayers, experts: moe.routedExperts)
        let traffic = ExpertTraffic(shape: shape, seed: configuration.seed, skewed: configuration.expertSkew)
        expertTraffic = traffic
        for index in instances.indices {
            let spec = instances[index].groupSpec
            let dies = max(1, spec.ep - spec.sharedExpertDies)
            let slotsPerDie = max(1, spec.routedSlots(for: model) / dies)
            // "on" starts from a placement planned on profiled popularity; "off" from a static one.
            // (Planned once per shape: identical TEs get the same placement.)
            let placement = configuration.eplb == .on ? sharedPlan(traffic.popularity, dies, slotsPerDie) : nil
            instances[index].experts = ExpertRouting(popularity: traffic.popularity, dies: dies, slotsPerDie: slotsPerDie,
                                                     seed: configuration.seed &+ UInt64(index), placement: placement)
            // Only the first decode instance's per-expert counts feed the Experts view.
            instances[index].experts!.recordsHeat = index == instances.firstIndex(where: { $0.hasDecode })
            var controller = EPLBController(mode: configuration.eplb, policy: eplbPlanner,
                                            cost: instances[index].cost, start: 0)
            controller.intervalSeconds = configuration.eplbIntervalSeconds
            if placement != nil {
                controller.notePlanned(counts: traffic.popularity, imbalance: instances[index].experts!.expectedImbalance)
            }
            instances[index].eplb = controller
        }
    }

    /// The hottest expert die's load over the mean for one step of `tokens` routed tokens.
    func moeLoadFactor(_ index: Int, tokens: Double) -> Double {
        guard configuration.eplb != .perfect, instances[index].experts != nil else { return 1 }
        let factor = instances[index].experts!.stepLoadFactor(tokens: tokens, topK: model.moe?.topK ?? 8)
        if instances[index].role != .prefill {
            expertStats.factorSum += factor
            expertStats.steps += 1
            expertStats.intervalSum += factor
            expertStats.intervalSteps += 1
        }
        return factor
    }

    /// Adds a decode step's MoE part (gate and experts, dispatch, combine, summed over layers and
    /// microbatches: the work the expert barrier waits on) to the report's per-step figure.
    func noteDecodeMoE(_ index: Int, _ step: DecodeStepCost) {
        guard instances[index].role != .prefill else { return }
        expertStats.moeSeconds += step.breakdown.moe + step.breakdown.dispatch + step.breakdown.combine
        expertStats.stepSeconds += step.stepSeconds
        expertStats.moeSteps += 1
    }

    /// Telemetry-interval work: drift and traffic mix, EPLB cadence and swap phases, heat window.
    func expertsTick() {
        guard expertTraffic != nil else { return }
        if now - expertStats.lastDrift >= Self.expertDriftInterval {
            let elapsed = now - expertStats.lastDrift
            expertStats.lastDrift = now
            if !expertStats.classArrivals.isEmpty {
                expertTraffic!.setMix(expertStats.classArrivals)
                expertStats.classArrivals = [:]
            }
            expertTraffic!.advanceDrift(seconds: elapsed)
            expertStats.plans = [:]
            for index in instances.indices { instances[index].experts?.setPopularity(expertTraffic!.popularity) }
        }
        for index in instances.indices { advanceEPLB(index) }
        // The Experts view's heat: a window of counts every 10 ticks (5 simulated seconds).
        expertStats.ticks += 1
        if expertStats.ticks % 10 == 0 { closeHeatWindow() }
    }

    /// Takes the first decode instance's window of expert counts as the heat, unless it is empty.
    func closeHeatWindow() {
        guard let decode = instances.firstIndex(where: { $0.hasDecode }) else { return }
        guard let window = instances[decode].experts?.takeHeatWindow() else { return }
        if window.countedAny { expertStats.heat = window }
    }

    /// Counts an arrival's traffic class for the popularity mix (synthetic tags; traces have none).
    func noteTrafficClass(_ tag: String?) {
        guard let tag, expertTraffic != nil else { return }
        expertStats.classArrivals[tag, default: 0] += 1
    }

    func advanceEPLB(_ index: Int) {
        let te = instances[index]
        guard te.eplb != nil, te.experts != nil else { return }
        // Between its cadence and its swap phases the controller has nothing to do: no call (the
        // tick would change nothing). The controller and the routing are two stored properties
        // of the TE (a class), so the call updates both in place.
        if te.eplb!.isDue(now: now) {
            let outcomes = te.eplb!.tick(now: now, routing: &te.experts!, planner: sharedPlan)
            for outcome in outcomes { logRebalance(index, outcome) }
        }
        switch te.eplb!.phase {
        case .prefetch(let until, _, _), .load(let until, _, _, _):
            queue.schedule(at: max(now, until), .expertSwap(instance: index))
        case .idle:
            break
        }
    }

    /// The operator's `rebalance`: every MoE instance plans now.
    func rebalanceNow() -> CommandReply {
        guard expertTraffic != nil else { return CommandReply(accepted: false, message: "\(model.name) has no experts") }
        var started = 0
        var messages: [String] = []
        for index in instances.indices where instances[index].eplb != nil {
            let te = instances[index]
            let outcome = te.eplb!.requestRebalance(now: now, routing: &te.experts!, planner: sharedPlan)
            if outcome.started {
                started += 1
                logRebalance(index, outcome)
                advanceEPLB(index)
            } else if instances[index].hasDecode {
                messages.append(outcome.message)
            }
        }
        guard started > 0 else { return CommandReply(accepted: false, message: messages.first ?? "nothing to rebalance") }
        commandsApplied += 1
        return CommandReply(accepted: true, message: "rebalance started on \(started) instance(s)")
    }

    /// The configured policy's plan, computed once per popularity for each (dies, slots) shape:
    /// the prefill TEs of a group are identical and would plan the same placement.
    func sharedPlan(_ popularity: ExpertPopularity, _ dies: Int, _ slotsPerDie: Int) -> ExpertPlacement {
        let key = dies << 32 | slotsPerDie  // both bounded far below 2³²: no two shapes share a key
        if let cached = expertStats.plans[key], cached.popularity == popularity { return cached.placement }
        let placement: ExpertPlacement
        if eplbPlanner is GreedyEPLBPlanner {
            // The same plan, its sorts started from the last plan's orders (a value in the
            // engine's state, so a fork plans from its own copy).
            placement = .greedy(popularity: popularity, dies: dies, slotsPerDie: slotsPerDie,
                                orders: &expertStats.planningOrders)
        } else {
            placement = eplbPlanner.plan(popularity: popularity, dies: dies, slotsPerDie: slotsPerDie)
        }
        expertStats.plans[key] = (popularity, placement)
        return placement
    }

    private func logRebalance(_ index: Int, _ outcome: EPLBController.Outcome) {
        telemetry.log(EngineEvent(time: now, kind: .rebalance, message: "\(instances[index].name): \(outcome.message)"))
    }

    /// Rebalances finished by the decode side (the report's `experts.rebalances`).
    var decodeRebalances: Int {
        instances.filter(\.hasDecode).reduce(0) { $0 + ($1.eplb?.rebalances ?? 0) }
    }

    /// The Experts view's data, from the first decode instance.
    func expertSummary(dieLoads: [Double]? = nil) -> ExpertSummary {
        var summary = ExpertSummary()
        guard let decode = instances.firstIndex(where: { $0.hasDecode }), let routing = instances[decode].experts else {
            return summary
        }
        summary.imbalance = configuration.eplb == .perfect ? 1 : routing.expectedImbalance
        summary.rebalances = decodeRebalances
        summary.rebalanceInProgress = instances[decode].eplb.map { $0.phase != .idle } ?? false
        summary.loadingDies = instances[decode].eplb?.loadingDies ?? []
        summary.dieLoad = dieLoads ?? routing.dieLoads()
        if expertStats.moeSteps > 0 { summary.moeMsPerStep = expertStats.moeSeconds / Double(expertStats.moeSteps) * 1e3 }
        // Heat: the last window's counts, relative to each layer's mean.
        let heat = expertStats.heat.isEmpty ? routing.popularity.layers : expertStats.heat.counts
        summary.heat = heat.map { row in
            let mean = row.reduce(0, +) / Double(max(1, row.count))
            return row.map { mean > 0 ? $0 / mean : 0 }
        }
        var hottest: [HotExpert] = []
        for (l, row) in summary.heat.enumerated() {
            for (e, load) in row.enumerated() where load > 2 { hottest.append(HotExpert(layer: l, expert: e, load: load)) }
        }
        summary.hottest = Array(hottest.sorted { ($0.load, $1.layer, $1.expert) > ($1.load, $0.layer, $0.expert) }.prefix(12))
        return summary
    }
}
