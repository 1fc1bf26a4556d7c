/// One prefill batch of an instance: attention TP×DP over its dies, experts over EP.
public struct PrefillBatchInput: Sendable, Equatable {
    /// New (uncached) prompt tokens per die in this batch.
    public var tokensPerDie: Double
    /// Prompt length of the requests (long prompts straggle a barrier: system.md §4).
    public var promptTokens: Double
    /// Tokens of each prompt already in the KV cache (prefix hits): attended to, not recomputed.
    public var cachedPrefixTokens: Double = 0
    public var attentionTP: Int
    public var expertDies: Int
    public var routedSlots: Int
    /// Dies dedicated to shared experts; 0 means every die holds a shared-expert copy.
    public var sharedExpertDies: Int = 0
    public var moeLoadFactor: Double = 1
    /// The same, layer by layer (see ``DecodeStepInput/moeLoadFactorPerLayer``); nil prices every
    /// layer at ``moeLoadFactor``.
    public var moeLoadFactorPerLayer: [Double]?
    /// A factor on every one of ``moeLoadFactorPerLayer`` (1: as given; see
    /// ``DecodeStepInput/moeLoadFactorPerLayerScale``).
    public var moeLoadFactorPerLayerScale: Double = 1
    public var slowdown: Double = 1
    public var microbatches: Int = 2

    public init(tokensPerDie: Double, promptTokens: Double, attentionTP: Int, expertDies: Int, routedSlots: Int) {
        self.tokensPerDie = tokensPerDie
        self.promptTokens = promptTokens
        self.attentionTP = attentionTP
        self.expertDies = expertDies
        self.routedSlots = routedSlots
    }
}

public struct PrefillBatchCost: Sendable, Equatable {
    public var batchSeconds: Double
    public var layerSeconds: Double
    public var breakdown: StepBreakdown
    public var tokensPerSecondPerDie: Double
}

extension CostModel {
    /// One operation of a microbatch's layer and the resource it occupies: the die's cores, the
    /// TP group's intra-node links (all-gather, all-to-all), or the UB fabric (dispatch, combine).
    struct PrefillPhase {
        enum Resource: Int { case cores = 0, tpLinks = 1, fabric = 2 }
        var resource: Resource
        /// Time the phase occupies its resource.
        var seconds: Double
        /// Time the microbatch's chain waits for it: less than `seconds` when the phase overlaps
        /// the one before it inside the microbatch (the combine behind the expert GEMMs).
        var exposedSeconds: Double
        init(onFabric: Bool, seconds: Double, tp: Bool = false, exposed: Double? = nil) {
            resource = !onFabric ? .cores : (tp ? .tpLinks : .fabric)
            self.seconds = seconds
            exposedSeconds = exposed ?? seconds
        }
        init(resource: Resource, seconds: Double, exposedSeconds: Double) {
            self.resource = resource
            self.seconds = seconds
            self.exposedSeconds = exposedSeconds
        }
    }

    /// A layer's phases (at most eight), held in place: a prefill batch prices two or three
    /// layers, and an array per layer, allocated and freed, was about a third of its cost
    /// (issue 12: 8 k prefill batches in a Mooncake hour, every step of a colocated replay).
    struct PrefillPhases {
        static let capacity = 8
        private(set) var count = 0
        // Lane by lane (vectors, not a tuple: reading a tuple's element through its bytes copied
        // the whole tuple per read).
        private var seconds = SIMD8<Double>()
        private var exposedSeconds = SIMD8<Double>()
        private var resources = SIMD8<Int8>()

        init() {}

        var indices: Range<Int> { 0..<count }

        mutating func append(_ phase: PrefillPhase) {
            precondition(count < Self.capacity, "a prefill layer has at most \(Self.capacity) phases")
            count += 1
            self[count - 1] = phase
        }

