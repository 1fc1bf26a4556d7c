import PodModel
import SimKit
import Testing

@testable import ServingEngine

/// `--model` on a preset (``Deployment/fitted(to:)``): the fitted layouts run, not only validate.
@Suite(.timeLimit(.minutes(10))) struct FittedModelTests {
    /// Kimi K2 on the superpod's decode TE holds two expert slots per die (576 over 288 routed
    /// dies); Qwen3 on MoE–attention replicates each expert on two dies, 32 expert dies unused.
    @Test(arguments: [("superpod", "kimi-k2"), ("xdeepserve-ma", "qwen3-235b-a22b"), ("colocated-288", "kimi-k2")])
    func aFittedPresetRunsAndCompletesRequests(preset: String, model: String) throws {
        let spec = try ModelSpec.named(model)
        let fit = try #require(Deployment.preset(preset)).fitted(to: spec)
        #expect(!fit.changes.isEmpty)
        let engine = try ServingEngineTests.synthetic(fit.deployment, rate: 20, limit: 60)
        engine.run(until: 5)
        ServingEngineTests.expectConserved(engine, "\(preset) \(model) at 5 s")
        #expect(engine.runToCompletion(limit: 600))
        let report = engine.report()
        #expect(report.model == model)
        #expect(report.requests.completed == 60 && report.requests.failed == 0)
        #expect(engine.audit() == [])
        #expect(report.latencyMs.ttft.p50 > 0 && report.latencyMs.tpot.p50 > 0)
        // The hottest expert die carries at least the mean: an imbalance below 1 is a wrong count.
        #expect(report.experts.imbalance >= 1 && report.experts.imbalance.isFinite)
        let moeShare = try #require(report.experts.moeShareOfStep)
        #expect(moeShare > 0 && moeShare.isFinite)
    }

    /// Llama-3-70B's 141 GB of BF16 weights on one 64 GB die (the presets' decode groups are
    /// tp 1, sized for DeepSeek's experts) was refused by the engine as it started; the fitter
    /// now raises TP to the smallest that splits the heads and leaves KV room: tp 4.
    @Test(arguments: ["superpod", "cloudmatrix-infer", "colocated-288"])
    func aDenseModelTooBigForOneDieGetsTheTPItNeeds(preset: String) throws {
        let deployment = try #require(Deployment.preset(preset))
        let fit = try deployment.fitted(to: .llama3_70B)
        let before = try #require(deployment.group(.decode))
        let decode = try #require(fit.deployment.group(.decode))
        #expect(decode.tp == 4 && decode.dp == before.dp / 4 && decode.npusEach == before.npusEach)
        #expect(fit.changes.contains { $0.hasPrefix("decode group tp 1 → 4, dp \(before.dp) → \(before.dp / 4) (") })
        let engine = try ServingEngineTests.synthetic(fit.deployment, rate: 20, limit: 40)
        #expect(engine.runToCompletion(limit: 600))
        #expect(engine.report().requests.completed == 40)
        #expect(engine.audit() == [])
    }

    /// Every preset × every catalogue model the fitter accepts builds an engine: a fitted layout
    /// the engine then refused (Kimi K2's 24 expert slots per die on xdeepserve-ma's external
    /// 910B prefill dies, Llama-3-70B's 141 GB at tp 1 on a 64 GB die) was no answer to "what if
    /// we served this model here". Only a dense model on MoE–attention is refused, by the fitter.
    @Test(arguments: Deployment.presetNames)
    func everyFittedPresetBuildsAnEngine(preset: String) throws {
        for model in ModelSpec.catalogue {
            let deployment = try #require(Deployment.preset(preset))
            guard let fit = try? deployment.fitted(to: model) else {
                #expect(model.moe == nil && deployment.moeAttention != nil, "\(preset) \(model.name): fitter refused")
                continue
            }
            try fit.deployment.validate()
            #expect(throws: Never.self, "\(preset) \(model.name)") {
                _ = try ServingEngine(configuration: EngineConfiguration(deployment: fit.deployment))
            }
        }
    }

    /// A fitted prefill group holds the engine's own prefill batch (16K tokens per NPU, 4K
    /// prompts), not only one KV block: Kimi K2's external 910B instances grown to 20 NPUs
    /// left 1.8 GB a die, and `bench prefill` at that batch said "does not fit" (58.3 GB of 57.6).
    @Test(arguments: Deployment.presetNames)
    func everyFittedPrefillGroupHoldsTheEnginesPrefillBatch(preset: String) throws {
        let deployment = try #require(Deployment.preset(preset))
        guard deployment.group(.prefill) != nil else { return }
        for model in ModelSpec.catalogue where model.moe != nil || deployment.moeAttention == nil {
            let fit = try deployment.fitted(to: model)
            let tokens = Double(EngineConfiguration(deployment: fit.deployment).prefillTokensPerNPU)
            #expect(throws: Never.self, "\(preset) \(model.name)") {
                _ = try Bench.prefill(deployment: fit.deployment, promptLen: 4096, tokensPerNPU: tokens)
            }
        }
    }

    /// An external MoE group the fitter cannot grow (the devices external groups of its hardware
    /// may use together are taken) is left for the engine's refusal, which advised "give each
    /// instance more NPUs": a layout validation refuses next. It says the bound and how many
    /// instances of the size needed fit: xdeepserve-ma's 910B prefill group as 60 instances,
    /// Kimi K2's 384 slots needing 19 routed-expert dies (19 NPUs) each, 1,140 of 1,024.
    @Test func anExternalGroupAtItsDeviceBoundIsRefusedWithTheBound() throws {
        var ma = try #require(Deployment.preset("xdeepserve-ma"))
        let p = try #require(ma.groups.firstIndex { $0.role == .prefill && $0.external })
        ma.groups[p].count = 60
        let fit = try ma.fitted(to: .kimiK2)
        #expect(fit.deployment.groups[p].npusEach == ma.groups[p].npusEach, "the fitter could not grow it")
        try fit.deployment.validate()
        let refusal = try #require(ServingEngine.noKVRoomRefusal(for: fit.deployment))
        let text = refusal.description
        #expect(text.contains("need at least 19 routed-expert dies per instance, 19 ascend-910b NPUs: 60 such instances "
            + "would take external ascend-910b NPU groups to 1140 devices, more than the 1024 they may use together; "
            + "use at most 53 instances (count) with more NPUs each (npus, dp, ep), or a smaller model"), "\(text)")
        // Below the bound the advice is as before.
        ma.groups[p].count = 8
        var small = try ma.fitted(to: .kimiK2).deployment
        small.groups[p] = ma.groups[p]
        small.groups[p].count = 8
        let plain = try #require(ServingEngine.noKVRoomRefusal(for: small)).description
        #expect(plain.hasSuffix("need at least 19 routed-expert dies per instance: give each instance more NPUs (npus, dp, ep)"),
                "\(plain)")
    }
}
