import Testing
@testable import PodModel

/// The MoE–attention step (system.md §1.2): attention at the slowest attention die, experts at the
/// domain's mean load, each MoE layer at its own hottest expert die, stragglers at their barrier.
@Suite struct MoEAttentionStepTests {
    let cost = CostModel(model: .deepSeekR1, hardware: .ascend910C)
    let layout = Deployment.xDeepServeMA.moeAttention!

    func step(_ b: Double = 64, mean: Double? = nil, factor: Double = 4, perLayer: [Double]? = nil,
              attentionSlowdown: Double = 1, expertSlowdown: Double = 1) -> DecodeStepCost {
        var input = MoEAttentionStepInput(requestsPerDie: b, contextTokens: 4096, mtpAcceptance: 0.7, moeLoadFactor: factor)
        input.meanRequestsPerDie = mean
        input.moeLoadFactorPerLayer = perLayer
        input.attentionSlowdown = attentionSlowdown
        input.expertSlowdown = expertSlowdown
        return cost.decodeStepMoEAttention(layout, input)
    }

    /// The engine names the slowest attention die; the experts see every die's tokens, not that
    /// die's batch times the dies (which priced the experts as if every die were the slowest).
    @Test func expertsCarryTheMeanLoadNotTheSlowestDiesBatch() {
        let slowest = step(64), atMean = step(64, mean: 32), allAtMean = step(32)
        #expect(atMean.breakdown.moe < slowest.breakdown.moe * 0.6, "experts \(atMean.breakdown.moe) vs \(slowest.breakdown.moe)")
        #expect(atMean.breakdown.attention == slowest.breakdown.attention, "attention stays the slowest die's")
        #expect(atMean.breakdown.moe == allAtMean.breakdown.moe)
        #expect(allAtMean.stepSeconds < atMean.stepSeconds && atMean.stepSeconds < slowest.stepSeconds)
    }

    /// Each layer waits for its own hottest expert die: identical layers price as the mean factor
    /// bit for bit, and a few very hot layers cost more than their mean (the layer is convex in load).
    @Test func eachLayerWaitsForItsOwnHottestDie() {
        #expect(step(factor: 3, perLayer: [3, 3, 3, 3]) == step(factor: 3))
        let skewed = step(factor: 3, perLayer: [1, 1, 1, 9])
        #expect(skewed.stepSeconds > step(factor: 3).stepSeconds * 1.05, "\(skewed.stepSeconds)")
    }

    /// A bench's attention dies are not identical: their contexts spread, and A2E waits for the
    /// slowest of all the layout's attention dies (the domains share the expert dies layer by
    /// layer). The step at a spread is the step at that die's context (a die's mean length varies
    /// as CV/√requests; the slowest of 480 sits the expected maximum of as many normals above).
    @Test func aSpreadOfContextsSlowsTheA2EBarrier() {
        func at(_ b: Double, context: Double, spread: Double) -> DecodeStepCost {
            var input = MoEAttentionStepInput(requestsPerDie: b, contextTokens: context, mtpAcceptance: 0.7, moeLoadFactor: 1.2)
            input.contextSpread = spread
            return cost.decodeStepMoEAttention(layout, input)
        }
        let z = CostModel.expectedMaxZ(layout.attentionDies)
        #expect(layout.attentionDies == 480 && z > 2.8 && z < 3.1, "z \(z)")
        for b in [4.0, 64] {
            let even = at(b, context: 4096, spread: 0), spread = at(b, context: 4096, spread: 0.5)
            #expect(spread.stepSeconds > even.stepSeconds)
            #expect(spread.breakdown.moe == even.breakdown.moe, "the experts carry the mean load, not the slowest die's")
            let slowest = 4096 * (1 + 0.5 / b.squareRoot() * z)
            #expect(spread == at(b, context: slowest, spread: 0))
        }
        #expect(at(16, context: 4096, spread: 1).stepSeconds > at(16, context: 4096, spread: 0.5).stepSeconds)
    }

