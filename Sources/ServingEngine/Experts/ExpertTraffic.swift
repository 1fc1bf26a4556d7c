import Foundation
import SimKit

/// Which experts the traffic favours: how skewed each MoE layer is belongs to the model, which
/// experts are the hot ones belongs to the traffic, and it wanders.
///
/// - **How skewed** (``layerShapes``): one draw of ``ExpertPopularity/skewed(model:shape:using:)``
///   (the stream the bench draws from), each layer's loads sorted hottest first. Every popularity
///   this produces holds exactly these loads per layer, so the published distribution (system.md
///   §4b: most layers mild, a few very hot, about 20% of experts above the mean, the model-wide
///   extreme 30×) holds at every moment of a run, however long.
/// - **Which experts** (a Gaussian copula): each traffic class has a latent preference per layer
///   and expert (standard normals); the mix blends them (weighted, rescaled to unit variance) and
///   a slow, mean-reverting random walk (``drift``) is added. Each layer's experts, ranked by that
///   score, take the layer's loads in order. A code-heavy or chat-heavy phase, or the walk, moves
///   the hot set; it cannot inflate the skew. (Multiplying loads by a drift, as before, took the
///   share of experts above the mean from 20% to about 40% and the median layer's hottest from
///   2.4× to 4.4× within half an hour, and a 50/50 blend of two profiles halved the extreme.)
///
/// ```swift
/// var traffic = ExpertTraffic(shape: shape, seed: 1)
/// traffic.setMix(["reasoning": 0.8, "chat": 0.2])
/// traffic.advanceDrift(seconds: 10)
/// let p = traffic.popularity                       // layers × experts, mean 1 per layer
/// ```
public struct ExpertTraffic: Sendable {
    public let shape: ModelSpecShape
    /// Per MoE layer, its experts' loads hottest first (mean 1): the model's skew.
    public let layerShapes: [[Double]]
    /// Each class alone, without drift: the layer shapes ranked by the class's preferences.
    /// Worked out when asked (tests): nothing in a run reads them, and ranking every class's 58
    /// layers cost every engine start ~1.5 M instructions (issue 12).
    public var profiles: [String: ExpertPopularity] {
        var profiles: [String: ExpertPopularity] = [:]
        for (name, scores) in preferences {
            profiles[name] = Self.ranked(layerShapes, counts: rankedCounts, scores: scores, experts: shape.experts)
        }
        return profiles
    }
    public private(set) var mix: [String: Double]
    public private(set) var popularity: ExpertPopularity
    /// Each class's latent preference, flat like `drift` (`[l * experts + e]`).
    private let preferences: [String: [Double]]
    var preferencesForTesting: [String: [Double]] { preferences }
    /// The drift's random walk on the latent scores, layer by layer (`drift[l * experts + e]`): one
    /// flat buffer, so a step writes 58 × 256 elements without a nested-array uniqueness check per
    /// element.
    private(set) var drift: [Double]
    /// The mix's blend of the preferences, flat like `drift` (nil: to be made): it changes only
    /// with the mix, while every drift step adds the drift to it (no re-blend per step).
    private var blended: [Double]?
    /// Per layer, how many of its hottest loads differ from its last (the rest, the body of
    /// experts below the mean, all carry that one load): only that many ranks need an order.
    private let rankedCounts: [Int]
    /// Layer `l`'s hottest `rankedCounts[l]` experts in order as the last ranking found them, at
    /// `rankOrders[l * experts...]`: where the next one starts (speed only: the ranking is the
    /// same whatever this holds).
    private var rankOrders: [Int32] = []
    private var rng: RandomStream
    /// Random-walk step of the drift per √second, on latent scores of unit spread (documented
    /// default: the papers give no rate). With ``driftRetention`` per 30 s step the walk settles
    /// at a spread of about 0.55, so a class's hot set wanders but stays recognisable.
    public var driftPerRootSecond = 0.02

