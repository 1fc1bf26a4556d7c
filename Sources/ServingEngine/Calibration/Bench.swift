import Foundation
import PodModel
import SimKit

/// Where the routing skew of a fixed-batch benchmark comes from.
public enum RoutingSkew: String, Sendable, CaseIterable, Codable {
    /// Expected loads are even; EPLB modes differ only by how the redundant slots split the load
    /// (an idealised routing, for comparison).
    case balanced
    /// system.md §4/§4b's measured DeepSeek-R1 skew as a per-layer distribution
    /// (``ExpertPopularity/skewed(model:shape:using:)``): the default, as the papers measured with
    /// real traffic and their real, imperfect EPLB.
    case skewed
}

/// The operating points of `xds bench decode` / `xds bench prefill`: fixed batch, ignore-EOS,
/// every request at the same context, as the papers measure.
///
/// ```swift
/// let r = try Bench.decode(deployment: .cloudMatrixInfer, batchPerDie: 96, context: 4096, mtpAcceptance: 0.7)
/// print(r.tpotMs, r.tokensPerSecondPerNPU)
/// ```
public enum Bench {
    public struct DecodeResult: Sendable, Codable, Equatable {
        public var stepMs: Double
        public var layerMs: Double
        public var tpotMs: Double
        public var tokensPerStep: Double
        /// Per logical NPU: the papers count each 910C die as an NPU, as CANN presents it.
        public var tokensPerSecondPerNPU: Double
        public var tokensPerSecondPerChip: Double
        public var breakdownMs: Breakdown
        public var moeLoadFactor: Double
        /// The expert settings priced with; nil (JSON null) on a dense model, which has no experts
        /// to balance or route (its JSON said "on" and "skewed").
        @NullWhenAbsent public var eplb: EPLBMode?
        @NullWhenAbsent public var routing: RoutingSkew?
        public var deployment: String
        public var batchPerDie: Double
        public var context: Double
        /// Microbatches per step the scheduler chose (or the caller fixed).
        public var microbatches: Int
        /// The spread of KV lengths inside a DP group's batch (an attention die's in a MoE–attention
        /// layout) the barrier was priced with (``CostConstants/contextSpread`` unless `--context-cv`
        /// set it; 0 for a dense model, whose groups meet at no barrier).
        public var contextCV: Double = 0

        enum CodingKeys: String, CodingKey {
            case stepMs = "step_ms", layerMs = "layer_ms", tpotMs = "tpot_ms", tokensPerStep = "tokens_per_step"
            case tokensPerSecondPerNPU = "tokens_per_s_per_npu", tokensPerSecondPerChip = "tokens_per_s_per_chip"
            case breakdownMs = "breakdown_ms", moeLoadFactor = "moe_load_factor", eplb, routing, deployment
            case batchPerDie = "batch_per_die", context, microbatches
            case contextCV = "context_cv"
        }
    }

    public struct PrefillResult: Sendable, Codable, Equatable {
        public var batchMs: Double
        public var tokensPerSecondPerNPU: Double
        public var tokensPerSecondPerChip: Double
        public var breakdownMs: Breakdown
        public var moeLoadFactor: Double
        /// nil (JSON null) on a dense model, as ``DecodeResult/eplb``.
        @NullWhenAbsent public var eplb: EPLBMode?
        @NullWhenAbsent public var routing: RoutingSkew?
        public var deployment: String
        public var promptLen: Double
        public var tokensPerNPU: Double

        enum CodingKeys: String, CodingKey {
            case batchMs = "batch_ms", tokensPerSecondPerNPU = "tokens_per_s_per_npu"
            case tokensPerSecondPerChip = "tokens_per_s_per_chip", breakdownMs = "breakdown_ms"
            case moeLoadFactor = "moe_load_factor", eplb, routing, deployment
            case promptLen = "prompt_len", tokensPerNPU = "tokens_per_npu"
        }
    }

    public struct Breakdown: Sendable, Codable, Equatable {
        public var attention: Double, moe: Double, dispatch: Double, combine: Double, other: Double
        init(_ b: StepBreakdown) {
            attention = b.attention * 1e3
            moe = b.moe * 1e3
            dispatch = b.dispatch * 1e3
            combine = b.combine * 1e3
            other = b.other * 1e3
        }
    }

