import Foundation
import SimKit

/// Expert routing of one MoE instance: where the experts' replicas live and how unevenly each
/// step loads the instance's expert dies, given the traffic's popularity (``ExpertTraffic``).
///
/// Each step draws one aggregate per-layer imbalance, never per token (architecture.md
/// principle 4): the hottest die's expected share of the layer's token-expert pairs plus one
/// normal draw for its sampling noise.
///
/// ```swift
/// var routing = ExpertRouting(popularity: traffic.popularity, dies: 288, slotsPerDie: 1, seed: 1)
/// let factor = routing.stepLoadFactor(tokens: 30_720)      // ≥ 1; feeds CostModel's barrier
/// ```
public struct ExpertRouting: Sendable {
    public let shape: ModelSpecShape
    public let dies: Int
    public let slotsPerDie: Int
    /// The popularity now in force (set by the engine from ``ExpertTraffic``).
    public private(set) var popularity: ExpertPopularity
    public private(set) var placement: ExpertPlacement
    /// Experts serving tokens: `placement` minus slots disabled while their weights load, minus
    /// the slots on ``lostDies``.
    public private(set) var servingPlacement: ExpertPlacement
    /// The serving placement as last set (``setPlacement(_:serving:)``), before the lost dies'
    /// slots are dropped from it: what serves again once they are back (a heal, an NPU-fork).
    private var servingAsSet: ExpertPlacement
    /// Routed-expert dies (indices below ``dies``) that left the TE: a vertical shrink ran it
    /// without its known-dead dies (system.md §4). Their slots serve nothing, their tokens go to
    /// the experts' other replicas, and the step's mean is over the ``liveDies`` (sorted). The
    /// routing kept every die after a shrink: the step was priced as if the dropped replicas
    /// still took their share of the hot experts' tokens.
    public private(set) var lostDies: [Int] = []
    /// Routed-expert dies still serving.
    public var liveDies: Int { max(1, dies - lostDies.count) }
    private var rng: RandomStream
    /// Per layer: the hottest die's share of the layer's load, for the serving placement under
    /// the popularity in force, unless `sharesStale`.
    private var hottestShare: [Double] = [] {
        didSet {
            hottestShareSum = hottestShare.reduce(0, +)
            binFactors = Self.equalCountBinMeans(hottestShare, bins: Self.layerBins).map { $0 * Double(liveDies) }
        }
    }
    /// ``hottestShare`` summarised for step pricing, as load factors: the means of ``layerBins``
    /// bins of equal layer count over its sorted values (``equalCountBinMeans(_:bins:)``), over
    /// the mean die (``liveDies``, fixed when the shares are worked out).
    private var binFactors: [Double] = []
    private var hottestShareSum = 0.0
    /// Per layer (with `hottestShare`): the load that share is of, the layer's total over the
    /// serving placement's slots (what a blend of the collection window weighs it by).
    private var layerTotal: [Double] = []
    /// Whether the popularity or the serving placement changed since `hottestShare` was worked
    /// out: it is then worked out on its next read, not on the change (issue 12: a prefill TE
    /// steps every few seconds, and a drift, a swap's serving placement and its target often
    /// follow one another with no step to read them; each costs a walk of 58 layers' slots). The
    /// shares are a function of the two alone, so when they are computed changes nothing.
    private var sharesStale = false
    /// Token-expert pairs per layer and expert since the last `takeWindow()`. Popularity is
    /// piecewise constant, so tokens are summed per segment and kept as (pairs, popularity)
    /// segments; the per-expert table is built only when a face reads the heat.
    private var window = HeatWindow()
    private var segmentPairs = 0.0
    /// Whether to keep the per-expert window counts (only the instance the console shows needs them).
    public var recordsHeat = true
    /// The EPLB collection window (system.md §4: a collect kernel counts tokens per expert per
    /// layer; the counts are aggregated periodically): token-expert pairs routed under each
    /// popularity since the window opened. Popularity is piecewise constant, so the window is a
    /// few (pairs, popularity) segments, blended only when a plan needs them.
    private var collectedSegments: [CollectedSegment] = []
    private var collectingPairs = 0.0

    /// One popularity's part of the collection window: its token-expert pairs and, when they were
    /// worked out when it closed and for the placement then in force (no swap under way), that
    /// placement's hottest-die shares under it and the layer totals they are shares of
    /// (``collectedImbalanceBound()``).
    private struct CollectedSegment {
        var pairs: Double
        var popularity: ExpertPopularity
        var shares: (placement: ExpertPlacement, perLayer: [Double], totals: [Double])?
    }