    public init(shape: ModelSpecShape, seed: UInt64, skewed: Bool = true, classes: [String] = ["chat", "reasoning"]) {
        self.shape = shape
        let streams = RandomStreams(seed: seed)
        let count = shape.moeLayers * shape.experts
        var skew = streams.stream("expert-popularity")
        // Each layer's loads hottest first, as the skew makes them before shuffling (uniform: one load).
        layerShapes = skewed ? ExpertPopularity.skewedLayerShapes(model: shape, using: &skew)
            : ExpertPopularity.uniform(layers: shape.moeLayers, experts: shape.experts).layers
        rankedCounts = layerShapes.map { loads in
            guard let last = loads.last else { return 0 }
            return (loads.lastIndex { $0 != last } ?? -1) + 1
        }
        var preferences: [String: [Double]] = [:]
        for name in classes.sorted() {
            var r = streams.stream("expert-popularity/\(name)")
            preferences[name] = (0..<count).map { _ in Normal.standard(using: &r) }
        }
        self.preferences = preferences
        // Balanced traffic (the bench's `--routing balanced`, the engine's uniform experts) has no
        // hot set to wander.
        if !skewed { driftPerRootSecond = 0 }
        mix = Dictionary(uniqueKeysWithValues: classes.map { ($0, 1 / Double(classes.count)) })
        drift = Array(repeating: 0, count: count)
        rng = streams.stream("expert-drift")
        popularity = .uniform(layers: shape.moeLayers, experts: shape.experts)
        recompute()
    }

    /// Sets the traffic mix (e.g. ["chat": 0.2, "reasoning": 0.8]); unknown classes are ignored.
    public mutating func setMix(_ weights: [String: Double]) {
        if adoptMix(weights) { recompute() }
    }

    /// The mix of `weights` (unknown classes and zero weights left out), the blend to be made
    /// again; whether it was taken (false: no known class with weight, the mix unchanged). The
    /// popularity is left as it was: the caller re-ranks.
    private mutating func adoptMix(_ weights: [String: Double]) -> Bool {
        let known = weights.filter { preferences[$0.key] != nil && $0.value > 0 }
        let total = known.values.reduce(0, +)
        guard total > 0 else { return false }
        mix = known.mapValues { $0 / total }
        blended = nil
        return true
    }

    /// The traffic classes in name order: the order of ``setMix(arrivals:)``'s weights.
    public var classes: [String] { preferences.keys.sorted() }

    /// ``setMix(_:)`` with weights given per class in ``classes`` order (zero weights are left
    /// out, as if the class had no entry).
    public mutating func setMix(arrivals: [Double]) {
        if adoptMix(arrivals: arrivals) { recompute() }
    }

    private mutating func adoptMix(arrivals: [Double]) -> Bool {
        let names = classes
        var weights: [String: Double] = [:]
        for (i, weight) in zip(names.indices, arrivals) where weight > 0 { weights[names[i]] = weight }
        return adoptMix(weights)
    }

    /// ``setMix(arrivals:)`` then ``advanceDrift(steps:firstSeconds:seconds:)``: the same
    /// popularity, ranked once. The mix's own ranking is not worked out when the drift steps
    /// right after it and ranks the new scores anyway (issue 12: a ranking of 58 layers thrown
    /// away at every drift update that saw arrivals).
    public mutating func setMix(arrivals: [Double], thenAdvanceDrift steps: Double, firstSeconds: Double,
                                seconds: Double) {
        let mixed = adoptMix(arrivals: arrivals)
        let stepped = advanceDrift(steps: steps, firstSeconds: firstSeconds, seconds: seconds)
        if mixed && !stepped { recompute() }
    }

    /// Advances the drift random walk by `seconds` of simulated time; whether the walk stepped
    /// (and so re-ranked the popularity).
    @discardableResult
    public mutating func advanceDrift(seconds: Double) -> Bool {
        guard seconds > 0, driftPerRootSecond > 0 else { return false }
        step(retention: Self.driftRetention, sigma: driftPerRootSecond * seconds.squareRoot())
        return true
    }

