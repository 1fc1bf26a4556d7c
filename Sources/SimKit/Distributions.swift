import Foundation

/// A distribution of real values that can be sampled from a ``RandomStream``.
///
/// ```swift
/// var rng = RandomStreams(seed: 1).stream("lengths")
/// let prompt = LogNormal(mean: 1_500, coefficientOfVariation: 1).sample(using: &rng)
/// ```
public protocol Distribution: Sendable {
    func sample(using rng: inout RandomStream) -> Double
    /// The expected value, when it exists.
    var mean: Double? { get }
}

/// Always `value`.
public struct Constant: Distribution, Equatable {
    public let value: Double
    public init(_ value: Double) { self.value = value }
    public func sample(using rng: inout RandomStream) -> Double { value }
    public var mean: Double? { value }
}

/// Exponential with `rate` events per unit (mean 1/rate): Poisson inter-arrival gaps.
public struct Exponential: Distribution, Equatable {
    public let rate: Double
    public init(rate: Double) {
        precondition(rate > 0, "Exponential rate must be positive")
        self.rate = rate
    }
    /// Inlined into callers in other modules with the stream's draw (issue 12: a synthetic
    /// workload's arrival gap called it and the stream's `next()` out of line).
    @inlinable
    public func sample(using rng: inout RandomStream) -> Double {
        -Foundation.log(1 - rng.uniform()) / rate  // 1-u is in (0,1], so log is finite
    }
    public var mean: Double? { 1 / rate }
}

/// Normal (Gaussian), sampled by Box–Muller (one value per two uniforms, so the type stays
/// a stateless value).
public struct Normal: Distribution, Equatable {
    public let mu: Double
    public let sigma: Double
    public init(mean: Double, standardDeviation: Double) {
        precondition(standardDeviation >= 0)
        mu = mean
        sigma = standardDeviation
    }
    public func sample(using rng: inout RandomStream) -> Double {
        mu + sigma * Normal.standard(using: &rng)
    }
    public var mean: Double? { mu }

    /// Box–Muller, the cosine half. Inlined into callers in other modules with the stream's draws.
    @inlinable
    public static func standard(using rng: inout RandomStream) -> Double {
        let radius = (-2 * Foundation.log(1 - rng.uniform())).squareRoot()
        return radius * Foundation.cos(2 * Double.pi * rng.uniform())
    }

    /// Fills `buffer` with standard normals by the ziggurat (Marsaglia and Tsang 2000, in
    /// Doornik's 2005 form: 128 layers, a rectangle's x from one draw's top 53 bits and its
    /// layer from the same draw's low 7 bits, which the 53 never use). Exact in distribution;
    /// 97% of values cost one draw, a compare and a multiply. For bulk draws (a drift step
    /// of every expert of every layer: issue 12, where the polar method's logarithm per pair
    /// was 6.5% of a Mooncake hour). Other values than ``standard(using:)`` would give from
    /// the same stream, by design: only the distribution is promised.
    public static func fill(_ buffer: UnsafeMutableBufferPointer<Double>, using rng: inout RandomStream) {
        Ziggurat.table.withUnsafeBufferPointers { x, ratio in
            Ziggurat.fill(buffer, x: x, ratio: ratio, using: &rng)
        }
    }

    /// One standard normal by the ziggurat (``fill(_:using:)`` of one value): about a third of
    /// ``standard(using:)``'s cost, which takes a logarithm, a square root and a cosine a draw
    /// (issue 12: the per-step noise of every expert-parallel step). Other values than
    /// ``standard(using:)`` from the same stream; the same distribution.
    public static func ziggurat(using rng: inout RandomStream) -> Double {
        var value = 0.0
        withUnsafeMutablePointer(to: &value) { fill(UnsafeMutableBufferPointer(start: $0, count: 1), using: &rng) }
        return value
    }
}

/// The standard normal's 128-layer ziggurat: layer `i` is the rectangle [0, x[i]] × the
/// density's band between layers, all of equal area `v` (layer 0 is the base strip plus the
/// tail beyond `r`). The constants are Marsaglia and Tsang's for 128 layers.
struct Ziggurat: Sendable {
    /// Where the tail starts, and each layer's area.
    static let r = 3.442619855899
    static let v = 9.91256303526217e-3
    static let layers = 128

    /// x[0…128] (x[0] = v / f(r), x[1] = r, x[128] = 0) and ratio[i] = x[i+1] / x[i].
    let x: [Double]
    let ratio: [Double]

    static let table = Ziggurat()

    private init() {
        var x = [Double](repeating: 0, count: Self.layers + 1)
        var f = Foundation.exp(-0.5 * Self.r * Self.r)
        x[0] = Self.v / f
        x[1] = Self.r
        for i in 2..<Self.layers {
            x[i] = (-2 * Foundation.log(Self.v / x[i - 1] + f)).squareRoot()
            f = Foundation.exp(-0.5 * x[i] * x[i])
        }
        self.x = x
        ratio = (0..<Self.layers).map { x[$0 + 1] / x[$0] }
    }

