import Foundation
import SimKit

/// How often each expert of each MoE layer is chosen, relative to the mean (1 = average).
///
/// system.md §4/§4b (DeepSeek-R1, ShareGPT prompts): about 20% of experts get above-average load,
/// and "the hottest expert gets 30× the average" is the extreme over the model, not every layer's
/// hottest. Per-layer skew is therefore a heavy-tailed distribution (``SkewShape``):
/// - each layer's hottest expert, over the mean, is a quantile of a Pareto law (minimum
///   ``SkewShape/mildestHottest``, tail index ``SkewShape/tailIndex``) capped at the published 30×;
///   the layers take evenly spaced quantiles in a random order, so most layers are mild (median
///   about 2.4×), a few are very hot, and the model-wide extreme is near 30× whatever the seed;
/// - inside a layer, the hottest 20% of experts (``SkewShape/aboveMeanShare``) are above the mean,
///   their excess over it falling as a power of their rank (``SkewShape/headDecay``): one or two
///   hot experts, then a shoulder just above the mean; the rest share the remaining load evenly
///   (below the mean); experts are shuffled, so which ones are hot differs per layer.
/// ``ExpertTraffic`` blends traffic classes and drifts this over time.
///
/// ```swift
/// var rng = RandomStreams(seed: 1).stream("expert-popularity")
/// let pop = ExpertPopularity.skewed(model: ModelSpecShape(moeLayers: 58, experts: 256), using: &rng)
/// print(pop.layers.map { $0.max()! }.max()!)        // ≈ 30
/// ```
public struct ExpertPopularity: Sendable, Equatable {
    /// `layers[l][e]`: relative load of expert `e` in MoE layer `l`; each row has mean 1.
    public var layers: [[Double]]

    public var experts: Int { layers.first?.count ?? 0 }

    /// Whether `other` is a copy of this popularity (the same table, not an equal one built
    /// apart): O(1); implies `==`.
    func isCopy(of other: ExpertPopularity) -> Bool { layers.sharesStorage(with: other.layers) }

    /// system.md §4: the hottest expert gets about 30× the average (over the whole model).
    public static let publishedHottest = 30.0

    /// The parameters of the per-layer skew distribution (system.md §4b asks for them documented).
    public struct SkewShape: Sendable, Equatable {
        /// Hottest expert over the mean in the mildest layer (Pareto minimum). Not in system.md:
        /// chosen with the tail index so that the median layer is mild (≈ 2.4×) and the extreme
        /// reaches the published 30×.
        public var mildestHottest = 1.5
        /// Pareto tail index of the per-layer hottest expert (documented default; heavy tail).
        public var tailIndex = 1.5
        /// Model-wide extreme (system.md §4: 30×).
        public var hottestCap = publishedHottest
        /// Share of a layer's experts above the mean (system.md §4: about 20%).
        public var aboveMeanShare = 0.2
        /// Power-law decay of the excess over the mean with rank among those experts. Not in
        /// system.md: a documented default (rank 2 carries 35% of the hottest's excess, rank 10 3%).
        public var headDecay = 1.5
        public init() {}
    }

    public static func uniform(layers: Int, experts: Int) -> ExpertPopularity {
        ExpertPopularity(layers: Array(repeating: Array(repeating: 1, count: experts), count: layers))
    }

    public static func skewed(model: ModelSpecShape, shape: SkewShape = SkewShape(),
                              using rng: inout RandomStream) -> ExpertPopularity {
        let (hottest, head) = layerHottest(model: model, shape: shape, using: &rng)
        var rows: [[Double]] = []
        rows.reserveCapacity(hottest.count)
        for h in hottest {
            var row = layerRow(experts: model.experts, head: head, hottest: h, decay: shape.headDecay)
            // Fisher–Yates with our own stream, so the order never depends on the standard library.
            for i in stride(from: row.count - 1, to: 0, by: -1) { row.swapAt(i, rng.int(in: 0...i)) }
            rows.append(row)
        }
        return ExpertPopularity(layers: rows)
    }

