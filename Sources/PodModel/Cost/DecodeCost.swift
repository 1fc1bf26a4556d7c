/// What one decode step of an instance looks like to the cost model.
///
/// Attention is data-parallel (one DP group per die at TP1); the step waits for its slowest
/// group, so callers describe that group. Experts are spread over `expertDies`; the hottest
/// die's load relative to the mean (`moeLoadFactor`, averaged over MoE layers) sets the MoE time.
public struct DecodeStepInput: Sendable, Equatable {
    /// Requests in the slowest DP group.
    public var requestsPerGroup: Double
    /// Mean context (KV length) of those requests.
    public var contextTokens: Double
    /// MTP acceptance rate; 0 disables MTP (one token per step, no draft).
    public var mtpAcceptance: Double
    /// Draft tokens per step when MTP is on (system.md §4: one MTP layer).
    public var mtpDrafts: Int = 1
    /// DP groups of the instance (all of them send tokens to the experts).
    public var dpGroups: Int
    /// Attention tensor parallelism (1 in decode, system.md §1).
    public var attentionTP: Int = 1
    /// Dies holding experts (EP degree), routed slots among them (incl. redundant replicas), and
    /// dies dedicated to shared-expert copies.
    public var expertDies: Int
    public var routedSlots: Int
    public var sharedExpertDies: Int
    /// Hottest die's MoE load over the mean (1 = perfectly balanced).
    public var moeLoadFactor: Double = 1
    /// Slowdown of the slowest die in the attention and expert barriers (straggler faults).
    public var attentionSlowdown: Double = 1
    public var expertSlowdown: Double = 1
    public var microbatches: Int = 2

    public init(requestsPerGroup: Double, contextTokens: Double, mtpAcceptance: Double, dpGroups: Int? = nil,
                expertDies: Int, routedSlots: Int, sharedExpertDies: Int, moeLoadFactor: Double = 1) {
        self.requestsPerGroup = requestsPerGroup
        self.contextTokens = contextTokens
        self.mtpAcceptance = mtpAcceptance
        self.dpGroups = dpGroups ?? expertDies
        self.expertDies = expertDies
        self.routedSlots = routedSlots
        self.sharedExpertDies = sharedExpertDies
        self.moeLoadFactor = moeLoadFactor
    }
}

public struct StepBreakdown: Sendable, Equatable, Codable {
    public var attention = 0.0
    public var moe = 0.0
    public var dispatch = 0.0
    public var combine = 0.0
    public var other = 0.0
    public init() {}
}

public struct DecodeStepCost: Sendable, Equatable {
    public var stepSeconds: Double
    /// One MoE layer of the main model in this step (the verify pass when MTP is on).
    public var layerSeconds: Double
    public var tokensPerStep: Double
    /// Per step, summed over layers; `other` holds dense layers, heads, MTP draft and overheads.
    public var breakdown: StepBreakdown
    public var tpot: Double { stepSeconds / tokensPerStep }
}

extension CostModel {
    /// A decode operator: load-then-compute per ``CostConstants/decodeLoadComputeOverlap``.
    func decodeRoofline(flops: Double, bytes: Double, eightBit: Bool, computeEfficiency: Double? = nil) -> Double {
        roofline(flops: flops, bytes: bytes, eightBit: eightBit, computeEfficiency: computeEfficiency,
                 loadComputeOverlap: constants.decodeLoadComputeOverlap)
    }

    /// Per-layer pieces of one decode pass with `queryTokens` tokens per request.
    struct DecodeLayer {
        var attention: Double
        var moe: Double
        var dispatch: Double
        var combine: Double
        var layer: Double
    }

    func decodeMoELayer(_ input: DecodeStepInput, queryTokens q: Double) -> DecodeLayer {
        let b = input.requestsPerGroup, ctx = input.contextTokens, tp = input.attentionTP
        let tokens = b * q
        let attention = decodeAttention(requests: b, context: ctx, queryTokens: q, tp: tp) * input.attentionSlowdown
        guard let moe = model.moe else {
            return DecodeLayer(attention: attention, moe: 0, dispatch: 0, combine: 0, layer: attention)
        }
        let router = decodeRoofline(flops: tokens * model.routerFlopsPerToken, bytes: model.routerParameters * model.weightType.bytes,
                              eightBit: false)
        // Token-expert pairs of the whole instance, spread over the routed slots; shared-expert
        // tokens over their dedicated dies (or over every die when none are dedicated).
        let allTokens = tokens * Double(input.dpGroups)
        let routedPerSlot = allTokens * Double(moe.topK) / Double(max(1, input.routedSlots))
        let sharedPerDie = input.sharedExpertDies > 0
            ? allTokens * Double(moe.sharedExperts) / Double(input.sharedExpertDies) : 0
        let slotsPerDie = max(1.0, Double(input.routedSlots) / Double(max(1, input.expertDies - input.sharedExpertDies)))
        // The hottest die: a routed die at the imbalance factor, or a shared-expert die.
        let hotTokens = max(routedPerSlot * slotsPerDie * max(1, input.moeLoadFactor), sharedPerDie)
        let expertsOnDie = slotsPerDie + (input.sharedExpertDies == 0 ? Double(moe.sharedExperts) : 0)
        let sharedLocalTokens = input.sharedExpertDies == 0 ? tokens * Double(moe.sharedExperts) : 0
        let expert = decodeRoofline(flops: (hotTokens + sharedLocalTokens) * model.expertFlopsPerToken,
                              bytes: expertsOnDie * model.expertWeightBytes, eightBit: model.weightType.isEightBit)
            * input.expertSlowdown
        let destinations = messagesPerToken(sharedExpertDies: input.sharedExpertDies)
        let dispatchTime = dispatch(tokensPerRank: tokens, destinations: destinations, ep: input.expertDies)
        let combineTime = combine(tokensPerRank: tokens, destinations: destinations, ep: input.expertDies)
        // Colocated attention and experts share each die's cube cores, so their compute adds up
        // (two barriers per layer: dispatch waits for the slowest group, combine for the hottest
        // die); the two-microbatch pipeline hides the transfers of one microbatch behind the
        // compute of the other.
        let compute = attention + router + expert
        let transfers = dispatchTime + combineTime
        return DecodeLayer(attention: attention + router, moe: expert, dispatch: dispatchTime, combine: combineTime,
                           layer: overlapped(compute, transfers, microbatches: input.microbatches))
    }

