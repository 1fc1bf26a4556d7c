/// A family of independent random streams derived from one run seed.
///
/// Each consumer asks for a stream by name; the stream's state depends only on the run
/// seed and the name (FNV-1a of the name, expanded by SplitMix64), so adding a new
/// consumer never shifts the numbers an existing one sees.
///
/// ```swift
/// let streams = RandomStreams(seed: 1)
/// var arrivals = streams.stream("arrivals")
/// let gap = Exponential(rate: 10).sample(using: &arrivals)
/// ```
public struct RandomStreams: Sendable {
    public let seed: UInt64

    public init(seed: UInt64) { self.seed = seed }

    /// The stream called `name`; asking twice gives two copies starting at the same point.
    public func stream(_ name: String) -> RandomStream {
        RandomStream(seed: seed, salt: StableHash.fnv1a(name))
    }
}

/// One deterministic random stream: xoshiro256** seeded through SplitMix64.
///
/// ```swift
/// var rng = RandomStream(seed: 7)
/// let u = rng.uniform()            // [0, 1)
/// let k = rng.int(in: 1...6)       // a die roll
/// ```
public struct RandomStream: RandomNumberGenerator, Sendable {
    // Usable from inlined code: ``next()`` and ``uniform()`` are inlined into their callers in
    // other modules (issue 12: a call per draw, ~4 M draws in a Mooncake hour's expert drift).
    @usableFromInline var s0: UInt64, s1: UInt64, s2: UInt64, s3: UInt64

    /// A stream seeded from `seed` and a `salt` (e.g. the hash of a stream name).
    public init(seed: UInt64, salt: UInt64 = 0) {
        var splitMix = StableHash.mix(seed) ^ salt
        func nextSplitMix() -> UInt64 {
            splitMix &+= 0x9e37_79b9_7f4a_7c15
            var z = splitMix
            z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
            z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
            return z ^ (z >> 31)
        }
        s0 = nextSplitMix()
        s1 = nextSplitMix()
        s2 = nextSplitMix()
        s3 = nextSplitMix()
        // xoshiro must not start from the all-zero state; SplitMix output makes that
        // astronomically unlikely, but guard anyway.
        if s0 | s1 | s2 | s3 == 0 { s0 = 1 }
    }

    /// The next 64 random bits (xoshiro256**).
    @inlinable
    public mutating func next() -> UInt64 {
        let result = rotl(s1 &* 5, 7) &* 9
        let t = s1 << 17
        s2 ^= s0
        s3 ^= s1
        s1 ^= s2
        s0 ^= s3
        s2 ^= t
        s3 = rotl(s3, 45)
        return result
    }

    /// A uniform double in [0, 1) with 53 random bits.
    @inlinable
    public mutating func uniform() -> Double {
        Double(next() >> 11) * 0x1.0p-53
    }

    /// A uniform double in `range` (upper bound excluded).
    public mutating func uniform(in range: Range<Double>) -> Double {
        range.lowerBound + (range.upperBound - range.lowerBound) * uniform()
    }

    /// A uniform integer in `range`, unbiased (Lemire's multiply-and-reject), implemented
    /// here rather than via `Int.random(in:using:)` so results cannot change with the
    /// standard library's algorithm.
    public mutating func int(in range: ClosedRange<Int>) -> Int {
        let span = UInt64(bitPattern: Int64(range.upperBound &- range.lowerBound)) &+ 1
        if span == 0 { return Int(bitPattern: UInt(next())) }  // the full 64-bit range
        var product = next().multipliedFullWidth(by: span)
        if product.low < span {
            let threshold = (0 &- span) % span
            while product.low < threshold { product = next().multipliedFullWidth(by: span) }
        }
        return range.lowerBound &+ Int(bitPattern: UInt(product.high))
    }

    /// True with probability `p`.
    public mutating func bernoulli(_ p: Double) -> Bool { uniform() < p }

    /// Masking shifts (k is a constant 7 or 45 here): the same bits as `<<`/`>>` without their
    /// over-shift branches, and always inlined (a call per rotation was 1.5% of a replay).
    @inlinable @inline(__always)
    func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 { (x &<< k) | (x &>> (64 &- k)) }
}
