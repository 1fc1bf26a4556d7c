import Testing
@testable import PodModel

/// A bench's spread of KV lengths puts the slowest DP group (or attention die) above the mean
/// context, but no request holds more KV than the model's context window: at a mean context at
/// the window every request is at the window, whatever the spread asked for.
@Suite struct SlowestGroupWindowTests {
    let cost = CostModel(model: .deepSeekR1, hardware: .ascend910C)
    var window: Double { Double(ModelSpec.deepSeekR1.contextWindow) }

    /// `bench decode --batch-per-die 1 --context 131072 --context-cv 3` priced the slowest group's
    /// one request at 1.27 M tokens of KV, 9.7 windows (step 109 ms against 28 ms at cv 0).
    @Test func theSlowestGroupOfAColocatedStepHoldsNoMoreThanTheWindow() {
        func step(context: Double, spread: Double) -> DecodeStepCost {
            var input = DecodeStepInput(requestsPerGroup: 1, contextTokens: context, mtpAcceptance: 0.7, expertDies: 320,
                                        routedSlots: 288, sharedExpertDies: 32, moeLoadFactor: 1.2)
            input.contextSpread = spread
            return cost.decodeStep(input)
        }
        for spread in [0.29, 1, 3] {
            #expect(step(context: window, spread: spread) == step(context: window, spread: 0), "cv \(spread)")
        }
        // Below the window the spread still slows the barrier.
        #expect(step(context: 4096, spread: 1).stepSeconds > step(context: 4096, spread: 0).stepSeconds)
    }

    /// The same for the slowest attention die of a MoE–attention layout (A2E waits for it).
    @Test func theSlowestAttentionDieHoldsNoMoreThanTheWindow() throws {
        let layout = try #require(Deployment.xDeepServeMA.moeAttention)
        func step(context: Double, spread: Double) -> DecodeStepCost {
            var input = MoEAttentionStepInput(requestsPerDie: 1, contextTokens: context, mtpAcceptance: 0.7, moeLoadFactor: 1.2)
            input.contextSpread = spread
            return cost.decodeStepMoEAttention(layout, input)
        }
        #expect(step(context: window, spread: 3) == step(context: window, spread: 0))
        #expect(step(context: 4096, spread: 1).stepSeconds > step(context: 4096, spread: 0).stepSeconds)
    }
}
