import Foundation

/// What one decode step of an instance looks like to the cost model.
///
/// Attention is data-parallel (one DP group per die at TP1); dispatch waits for the slowest
/// group, so callers describe that group — or, in a fixed-batch bench, the typical group and the
/// spread of its requests' contexts (`contextSpread`), from which the cost model derives the
/// slowest of `dpGroups`. Experts are spread over `expertDies`; combine waits for the hottest die,
/// whose load is the placement's imbalance (`moeLoadFactor`) plus the sampling noise of routing.
public struct DecodeStepInput: Sendable, Equatable {
    /// Requests in the slowest DP group (or in every group, with `contextSpread`).
    public var requestsPerGroup: Double
    /// Mean context (KV length) of those requests.
    public var contextTokens: Double
    /// MTP acceptance rate; 0 disables MTP (one token per step, no draft).
    public var mtpAcceptance: Double
    /// Draft tokens per step when MTP is on (system.md §4: one MTP layer).
    public var mtpDrafts: Int = 1
    /// DP groups of the instance (all of them send tokens to the experts).
    public var dpGroups: Int
    /// Attention tensor parallelism (1 in decode, system.md §1).
    public var attentionTP: Int = 1
    /// Dies holding experts (EP degree), routed slots among them (incl. redundant replicas), and
    /// dies dedicated to shared-expert copies.
    public var expertDies: Int
    public var routedSlots: Int
    public var sharedExpertDies: Int
    /// Hottest routed die's expected load over the mean from the placement (1 = perfectly balanced).
    public var moeLoadFactor: Double = 1
    /// The same, layer by layer (system.md §4b: skew is a per-layer distribution, and each layer's
    /// combine waits for that layer's hottest die). Nil prices every layer at ``moeLoadFactor``.
    /// A layer's time is convex in its load (a die is memory-bound until its tokens outweigh its
    /// weight read), so the mean of per-layer times exceeds the time at the mean load.
    public var moeLoadFactorPerLayer: [Double]?
    /// A factor on every one of ``moeLoadFactorPerLayer`` (1: as given): the engine keeps its
    /// layers' factors and scales them by each step's routing noise, without a new array a step.
    public var moeLoadFactorPerLayerScale: Double = 1
    /// Coefficient of variation of the requests' contexts inside a group: 0 when the caller already
    /// names the slowest group (the engine); a bench passes ``CostConstants/contextSpread``.
    public var contextSpread: Double = 0
    /// Slowdown of the slowest die in the attention and expert barriers (straggler faults).
    public var attentionSlowdown: Double = 1
    public var expertSlowdown: Double = 1
    /// Microbatches per step; nil lets the scheduler take the faster of one and two.
    public var microbatches: Int?
    /// Requests of the whole instance, when groups differ (the engine); nil means every group holds
    /// `requestsPerGroup`. Sets the experts' load.
    public var requestsPerInstance: Double?

    public init(requestsPerGroup: Double, contextTokens: Double, mtpAcceptance: Double, dpGroups: Int? = nil,
                expertDies: Int, routedSlots: Int, sharedExpertDies: Int, moeLoadFactor: Double = 1) {
        self.requestsPerGroup = requestsPerGroup
        self.contextTokens = contextTokens
        self.mtpAcceptance = mtpAcceptance
        self.dpGroups = dpGroups ?? expertDies
        self.expertDies = expertDies
        self.routedSlots = routedSlots
        self.sharedExpertDies = sharedExpertDies
        self.moeLoadFactor = moeLoadFactor
    }
}

public struct StepBreakdown: Sendable, Equatable, Codable {
    public var attention = 0.0
    public var moe = 0.0
    public var dispatch = 0.0
    public var combine = 0.0
    public var other = 0.0
    public init() {}
}

public struct DecodeStepCost: Sendable, Equatable {
    public var stepSeconds: Double
    /// One MoE layer of the main model in this step (the verify pass when MTP is on); for a dense
    /// model, one of its layers (attention, FFN and TP all-reduce).
    public var layerSeconds: Double
    public var tokensPerStep: Double
    /// Per step, summed over layers and microbatches (streams overlap, so the parts add up to more
    /// than the step); `other` holds dense layers, heads, sampling, MTP draft and host overheads.
    public var breakdown: StepBreakdown
    /// Microbatches the step ran with (the scheduler's choice unless the input fixed it).
    public var microbatches: Int = 1
    public var tpot: Double { stepSeconds / tokensPerStep }
}

extension CostModel {
    /// Per-microbatch pieces of one decode MoE layer, and the layer's time.
    struct DecodeLayer {
        var attention: Double
        var gateAndExperts: Double
        var dispatch: Double
        var combine: Double
        var microbatches: Int
        var layer: Double
    }

