/// The model's per-token and per-layer figures that every decode step reads, computed once when
/// the cost model is built instead of on each call (they were about a tenth of a Mooncake hour's
/// instructions). Each is the very expression ``ModelSpec`` (or ``CostModel``) evaluates, so the
/// step's arithmetic, and its bits, are unchanged.
struct DecodeTerms: Sendable {
    /// ``ModelSpec/attentionProjections(decode:tp:)`` for decode at TP1 (the decode default).
    let projectionFlopsPerTokenTP1: Double
    let projectionWeightBytesTP1: Double
    /// ``ModelSpec/attentionCoreFlops(decode:context:tp:)`` at TP1 is `coreA·context + coreB·context`
    /// (MLA) or `coreA·context` (GQA, `coreB` nil): the context-free products, in the same order.
    let coreA: Double
    let coreB: Double?
    /// KV heads of a GQA model (its KV read splits by TP); nil for MLA, whose latent is not split.
    let gqaKVHeads: Int?
    let kvBytesPerTokenPerLayer: Double
    /// ``ModelSpec/kvBytesPerToken`` (all layers): a KV transfer's size per token.
    let kvBytesPerToken: Double
    let vectorBytesPerTokenPerLayer: Double
    let weightEightBit: Bool
    let kvEightBit: Bool
    /// Whether the model has experts, its top-k and its shared experts per token (as `Double`s,
    /// the values `Double(moe.topK)` and `Double(moe.sharedExperts)` give): each MoE layer priced
    /// reads them, and `model.moe` copies the whole spec out of the box (its strings retained).
    let isMoE: Bool
    let moeTopK: Double
    let moeSharedExperts: Double
    let routerFlopsPerToken: Double
    /// `routerParameters · DType.bf16.bytes`: the router's weights are read in BF16.
    let routerBytes: Double
    let expertFlopsPerToken: Double
    let expertWeightBytes: Double
    let dispatchBytesPerToken: Double
    let combineBytesPerToken: Double
    let denseFFNFlopsPerToken: Double
    /// `denseFFNParameters · weightType.bytes`.
    let denseFFNBytes: Double
    let lmHeadFlopsPerToken: Double
    let lmHeadWeightBytes: Double
    /// ``ModelSpec/contextWindow``: no request's KV is longer (a spread's slowest group is cut there).
    let contextWindow: Double

    init(_ model: ModelSpec) {
        let projections = model.attentionProjections(decode: true, tp: 1)
        projectionFlopsPerTokenTP1 = projections.flopsPerToken
        projectionWeightBytesTP1 = projections.weightBytes
        switch model.attention {
        case let .mla(heads, _, kvLora, _, rope, _):
            // As attentionCoreFlops: 2 * H * Double(kvLora + rope) * context + 2 * H * Double(kvLora) * context.
            let H = Double(heads) / Double(1)
            coreA = 2 * H * Double(kvLora + rope)
            coreB = 2 * H * Double(kvLora)
            gqaKVHeads = nil
        case let .gqa(heads, kvHeads, hd):
            // As attentionCoreFlops: 4 * Double(heads) / Double(tp) * Double(hd) * context.
            coreA = 4 * Double(heads) / Double(1) * Double(hd)
            coreB = nil
            gqaKVHeads = kvHeads
        }
        kvBytesPerTokenPerLayer = model.kvBytesPerTokenPerLayer
        kvBytesPerToken = model.kvBytesPerToken
        vectorBytesPerTokenPerLayer = CostModel.vectorBytesPerTokenPerLayer(model)
        weightEightBit = model.weightType.isEightBit
        kvEightBit = model.kvType.isEightBit
        isMoE = model.moe != nil
        moeTopK = Double(model.moe?.topK ?? 0)
        moeSharedExperts = Double(model.moe?.sharedExperts ?? 0)
        routerFlopsPerToken = model.routerFlopsPerToken
        routerBytes = model.routerParameters * DType.bf16.bytes
        expertFlopsPerToken = model.expertFlopsPerToken
        expertWeightBytes = model.expertWeightBytes
        dispatchBytesPerToken = model.dispatchBytesPerToken
        combineBytesPerToken = model.combineBytesPerToken
        denseFFNFlopsPerToken = model.denseFFNFlopsPerToken
        denseFFNBytes = model.denseFFNParameters * model.weightType.bytes
        lmHeadFlopsPerToken = model.lmHeadFlopsPerToken
        lmHeadWeightBytes = model.lmHeadWeightBytes
        contextWindow = Double(model.contextWindow)
    }
}

extension CostModel {
    /// Decode attention projections at `tp`: the precomputed TP1 figures, else ModelSpec's.
    @inline(__always)
    func decodeProjections(tp: Int) -> (flopsPerToken: Double, weightBytes: Double) {
        tp == 1 ? (terms.projectionFlopsPerTokenTP1, terms.projectionWeightBytesTP1)
            : model.attentionProjections(decode: true, tp: tp)
    }

    /// ``ModelSpec/attentionCoreFlops(decode:context:tp:)`` for decode, from the precomputed products at TP1.
    @inline(__always)
    func decodeCoreFlops(context: Double, tp: Int) -> Double {
        guard tp == 1 else { return model.attentionCoreFlops(decode: true, context: context, tp: tp) }
        if let b = terms.coreB { return terms.coreA * context + b * context }
        return terms.coreA * context
    }

    /// ``ModelSpec/kvReadBytes(context:tp:)`` with the KV bytes per token read from the terms.
    @inline(__always)
    func kvReadBytes(context: Double, tp: Int) -> Double {
        guard let kvHeads = terms.gqaKVHeads else { return context * terms.kvBytesPerTokenPerLayer }
        return context * terms.kvBytesPerTokenPerLayer / Double(min(tp, kvHeads))
    }
}
