/// Decode with MoE–attention disaggregation (system.md §1.2): attention dies keep the KV cache,
/// expert dies run persistent kernels; A2E goes through trampoline dies, E2A comes straight back.
extension CostModel {
    /// Attention→expert for `tokens` tokens sent by `senders` attention dies through
    /// `trampolines` forwarding dies: each sender issues its tokens' messages, the trampolines relay
    /// the bytes; the longer of the busiest sender's issuing and the busiest trampoline's wire time
    /// bounds the round, plus one fabric latency per hop.
    public func attentionToExpert(tokens: Double, senders: Int, trampolines: Int, sharedExpertDies: Int) -> Double {
        let messagesTotal = tokens * messagesPerToken(sharedExpertDies: sharedExpertDies)
        let relay = messagesTotal * model.dispatchBytesPerToken / Double(max(1, min(senders, max(1, trampolines))))
        let wire = relay / (hardware.scaleUpBytesPerSecondPerDie * constants.fabricWriteEfficiency)
        let issue = messagesTotal / Double(max(1, senders)) * constants.collectiveSecondsPerMessage
        return constants.collectiveFixedSeconds + constants.trampolineHops * hardware.scaleUpLatencyInterNode
            + max(wire, issue)
    }

    /// Expert→attention: each expert die writes its outputs (BF16) back to the tokens' dies, and
    /// the round waits for the busiest sender (system.md §4b: combine absorbs MoE imbalance across
    /// expert dies). A2E is relayed evenly by the trampolines; E2A is sent by the expert dies
    /// themselves, so it carries the hottest routed die's load: the placement's imbalance
    /// (`moeLoadFactor`) with Poisson routing noise, or the noisiest of the near-mean dies, or a
    /// shared-expert die, as in the colocated combine (``hottestExpertDieTokens``).
    public func expertToAttention(tokens: Double, receivers: Int, expertDies: Int, sharedExpertDies: Int,
                                  moeLoadFactor: Double = 1) -> Double {
        guard let moe = model.moe else { return 0 }
        let routedDies = max(1, expertDies - sharedExpertDies)
        // Messages per die when they spread evenly: over the expert dies, or over the receivers
        // (each takes all of its own tokens' outputs) when these are fewer.
        let evenSplit = tokens * messagesPerToken(sharedExpertDies: sharedExpertDies) / Double(max(1, min(receivers, expertDies)))
        let mean = tokens * Double(moe.topK) / Double(routedDies)
        let hot = mean * max(1, moeLoadFactor)
        var busiest = max(evenSplit, hot + hot.squareRoot(), mean + mean.squareRoot() * Self.expectedMaxZ(routedDies))
        if sharedExpertDies > 0 {
            busiest = max(busiest, tokens * Double(moe.sharedExperts) / Double(sharedExpertDies))
        }
        return messages(busiest, bytesPerMessage: model.combineBytesPerToken, interNode: true)
    }

    /// Mean context of the slowest attention die's requests, which A2E waits for: `input`'s
    /// context when it names that die already (no spread). Public for `bench decode`, whose HBM
    /// check holds that die's KV, the KV it prices.
    @inline(__always)
    public func slowestAttentionDieContext(_ layout: MoEAttentionLayout, _ input: MoEAttentionStepInput) -> Double {
        Self.slowestGroupContext(context: input.contextTokens, spread: input.contextSpread,
                                 requestsPerGroup: input.requestsPerDie, groups: layout.attentionDies,
                                 window: terms.contextWindow)
    }

