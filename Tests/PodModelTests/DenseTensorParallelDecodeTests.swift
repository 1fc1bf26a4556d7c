import Testing
@testable import PodModel

/// A dense layer split over a TP group (Megatron: attention heads and FFN columns per die) ends
/// in two partial sums, the O-projection's and the FFN down-projection's, and each is all-reduced
/// before the next block can use it: two all-reduces per layer, one ring of latency each.
@Suite struct DenseTensorParallelDecodeTests {
    /// Llama-3-70B at TP8 on H100s (NVLink), 16 requests per die at 2K: the layer over its
    /// attention and FFN is two all-reduces of the group's hidden states, not one (it was one:
    /// 28 µs of ring latency a layer, 2.2 ms a step of 80 layers, missing).
    @Test func aDenseTPLayerAllReducesAfterAttentionAndAfterTheFFN() {
        let model = ModelSpec.llama3_70B, hw = HardwareProfile.nvidiaH100
        let cost = CostModel(model: model, hardware: hw)
        let tp = 8, requests = 16.0 * 8, context = 2048.0
        let layer = cost.decodeDenseLayer(requests: requests, context: context, queryTokens: 1, tp: tp)
        let attention = cost.decodeAttention(requests: requests, context: context, queryTokens: 1, tp: tp)
        let ffn = cost.roofline(flops: requests * model.denseFFNFlopsPerToken / Double(tp),
                                bytes: model.denseFFNParameters * DType.bf16.bytes / Double(tp), eightBit: false)
        // One ring all-reduce of the hidden states: 2(tp−1) steps of the link's latency, and
        // 2(tp−1)/tp of the data over the link at the write efficiency.
        let bytes = requests * Double(model.hidden) * DType.bf16.bytes * 2 * Double(tp - 1) / Double(tp)
        let ring = Double(2 * (tp - 1)) * hw.scaleUpLatencyIntraNode
            + bytes / (hw.scaleUpBytesPerSecondPerDie * cost.constants.fabricWriteEfficiency)
        let exchange = layer - attention - ffn
        #expect(exchange >= 2 * ring * (1 - 1e-9), "exchange \(exchange * 1e6) µs a layer, one all-reduce \(ring * 1e6) µs")
        #expect(exchange <= 2 * ring * (1 + 1e-9))
    }

    /// At TP1 there is nothing to reduce: the layer is its attention and FFN.
    @Test func aDenseLayerOnOneDieHasNoAllReduce() {
        let model = ModelSpec.llama2_7B
        let cost = CostModel(model: model, hardware: .nvidiaA100)
        let layer = cost.decodeDenseLayer(requests: 16, context: 2048, queryTokens: 1, tp: 1)
        let attention = cost.decodeAttention(requests: 16, context: 2048, queryTokens: 1, tp: 1)
        let ffn = cost.roofline(flops: 16 * model.denseFFNFlopsPerToken, bytes: model.denseFFNParameters * DType.bf16.bytes,
                                eightBit: false)
        #expect(layer == attention + ffn)
    }
}