    func withUnsafeBufferPointers<R>(_ body: (UnsafeBufferPointer<Double>, UnsafeBufferPointer<Double>) -> R) -> R {
        x.withUnsafeBufferPointer { x in ratio.withUnsafeBufferPointer { ratio in body(x, ratio) } }
    }

    /// Fills `buffer`. The stream's state stays in registers on the fast path: four local
    /// words, stored back once at the end, handed to the out-of-line wedge and tail as a stream
    /// by value. (Kept as a `RandomStream` copy, the optimiser folded it into `rng`'s memory and
    /// stored the four words back on every draw, and spilled the buffer and index: 8 of ~38
    /// instructions per value, issue 12: 890 k values in a Mooncake hour's drift.) The draws and
    /// the arithmetic are ``RandomStream/next()``'s and the rectangle test's, in the same order.
    static func fill(_ buffer: UnsafeMutableBufferPointer<Double>, x: UnsafeBufferPointer<Double>,
                     ratio: UnsafeBufferPointer<Double>, using rng: inout RandomStream) {
        guard let out = buffer.baseAddress, buffer.count > 0 else { return }
        let n = buffer.count
        let xs = x.baseAddress!, ratios = ratio.baseAddress!
        var s0 = rng.s0, s1 = rng.s1, s2 = rng.s2, s3 = rng.s3
        var i = 0
        while i < n {
            // xoshiro256** (``RandomStream/next()``), written out: through a shared helper taking the
            // four words inout it cost 4.7 M more instructions a Mooncake hour (stored back each draw).
            let bits = ((s1 &* 5) << 7 | (s1 &* 5) >> 57) &* 9
            let t = s1 << 17
            s2 ^= s0
            s3 ^= s1
            s1 ^= s2
            s0 ^= s3
            s2 ^= t
            s3 = s3 << 45 | s3 >> 19
            let u = 2 * (Double(bits >> 11) * 0x1.0p-53) - 1
            let layer = Int(truncatingIfNeeded: bits & 0x7F)
            // Inside the layer's rectangle that lies wholly under the density.
            if abs(u) < ratios[layer] {
                out[i] = u * xs[layer]
                i &+= 1
                continue
            }
            var state = rng
            (state.s0, state.s1, state.s2, state.s3) = (s0, s1, s2, s3)
            let (value, after) = outside(u: u, layer: layer, x: x, state: state)
            (s0, s1, s2, s3) = (after.s0, after.s1, after.s2, after.s3)
            if let value {
                out[i] = value
                i &+= 1
            }
        }
        (rng.s0, rng.s1, rng.s2, rng.s3) = (s0, s1, s2, s3)
    }

    /// A draw `u` in `layer` outside its rectangle: the tail (layer 0), or accepted under the
    /// curve in the wedge between the rectangle and the density, or nil (draw again).
    @inline(never)
    static func outside(u: Double, layer i: Int, x: UnsafeBufferPointer<Double>,
                        state: RandomStream) -> (Double?, RandomStream) {
        var rng = state
        if i == 0 { return (tail(negative: u < 0, using: &rng), rng) }
        let value = u * x[i]
        let f0 = Foundation.exp(-0.5 * (x[i] * x[i] - value * value))
        let f1 = Foundation.exp(-0.5 * (x[i + 1] * x[i + 1] - value * value))
        return (f1 + rng.uniform() * (f0 - f1) < 1 ? value : nil, rng)
    }

    /// A value beyond `r` (Marsaglia 1964): exponential proposals accepted under the tail.
    static func tail(negative: Bool, using rng: inout RandomStream) -> Double {
        var a = 0.0, b = 0.0
        repeat {
            // 1 − u is in (0, 1]: the logarithms are finite.
            a = Foundation.log(1 - rng.uniform()) / r
            b = Foundation.log(1 - rng.uniform())
        } while -2 * b < a * a
        return negative ? a - r : r - a
    }
}

/// Gamma(shape k, scale θ), mean kθ, variance kθ². Marsaglia–Tsang (2000) squeeze method;
/// for k < 1 it samples Gamma(k+1) and multiplies by U^(1/k).
public struct Gamma: Distribution, Equatable {
    public let shape: Double
    public let scale: Double
    public init(shape: Double, scale: Double) {
        precondition(shape > 0 && scale > 0, "Gamma shape and scale must be positive")
        self.shape = shape
        self.scale = scale
    }
    /// The gamma with this mean and coefficient of variation (shape = 1/cv²); cv = 1 is
    /// exponential, larger is burstier.
    public init(mean: Double, coefficientOfVariation cv: Double) {
        self.init(shape: 1 / (cv * cv), scale: mean * cv * cv)
    }
    public func sample(using rng: inout RandomStream) -> Double {
        if shape < 1 {
            let boost = Foundation.pow(1 - rng.uniform(), 1 / shape)
            return Gamma.standard(shape: shape + 1, using: &rng) * boost * scale
        }
        return Gamma.standard(shape: shape, using: &rng) * scale
    }
    public var mean: Double? { shape * scale }
    public var variance: Double { shape * scale * scale }