    public init(popularity: ExpertPopularity, dies: Int, slotsPerDie: Int, seed: UInt64, placement: ExpertPlacement? = nil) {
        shape = ModelSpecShape(moeLayers: popularity.layers.count, experts: popularity.experts)
        self.dies = dies
        self.slotsPerDie = slotsPerDie
        self.popularity = popularity
        rng = RandomStreams(seed: seed).stream("expert-routing")
        window = HeatWindow(shape: shape)
        let initial = placement ?? .roundRobin(experts: shape.experts, layers: shape.moeLayers, dies: dies,
                                                slotsPerDie: slotsPerDie)
        self.placement = initial
        servingPlacement = initial
        servingAsSet = initial
        recompute()
    }

    /// Convenience for tests and benches: its own traffic, skewed or uniform.
    public init(shape: ModelSpecShape, dies: Int, slotsPerDie: Int, seed: UInt64, skewed: Bool = true) {
        self.init(popularity: ExpertTraffic(shape: shape, seed: seed, skewed: skewed).popularity, dies: dies,
                  slotsPerDie: slotsPerDie, seed: seed)
    }

    public mutating func setPopularity(_ p: ExpertPopularity) {
        foldSegment()
        if collectingPairs > 0 { collectedSegments.append(openSegment) }
        collectingPairs = 0
        popularity = p
        recompute()
    }

    public mutating func setPlacement(_ new: ExpertPlacement, serving: ExpertPlacement? = nil) {
        servingAsSet = serving ?? new
        let next = lostDies.isEmpty ? servingAsSet : servingAsSet.dropping(dies: Set(lostDies))
        // The shares are a function of the serving placement and the popularity alone: a copy of
        // the placement already serving (a swap whose load phase disables no slot serves from the
        // old placement itself) leaves them as they are, worked out or not.
        let sameServing = next.isCopy(of: servingPlacement)
        placement = new
        servingPlacement = next
        if !sameServing { recompute() }
    }

    /// The routed-expert dies (indices) that left the TE now (``lostDies``; none: every die
    /// serves again). Their slots stop serving at once; the placement itself (what EPLB plans
    /// from and a heal restores) is unchanged.
    public mutating func setLostDies(_ lost: [Int]) {
        let sorted = Array(Set(lost.filter { $0 >= 0 && $0 < dies })).sorted()
        guard sorted != lostDies else { return }
        lostDies = sorted
        servingPlacement = sorted.isEmpty ? servingAsSet : servingAsSet.dropping(dies: Set(sorted))
        recompute()
    }

    // MARK: Per step

    /// The hottest die's load over the mean, averaged over MoE layers, for a step that routes
    /// `tokens` tokens (each to top-k experts). Records the heat for telemetry.
    public mutating func stepLoadFactor(tokens: Double, topK: Int = 8) -> Double {
        stepLoad(tokens: tokens, topK: topK).factor
    }

    /// ``stepLoadFactor(tokens:topK:)``, and per MoE layer the hottest die's load over the mean
    /// in that step: the layers' expected hottest shares (`layers`), and the factor of the step's
    /// noise to scale them by (`scale`). Their mean, scaled, is `factor`. Each layer's combine
    /// waits for its own hottest die, and a layer's time is convex in its load
    /// (``DecodeStepInput/moeLoadFactorPerLayer``), so a step priced at the mean alone came out
    /// short wherever layers differ: a saturated `--eplb off` superpod stepped 10% faster than
    /// `bench decode` priced its own batch. No layers (empty) where the factor is 1 by construction.
    ///
    /// The layers come as ``layerBins`` groups of equal layer count (their sorted loads cut into
    /// bins, each bin's mean): pricing all 58 layers took 4.6× the instructions of a default run,
    /// and the bins keep the mean exactly and most of the spread (a bin is a run of neighbours in
    /// load order; the hottest layers share the top one).
    public mutating func stepLoad(tokens: Double, topK: Int = 8) -> (factor: Double, layers: [Double], scale: Double) {
        guard tokens > 0 else { return (1, [], 1) }
        settleShares()
        guard !hottestShare.isEmpty else { return (1, [], 1) }
        let pairs = tokens * Double(topK)
        segmentPairs += pairs
        collectingPairs += pairs
        // The mean over the dies that still serve (a shrunk TE's lost dies take no token).
        let meanPerDie = pairs / Double(liveDies)
        // Each layer's hottest die carries its expected pairs plus binomial noise (variance ≈ the
        // mean); the step pays the average over layers, whose noise is one normal draw with the
        // summed variance — O(1) per step whatever the layer count.
        let expected = pairs * hottestShareSum
        let noisy = expected + expected.squareRoot() * Normal.ziggurat(using: &rng)
        return (max(1, noisy / Double(hottestShare.count) / meanPerDie), binFactors, expected > 0 ? noisy / expected : 1)
    }

