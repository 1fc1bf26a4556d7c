import SimKit
import Testing
@testable import PodModel

/// The decode scheduler's pick of one or two microbatches (system.md §4b) skips pricing two when
/// a lower bound already loses to one. The bound must never exceed the two-microbatch step, and
/// the pick must stay the faster of the two forced candidates, bit for bit.
@Suite struct MicrobatchChoiceTests {
    private struct Case {
        var cost: CostModel
        var input: DecodeStepInput
    }

    /// A seeded spread of decode steps: DeepSeek-R1 on the 910C at EP 320 and EP 16 (TP 1 and 2),
    /// and a GQA MoE on H100 at TP 4; batches 1…256, contexts 0…32K, MTP on and off, stragglers.
    private func cases(count: Int) -> [Case] {
        var rng = RandomStreams(seed: 11).stream("microbatch-choice")
        let layouts: [(CostModel, dies: Int, slots: Int, shared: Int, tp: Int)] = [
            (CostModel(model: .deepSeekR1, hardware: .ascend910C), 320, 288, 32, 1),
            (CostModel(model: .deepSeekR1, hardware: .ascend910C), 16, 256, 0, 2),
            (CostModel(model: .qwen3_235B, hardware: .nvidiaH100), 8, 128, 0, 4),
        ]
        return (0..<count).map { i in
            let layout = layouts[i % layouts.count]
            let batch = Double(1 + Int(rng.uniform() * 256))
            var input = DecodeStepInput(requestsPerGroup: batch, contextTokens: (rng.uniform() * 32_768).rounded(),
                                        mtpAcceptance: rng.uniform() < 0.5 ? 0 : 0.7, dpGroups: layout.dies / layout.tp,
                                        expertDies: layout.dies, routedSlots: layout.slots,
                                        sharedExpertDies: layout.shared, moeLoadFactor: 1 + rng.uniform() * 3)
            input.attentionTP = layout.tp
            input.requestsPerInstance = batch * Double(layout.dies / layout.tp) * (0.5 + rng.uniform())
            if rng.uniform() < 0.2 { input.attentionSlowdown = 1 + rng.uniform() }
            if rng.uniform() < 0.2 { input.expertSlowdown = 1 + rng.uniform() }
            // Layer by layer, as the engine and bench price skewed routing: heavy-tailed loads
            // (mostly mild, some up to 30×), and the engine's per-step noise scale.
            if rng.uniform() < 0.4 {
                input.moeLoadFactorPerLayer = (0..<(1 + Int(rng.uniform() * 8))).map { _ in { let u = rng.uniform(); return 1 + u * u * u * 29 }() }
                if rng.uniform() < 0.5 { input.moeLoadFactorPerLayerScale = 0.9 + rng.uniform() * 0.2 }
            }
            return Case(cost: layout.0, input: input)
        }
    }

    private func forced(_ c: Case, _ m: Int) -> DecodeStepCost {
        var input = c.input
        input.microbatches = m
        return c.cost.decodeStep(input)
    }

    @Test func theFloorNeverExceedsTheTwoMicrobatchStep() {
        for c in cases(count: 600) {
            let floor = c.cost.twoMicrobatchesFloor(c.input, shared: c.cost.decodeStepShared(c.input))
            let two = forced(c, 2).stepSeconds
            #expect(floor <= two, "floor \(floor) above the two-microbatch step \(two) for \(c.input)")
        }
    }

    @Test func thePickIsTheFasterCandidateBitForBit() {
        var skipped = 0, two = 0
        for c in cases(count: 600) {
            let picked = c.cost.decodeStep(c.input)
            let (one, both) = (forced(c, 1), forced(c, 2))
            let expected = both.stepSeconds < one.stepSeconds ? both : one
            #expect(picked == expected, "picked \(picked.microbatches) microbatches for \(c.input)")
            if c.cost.twoMicrobatchesFloor(c.input, shared: c.cost.decodeStepShared(c.input)) >= one.stepSeconds {
                skipped += 1
            }
            if picked.microbatches == 2 { two += 1 }
        }
        // Both branches are exercised: small batches skip the second candidate, large ones take it.
        #expect(skipped > 0 && two > 0, "skipped \(skipped), two microbatches \(two)")
    }