    /// One decode step of an MA layout. Per layer, each domain's microbatches run attention (the
    /// whole attention die), A2E, experts and E2A; a microbatch's chain and the attention die's work
    /// for all microbatches bound the domain, and the expert dies serve the domains in turn, so the
    /// layer takes the longer of a domain's path and the experts' total work for all domains.
    /// A2E is a barrier (system.md §4b): the expert dies start a microbatch when its last attention
    /// die has sent, so attention is priced at the slowest attention die; the experts' tokens are
    /// the domain's, at the mean requests per die. Each MoE layer waits for its own hottest expert
    /// die (``MoEAttentionStepInput/moeLoadFactorPerLayer``), as the colocated step does.
    public func decodeStepMoEAttention(_ layout: MoEAttentionLayout, _ input: MoEAttentionStepInput) -> DecodeStepCost {
        let b = input.requestsPerDie, mtpAcceptance = input.mtpAcceptance
        // A2E is the barrier: every domain's experts wait for its slowest attention die, and the
        // domains share the expert dies layer by layer, so the layer follows the slowest of all the
        // layout's attention dies (the engine names it; a bench derives it from the spread).
        let contextTokens = slowestAttentionDieContext(layout, input)
        guard let moe = model.moe else {
            return decodeStep(DecodeStepInput(requestsPerGroup: b, contextTokens: contextTokens,
                                              mtpAcceptance: mtpAcceptance, expertDies: 1, routedSlots: 0, sharedExpertDies: 0))
        }
        let mtpOn = mtpAcceptance > 0 && model.mtpModules > 0
        let q = mtpOn ? 2.0 : 1.0
        let mb = Double(max(1, layout.microbatches))
        let attention = decodeAttention(requests: b / mb, context: contextTokens, queryTokens: q, tp: 1)
            * input.attentionSlowdown
        let domainTokens = (input.meanRequestsPerDie ?? b) * q * Double(layout.dpPerDomain) / mb
        let routedDies = layout.expertDies - layout.sharedExpertDies
        let routedMean = domainTokens * Double(moe.topK) / Double(max(1, routedDies))
        let sharedPerDie = layout.sharedExpertDies > 0 ? domainTokens * Double(moe.sharedExperts) / Double(layout.sharedExpertDies) : 0
        // A routed die holds its share of the experts (the layout has no redundant slots) and a
        // microbatch's tokens reach each of them, so it reads all their weights, as a colocated die
        // reads its whole slots (``DecodeExpertShape``): Kimi-K2's 384 experts on 192 routed dies
        // are two a die, which were priced as one read. A shared-expert die holds one.
        let expertsPerRoutedDie = max(1, (Double(moe.routedExperts) / Double(max(1, routedDies))).rounded(.up))
        let a2e = attentionToExpert(tokens: domainTokens, senders: layout.dpPerDomain,
                                    trampolines: layout.trampolineDies, sharedExpertDies: layout.sharedExpertDies)
        // One MoE layer at the hottest routed die's load factor `factor`.
        func layerAt(_ factor: Double) -> (layer: Double, experts: Double, e2a: Double) {
            let routedPerDie = routedMean * max(1, factor)
            let eightBit = model.weightType.isEightBit
            let routed = roofline(flops: routedPerDie * model.expertFlopsPerToken,
                                  bytes: expertsPerRoutedDie * model.expertWeightBytes, eightBit: eightBit)
            let shared = sharedPerDie > 0
                ? roofline(flops: sharedPerDie * model.expertFlopsPerToken, bytes: model.expertWeightBytes, eightBit: eightBit) : 0
            let experts = max(routed, shared) * input.expertSlowdown
            let e2a = expertToAttention(tokens: domainTokens, receivers: layout.dpPerDomain,
                                        expertDies: layout.expertDies, sharedExpertDies: layout.sharedExpertDies,
                                        moeLoadFactor: factor)
            let chain = attention + a2e + experts + e2a
            let domainPath = max(chain, mb * attention, mb * (a2e + e2a))
            return (max(domainPath, Double(layout.attentionDomains) * mb * experts), experts, e2a)
        }
        var mean = layerAt(input.moeLoadFactor)
        if let factors = input.moeLoadFactorPerLayer, !factors.isEmpty {
            // The mean over the layers as the first plus the mean deviation from it, as the colocated
            // step takes it (``decodeMoELayers``): identical layers give the single-factor layer exactly.
            let scale = input.moeLoadFactorPerLayerScale, n = Double(factors.count)
            let first = layerAt(factors[0] * scale)
            mean = first
            for i in 1..<factors.count {
                let one = layerAt(factors[i] * scale)
                mean.layer += (one.layer - first.layer) / n
                mean.experts += (one.experts - first.experts) / n
                mean.e2a += (one.e2a - first.e2a) / n
            }
        }
        let layer = mean.layer
        var other = Double(model.layers - model.moeLayers) * decodeDenseLayer(requests: b, context: contextTokens, queryTokens: q, tp: 1)
        other += lmHead(tokens: b * q, tp: 1) + sampling(tokens: b * q)
        other += constants.graphLaunchSeconds * (mtpOn ? 2 : 1) + constants.schedulingSeconds
        if mtpOn { other += layer + lmHead(tokens: b, tp: 1) + sampling(tokens: b) }
        var breakdown = StepBreakdown()
        let layers = Double(model.moeLayers)
        breakdown.attention = layers * mb * attention
        breakdown.moe = layers * mb * mean.experts
        breakdown.dispatch = layers * mb * a2e
        breakdown.combine = layers * mb * mean.e2a
        breakdown.other = other
        return DecodeStepCost(stepSeconds: layers * layer + other, layerSeconds: layer,
                              tokensPerStep: 1 + (mtpOn ? mtpAcceptance : 0), breakdown: breakdown,
                              microbatches: layout.microbatches)
    }
}

/// What one decode step of a MoE–attention layout looks like to the cost model.
public struct MoEAttentionStepInput: Sendable, Equatable {
    /// Requests on the slowest attention die (the engine names it), or on every die (a bench,
    /// with ``contextSpread``).
    public var requestsPerDie: Double
    /// Mean context (KV length) of those requests.
    public var contextTokens: Double
    /// MTP acceptance rate; 0 disables MTP.
    public var mtpAcceptance: Double
    /// Requests per attention die on average, which set the experts' tokens; nil: ``requestsPerDie``.
    public var meanRequestsPerDie: Double?
    /// Hottest routed die's load over the mean (1: balanced), and the same layer by layer (nil:
    /// every layer at ``moeLoadFactor``), times ``moeLoadFactorPerLayerScale``.
    public var moeLoadFactor: Double
    public var moeLoadFactorPerLayer: [Double]?
    public var moeLoadFactorPerLayerScale: Double = 1
    /// Slowdown of the slowest attention die and of the slowest expert die (straggler faults).
    public var attentionSlowdown: Double = 1
    public var expertSlowdown: Double = 1
    /// Coefficient of variation of the requests' contexts on an attention die: 0 when the caller
    /// already names the slowest die (the engine); a bench passes ``CostConstants/contextSpread``,
    /// as for a colocated layout's DP groups (``DecodeStepInput/contextSpread``).
    public var contextSpread: Double = 0

    public init(requestsPerDie: Double, contextTokens: Double, mtpAcceptance: Double, moeLoadFactor: Double = 1) {
        self.requestsPerDie = requestsPerDie
        self.contextTokens = contextTokens
        self.mtpAcceptance = mtpAcceptance
        self.moeLoadFactor = moeLoadFactor
    }
}
