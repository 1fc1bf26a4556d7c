import Foundation
import SimKit

/// Expert routing of one MoE instance: which experts are hot, where their replicas live, and how
/// unevenly each step loads the expert dies.
///
/// Popularity is a blend of per-traffic-class profiles (a code-heavy or chat-heavy phase moves
/// the hot set) that drifts as a slow random walk. Each step draws one aggregate per-layer
/// imbalance, never per token (architecture.md principle 4): the hottest die's expected share of
/// the layer's token-expert pairs plus one normal draw for its sampling noise.
///
/// ```swift
/// var routing = ExpertRouting(shape: shape, dies: 288, slotsPerDie: 1, seed: 1)
/// let factor = routing.stepLoadFactor(tokens: 30_720)      // ≥ 1; feeds CostModel's barrier
/// ```
public struct ExpertRouting: Sendable {
    public let shape: ModelSpecShape
    public let dies: Int
    public let slotsPerDie: Int
    /// Traffic-class profiles and the current mix (weights sum to 1).
    public private(set) var profiles: [String: ExpertPopularity]
    public private(set) var mix: [String: Double]
    /// The blended, drifted popularity now in force.
    public private(set) var popularity: ExpertPopularity
    public private(set) var placement: ExpertPlacement
    /// Experts serving tokens: `placement` minus slots disabled while their weights load.
    public private(set) var servingPlacement: ExpertPlacement
    /// Log-multipliers of the drift random walk, per layer and expert.
    private var drift: [[Double]]
    private var rng: RandomStream
    /// Per layer: the hottest die's share of the layer's load, and the mean share (1 / dies).
    private var hottestShare: [Double] = []
    /// Token-expert pairs per layer and expert since the last `takeWindow()`. Popularity is
    /// piecewise constant, so tokens are summed per segment and folded in when it changes.
    private var windowCounts: [[Double]]
    private var segmentPairs = 0.0

    /// Random-walk step of the drift per √second (documented default: the papers give no rate).
    public var driftPerRootSecond = 0.02

    public init(shape: ModelSpecShape, dies: Int, slotsPerDie: Int, seed: UInt64, skewed: Bool = true,
                classes: [String] = ["chat", "reasoning"]) {
        self.shape = shape
        self.dies = dies
        self.slotsPerDie = slotsPerDie
        let streams = RandomStreams(seed: seed)
        var profiles: [String: ExpertPopularity] = [:]
        for name in classes.sorted() {
            var r = streams.stream("expert-popularity/\(name)")
            profiles[name] = skewed ? .skewed(model: shape, using: &r) : .uniform(layers: shape.moeLayers, experts: shape.experts)
        }
        self.profiles = profiles
        self.mix = Dictionary(uniqueKeysWithValues: classes.map { ($0, 1 / Double(classes.count)) })
        self.drift = Array(repeating: Array(repeating: 0, count: shape.experts), count: shape.moeLayers)
        self.rng = streams.stream("expert-routing")
        self.windowCounts = Array(repeating: Array(repeating: 0, count: shape.experts), count: shape.moeLayers)
        let initial = ExpertPlacement.roundRobin(experts: shape.experts, layers: shape.moeLayers, dies: dies,
                                                 slotsPerDie: slotsPerDie)
        self.placement = initial
        self.servingPlacement = initial
        self.popularity = .uniform(layers: shape.moeLayers, experts: shape.experts)
        recompute()
    }

    // MARK: Inputs

    /// Sets the traffic mix (e.g. ["chat": 0.2, "reasoning": 0.8]); unknown classes are ignored.
    public mutating func setMix(_ weights: [String: Double]) {
        let known = weights.filter { profiles[$0.key] != nil && $0.value > 0 }
        let total = known.values.reduce(0, +)
        guard total > 0 else { return }
        mix = known.mapValues { $0 / total }
        recompute()
    }