    /// Hottest-die load over the mean for `dies` expert dies with `slotsPerDie` slots each, for one
    /// draw of system.md's skew distribution (EPLB on is the greedy planner of system.md §4 over that
    /// popularity with the deployment's redundant slots): averaged over MoE layers (`mean`) and layer
    /// by layer (`perLayer`; nil under perfect balance): each layer's barrier waits for its own hottest die.
    static func moeLoad(model: ModelSpec, dies: Int, slotsPerDie: Int, eplb: EPLBMode, routing: RoutingSkew,
                        seed: UInt64) -> (mean: Double, perLayer: [Double]?) {
        guard let moe = model.moe, eplb != .perfect, dies > 0 else { return (1, nil) }
        let shape = ModelSpecShape(moeLayers: model.moeLayers, experts: moe.routedExperts)
        var rng = RandomStreams(seed: seed).stream("expert-popularity")
        let served = routing == .skewed
            ? ExpertPopularity.skewed(model: shape, using: &rng)
            : ExpertPopularity.uniform(layers: model.moeLayers, experts: moe.routedExperts)
        let placement = eplb == .on
            ? ExpertPlacement.greedy(popularity: served, dies: dies, slotsPerDie: slotsPerDie)
            : ExpertPlacement.roundRobin(experts: moe.routedExperts, layers: model.moeLayers, dies: dies,
                                         slotsPerDie: slotsPerDie)
        let perLayer = placement.hottestShares(popularity: served).map { $0 * Double(dies) }
        return (placement.imbalance(popularity: served), perLayer)
    }

    /// `load` as a live run's step was priced (`--moe-load-factor`, nil: `load` as planned): the
    /// hottest expert die's load over the mean (`decode_batch_at_end.moe_load_factor`), or that
    /// for equal groups of MoE layers in load order (`moe_load_factors`). The engine's EPLB plans
    /// from the last window's counts while the hot experts move, so its balance swings between a
    /// fresh plan's (the bench's own, planned on the very popularity it prices) and a stale one's,
    /// whose few layers with a hot expert it did not replicate cost more than their share of the
    /// mean (a layer's time is convex in its load). One factor keeps each layer's place in the
    /// draw: its excess over 1 scaled so that the layers' mean is `factor`, no layer below 1 (an
    /// even spread where the draw has no excess). Several are priced as given, a group each.
    static func given(_ factors: [Double]?, over load: (mean: Double, perLayer: [Double]?), dies: Int, model: ModelSpec,
                      eplb: EPLBMode) throws -> (mean: Double, perLayer: [Double]?) {
        guard let factors else { return load }
        try check(model.isMoE, "--moe-load-factor: \(model.name) is a dense model; it has no experts to balance")
        try check(eplb != .perfect, "--moe-load-factor: --eplb perfect prices perfectly balanced experts (a factor of 1); "
            + "give one or the other")
        try check(!factors.isEmpty && factors.count <= model.moeLayers,
                  "--moe-load-factor takes one factor, or one per group of MoE layers (at most \(model.name)'s "
                  + "\(model.moeLayers)), got \(factors.count)")
        // A die cannot carry more than every token-expert pair of the step: at most `dies` times the mean.
        for factor in factors {
            try check(factor.isFinite && factor >= 1 && factor <= Double(dies),
                      "--moe-load-factor must be between 1 (perfect balance) and \(dies) (every pair on one of the \(dies) "
                      + "routed expert dies), got \(OperatorCommand.format(factor))")
        }
        let mean = factors.reduce(0, +) / Double(factors.count)
        guard factors.count == 1 else { return (mean, factors) }
        guard let layers = load.perLayer, load.mean > 1 else {
            return (mean, load.perLayer.map { Array(repeating: mean, count: $0.count) })
        }
        let stretch = (mean - 1) / (load.mean - 1)
        return (mean, layers.map { 1 + max(0, $0 - 1) * stretch })
    }

    /// Decimal places of `--batch-per-die`, an average of requests per die over the instance's DP
    /// groups and their dies, and of the batch `xds run`'s summary names (``batchPerDieText(_:)``).
    public static let batchPerDieDecimals = 4