    /// The one-microbatch MoE layer takes its attention from the step's dense-layer figure
    /// (``CostModel/DecodeStepShared/wholeDieAttention``): the very layer it works out alone, bit
    /// for bit, per-layer factors included; two microbatches ignore it.
    @Test func theStepsWholeDieAttentionIsTheOneMicrobatchLayers() {
        for (i, c) in cases(count: 300).enumerated() {
            var input = c.input
            if i % 5 == 0 { input.moeLoadFactorPerLayer = [1.2, 3.0, 1.1] }
            let shared = c.cost.decodeStepShared(input)
            for m in 1...2 {
                let given = c.cost.decodeMoELayers(input, queryTokens: shared.q, microbatches: m, context: shared.context,
                                                   shape: shared.shape,
                                                   wholeDieAttention: shared.wholeDieAttention)
                let worked = c.cost.decodeMoELayers(input, queryTokens: shared.q, microbatches: m,
                                                    context: shared.context, shape: shared.shape)
                let bits = { (l: CostModel.DecodeLayer) in
                    [l.attention, l.gateAndExperts, l.dispatch, l.combine, l.layer].map(\.bitPattern) + [UInt64(l.microbatches)]
                }
                #expect(bits(given) == bits(worked), "\(m) microbatches for \(input)")
            }
            // It is the dense layer's attention as that layer works it out.
            #expect(shared.wholeDieAttention == c.cost.decodeAttentionSeconds(
                requests: input.requestsPerGroup, context: shared.context, queryTokens: shared.q, tp: input.attentionTP))
        }
    }

    /// A step priced layer by layer is the first layer plus the layers' mean deviation from it,
    /// each layer priced alone at its factor times the step's scale: the load-free terms worked
    /// out once, and layers skipped whose hottest die is at the first's floor, change no bit.
    /// Factors at or below 1 and repeats put several layers on the balanced or shared-expert floor.
    @Test func layerByLayerIsTheMeanOfTheLayersPricedAlone() {
        var rng = RandomStreams(seed: 5).stream("layer-by-layer")
        var skippable = 0
        for c in cases(count: 240) {
            var input = c.input
            let menu: [Double] = [0.5, 1, 1, 1.05, 1.3, 2, 4, 30]
            input.moeLoadFactorPerLayer = (0..<(1 + Int(rng.uniform() * 9))).map { _ in menu[Int(rng.uniform() * 8)] }
            input.moeLoadFactorPerLayerScale = rng.uniform() < 0.5 ? 1 : 0.8 + rng.uniform() * 0.4
            let factors = input.moeLoadFactorPerLayer!
            let shared = c.cost.decodeStepShared(input)
            for m in 1...2 {
                let priced = c.cost.decodeMoELayers(input, queryTokens: shared.q, microbatches: m, context: shared.context,
                                                    shape: shared.shape)
                let alone = factors.map { f -> CostModel.DecodeLayer in
                    var one = input
                    one.moeLoadFactorPerLayer = nil
                    one.moeLoadFactor = f * input.moeLoadFactorPerLayerScale
                    return c.cost.decodeMoELayers(one, queryTokens: shared.q, microbatches: m, context: shared.context,
                                                  shape: shared.shape)
                }
                var mean = alone[0]
                let n = Double(alone.count)
                for one in alone.dropFirst() {
                    mean.gateAndExperts += (one.gateAndExperts - alone[0].gateAndExperts) / n
                    mean.dispatch += (one.dispatch - alone[0].dispatch) / n
                    mean.combine += (one.combine - alone[0].combine) / n
                    mean.layer += (one.layer - alone[0].layer) / n
                }
                if alone.dropFirst().contains(where: { $0.layer == alone[0].layer }) { skippable += 1 }
                let bits = { (l: CostModel.DecodeLayer) in
                    [l.attention, l.gateAndExperts, l.dispatch, l.combine, l.layer].map(\.bitPattern) + [UInt64(l.microbatches)]
                }
                #expect(bits(priced) == bits(mean), "\(m) microbatches, factors \(factors) for \(input)")
            }
        }
        // Layers equal to the first (the skipped case) occur.
        #expect(skippable > 50, "\(skippable)")
    }

    /// Each layer priced one by one is at least its two attention streams, so the floor holds for
    /// their mean too, and skips the second candidate for a small batch priced layer by layer
    /// (it bounded nothing there, and the engine prices every skewed step so).
    @Test func perLayerFactorsAreSkippedWhenOneMicrobatchWins() {
        var input = DecodeStepInput(requestsPerGroup: 2, contextTokens: 1_024, mtpAcceptance: 0.7, dpGroups: 320,
                                    expertDies: 320, routedSlots: 288, sharedExpertDies: 32)
        input.moeLoadFactorPerLayer = [1.2, 3.0, 1.1, 30]
        let cost = CostModel(model: .deepSeekR1, hardware: .ascend910C)
        var one = input, two = input
        (one.microbatches, two.microbatches) = (1, 2)
        let floor = cost.twoMicrobatchesFloor(input, shared: cost.decodeStepShared(input))
        #expect(floor >= cost.decodeStep(one).stepSeconds && floor <= cost.decodeStep(two).stepSeconds)
        #expect(cost.decodeStep(input) == cost.decodeStep(one))
    }
}
