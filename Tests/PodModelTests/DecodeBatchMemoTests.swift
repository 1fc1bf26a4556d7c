import SimKit
import Testing
@testable import PodModel

/// A decode step priced through a ``DecodeBatchMemo`` (the engine's way: the figures its batch
/// size fixes kept from earlier steps) is the step priced from scratch, bit for bit: the memo only
/// saves work, it never changes a report.
@Suite struct DecodeBatchMemoTests {
    /// Every figure of a step, as bit patterns (`==` on Double would let -0 pass for +0).
    private func bits(_ step: DecodeStepCost) -> [UInt64] {
        let b = step.breakdown
        return [step.stepSeconds, step.layerSeconds, step.tokensPerStep, b.attention, b.moe, b.dispatch, b.combine,
                b.other].map(\.bitPattern) + [UInt64(step.microbatches)]
    }

    /// Layouts of the engine's kinds: DeepSeek-R1 on the 910C at EP 320 (shared-expert dies) and EP 16
    /// at TP 2, a GQA MoE on H100 at TP 4, and a dense model (which the memo leaves alone).
    private let layouts: [(cost: CostModel, dies: Int, slots: Int, shared: Int, tp: Int)] = [
        (CostModel(model: .deepSeekR1, hardware: .ascend910C), 320, 288, 32, 1),
        (CostModel(model: .deepSeekR1, hardware: .ascend910C), 16, 256, 0, 2),
        (CostModel(model: .qwen3_235B, hardware: .nvidiaH100), 8, 128, 0, 4),
        (CostModel(model: .llama2_7B, hardware: .nvidiaA100), 1, 0, 0, 1),
    ]

    /// A run of steps on one TE: a few batch sizes coming back (memo hits), the context growing,
    /// fresh load factors, stragglers, forced microbatches and per-layer load factors now and then.
    @Test func aMemoisedStepIsTheStepBitForBit() {
        var rng = RandomStreams(seed: 29).stream("decode-batch-memo")
        for layout in layouts {
            var memo = DecodeBatchMemo()
            for step in 0..<800 {
                let batch = Double([1, 2, 3, 7, 16, 48, 96, 128, 255][Int(rng.uniform() * 9)])
                var input = DecodeStepInput(requestsPerGroup: batch, contextTokens: Double(step * 3) + (rng.uniform() * 8_192).rounded(),
                                            mtpAcceptance: step % 97 < 80 ? 0.7 : 0, dpGroups: max(1, layout.dies / layout.tp),
                                            expertDies: layout.dies, routedSlots: layout.slots,
                                            sharedExpertDies: layout.shared, moeLoadFactor: 1 + rng.uniform() * 2)
                input.attentionTP = layout.tp
                input.requestsPerInstance = batch * Double(max(1, layout.dies / layout.tp)) * (0.5 + rng.uniform())
                if rng.uniform() < 0.1 { input.attentionSlowdown = 1 + rng.uniform() }
                if rng.uniform() < 0.1 { input.expertSlowdown = 1 + rng.uniform() }
                if rng.uniform() < 0.05 { input.microbatches = 1 + Int(rng.uniform() * 2) }
                if rng.uniform() < 0.05 { input.moeLoadFactorPerLayer = (0..<4).map { _ in 1 + rng.uniform() } }
                if rng.uniform() < 0.05 { input.contextSpread = 0.3 }
                let memoised = layout.cost.decodeStep(input, memo: &memo)
                let plain = layout.cost.decodeStep(input)
                #expect(bits(memoised) == bits(plain), "step \(step) of \(layout.cost.model.name) at batch \(batch)")
            }
        }
    }

    /// Runs of steps at one batch size (a decode TE's slowest group mostly keeps its size from
    /// step to step, which the memo answers from its last size), broken by other sizes, sizes it
    /// does not keep and shape changes at the same size: still the step priced from scratch.
    @Test func aBatchPricedAgainAtOnceIsTheStepBitForBit() {
        var rng = RandomStreams(seed: 31).stream("decode-batch-runs")
        var memo = DecodeBatchMemo()
        var batch = 4.0
        for step in 0..<1_500 {
            if rng.uniform() < 0.1 { batch = [1, 4, 5, 96, 0.5, -0.0, 0][Int(rng.uniform() * 7)] }
            let layout = layouts[step / 200 % 3 == 2 && rng.uniform() < 0.3 ? 1 : 0]
            var input = DecodeStepInput(requestsPerGroup: batch, contextTokens: Double(1_000 + step),
                                        mtpAcceptance: step % 300 < 250 ? 0.7 : 0, dpGroups: max(1, layout.dies / layout.tp),
                                        expertDies: layout.dies, routedSlots: layout.slots,
                                        sharedExpertDies: layout.shared, moeLoadFactor: 1 + rng.uniform())
            input.attentionTP = layout.tp
            input.requestsPerInstance = max(1, batch) * Double(max(1, layout.dies / layout.tp))
            #expect(bits(layout.cost.decodeStep(input, memo: &memo)) == bits(layout.cost.decodeStep(input)),
                    "step \(step) at batch \(batch)")
        }
    }

    /// A memo filled for one shape or model is not read for another: the same memo taken across
    /// layouts (and a model changed in place) still prices each step as from scratch.
    @Test func aMemoFollowsTheShapeAndTheModel() {
        var memo = DecodeBatchMemo()
        var changed = layouts[0].cost
        for round in 0..<3 {
            for layout in layouts + [(cost: changed, dies: 320, slots: 288, shared: 32, tp: 1)] {
                var input = DecodeStepInput(requestsPerGroup: 96, contextTokens: 4_096, mtpAcceptance: round == 1 ? 0 : 0.7,
                                            dpGroups: max(1, layout.dies / layout.tp), expertDies: layout.dies,
                                            routedSlots: layout.slots, sharedExpertDies: layout.shared, moeLoadFactor: 1.3)
                input.attentionTP = layout.tp
                #expect(bits(layout.cost.decodeStep(input, memo: &memo)) == bits(layout.cost.decodeStep(input)))
            }
            changed.constants.gemmEfficiency *= 0.9
        }
    }

    /// Batches the memo does not keep (fractional, past its largest, -0) are priced in full.
    @Test func batchesOutsideTheMemoArePricedInFull() {
        let cost = layouts[0].cost
        var memo = DecodeBatchMemo()
        for batch in [0.5, 95.5, Double(DecodeBatchMemo.largestBatch + 1), -0.0, 0] {
            let input = DecodeStepInput(requestsPerGroup: batch, contextTokens: 2_048, mtpAcceptance: 0.7,
                                        expertDies: 320, routedSlots: 288, sharedExpertDies: 32, moeLoadFactor: 1.2)
            #expect(bits(cost.decodeStep(input, memo: &memo)) == bits(cost.decodeStep(input)), "batch \(batch)")
        }
    }
}
