/// Decode with MoE–attention disaggregation (system.md §1.2): attention dies keep the KV cache,
/// expert dies run persistent kernels; A2E goes through trampoline dies, E2A comes straight back.
extension CostModel {
    /// Attention→expert for `tokens` tokens sent by `senders` attention dies through
    /// `trampolines` forwarding dies: the busier of a sender and a trampoline bounds the round.
    public func attentionToExpert(tokens: Double, senders: Int, trampolines: Int, sharedExpertDies: Int) -> Double {
        let bytes = tokens * messagesPerToken(sharedExpertDies: sharedExpertDies) * model.dispatchBytesPerToken
        let busiest = bytes / Double(max(1, min(senders, max(1, trampolines))))
        return constants.collectiveFixedSeconds + constants.trampolineHops * hardware.scaleUpLatencyInterNode
            + busiest / (hardware.scaleUpBytesPerSecondPerDie * constants.fabricWriteEfficiency)
    }

    /// Expert→attention: each expert die writes its outputs (BF16) back to the tokens' dies.
    public func expertToAttention(tokens: Double, receivers: Int, expertDies: Int, sharedExpertDies: Int) -> Double {
        let bytes = tokens * messagesPerToken(sharedExpertDies: sharedExpertDies) * model.combineBytesPerToken
        let busiest = bytes / Double(max(1, min(receivers, expertDies)))
        return constants.collectiveFixedSeconds + hardware.scaleUpLatencyInterNode
            + busiest / (hardware.scaleUpBytesPerSecondPerDie * constants.fabricWriteEfficiency)
    }

    /// One decode step of an MA layout at `requestsPerDie` per attention die. Per layer, each
    /// domain's microbatches run attention, A2E, experts and E2A; the expert dies serve the
    /// domains in turn, so the layer takes the longer of a domain's critical path and the experts'
    /// total work for all domains.
    public func decodeStepMoEAttention(_ layout: MoEAttentionLayout, requestsPerDie b: Double, contextTokens: Double,
                                       mtpAcceptance: Double, moeLoadFactor: Double = 1) -> DecodeStepCost {
        guard let moe = model.moe else {
            return decodeStep(DecodeStepInput(requestsPerGroup: b, contextTokens: contextTokens,
                                              mtpAcceptance: mtpAcceptance, expertDies: 1, routedSlots: 0, sharedExpertDies: 0))
        }
        let mtpOn = mtpAcceptance > 0 && model.mtpModules > 0
        let q = mtpOn ? 2.0 : 1.0
        let mb = Double(max(1, layout.microbatches))
        let attention = decodeAttention(requests: b, context: contextTokens, queryTokens: q, tp: 1)
        let domainTokens = b * q * Double(layout.dpPerDomain)
        let routedDies = layout.expertDies - layout.sharedExpertDies
        let routedPerDie = domainTokens * Double(moe.topK) / Double(max(1, routedDies)) * max(1, moeLoadFactor)
        let sharedPerDie = layout.sharedExpertDies > 0 ? domainTokens * Double(moe.sharedExperts) / Double(layout.sharedExpertDies) : 0
        let expertPerDomain = decodeRoofline(flops: max(routedPerDie, sharedPerDie) * model.expertFlopsPerToken,
                                             bytes: model.expertWeightBytes, eightBit: model.weightType.isEightBit)
        let a2e = mb * attentionToExpert(tokens: domainTokens / mb, senders: layout.dpPerDomain,
                                         trampolines: layout.trampolineDies, sharedExpertDies: layout.sharedExpertDies)
        let e2a = mb * expertToAttention(tokens: domainTokens / mb, receivers: layout.dpPerDomain,
                                         expertDies: layout.expertDies, sharedExpertDies: layout.sharedExpertDies)
        let domainPath = attention + overlapped(a2e + e2a, expertPerDomain, microbatches: layout.microbatches)
        let layer = max(domainPath, Double(layout.attentionDomains) * expertPerDomain)
        var other = Double(model.layers - model.moeLayers) * decodeDenseLayer(requests: b, context: contextTokens, queryTokens: q, tp: 1)
        other += lmHead(tokens: b * q, tp: 1) + constants.graphLaunchSeconds * (mtpOn ? 2 : 1) + constants.schedulingSeconds
        if mtpOn { other += layer + lmHead(tokens: b, tp: 1) }
        var breakdown = StepBreakdown()
        let layers = Double(model.moeLayers)
        breakdown.attention = layers * attention
        breakdown.moe = layers * expertPerDomain
        breakdown.dispatch = layers * a2e
        breakdown.combine = layers * e2a
        breakdown.other = other
        return DecodeStepCost(stepSeconds: layers * layer + other, layerSeconds: layer,
                              tokensPerStep: 1 + (mtpOn ? mtpAcceptance : 0), breakdown: breakdown)
    }
}
