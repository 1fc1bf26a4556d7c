import Foundation

/// Time of a unit of work on the simulated hardware, from first principles.
///
/// Every operator is a roofline on a share of the die: its FLOPs against the share's peak times
/// an efficiency and its bytes against the share's HBM bandwidth, overlapped by one global
/// constant. Collectives are a fixed cost plus the longer of issuing their messages and moving
/// their bytes. A decode layer runs one microbatch on the whole die or two on the attention and
/// MoE streams' core shares (system.md §4b), whichever is faster, and waits at dispatch and
/// combine for the slowest DP group and the hottest expert die (system.md §1.3).
///
/// ```swift
/// let cost = CostModel(model: .deepSeekR1, hardware: .ascend910C)
/// let step = cost.decodeStep(DecodeStepInput(requestsPerGroup: 96, contextTokens: 4096,
///     mtpAcceptance: 0.7, expertDies: 320, routedSlots: 288, sharedExpertDies: 32))
/// print(step.tpot * 1000, step.microbatches)      // ≈ 49 ms, 2
/// ```
public struct CostModel: Sendable {
    public var model: ModelSpec {
        get { storage.model }
        set {
            let storage = uniqueStorage()
            storage.model = newValue
            storage.terms = DecodeTerms(newValue)
        }
    }
    public var hardware: HardwareProfile {
        get { storage.hardware }
        set { uniqueStorage().hardware = newValue }
    }
    public var constants: CostConstants {
        get { storage.constants }
        set { uniqueStorage().constants = newValue }
    }
    /// The model's figures each step reads, computed once (kept in step with `model`).
    var terms: DecodeTerms { storage.terms }

    /// The fields, in one box shared by copies until one of them is changed (copy on write). The
    /// engine calls the cost model through its TEs, which are classes, on every step; a struct of
    /// this size read off a class property was copied for each call (its strings and arrays
    /// retained, ~360 instructions; 6% of a 4-replica colocated replay). A box is one retain.
    private final class Storage: @unchecked Sendable {
        // Sendable: a box is changed only while its one owner holds it (``uniqueStorage()``).
        var model: ModelSpec
        var hardware: HardwareProfile
        var constants: CostConstants
        var terms: DecodeTerms

        init(model: ModelSpec, hardware: HardwareProfile, constants: CostConstants, terms: DecodeTerms) {
            self.model = model
            self.hardware = hardware
            self.constants = constants
            self.terms = terms
        }
    }

    private var storage: Storage

    /// The box itself: a ``DecodeBatchMemo`` holds it to tell whose figures it keeps (a box is
    /// replaced, never changed, once a memo shares it: ``uniqueStorage()``).
    var storageIdentity: AnyObject { storage }
    /// The box's identity, for a memo holding it (``storageIdentity``) to compare without a retain.
    var storageID: ObjectIdentifier { ObjectIdentifier(storage) }

    private mutating func uniqueStorage() -> Storage {
        if !isKnownUniquelyReferenced(&storage) {
            storage = Storage(model: storage.model, hardware: storage.hardware, constants: storage.constants,
                              terms: storage.terms)
        }
        return storage
    }

    public init(model: ModelSpec, hardware: HardwareProfile, constants: CostConstants = .default) {
        storage = Storage(model: model, hardware: hardware, constants: constants, terms: DecodeTerms(model))
    }

    // MARK: Rooflines

    /// Time of an operator on a share of the die: its FLOPs against the share's peak times an
    /// efficiency, its bytes against the share's HBM bandwidth, overlapped per
    /// ``CostConstants/loadComputeOverlap`` (1 = ideal roofline, 0 = load then compute).
    /// A stream draws HBM bandwidth in proportion to the cores issuing its loads (`share`).
    public func roofline(flops: Double, bytes: Double, eightBit: Bool, computeEfficiency: Double? = nil,
                         share: Double = 1, bandwidthShare: Double? = nil) -> Double {
        roofline(bytes: bytes, eightBit: eightBit, computeEfficiency: computeEfficiency, share: share,
                 bandwidthShare: bandwidthShare).seconds(flops: flops)
    }

