import Foundation

/// Time of a unit of work on the simulated hardware, from first principles.
///
/// Every operator is a roofline: its FLOPs against the die's peak times an efficiency, or its
/// bytes against HBM bandwidth times an efficiency, whichever is longer. Fabric transfers are
/// bytes against link bandwidth plus latency. A layer overlaps its attention and MoE streams
/// over two microbatches, and waits at dispatch and combine for the slowest DP group and the
/// hottest expert die (the global barrier of system.md §1.3).
///
/// ```swift
/// let cost = CostModel(model: .deepSeekR1, hardware: .ascend910C)
/// let step = cost.decodeStep(DecodeStepInput(requestsPerGroup: 96, contextTokens: 4096,
///     mtpAcceptance: 0.7, expertDies: 320, routedSlots: 288, sharedExpertDies: 32))
/// print(step.tpot * 1000)      // ≈ 49 ms
/// ```
public struct CostModel: Sendable {
    public var model: ModelSpec
    public var hardware: HardwareProfile
    public var constants: CostConstants

    public init(model: ModelSpec, hardware: HardwareProfile, constants: CostConstants = .default) {
        self.model = model
        self.hardware = hardware
        self.constants = constants
    }

    // MARK: Rooflines

    /// Time of an operator: compute-bound or memory-bound, whichever is slower.
    /// `loadComputeOverlap` of 1 is the ideal roofline; 0 adds the two (``CostConstants``).
    public func roofline(flops: Double, bytes: Double, eightBit: Bool, computeEfficiency: Double? = nil,
                         loadComputeOverlap: Double = 1) -> Double {
        let peak = eightBit ? hardware.int8FlopsPerDie : hardware.bf16FlopsPerDie
        let compute = flops / (peak * (computeEfficiency ?? constants.gemmEfficiency))
        let memory = bytes / (hardware.hbmBytesPerSecondPerDie * constants.hbmEfficiency)
        return max(compute, memory) + (1 - loadComputeOverlap) * min(compute, memory)
    }

    /// Two microbatches: the shorter stream hides behind the longer one, up to the overlap share.
    public func overlapped(_ a: Double, _ b: Double, microbatches: Int) -> Double {
        guard microbatches >= 2 else { return a + b }
        return max(a, b) + (1 - constants.microbatchOverlap) * min(a, b)
    }

    // MARK: Collectives

    /// Messages per token in a dispatch or combine: one per routed expert (XCCL sends a token
    /// once per selected expert, even when two land on one die), plus one per shared expert
    /// held on dedicated dies.
    public func messagesPerToken(sharedExpertDies: Int) -> Double {
        guard let moe = model.moe else { return 0 }
        return Double(moe.topK + (sharedExpertDies > 0 ? moe.sharedExperts : 0))
    }

    /// One dispatch (8-bit hidden states out to the expert dies) for `tokensPerRank` tokens,
    /// each sent to `destinations` dies, in an EP group of `ep` dies.
    public func dispatch(tokensPerRank: Double, destinations: Double, ep: Int) -> Double {
        collective(tokensPerRank: tokensPerRank, destinations: destinations, ep: ep,
                   bytesPerMessage: model.dispatchBytesPerToken)
    }

    /// One combine (BF16 expert outputs back to their tokens' ranks).
    public func combine(tokensPerRank: Double, destinations: Double, ep: Int) -> Double {
        collective(tokensPerRank: tokensPerRank, destinations: destinations, ep: ep,
                   bytesPerMessage: model.combineBytesPerToken)
    }

    private func collective(tokensPerRank: Double, destinations: Double, ep: Int, bytesPerMessage: Double) -> Double {
        guard ep > 1, tokensPerRank > 0 else { return 0 }
        // The message to the rank's own die stays local.
        let remoteShare = 1 - 1 / Double(ep)
        let bytes = tokensPerRank * destinations * bytesPerMessage * remoteShare
        let diesPerNode = hardware.devicesPerNode * hardware.diesPerDevice
        let latency = ep > diesPerNode ? hardware.scaleUpLatencyInterNode : hardware.scaleUpLatencyIntraNode
        return constants.collectiveFixedSeconds + latency
            + bytes / (hardware.scaleUpBytesPerSecondPerDie * constants.fabricWriteEfficiency)
    }

    /// TP all-reduce of `tokens` hidden states (BF16) over `tp` dies: ring, 2(tp−1)/tp of the data.
    public func tensorParallelAllReduce(tokens: Double, tp: Int) -> Double {
        guard tp > 1, tokens > 0 else { return 0 }
        // Reduce-scatter + all-gather of the hidden state, plus the all-gather of MLA latents
        // computed sequence-parallel (``ModelSpec/attentionProjections(decode:tp:)``).
        var width = 2 * Double(model.hidden)
        if case let .mla(_, qLora, kvLora, _, rope, _) = model.attention { width += Double(qLora + kvLora + rope) }
        let bytes = tokens * width * DType.bf16.bytes * Double(tp - 1) / Double(tp)
        let bandwidth = hardware.diesPerDevice > 1 ? hardware.dieToDieBytesPerSecond : hardware.scaleUpBytesPerSecondPerDie
        // TP groups span dies of one node; the slower of die-to-die and UB bounds the ring.
        let link = min(bandwidth, hardware.scaleUpBytesPerSecondPerDie)
        return Double(2 * (tp - 1)) * hardware.scaleUpLatencyIntraNode
            + bytes / (link * constants.fabricWriteEfficiency)
    }

    // MARK: Transfers

    /// Pull of a request's KV cache (every layer) from a prefill die to a decode die.
    public func kvTransfer(tokens: Double, plane: FabricPlane) -> Double {
        let bytes = tokens * model.kvBytesPerToken
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

