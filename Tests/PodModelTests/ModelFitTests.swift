import Testing
@testable import PodModel

/// `--model` on a preset: the expert layout fitted to the model (``Deployment/fitted(to:)``).
@Suite struct ModelFitTests {
    func problem(_ body: () throws -> Void) -> String {
        do { try body() } catch { return "\(error)" }
        return "no error"
    }

    @Test func kimiOnTheSuperpodGetsWholeSlotsPerDecodeDie() throws {
        // Before: 384 + 32 = 416 slots over 288 routed-expert dies does not validate.
        var unfitted = Deployment.superpod
        unfitted.model = "kimi-k2"
        #expect(problem { try unfitted.validate() }.contains("416 slots over 288"))
        let fit = try Deployment.superpod.fitted(to: .kimiK2)
        try fit.deployment.validate()
        #expect(fit.deployment.model == "kimi-k2")
        let decode = try #require(fit.deployment.group(.decode))
        // Kimi has a shared expert: the 32 shared-expert dies stay; 576 = 2 × 288.
        #expect(decode.sharedExpertDies == 32 && decode.redundantExperts == 192 && decode.ep == 320)
        // Prefill: 384 + 32 = 416 = 13 × 32 already whole.
        #expect(fit.deployment.group(.prefill) == Deployment.superpod.group(.prefill))
        #expect(fit.changes == ["decode group redundant_experts 32 → 192 (576 slots: 2 per die on 288 routed-expert dies)"])
    }