    /// Advances the drift by `steps` random-walk steps at once: the first of `firstSeconds`,
    /// the others of `seconds` each — what `steps` calls of ``advanceDrift(seconds:)`` would do,
    /// in closed form. The walk is AR(1) (x ← a·x + σ·N), so k steps are x ← aᵏ·x + s·N with
    /// s² the sum of the steps' variances, each scaled by a² per later step: exact in
    /// distribution, one normal draw per expert however long the stretch (an idle day costs
    /// the same as 30 s). One step is exactly ``advanceDrift(seconds:)``. Whether the walk stepped.
    @discardableResult
    public mutating func advanceDrift(steps: Double, firstSeconds: Double, seconds: Double) -> Bool {
        guard steps >= 1 else { return false }
        guard steps >= 2 else { return advanceDrift(seconds: firstSeconds) }
        guard driftPerRootSecond > 0 else { return false }
        let a = Self.driftRetention
        let later = steps - 1
        let firstVariance = driftPerRootSecond * driftPerRootSecond * max(0, firstSeconds)
        let stepVariance = driftPerRootSecond * driftPerRootSecond * max(0, seconds)
        let decayLater = Foundation.pow(a * a, later)
        let variance = decayLater * firstVariance + stepVariance * (1 - decayLater) / (1 - a * a)
        let sigma = variance.squareRoot()
        step(retention: Foundation.pow(a, steps), sigma: sigma)
        return true
    }

    /// One AR(1) step of every latent score, x ← retention·x + sigma·N, layer by layer, expert
    /// by expert (the normals drawn in bulk, ``Normal/fill(_:using:)``).
    private mutating func step(retention: Double, sigma: Double) {
        if blended == nil { blended = blend() }
        let blended = blended!
        // Written whole by the fill (no zeroing first: 119 KB a step, a memset counted byte by byte).
        var noise = [Double](unsafeUninitializedCapacity: drift.count) { buffer, written in
            Normal.fill(buffer, using: &rng)
            written = buffer.count
        }
        guard blended.count == drift.count else {
            drift.withUnsafeMutableBufferPointer { drift in
                for i in drift.indices { drift[i] = retention * drift[i] + sigma * noise[i] }
            }
            return recompute()
        }
        // The drift's step and the scores (``recompute()``'s blend plus drift, the same sums) in
        // one pass, each score written over the noise it was drawn from (issue 12: a second walk
        // of 14,848 scores and a second 119 KB buffer every drift).
        drift.withUnsafeMutableBufferPointer { drift in
            blended.withUnsafeBufferPointer { blended in
                noise.withUnsafeMutableBufferPointer { noise in
                    for i in 0..<drift.count {
                        let moved = retention * drift[i] + sigma * noise[i]
                        drift[i] = moved
                        noise[i] = blended[i] + moved
                    }
                }
            }
        }
        popularity = Self.ranked(layerShapes, counts: rankedCounts, scores: noise, experts: shape.experts,
                                 orders: &rankOrders)
    }

    /// Per layer, every expert in the order the last ranking left it: the hottest it ordered,
    /// then the others by id (empty before any ranking). Where the planner can start sorting
    /// this popularity's loads (``PlanningOrders``; its answer is the same from any start): the
    /// loads follow the ranking, up to ties, so the first plan of a run is an insertion pass
    /// instead of a full sort per layer (issue 12: ~1.8 M instructions every engine start).
    var rankingHint: [[Int32]] {
        let experts = shape.experts
        guard experts > 0, rankOrders.count == layerShapes.count * experts else { return [] }
        var seen = [Bool](repeating: false, count: experts)
        return layerShapes.indices.map { l in
            var order: [Int32] = []
            order.reserveCapacity(experts)
            for e in 0..<experts { seen[e] = false }
            let ordered = min(rankedCounts[l], experts, layerShapes[l].count)
            for rank in 0..<ordered {
                let e = rankOrders[l * experts + rank]
                order.append(e)
                seen[Int(e)] = true
            }
            for e in 0..<experts where !seen[e] { order.append(Int32(truncatingIfNeeded: e)) }
            return order
        }
    }