    /// A batch per die as `bench decode --batch-per-die` takes it: to ``batchPerDieDecimals`` places,
    /// a whole number as one (`96`, `0.5`, `5.1875`); never 0 (a batch ran).
    public static func batchPerDieText(_ requestsPerDie: Double) -> String {
        let unit = pow(10, Double(batchPerDieDecimals))
        return OperatorCommand.format(max(1, (requestsPerDie * unit).rounded()) / unit)
    }

    /// The largest `--context-cv`: KV lengths spread three times their mean is past any traffic
    /// (a saturated superpod's reasoning mix gives about 1).
    public static let maxContextCV = 3.0

    /// The most requests per die the deployment's engine decodes at once (its decode batch limit,
    /// per DP group, over the dies of a group), nil when it sets none. `bench decode` and the
    /// sweep price any batch; past this one the engine never runs, and they say so.
    public static func decodeBatchLimitPerDie(_ deployment: Deployment) -> Double? {
        if let ma = deployment.moeAttention { return ma.batchLimit > 0 ? Double(ma.batchLimit) : nil }
        guard let g = deployment.group(.decode) ?? deployment.group(.colocated), g.batchLimit > 0 else { return nil }
        return Double(g.batchLimit) / Double(max(1, g.tp))
    }

    public static func decode(deployment: Deployment, batchPerDie: Double, context: Double, mtpAcceptance: Double,
                              eplb: EPLBMode = .on, routing: RoutingSkew = .skewed, microbatches: Int? = nil,
                              seed: UInt64 = 1, contextCV: Double? = nil, moeLoadFactor: [Double]? = nil) throws -> DecodeResult {
        try check(batchPerDie > 0, "--batch-per-die must be positive, got \(batchPerDie)")
        if let contextCV {
            try check((0...Self.maxContextCV).contains(contextCV),
                      "--context-cv must be within 0…\(OperatorCommand.format(Self.maxContextCV)), got \(contextCV)")
        }
        // A decode request holds its prompt's KV, one token at least: a step over none is no one's.
        try check(context >= 1, "--context must be at least 1 token (a decode request holds its prompt's KV), got \(context)")
        try check((0...1).contains(mtpAcceptance), "--mtp-acceptance must be within 0…1, got \(mtpAcceptance)")
        // Each microbatch is a share of the die's requests: two need two requests at least.
        if let microbatches {
            try check(batchPerDie >= Double(microbatches), "--microbatches \(microbatches) needs at least \(microbatches) requests "
                + "per die to split, got --batch-per-die \(OperatorCommand.format(batchPerDie))")
        }
        try deployment.validate()
        let model = try deployment.modelSpec(), hw = try deployment.hardwareProfile()
        let cost = CostModel(model: model, hardware: hw)
        let step: DecodeStepCost
        let activeDies: Double, allDies: Double, factor: Double
        // A spread of KV lengths shows only where DP groups meet at a barrier: dispatch in a
        // colocated layout, A2E in a MoE–attention one. A dense model's groups wait for no one.
        let spreads = model.isMoE
        if contextCV != nil && !spreads {
            throw ConfigError("--context-cv: the bench prices a dense model's DP groups as identical (no dispatch "
                + "barrier waits across them), so a spread of KV lengths changes nothing there")
        }
        let spread = spreads ? contextCV ?? cost.constants.contextSpread : 0
        // A dense step has no dispatch or combine for a second microbatch to overlap: the scheduler
        // runs one, and `--microbatches 2` was priced as one while the result said 2.
        if let microbatches, microbatches != 1, !model.isMoE {
            throw ConfigError("--microbatches \(microbatches): \(model.name) is a dense model; its step has no expert "
                + "dispatch or combine for a second microbatch to overlap, so it runs as one; omit --microbatches (or give 1)")
        }
        if let ma = deployment.moeAttention {
            // The layout fixes its microbatches (its TOML's moe_attention.microbatches): another
            // count was ignored without a word.
            if let microbatches, microbatches != ma.microbatches {
                throw ConfigError("--microbatches \(microbatches): deployment '\(deployment.name)' disaggregates MoE and "
                    + "attention with \(ma.microbatches) microbatches fixed by its layout (moe_attention.microbatches "
                    + "in its TOML); omit --microbatches or change the layout")
            }
            try checkHoldsARequest(batchPerDie, dies: ma.attentionDies, of: "attention", deployment, hw)
            let routed = ma.expertDies - ma.sharedExpertDies
            let slotsPerDie = max(1, (model.moe?.routedExperts ?? 0) / max(1, routed))
            let load = try given(moeLoadFactor, over: moeLoad(model: model, dies: routed, slotsPerDie: slotsPerDie, eplb: eplb,
                                                              routing: routing, seed: seed), dies: routed, model: model, eplb: eplb)
            factor = load.mean
            var input = MoEAttentionStepInput(requestsPerDie: slowestGroupRequests(batchPerDie), contextTokens: context,
                                              mtpAcceptance: mtpAcceptance, moeLoadFactor: factor)
            input.meanRequestsPerDie = batchPerDie
            // Each layer waits for its own hottest expert die, as in the engine, and A2E for the
            // slowest attention die: a fixed batch is not identical dies (as for DP groups below).
            input.moeLoadFactorPerLayer = load.perLayer
            input.contextSpread = spread
            // That die's KV is the one that must fit: it holds more than the mean's.
            try checkAttentionHBM(model: model, hardware: hw, batchPerDie: batchPerDie, context: context,
                                  priced: PricedGroup(context: cost.slowestAttentionDieContext(ma, input), spread: spread,
                                                      name: "the slowest attention die (of \(ma.attentionDies))"))
            step = cost.decodeStepMoEAttention(ma, input)
            activeDies = Double(ma.attentionDies)
            allDies = Double(ma.attentionDies + ma.expertDies)
        } else {
            guard let g = deployment.group(.decode) ?? deployment.group(.colocated) else {
                throw ConfigError("deployment '\(deployment.name)' has no decode or colocated instance to bench")
            }
            try checkHoldsARequest(batchPerDie, dies: g.dp * g.tp, of: "decode", deployment, hw)
            let routedDies = g.ep - g.sharedExpertDies
            let slots = g.routedSlots(for: model)
            let load = try given(moeLoadFactor, over: moeLoad(model: model, dies: routedDies,
                                                              slotsPerDie: max(1, slots / max(1, routedDies)), eplb: eplb,
                                                              routing: routing, seed: seed),
                                 dies: routedDies, model: model, eplb: eplb)
            factor = load.mean
            let perGroup = batchPerDie * Double(g.tp)
            var input = DecodeStepInput(requestsPerGroup: model.isMoE ? slowestGroupRequests(perGroup) : perGroup,
                                        contextTokens: context, mtpAcceptance: mtpAcceptance, dpGroups: g.dp,
                                        expertDies: g.ep, routedSlots: slots, sharedExpertDies: g.sharedExpertDies,
                                        moeLoadFactor: factor)
            input.attentionTP = g.tp
            input.requestsPerInstance = perGroup * Double(g.dp)
            // A fixed batch is not identical groups: each group's requests spread around the
            // context, and dispatch waits for the slowest group (system.md §1.3). A dense model
            // has no dispatch: its groups wait for no one.
            input.contextSpread = spread
            input.microbatches = microbatches
            input.moeLoadFactorPerLayer = load.perLayer
            // The KV that must fit is the slowest group's, priced above the mean context: the
            // mean's let through batches whose slowest group's die cannot hold its requests.
            try checkHBM(model: model, hardware: hw, group: g, batchPerDie: batchPerDie, context: context,
                         deployment: deployment,
                         priced: PricedGroup(context: cost.slowestGroupContext(input), spread: spread,
                                             name: "the slowest DP group (of \(g.dp))"))
            step = cost.decodeStep(input)
            activeDies = Double(g.dp * g.tp)
            allDies = activeDies
        }
        let tokensPerSecond = batchPerDie * activeDies * step.tokensPerStep / step.stepSeconds
        return DecodeResult(stepMs: step.stepSeconds * 1e3, layerMs: step.layerSeconds * 1e3, tpotMs: step.tpot * 1e3,
                            tokensPerStep: step.tokensPerStep, tokensPerSecondPerNPU: tokensPerSecond / allDies,
                            tokensPerSecondPerChip: tokensPerSecond / allDies * Double(hw.diesPerDevice),
                            breakdownMs: Breakdown(step.breakdown), moeLoadFactor: factor,
                            eplb: model.isMoE ? eplb : nil, routing: model.isMoE ? routing : nil,
                            deployment: deployment.name, batchPerDie: batchPerDie, context: context,
                            microbatches: step.microbatches, contextCV: spread)
    }