    @Test func qwenDropsSharedExpertDiesThenFillsTheSlots() throws {
        let fit = try Deployment.superpod.fitted(to: .qwen3_235B)
        try fit.deployment.validate()
        let decode = try #require(fit.deployment.group(.decode))
        // No shared expert: all 320 dies hold routed experts, 128 + 192 = 320 slots, one per die.
        #expect(decode.sharedExpertDies == 0 && decode.redundantExperts == 192)
        #expect(fit.changes == [
            "decode group shared_expert_dies 32 → 0 (qwen3-235b-a22b has no shared expert; those dies hold routed experts)",
            "decode group redundant_experts 32 → 192 (320 slots: 1 per die on 320 routed-expert dies)",
        ])
        // colocated-288: 128 + 160 = 288 on 288 dies.
        let c = try Deployment.colocated288.fitted(to: .qwen3_235B)
        try c.deployment.validate()
        #expect(c.deployment.group(.decode)?.redundantExperts == 160)
    }

    @Test func redundantExpertsNeverShrinkAndStayInBounds() throws {
        // The smallest value ≥ the group's own: 256 routed dies take 384 + 128 = 512 slots, but
        // from 130 on the next whole count is 768 (3 per die), so 384, never back down to 128.
        var d = Deployment.colocated288
        d.groups[1].redundantExperts = 130
        let fit = try d.fitted(to: .kimiK2)
        #expect(fit.deployment.groups[1].redundantExperts == 384)
        try fit.deployment.validate()
        // From 1,023 the next whole count (1,440 slots over 288 dies) needs 1,056 redundant,
        // past maxRedundantExperts: the group is left for validation to refuse.
        var wide = Deployment.superpod
        wide.groups[1].redundantExperts = Deployment.maxRedundantExperts - 1
        let left = try wide.fitted(to: .kimiK2)
        #expect(left.deployment.groups[1].redundantExperts == Deployment.maxRedundantExperts - 1)
        #expect(!left.changes.contains { $0.contains("decode group redundant_experts") })
        #expect(problem { try left.deployment.validate() }.contains("does not divide the experts"))
    }

    @Test func moeAttentionKeepsWholeExpertsPerDieAndSaysWhatIsFreed() throws {
        let kimi = try Deployment.xDeepServeMA.fitted(to: .kimiK2)
        try kimi.deployment.validate()
        let ma = try #require(kimi.deployment.moeAttention)
        // 256 routed dies do not split 384 experts: 192 dies of 2 each, the 32 shared dies kept.
        #expect(ma.expertDies == 224 && ma.sharedExpertDies == 32 && ma.trampolineDies == 160)
        // (Its external prefill instances grow too: kimiOnMoEAttentionGrowsTheExternalPrefillInstances.)
        #expect(kimi.changes.last == "moe_attention expert_dies 288 → 224 (192 routed-expert dies hold kimi-k2's 384 experts, "
            + "2 per die; its 32 shared-expert dies kept; the 64 dies freed stay unused, in the spare pool)")
        let qwen = try Deployment.xDeepServeMA.fitted(to: .qwen3_235B)
        try qwen.deployment.validate()
        let q = try #require(qwen.deployment.moeAttention)
        // No shared expert: 288 routed dies, the largest multiple of 128 below is 256.
        #expect(q.expertDies == 256 && q.sharedExpertDies == 0)
        #expect(qwen.changes.count == 2 && qwen.changes[1].contains("each expert on 2 dies"))
        // Trampolines are at most the expert dies.
        var few = Deployment.xDeepServeMA
        few.moeAttention?.trampolineDies = 288
        let clamped = try few.fitted(to: .kimiK2)
        #expect(clamped.deployment.moeAttention?.trampolineDies == 224)
        #expect(clamped.changes.last == "moe_attention trampoline_dies 288 → 224 (at most the expert dies)")
        try clamped.deployment.validate()
    }

    @Test func denseModelsGetOneDieOfExpertsPerGroupAndNoMoEAttention() throws {
        let fit = try Deployment.superpod.fitted(to: .llama2_7B)
        try fit.deployment.validate()
        for g in fit.deployment.groups { #expect(g.ep == 1 && g.redundantExperts == 0 && g.sharedExpertDies == 0) }
        #expect(fit.changes == [
            "prefill group ep 32 → 1, redundant_experts 32 → 0 (llama-2-7b is dense: no experts to spread)",
            "decode group ep 320 → 1, redundant_experts 32 → 0, shared_expert_dies 32 → 0 (llama-2-7b is dense: no experts to spread)",
        ])
        let ma = problem { _ = try Deployment.xDeepServeMA.fitted(to: .llama3_70B) }
        #expect(ma.hasPrefix("llama-3-70b is dense: deployment 'xdeepserve-ma' splits MoE experts from attention"), "\(ma)")
        #expect(ma.contains("serve it on superpod, cloudmatrix-infer, colocated-288"), "\(ma)")
    }

    @Test func anMoEModelOnADenseLayoutSpreadsItsExpertsOverTheInstance() throws {
        let dense = try Deployment.resolve("colocated:2:llama-3-70b:ascend-910c:tp16")
        let fit = try dense.fitted(to: .qwen3_235B)
        try fit.deployment.validate()
        let g = try #require(fit.deployment.group(.colocated))
        // As colocated:2:qwen3-235b-a22b:ascend-910c:tp16 lays it out: ep = the instance's dies.
        #expect(g.ep == 16)
        #expect(try Deployment.resolve("colocated:2:qwen3-235b-a22b:ascend-910c:tp16").group(.colocated)?.ep == g.ep)
        #expect(fit.changes == ["colocated group ep 1 → 16 (qwen3-235b-a22b's experts spread over the instance's 16 dies)"])
        // An MoE layout with ep 1 on purpose (its own model MoE) is left alone.
        var one = Deployment.superpod
        one.groups[0].ep = 1
        #expect(try one.fitted(to: .kimiK2).deployment.groups[0].ep == 1)
    }

    @Test(arguments: Deployment.presetNames)
    func theDeploymentsOwnModelChangesNothing(name: String) throws {
        let preset = try #require(Deployment.preset(name))
        for model in [ModelSpec.deepSeekR1, .deepSeekV3] {
            let fit = try preset.fitted(to: model)
            #expect(fit.changes.isEmpty)
            var expected = preset
            expected.model = model.name
            #expect(fit.deployment == expected)
        }
    }

    @Test(arguments: Deployment.presetNames)
    func fittingTwiceChangesNothingTheSecondTime(name: String) throws {
        let preset = try #require(Deployment.preset(name))
        for model in ModelSpec.catalogue where !(model.moe == nil && preset.moeAttention != nil) {
            let once = try preset.fitted(to: model)
            let twice = try once.deployment.fitted(to: model)
            #expect(twice.changes.isEmpty, "\(name) \(model.name): \(twice.changes)")
            #expect(twice.deployment == once.deployment)
            // Every MoE model fits every preset; the layout validates.
            if model.moe != nil { try once.deployment.validate() }
        }
    }

    @Test func hostileNumbersAreLeftForValidationToName() throws {
        var d = Deployment.superpod
        d.groups[1].ep = -5
        d.groups[1].sharedExpertDies = Int.max
        d.groups[0].redundantExperts = Int.max
        let fit = try d.fitted(to: .qwen3_235B)
        #expect(fit.deployment.groups == d.groups && fit.changes.isEmpty)
        var ma = Deployment.xDeepServeMA
        ma.moeAttention?.expertDies = Int.min
        let m = try ma.fitted(to: .kimiK2)
        #expect(m.deployment.moeAttention == ma.moeAttention)
        #expect(problem { try m.deployment.validate() }.contains("expert_dies must be between"))
    }

    /// Kimi K2 on xdeepserve-ma: its 384 experts over each external 910B prefill instance's 16
    /// dies are 24 slots, 66.3 GB a die of 57.6 GB usable, and no TP up to 16 frees enough. The
    /// instance grows to the fewest devices whose share leaves room for a prefill batch's KV
    /// (16K tokens a die at tp 4: 2.6 GB): 24 (16 slots a die, 45.2 GB). 20 (20 slots with 16
    /// redundant, 55.8 GB) held one KV block but not the batch.
    @Test func kimiOnMoEAttentionGrowsTheExternalPrefillInstances() throws {
        let fit = try Deployment.xDeepServeMA.fitted(to: .kimiK2)
        try fit.deployment.validate()
        let prefill = try #require(fit.deployment.group(.prefill))
        #expect(prefill.count == 8 && prefill.npusEach == 24 && prefill.tp == 4 && prefill.dp == 6 && prefill.ep == 24)
        #expect(prefill.redundantExperts == 0 && prefill.external && prefill.hardware == "ascend-910b")
        #expect(fit.changes.first ==
            "prefill group npus 16 → 24, dp 4 → 6, ep 16 → 24 (kimi-k2's 24 expert slots per die on 16 dies take 66.3 GB "
                + "of weights per die, 16 expert slots per die on 24 dies 45.2 GB, of 57.6 GB usable per ascend-910b die; "
                + "192 ascend-910b NPUs in all)")
        #expect(Deployment.leavesKVRoom(prefill, model: .kimiK2, hardware: .ascend910B))
        var smaller = prefill
        (smaller.npusEach, smaller.dp, smaller.ep, smaller.redundantExperts) = (20, 5, 20, 16)
        #expect(!Deployment.leavesKVRoom(smaller, model: .kimiK2, hardware: .ascend910B))
    }

    /// Growing stays within what external groups of one hardware may use together: with the
    /// other external group taking all but 100 of the 1,024 910B devices, 8 instances cannot
    /// grow (8 × 17 > 100), so the layout is left for the engine's refusal, which says so.
    @Test func externalGrowthStaysWithinTheDevicesLeft() throws {
        var d = Deployment.xDeepServeMA
        var other = try #require(d.group(.prefill))
        other.count = 1
        other.npusEach = 924
        other.tp = 4
        other.dp = 231
        other.ep = 924
        d.groups.append(other)
        let fit = try d.fitted(to: .kimiK2)
        #expect(fit.deployment.groups[0].npusEach == 16)
        #expect(!fit.changes.contains { $0.hasPrefix("prefill group 1 npus") })
    }
}
