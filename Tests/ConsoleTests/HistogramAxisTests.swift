import ServingEngine
import Testing
import XDSTestSupport

@testable import Console

/// Issue 13 item 2 (part): histograms fill their panel, the axis has ticks and says its
/// scale, and the SLO marker stays visible, clamped at the edge with its value.
@Suite struct HistogramAxisTests {
    /// Doubling bins as the engine publishes them: 1, 2, 4 … 64 ms; samples 8…32 ms.
    static func snapshot(tpotSLO: Double) -> Snapshot {
        var s = SnapshotFixtures.superpod
        let bounds = (0..<7).map { Double(1 << $0) }
        s.histograms.tpot = HistogramBins(upperBoundsMs: bounds, counts: [0, 0, 0, 40, 300, 120, 0])
        s.slo.tpotMs = tpotSLO
        return s
    }

    static func render(_ s: Snapshot, width: Int, height: Int) -> [String] {
        var state = ConsoleUpdate.update(ConsoleState(width: width, height: height), .tick(s)).0
        state.view = .latency
        return ConsoleScreen.render(state, s, theme: .builtinDark, width: width, height: height).lines
    }

    /// The TPOT panel's columns: the middle third of the screen.
    static func panel(_ line: String, width: Int) -> String {
        let w = width / 3
        let cells = Array(line) + Array(repeating: " ", count: max(0, width - line.count))
        return String(cells[w..<(2 * w)])
    }

    @Test(arguments: [(80, 24), (100, 30), (120, 40), (160, 45), (200, 60)])
    func sloPastTheAxisIsClampedAtTheEdgeWithItsValue(size: (Int, Int)) throws {
        let (width, height) = size
        let lines = Self.render(Self.snapshot(tpotSLO: 100), width: width, height: height)
        let tpot = lines.dropFirst(3).map { Self.panel($0, width: width) }
        // The three titles share one wording: the longest all of them hold (at 100 columns a
        // "linear axis" beside it is too long, so every title says "log"/"lin").
        let expected = width >= 120 ? "┌ TPOT · since start · log axis" : width >= 100 ? "┌ TPOT · since start · log ─"
            : "┌ TPOT · all · log"
        #expect(tpot[0].hasPrefix(expected), "\(tpot[0])")
        let titles = lines[3].components(separatedBy: "┐┌")
        #expect(titles.count == 3 && Set(titles.map { $0.contains("since start") }).count == 1, "\(lines[3])")
        // So does the y scale: "tallest bar N of n M" in all three panels or "↑N of n M" in all.
        let scales = lines[4].components(separatedBy: "││")
        #expect(scales.count == 3 && Set(scales.map { $0.contains("tallest bar") }).count == 1, "\(lines[4])")
        let axisRow = try #require(tpot.firstIndex { $0.contains("┬") })
        // The last cell of the axis is ▲: clamped at the edge, where the axis ends.
        let axis = Array(tpot[axisRow].dropLast())  // without the panel's right border
        let drawn = axis.lastIndex { $0 != " " }
        #expect(drawn.map { axis[$0] } == "▲")
        #expect(axis.filter { $0 == "▲" }.count == 1)
        #expect(tpot.contains { $0.contains("off axis") } || width < 120)
        // With its unit; at 80 columns without the blank after ▲, which keeps one before the border.
        #expect(tpot.contains { $0.contains(width > 80 ? "▲ SLO 100ms" : "▲SLO 100ms") })
        // Bars fill most of the plot width.
        let barColumns = Set(
            tpot[1..<axisRow].flatMap { row in
                Array(row).enumerated().filter { CellBuffer.sparkGlyphs.contains($0.element) }.map(\.offset)
            })
        #expect(Double(barColumns.count) >= 0.8 * Double(width / 3 - 4))
        // Tick labels: the start of the first occupied bin and the end.
        let labels = tpot[axisRow + 1]
        #expect(labels.contains("4.00ms") || labels.contains("4ms") || labels.contains("4.0ms"))
        #expect(labels.contains("32"))
    }

    /// At 80×24 the TPOT panel read "p99 11.8ms  ▲ SLO 35.0m": the unit was cut at the border.
    /// The label shortens ("▲SLO 35.0ms→") so the value and its unit always show, on or off axis.
    @Test(arguments: [(80, 24), (90, 26), (100, 30), (120, 40), (160, 45), (200, 60)])
    func sloLabelKeepsItsValueAndUnit(size: (Int, Int)) throws {
        let (width, height) = size
        // Bins end at 64 ms: an SLO of 35 ms sits on the axis, one of 100 ms is past it.
        for (slo, value, offAxis) in [(35.0, "35.0ms", false), (100, "100ms", true)] {
            var s = Self.snapshot(tpotSLO: slo)
            s.latency.tpotP99Ms = 11.8
            let tpot = Self.render(s, width: width, height: height).dropFirst(3).map { Self.panel($0, width: width) }
            let row = try #require(tpot.first { $0.contains("p99") })
            #expect(row.contains("p99 11.8ms") && row.hasSuffix("│"), "\(row)")
            let label = try #require(row.firstRange(of: "▲").map { row[$0.lowerBound...].dropLast() })
            #expect(label.contains(value), "\(row)")
            #expect(label.contains("→") == offAxis, "\(row)")
            #expect(label.contains("SLO"), "\(row)")  // room for the word at every width tried
        }
    }

