/// Numeric formats, by bytes per value.
public enum DType: String, Sendable, Equatable, CaseIterable {
    case bf16, int8, fp8
    public var bytes: Double { self == .bf16 ? 2 : 1 }
    /// 8-bit values run on the 8-bit path of the hardware (INT8 on Ascend: system.md §2, no FP8).
    public var isEightBit: Bool { self != .bf16 }
}

/// How a layer attends, with the shapes of its projections.
public enum AttentionKind: Sendable, Equatable {
    /// Multi-head latent attention (DeepSeek): the KV cache holds one compressed latent of
    /// `kvLoraRank` plus a shared RoPE key of `ropeDim` per token per layer.
    case mla(heads: Int, qLoraRank: Int, kvLoraRank: Int, nopeDim: Int, ropeDim: Int, vDim: Int)
    /// Grouped-query attention (`kvHeads == heads` is plain multi-head attention).
    case gqa(heads: Int, kvHeads: Int, headDim: Int)

    /// Query heads: tensor parallelism splits a layer's attention by whole heads, so a TP
    /// degree must divide this (as vLLM and the papers' TP layouts require).
    public var heads: Int {
        switch self {
        case .mla(let h, _, _, _, _, _): return h
        case .gqa(let h, _, _): return h
        }
    }

    public var label: String {
        switch self {
        case .mla: return "MLA"
        case .gqa(let h, let k, _): return k == h ? "MHA" : "GQA"
        }
    }
}

/// The routed-expert part of an MoE layer.
public struct MoESpec: Sendable, Equatable {
    public var routedExperts: Int
    public var sharedExperts: Int
    public var topK: Int
    public var expertIntermediate: Int
    /// Group-limited routing (DeepSeek-V3: 8 groups, tokens go to at most 4).
    public var groups: Int
    public var topKGroups: Int
    public init(routedExperts: Int, sharedExperts: Int, topK: Int, expertIntermediate: Int,
                groups: Int = 1, topKGroups: Int = 1) {
        self.routedExperts = routedExperts
        self.sharedExperts = sharedExperts
        self.topK = topK
        self.expertIntermediate = expertIntermediate
        self.groups = groups
        self.topKGroups = topKGroups
    }
}

/// A transformer's shapes, from its public model card. Everything else is derived.
///
/// ```swift
/// let r1 = try ModelSpec.named("deepseek-r1")
/// print(r1.totalParameters / 1e9, r1.activeParameters / 1e9)   // ≈ 671, ≈ 37
/// print(r1.kvBytesPerTokenPerLayer)                              // 640 (INT8 latent + BF16 RoPE)
/// ```
public struct ModelSpec: Sendable, Equatable {
    public var name: String
    public var layers: Int
    /// The first `denseLayers` layers use a dense FFN; the rest are MoE (if `moe` is set).
    public var denseLayers: Int
    public var hidden: Int
    public var vocabulary: Int
    public var attention: AttentionKind
    public var denseIntermediate: Int
    public var moe: MoESpec?
    /// Multi-token-prediction modules (DeepSeek-V3 has one).
    public var mtpModules: Int
    public var weightType: DType
    /// Type of the KV cache (for MLA: of the latent; the RoPE part stays BF16, system.md §3).
    public var kvType: DType
    public var tiedEmbeddings: Bool
    /// Longest sequence (prompt + output tokens) the model card supports. Inputs longer than
    /// this (a bench context, a trace prompt) describe nothing the model can run, so they are
    /// refused rather than extrapolated.
    public var contextWindow: Int = 131_072

    public var moeLayers: Int { moe == nil ? 0 : layers - denseLayers }
    public var isMoE: Bool { moe != nil }

    // MARK: Parameters

    /// Parameters of one attention block (projections; norms are negligible and included).
    public var attentionParameters: Double {
        let h = Double(hidden)
        switch attention {
        case let .mla(heads, qLora, kvLora, nope, rope, v):
            let H = Double(heads)
            let q = qLora > 0
                ? h * Double(qLora) + Double(qLora) * H * Double(nope + rope) + Double(qLora)
                : h * H * Double(nope + rope)
            let kvDown = h * Double(kvLora + rope) + Double(kvLora)
            let kvUp = Double(kvLora) * H * Double(nope + v)
            let o = H * Double(v) * h
            return q + kvDown + kvUp + o + 2 * h
        case let .gqa(heads, kvHeads, hd):
            let q = h * Double(heads * hd), kv = 2 * h * Double(kvHeads * hd), o = Double(heads * hd) * h
            return q + kv + o + 2 * h
        }
    }