        subscript(i: Int) -> PrefillPhase {
            get {
                precondition(i >= 0 && i < count, "phase \(i) of \(count)")
                return PrefillPhase(resource: PrefillPhase.Resource(rawValue: Int(resources[i])) ?? .cores,
                                    seconds: seconds[i], exposedSeconds: exposedSeconds[i])
            }
            set {
                precondition(i >= 0 && i < count, "phase \(i) of \(count)")
                resources[i] = Int8(truncatingIfNeeded: newValue.resource.rawValue)
                seconds[i] = newValue.seconds
                exposedSeconds[i] = newValue.exposedSeconds
            }
        }
    }

    /// Steady-state time of one layer whose microbatches each run `phases` in order: compute on
    /// the die's cores, TP collectives on the group's intra-node links, dispatch and combine on the
    /// UB fabric. With one microbatch the phases add up. With several, a microbatch's next layer
    /// starts as soon as its own combine is back, so the layer takes the longer of one
    /// microbatch's chain and each resource's work for all microbatches (the bound a pipelined
    /// schedule reaches; the same form as the decode streams).
    static func flowShop(_ phases: PrefillPhases, microbatches m: Int) -> Double {
        var sums = FlowShopSums()
        for i in phases.indices { sums.add(phases[i]) }
        return sums.layer(microbatches: m)
    }

    /// ``flowShop(_:microbatches:)``'s sums over phases added in order: the chain's exposed time
    /// and each resource's time. Sums of a layer's load-free phases, kept, take the routed experts'
    /// two phases per load factor with the same additions in the same order.
    struct FlowShopSums {
        var chain = 0.0
        // Per resource (three locals, not an array allocated per batch).
        var cores = 0.0, tpLinks = 0.0, fabric = 0.0

        @inline(__always)
        mutating func add(_ p: PrefillPhase) {
            chain += p.exposedSeconds
            switch p.resource {
            case .cores: cores += p.seconds
            case .tpLinks: tpLinks += p.seconds
            case .fabric: fabric += p.seconds
            }
        }

        @inline(__always)
        func layer(microbatches m: Int) -> Double {
            guard m > 1 else { return chain }
            return max(chain, Double(m) * max(max(cores, tpLinks), fabric))
        }
    }

    /// All-gather over a TP group: each die receives the other dies' `bytesPerDie` (intra-node link).
    func tensorParallelAllGather(bytesPerDie: Double, tp: Int) -> Double {
        guard tp > 1, bytesPerDie > 0 else { return 0 }
        let link = min(hardware.diesPerDevice > 1 ? hardware.dieToDieBytesPerSecond : hardware.scaleUpBytesPerSecondPerDie,
                       hardware.scaleUpBytesPerSecondPerDie)
        return Double(tp - 1) * hardware.scaleUpLatencyIntraNode
            + bytesPerDie * Double(tp - 1) / (link * constants.fabricWriteEfficiency)
    }

    /// The phases of one prefill layer for one microbatch of `n` new tokens per die, SP–TP–SP as
    /// the papers lay attention out: norms and down projections sequence-parallel (each die its own
    /// tokens), all-gather of the latents, up projections and the core tensor-parallel by heads
    /// (the core on the BF16 path over keys and values expanded from the latent), all-to-all of the
    /// attention outputs back to each token's die, O-proj, gate and the die's shared-expert copy
    /// sequence-parallel; then dispatch (each token sent once per destination die), the routed
    /// experts of the hottest die, and combine.
    func prefillPhases(_ input: PrefillBatchInput, tokens n: Double, moeLayer: Bool) -> PrefillPhases {
        var (phases, experts) = prefillLayerLoadFree(input, tokens: n, moeLayer: moeLayer)
        experts?.append(to: &phases, loadFactor: input.moeLoadFactor)
        return phases
    }

    /// The routed experts' phases of a prefill MoE layer (the hottest die's GEMMs, and the combine
    /// that outlasts them) as a function of the layer's load factor, from what the load does not
    /// change: a batch priced layer by layer works those out once (``prefillLayerLoadFree``).
    struct PrefillExperts {
        let hottest: HottestExpertDie
        /// Tokens the hottest die's own shared-expert copy took (not routed): nil when the shared
        /// experts have dies of their own.
        let localSharedTokens: Double?
        let expertFlopsPerToken: Double
        let experts: FixedBytesRoofline
        let slowdown: Double
        let combine: Double
        /// Slots per routed die, at least one.
        let slots: Double

