/// One prefill batch of an instance: attention TP×DP over its dies, experts over EP.
public struct PrefillBatchInput: Sendable, Equatable {
    /// New (uncached) prompt tokens per die in this batch.
    public var tokensPerDie: Double
    /// Prompt length of the requests (long prompts straggle a barrier: system.md §4).
    public var promptTokens: Double
    /// Tokens of each prompt already in the KV cache (prefix hits): attended to, not recomputed.
    public var cachedPrefixTokens: Double = 0
    public var attentionTP: Int
    public var expertDies: Int
    public var routedSlots: Int
    /// Dies dedicated to shared experts; 0 means every die holds a shared-expert copy.
    public var sharedExpertDies: Int = 0
    public var moeLoadFactor: Double = 1
    public var slowdown: Double = 1
    public var microbatches: Int = 2

    public init(tokensPerDie: Double, promptTokens: Double, attentionTP: Int, expertDies: Int, routedSlots: Int) {
        self.tokensPerDie = tokensPerDie
        self.promptTokens = promptTokens
        self.attentionTP = attentionTP
        self.expertDies = expertDies
        self.routedSlots = routedSlots
    }
}

public struct PrefillBatchCost: Sendable, Equatable {
    public var batchSeconds: Double
    public var layerSeconds: Double
    public var breakdown: StepBreakdown
    public var tokensPerSecondPerDie: Double
}

extension CostModel {
    func prefillOp(flops: Double, bytes: Double, eightBit: Bool, computeEfficiency: Double? = nil) -> Double {
        roofline(flops: flops, bytes: bytes, eightBit: eightBit, computeEfficiency: computeEfficiency,
                 loadComputeOverlap: constants.prefillLoadComputeOverlap)
    }

    /// Attention of one prefill layer on one die of a TP group: every die runs 1/tp of the heads
    /// for all of its group's tokens, then the group all-reduces the output.
    func prefillAttention(_ input: PrefillBatchInput) -> (compute: Double, allReduce: Double) {
        let tp = input.attentionTP
        let groupTokens = input.tokensPerDie * Double(tp)
        // Causal attention: a new token attends to the cached prefix and, on average, half the rest.
        let context = input.cachedPrefixTokens + (input.promptTokens - input.cachedPrefixTokens) / 2
        let proj = model.attentionProjections(decode: false, tp: tp)
        let projections = prefillOp(flops: groupTokens * proj.flopsPerToken, bytes: proj.weightBytes,
                                    eightBit: model.weightType.isEightBit)
        let core = prefillOp(flops: groupTokens * model.attentionCoreFlops(decode: false, context: context, tp: tp),
                             bytes: groupTokens * model.kvBytesPerTokenPerLayer, eightBit: false,
                             computeEfficiency: constants.attentionComputeEfficiency)
        return (projections + core, tensorParallelAllReduce(tokens: groupTokens, tp: tp))
    }

    public func prefillBatch(_ input: PrefillBatchInput) -> PrefillBatchCost {
        let n = input.tokensPerDie
        let attention = prefillAttention(input)
        var layer = 0.0, expert = 0.0, dispatchTime = 0.0, combineTime = 0.0, router = 0.0
        if let moe = model.moe {
            router = prefillOp(flops: n * model.routerFlopsPerToken, bytes: model.routerParameters * model.weightType.bytes,
                               eightBit: false)
            let routedDies = max(1, input.expertDies - input.sharedExpertDies)
            let slotsPerDie = Double(input.routedSlots) / Double(routedDies)
            let meanRouted = n * Double(input.expertDies) * Double(moe.topK) / Double(max(1, input.routedSlots)) * slotsPerDie
            let shared = input.sharedExpertDies == 0 ? n * Double(moe.sharedExperts) : 0
            let experts = slotsPerDie + (input.sharedExpertDies == 0 ? Double(moe.sharedExperts) : 0)
            expert = prefillOp(flops: (meanRouted * max(1, input.moeLoadFactor) + shared) * model.expertFlopsPerToken,
                               bytes: experts * model.expertWeightBytes, eightBit: model.weightType.isEightBit)
            let destinations = messagesPerToken(sharedExpertDies: input.sharedExpertDies)
            dispatchTime = dispatch(tokensPerRank: n, destinations: destinations, ep: input.expertDies)
            combineTime = combine(tokensPerRank: n, destinations: destinations, ep: input.expertDies)
            // As in decode, attention and experts share the cube; microbatching hides transfers.
            layer = overlapped((attention.compute + router + expert) * input.slowdown,
                               dispatchTime + combineTime + attention.allReduce, microbatches: input.microbatches)
        }
        let groupTokens = n * Double(input.attentionTP)
        let dense = prefillOp(flops: groupTokens * model.denseFFNFlopsPerToken / Double(input.attentionTP),
                              bytes: model.denseFFNParameters * model.weightType.bytes / Double(input.attentionTP),
                              eightBit: model.weightType.isEightBit)
        let denseLayer = overlapped((attention.compute + dense) * input.slowdown, attention.allReduce,
                                    microbatches: input.microbatches)
        let denseLayers = Double(model.layers - model.moeLayers)
        // Only each prompt's last token needs logits.
        let prompts = max(1, groupTokens / max(1, input.promptTokens - input.cachedPrefixTokens))
        var other = denseLayers * denseLayer + lmHead(tokens: prompts, tp: input.attentionTP)
        other += Double(model.layers) * constants.eagerOperatorsPerLayer * constants.eagerLaunchSecondsPerOperator
        other += constants.schedulingSeconds
        let moeLayers = Double(model.moeLayers)
        let batch = moeLayers * layer + other
        var breakdown = StepBreakdown()
        breakdown.attention = moeLayers * (attention.compute + router + attention.allReduce)
        breakdown.moe = moeLayers * expert
        breakdown.dispatch = moeLayers * dispatchTime
        breakdown.combine = moeLayers * combineTime
        breakdown.other = other
        return PrefillBatchCost(batchSeconds: batch, layerSeconds: model.isMoE ? layer : denseLayer,
                                breakdown: breakdown, tokensPerSecondPerDie: n / batch)
    }
}