    /// Layer groups a step is priced over (``stepLoad(tokens:topK:)``).
    static let layerBins = 4

    /// The means of `bins` bins of equal count over the sorted `values`: bin j holds the sorted
    /// values between positions j·n/bins and (j+1)·n/bins, a value straddling a boundary counted
    /// in each by the share it covers. Their mean is the values' mean. Fewer values than bins:
    /// the values themselves.
    static func equalCountBinMeans(_ values: [Double], bins: Int) -> [Double] {
        guard values.count > bins, bins > 0 else { return values }
        let sorted = values.sorted()
        let width = Double(sorted.count) / Double(bins)
        return (0..<bins).map { j in
            let lo = Double(j) * width, hi = Double(j + 1) * width
            var sum = 0.0
            for i in Int(lo)..<min(sorted.count, Int(hi.rounded(.up))) {
                let covered = min(hi, Double(i + 1)) - max(lo, Double(i))
                if covered > 0 { sum += sorted[i] * covered }
            }
            return sum / width
        }
    }

    /// Relative per-die load of the serving placement, averaged over layers (1 = mean).
    public func dieLoads() -> [Double] {
        // ExpertPlacement.dieLoads(layer:popularity:) per layer, into one scratch buffer (the
        // same sums in the same order): a snapshot asks for this.
        var sum = Array(repeating: 0.0, count: dies)
        var loads = Array(repeating: 0.0, count: dies)
        let p = servingPlacement
        for l in 0..<min(shape.moeLayers, p.layerCount) {
            for d in loads.indices { loads[d] = 0 }
            let row = popularity.layers[l]
            for e in 0..<p.experts {
                let range = p.hostRange(l, e)
                guard !range.isEmpty else { continue }
                let share = row[e] / Double(range.count)
                for s in range { loads[Int(p.hostDies[s])] += share }
            }
            let mean = loads.reduce(0, +) / Double(liveDies)
            for d in 0..<dies { sum[d] += mean > 0 ? loads[d] / mean : 0 }
        }
        return sum.map { $0 / Double(max(1, shape.moeLayers)) }
    }

    /// `placement.imbalance(popularity: counts)`: the current placement's imbalance under the
    /// collected counts (what EPLB weighs a plan against).
    public func placementImbalance(popularity counts: ExpertPopularity) -> Double {
        placement.imbalance(popularity: counts)
    }

    /// Expected imbalance (max/mean per-die load, averaged over layers) of the serving placement.
    /// (Worked out here if a change left the shares stale; ``settledExpectedImbalance()`` keeps them.)
    public var expectedImbalance: Double {
        Self.imbalance(shares: sharesStale ? servingPlacement.hottestShares(popularity: popularity) : hottestShare,
                       dies: liveDies)
    }

    /// ``expectedImbalance``, the shares it works out kept for the next step's read.
    public mutating func settledExpectedImbalance() -> Double {
        settleShares()
        return Self.imbalance(shares: hottestShare, dies: liveDies)
    }

    /// Whether the hottest-die shares wait to be worked out (a drift or a placement change since).
    var needsShares: Bool { sharesStale }

    /// What the hottest-die shares are a function of: the serving placement and the popularity.
    struct SharesKey {
        var serving: ExpertPlacement
        var popularity: ExpertPopularity

        /// Copies of the same popularity (every TE holds the traffic's) and placement. (Equal
        /// placements built apart do not match: walking them cost as much as it saved.)
        func matches(_ other: SharesKey) -> Bool {
            popularity.isCopy(of: other.popularity) && serving.isCopy(of: other.serving)
        }
    }

    var sharesKey: SharesKey { SharesKey(serving: servingPlacement, popularity: popularity) }