        /// The hottest die's tokens at `loadFactor` (what both phases depend on).
        @inline(__always)
        func hotTokens(loadFactor: Double) -> Double {
            var hot = hottest.tokens(loadFactor: loadFactor)
            if let localSharedTokens { hot -= localSharedTokens }
            return hot
        }

        @inline(__always)
        func append(to phases: inout PrefillPhases, loadFactor: Double) {
            append(to: &phases, hotTokens: hotTokens(loadFactor: loadFactor))
        }

        func append(to phases: inout PrefillPhases, hotTokens hot: Double) {
            let (experts, combine) = self.phases(hotTokens: hot)
            phases.append(experts)
            phases.append(combine)
        }

        /// The experts' phase and the combine's, for a hottest die of `hot` tokens.
        @inline(__always)
        func phases(hotTokens hot: Double) -> (experts: PrefillPhase, combine: PrefillPhase) {
            let expertSeconds = experts.seconds(flops: hot * expertFlopsPerToken) * slowdown
            // Dispatch ends in a barrier before the expert FFN (system.md §4: dispatch [barrier] →
            // expert FFN → combine [barrier]), but the combine's barrier is at its end: a die runs its
            // slots' GEMMs one after another and sends each slot's outputs as soon as its GEMM is done,
            // so inside a microbatch only the combine that outlasts the remaining GEMMs is exposed
            // (a two-stage pipeline over the die's slots; with one slot per die nothing overlaps).
            let exposed = max(combine / slots, combine - expertSeconds * (slots - 1) / slots)
            return (PrefillPhase(onFabric: false, seconds: expertSeconds),
                    PrefillPhase(onFabric: true, seconds: combine, exposed: exposed))
        }
    }

