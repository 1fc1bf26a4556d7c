/// The figures of a decode step that only the slowest group's batch size and the instance's shape
/// fix, kept per batch size for one TE (issue 12). A step's price changes every step (the context
/// grows, the load factor carries fresh routing noise), but the group's requests take few values,
/// and with them the weight-streaming rooflines (attention projections, dense FFN, gate, LM
/// heads), the vector work, the all-reduce and the exchanges' rank side are the same: about half
/// of each step's cost-model arithmetic. Each figure is worked out by the very expression the step
/// evaluates, so the step's sums read the same values and give the same bits.
///
/// Only at whole batch sizes up to ``largestBatch`` (the engine's groups; a dense model's mean
/// busy group may be fractional); any other step is priced without it. Kept for the cost model it
/// was filled by (it holds that model's box, which a change to the model then replaces) and the
/// shape it was filled for; anything else empties it.
///
/// ```swift
/// var memo = DecodeBatchMemo()
/// let step = cost.decodeStep(input, memo: &memo)   // == cost.decodeStep(input), bit for bit
/// ```
public struct DecodeBatchMemo {
    /// Largest batch (requests per DP group) kept; a step at a larger one is priced in full.
    static let largestBatch = 4_096

    /// The box of the cost model the figures come from (held, so that its identity is not
    /// reused by another box while the memo compares it).
    private var owner: AnyObject?
    private var ownerID: ObjectIdentifier?
    /// The input's fields the figures read besides the batch: MTP asked for and its drafts,
    /// attention TP, expert dies, routed slots and shared-expert dies.
    private var mtpAsked = false
    private var drafts = 0
    private var attentionTP = 0
    private var expertDies = 0
    private var routedSlots = 0
    private var sharedExpertDies = 0
    /// ``CostModel/DecodeBatchTerms/count`` figures per batch size, flat (a step reads them in
    /// place: copying a struct of them out and its parts on to the layers cost more than the
    /// rooflines they spare); `filled` says which sizes hold figures.
    private var figures: [Double] = []
    private var filled: [Bool] = []
    /// The batch size (its bits) the last step was priced at and its slot: a decode TE's
    /// slowest group mostly holds as many requests as at the step before (issue 12: the checks
    /// that a size is whole and held were a third of the memo's cost per step).
    private var lastBatch: UInt64?
    private var lastSlot = 0

    public init() {}

    /// The batch size `input` is priced at, its figures worked out if new (all emptied first if
    /// the model or shape changed), or nil when the step is not one the memo covers.
    mutating func prepare(_ input: DecodeStepInput, cost: CostModel) -> Int? {
        let b = input.requestsPerGroup
        let mtpAsked = input.mtpAcceptance > 0
        let sameShape = ownerID == cost.storageID && self.mtpAsked == mtpAsked && drafts == input.mtpDrafts
            && attentionTP == input.attentionTP && expertDies == input.expertDies && routedSlots == input.routedSlots
            && sharedExpertDies == input.sharedExpertDies
        if sameShape, lastBatch == b.bitPattern { return lastSlot }
        // A whole, non-negative batch (+0, not -0: a product with it keeps the sign).
        guard b.sign == .plus, b <= Double(Self.largestBatch), b == b.rounded(.towardZero) else { return nil }
        if !sameShape {
            owner = cost.storageIdentity
            ownerID = cost.storageID
            self.mtpAsked = mtpAsked
            drafts = input.mtpDrafts
            attentionTP = input.attentionTP
            expertDies = input.expertDies
            routedSlots = input.routedSlots
            sharedExpertDies = input.sharedExpertDies
            figures.removeAll(keepingCapacity: true)
            filled.removeAll(keepingCapacity: true)
        }
        let slot = Int(b)
        lastBatch = b.bitPattern
        lastSlot = slot
        if slot < filled.count, filled[slot] { return slot }
        if slot >= filled.count {
            let more = slot + 1 - filled.count
            filled.append(contentsOf: repeatElement(false, count: more))
            figures.append(contentsOf: repeatElement(0, count: more * CostModel.DecodeBatchTerms.count))
        }
        let values = cost.decodeBatchFigures(input)
        let start = slot * CostModel.DecodeBatchTerms.count
        figures.replaceSubrange(start..<start + CostModel.DecodeBatchTerms.count, with: values)
        filled[slot] = true
        return slot
    }

    /// `body` on the figures of batch size `slot` (from ``prepare(_:cost:)``), read in place.
    @inline(__always)
    func withTerms<R>(_ slot: Int, _ body: (CostModel.DecodeBatchTerms) -> R) -> R {
        figures.withUnsafeBufferPointer { all in
            body(CostModel.DecodeBatchTerms(base: all.baseAddress! + slot * CostModel.DecodeBatchTerms.count))
        }
    }
}

extension CostModel {
    /// One decode MoE layer's batch-fixed figures at one query width and microbatch count: the
    /// attention stream's projections and vector work and its all-reduce, the gate, and the
    /// dispatch's and combine's rank side (``moeLayerLoadFree(_:queryTokens:microbatches:context:shape:wholeDieAttention:batch:)``).
    /// A view of six figures in a ``DecodeBatchMemo``, valid while the step that reads it runs.
    struct DecodeLayerBatchTerms {
        let base: UnsafePointer<Double>
        static let count = 6
        var projections: Double { base[0] }
        var vector: Double { base[1] }
        var allReduce: Double { base[2] }
        var gate: Double { base[3] }
        var dispatch: Double { base[4] }
        var combine: Double { base[5] }
    }

