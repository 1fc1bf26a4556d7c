/// Work of one operator for a number of tokens: FLOPs, bytes streamed from HBM, and whether
/// its matrix multiplies run on the 8-bit path.
public struct OperatorWork: Sendable, Equatable {
    public var flops: Double
    public var bytes: Double
    public var eightBit: Bool
    public init(flops: Double, bytes: Double, eightBit: Bool) {
        self.flops = flops
        self.bytes = bytes
        self.eightBit = eightBit
    }
    public static let zero = OperatorWork(flops: 0, bytes: 0, eightBit: true)
}

/// FLOPs and bytes per token of every operator of a model, derived from its shapes.
///
/// Decode uses MLA's weight absorption (attention runs over the 576-value latent); prefill
/// uses the plain form (keys and values expanded), as DeepSeek-style engines do.
extension ModelSpec {
    var w: Double { weightType.bytes }

    /// MLA prolog / QKV projections (and, for decode MLA, absorbing W_UK and W_UV):
    /// FLOPs per token and weight bytes per die for an attention TP degree of `tp`.
    public func attentionProjections(decode: Bool, tp: Int) -> (flopsPerToken: Double, weightBytes: Double) {
        let h = Double(hidden), t = Double(tp)
        switch attention {
        case let .mla(heads, qLora, kvLora, nope, rope, v):
            let H = Double(heads) / t
            // Down projections are not split by head: under TP each die computes them for 1/tp of
            // the tokens (sequence-parallel) and the latents are all-gathered.
            let qDown = qLora > 0 ? 2 * h * Double(qLora) / t : 0
            let qUp = 2 * (qLora > 0 ? Double(qLora) : h) * H * Double(nope + rope)
            let kvDown = 2 * h * Double(kvLora + rope) / t
            // Decode absorbs W_UK into the query and W_UV into the output (per token, per head);
            // prefill expands the latent into keys and values instead.
            let kvUp = decode
                ? 2 * H * Double(nope) * Double(kvLora) + 2 * H * Double(kvLora) * Double(v)
                : 2 * Double(kvLora) * H * Double(nope + v)
            let o = 2 * H * Double(v) * h
            return (qDown + qUp + kvDown + kvUp + o, attentionParameters / t * w)
        case let .gqa(heads, kvHeads, hd):
            let H = Double(heads) / t, K = max(1, Double(kvHeads) / t)
            let f = 2 * h * (H + 2 * K) * Double(hd) + 2 * H * Double(hd) * h
            return (f, attentionParameters / t * w)
        }
    }

    /// Core attention (scores and weighted values) for one query token over `context` tokens.
    public func attentionCoreFlops(decode: Bool, context: Double, tp: Int) -> Double {
        switch attention {
        case let .mla(heads, _, kvLora, nope, rope, v):
            let H = Double(heads) / Double(tp)
            return decode
                ? 2 * H * Double(kvLora + rope) * context + 2 * H * Double(kvLora) * context
                : 2 * H * Double(nope + rope) * context + 2 * H * Double(v) * context
        case let .gqa(heads, _, hd):
            return 4 * Double(heads) / Double(tp) * Double(hd) * context
        }
    }

    /// KV bytes read per request per layer per die at a context (MLA's latent is not split by TP).
    public func kvReadBytes(context: Double, tp: Int) -> Double {
        switch attention {
        case .mla: return context * kvBytesPerTokenPerLayer
        case let .gqa(_, kvHeads, _): return context * kvBytesPerTokenPerLayer / Double(min(tp, kvHeads))
        }
    }

    public var routerFlopsPerToken: Double { 2 * Double(hidden) * Double(moe?.routedExperts ?? 0) }
    public var expertFlopsPerToken: Double { 2 * expertParameters }
    public var expertWeightBytes: Double { expertParameters * w }
    public var denseFFNFlopsPerToken: Double { 2 * denseFFNParameters }
    public var lmHeadFlopsPerToken: Double { 2 * Double(hidden) * Double(vocabulary) }
    public var lmHeadWeightBytes: Double { Double(hidden) * Double(vocabulary) * w }

    /// Dispatch message per token and destination: the hidden state in 8 bits plus scales and
    /// routing metadata (system.md §4: 7.5 KB per token for DeepSeek-V3's 7,168-wide hidden).
    public var dispatchBytesPerToken: Double { Double(hidden) * DType.int8.bytes + 512 }
    /// Combine message per token and source: the expert output in BF16 (system.md §4: 14 KB).
    public var combineBytesPerToken: Double { Double(hidden) * DType.bf16.bytes }
}