    @Test func sloLabelForms() {
        #expect(LatencyView.sloLabel("35.0ms", offAxis: true, room: 40) == "  ▲ SLO 35.0ms → off axis")
        #expect(LatencyView.sloLabel("35.0ms", offAxis: true, room: 13) == " ▲SLO 35.0ms→")
        #expect(LatencyView.sloLabel("35.0ms", offAxis: false, room: 13) == " ▲ SLO 35.0ms")
        #expect(LatencyView.sloLabel("35.0ms", offAxis: false, room: 8) == " ▲35.0ms")
    }

    @Test func sloInsideTheAxisSitsInItsBin() throws {
        let lines = Self.render(Self.snapshot(tpotSLO: 20), width: 200, height: 60)
        let tpot = lines.dropFirst(3).map { Self.panel($0, width: 200) }
        let axisRow = try #require(tpot.firstIndex { $0.contains("┬") })
        let axis = Array(tpot[axisRow])
        let marker = try #require(axis.firstIndex(of: "▲"))
        let end = try #require(axis.firstIndex(of: "┤"))
        // 20 ms is in the 16…32 ms bin, the last of three shown: in the last third, not at the end.
        #expect(marker > 2 + (end - 2) * 2 / 3 && marker < end)
        #expect(!tpot.contains { $0.contains("off axis") })
    }
}

/// The three latency panels word their y scale alike: at 80 columns a TTFT count of 180 of 343
/// said "↑180 of n 343" beside E2E's "tallest bar 166 of n 343" (one column wider).
@Suite struct LatencyScaleWordingTests {
    @Test func narrowPanelsAllSayTheShortFormAndWideOnesTheLong() {
        var s = SnapshotFixtures.superpod
        let bounds = (0..<8).map { Double(64 << $0) }
        s.histograms.ttft = HistogramBins(upperBoundsMs: bounds, counts: [20, 60, 180, 60, 20, 3, 0, 0])
        s.histograms.tpot = HistogramBins(upperBoundsMs: bounds.map { $0 / 64 }, counts: [0, 0, 0, 343, 0, 0, 0, 0])
        s.histograms.e2e = HistogramBins(upperBoundsMs: bounds.map { $0 * 8 }, counts: [10, 40, 80, 166, 40, 7, 0, 0])
        for (w, h, long) in [(80, 24, false), (160, 45, true)] {
            let lines = HistogramAxisTests.render(s, width: w, height: h)
            let scales = lines[4].components(separatedBy: "││")
            #expect(scales.count == 3, "\(lines[4])")
            #expect(scales.allSatisfy { $0.contains("tallest bar") == long }, "\(w)×\(h): \(lines[4])")
        }
    }
}

extension HistogramAxisTests {
    /// The TTFT histogram drew its bins in three colours (within the SLO green, the bin holding
    /// the SLO orange, over it red) and nothing on screen said what orange or red meant: only
    /// the ▲ SLO label, itself orange. Each panel with an SLO now has a legend of the colours
    /// its bars are drawn in, on its bottom border, at every size from 80×24: every bar colour
    /// has a swatch `■` of the same style there.
    @Test(arguments: [(80, 24), (120, 40), (200, 60)])
    func everyBarColourHasALegendEntry(size: (Int, Int)) throws {
        let (width, height) = size
        var s = SnapshotFixtures.superpod
        // TTFT samples from 64 ms to 8 s under a 2 s SLO: bins within, one holding it, over.
        s.histograms.ttft = HistogramBins(upperBoundsMs: (0..<15).map { Double(1 << $0) }, counts: [0, 0, 0, 0, 0, 0, 40, 300, 500, 400, 200, 60, 20, 5, 0])
        var state = ConsoleUpdate.update(ConsoleState(width: width, height: height), .tick(s)).0
        state.view = .latency
        state.latencyWindow = .all
        let frame = ConsoleScreen.render(state, s, theme: .builtinDark, width: width, height: height)
        let lines = frame.lines
        let top = 3, w = width / 3
        let bottom = try #require((top + 1..<height).first { frame[0, $0].character == "└" })
        let barGlyphs = Set(CellBuffer.sparkGlyphs + ["█"])
        var barStyles: [Style] = []
        for y in top + 1..<bottom {
            for x in 1..<(w - 1) where barGlyphs.contains(frame[x, y].character) && !barStyles.contains(frame[x, y].style) {
                barStyles.append(frame[x, y].style)
            }
        }
        #expect(Set(barStyles) == [.good, .warn, .bad], "\(barStyles)")
        let swatches = (1..<(w - 1)).filter { frame[$0, bottom].character == "■" }.map { frame[$0, bottom].style }
        for style in barStyles { #expect(swatches.contains(style), "\(width)×\(height): \(style) missing in '\(lines[bottom])'") }
        let legend = String(Array(lines[bottom])[0..<w])
        switch width {
        case 80: #expect(legend == "└ ■≤SLO ■SLO bin ■>SLO ──┘", "\(legend)")
        case 120: #expect(legend.hasPrefix("└ ■ within SLO  ■ SLO bin  ■ over SLO ─"), "\(legend)")
        default: #expect(legend.hasPrefix("└ ■ within SLO  ■ bin holding SLO ▲  ■ over SLO ─"), "\(legend)")
        }
        // The E2E panel has no SLO and one colour: no legend on its border.
        #expect(!String(Array(lines[bottom])[(2 * w)...]).contains("■"))
    }
}