    public static func prefill(deployment: Deployment, promptLen: Double, tokensPerNPU: Double, eplb: EPLBMode = .on,
                               routing: RoutingSkew = .skewed, microbatches: Int = 2, seed: UInt64 = 1) throws -> PrefillResult {
        try check(promptLen > 0, "--prompt-len must be positive, got \(promptLen)")
        try check(tokensPerNPU > 0, "--tokens-per-npu must be positive, got \(tokensPerNPU)")
        try deployment.validate()
        guard let g = deployment.group(.prefill) ?? deployment.group(.colocated) else {
            throw ConfigError("deployment '\(deployment.name)' has no prefill or colocated instance to bench")
        }
        // The instance's batch must hold one whole prompt at least (a prompt may span the dies of
        // its attention TP group, so less than a prompt per die is fine).
        let dies = g.tp * g.dp
        let hw = try g.hardware.map(HardwareProfile.named) ?? deployment.hardwareProfile()
        guard tokensPerNPU * Double(dies) >= promptLen else {
            let least = Int((promptLen / Double(dies)).rounded(.up))
            throw ConfigError(String(format: "--tokens-per-npu %.0f × %d %@s = %.0f tokens per batch holds less than one "
                + "%.0f-token prompt; use at least %d", tokensPerNPU, dies, hw.dieWord, tokensPerNPU * Double(dies), promptLen, least))
        }
        let model = try deployment.modelSpec()
        // As decode: a layout whose weights and the batch's KV do not fit a die cannot run, and a
        // throughput for it would mislead (`--model kimi-k2` on a 16-die prefill group gave one).
        try checkHBM(model: model, hardware: hw, group: g, batchPerDie: tokensPerNPU / promptLen, context: promptLen,
                     what: String(format: "a prefill batch of %.0f tokens per %@ (%.0f-token prompts)", tokensPerNPU, hw.dieWord, promptLen),
                     deployment: deployment)
        let cost = CostModel(model: model, hardware: hw)
        let routedDies = g.ep - g.sharedExpertDies
        let slots = g.routedSlots(for: model)
        let load = moeLoad(model: model, dies: routedDies, slotsPerDie: max(1, slots / max(1, routedDies)),
                           eplb: eplb, routing: routing, seed: seed)
        let factor = load.mean
        var input = PrefillBatchInput(tokensPerDie: tokensPerNPU, promptTokens: promptLen, attentionTP: g.tp,
                                      expertDies: g.ep, routedSlots: slots)
        input.sharedExpertDies = g.sharedExpertDies
        input.moeLoadFactor = factor
        input.moeLoadFactorPerLayer = load.perLayer
        input.microbatches = microbatches
        let batch = cost.prefillBatch(input)
        return PrefillResult(batchMs: batch.batchSeconds * 1e3, tokensPerSecondPerNPU: batch.tokensPerSecondPerDie,
                             tokensPerSecondPerChip: batch.tokensPerSecondPerDie * Double(hw.diesPerDevice),
                             breakdownMs: Breakdown(batch.breakdown), moeLoadFactor: factor,
                             eplb: model.isMoE ? eplb : nil, routing: model.isMoE ? routing : nil,
                             deployment: deployment.name, promptLen: promptLen, tokensPerNPU: tokensPerNPU)
    }

