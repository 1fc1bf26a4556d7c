import Foundation
import SimKit
import Testing

@testable import ServingEngine

/// The snapshot's latency statistics come from one walk over the HdrHistogram (issue 12's
/// snapshot budget); they must equal what HdrHistogram's own accessors say, value for value,
/// so reports and goldens do not move.
@Suite(.timeLimit(.minutes(10))) struct LatencyHistogramTests {
    /// Latencies spread log-uniformly from 1 µs to about 3 hours, plus exact bin edges.
    private func samples(_ n: Int, seed: UInt64) -> [Double] {
        var rng = RandomStream(seed: seed)
        var out = (0..<n).map { _ in pow(10, -6 + 10 * Double.random(in: 0..<1, using: &rng)) }
        out += [0, 0.001, 0.002, 0.004, 0.0019995, 1.024, 36_000, 1e9]  // floors, bin edges, the old ceiling, beyond the ceiling
        return out
    }

    @Test func oneWalkEqualsTheLibrarysAccessors() {
        for (n, seed) in [(1, 1), (7, 2), (1_000, 3), (50_000, 4)] as [(Int, UInt64)] {
            var h = LatencyHistogram()
            for s in samples(n, seed: seed) { h.record(seconds: s) }
            let fast = h.summary(), reference = h.referenceSummary()
            #expect(fast == reference, "n=\(n): \(fast) vs \(reference)")
            #expect(fast.bins.counts.reduce(0, +) == Int(h.count))
            // Each bin's 16 sub-bins (what the console's linear axis draws) add up to it; the
            // comparison above holds them against the library's counts between their edges.
            let parts = fast.bins.subCounts
            #expect(fast.bins.subBins == 16 && parts.count == fast.bins.counts.count * 16)
            for (k, count) in fast.bins.counts.enumerated() {
                #expect(parts[(k * 16)..<((k + 1) * 16)].reduce(0, +) == count, "n=\(n) bin \(k)")
            }
            #expect(fast.p99Ms >= fast.p90Ms && fast.p90Ms >= fast.p50Ms && fast.p50Ms > 0)
        }
    }

    /// The per-bin totals a percentile skips by are kept through records and resets of every
    /// size (a reset clears the touched sub-bins only while it knows them all): after each
    /// batch, the summary equals the library's.
    @Test func binTotalsFollowRecordsAndResets() {
        let pairs = [(LatencyHistogram(digits: .one, binTotals: true), LatencyHistogram(digits: .one)),
                     (LatencyHistogram(binTotals: true), LatencyHistogram())]
        for (withTotals, without) in pairs {
            var h = withTotals
            var plain = without
            var rng = RandomStream(seed: 11)
            for (round, n) in [3, 64, 65, 1, 200, 0, 63, 5_000, 2, 64].enumerated() {
                for _ in 0..<n {
                    let s = pow(10, -5 + 8 * Double.random(in: 0..<1, using: &rng))
                    h.record(seconds: s)
                    plain.record(seconds: s)
                }
                #expect(h.summary() == h.referenceSummary(), "round \(round), \(n) samples")
                #expect(h.summary() == plain.summary(), "round \(round): with and without bin totals")
                if h.count > 0 { for p in [1.0, 50, 99, 99.9] { #expect(h.percentileMs(p) == plain.percentileMs(p)) } }
                if round % 3 != 2 {
                    h.reset()
                    plain.reset()
                }
            }
        }
    }

    @Test func narrowDistributionsAndResets() {
        var h = LatencyHistogram()
        #expect(h.summary() == LatencyHistogram.Summary())
        for _ in 0..<100 { h.record(seconds: 0.035) }  // one slot: every percentile is that slot
        #expect(h.summary() == h.referenceSummary())
        #expect(h.summary().p50Ms == h.summary().p99Ms)
        h.record(seconds: 12)
        #expect(h.summary() == h.referenceSummary())
        #expect(h.summary().p99Ms == h.referenceSummary().p99Ms)
        h.reset()
        #expect(h.summary() == LatencyHistogram.Summary())
        h.record(seconds: 0.5)
        #expect(h.summary() == h.referenceSummary())
        #expect(h.meanMs == h.summary().meanMs)
        // One sample: its slot's midpoint (the library's mean) lay above the sample and so above
        // every percentile; the mean is now the sample, like them.
        for one in [0.083801, 0.5, 1.7, 12.345] {
            var single = LatencyHistogram()
            single.record(seconds: one)
            let s = single.summary()
            #expect(s.meanMs == s.p50Ms && s.meanMs == s.p99Ms, "\(one): \(s)")
            #expect(s.meanMs <= s.p99Ms && s.meanMs >= s.p50Ms)
        }
    }

    /// The sparkline's per-interval p99 (an HdrHistogram at one digit): within a slot (6%) of the
    /// exact 99th percentile, never above the largest sample, and empty again after a reset.
    @Test func intervalP99IsWithinASlotOfTheExactOne() {
        var interval = IntervalLatency()
        #expect(interval.p99Ms == 0 && interval.count == 0)
        for (n, seed) in [(1, 5), (100, 6), (5_000, 7)] as [(Int, UInt64)] {
            var rng = RandomStream(seed: seed)
            let ms = (0..<n).map { _ in 0.5 + 3_000 * Double.random(in: 0..<1, using: &rng) }
            for m in ms { interval.record(seconds: m / 1_000) }
            let sorted = ms.sorted()
            let exact = sorted[Int((Double(n) * 0.99).rounded(.up)) - 1]
            #expect(interval.count == n)
            #expect(abs(interval.p99Ms - exact) <= exact * 0.065, "n=\(n): \(interval.p99Ms) vs exact \(exact)")
            #expect(interval.p99Ms <= (sorted.last! * 1_000).rounded() / 1_000)
            interval.reset()
            #expect(interval.p99Ms == 0 && interval.count == 0)
        }
    }

    /// The interval's selection of the k-th smallest sample agrees with sorting, at every k, on
    /// random values, few distinct values (ties), sorted and reversed runs, and one value.
    @Test func intervalSelectionEqualsSorting() {
        var rng = RandomStream(seed: 3)
        var inputs: [[UInt64]] = [[7], [2, 1], [5, 5, 5, 5], Array(1...40), Array((1...40).reversed())]
        for n in [3, 17, 75, 200] {
            inputs.append((0..<n).map { _ in UInt64.random(in: 1...1_000_000, using: &rng) })
            inputs.append((0..<n).map { _ in UInt64.random(in: 1...3, using: &rng) })
        }
        for values in inputs {
            let sorted = values.sorted()
            for k in values.indices {
                var scratch = values
                #expect(IntervalLatency.select(k, in: &scratch) == sorted[k], "k=\(k) of \(values.count)")
                #expect(scratch.sorted() == sorted, "the values are only reordered")
            }
        }
    }

    /// The interval's p99 (the rank-th smallest sample's slot) equals the library's
    /// `valueAtPercentile(99)` and a one-digit ``LatencyHistogram``'s sub-bin walk at every count,
    /// with ties and over decades, and after resets.
    @Test func intervalP99FromSamplesEqualsTheLibrary() {
        var interval = IntervalLatency()
        var rng = RandomStream(seed: 11)
        for n in [1, 2, 3, 57, 99, 100, 101, 199, 200, 255, 256, 257, 400] {
            for round in 0..<4 {
                for _ in 0..<n {
                    // Round 0 draws few distinct values (ties), round 3 a few microseconds (0 taken
                    // as 1 µs, slots of one value), the others spread over decades.
                    let ms = round == 0 ? Double(Int.random(in: 1...4, using: &rng))
                        : round == 3 ? Double(Int.random(in: 0...3, using: &rng)) / 1_000
                        : 0.01 * pow(10, 5 * Double.random(in: 0..<1, using: &rng))
                    interval.record(seconds: ms / 1_000)
                }
                #expect(interval.p99Ms == interval.referenceP99Ms, "n=\(n) round \(round)")
                #expect(interval.p99Ms.bitPattern == interval.histogramP99Ms.bitPattern, "n=\(n) round \(round)")
                interval.reset()
            }
        }
    }
}
