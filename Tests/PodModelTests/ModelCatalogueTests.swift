import Testing
@testable import PodModel

@Suite struct ModelCatalogueTests {
    @Test func deepSeekV3ParameterCountsMatchTheModelCard() {
        let m = ModelSpec.deepSeekV3
        #expect(abs(m.totalParameters / 671e9 - 1) < 0.03)
        #expect(abs(m.activeParameters / 37e9 - 1) < 0.03)
        #expect(m.moeLayers == 58)
    }

    @Test func otherCataloguedModelsLandNearTheirCards() throws {
        // Public model cards: Kimi K2 1.04T/32B, Qwen3 235B/22B, Llama 3 70.6B, Llama 2 6.74B.
        let expected: [(String, Double, Double)] = [
            ("kimi-k2", 1040e9, 32.6e9), ("qwen3-235b-a22b", 235e9, 22e9), ("llama-3-70b", 70.6e9, 70.6e9),
            ("llama-2-7b", 6.74e9, 6.74e9),
        ]
        for (name, total, active) in expected {
            let m = try ModelSpec.named(name)
            #expect(abs(m.totalParameters / total - 1) < 0.05, "\(name) total \(m.totalParameters / 1e9) B")
            #expect(abs(m.activeParameters / active - 1) < 0.08, "\(name) active \(m.activeParameters / 1e9) B")
        }
    }

    @Test func kvBytesFollowAttentionKindAndType() throws {
        // system.md §3: 576 values per token per layer; INT8 latent + BF16 RoPE = 512 + 128 bytes.
        #expect(ModelSpec.deepSeekR1.kvValuesPerTokenPerLayer == 576)
        #expect(ModelSpec.deepSeekR1.kvBytesPerTokenPerLayer == 640)
        var bf16 = ModelSpec.deepSeekR1
        bf16.kvType = .bf16
        #expect(bf16.kvBytesPerTokenPerLayer == 1152)
        // Llama 2 7B: K and V of 32 heads × 128 in BF16.
        #expect(try ModelSpec.named("llama-2-7b").kvBytesPerTokenPerLayer == 2 * 32 * 128 * 2)
        #expect(try ModelSpec.named("qwen3-235b-a22b").kvBytesPerTokenPerLayer == 2 * 4 * 128 * 2)
    }

    @Test func messageSizesComeFromTheHiddenWidth() {
        // system.md §4: dispatch 7.5 KB per token (INT8), combine 14 KB (BF16).
        #expect(ModelSpec.deepSeekR1.dispatchBytesPerToken == 7.5 * 1024)
        #expect(ModelSpec.deepSeekR1.combineBytesPerToken == 14 * 1024)
    }

    @Test func unknownNamesAreOneClearLine() {
        #expect(throws: ConfigError.self) { try ModelSpec.named("gpt-5") }
        let error = #expect(throws: ConfigError.self) { try HardwareProfile.named("tpu-v5") }
        #expect(error.map { "\($0)" }?.contains("unknown hardware profile 'tpu-v5'") == true)
        #expect(error.map { "\($0)" }?.contains("\n") == false)
    }

    @Test func topologyAddressesPodNodeNPUDie() {
        let pod = PodTopology.cloudMatrix384
        #expect(pod.npuCount == 384 && pod.dieCount == 768)
        #expect(pod.npu(of: DieID(75)) == NPUID(37))
        #expect(pod.node(of: NPUID(37)) == NodeID(4))
        #expect(pod.dies(of: NPUID(37)) == [DieID(74), DieID(75)])
        #expect(pod.npus(of: NodeID(47)).last == NPUID(383))
        let hw = HardwareProfile.ascend910C
        #expect(pod.latency(from: DieID(0), to: DieID(15), on: hw) == hw.scaleUpLatencyIntraNode)
        #expect(pod.latency(from: DieID(0), to: DieID(16), on: hw) == hw.scaleUpLatencyInterNode)
    }
}