    /// A batch whose weights and KV cache do not fit in a die's HBM cannot be run. Weights and
    /// the HBM share are the engine's (``ModelSpec/weightBytesPerDie(tp:routedDies:routedSlots:attentionOnly:)``,
    /// ``EngineConfiguration/defaultKVMemoryFraction``): `bench` accepted points the engine cannot
    /// hold (llama-2-7b at 120 × 1K per H100: 77.9 GB of its 80, where the engine keeps 72).
    /// Weights alone past the HBM share of `deployment` (given): the engine's own refusal, `xds
    /// run`'s line, which says what to change (the tpK of an inline spec); the batch's line named
    /// only the batch, as if a smaller one could fit.
    /// The group a decode bench prices, when the spread of KV lengths puts it above the mean
    /// context: its requests' mean KV length, the spread, and its name in a refusal.
    struct PricedGroup {
        var context: Double
        var spread: Double
        var name: String
    }

    static func checkHBM(model: ModelSpec, hardware hw: HardwareProfile, group g: InstanceGroup, batchPerDie: Double,
                         context: Double, what: String? = nil, deployment: Deployment? = nil,
                         priced: PricedGroup? = nil) throws {
        let weights = model.weightBytesPerDie(tp: g.tp, routedDies: max(1, g.ep - g.sharedExpertDies),
                                              routedSlots: g.routedSlots(for: model), attentionOnly: false)
        if let deployment, weights >= hw.hbmBytesPerDie * EngineConfiguration.defaultKVMemoryFraction,
           let refusal = ServingEngine.noKVRoomRefusal(for: deployment) {
            throw refusal
        }
        // A group of `tp` dies holds batchPerDie × tp requests; each one's KV is split over the
        // group's shards (it was divided by tp for every model: MLA's latent, read whole on
        // every die, and GQA past its KV heads were allowed batches that cannot fit).
        let held = priced?.context ?? context
        let kv = batchPerDie * Double(g.tp) * held * model.kvBytesPerToken / Double(model.kvShards(tp: g.tp))
        try checkFits(weights: weights, kv: kv, hardware: hw, batchPerDie: batchPerDie, context: context, what: what,
                      priced: priced)
    }