    /// A slow attention die holds A2E for every domain's microbatch; a slow expert die holds E2A.
    /// (Balanced experts for the attention die, hot ones for the expert die: each where its side
    /// bounds the layer.)
    @Test func aSlowDieSlowsItsOwnBarrier() {
        let balanced = step(factor: 1)
        let slowAttention = step(factor: 1, attentionSlowdown: 2)
        #expect(slowAttention.stepSeconds > balanced.stepSeconds * 1.3, "\(slowAttention.stepSeconds / balanced.stepSeconds)")
        #expect(slowAttention.breakdown.moe == balanced.breakdown.moe)
        let hot = step(factor: 4)
        let slowExperts = step(factor: 4, expertSlowdown: 2)
        #expect(slowExperts.stepSeconds > hot.stepSeconds * 1.3, "\(slowExperts.stepSeconds / hot.stepSeconds)")
        #expect(slowExperts.breakdown.attention == hot.breakdown.attention)
    }
}

/// An expert die of a MoE–attention layout holds every expert the routed dies share out among
/// themselves; with more experts than routed dies, it reads each of its experts' weights per
/// microbatch, as a colocated die reads its slots (``CostModel/DecodeExpertShape``).
@Suite struct MoEAttentionExpertSlotsTests {
    /// Kimi-K2's 384 experts on xdeepserve-ma's layout fitted to it (192 routed dies, 2 experts
    /// each): at one request per attention die the experts are memory-bound, and each microbatch
    /// read one expert's weights per die, as if the other held none (the step came out as
    /// DeepSeek-R1's, whose dies hold one expert each).
    @Test func anExpertDieHoldingTwoExpertsReadsBoth() throws {
        var layout = try #require(Deployment.xDeepServeMA.moeAttention)
        layout.expertDies = 224
        let model = ModelSpec.kimiK2
        let cost = CostModel(model: model, hardware: .ascend910C)
        let routedDies = Double(layout.expertDies - layout.sharedExpertDies)
        #expect(Double(model.moe!.routedExperts) / routedDies == 2)
        let step = cost.decodeStepMoEAttention(layout, MoEAttentionStepInput(requestsPerDie: 1, contextTokens: 4096,
                                                                             mtpAcceptance: 0, moeLoadFactor: 1))
        let perMicrobatch = step.breakdown.moe / Double(model.moeLayers * layout.microbatches)
        let hw = HardwareProfile.ascend910C
        let twoExpertsRead = 2 * model.expertWeightBytes / (hw.hbmBytesPerSecondPerDie * cost.constants.hbmEfficiency)
        #expect(perMicrobatch >= twoExpertsRead, "experts \(perMicrobatch * 1e6) µs, reading two experts takes \(twoExpertsRead * 1e6) µs")
        // The expert dies serve the three domains' two microbatches in turn: the layer is at least that.
        #expect(step.layerSeconds >= Double(layout.attentionDomains * layout.microbatches) * twoExpertsRead)
    }

    /// One expert per routed die (DeepSeek-R1 on xdeepserve-ma, the calibrated layout) reads one.
    @Test func anExpertDieHoldingOneExpertReadsOne() throws {
        let layout = try #require(Deployment.xDeepServeMA.moeAttention)
        let model = ModelSpec.deepSeekR1
        let cost = CostModel(model: model, hardware: .ascend910C)
        let step = cost.decodeStepMoEAttention(layout, MoEAttentionStepInput(requestsPerDie: 1, contextTokens: 4096,
                                                                             mtpAcceptance: 0, moeLoadFactor: 1))
        let perMicrobatch = step.breakdown.moe / Double(model.moeLayers * layout.microbatches)
        let hw = HardwareProfile.ascend910C
        let oneExpertRead = model.expertWeightBytes / (hw.hbmBytesPerSecondPerDie * cost.constants.hbmEfficiency)
        #expect(perMicrobatch >= oneExpertRead && perMicrobatch < 1.2 * oneExpertRead, "\(perMicrobatch * 1e6) µs")
    }
}
