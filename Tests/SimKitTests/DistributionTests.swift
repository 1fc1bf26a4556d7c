import Foundation
import Testing

@testable import SimKit

/// Sample mean and variance of `n` draws with a fixed seed.
private func moments(_ d: some Distribution, n: Int = 200_000, seed: UInt64 = 11) -> (mean: Double, variance: Double) {
    var rng = RandomStream(seed: seed)
    var sum = 0.0
    var sumSquares = 0.0
    for _ in 0..<n {
        let x = d.sample(using: &rng)
        sum += x
        sumSquares += x * x
    }
    let mean = sum / Double(n)
    return (mean, sumSquares / Double(n) - mean * mean)
}

private func close(_ a: Double, _ b: Double, relative: Double) -> Bool { abs(a - b) <= relative * abs(b) }

@Suite struct DistributionTests {
    @Test func exponentialMoments() {
        let m = moments(Exponential(rate: 4))
        #expect(close(m.mean, 0.25, relative: 0.01))
        #expect(close(m.variance, 1.0 / 16, relative: 0.03))
        #expect(Exponential(rate: 4).mean == 0.25)
    }

    @Test func normalMoments() {
        let m = moments(Normal(mean: 10, standardDeviation: 2))
        #expect(close(m.mean, 10, relative: 0.002))
        #expect(close(m.variance, 4, relative: 0.02))
    }

