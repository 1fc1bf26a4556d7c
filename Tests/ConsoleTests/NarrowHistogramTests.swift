import ServingEngine
import Testing
import XDSTestSupport

@testable import Console

/// A latency histogram whose samples all fall in one of the engine's doubling bins (a TPOT of
/// 12–15 ms is all in 8–16 ms) drew as one full-width bar: an honest axis that said nothing. The
/// engine now publishes each bin's 16 sub-bins, and a narrow spread goes on a linear axis of
/// them, in columns as fine as fit, with its ticks and column width in ms.
@Suite struct NarrowHistogramTests {
    /// Bins as the engine publishes them (1, 2, 4, 8, 16 ms) with 16 sub-bins each; `parts`
    /// gives counts to sub-bins of the last bin (8–16 ms, 0.5 ms each) by index.
    static func tpot(_ parts: [Int: Int], extraBins: [Int] = []) -> HistogramBins {
        var counts = [0, 0, 0, 0, 0] + extraBins
        var sub = Array(repeating: 0, count: counts.count * 16)
        for (j, c) in parts {
            sub[4 * 16 + j] = c
            counts[4] += c
        }
        for (i, c) in extraBins.enumerated() where c > 0 { sub[(5 + i) * 16] = c }
        let bounds = counts.indices.map { Double(1 << $0) }
        return HistogramBins(upperBoundsMs: bounds, counts: counts, subBins: 16, subCounts: sub)
    }

    static func render(_ bins: HistogramBins, slo: Double = 35, width: Int = 120, height: Int = 40) -> [String] {
        var s = SnapshotFixtures.superpod
        s.histograms.tpot = bins
        s.slo.tpotMs = slo
        s.latency.tpotP50Ms = 13.2
        s.latency.tpotP90Ms = 13.9
        s.latency.tpotP99Ms = 14.6
        return HistogramAxisTests.render(s, width: width, height: height).dropFirst(3).map {
            HistogramAxisTests.panel($0, width: width)
        }
    }

