import Testing
@testable import PodModel
@testable import ServingEngine

/// `bench` refuses what the engine cannot hold, by the engine's own weights and HBM share (it
/// checked against all of a die's HBM with weights counted its own way).
@Suite struct BenchFitTests {
    @Test func benchRefusesABatchBeyondTheEnginesShareOfHBM() throws {
        let h100 = try Deployment.inlineColocated("colocated:1:llama-2-7b:nvidia-h100:tp1")
        // 13.5 GB of weights + 64.4 GB of KV: under the die's 80 GB, over the 72 GB the engine keeps.
        #expect(throws: ConfigError.self) {
            try Bench.decode(deployment: h100, batchPerDie: 120, context: 1024, mtpAcceptance: 0)
        }
        do {
            _ = try Bench.decode(deployment: h100, batchPerDie: 120, context: 1024, mtpAcceptance: 0)
        } catch {
            #expect("\(error)".contains("one nvidia-h100 GPU has 80 GB, 72.0 GB of it for weights and KV (90%, as the engine keeps)"),
                    "\(error)")
        }
        // What the engine's KV holds fits.
        _ = try Bench.decode(deployment: h100, batchPerDie: 100, context: 1024, mtpAcceptance: 0)
    }

    @Test func benchAndEngineCountTheSameWeightsPerDie() throws {
        // deepseek-r1 on tp8 910C dies: bench said 83.5 GB per die where the engine's layout held 85.3.
        let model = ModelSpec.deepSeekR1
        let group = InstanceGroup(role: .colocated, count: 1, npusEach: 4, firstNPU: 0, tp: 8, dp: 1, ep: 8)
        let engine = model.weightBytesPerDie(tp: 8, routedDies: 8, routedSlots: group.routedSlots(for: model),
                                             attentionOnly: false)
        do {
            try Bench.checkHBM(model: model, hardware: .ascend910C, group: group, batchPerDie: 1, context: 1)
            Issue.record("85 GB of weights cannot fit a 64 GB die")
        } catch {
            #expect("\(error)".contains(String(format: "weights %.1f GB", engine / 1e9)), "\(error)")
        }
    }

    /// The bench prices its slowest DP group (the slowest attention die, in a MoE–attention
    /// layout) above the mean context, by the spread of KV lengths: the fit check held the mean's
    /// KV, so 234 requests per die at 4096 tokens and cv 1 were priced though that group's die
    /// holds 44.5 GB of KV beside 20.1 GB of weights, past the 57.6 GB the engine keeps.
    @Test func benchFitsTheKVOfTheGroupItPrices() throws {
        let cases: [(Deployment, Double, String)] = [(.superpod, 234, "the slowest DP group (of 320)"),
                                                     (.xDeepServeMA, 240, "the slowest attention die (of 480)")]
        for (deployment, batch, who) in cases {
            do {
                _ = try Bench.decode(deployment: deployment, batchPerDie: batch, context: 4096, mtpAcceptance: 0.7,
                                     contextCV: 1)
                Issue.record("\(deployment.name): the slowest group's KV does not fit")
            } catch {
                #expect("\(error)".contains("does not fit \(who)"), "\(error)")
            }
            // At one context for every request, every group holds the mean's KV: it fits.
            _ = try Bench.decode(deployment: deployment, batchPerDie: batch, context: 4096, mtpAcceptance: 0.7,
                                 contextCV: 0)
        }
        do {
            _ = try Bench.decode(deployment: .superpod, batchPerDie: 234, context: 4096, mtpAcceptance: 0.7, contextCV: 1)
        } catch {
            #expect("\(error)".contains("(weights 20.1 GB + KV 44.5 GB)"), "\(error)")
        }
    }

    /// A decode step over no KV (context 0) was priced: no decode request holds less than its
    /// prompt, at least one token. Refused; one token is the least.
    @Test func benchDecodeRefusesAContextOfNoTokens() throws {
        let d = try Deployment.inlineColocated("colocated:1:llama-2-7b:nvidia-a100:tp1")
        #expect(throws: ConfigError.self) { try Bench.decode(deployment: d, batchPerDie: 1, context: 0, mtpAcceptance: 0) }
        _ = try Bench.decode(deployment: d, batchPerDie: 1, context: 1, mtpAcceptance: 0)
    }

    /// A dense model's result carries no EPLB mode or routing skew (it has no experts); a MoE
    /// model's carries what it was priced with.
    @Test func aDenseResultCarriesNoExpertSettings() throws {
        let d = try Deployment.inlineColocated("colocated:1:llama-2-7b:nvidia-a100:tp1")
        let decode = try Bench.decode(deployment: d, batchPerDie: 1, context: 1024, mtpAcceptance: 0)
        let prefill = try Bench.prefill(deployment: d, promptLen: 1024, tokensPerNPU: 4096)
        #expect(decode.eplb == nil && decode.routing == nil && prefill.eplb == nil && prefill.routing == nil)
        let moe = try Bench.decode(deployment: .cloudMatrixInfer, batchPerDie: 8, context: 1024, mtpAcceptance: 0, eplb: .off)
        #expect(moe.eplb == .off && moe.routing == .skewed)
    }
}