    /// Its hottest-die shares and their layer totals, if they are worked out and for `key`.
    func shares(for key: SharesKey) -> (perLayer: [Double], totals: [Double])? {
        sharesStale || !sharesKey.matches(key) ? nil : (hottestShare, layerTotal)
    }

    /// Takes `shares`, another routing's ``shares(for:)`` for this one's ``sharesKey``, as its own:
    /// they are a function of the key alone, so equal to working them out here. (The prefill TEs
    /// of a group often hold one placement, and every drift hands all TEs one popularity: issue
    /// 12, each TE's walk of 58 layers' slots after a drift was 6% of a Mooncake hour.)
    mutating func adoptShares(_ shares: (perLayer: [Double], totals: [Double]), for key: SharesKey) {
        guard sharesStale, sharesKey.matches(key) else { return }
        hottestShare = shares.perLayer
        layerTotal = shares.totals
        sharesStale = false
    }

    private static func imbalance(shares: [Double], dies: Int) -> Double {
        shares.isEmpty ? 1 : shares.reduce(0, +) / Double(shares.count) * Double(dies)
    }

    /// Token-expert pairs per layer and expert routed since the last call (the collect kernel's
    /// counts of system.md §4), then starts a new window.
    public mutating func takeWindow() -> [[Double]] { takeHeatWindow().counts }

    /// ``takeWindow()`` as its segments: the counts are built only if read (``HeatWindow/counts``).
    public mutating func takeHeatWindow() -> HeatWindow {
        foldSegment()
        defer { window = HeatWindow(shape: shape) }
        return window
    }

    /// The load the collect kernel counted since the window opened, per layer and expert
    /// (relative to each layer's mean), or nil when nothing was routed. Does not close the window.
    public func collectedLoad() -> ExpertPopularity? {
        var segments = collectedSegments
        if collectingPairs > 0 { segments.append(openSegment) }
        guard let first = segments.first else { return nil }
        // One popularity over the whole window (no drift inside it): the counts are that popularity.
        if segments.allSatisfy({ $0.popularity == first.popularity }) { return first.popularity }
        let total = segments.reduce(0) { $0 + $1.pairs }
        let weights = segments.map { $0.pairs / total }
        // Row by row, each element summing the segments in order (the same sums as segment by
        // segment over the whole table, without a nested-array write per element).
        var rows = [[Double]]()
        rows.reserveCapacity(shape.moeLayers)
        for l in 0..<shape.moeLayers {
            var row = [Double](repeating: 0, count: shape.experts)
            row.withUnsafeMutableBufferPointer { out in
                for (segment, weight) in zip(segments, weights) {
                    segment.popularity.layers[l].withUnsafeBufferPointer { p in
                        for e in 0..<min(out.count, p.count) { out[e] += weight * p[e] }
                    }
                }
            }
            rows.append(row)
        }
        return ExpertPopularity(layers: rows)
    }

    /// The open segment: the pairs collected under the popularity in force, with the shares of
    /// the placement if they are settled and it is the one serving.
    private var openSegment: CollectedSegment {
        let known = !sharesStale && servingPlacement.isCopy(of: placement)
        return CollectedSegment(pairs: collectingPairs, popularity: popularity,
                                shares: known ? (placement, hottestShare, layerTotal) : nil)
    }

