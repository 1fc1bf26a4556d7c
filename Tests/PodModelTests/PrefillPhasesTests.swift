import SimKit
import Testing
@testable import PodModel

/// A prefill layer's phases are held in place (``CostModel/PrefillPhases``, issue 12) rather than
/// in an array per layer: they must read back as written, bit for bit and in order, and the
/// layer's flow-shop time must add them up as the array did.
@Suite struct PrefillPhasesTests {
    typealias Phase = CostModel.PrefillPhase

    /// The flow-shop time of `phases` as it was worked out from an array of them.
    static func flowShop(_ phases: [Phase], microbatches m: Int) -> Double {
        let chain = phases.reduce(0) { $0 + $1.exposedSeconds }
        guard m > 1 else { return chain }
        var cores = 0.0, tpLinks = 0.0, fabric = 0.0
        for p in phases {
            switch p.resource {
            case .cores: cores += p.seconds
            case .tpLinks: tpLinks += p.seconds
            case .fabric: fabric += p.seconds
            }
        }
        return max(chain, Double(m) * max(max(cores, tpLinks), fabric))
    }

    @Test func phasesReadBackAsWrittenAndAddUpAsAnArrayOfThem() {
        var rng = RandomStreams(seed: 5).stream("prefill-phases")
        for _ in 0..<500 {
            let count = rng.int(in: 0...CostModel.PrefillPhases.capacity)
            var written: [Phase] = []
            var phases = CostModel.PrefillPhases()
            for _ in 0..<count {
                let seconds = rng.uniform() * 1e-3
                let phase = Phase(onFabric: rng.bernoulli(0.5), seconds: seconds, tp: rng.bernoulli(0.5),
                                  exposed: rng.bernoulli(0.2) ? seconds * rng.uniform() : nil)
                written.append(phase)
                phases.append(phase)
            }
            #expect(phases.count == count && phases.indices == 0..<count)
            for i in phases.indices {
                #expect(phases[i].resource == written[i].resource)
                #expect(phases[i].seconds.bitPattern == written[i].seconds.bitPattern)
                #expect(phases[i].exposedSeconds.bitPattern == written[i].exposedSeconds.bitPattern)
            }
            for m in 1...3 {
                #expect(CostModel.flowShop(phases, microbatches: m).bitPattern
                        == Self.flowShop(written, microbatches: m).bitPattern)
            }
            // A phase's time changed in place (the per-layer load factors' mean) reads back changed.
            if count > 0 {
                let i = rng.int(in: 0...(count - 1))
                phases[i].seconds += 1
                written[i].seconds += 1
                #expect(phases[i].seconds.bitPattern == written[i].seconds.bitPattern)
                #expect(phases[i].resource == written[i].resource)
            }
        }
    }

    /// A MoE layer's eight phases and a dense layer's: the batch prices them as before (the
    /// breakdown reads the MoE layer's phases by position).
    @Test func aPrefillBatchHasItsEightMoEPhases() {
        let cost = CostModel(model: .deepSeekR1, hardware: .ascend910C)
        var input = PrefillBatchInput(tokensPerDie: 4_096, promptTokens: 8_192, attentionTP: 1, expertDies: 32,
                                      routedSlots: 288)
        input.moeLoadFactor = 1.2
        let moe = cost.prefillPhases(input, tokens: 2_048, moeLayer: true)
        #expect(moe.count == 8)
        #expect((0..<8).map { moe[$0].resource } == [.cores, .tpLinks, .cores, .tpLinks, .cores, .fabric, .cores, .fabric])
        let batch = cost.prefillBatch(input)
        #expect(batch.breakdown.dispatch == 58 * 2 * moe[5].seconds)
        #expect(batch.breakdown.combine == 58 * 2 * moe[7].seconds)
        #expect(cost.prefillPhases(input, tokens: 2_048, moeLayer: false).count < 8)
    }
}

/// The engine prices a prefill batch over its layers' load bins scaled by the batch's routing
/// noise, as it prices a decode step (``PrefillBatchInput/moeLoadFactorPerLayerScale``): the
/// scale multiplies each layer's factor, and a skewed spread of layers prices a batch dearer
/// than their mean load alone once the mildest sit on the balanced floor.
@Suite struct PrefillLayerScaleTests {
    private func input(_ factors: [Double]?, scale: Double = 1, mean: Double = 1) -> PrefillBatchInput {
        var input = PrefillBatchInput(tokensPerDie: 2_048, promptTokens: 4_096, attentionTP: 1, expertDies: 32,
                                      routedSlots: 288)
        input.moeLoadFactor = mean
        input.moeLoadFactorPerLayer = factors
        input.moeLoadFactorPerLayerScale = scale
        return input
    }

    @Test func theScaleMultipliesEveryLayersFactor() {
        let cost = CostModel(model: .deepSeekR1, hardware: .ascend910C)
        let factors = [1.0, 1.4, 2.5, 7.0]
        for scale in [0.8, 1.0, 1.17] {
            let scaled = cost.prefillBatch(input(factors, scale: scale))
            let multiplied = cost.prefillBatch(input(factors.map { $0 * scale }))
            #expect(scaled == multiplied, "scale \(scale)")
        }
        // 1 leaves the factors as given (`bench prefill`'s bits).
        #expect(cost.prefillBatch(input(factors, scale: 1)) == cost.prefillBatch(input(factors)))
        // The spread costs more than its mean load alone.
        let mean = factors.reduce(0, +) / Double(factors.count)
        #expect(cost.prefillBatch(input(factors)).batchSeconds > cost.prefillBatch(input(nil, mean: mean)).batchSeconds)
    }
}
