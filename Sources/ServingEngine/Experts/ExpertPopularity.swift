import Foundation
import SimKit

/// How often each expert of each MoE layer is chosen, relative to the mean (1 = average).
///
/// system.md §4 (DeepSeek-R1, ShareGPT prompts): about 20% of experts get above-average load and
/// the hottest gets about 30× the average; layers differ. Each layer is a Zipf law over a random
/// order of its experts, with its exponent solved so that the layer's hottest expert lands at a
/// target between half of and the full published 30×.
///
/// ```swift
/// var rng = RandomStreams(seed: 1).stream("expert-popularity")
/// let pop = ExpertPopularity.skewed(model: .deepSeekR1, using: &rng)
/// print(pop.layers[0].max()!)        // between 15 and 30
/// ```
public struct ExpertPopularity: Sendable, Equatable {
    /// `layers[l][e]`: relative load of expert `e` in MoE layer `l`; each row has mean 1.
    public var layers: [[Double]]

    public var experts: Int { layers.first?.count ?? 0 }

    /// system.md §4: the hottest expert gets about 30× the average.
    public static let publishedHottest = 30.0

    public static func uniform(layers: Int, experts: Int) -> ExpertPopularity {
        ExpertPopularity(layers: Array(repeating: Array(repeating: 1, count: experts), count: layers))
    }

    public static func skewed(model: ModelSpecShape, hottest: Double = publishedHottest,
                              using rng: inout RandomStream) -> ExpertPopularity {
        var rows: [[Double]] = []
        for _ in 0..<model.moeLayers {
            let target = hottest * (0.5 + 0.5 * rng.uniform())
            let s = zipfExponent(experts: model.experts, hottestOverMean: target)
            let weights = (1...model.experts).map { pow(Double($0), -s) }
            let mean = weights.reduce(0, +) / Double(model.experts)
            var row = weights.map { $0 / mean }
            // Fisher–Yates with our own stream, so the order never depends on the standard library.
            for i in stride(from: row.count - 1, to: 0, by: -1) { row.swapAt(i, rng.int(in: 0...i)) }
            rows.append(row)
        }
        return ExpertPopularity(layers: rows)
    }

    /// The Zipf exponent whose first rank is `hottestOverMean` × the mean over `experts` ranks.
    static func zipfExponent(experts n: Int, hottestOverMean target: Double) -> Double {
        // Bisection on s; the rank logarithms are computed once (this runs per layer and class).
        let logRanks = (1...n).map { Foundation.log(Double($0)) }
        var lo = 0.0, hi = 3.0
        for _ in 0..<40 {
            let s = (lo + hi) / 2
            let sum = logRanks.reduce(0.0) { $0 + Foundation.exp(-s * $1) }
            if Double(n) / sum < target { lo = s } else { hi = s }
        }
        return (lo + hi) / 2
    }
}

/// The two numbers of a model the expert-load model needs (keeps this file free of PodModel).
public struct ModelSpecShape: Sendable, Equatable {
    public var moeLayers: Int
    public var experts: Int
    public init(moeLayers: Int, experts: Int) {
        self.moeLayers = moeLayers
        self.experts = experts
    }
}
