import Foundation
import SimKit

/// Which experts the traffic favours: a blend of per-traffic-class profiles (a code-heavy or
/// chat-heavy phase moves the hot set) that drifts as a slow, mean-reverting random walk.
/// Popularity belongs to the model and its traffic, so one instance serves the whole engine.
///
/// ```swift
/// var traffic = ExpertTraffic(shape: shape, seed: 1)
/// traffic.setMix(["reasoning": 0.8, "chat": 0.2])
/// traffic.advanceDrift(seconds: 10)
/// let p = traffic.popularity                       // layers × experts, mean 1 per layer
/// ```
public struct ExpertTraffic: Sendable {
    public let shape: ModelSpecShape
    public private(set) var profiles: [String: ExpertPopularity]
    public private(set) var mix: [String: Double]
    public private(set) var popularity: ExpertPopularity
    /// The drift's log-factors, layer by layer (`drift[l * experts + e]`): one flat buffer, so a
    /// step writes 58 × 256 elements without a nested-array uniqueness check per element.
    private(set) var drift: [Double]
    /// The mix's blend of the profiles, flat like `drift` (nil: to be made): it changes only with
    /// the mix, while every drift step re-applies the drift to it (issue 12: no re-blend per step).
    private var blended: [Double]?
    private var rng: RandomStream
    /// Random-walk step of the drift per √second (documented default: the papers give no rate).
    public var driftPerRootSecond = 0.02

    public init(shape: ModelSpecShape, seed: UInt64, skewed: Bool = true, classes: [String] = ["chat", "reasoning"]) {
        self.shape = shape
        let streams = RandomStreams(seed: seed)
        var profiles: [String: ExpertPopularity] = [:]
        for name in classes.sorted() {
            var r = streams.stream("expert-popularity/\(name)")
            profiles[name] = skewed ? .skewed(model: shape, using: &r) : .uniform(layers: shape.moeLayers, experts: shape.experts)
        }
        self.profiles = profiles
        // Balanced traffic (the bench's `--routing balanced`, the engine's uniform experts) has no hot
        // set to wander: a drift would turn it into a lognormal skew the bench does not have.
        if !skewed { driftPerRootSecond = 0 }
        mix = Dictionary(uniqueKeysWithValues: classes.map { ($0, 1 / Double(classes.count)) })
        drift = Array(repeating: 0, count: shape.moeLayers * shape.experts)
        rng = streams.stream("expert-drift")
        popularity = .uniform(layers: shape.moeLayers, experts: shape.experts)
        recompute()
    }

    /// Sets the traffic mix (e.g. ["chat": 0.2, "reasoning": 0.8]); unknown classes are ignored.
    public mutating func setMix(_ weights: [String: Double]) {
        let known = weights.filter { profiles[$0.key] != nil && $0.value > 0 }
        let total = known.values.reduce(0, +)
        guard total > 0 else { return }
        mix = known.mapValues { $0 / total }
        blended = nil
        recompute()
    }

    /// The traffic classes in name order: the order of ``setMix(arrivals:)``'s weights.
    public var classes: [String] { profiles.keys.sorted() }

    /// ``setMix(_:)`` with weights given per class in ``classes`` order (zero weights are left
    /// out, as if the class had no entry).
    public mutating func setMix(arrivals: [Double]) {
        let names = classes
        var weights: [String: Double] = [:]
        for (i, weight) in zip(names.indices, arrivals) where weight > 0 { weights[names[i]] = weight }
        setMix(weights)
    }

    /// Advances the drift random walk by `seconds` of simulated time.
    public mutating func advanceDrift(seconds: Double) {
        guard seconds > 0, driftPerRootSecond > 0 else { return }
        let sigma = driftPerRootSecond * seconds.squareRoot()
        // Layer by layer, expert by expert: the draws in the order of the nested walk before.
        drift.withUnsafeMutableBufferPointer { drift in
            for i in drift.indices { drift[i] = Self.driftRetention * drift[i] + sigma * Normal.standard(using: &rng) }
        }
        recompute()
    }

    /// Advances the drift by `steps` random-walk steps at once: the first of `firstSeconds`,
    /// the others of `seconds` each — what `steps` calls of ``advanceDrift(seconds:)`` would do,
    /// in closed form. The walk is AR(1) (x ← a·x + σ·N), so k steps are x ← aᵏ·x + s·N with
    /// s² the sum of the steps' variances, each scaled by a² per later step: exact in
    /// distribution, one normal draw per expert however long the stretch (an idle day costs
    /// the same as 30 s). One step is exactly ``advanceDrift(seconds:)``.
    public mutating func advanceDrift(steps: Double, firstSeconds: Double, seconds: Double) {
        guard steps >= 1 else { return }
        guard steps >= 2 else { return advanceDrift(seconds: firstSeconds) }
        guard driftPerRootSecond > 0 else { return }
        let a = Self.driftRetention
        let later = steps - 1
        let firstVariance = driftPerRootSecond * driftPerRootSecond * max(0, firstSeconds)
        let stepVariance = driftPerRootSecond * driftPerRootSecond * max(0, seconds)
        let decayLater = Foundation.pow(a * a, later)
        let variance = decayLater * firstVariance + stepVariance * (1 - decayLater) / (1 - a * a)
        let sigma = variance.squareRoot()
        let retention = Foundation.pow(a, steps)
        drift.withUnsafeMutableBufferPointer { drift in
            for i in drift.indices { drift[i] = retention * drift[i] + sigma * Normal.standard(using: &rng) }
        }
        recompute()
    }

    /// Share of the drift kept per step: mean reversion, so hot sets wander without the skew
    /// running away.
    static let driftRetention = 0.98

    /// The mix's blend, element by element the weighted profiles summed in name order from 0.
    private func blend() -> [Double] {
        let experts = shape.experts
        var flat = [Double](repeating: 0, count: shape.moeLayers * experts)
        // The blend's profiles looked up once (not per layer), written through the buffer: the
        // same operations in the same order as element by element.
        let blend = mix.sorted { $0.key < $1.key }.compactMap { name, weight in
            profiles[name].map { (weight: weight, layers: $0.layers) }
        }
        flat.withUnsafeMutableBufferPointer { flat in
            for l in 0..<shape.moeLayers {
                let base = l * experts
                for (weight, layers) in blend {
                    layers[l].withUnsafeBufferPointer { p in
                        for e in 0..<min(experts, p.count) { flat[base + e] += weight * p[e] }
                    }
                }
            }
        }
        return flat
    }

    private mutating func recompute() {
        if blended == nil { blended = blend() }
        var rows: [[Double]] = []
        rows.reserveCapacity(shape.moeLayers)
        let experts = shape.experts
        blended!.withUnsafeBufferPointer { blended in
            drift.withUnsafeBufferPointer { drift in
                for l in 0..<shape.moeLayers {
                    let base = l * experts
                    var row = [Double](repeating: 0, count: experts)
                    var sum = 0.0
                    row.withUnsafeMutableBufferPointer { row in
                        for e in 0..<experts {
                            row[e] = blended[base + e] * Foundation.exp(drift[base + e])
                            sum += row[e]
                        }
                        // Each row relative to its mean (a zero row: every expert at the mean).
                        let mean = sum / Double(experts)
                        for e in 0..<experts { row[e] = mean > 0 ? row[e] / mean : 1 }
                    }
                    rows.append(row)
                }
            }
        }
        popularity = ExpertPopularity(layers: rows)
    }
}