    /// Share of the drift kept per step: mean reversion, so hot sets wander around the traffic's
    /// preferences instead of away from them.
    static let driftRetention = 0.98

    /// The mix's blend, element by element the weighted preferences summed in name order from 0,
    /// over the weights' norm (a blend of independent unit normals is then a unit normal again, so
    /// the drift weighs the same against any mix).
    private func blend() -> [Double] {
        var flat = [Double](repeating: 0, count: shape.moeLayers * shape.experts)
        let weighted = mix.sorted { $0.key < $1.key }.compactMap { name, weight in
            preferences[name].map { (weight: weight, scores: $0) }
        }
        let norm = weighted.reduce(0) { $0 + $1.weight * $1.weight }.squareRoot()
        guard norm > 0 else { return flat }
        flat.withUnsafeMutableBufferPointer { flat in
            for (weight, scores) in weighted {
                let w = weight / norm
                scores.withUnsafeBufferPointer { p in
                    for i in 0..<min(flat.count, p.count) { flat[i] += w * p[i] }
                }
            }
        }
        return flat
    }

    private mutating func recompute() {
        if blended == nil { blended = blend() }
        let blended = blended!
        // The blend plus the drift, element by element, written once (copying the blend to add
        // the drift in place cost a slow element-wise copy per drift: issue 12).
        let scores = [Double](unsafeUninitializedCapacity: blended.count) { out, written in
            blended.withUnsafeBufferPointer { blended in
                drift.withUnsafeBufferPointer { drift in
                    let both = min(blended.count, drift.count)
                    for i in 0..<both { out[i] = blended[i] + drift[i] }
                    for i in both..<blended.count { out[i] = blended[i] }
                }
            }
            written = blended.count
        }
        popularity = Self.ranked(layerShapes, counts: rankedCounts, scores: scores, experts: shape.experts,
                                 orders: &rankOrders)
    }

    /// Each layer's experts ranked by `scores` (highest first, lower id on ties), the layer's
    /// loads given out in that order. Only the first `counts[l]` ranks are ordered: every expert
    /// after them gets the layer's last load.
    static func ranked(_ shapes: [[Double]], counts: [Int], scores: [Double], experts: Int) -> ExpertPopularity {
        var none: [Int32] = []
        return ranked(shapes, counts: counts, scores: scores, experts: experts, orders: &none)
    }