    /// ``prefillPhases(_:tokens:moeLayer:)`` up to its dispatch, and for an MoE layer the routed
    /// experts' phases to append at a load factor (nil for a dense layer, which ends there).
    func prefillLayerLoadFree(_ input: PrefillBatchInput, tokens n: Double,
                              moeLayer: Bool) -> (phases: PrefillPhases, experts: PrefillExperts?) {
        let model = self.model  // one copy out of the cost model's box, not one per read
        let tp = input.attentionTP, t = Double(tp)
        let groupTokens = n * t
        let eight = model.weightType.isEightBit
        let proj = model.attentionProjections(decode: false, tp: tp)
        var latentWidth = 0.0, downFlops = 0.0, headOut = Double(model.hidden)
        if case let .mla(heads, qLora, kvLora, _, rope, v) = model.attention {
            latentWidth = Double(qLora + kvLora + rope)
            downFlops = 2 * Double(model.hidden) * latentWidth
            headOut = Double(heads * v)
        }
        // Causal attention: a new token attends to the cached prefix and, on average, half the rest.
        let context = input.cachedPrefixTokens + (input.promptTokens - input.cachedPrefixTokens) / 2
        let vector = vectorWork(bytes: n * vectorBytesPerTokenPerLayer)
        // Down projections: full weights on every die (sequence-parallel); the rest split by heads.
        let downBytes = Double(model.hidden) * latentWidth * model.weightType.bytes
        let prolog = roofline(flops: n * downFlops, bytes: downBytes, eightBit: eight) + vector / 2
        let gather = tensorParallelAllGather(bytesPerDie: n * latentWidth * DType.bf16.bytes, tp: tp)
        let upFlops = max(0, groupTokens * proj.flopsPerToken - n * downFlops)
        let core = roofline(flops: upFlops, bytes: max(0, proj.weightBytes - downBytes / t), eightBit: eight)
            + roofline(flops: groupTokens * model.attentionCoreFlops(decode: false, context: context, tp: tp),
                       bytes: groupTokens * model.kvBytesPerTokenPerLayer, eightBit: false,
                       computeEfficiency: constants.attentionComputeEfficiency)
        let allToAll = tensorParallelAllGather(bytesPerDie: groupTokens * headOut / t * DType.bf16.bytes / t, tp: tp)
        var phases = PrefillPhases()
        phases.append(PrefillPhase(onFabric: false, seconds: prolog * input.slowdown))
        phases.append(PrefillPhase(onFabric: true, seconds: gather, tp: true))
        phases.append(PrefillPhase(onFabric: false, seconds: core * input.slowdown))
        phases.append(PrefillPhase(onFabric: true, seconds: allToAll, tp: true))
        guard moeLayer, let moe = model.moe else {
            if model.moe == nil && tp > 1 {
                // A dense model's FFN is most of its weights: split by TP as decode splits it (and as
                // the HBM checks count it), each die's tokens gathered from the group before and
                // reduce-scattered back after (Megatron sequence parallelism). The FFN was priced
                // whole on every die with no exchange: TP2, TP4 and TP8 took the same time.
                let hiddenBytes = n * Double(model.hidden) * DType.bf16.bytes
                let exchange = tensorParallelAllGather(bytesPerDie: hiddenBytes, tp: tp)
                let ffn = roofline(flops: groupTokens * model.denseFFNFlopsPerToken / t,
                                   bytes: model.denseFFNParameters * model.weightType.bytes / t, eightBit: eight)
                phases.append(PrefillPhase(onFabric: true, seconds: exchange, tp: true))
                phases.append(PrefillPhase(onFabric: false, seconds: (ffn + vector / 2) * input.slowdown))
                phases.append(PrefillPhase(onFabric: true, seconds: exchange, tp: true))
                return (phases, nil)
            }
            let ffn = roofline(flops: n * model.denseFFNFlopsPerToken, bytes: model.denseFFNParameters * model.weightType.bytes,
                               eightBit: eight)
            phases.append(PrefillPhase(onFabric: false, seconds: (ffn + vector / 2) * input.slowdown))
            return (phases, nil)
        }
        let gate = roofline(flops: n * model.routerFlopsPerToken, bytes: model.routerParameters * DType.bf16.bytes,
                            eightBit: false)
        let sharedLocal = input.sharedExpertDies == 0
        let shared = sharedLocal
            ? roofline(flops: n * Double(moe.sharedExperts) * model.expertFlopsPerToken,
                       bytes: Double(moe.sharedExperts) * model.expertWeightBytes, eightBit: eight)
            : 0
        phases.append(PrefillPhase(onFabric: false, seconds: (gate + shared + vector / 2) * input.slowdown))
        let routedDies = max(1, input.expertDies - input.sharedExpertDies)
        let slotsPerDie = (Double(input.routedSlots) / Double(routedDies)).rounded(.up)
        var step = DecodeStepInput(requestsPerGroup: 1, contextTokens: 0, mtpAcceptance: 0, dpGroups: input.expertDies,
                                   expertDies: input.expertDies, routedSlots: input.routedSlots,
                                   sharedExpertDies: input.sharedExpertDies, moeLoadFactor: input.moeLoadFactor)
        step.dpGroups = input.expertDies
        let hottest = hottestExpertDie(allTokens: n * Double(input.expertDies), input: step, shape: decodeExpertShape(step))
        let destinations = destinationDies(dies: routedDies) + (sharedLocal ? 0 : Double(moe.sharedExperts))
        phases.append(PrefillPhase(onFabric: true, seconds: packedExchange(
            tokensPerRank: n, destinations: destinations, ep: input.expertDies, bytesPerToken: model.dispatchBytesPerToken)))
        let combine = packedExchange(tokensPerRank: n, destinations: destinations, ep: input.expertDies,
                                     bytesPerToken: model.combineBytesPerToken)
        return (phases, PrefillExperts(
            hottest: hottest, localSharedTokens: sharedLocal ? n * Double(moe.sharedExperts) : nil,
            expertFlopsPerToken: model.expertFlopsPerToken,
            experts: roofline(bytes: slotsPerDie * model.expertWeightBytes, eightBit: eight),
            slowdown: input.slowdown, combine: combine, slots: max(1, slotsPerDie)))
    }