    /// Expected maximum of `n` independent standard normals (0 for a single one), by Blom's
    /// plotting position Φ⁻¹((n − 0.375)/(n + 0.25)): within 0.6% of the exact value from 10 to
    /// 1,000 (2.85 for 288 dies, 2.89 for 320 groups). The asymptote √(2 ln n) is an upper bound that
    /// overstates it by 17–19% at those counts (physics: order statistics of the normal).
    static func expectedMaxZ(_ n: Int) -> Double {
        n >= 0 && n < expectedMaxZTable.count ? expectedMaxZTable[n] : blomMaxZ(n)
    }

    /// ``expectedMaxZ(_:)`` for the die and group counts a pod has, evaluated once (the same
    /// function, so the same bits): each decode step asks for it.
    private static let expectedMaxZTable: [Double] = (0...1_024).map(blomMaxZ)

    private static func blomMaxZ(_ n: Int) -> Double {
        n > 1 ? inverseNormalCDF((Double(n) - 0.375) / (Double(n) + 0.25)) : 0
    }

    /// Φ⁻¹(p) for 0 < p < 1, Acklam's rational approximation (relative error below 1.2e-9).
    static func inverseNormalCDF(_ p: Double) -> Double {
        let (a, b, c, d) = (acklamA, acklamB, acklamC, acklamD)
        let low = 0.02425
        if p < low || p > 1 - low {
            let q = (-2 * Foundation.log(min(p, 1 - p))).squareRoot()
            let tail = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5])
                / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1)
            return p < low ? tail : -tail
        }
        let q = p - 0.5, r = q * q
        return (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q
            / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1)
    }
    private static let acklamA = [-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02,
                                  1.383577518672690e+02, -3.066479806614716e+01, 2.506628277459239e+00]
    private static let acklamB = [-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
                                  6.680131188771972e+01, -1.328068155288572e+01]
    private static let acklamC = [-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
                                  -2.549732539343734e+00, 4.374664141464968e+00, 2.938163982698783e+00]
    private static let acklamD = [7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00,
                                  3.754408661907416e+00]

    /// Context of the slowest DP group: each group's mean context over its `requests` has a
    /// standard deviation of spread/√requests; the slowest of `groups` sits the expected maximum
    /// of that many normals (``expectedMaxZ(_:)``) of those above the mean (system.md §1.3:
    /// dispatch waits for the slowest DP group). Public for `bench decode`, whose HBM check holds
    /// that group's KV, the KV it prices.
    @inline(__always)
    public func slowestGroupContext(_ input: DecodeStepInput) -> Double {
        Self.slowestGroupContext(context: input.contextTokens, spread: input.contextSpread,
                                 requestsPerGroup: input.requestsPerGroup, groups: input.dpGroups,
                                 window: terms.contextWindow)
    }

    /// ``slowestGroupContext(_:)`` from its parts: `groups` groups of `requestsPerGroup` requests
    /// each, whose KV lengths spread around `context` with coefficient of variation `spread`. The
    /// MoE–attention step takes its slowest attention die the same way (A2E waits for it).
    /// No request holds more KV than the model's context `window`, so neither does a group's mean:
    /// the normal's tail is cut there (one request per die at a 128K context and a spread of 3 was
    /// priced at 1.27 M tokens, 9.7 windows). A `context` past the window is left as given.
    @inline(__always)
    static func slowestGroupContext(context: Double, spread: Double, requestsPerGroup: Double, groups: Int,
                                    window: Double) -> Double {
        guard spread > 0, requestsPerGroup > 0 else { return context }
        let sigma = spread / requestsPerGroup.squareRoot()
        return min(context * (1 + sigma * expectedMaxZ(groups)), max(context, window))
    }

    /// Token-expert pairs on the hottest expert die for `allTokens` tokens of the instance: the
    /// placement's hottest routed die (``DecodeStepInput/moeLoadFactor``) with one standard
    /// deviation of Poisson routing noise, or the noisiest of the many near-mean dies (the expected
    /// maximum of N normals, ``expectedMaxZ(_:)``, deviations above it), or a shared-expert die,
    /// whichever is busiest (system.md §1.3: combine waits for the slowest expert).
    func hottestExpertDieTokens(allTokens: Double, input: DecodeStepInput) -> Double {
        hottestExpertDieTokens(allTokens: allTokens, input: input, shape: decodeExpertShape(input))
    }

    /// ``hottestExpertDieTokens(allTokens:input:)`` with the instance's shape worked out already.
    @inline(__always)
    func hottestExpertDieTokens(allTokens: Double, input: DecodeStepInput, shape: DecodeExpertShape) -> Double {
        hottestExpertDie(allTokens: allTokens, input: input, shape: shape).tokens(loadFactor: input.moeLoadFactor)
    }

    /// ``hottestExpertDieTokens(allTokens:input:shape:)`` with everything but the load factor
    /// worked out: a step priced layer by layer asks it once per layer.
    struct HottestExpertDie {
        let isMoE: Bool
        /// A routed die's mean tokens, and that plus the expected largest deviation of the routed
        /// dies at perfect balance (the floor of the hottest die).
        let mean: Double
        let balancedMax: Double
        /// A shared-expert die's tokens; nil when every die holds a shared-expert copy and serves
        /// its own group's tokens (`ownSharedTokens`) on top of its routed ones.
        let sharedDieTokens: Double?
        let ownSharedTokens: Double

        @inline(__always)
        func tokens(loadFactor: Double) -> Double {
            guard isMoE else { return 0 }
            let hot = mean * max(1, loadFactor)
            var busiest = max(hot + hot.squareRoot(), balancedMax)
            if let sharedDieTokens {
                busiest = max(busiest, sharedDieTokens)
            } else {
                busiest += ownSharedTokens
            }
            return busiest
        }
    }

    @inline(__always)
    func hottestExpertDie(allTokens: Double, input: DecodeStepInput, shape: DecodeExpertShape) -> HottestExpertDie {
        guard terms.isMoE else {
            return HottestExpertDie(isMoE: false, mean: 0, balancedMax: 0, sharedDieTokens: nil, ownSharedTokens: 0)
        }
        let mean = allTokens * terms.moeTopK / Double(max(1, input.routedSlots)) * shape.slotsPerDie
        return HottestExpertDie(
            isMoE: true, mean: mean, balancedMax: mean + mean.squareRoot() * shape.routedMaxZ,
            sharedDieTokens: input.sharedExpertDies > 0
                ? allTokens * terms.moeSharedExperts / Double(input.sharedExpertDies) : nil,
            ownSharedTokens: allTokens / Double(max(1, input.dpGroups)) * terms.moeSharedExperts)
    }

    /// The figures of a decode MoE layer fixed by the instance's shape (its dies, slots and
    /// shared-expert dies), not by the microbatches, query width or load: worked out once per
    /// step for its four candidate layers (issue 12), each the very expression the layer
    /// evaluated, so the same bits.
    struct DecodeExpertShape {
        /// Routed slots per routed die: as the hottest die's share of the tokens, and as the
        /// whole experts whose weights a die reads.
        let slotsPerDie: Double
        let wholeSlotsPerDie: Double
        /// ``expectedMaxZ(_:)`` of the routed dies.
        let routedMaxZ: Double
        /// ``messagesPerToken(sharedExpertDies:)``.
        let destinations: Double
        /// Whether the EP group spans nodes.
        let interNode: Bool
    }

    func decodeExpertShape(_ input: DecodeStepInput) -> DecodeExpertShape {
        let routedDies = max(1, input.expertDies - input.sharedExpertDies)
        let diesPerNode = hardware.devicesPerNode * hardware.diesPerDevice
        return DecodeExpertShape(slotsPerDie: max(1.0, Double(input.routedSlots) / Double(routedDies)),
                                 wholeSlotsPerDie: max(1.0, (Double(input.routedSlots) / Double(routedDies)).rounded(.up)),
                                 routedMaxZ: Self.expectedMaxZ(routedDies),
                                 destinations: messagesPerToken(sharedExpertDies: input.sharedExpertDies),
                                 interNode: input.expertDies > diesPerNode)
    }

    /// ``decodeExpertShape(_:)`` for an MoE model; a dense model's layers never read it (the
    /// colocated dense replays price every step through here: no work for them).
    @inline(__always)
    func decodeExpertShapeIfMoE(_ input: DecodeStepInput) -> DecodeExpertShape {
        guard model.moe != nil else {
            return DecodeExpertShape(slotsPerDie: 1, wholeSlotsPerDie: 1, routedMaxZ: 0, destinations: 0, interNode: false)
        }
        return decodeExpertShape(input)
    }

    /// Attention stream of one decode layer for one microbatch of `requests` requests on a share of
    /// the die: MLA prolog and O-proj (weights streamed once per microbatch), the core over the
    /// INT8 latent cache, and the stream's vector work.
    func decodeAttention(requests b: Double, context ctx: Double, queryTokens q: Double, tp: Int,
                         share: Double = 1, vectorShare: Double = 1) -> Double {
        let fixed = decodeAttentionBatchParts(requests: b, queryTokens: q, tp: tp, share: share, vectorShare: vectorShare)
        return fixed.projections
            + decodeAttentionCore(requests: b, context: ctx, queryTokens: q, tp: tp, share: share, vectorShare: vectorShare)
            + fixed.vector
    }

    /// The parts of ``decodeAttention(requests:context:queryTokens:tp:share:vectorShare:)`` the
    /// context does not change: the projections (weights streamed once per microbatch) and the
    /// stream's vector work. A ``DecodeBatchMemo`` keeps them per batch size.
    @inline(__always)
    func decodeAttentionBatchParts(requests b: Double, queryTokens q: Double, tp: Int, share: Double,
                                   vectorShare: Double) -> (projections: Double, vector: Double) {
        let proj = decodeProjections(tp: tp)
        let tokens = b * q
        let projections = roofline(flops: tokens * proj.flopsPerToken, bytes: proj.weightBytes,
                                   eightBit: terms.weightEightBit, share: share, bandwidthShare: vectorShare)
        return (projections, vectorWork(bytes: tokens * terms.vectorBytesPerTokenPerLayer, share: vectorShare))
    }

    /// The attention core over the KV cache of ``decodeAttention(requests:context:queryTokens:tp:share:vectorShare:)``.
    @inline(__always)
    func decodeAttentionCore(requests b: Double, context ctx: Double, queryTokens q: Double, tp: Int, share: Double,
                             vectorShare: Double) -> Double {
        let tokens = b * q
        // The absorbed MLA core attends over the 8-bit latent (system.md §3: the non-RoPE part of the
        // cache is INT8) on the 8-bit path: on the BF16 path its 1.1e11 FLOPs per microbatch at batch
        // 96 with MTP take 0.67 ms at 65% of 16 cube cores, beyond §4b's ~600 µs for the whole stream.
        return roofline(flops: tokens * decodeCoreFlops(context: ctx, tp: tp),
                        bytes: b * kvReadBytes(context: ctx, tp: tp),
                        eightBit: terms.kvEightBit,
                        computeEfficiency: constants.attentionComputeEfficiency,
                        share: share, bandwidthShare: vectorShare)
    }

    /// Attention time of one decode layer for a group of `requests` at mean context `context` on the
    /// whole die: the engine ranks its DP groups by it to find the one the dispatch barrier waits for.
    public func decodeAttentionSeconds(requests: Double, context: Double, queryTokens: Double, tp: Int = 1) -> Double {
        decodeAttention(requests: requests, context: context, queryTokens: queryTokens, tp: tp)
    }

    /// The terms of ``decodeMoELayer(_:loadFactor:expertSlowdown:)``
    /// that the MoE load factor does not change: a step priced layer by layer works them out once
    /// and per layer only the hottest die's tokens, its experts and the exchange's ends.
    struct MoELayerLoadFree {
        let microbatches: Int
        let attention: Double
        /// Gate on the MoE stream's share.
        let gate: Double
        let hottest: HottestExpertDie
        /// The hottest die's expert GEMMs: its whole slots' weights on the MoE stream's share.
        let experts: FixedBytesRoofline
        /// Each rank's dispatch and combine of its own tokens: the exchange's floor, whatever the
        /// hottest die receives.
        let rankDispatch: Double
        let rankCombine: Double
        let fabric: MessageCost
    }

    /// ``MoELayerLoadFree`` of one layer; nil for a dense model (its layer is its attention).
    /// `context` is the slowest group's (``slowestGroupContext(_:)``), which the step works out once.
    /// `wholeDieAttention`, when given, is ``decodeAttention(requests:context:queryTokens:tp:share:vectorShare:)``
    /// of the whole group on the whole die at this `q` and `context`: one microbatch's attention,
    /// which the step has worked out for its dense layers already.
    @inline(__always)
    func moeLayerLoadFree(_ input: DecodeStepInput, queryTokens q: Double, microbatches m: Int, context: Double,
                          shape: DecodeExpertShape, wholeDieAttention: Double?,
                          batch: DecodeLayerBatchTerms?) -> (attention: Double, moe: MoELayerLoadFree?) {
        let mb = Double(m), tp = input.attentionTP
        let requests = input.requestsPerGroup / mb
        let tokens = requests * q
        let attention = attentionStream(input, queryTokens: q, microbatches: m, context: context,
                                        wholeDieAttention: wholeDieAttention, batch: batch)
        guard terms.isMoE else { return (attention, nil) }
        let moeShare = m > 1 ? 1 - constants.attentionStreamCubeShare : 1
        let moeVector = m > 1 ? 1 - constants.attentionStreamVectorShare : 1
        let gate = batch?.gate ?? gateRoofline(tokens: tokens, moeShare: moeShare, moeVector: moeVector)
        let instanceRequests = input.requestsPerInstance ?? input.requestsPerGroup * Double(input.dpGroups)
        let allTokens = instanceRequests / mb * q / Double(tp)
        let tokensPerRank = tokens / Double(tp)
        let destinations = shape.destinations
        return (attention, MoELayerLoadFree(
            microbatches: m, attention: attention, gate: gate,
            hottest: hottestExpertDie(allTokens: allTokens, input: input, shape: shape),
            experts: roofline(bytes: shape.wholeSlotsPerDie * terms.expertWeightBytes, eightBit: terms.weightEightBit,
                              share: moeShare, bandwidthShare: moeVector),
            rankDispatch: batch?.dispatch ?? dispatch(tokensPerRank: tokensPerRank, destinations: destinations,
                                                      ep: input.expertDies),
            rankCombine: batch?.combine ?? combine(tokensPerRank: tokensPerRank, destinations: destinations,
                                                   ep: input.expertDies),
            fabric: messageCost(interNode: shape.interNode)))
    }

    /// A dense model's decode layer: its microbatches' attention, one after the other.
    @inline(__always)
    static func denseLayer(attention: Double, microbatches m: Int) -> DecodeLayer {
        DecodeLayer(attention: attention, gateAndExperts: 0, dispatch: 0, combine: 0, microbatches: m,
                    layer: Double(m) * attention)
    }

    /// One decode MoE layer with `m` microbatches (system.md §4b). One microbatch runs attention
    /// and then the MoE part on the whole die. Two microbatches run the attention stream and the
    /// MoE stream on their own core shares, each microbatch paying its own weight reads, dispatch
    /// and combine. A microbatch's layer is a chain (attention → gate → dispatch → experts →
    /// combine → next layer's attention), and the two interleave, so the layer takes the longest
    /// of: one chain, the attention stream's work for both, the MoE cube cores' work for both, and
    /// the fabric's transfers for both (dispatch and combine are in flight while the MoE stream's
    /// cube cores run the other microbatch's experts).
    /// Here at MoE load factor `loadFactor`, from the layer's load-free terms (``moeLayerLoadFree``):
    /// a step priced layer by layer works those out once for all its layers.
    @inline(__always)
    func decodeMoELayer(_ fixed: MoELayerLoadFree, loadFactor: Double, expertSlowdown: Double) -> DecodeLayer {
        decodeMoELayer(fixed, hotTokens: fixed.hottest.tokens(loadFactor: loadFactor), expertSlowdown: expertSlowdown)
    }

    /// ``decodeMoELayer(_:loadFactor:expertSlowdown:)`` with the hottest expert die's tokens
    /// worked out: all the layer's load does.
    @inline(__always)
    func decodeMoELayer(_ fixed: MoELayerLoadFree, hotTokens: Double, expertSlowdown: Double) -> DecodeLayer {
        let m = fixed.microbatches, mb = Double(m), attention = fixed.attention, gate = fixed.gate
        let experts = fixed.experts.seconds(flops: hotTokens * terms.expertFlopsPerToken) * expertSlowdown
        // Each rank sends its own tokens; the hottest expert die also receives all of its tokens in
        // the dispatch and sends all of their outputs back in the combine, one message per token
        // handled at either end, so the barrier waits for whichever side is busier (system.md §4b:
        // combine absorbs MoE imbalance).
        let dispatch = max(fixed.rankDispatch, fixed.fabric.seconds(hotTokens, bytesPerMessage: terms.dispatchBytesPerToken))
        let combine = max(fixed.rankCombine, fixed.fabric.seconds(hotTokens, bytesPerMessage: terms.combineBytesPerToken))
        let moe = gate + dispatch + experts + combine
        let layer = m > 1
            ? max(attention + moe, mb * attention, mb * (gate + experts), mb * (dispatch + combine))
            : attention + moe
        return DecodeLayer(attention: attention, gateAndExperts: gate + experts, dispatch: dispatch,
                           combine: combine, microbatches: m, layer: layer)
    }

    /// The router's gate for one microbatch of `tokens` tokens on the MoE stream's share.
    @inline(__always)
    func gateRoofline(tokens: Double, moeShare: Double, moeVector: Double) -> Double {
        roofline(flops: tokens * terms.routerFlopsPerToken, bytes: terms.routerBytes, eightBit: false,
                 share: moeShare, bandwidthShare: moeVector)
    }

    /// One microbatch's attention stream in a decode MoE layer: on the whole die with one
    /// microbatch, on the attention stream's core shares with two, with its TP all-reduce. The
    /// layer and the two-microbatch floor both read it (``twoMicrobatchesFloor(_:shared:)``).
    /// With one microbatch, a `wholeDieAttention` given (``decodeMoELayers(_:queryTokens:microbatches:context:shape:wholeDieAttention:batch:)``)
    /// is the attention it would work out: the group's requests over one (exact), on the whole die.
    @inline(__always)
    func attentionStream(_ input: DecodeStepInput, queryTokens q: Double, microbatches m: Int, context: Double,
                         wholeDieAttention: Double? = nil, batch: DecodeLayerBatchTerms? = nil) -> Double {
        let tp = input.attentionTP
        let requests = input.requestsPerGroup / Double(m)
        let core: Double
        if m == 1, let wholeDieAttention {
            core = wholeDieAttention
        } else if let batch {
            // decodeAttention's sum, its context-free parts from the memo.
            core = batch.projections
                + decodeAttentionCore(requests: requests, context: context, queryTokens: q, tp: tp,
                                      share: m > 1 ? constants.attentionStreamCubeShare : 1,
                                      vectorShare: m > 1 ? constants.attentionStreamVectorShare : 1)
                + batch.vector
        } else {
            core = decodeAttention(requests: requests, context: context, queryTokens: q, tp: tp,
                                   share: m > 1 ? constants.attentionStreamCubeShare : 1,
                                   vectorShare: m > 1 ? constants.attentionStreamVectorShare : 1)
        }
        let attention = core * input.attentionSlowdown
        return attention + (batch?.allReduce ?? tensorParallelAllReduce(tokens: requests * q, tp: tp))
    }

    /// One decode MoE layer (``decodeMoELayer(_:loadFactor:expertSlowdown:)``) averaged over the
    /// MoE layers' own load factors when the input gives them (their sum is the layers' time),
    /// else at the single factor.
    func decodeMoELayers(_ input: DecodeStepInput, queryTokens q: Double, microbatches m: Int,
                         context: Double, shape: DecodeExpertShape, wholeDieAttention: Double? = nil,
                         batch: DecodeLayerBatchTerms? = nil) -> DecodeLayer {
        // The attention stream, gate, token counts and the exchange's rank side do not depend on
        // the load: worked out once (the engine prices every decode step over its layers' factors).
        let loadFree = moeLayerLoadFree(input, queryTokens: q, microbatches: m, context: context, shape: shape,
                                        wholeDieAttention: wholeDieAttention, batch: batch)
        guard let fixed = loadFree.moe else { return Self.denseLayer(attention: loadFree.attention, microbatches: m) }
        let slowdown = input.expertSlowdown
        guard let factors = input.moeLoadFactorPerLayer, !factors.isEmpty else {
            return decodeMoELayer(fixed, loadFactor: input.moeLoadFactor, expertSlowdown: slowdown)
        }
        // The mean as the first layer plus the mean deviation from it, so that identical layers give
        // exactly the single-factor layer (a balanced placement prices as perfect balance, bit for bit).
        let scale = input.moeLoadFactorPerLayerScale
        let firstHot = fixed.hottest.tokens(loadFactor: factors[0] * scale)
        var mean = decodeMoELayer(fixed, hotTokens: firstHot, expertSlowdown: slowdown)
        let first = mean, n = Double(factors.count)
        // By index: iterating a slice of the input's array copied the whole input to keep it alive.
        for i in 1..<factors.count {
            let hot = fixed.hottest.tokens(loadFactor: factors[i] * scale)
            // A layer whose hottest die carries the first's tokens (both at the balanced or the
            // shared-expert dies' floor) is the first layer, bit for bit: it deviates by nothing.
            if hot.bitPattern == firstHot.bitPattern { continue }
            let one = decodeMoELayer(fixed, hotTokens: hot, expertSlowdown: slowdown)
            // (The attention is the first layer's: nothing to add.)
            mean.gateAndExperts += (one.gateAndExperts - first.gateAndExperts) / n
            mean.dispatch += (one.dispatch - first.dispatch) / n
            mean.combine += (one.combine - first.combine) / n
            mean.layer += (one.layer - first.layer) / n
        }
        return mean
    }

    func decodeDenseLayer(requests b: Double, context ctx: Double, queryTokens q: Double, tp: Int) -> Double {
        decodeDenseLayer(attention: decodeAttention(requests: b, context: ctx, queryTokens: q, tp: tp), requests: b,
                         queryTokens: q, tp: tp)
    }

    /// ``decodeDenseLayer(requests:context:queryTokens:tp:)`` with its attention worked out.
    @inline(__always)
    func decodeDenseLayer(attention: Double, requests b: Double, queryTokens q: Double, tp: Int) -> Double {
        attention
            + roofline(flops: b * q * terms.denseFFNFlopsPerToken / Double(tp),
                       bytes: terms.denseFFNBytes / Double(tp),
                       eightBit: terms.weightEightBit)
            + denseLayerAllReduces(tokens: b * q, tp: tp)
    }

    func lmHead(tokens: Double, tp: Int) -> Double {
        roofline(flops: tokens * terms.lmHeadFlopsPerToken / Double(tp), bytes: terms.lmHeadWeightBytes / Double(tp),
                 eightBit: false)
    }

    /// One decode step: dense layers, MoE layers, LM head, sampling, the MTP draft, graph launch
    /// and scheduling. With MTP the main model verifies 1 + drafts tokens per request. Unless the
    /// input fixes it, the scheduler runs one or two microbatches, whichever is faster (system.md
    /// §4b: at small batch one microbatch can win).
    public func decodeStep(_ input: DecodeStepInput) -> DecodeStepCost {
        decodeStep(input, batch: nil)
    }

    /// ``decodeStep(_:)``, reading the figures fixed by the slowest group's batch size and the
    /// instance's shape from `memo` (worked out there on the first step at that size): the same
    /// values from the same operations, so the same bits. The engine keeps one memo per TE.
    public func decodeStep(_ input: DecodeStepInput, memo: inout DecodeBatchMemo) -> DecodeStepCost {
        guard let slot = memo.prepare(input, cost: self) else { return decodeStep(input, batch: nil) }
        return memo.withTerms(slot) { batch in decodeStep(input, batch: batch) }
    }

    private func decodeStep(_ input: DecodeStepInput, batch: DecodeBatchTerms?) -> DecodeStepCost {
        let shared = decodeStepShared(input, batch: batch)
        if let m = input.microbatches {
            let m = max(1, min(2, m))
            return decodeStep(input, microbatches: m, shared: shared, batch: batch)
        }
        let one = decodeStep(input, microbatches: 1, shared: shared, batch: batch)
        guard model.isMoE else { return one }
        // Two microbatches cannot win when even their attention streams alone take as long as one
        // microbatch's whole step (small batches: each microbatch reads the weights again on two
        // thirds of the die). Skipping them then returns what the comparison would (speed only:
        // the dearer candidate was half of a light replay's cost-model work).
        if twoMicrobatchesFloor(input, shared: shared, batch: batch) >= one.stepSeconds { return one }
        let two = decodeStep(input, microbatches: 2, shared: shared, batch: batch)
        return two.stepSeconds < one.stepSeconds ? two : one
    }

    /// A lower bound on the two-microbatch step's time, bit for bit: ``decodeStep(_:microbatches:shared:batch:)``'s
    /// own sums with each layer replaced by its two attention streams, one of the terms whose
    /// maximum the layer is (``decodeMoELayer(_:loadFactor:expertSlowdown:)``).
    /// Rounded addition and multiplication by a positive factor are monotone, so the bound never
    /// exceeds the step. Each layer of a per-layer pricing is at least its two attention streams
    /// too, so the bound holds for their mean up to the rounding of the mean (a few ulps: it could
    /// only matter for two candidates equal to 1e-15).
    func twoMicrobatchesFloor(_ input: DecodeStepInput, shared: DecodeStepShared, batch: DecodeBatchTerms? = nil) -> Double {
        let verify = 2 * attentionStream(input, queryTokens: shared.q, microbatches: 2, context: shared.context,
                                         batch: batch?.verifyTwo)
        let draft = shared.mtpOn
            ? 2 * attentionStream(input, queryTokens: 1, microbatches: 2, context: shared.context, batch: batch?.draftTwo) : 0
        return stepTotals(input, shared: shared, verifyLayer: verify, draftLayer: draft).step
    }

    /// A decode step's time from its main-model MoE layer and (MTP on) its draft layer: dense
    /// layers, heads and sampling, the MTP module per draft token, graph launches and scheduling
    /// around them. Returns the step and its `other` part.
    @inline(__always)
    func stepTotals(_ input: DecodeStepInput, shared: DecodeStepShared, verifyLayer: Double,
                    draftLayer: Double) -> (step: Double, other: Double) {
        var other = shared.otherBeforeDraft
        var graphs = 1.0
        if shared.mtpOn {
            // The MTP module: project [embedding; hidden], one MoE layer, its own LM head and
            // sampling, once per draft token; it runs as a second graph.
            other += Double(input.mtpDrafts) * (draftLayer + shared.draftProjection + shared.draftLMHead + shared.draftSampling)
            graphs += 1
        }
        other += graphs * constants.graphLaunchSeconds + constants.schedulingSeconds
        return (Double(model.moeLayers) * verifyLayer + other, other)
    }

    /// The parts of a decode step that do not depend on its microbatches, worked out once for
    /// both candidates (the same operations in the same order as when each candidate did them).
    struct DecodeStepShared {
        let mtpOn: Bool
        let q: Double
        let context: Double
        /// Dense layers, LM head and sampling of the main model: `other` before the MTP draft.
        let otherBeforeDraft: Double
        /// The draft's projection, LM head and sampling (MTP on only).
        let draftProjection: Double
        let draftLMHead: Double
        let draftSampling: Double
        /// The experts' figures fixed by the instance's shape.
        let shape: DecodeExpertShape
        /// One dense layer of the main model (a dense model's layer time).
        let denseLayer: Double
        /// The main model's attention for the whole group on the whole die (a dense layer's, and
        /// the one-microbatch MoE layer's before its slowdown and all-reduce): worked out once.
        let wholeDieAttention: Double
    }

    /// ``DecodeStepShared`` of `input` (a method, not an initialiser taking the cost model, so
    /// that neither the model nor the input is copied to be consumed).
    func decodeStepShared(_ input: DecodeStepInput, batch: DecodeBatchTerms? = nil) -> DecodeStepShared {
        let mtpOn = input.mtpAcceptance > 0 && model.mtpModules > 0
        let q = mtpOn ? 1 + Double(input.mtpDrafts) : 1
        let b = input.requestsPerGroup, tp = input.attentionTP
        let denseLayers = Double(model.layers - model.moeLayers)
        let context = slowestGroupContext(input)
        guard let batch else {
            let attention = decodeAttention(requests: b, context: context, queryTokens: q, tp: tp)
            let denseLayer = decodeDenseLayer(attention: attention, requests: b, queryTokens: q, tp: tp)
            var other = denseLayers * denseLayer * input.attentionSlowdown
            other += lmHead(tokens: b * q, tp: tp) + sampling(tokens: b * q)
            guard mtpOn else {
                return DecodeStepShared(mtpOn: false, q: q, context: context, otherBeforeDraft: other,
                                        draftProjection: 0, draftLMHead: 0, draftSampling: 0,
                                        shape: decodeExpertShapeIfMoE(input), denseLayer: denseLayer * input.attentionSlowdown,
                                        wholeDieAttention: attention)
            }
            return DecodeStepShared(mtpOn: true, q: q, context: context, otherBeforeDraft: other,
                                    draftProjection: draftProjection(requests: b), draftLMHead: lmHead(tokens: b, tp: tp),
                                    draftSampling: sampling(tokens: b), shape: decodeExpertShapeIfMoE(input),
                                    denseLayer: denseLayer * input.attentionSlowdown, wholeDieAttention: attention)
        }
        // The same sums as above, their batch-fixed terms from the memo.
        let attention = batch.verifyOne.projections
            + decodeAttentionCore(requests: b, context: context, queryTokens: q, tp: tp, share: 1, vectorShare: 1)
            + batch.verifyOne.vector
        let denseLayer = attention + batch.denseFFN + batch.denseAllReduce
        var other = denseLayers * denseLayer * input.attentionSlowdown
        other += batch.lmHead + batch.sampling
        return DecodeStepShared(mtpOn: mtpOn, q: q, context: context, otherBeforeDraft: other,
                                draftProjection: batch.draftProjection, draftLMHead: batch.draftLMHead,
                                draftSampling: batch.draftSampling, shape: batch.shape,
                                denseLayer: denseLayer * input.attentionSlowdown, wholeDieAttention: attention)
    }

    /// The MTP module's projection of [embedding; hidden] for `b` requests.
    func draftProjection(requests b: Double) -> Double {
        roofline(flops: b * 4 * Double(model.hidden * model.hidden),
                 bytes: 2 * Double(model.hidden * model.hidden) * model.weightType.bytes,
                 eightBit: terms.weightEightBit)
    }

    func decodeStep(_ input: DecodeStepInput, microbatches m: Int, shared: DecodeStepShared,
                    batch: DecodeBatchTerms? = nil) -> DecodeStepCost {
        let mtpOn = shared.mtpOn, q = shared.q
        let verify = decodeMoELayers(input, queryTokens: q, microbatches: m, context: shared.context, shape: shared.shape,
                                     wholeDieAttention: shared.wholeDieAttention,
                                     batch: m == 1 ? batch?.verifyOne : batch?.verifyTwo)
        let moeLayers = Double(model.moeLayers)
        let draft = mtpOn ? decodeMoELayers(input, queryTokens: 1, microbatches: m, context: shared.context,
                                            shape: shared.shape,
                                            batch: m == 1 ? batch?.draftOne : batch?.draftTwo).layer : 0
        let (step, other) = stepTotals(input, shared: shared, verifyLayer: verify.layer, draftLayer: draft)
        var breakdown = StepBreakdown()
        let perLayer = moeLayers * Double(m)
        breakdown.attention = perLayer * verify.attention
        breakdown.moe = perLayer * verify.gateAndExperts
        breakdown.dispatch = perLayer * verify.dispatch
        breakdown.combine = perLayer * verify.combine
        breakdown.other = other
        let tokens = 1 + (mtpOn ? input.mtpAcceptance * Double(input.mtpDrafts) : 0)
        return DecodeStepCost(stepSeconds: step, layerSeconds: model.isMoE ? verify.layer : shared.denseLayer,
                              tokensPerStep: tokens,
                              breakdown: breakdown, microbatches: m)
    }
}