    static func standard(shape: Double, using rng: inout RandomStream) -> Double {
        let d = shape - 1.0 / 3.0
        let c = 1 / (9 * d).squareRoot()
        while true {
            var x: Double
            var v: Double
            repeat {
                x = Normal.standard(using: &rng)
                v = 1 + c * x
            } while v <= 0
            v = v * v * v
            let u = 1 - rng.uniform()
            if u < 1 - 0.0331 * x * x * x * x { return d * v }
            if Foundation.log(u) < 0.5 * x * x + d * (1 - v + Foundation.log(v)) { return d * v }
        }
    }
}

/// LogNormal: exp(N(mu, sigma²)). Token lengths are heavy-tailed and positive, which
/// this captures with two intuitive knobs via ``init(mean:coefficientOfVariation:)``.
public struct LogNormal: Distribution, Equatable {
    public let mu: Double
    public let sigma: Double
    public init(mu: Double, sigma: Double) {
        precondition(sigma >= 0)
        self.mu = mu
        self.sigma = sigma
    }
    /// The lognormal with this mean and coefficient of variation (sd/mean).
    public init(mean: Double, coefficientOfVariation cv: Double) {
        precondition(mean > 0 && cv >= 0)
        let variance = Foundation.log(1 + cv * cv)
        self.init(mu: Foundation.log(mean) - variance / 2, sigma: variance.squareRoot())
    }
    /// Inlined into callers in other modules with the stream's draws (issue 12: a synthetic
    /// workload's two length draws per request, ``Normal/standard(using:)`` and `next()` out of
    /// line). The same operations in the same order.
    @inlinable
    public func sample(using rng: inout RandomStream) -> Double {
        Foundation.exp(mu + sigma * Normal.standard(using: &rng))
    }
    public var mean: Double? { Foundation.exp(mu + sigma * sigma / 2) }
}

/// Zipf over ranks 1…n with P(k) ∝ k^-exponent; a precomputed CDF and binary search.
public struct Zipf: Distribution, Equatable {
    public let n: Int
    public let exponent: Double
    private let cdf: [Double]

    public init(n: Int, exponent: Double) {
        precondition(n >= 1)
        self.n = n
        self.exponent = exponent
        var running = 0.0
        var cdf = [Double]()
        cdf.reserveCapacity(n)
        for k in 1...n {
            running += Foundation.pow(Double(k), -exponent)
            cdf.append(running)
        }
        self.cdf = cdf.map { $0 / running }
    }
    /// A rank in 1…n.
    public func sampleRank(using rng: inout RandomStream) -> Int {
        CumulativeTable.search(cdf, rng.uniform()) + 1
    }
    public func sample(using rng: inout RandomStream) -> Double { Double(sampleRank(using: &rng)) }
    public var mean: Double? {
        var previous = 0.0
        var total = 0.0
        for (index, p) in cdf.enumerated() {
            total += Double(index + 1) * (p - previous)
            previous = p
        }
        return total
    }
}

/// A discrete distribution over given values with (unnormalised) weights.
public struct Empirical: Distribution, Equatable {
    public let values: [Double]
    @usableFromInline let cdf: [Double]

    public init(values: [Double], weights: [Double]? = nil) {
        let weights = weights ?? Array(repeating: 1, count: values.count)
        precondition(!values.isEmpty && values.count == weights.count, "one weight per value")
        precondition(weights.allSatisfy { $0 >= 0 } && weights.contains { $0 > 0 })
        self.values = values
        var running = 0.0
        let partial = weights.map { w -> Double in
            running += w
            return running
        }
        cdf = partial.map { $0 / running }
    }
    /// Inlined into callers in other modules with the stream's draw (issue 12: a synthetic
    /// workload's class pick per request, left out of line by the optimiser unless forced).
    @inlinable @inline(__always)
    public func sample(using rng: inout RandomStream) -> Double {
        values[CumulativeTable.search(cdf, rng.uniform())]
    }
    public var mean: Double? {
        var previous = 0.0
        var total = 0.0
        for (value, p) in zip(values, cdf) {
            total += value * (p - previous)
            previous = p
        }
        return total
    }
}

@usableFromInline
enum CumulativeTable {
    /// First index whose cumulative probability exceeds `u` (u in [0,1)).
    @inlinable
    static func search(_ cdf: [Double], _ u: Double) -> Int {
        var low = 0
        var high = cdf.count - 1
        while low < high {
            let middle = (low + high) / 2
            if cdf[middle] > u { high = middle } else { low = middle + 1 }
        }
        return low
    }
}