    /// ``ranked(_:counts:scores:experts:)`` starting each layer from the hottest experts an
    /// earlier ranking found, in order, at `orders[l * experts...]` (written here with this
    /// ranking's; any other size is no hint). The ranking is the same whatever `orders` holds
    /// (the hottest-first order is strict); only the work depends on it. A drift step moves few
    /// experts across a layer's boundary, so the old hottest set, under the new scores, bounds
    /// the new one to a few dozen candidates (issue 12: selecting the hottest fifth of 256
    /// experts afresh was 2.5% of a Mooncake hour).
    static func ranked(_ shapes: [[Double]], counts: [Int], scores: [Double], experts: Int,
                       orders: inout [Int32]) -> ExpertPopularity {
        var rows: [[Double]] = []
        rows.reserveCapacity(shapes.count)
        let hinted = orders.count == shapes.count * experts
        if !hinted { orders = Array(repeating: 0, count: shapes.count * experts) }
        let keys = UnsafeMutableBufferPointer<HotterFirst>.allocate(capacity: max(1, experts))
        defer { keys.deallocate() }
        let inHint = UnsafeMutableBufferPointer<UInt64>.allocate(capacity: max(1, (experts + 63) >> 6))
        defer { inHint.deallocate() }
        scores.withUnsafeBufferPointer { scores in
            orders.withUnsafeMutableBufferPointer { orders in
                for (l, loads) in shapes.enumerated() {
                    let base = l * experts
                    let layerScores = UnsafeBufferPointer(rebasing: scores[base..<base + experts])
                    let ordered = min(counts[l], experts, loads.count)
                    let order = UnsafeMutableBufferPointer(rebasing: orders[base..<base + ordered])
                    // The layer's hottest `ordered` experts, in order, at the front of `top`.
                    let top: UnsafeMutableBufferPointer<HotterFirst>
                    if hinted, let m = hottestCandidates(scores: layerScores, hint: UnsafeBufferPointer(order),
                                                         into: keys, seen: inHint) {
                        top = UnsafeMutableBufferPointer(rebasing: keys[0..<m])
                        // An insertion pass while the hint is close; else the `ordered` hottest
                        // selected and sorted (only those are read) once it has moved eight
                        // elements per candidate. A mix change reorders the hot set far beyond
                        // that (the unbounded pass cost ~40 k instructions a layer, 58 layers an
                        // update: issue 12), while a drift step alone mostly stays within it (a
                        // tighter budget cost a Mooncake hour 8 M more in partial sorts). Either
                        // way the one strict order of the hottest.
                        HotterFirst.sortSmallestNearlySorted(top, count: ordered, movesBudget: 8 * m)
                    } else {
                        for e in 0..<experts {
                            keys[e] = HotterFirst(key: ExpertPlacement.hotterFirstKey(layerScores[e]),
                                                  id: UInt32(truncatingIfNeeded: e))
                        }
                        top = UnsafeMutableBufferPointer(rebasing: keys[0..<experts])
                        HotterFirst.sortSmallest(top, count: ordered)
                    }
                    var row = [Double](repeating: loads.last ?? 1, count: experts)
                    for rank in 0..<ordered { row[Int(top[rank].id)] = loads[rank] }
                    rows.append(row)
                    for rank in 0..<ordered { order[rank] = Int32(truncatingIfNeeded: top[rank].id) }
                }
            }
        }
        return ExpertPopularity(layers: rows)
    }

    /// Every expert that can be among the `k` hottest under `scores` (by expert id), given
    /// `hint`, the `k` hottest of an earlier ranking: the hint's experts first, in its order
    /// (nearly sorted when the scores moved little), then, by id, the others that beat the worst
    /// of them under the new scores. The `k` hottest are all among these: `k` experts (the
    /// hint's) are no worse than that worst, so the k-th hottest is not either. Written to `out`
    /// as hottest-first keys; returns their count, or nil when the hint is not `k` distinct
    /// experts. `seen` is scratch, a bit per expert.
    @inline(__always)
    static func hottestCandidates(scores: UnsafeBufferPointer<Double>, hint: UnsafeBufferPointer<Int32>,
                                  into out: UnsafeMutableBufferPointer<HotterFirst>,
                                  seen: UnsafeMutableBufferPointer<UInt64>) -> Int? {
        let n = scores.count, k = hint.count
        guard k > 0, k <= n, out.count >= n, seen.count >= (n + 63) >> 6 else { return nil }
        seen.update(repeating: 0)
        var worst = HotterFirst(key: 0, id: 0)
        var worstScore = 0.0
        for i in 0..<k {
            let e = Int(hint[i])
            guard seen.markOnce(e, below: n) else { return nil }
            let x = HotterFirst(key: ExpertPlacement.hotterFirstKey(scores[e]), id: UInt32(truncatingIfNeeded: e))
            out[i] = x
            if i == 0 || worst < x {
                worst = x
                worstScore = scores[e]
            }
        }
        var m = k
        for e in 0..<n {
            let score = scores[e]
            // Colder than the worst as a Double is colder by key too (the key orders non-NaN
            // loads as `>` does, −0 with +0): most of a layer, skipped on one comparison (issue
            // 12: the key and the hint bit per expert were most of a drift's ranking). A NaN on
            // either side fails the test and goes the key way, as before.
            if score < worstScore || seen.isMarked(e) { continue }
            let x = HotterFirst(key: ExpertPlacement.hotterFirstKey(score), id: UInt32(truncatingIfNeeded: e))
            if x < worst {
                out[m] = x
                m &+= 1
            }
        }
        return m
    }
}