    /// Each layer's hottest expert over the mean (evenly spaced Pareto quantiles, assigned to
    /// layers in a random order) and the experts above the mean per layer: the draws
    /// ``skewed(model:shape:using:)`` makes before its rows.
    private static func layerHottest(model: ModelSpecShape, shape: SkewShape,
                                     using rng: inout RandomStream) -> (hottest: [Double], head: Int) {
        let layerCount = model.moeLayers, n = model.experts
        var hottest = (0..<layerCount).map { i -> Double in
            let p = (Double(i) + 0.5) / Double(max(1, layerCount))
            return min(shape.hottestCap, shape.mildestHottest * pow(1 - p, -1 / shape.tailIndex))
        }
        for i in stride(from: hottest.count - 1, to: 0, by: -1) { hottest.swapAt(i, rng.int(in: 0...i)) }
        return (hottest, max(2, min(n - 1, Int((shape.aboveMeanShare * Double(n)).rounded()))))
    }

    /// ``skewed(model:shape:using:)``'s rows each sorted hottest first (by `>`), for
    /// ``ExpertTraffic``, which needs only these shapes: the rows as made, before their shuffle,
    /// when every one is already in that order (``layerRow(experts:head:hottest:decay:)`` makes
    /// them so: checked here), which is then the only arrangement of its values that `>` sorts
    /// to, the same bits; else the shuffled rows sorted, from the same draws. Sorting 58 shuffled
    /// rows back, and the 15 k draws and swaps of shuffling them, cost every engine start ~2 M
    /// instructions (issue 12). `rng` is left wherever the work took it: the caller draws nothing
    /// more from it.
    static func skewedLayerShapes(model: ModelSpecShape, shape: SkewShape = SkewShape(),
                                  using rng: inout RandomStream) -> [[Double]] {
        let start = rng
        let (hottest, head) = layerHottest(model: model, shape: shape, using: &rng)
        var shapes: [[Double]] = []
        shapes.reserveCapacity(hottest.count)
        for h in hottest {
            let row = layerRow(experts: model.experts, head: head, hottest: h, decay: shape.headDecay)
            guard isStrictlyOrderedHottestFirst(row) else {
                var again = start
                return skewed(model: model, shape: shape, using: &again).layers.map { $0.sorted(by: >) }
            }
            shapes.append(row)
        }
        return shapes
    }

    /// Whether `row` is non-increasing with no NaN and no zero (whose two signs `>` cannot tell
    /// apart): then any arrangement of its values sorts by `>` to exactly `row`.
    static func isStrictlyOrderedHottestFirst(_ row: [Double]) -> Bool {
        for (i, x) in row.enumerated() {
            if x.isNaN || x == 0 { return false }
            if i > 0 && !(row[i - 1] >= x) { return false }
        }
        return true
    }

    /// One layer, hottest first: `head` experts at 1 + (hottest − 1)·rank^−decay, then an even
    /// body carrying the rest of the load (mean 1 over the row).
    static func layerRow(experts n: Int, head: Int, hottest: Double, decay: Double) -> [Double] {
        let h = max(1, hottest)
        var row = (1...head).map { 1 + (h - 1) * pow(Double($0), -decay) }
        var headSum = row.reduce(0, +)
        if headSum > Double(n) * 0.95 {
            // Keep the body positive: scale the head's excess over the mean down.
            let scale = (Double(n) * 0.95 - Double(head)) / (headSum - Double(head))
            row = row.map { 1 + ($0 - 1) * scale }
            headSum = row.reduce(0, +)
        }
        let body = (Double(n) - headSum) / Double(n - head)
        row += Array(repeating: body, count: n - head)
        return row
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

extension Array {
    /// Whether the two arrays are copies of one another: one buffer (an element written since
    /// through either would have given it its own). O(1); implies equal elements.
    @inline(__always)
    func sharesStorage(with other: [Element]) -> Bool {
        count == other.count && withUnsafeBufferPointer { a in other.withUnsafeBufferPointer { a.baseAddress == $0.baseAddress } }
    }
}
