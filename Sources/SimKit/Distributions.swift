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

    /// Fills `buffer` with standard normals, two per accepted pair of uniforms (Marsaglia's polar
    /// method: a point drawn in the unit disc, one logarithm and one square root per pair, no
    /// trigonometry). For bulk draws (a drift step of every expert of every layer), where
    /// ``standard(using:)``'s logarithm and cosine per value were most of the cost.
    public static func fill(_ buffer: UnsafeMutableBufferPointer<Double>, using rng: inout RandomStream) {
        var i = 0
        while i < buffer.count {
            var u = 0.0, v = 0.0, s = 0.0
            repeat {
                u = 2 * rng.uniform() - 1
                v = 2 * rng.uniform() - 1
                s = u * u + v * v
            } while s >= 1 || s == 0
            let factor = (-2 * Foundation.log(s) / s).squareRoot()
            buffer[i] = u * factor
            if i + 1 < buffer.count { buffer[i + 1] = v * factor }
            i += 2
        }
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
    private let cdf: [Double]

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

enum CumulativeTable {
    /// First index whose cumulative probability exceeds `u` (u in [0,1)).
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