    /// A decode step's batch-fixed figures (``DecodeBatchMemo``), viewed in place.
    struct DecodeBatchTerms {
        let base: UnsafePointer<Double>
        /// Four layers, seven step figures, five of the shape.
        static let count = 4 * DecodeLayerBatchTerms.count + 7 + 5
        /// The main model's layer (1 + drafts query tokens) and the MTP draft's (1), with one and
        /// two microbatches.
        var verifyOne: DecodeLayerBatchTerms { DecodeLayerBatchTerms(base: base) }
        var draftOne: DecodeLayerBatchTerms { DecodeLayerBatchTerms(base: base + 6) }
        var verifyTwo: DecodeLayerBatchTerms { DecodeLayerBatchTerms(base: base + 12) }
        var draftTwo: DecodeLayerBatchTerms { DecodeLayerBatchTerms(base: base + 18) }
        /// ``decodeStepShared(_:batch:)``'s: a dense layer's FFN and all-reduces, the LM head and
        /// sampling, and the MTP draft's projection, LM head and sampling (0 with MTP off).
        var denseFFN: Double { base[24] }
        var denseAllReduce: Double { base[25] }
        var lmHead: Double { base[26] }
        var sampling: Double { base[27] }
        var draftProjection: Double { base[28] }
        var draftLMHead: Double { base[29] }
        var draftSampling: Double { base[30] }
        /// The experts' figures fixed by the instance's shape (whole numbers and a flag, exact as Doubles).
        var shape: DecodeExpertShape {
            DecodeExpertShape(slotsPerDie: base[31], wholeSlotsPerDie: base[32], routedMaxZ: base[33],
                              destinations: base[34], interNode: base[35] != 0)
        }
    }

    /// The figures of ``DecodeBatchTerms`` for `input`'s batch and shape, in its order, each by
    /// the expression the step evaluates.
    func decodeBatchFigures(_ input: DecodeStepInput) -> [Double] {
        let mtpOn = input.mtpAcceptance > 0 && model.mtpModules > 0
        let q = mtpOn ? 1 + Double(input.mtpDrafts) : 1
        let b = input.requestsPerGroup, tp = input.attentionTP
        let shape = decodeExpertShapeIfMoE(input)
        var figures: [Double] = []
        figures.reserveCapacity(DecodeBatchTerms.count)
        for (width, m) in [(q, 1), (1, 1), (q, 2), (1, 2)] {
            figures += decodeLayerBatchFigures(input, queryTokens: width, microbatches: m, shape: shape)
        }
        figures += [
            roofline(flops: b * q * terms.denseFFNFlopsPerToken / Double(tp), bytes: terms.denseFFNBytes / Double(tp),
                     eightBit: terms.weightEightBit),
            denseLayerAllReduces(tokens: b * q, tp: tp),
            lmHead(tokens: b * q, tp: tp),
            sampling(tokens: b * q),
            mtpOn ? draftProjection(requests: b) : 0,
            mtpOn ? lmHead(tokens: b, tp: tp) : 0,
            mtpOn ? sampling(tokens: b) : 0,
            shape.slotsPerDie, shape.wholeSlotsPerDie, shape.routedMaxZ, shape.destinations, shape.interNode ? 1 : 0,
        ]
        return figures
    }

    /// ``DecodeLayerBatchTerms``' figures, as ``moeLayerLoadFree(_:queryTokens:microbatches:context:shape:wholeDieAttention:batch:)``
    /// and ``attentionStream(_:queryTokens:microbatches:context:wholeDieAttention:batch:)`` work them out.
    func decodeLayerBatchFigures(_ input: DecodeStepInput, queryTokens q: Double, microbatches m: Int,
                                 shape: DecodeExpertShape) -> [Double] {
        let mb = Double(m), tp = input.attentionTP
        let requests = input.requestsPerGroup / mb
        let tokens = requests * q
        let parts = decodeAttentionBatchParts(requests: requests, queryTokens: q, tp: tp,
                                              share: m > 1 ? constants.attentionStreamCubeShare : 1,
                                              vectorShare: m > 1 ? constants.attentionStreamVectorShare : 1)
        let moeShare = m > 1 ? 1 - constants.attentionStreamCubeShare : 1
        let moeVector = m > 1 ? 1 - constants.attentionStreamVectorShare : 1
        let tokensPerRank = tokens / Double(tp)
        return [parts.projections, parts.vector,
                tensorParallelAllReduce(tokens: requests * q, tp: tp),
                gateRoofline(tokens: tokens, moeShare: moeShare, moeVector: moeVector),
                dispatch(tokensPerRank: tokensPerRank, destinations: shape.destinations, ep: input.expertDies),
                combine(tokensPerRank: tokensPerRank, destinations: shape.destinations, ep: input.expertDies)]
    }
}
