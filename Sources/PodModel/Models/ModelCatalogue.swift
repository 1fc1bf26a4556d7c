extension ModelSpec {
    public static let catalogue: [ModelSpec] = [.deepSeekR1, .deepSeekV3, .kimiK2, .qwen3_235B, .llama3_70B, .llama2_7B]
    public static var names: [String] { catalogue.map(\.name) }

    public static func named(_ name: String) throws -> ModelSpec {
        if let m = catalogue.first(where: { $0.name == name.lowercased() }) { return m }
        throw ConfigError("unknown model \(InputEcho.quoted(name)); expected one of: \(names.joined(separator: ", "))")
    }

    /// DeepSeek-V3 model card (system.md §3): 61 layers, first 3 dense, hidden 7168, MLA with
    /// 128 heads, q_lora 1536, kv_lora 512 + RoPE 64, 256 routed + 1 shared expert
    /// (intermediate 2048), top-8 over 8 groups (4 chosen), vocab 129,280, one MTP module.
    /// Served in INT8 weights with an INT8 latent KV cache. Context window 128K (model card).
    public static let deepSeekV3 = ModelSpec(
        name: "deepseek-v3", layers: 61, denseLayers: 3, hidden: 7168, vocabulary: 129_280,
        attention: .mla(heads: 128, qLoraRank: 1536, kvLoraRank: 512, nopeDim: 128, ropeDim: 64, vDim: 128),
        denseIntermediate: 18_432,
        moe: MoESpec(routedExperts: 256, sharedExperts: 1, topK: 8, expertIntermediate: 2048,
                     groups: 8, topKGroups: 4),
        mtpModules: 1, weightType: .int8, kvType: .int8, tiedEmbeddings: false, contextWindow: 131_072)

    /// DeepSeek-R1 has DeepSeek-V3's shapes.
    public static let deepSeekR1: ModelSpec = {
        var m = deepSeekV3
        m.name = "deepseek-r1"
        return m
    }()

    /// Kimi K2 model card: 61 layers, first 1 dense, hidden 7168, MLA with 64 heads, 384 routed
    /// + 1 shared expert (intermediate 2048), top-8, vocab 163,840 (system.md §3: first MoE
    /// layer is the 2nd). No MTP module. Context window 128K.
    public static let kimiK2 = ModelSpec(
        name: "kimi-k2", layers: 61, denseLayers: 1, hidden: 7168, vocabulary: 163_840,
        attention: .mla(heads: 64, qLoraRank: 1536, kvLoraRank: 512, nopeDim: 128, ropeDim: 64, vDim: 128),
        denseIntermediate: 18_432,
        moe: MoESpec(routedExperts: 384, sharedExperts: 1, topK: 8, expertIntermediate: 2048),
        mtpModules: 0, weightType: .int8, kvType: .int8, tiedEmbeddings: false, contextWindow: 131_072)

    /// Qwen3-235B-A22B model card: 94 layers, all MoE, hidden 4096, GQA 64 query / 4 KV heads of
    /// 128, 128 experts (intermediate 1536) top-8, no shared expert, vocab 151,936. Context
    /// 32,768 natively, 131,072 with YaRN (model card); the larger, as served at long context.
    public static let qwen3_235B = ModelSpec(
        name: "qwen3-235b-a22b", layers: 94, denseLayers: 0, hidden: 4096, vocabulary: 151_936,
        attention: .gqa(heads: 64, kvHeads: 4, headDim: 128),
        denseIntermediate: 12_288,
        moe: MoESpec(routedExperts: 128, sharedExperts: 0, topK: 8, expertIntermediate: 1536),
        mtpModules: 0, weightType: .int8, kvType: .bf16, tiedEmbeddings: false, contextWindow: 131_072)

    /// Llama 3 70B model card: 80 layers, hidden 8192, GQA 64/8 heads of 128, FFN 28,672,
    /// vocab 128,256. Dense, BF16. Context window 8,192 (Llama 3, not 3.1).
    public static let llama3_70B = ModelSpec(
        name: "llama-3-70b", layers: 80, denseLayers: 80, hidden: 8192, vocabulary: 128_256,
        attention: .gqa(heads: 64, kvHeads: 8, headDim: 128), denseIntermediate: 28_672,
        moe: nil, mtpModules: 0, weightType: .bf16, kvType: .bf16, tiedEmbeddings: false, contextWindow: 8_192)

    /// Llama 2 7B model card: 32 layers, hidden 4096, 32 heads (MHA), FFN 11,008, vocab 32,000,
    /// context window 4,096.
    public static let llama2_7B = ModelSpec(
        name: "llama-2-7b", layers: 32, denseLayers: 32, hidden: 4096, vocabulary: 32_000,
        attention: .gqa(heads: 32, kvHeads: 32, headDim: 128), denseIntermediate: 11_008,
        moe: nil, mtpModules: 0, weightType: .bf16, kvType: .bf16, tiedEmbeddings: false, contextWindow: 4_096)
}