    /// ``roofline(flops:bytes:eightBit:computeEfficiency:share:bandwidthShare:)`` with everything
    /// but the FLOPs fixed: the hottest expert die's GEMMs, priced once per MoE layer of a step
    /// priced layer by layer, read the same weights at every load. The same operations in the same
    /// order, so the same bits.
    struct FixedBytesRoofline {
        /// The share's peak times the efficiency.
        let computeRate: Double
        let memorySeconds: Double
        /// `1 − loadComputeOverlap`.
        let unoverlapped: Double

        @inline(__always)
        func seconds(flops: Double) -> Double {
            let compute = flops / computeRate
            return max(compute, memorySeconds) + unoverlapped * min(compute, memorySeconds)
        }
    }

    @inline(__always)
    func roofline(bytes: Double, eightBit: Bool, computeEfficiency: Double? = nil, share: Double = 1,
                  bandwidthShare: Double? = nil) -> FixedBytesRoofline {
        let peak = eightBit ? hardware.int8FlopsPerDie : hardware.bf16FlopsPerDie
        return FixedBytesRoofline(
            computeRate: peak * share * (computeEfficiency ?? constants.gemmEfficiency),
            memorySeconds: bytes / (hardware.hbmBytesPerSecondPerDie * (bandwidthShare ?? share) * constants.hbmEfficiency),
            unoverlapped: 1 - constants.loadComputeOverlap)
    }

    /// Element-wise vector work (norms, RoPE, residuals, quantisation, gating, KV writes) priced
    /// from the bytes it reads and writes at the HBM bandwidth of the cores running it.
    public func vectorWork(bytes: Double, share: Double = 1) -> Double {
        bytes / (hardware.hbmBytesPerSecondPerDie * share * constants.hbmEfficiency)
    }

    /// Bytes of vector work per token in one layer: two RMSNorms (read + write the BF16 hidden
    /// state), two residual adds (two reads, one write), quantising the hidden state to 8 bits,
    /// RMSNorm of the MLA latents, RoPE on the query and key, the KV-cache write, and top-k gating
    /// over FP32 router scores.
    public var vectorBytesPerTokenPerLayer: Double { terms.vectorBytesPerTokenPerLayer }

    static func vectorBytesPerTokenPerLayer(_ model: ModelSpec) -> Double {
        let h = Double(model.hidden) * DType.bf16.bytes
        var bytes = 2 * 2 * h + 2 * 3 * h + h * (1 + DType.int8.bytes / DType.bf16.bytes)
        switch model.attention {
        case let .mla(heads, qLora, kvLora, _, rope, _):
            bytes += 2 * Double(qLora + kvLora) * DType.bf16.bytes
            bytes += 2 * Double((heads + 1) * rope) * DType.bf16.bytes
        case let .gqa(heads, kvHeads, hd):
            bytes += 2 * Double((heads + kvHeads) * hd) * DType.bf16.bytes
        }
        bytes += model.kvBytesPerTokenPerLayer
        if let moe = model.moe { bytes += 2 * Double(moe.routedExperts) * 4 }
        return bytes
    }

    /// Sampling `tokens` next tokens: passes over their FP32 logits (``CostConstants/samplingPasses``).
    public func sampling(tokens: Double) -> Double {
        vectorWork(bytes: tokens * Double(model.vocabulary) * 4 * constants.samplingPasses)
    }

    // MARK: Collectives

    /// Messages per token in a dispatch or combine: one per routed expert (XCCL sends a token
    /// once per selected expert, even when two land on one die), plus one per shared expert
    /// held on dedicated dies.
    public func messagesPerToken(sharedExpertDies: Int) -> Double {
        guard let moe = model.moe else { return 0 }
        return Double(moe.topK + (sharedExpertDies > 0 ? moe.sharedExperts : 0))
    }