    /// Bulk normals (ziggurat): standard moments and tails, neighbours uncorrelated, the same
    /// stream giving the same values, an odd count filled to its end.
    @Test func filledNormalsAreStandardNormals() {
        var a = RandomStream(seed: 5), b = RandomStream(seed: 5)
        var buffer = [Double](repeating: .nan, count: 200_001), again = buffer
        buffer.withUnsafeMutableBufferPointer { Normal.fill($0, using: &a) }
        again.withUnsafeMutableBufferPointer { Normal.fill($0, using: &b) }
        #expect(buffer == again)
        #expect(buffer.allSatisfy { $0.isFinite })
        let n = Double(buffer.count)
        let mean = buffer.reduce(0, +) / n
        let variance = buffer.reduce(0) { $0 + $1 * $1 } / n - mean * mean
        #expect(abs(mean) < 0.01 && abs(variance - 1) < 0.02, "mean \(mean), variance \(variance)")
        // P(|Z| > 2) = 4.55%, P(|Z| > 3) = 0.27%.
        let beyond2 = Double(buffer.filter { abs($0) > 2 }.count) / n
        let beyond3 = Double(buffer.filter { abs($0) > 3 }.count) / n
        #expect(abs(beyond2 - 0.0455) < 0.003 && abs(beyond3 - 0.0027) < 0.0006, "\(beyond2), \(beyond3)")
        var cross = 0.0
        for i in stride(from: 0, to: buffer.count - 1, by: 2) { cross += buffer[i] * buffer[i + 1] }
        #expect(abs(cross / (n / 2)) < 0.01)
        // The whole shape, wedges and tail included: the share of values in each half-unit band
        // against Φ, and beyond the ziggurat's tail start (r ≈ 3.44: P(|Z| > 3.5) = 4.65e-4).
        let phi = { (z: Double) in 0.5 * erfc(-z / 2.0.squareRoot()) }
        for k in -8..<8 {
            let lo = Double(k) / 2, hi = lo + 0.5
            let share = Double(buffer.filter { $0 >= lo && $0 < hi }.count) / n
            let expected = phi(hi) - phi(lo)
            // Four standard errors of a binomial share.
            #expect(abs(share - expected) < 4 * (expected * (1 - expected) / n).squareRoot() + 1e-5,
                    "band [\(lo), \(hi)): \(share) against \(expected)")
        }
        let beyondTail = Double(buffer.filter { abs($0) > 3.5 }.count)
        #expect(abs(beyondTail - 4.65e-4 * n) < 4 * (4.65e-4 * n).squareRoot(), "\(beyondTail) beyond 3.5")
        #expect(buffer.contains { $0 > 3.5 } && buffer.contains { $0 < -3.5 }, "both tails are drawn")
        var none: [Double] = []
        var c = RandomStream(seed: 9), d = RandomStream(seed: 9)
        none.withUnsafeMutableBufferPointer { Normal.fill($0, using: &c) }
        #expect(c.uniform() == d.uniform(), "an empty buffer draws nothing")
        // One value at a time is the same sequence as the bulk fill.
        var e = RandomStream(seed: 5)
        #expect((0..<1_000).map { _ in Normal.ziggurat(using: &e) } == Array(buffer.prefix(1_000)))
        // The fill leaves the stream where its last draw did (its state is kept in locals and
        // stored back once, wedge and tail draws included): two fills in turn are one fill.
        var f = RandomStream(seed: 5)
        var halves = [Double](repeating: .nan, count: buffer.count)
        halves.withUnsafeMutableBufferPointer { all in
            Normal.fill(UnsafeMutableBufferPointer(rebasing: all[..<70_001]), using: &f)
            Normal.fill(UnsafeMutableBufferPointer(rebasing: all[70_001...]), using: &f)
        }
        #expect(halves == buffer)
        #expect(f.uniform() == a.uniform(), "the stream goes on from the same point")
    }

    @Test(arguments: [0.3, 1.0, 2.5, 9.0])
    func gammaMoments(shape: Double) {
        let gamma = Gamma(shape: shape, scale: 2)
        let m = moments(gamma)
        #expect(close(m.mean, shape * 2, relative: 0.02))
        #expect(close(m.variance, gamma.variance, relative: 0.05))
    }

    @Test func gammaFromCoefficientOfVariation() throws {
        let gamma = Gamma(mean: 0.1, coefficientOfVariation: 3)
        let gammaMean = try #require(gamma.mean)
        #expect(abs(gammaMean - 0.1) < 1e-12)
        let m = moments(gamma, n: 400_000)
        #expect(close(m.mean, 0.1, relative: 0.03))
        #expect(close(m.variance.squareRoot() / m.mean, 3, relative: 0.08))
    }

    @Test func lognormalFromMeanAndCV() throws {
        let d = LogNormal(mean: 1_500, coefficientOfVariation: 0.8)
        let mean = try #require(d.mean)
        #expect(abs(mean - 1_500) < 1e-6)
        let m = moments(d)
        #expect(close(m.mean, 1_500, relative: 0.02))
        #expect(close(m.variance.squareRoot(), 1_200, relative: 0.06))
    }

    @Test func zipfRanksAndSkew() throws {
        let zipf = Zipf(n: 10, exponent: 1.2)
        var rng = RandomStream(seed: 2)
        var counts = [Int](repeating: 0, count: 11)
        for _ in 0..<50_000 {
            let k = zipf.sampleRank(using: &rng)
            #expect((1...10).contains(k))
            counts[k] += 1
        }
        #expect(counts[1] > counts[2] && counts[2] > counts[5] && counts[5] > counts[10])
        // P(1)/P(2) = 2^1.2 ≈ 2.30
        #expect(close(Double(counts[1]) / Double(counts[2]), 2.297, relative: 0.06))
        let zipfMean = try #require(zipf.mean)
        #expect(close(moments(zipf).mean, zipfMean, relative: 0.02))
    }

    @Test func empiricalFollowsWeights() throws {
        let d = Empirical(values: [1, 10, 100], weights: [1, 2, 1])
        #expect(d.mean == 30.25)
        var rng = RandomStream(seed: 8)
        var counts: [Double: Int] = [:]
        for _ in 0..<40_000 { counts[d.sample(using: &rng), default: 0] += 1 }
        #expect(Set(counts.keys) == [1, 10, 100])
        let tens = try #require(counts[10])
        #expect(abs(tens - 20_000) < 600)
        let single = Empirical(values: [5], weights: [0.3]).sample(using: &rng)
        #expect(single == 5)
    }

    @Test func constantIsConstant() {
        var rng = RandomStream(seed: 1)
        let value = Constant(7).sample(using: &rng)
        #expect(value == 7)
    }

    @Test func samplingIsDeterministic() {
        var a = RandomStream(seed: 77)
        var b = RandomStream(seed: 77)
        let d = Gamma(shape: 0.5, scale: 3)
        let sa = (0..<100).map { _ in d.sample(using: &a) }
        let sb = (0..<100).map { _ in d.sample(using: &b) }
        #expect(sa == sb)
    }
}