    /// One gated (SwiGLU) FFN: gate, up and down projections.
    public static func ffnParameters(hidden: Int, intermediate: Int) -> Double {
        3 * Double(hidden) * Double(intermediate)
    }

    public var expertParameters: Double {
        guard let moe else { return 0 }
        return Self.ffnParameters(hidden: hidden, intermediate: moe.expertIntermediate)
    }
    public var denseFFNParameters: Double { Self.ffnParameters(hidden: hidden, intermediate: denseIntermediate) }
    public var routerParameters: Double { Double(hidden) * Double(moe?.routedExperts ?? 0) }
    public var embeddingParameters: Double { Double(vocabulary) * Double(hidden) * (tiedEmbeddings ? 1 : 2) }

    /// All parameters of the main model (MTP modules excluded, as model cards count them).
    public var totalParameters: Double {
        var p = Double(layers) * attentionParameters + Double(denseLayers) * denseFFNParameters
        if let moe {
            p += Double(moeLayers) * (Double(moe.routedExperts + moe.sharedExperts) * expertParameters + routerParameters)
        } else {
            p += Double(layers - denseLayers) * denseFFNParameters
        }
        return p + embeddingParameters
    }

    /// Parameters touched by one token (top-k routed plus shared experts).
    public var activeParameters: Double {
        var p = Double(layers) * attentionParameters + Double(denseLayers) * denseFFNParameters
        if let moe {
            p += Double(moeLayers) * (Double(moe.topK + moe.sharedExperts) * expertParameters + routerParameters)
        } else {
            p += Double(layers - denseLayers) * denseFFNParameters
        }
        return p + embeddingParameters
    }

    /// One MTP module: a projection of [embedding; hidden] plus one full (MoE) layer.
    public var mtpModuleParameters: Double {
        let layer = attentionParameters + (moe.map {
            Double($0.routedExperts + $0.sharedExperts) * expertParameters + routerParameters
        } ?? denseFFNParameters)
        return 2 * Double(hidden) * Double(hidden) + layer
    }

    /// Weight bytes on one die of a TE: the non-expert weights (attention, dense layers, shared
    /// experts, embeddings, MTP module) split over `tp`, plus, unless the die only attends
    /// (MoE–attention disaggregation), its share of `routedSlots` routed-expert copies spread over
    /// `routedDies`. The engine lays out KV by it and `bench` checks fits by it, so the two agree.
    public func weightBytesPerDie(tp: Int, routedDies: Int, routedSlots: Int, attentionOnly: Bool) -> Double {
        guard let moe else { return weightBytes / Double(tp) }
        let expertBytes = Double((moeLayers + mtpModules) * moe.routedExperts) * expertParameters * weightType.bytes
        let nonExpert = weightBytes - expertBytes
        return nonExpert / Double(tp)
            + (attentionOnly ? 0 : expertBytes / Double(moe.routedExperts) * (Double(routedSlots) / Double(routedDies)))
    }

    public var weightBytes: Double {
        (totalParameters + Double(mtpModules) * mtpModuleParameters) * weightType.bytes
    }

    // MARK: KV cache

    /// Bytes of KV cache one token occupies in one layer.
    public var kvBytesPerTokenPerLayer: Double {
        switch attention {
        case let .mla(_, _, kvLora, _, rope, _):
            // system.md §3: the non-RoPE latent in INT8, the RoPE key in BF16.
            return Double(kvLora) * kvType.bytes + Double(rope) * DType.bf16.bytes
        case let .gqa(_, kvHeads, hd):
            return 2 * Double(kvHeads * hd) * kvType.bytes
        }
    }
    /// Values (not bytes) per token per layer: 576 for DeepSeek-V3 (system.md §3).
    public var kvValuesPerTokenPerLayer: Int {
        switch attention {
        case let .mla(_, _, kvLora, _, rope, _): return kvLora + rope
        case let .gqa(_, kvHeads, hd): return 2 * kvHeads * hd
        }
    }
    public var kvBytesPerToken: Double { kvBytesPerTokenPerLayer * Double(layers) }

    /// Over how many of a `tp`-way group's dies one request's KV is split: its KV heads over the
    /// ranks (at most one head per rank: beyond `kvHeads` ranks hold copies), and not at all for
    /// MLA, whose latent every rank reads whole (what the decode step's cost reads per die).
    public func kvShards(tp: Int) -> Int {
        switch attention {
        case .mla: return 1
        case let .gqa(_, kvHeads, _): return max(1, min(tp, kvHeads))
        }
    }
}