    /// Distinct dies a token's `topK` routed experts land on, when `dies` dies hold the routed
    /// experts evenly: D·(1 − (1 − 1/D)^k). Prefill sends a token once per destination die.
    public func destinationDies(dies: Int) -> Double {
        guard let moe = model.moe, dies > 0 else { return 0 }
        let d = Double(dies)
        return d * (1 - pow(1 - 1 / d, Double(moe.topK)))
    }

    /// One dispatch (8-bit hidden states out to the expert dies) for `tokensPerRank` tokens,
    /// each sent to `destinations` dies, in an EP group of `ep` dies.
    public func dispatch(tokensPerRank: Double, destinations: Double, ep: Int) -> Double {
        collective(tokensPerRank: tokensPerRank, destinations: destinations, ep: ep,
                   bytesPerMessage: terms.dispatchBytesPerToken)
    }

    /// One combine (BF16 expert outputs back to their tokens' ranks).
    public func combine(tokensPerRank: Double, destinations: Double, ep: Int) -> Double {
        collective(tokensPerRank: tokensPerRank, destinations: destinations, ep: ep,
                   bytesPerMessage: terms.combineBytesPerToken)
    }

    /// A collective of `count` messages of `bytesPerMessage`, `remoteShare` of them leaving the die:
    /// a fixed cost, the fabric latency, and the longer of issuing every message (a local copy is
    /// issued too) and moving the remote bytes.
    public func messages(_ count: Double, bytesPerMessage: Double, interNode: Bool, remoteShare: Double = 1) -> Double {
        messageCost(interNode: interNode).seconds(count, bytesPerMessage: bytesPerMessage, remoteShare: remoteShare)
    }

    /// ``messages(_:bytesPerMessage:interNode:remoteShare:)`` with the fabric's figures read once:
    /// the hottest expert die's dispatch and combine are priced per MoE layer of a step priced
    /// layer by layer. The same operations in the same order, so the same bits.
    struct MessageCost {
        /// The fixed cost plus the fabric latency.
        let fixedAndLatency: Double
        /// The die's scale-up bandwidth times the write efficiency.
        let wireRate: Double
        let secondsPerMessage: Double

        @inline(__always)
        func seconds(_ count: Double, bytesPerMessage: Double, remoteShare: Double = 1) -> Double {
            guard count > 0 else { return 0 }
            let wire = count * remoteShare * bytesPerMessage / wireRate
            return fixedAndLatency + max(wire, count * secondsPerMessage)
        }
    }

    @inline(__always)
    func messageCost(interNode: Bool) -> MessageCost {
        let latency = interNode ? hardware.scaleUpLatencyInterNode : hardware.scaleUpLatencyIntraNode
        return MessageCost(fixedAndLatency: constants.collectiveFixedSeconds + latency,
                           wireRate: hardware.scaleUpBytesPerSecondPerDie * constants.fabricWriteEfficiency,
                           secondsPerMessage: constants.collectiveSecondsPerMessage)
    }

    /// A prefill dispatch or combine: tokens are packed per destination die (each token sent once
    /// per destination die, system.md §4 prefill), so a rank issues one message per peer and the
    /// bytes bound the time.
    public func packedExchange(tokensPerRank: Double, destinations: Double, ep: Int, bytesPerToken: Double) -> Double {
        guard ep > 1, tokensPerRank > 0 else { return 0 }
        let remoteShare = 1 - 1 / Double(ep)
        let peers = Double(ep - 1)
        let diesPerNode = hardware.devicesPerNode * hardware.diesPerDevice
        return messages(peers, bytesPerMessage: tokensPerRank * destinations * remoteShare * bytesPerToken / peers,
                        interNode: ep > diesPerNode)
    }

    private func collective(tokensPerRank: Double, destinations: Double, ep: Int, bytesPerMessage: Double) -> Double {
        guard ep > 1, tokensPerRank > 0 else { return 0 }
        // The message to the rank's own die stays local.
        let remoteShare = 1 - 1 / Double(ep)
        let diesPerNode = hardware.devicesPerNode * hardware.diesPerDevice
        return messages(tokensPerRank * destinations, bytesPerMessage: bytesPerMessage, interNode: ep > diesPerNode,
                        remoteShare: remoteShare)
    }