    /// The same for an attention die of MoE–attention disaggregation: it holds the attention and
    /// dense layers whole (no TP; the experts live on the expert dies) and its requests' KV.
    static func checkAttentionHBM(model: ModelSpec, hardware hw: HardwareProfile, batchPerDie: Double,
                                  context: Double, priced: PricedGroup? = nil) throws {
        let weights = model.weightBytesPerDie(tp: 1, routedDies: 1, routedSlots: 0, attentionOnly: true)
        try checkFits(weights: weights, kv: batchPerDie * (priced?.context ?? context) * model.kvBytesPerToken, hardware: hw,
                      batchPerDie: batchPerDie, context: context, priced: priced)
    }

    private static func checkFits(weights: Double, kv: Double, hardware hw: HardwareProfile, batchPerDie: Double,
                                  context: Double, what: String? = nil, priced: PricedGroup? = nil) throws {
        let need = weights + kv
        let usable = hw.hbmBytesPerDie * EngineConfiguration.defaultKVMemoryFraction
        if need > usable {
            // "per GPU" on a one-die GPU (an A100 "die" is the GPU), "per die" on Ascend.
            let die = hw.dieWord
            var batch = what ?? String(format: "batch %@/%@ at context %.0f", OperatorCommand.format(batchPerDie), die, context)
            // Said when the group that does not fit holds more than the mean's KV, so the figures
            // below are read as that group's, not the mean context's.
            if let priced, priced.context > context {
                batch += String(format: " does not fit %@, whose requests the spread of KV lengths (cv %.2f) puts at "
                    + "%.0f tokens on average", priced.name, priced.spread, priced.context)
            } else {
                batch += " does not fit"
            }
            throw ConfigError(String(format: "%@: it needs %.1f GB of HBM per %@ (weights %.1f GB + KV %.1f GB), "
                + "one %@ %@ has %.0f GB, %.1f GB of it for weights and KV (%.0f%%, as the engine keeps)",
                                     batch, need / 1e9, die, weights / 1e9, kv / 1e9, hw.name, die, hw.hbmBytesPerDie / 1e9,
                                     usable / 1e9, EngineConfiguration.defaultKVMemoryFraction * 100))
        }
    }

    /// Requests in the slowest DP group (or attention die) of a batch averaging `perGroup`. Below
    /// one, most groups hold none and the rest one (the balancer places on the group with the least
    /// KV, an empty one while there is one), and the barrier waits for a group holding a whole
    /// request; the experts still take the mean's tokens. A mean of 0.38 was priced as one group
    /// of 0.38 requests, 4% under the engine's step on superpod. From one up the groups' counts
    /// differ with their contexts (the spread prices that), so the mean stands.
    static func slowestGroupRequests(_ perGroup: Double) -> Double {
        max(1, perGroup)
    }