    /// 700 samples from 12 to 15 ms: eight half-millisecond columns (one empty on each side), the
    /// axis labelled in ms with the decimals the step needs, "linear axis" in the title, the
    /// column width on the scale line, and the SLO (35 ms, far off) clamped at the end with
    /// "→ off axis".
    @Test func samplesWithinOneDoublingBinGoOnALinearAxisOfItsSubBins() {
        let panel = Self.render(Self.tpot([8: 40, 9: 120, 10: 300, 11: 160, 12: 60, 13: 20]))
        #expect(Array(panel.prefix(28)) == [
            "┌ TPOT · since start · linear axis ────┐",
            "│ tallest bar 300 of n 700 · bin 0.5ms │",
            "│             ████                     │",
            "│             ████                     │",
            "│             ████                     │",
            "│             ████                     │",
            "│             ████                     │",
            "│             ████                     │",
            "│             ████                     │",
            "│             ████                     │",
            "│             ████                     │",
            "│             ████▂▂▂▂                 │",
            "│             ████████                 │",
            "│             ████████                 │",
            "│         ▃▃▃▃████████                 │",
            "│         ████████████                 │",
            "│         ████████████                 │",
            "│         ████████████                 │",
            "│         ████████████▂▂▂▂             │",
            "│         ████████████████             │",
            "│     ▆▆▆▆████████████████             │",
            "│     ████████████████████▃▃▃▃         │",
            "│     ████████████████████████         │",
            "│ ┬───────┬───────┬──────────────▲     │",
            "│ 11.5ms  12.5ms  13.5ms    15.5ms     │",
            "│ p50 13.2ms  p90 13.9ms               │",
            "│ p99 14.6ms  ▲ SLO 35.0ms → off axis  │",
            "└ ■ within SLO ────────────────────────┘",
        ])
        // Before: the doubling bins alone, one bar over the whole plot from 8 to 16 ms.
        var coarse = Self.tpot([8: 40, 9: 120, 10: 300, 11: 160, 12: 60, 13: 20])
        (coarse.subBins, coarse.subCounts) = (0, [])
        let before = Self.render(coarse)
        #expect(before[0] == "┌ TPOT · since start ──────────────────┐")
        #expect(before[22] == "│ ████████████████████████████████████ │")
        #expect(before[24] == "│ 8.0ms                         16.0ms │")
    }

    /// Samples all in one sub-bin: that column among empty ones, eight in all, not one
    /// full-width bar again.
    @Test func samplesInOneSubBinShowAmongEmptyColumns() {
        let panel = Self.render(Self.tpot([8: 500]))
        #expect(panel[1] == "│ tallest bar 500 of n 500 · bin 0.5ms │")
        #expect(panel[22] == "│             ████                     │")
        #expect(panel[23] == "│ ┬───────┬───────┬──────────────▲     │")
        #expect(panel[24] == "│ 10.5ms  11.5ms  12.5ms    14.5ms     │")
    }

    /// A wide spread (tens of ms to seconds) keeps the doubling bins on a log axis.
    @Test func aWideSpreadStaysOnTheLogAxis() {
        let bins = HistogramBins(
            upperBoundsMs: (0..<12).map { Double(1 << $0) }, counts: [0, 0, 0, 0, 0, 0, 20, 90, 200, 120, 40, 5],
            subBins: 16, subCounts: Array(repeating: 0, count: 12 * 16))
        let plan = LatencyView.plan(bins, plotWidth: 36, slo: 2000)
        #expect(plan?.linear == false && plan?.scale == "log" && plan?.step == nil)
        #expect(plan?.columns.map(\.count) == [20, 90, 200, 120, 40, 5])
    }

    /// An SLO below every sample is clamped at the start of the axis and said to be off it,
    /// on that side.
    @Test func anSLOBelowTheDataIsClampedAtTheStart() {
        let panel = Self.render(Self.tpot([8: 40, 9: 120, 10: 300, 11: 160, 12: 60, 13: 20]), slo: 5)
        #expect(panel[23] == "│ ▲───────┬───────┬──────────────┤     │")
        #expect(panel[26] == "│ p99 14.6ms  ▲ SLO 5.0ms ← off axis   │")
    }

    /// An SLO a little past the samples joins the axis (it at most doubles its range): 27–31 ms
    /// in 1 ms columns, the SLO of 35 ms at the end of the last one.
    @Test func aNearSLOJoinsTheAxis() throws {
        var counts = Array(repeating: 0, count: 6)
        var sub = Array(repeating: 0, count: 6 * 16)
        for (j, c) in [11: 50, 12: 80, 13: 30, 14: 10] {  // 16–32 ms in 1 ms parts: 27…31 ms
            sub[5 * 16 + j] = c
            counts[5] += c
        }
        let bins = HistogramBins(
            upperBoundsMs: (0..<6).map { Double(1 << $0) }, counts: counts, subBins: 16, subCounts: sub)
        let plan = try #require(LatencyView.plan(bins, plotWidth: 36, slo: 35))
        #expect(plan.linear && plan.step == 1 && plan.sloOff == nil)
        #expect(plan.columns.map(\.count) == [50, 80, 30, 10, 0, 0, 0, 0])
        #expect(plan.columns.first?.lower == 27 && plan.columns.last?.upper == 35)
    }

    /// Columns never split a sub-bin: where the finest width would, it doubles (0.5 ms parts of
    /// 8–16 ms and 1 ms parts of 16–32 ms make 1 ms columns, each the sum of whole parts).
    @Test func columnsAreWholeSubBins() throws {
        let bins = Self.tpot([14: 10, 15: 30], extraBins: [25])  // 15–16 ms, and 16–17 ms
        let plan = try #require(LatencyView.plan(bins, plotWidth: 36, slo: nil))
        #expect(plan.step == 1)
        #expect(plan.columns.map(\.count).reduce(0, +) == 65)
        #expect(plan.columns.contains { $0.lower == 15 && $0.upper == 16 && $0.count == 40 })
        #expect(plan.columns.contains { $0.lower == 16 && $0.upper == 17 && $0.count == 25 })
        // Deterministic: the same bins, the same plan.
        #expect(LatencyView.plan(bins, plotWidth: 36, slo: nil) == plan)
    }

    @Test func tickLabelsHaveTheDecimalsTheStepNeeds() {
        #expect(LatencyView.tickLabel(11.5, step: 0.5) == "11.5ms")
        #expect(LatencyView.tickLabel(11.75, step: 0.25) == "11.75ms")
        #expect(LatencyView.tickLabel(12, step: 1) == "12ms")
        #expect(LatencyView.tickLabel(1088, step: 64) == "1088ms")
        #expect(LatencyView.tickLabel(17_408, step: 1024) == "17.408s")
    }

    /// A window subtracts an older state that has fewer bins (the engine lists bins up to its
    /// highest sample): its bins are the first of the newer's. Before, the shapes differed and
    /// the whole run was shown under "last 1 min".
    @Test func aWindowSubtractsAnOlderStateWithFewerBins() {
        let old = Self.tpot([8: 100])
        let now = Self.tpot([8: 150, 10: 40], extraBins: [7])
        let window = ConsoleMemory.subtract(now, old)
        #expect(window.counts == [0, 0, 0, 0, 90, 7])
        #expect(window.subCounts[4 * 16 + 8] == 50 && window.subCounts[4 * 16 + 10] == 40)
        #expect(window.subCounts[5 * 16] == 7)
        // The window's percentiles are read off the sub-bins: within half a millisecond.
        let p50 = ConsoleMemory.quantile(window, 0.5) ?? 0
        #expect(p50 >= 12 && p50 <= 12.5, "\(p50)")
    }
}