    /// TP all-reduce of `tokens` hidden states (BF16) over `tp` dies: ring, 2(tp−1)/tp of the data.
    /// `latents`: with the all-gather of MLA latents the attention block needs (after attention);
    /// without (after a dense FFN).
    public func tensorParallelAllReduce(tokens: Double, tp: Int, latents: Bool = true) -> Double {
        guard tp > 1, tokens > 0 else { return 0 }
        // Reduce-scatter + all-gather of the hidden state, plus the all-gather of MLA latents
        // computed sequence-parallel (``ModelSpec/attentionProjections(decode:tp:)``).
        var width = 2 * Double(model.hidden)
        if latents, case let .mla(_, qLora, kvLora, _, rope, _) = model.attention { width += Double(qLora + kvLora + rope) }
        let bytes = tokens * width * DType.bf16.bytes * Double(tp - 1) / Double(tp)
        let bandwidth = hardware.diesPerDevice > 1 ? hardware.dieToDieBytesPerSecond : hardware.scaleUpBytesPerSecondPerDie
        // TP groups span dies of one node; the slower of die-to-die and UB bounds the ring.
        let link = min(bandwidth, hardware.scaleUpBytesPerSecondPerDie)
        return Double(2 * (tp - 1)) * hardware.scaleUpLatencyIntraNode
            + bytes / (link * constants.fabricWriteEfficiency)
    }

    /// The all-reduces of a dense layer split over `tp` dies (Megatron): the attention's
    /// O-projection and the FFN's down-projection each leave a partial sum on every die, and each
    /// is reduced before the next block reads it: two a layer. (One was priced: Llama-3-70B at TP8
    /// on H100s missed 28 µs of ring latency a layer, 2.2 ms a step.)
    func denseLayerAllReduces(tokens: Double, tp: Int) -> Double {
        tensorParallelAllReduce(tokens: tokens, tp: tp) + tensorParallelAllReduce(tokens: tokens, tp: tp, latents: false)
    }

    // MARK: Transfers

    /// Pull of a request's KV cache (every layer) from a prefill die to a decode die.
    public func kvTransfer(tokens: Double, plane: FabricPlane) -> Double {
        // From the terms kept with the model: `model.kvBytesPerToken` copied the whole spec out of
        // the box per transfer (its strings retained; 1% of a saturated superpod's instructions).
        let bytes = tokens * terms.kvBytesPerToken
        return pointToPoint(bytes: bytes, plane: plane)
    }

    /// A point-to-point copy over one plane (XCCL send/recv over UB, or RoCE from outside the pod).
    public func pointToPoint(bytes: Double, plane: FabricPlane) -> Double {
        switch plane {
        case .ub:
            return constants.pointToPointSetupSeconds + hardware.scaleUpLatencyInterNode
                + bytes / (hardware.scaleUpBytesPerSecondPerDie * constants.fabricReadEfficiency)
        case .roce:
            return constants.pointToPointSetupSeconds + hardware.scaleOutLatency
                + bytes / (hardware.scaleOutBytesPerSecondPerDie * constants.scaleOutEfficiency)
        case .vpc:
            return hardware.scaleOutLatency + bytes / hardware.vpcBytesPerSecondPerNode
        }
    }

    /// Copy of `experts` expert weights into a die (EPLB swap, NPU-fork replacement) over UB.
    public func expertWeightCopy(experts: Int, layers: Int) -> Double {
        pointToPoint(bytes: Double(experts * layers) * model.expertWeightBytes, plane: .ub)
    }

    /// NPU-fork: copy one die's full share of weights from a running peer over UB (DeepServe).
    public func weightCopy(bytes: Double) -> Double { pointToPoint(bytes: bytes, plane: .ub) }
}