    public func prefillBatch(_ input: PrefillBatchInput) -> PrefillBatchCost {
        let m = max(1, input.microbatches)
        let n = input.tokensPerDie / Double(m)
        // A dense model has no MoE layer: its phases would be the dense layer's, priced twice.
        let isMoE = model.isMoE
        var moePhases = PrefillPhases(), layer = 0.0
        if isMoE, case let (loadFree, routed?) = prefillLayerLoadFree(input, tokens: n, moeLayer: true) {
            if let factors = input.moeLoadFactorPerLayer, !factors.isEmpty {
                // Each layer waits for its own hottest die: average the layers' times and phases (as
                // the first layer plus the mean deviation from it, exact when every layer is alike).
                // Only the routed experts' phases depend on the load: the rest is worked out once.
                let scale = input.moeLoadFactorPerLayerScale
                let firstHot = routed.hotTokens(loadFactor: factors[0] * scale)
                moePhases = loadFree
                routed.append(to: &moePhases, hotTokens: firstHot)
                let firstLayer = Self.flowShop(moePhases, microbatches: m)
                // The load-free phases' sums; per layer only the experts' phase (at `expertsIndex`)
                // and the combine's exposure change (the combine's own time does not).
                var loadFreeSums = FlowShopSums()
                for i in loadFree.indices { loadFreeSums.add(loadFree[i]) }
                let expertsIndex = loadFree.count, firstExperts = moePhases[expertsIndex].seconds
                let count = Double(factors.count)
                layer = firstLayer
                var expertsSeconds = firstExperts
                for i in 1..<factors.count {
                    let hot = routed.hotTokens(loadFactor: factors[i] * scale)
                    // The first layer again, bit for bit (both at a floor): it deviates by nothing.
                    if hot.bitPattern == firstHot.bitPattern { continue }
                    let (experts, combine) = routed.phases(hotTokens: hot)
                    var sums = loadFreeSums
                    sums.add(experts)
                    sums.add(combine)
                    layer += (sums.layer(microbatches: m) - firstLayer) / count
                    expertsSeconds += (experts.seconds - firstExperts) / count
                }
                moePhases[expertsIndex].seconds = expertsSeconds
            } else {
                moePhases = loadFree
                routed.append(to: &moePhases, loadFactor: input.moeLoadFactor)
                layer = Self.flowShop(moePhases, microbatches: m)
            }
        }
        let densePhases = prefillPhases(input, tokens: n, moeLayer: false)
        let denseLayer = Self.flowShop(densePhases, microbatches: m)
        let denseLayers = Double(model.layers - model.moeLayers)
        let groupTokens = input.tokensPerDie * Double(input.attentionTP)
        // Only each prompt's last token needs logits.
        let prompts = max(1, groupTokens / max(1, input.promptTokens - input.cachedPrefixTokens))
        var other = denseLayers * denseLayer + lmHead(tokens: prompts, tp: input.attentionTP) + sampling(tokens: prompts)
        other += Double(model.layers * m) * constants.eagerOperatorsPerLayer * constants.eagerLaunchSecondsPerOperator
        other += constants.schedulingSeconds
        let moeLayers = Double(model.moeLayers)
        let batch = moeLayers * layer + other
        var breakdown = StepBreakdown()
        if isMoE {
            let mb = Double(m)
            let s = moePhases
            breakdown.attention = moeLayers * mb * (s[0].seconds + s[1].seconds + s[2].seconds + s[3].seconds)
            breakdown.moe = moeLayers * mb * (s[4].seconds + s[6].seconds)
            breakdown.dispatch = moeLayers * mb * s[5].seconds
            breakdown.combine = moeLayers * mb * s[7].seconds
        }
        breakdown.other = other
        return PrefillBatchCost(batchSeconds: batch, layerSeconds: isMoE ? layer : denseLayer,
                                breakdown: breakdown, tokensPerSecondPerDie: input.tokensPerDie / batch)
    }
}
