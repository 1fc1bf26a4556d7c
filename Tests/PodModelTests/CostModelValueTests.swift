import Testing
@testable import PodModel

/// `CostModel` keeps its fields in a shared copy-on-write box (a copy is one retain): it must
/// still behave as a value. A change to one copy never shows in another, and a changed model
/// recomputes the per-model terms each step reads.
@Suite struct CostModelValueTests {
    private func step(_ cost: CostModel) -> Double {
        cost.decodeStep(DecodeStepInput(requestsPerGroup: 32, contextTokens: 2_048, mtpAcceptance: 0,
                                        dpGroups: 1, expertDies: 1, routedSlots: 1, sharedExpertDies: 0)).stepSeconds
    }

    @Test func aChangedCopyLeavesTheOriginalAsItWas() {
        let original = CostModel(model: .llama2_7B, hardware: .nvidiaA100)
        let before = step(original)
        var faster = original
        faster.constants.gemmEfficiency = 0.99
        faster.hardware.hbmBytesPerSecondPerDie *= 2
        #expect(original.constants.gemmEfficiency == CostConstants.default.gemmEfficiency)
        #expect(original.hardware.hbmBytesPerSecondPerDie == HardwareProfile.nvidiaA100.hbmBytesPerSecondPerDie)
        #expect(step(original) == before, "the original's step time moved with its copy")
        #expect(step(faster) < before, "the copy's own change has no effect")
        // And the other way round: changing the original after the copy leaves the copy alone.
        var changed = original
        let copy = changed
        changed.constants.hbmEfficiency = 0.5
        #expect(copy.constants.hbmEfficiency == CostConstants.default.hbmEfficiency)
        #expect(step(copy) == before && step(changed) > before)
    }

    @Test func aNewModelRecomputesTheTermsItsStepsRead() {
        var cost = CostModel(model: .llama2_7B, hardware: .nvidiaA100)
        let small = step(cost)
        cost.model = .llama3_70B
        let fresh = CostModel(model: .llama3_70B, hardware: .nvidiaA100)
        #expect(cost.vectorBytesPerTokenPerLayer == fresh.vectorBytesPerTokenPerLayer)
        #expect(step(cost) == step(fresh) && step(cost) > small)
    }
}