    /// Attention stream of one decode layer for one DP group: projections (weights streamed
    /// once per step) and the core over the latent KV cache (read once per request).
    func decodeAttention(requests b: Double, context ctx: Double, queryTokens q: Double, tp: Int) -> Double {
        let proj = model.attentionProjections(decode: true, tp: tp)
        let projections = decodeRoofline(flops: b * q * proj.flopsPerToken, bytes: proj.weightBytes,
                                   eightBit: model.weightType.isEightBit)
        let core = decodeRoofline(flops: b * q * model.attentionCoreFlops(decode: true, context: ctx, tp: tp),
                            bytes: b * model.kvReadBytes(context: ctx, tp: tp),
                            // Absorbed MLA attends over the INT8 latent on the 8-bit path (system.md §3).
                            eightBit: model.kvType.isEightBit,
                            computeEfficiency: constants.attentionComputeEfficiency)
        return projections + core
    }

    func decodeDenseLayer(requests b: Double, context ctx: Double, queryTokens q: Double, tp: Int) -> Double {
        decodeAttention(requests: b, context: ctx, queryTokens: q, tp: tp)
            + decodeRoofline(flops: b * q * model.denseFFNFlopsPerToken / Double(tp),
                       bytes: model.denseFFNParameters * model.weightType.bytes / Double(tp),
                       eightBit: model.weightType.isEightBit)
    }

    func lmHead(tokens: Double, tp: Int) -> Double {
        decodeRoofline(flops: tokens * model.lmHeadFlopsPerToken / Double(tp), bytes: model.lmHeadWeightBytes / Double(tp),
                 eightBit: false)
    }

    /// One decode step: dense layers, MoE layers, LM head, the MTP draft, graph launch and
    /// scheduling. With MTP the main model verifies 1 + drafts tokens per request.
    public func decodeStep(_ input: DecodeStepInput) -> DecodeStepCost {
        let mtpOn = input.mtpAcceptance > 0 && model.mtpModules > 0
        let q = mtpOn ? 1 + Double(input.mtpDrafts) : 1
        let b = input.requestsPerGroup, tp = input.attentionTP
        let verify = decodeMoELayer(input, queryTokens: q)
        let moeLayers = Double(model.moeLayers)
        let denseLayers = Double(model.layers - model.moeLayers)
        var other = denseLayers * decodeDenseLayer(requests: b, context: input.contextTokens, queryTokens: q, tp: tp)
            * input.attentionSlowdown
        other += lmHead(tokens: b * q, tp: tp)
        var graphs = 1.0
        if mtpOn {
            // The MTP module: project [embedding; hidden], one MoE layer, and its own LM head,
            // once per draft token; it runs as a second graph.
            let draft = decodeMoELayer(input, queryTokens: 1)
            let projection = decodeRoofline(flops: b * 4 * Double(model.hidden * model.hidden),
                                      bytes: 2 * Double(model.hidden * model.hidden) * model.weightType.bytes,
                                      eightBit: model.weightType.isEightBit)
            other += Double(input.mtpDrafts) * (draft.layer + projection + lmHead(tokens: b, tp: tp))
            graphs += 1
        }
        other += graphs * constants.graphLaunchSeconds + constants.schedulingSeconds
        let step = moeLayers * verify.layer + other
        var breakdown = StepBreakdown()
        breakdown.attention = moeLayers * verify.attention
        breakdown.moe = moeLayers * verify.moe
        breakdown.dispatch = moeLayers * verify.dispatch
        breakdown.combine = moeLayers * verify.combine
        breakdown.other = other
        let tokens = 1 + (mtpOn ? input.mtpAcceptance * Double(input.mtpDrafts) : 0)
        return DecodeStepCost(stepSeconds: step, layerSeconds: model.isMoE ? verify.layer : verify.attention,
                              tokensPerStep: tokens, breakdown: breakdown)
    }
}