    /// Advances the drift random walk by `seconds` of simulated time.
    public mutating func advanceDrift(seconds: Double) {
        guard seconds > 0, driftPerRootSecond > 0 else { return }
        let sigma = driftPerRootSecond * seconds.squareRoot()
        for l in drift.indices {
            for e in drift[l].indices {
                // Mean-reverting so hot sets wander without the skew running away.
                drift[l][e] = 0.98 * drift[l][e] + sigma * Normal.standard(using: &rng)
            }
        }
        recompute()
    }

    public mutating func setPlacement(_ new: ExpertPlacement, serving: ExpertPlacement? = nil) {
        placement = new
        servingPlacement = serving ?? new
        recompute()
    }

    // MARK: Per step

    /// The hottest die's load over the mean, averaged over MoE layers, for a step that routes
    /// `tokens` tokens (each to top-k experts). Records the heat for telemetry.
    public mutating func stepLoadFactor(tokens: Double, topK: Int = 8) -> Double {
        guard tokens > 0, !hottestShare.isEmpty else { return 1 }
        let pairs = tokens * Double(topK)
        segmentPairs += pairs
        let meanPerDie = pairs / Double(dies)
        var total = 0.0
        for l in hottestShare.indices {
            let expected = pairs * hottestShare[l]
            // Binomial noise of the hottest die, one normal draw per layer; never below the mean.
            let noisy = expected + expected.squareRoot() * Normal.standard(using: &rng)
            total += max(noisy, meanPerDie) / meanPerDie
        }
        return total / Double(hottestShare.count)
    }

    /// Relative per-die load of the serving placement, averaged over layers (1 = mean).
    public func dieLoads() -> [Double] {
        var sum = Array(repeating: 0.0, count: dies)
        for l in 0..<shape.moeLayers {
            let loads = servingPlacement.dieLoads(layer: l, popularity: popularity)
            let mean = loads.reduce(0, +) / Double(dies)
            for d in 0..<dies { sum[d] += mean > 0 ? loads[d] / mean : 0 }
        }
        return sum.map { $0 / Double(max(1, shape.moeLayers)) }
    }

    /// Expected imbalance (max/mean per-die load, averaged over layers) of the serving placement.
    public var expectedImbalance: Double { servingPlacement.imbalance(popularity: popularity) }

    /// Token-expert pairs per layer and expert routed since the last call (the collect kernel's
    /// counts of system.md §4), then starts a new window.
    public mutating func takeWindow() -> [[Double]] {
        foldSegment()
        defer { windowCounts = Array(repeating: Array(repeating: 0, count: shape.experts), count: shape.moeLayers) }
        return windowCounts
    }

    private mutating func foldSegment() {
        guard segmentPairs > 0 else { return }
        let perExpert = segmentPairs / Double(shape.experts)
        for l in windowCounts.indices {
            for e in windowCounts[l].indices { windowCounts[l][e] += perExpert * popularity.layers[l][e] }
        }
        segmentPairs = 0
    }

    // MARK: Derived state

    private mutating func recompute() {
        foldSegment()
        var rows: [[Double]] = []
        for l in 0..<shape.moeLayers {
            var row = Array(repeating: 0.0, count: shape.experts)
            for (name, weight) in mix {
                guard let p = profiles[name] else { continue }
                for e in 0..<shape.experts { row[e] += weight * p.layers[l][e] }
            }
            for e in 0..<shape.experts { row[e] *= Foundation.exp(drift[l][e]) }
            let mean = row.reduce(0, +) / Double(shape.experts)
            rows.append(row.map { mean > 0 ? $0 / mean : 1 })
        }
        popularity = ExpertPopularity(layers: rows)
        hottestShare = (0..<shape.moeLayers).map { l in
            let loads = servingPlacement.dieLoads(layer: l, popularity: popularity)
            let total = loads.reduce(0, +)
            return total > 0 ? loads.max()! / total : 1 / Double(dies)
        }
    }
}