    /// A fractional batch is an average over the instance's dies: under half a request on all of
    /// them together is a step of no request (the engine never prices one), refused with the least
    /// that holds one.
    static func checkHoldsARequest(_ batchPerDie: Double, dies: Int, of kind: String, _ deployment: Deployment,
                                   _ hw: HardwareProfile) throws {
        let requests = batchPerDie * Double(dies)
        guard requests < 0.5 else { return }
        let unit = pow(10, Double(batchPerDieDecimals))
        let least = OperatorCommand.format((0.5 / Double(max(1, dies)) * unit).rounded(.up) / unit)
        throw ConfigError(String(format: "--batch-per-die %@ puts %.2f requests on the %d %@ %@s of %@, less than half a "
            + "request: a step of none; give at least %@", OperatorCommand.format(batchPerDie), requests, dies, kind,
                                 hw.dieWord, deployment.name, least))
    }

    static func check(_ condition: Bool, _ message: @autoclosure () -> String) throws {
        if !condition { throw ConfigError(message()) }
    }
}

extension Bench {
    /// How this deployment's decode capacity compares with the superpod's: decode tokens/s of all
    /// its decode (or colocated) dies at a moderate operating point (16 requests per die at 2K
    /// context, perfect expert balance, MTP as the model has it), over the same for `superpod`.
    /// 1 when either cannot be worked out (the superpod's rates, as before).
    public static func decodeCapacityScale(for deployment: Deployment) -> Double {
        guard let here = decodeCapacity(deployment), let reference = decodeCapacity(.superpod), reference > 0
        else { return 1 }
        let ratio = here / reference
        return ratio.isFinite && ratio > 0 ? ratio : 1
    }

    /// A default synthetic rate sized for `superpod` (`superpodRate` requests/s), scaled to
    /// `deployment`'s decode capacity (``decodeCapacityScale(for:)``) and kept to two significant
    /// digits, so a default load is the same share of any deployment's capacity: 10 req/s on the
    /// superpod was 40 times what two A100s serving Llama-2-7B decode. The superpod's is unchanged.
    public static func defaultRate(_ superpodRate: Double, for deployment: Deployment) -> Double {
        defaultRate(superpodRate, scale: decodeCapacityScale(for: deployment))
    }

    /// ``defaultRate(_:for:)`` with the deployment's ``decodeCapacityScale(for:)`` already worked
    /// out (two bench steps): `xds console`'s demo is scaled by the same figure, which it worked out
    /// a second time at start-up.
    public static func defaultRate(_ superpodRate: Double, scale: Double) -> Double {
        let scaled = superpodRate * scale
        guard scaled > 0, scaled.isFinite else { return superpodRate }
        let unit = pow(10, (log10(scaled)).rounded(.down) - 1)
        let rounded = (scaled / unit).rounded() * unit
        return min(10_000, max(0.0001, rounded))
    }

    /// Decode tokens per second of the deployment at the moderate point (16 requests per die at a
    /// 2K context), or at the largest batch below it that fits in HBM; nil if it has no decode side
    /// the bench can price. A pod whose weights leave no room for 16 (Llama-3-70B on A100 pairs)
    /// was given no figure, and so the superpod's rates.
    static func decodeCapacity(_ deployment: Deployment) -> Double? {
        guard let model = try? deployment.modelSpec() else { return nil }
        let acceptance = model.mtpModules > 0 ? 0.7 : 0
        let probe = [16.0, 8, 4, 2, 1].lazy.compactMap {
            try? Bench.decode(deployment: deployment, batchPerDie: $0, context: 2_048, mtpAcceptance: acceptance,
                              eplb: .perfect, routing: .balanced)
        }
        guard let r = probe.first else { return nil }
        let dies: Int
        if let ma = deployment.moeAttention {
            dies = ma.attentionDies + ma.expertDies
        } else if let g = deployment.group(.decode) ?? deployment.group(.colocated) {
            dies = g.count * g.dp * g.tp
        } else {
            return nil
        }
        return r.tokensPerSecondPerNPU * Double(dies)
    }
}