    /// An upper bound on ``placementImbalance(popularity:)`` of ``collectedLoad()`` (nil when
    /// nothing was collected, or a segment's shares for the current placement are not known).
    ///
    /// The collected load is a blend of the window's popularities, segment `s` weighted by its
    /// pairs `w_s`. In a layer, a die's load under the blend is the weighted sum of its loads
    /// under the segments, and so is the layer's total; the hottest die's load is therefore at
    /// most the weighted sum of the segments' hottest loads (`share_s × total_s`), and its share at
    /// most `Σ w_s share_s total_s / Σ w_s total_s`: the segments' shares averaged, weighted by
    /// their loads. That is never above the largest of them (the mediant bound, which it replaced:
    /// issue 12, a prefill TE's collected load kept it within its minimum gain 74 times in a
    /// Mooncake hour, and the largest share let 65 of them through to blend 58 × 256 counts and
    /// walk the placement). A window of one popularity bounds by its shares themselves, exactly
    /// the current placement's imbalance. The shares come free from the steps; the bound is
    /// compared with room for rounding (``EPLBController``).
    public func collectedImbalanceBound() -> Double? {
        guard hasCollected else { return nil }
        let layers = placement.layerCount
        // Each counting segment's pairs and shares, the open one's the settled ones (the arrays
        // taken out once: reading them through the segments per layer copied a segment each time).
        var parts: [(pairs: Double, perLayer: [Double], totals: [Double])] = []
        parts.reserveCapacity(collectedSegments.count + 1)
        for segment in collectedSegments {
            guard let shares = segment.shares, shares.placement.isCopy(of: placement) else { return nil }
            parts.append((segment.pairs, shares.perLayer, shares.totals))
        }
        if collectingPairs > 0 {
            guard !sharesStale, servingPlacement.isCopy(of: placement) else { return nil }
            parts.append((collectingPairs, hottestShare, layerTotal))
        }
        guard layers > 0, parts.allSatisfy({ $0.perLayer.count == layers && $0.totals.count == layers }) else {
            return nil
        }
        var sum = 0.0
        if parts.count == 1 {
            for l in 0..<layers { sum += parts[0].perLayer[l] }
            return sum / Double(layers) * Double(dies)
        }
        for l in 0..<layers {
            var worst = -Double.infinity, hottest = 0.0, total = 0.0
            for part in parts {
                let share = part.perLayer[l], layerTotal = part.totals[l]
                worst = max(worst, share)
                hottest += part.pairs * (share * layerTotal)
                total += part.pairs * layerTotal
            }
            // (Rounding may put the average an ulp above the largest share: never above it.)
            let average = hottest / total
            sum += total > 0 && average < worst ? average : worst
        }
        return sum / Double(layers) * Double(dies)
    }

    /// Ends the collection window unread (a plan would not use it).
    public mutating func discardCollectedLoad() {
        collectedSegments.removeAll()
        collectingPairs = 0
    }

    /// Whether the open collection window has counted any tokens.
    public var hasCollected: Bool { collectingPairs > 0 || !collectedSegments.isEmpty }

    /// ``collectedLoad()``, then opens a new collection window (EPLB's periodic aggregation).
    public mutating func takeCollectedLoad() -> ExpertPopularity? {
        defer {
            collectedSegments.removeAll()
            collectingPairs = 0
        }
        return collectedLoad()
    }

    private mutating func foldSegment() {
        guard segmentPairs > 0, recordsHeat else { return }
        window.segments.append((segmentPairs / Double(shape.experts), popularity))
        segmentPairs = 0
    }

    /// The popularity or the serving placement changed: the shares are worked out on their next read.
    private mutating func recompute() {
        sharesStale = true
    }

    @inline(__always)
    private mutating func settleShares() {
        guard sharesStale else { return }
        sharesStale = false
        (hottestShare, layerTotal) = servingPlacement.hottestSharesAndTotals(popularity: popularity)
    }
}

/// One heat window of ``ExpertRouting``: the (pairs per expert, popularity) segments folded into
/// it, in order. The per-layer, per-expert counts (``counts``) are the segments summed element by
/// element in that order — the same additions, so the same bits, as folding each segment into a
/// table when it closed — but built only when read: the window closes every 5 simulated seconds
/// and only a face's snapshot looks at it (folding 58 × 256 counts per segment was 6% of a replay).
public struct HeatWindow: Sendable {
    var shape = ModelSpecShape(moeLayers: 0, experts: 0)
    var segments: [(perExpert: Double, popularity: ExpertPopularity)] = []

    init() {}
    init(shape: ModelSpecShape) { self.shape = shape }

    /// Token-expert pairs per layer and expert.
    public var counts: [[Double]] {
        (0..<shape.moeLayers).map { layer($0) }
    }

    /// Whether the first layer counted any pair (the engine keeps a window as the heat only then).
    public var countedAny: Bool {
        shape.moeLayers > 0 && layer(0).contains(where: { $0 > 0 })
    }

    public var isEmpty: Bool { shape.moeLayers == 0 }

    func layer(_ l: Int) -> [Double] {
        var row = [Double](repeating: 0, count: shape.experts)
        row.withUnsafeMutableBufferPointer { out in
            for (perExpert, popularity) in segments {
                popularity.layers[l].withUnsafeBufferPointer { p in
                    for e in 0..<min(out.count, p.count) { out[e] += perExpert * p[e] }
                }
            }
        }
        return row
    }
}
