import Foundation
import ServingEngine
import Testing
import XDSTestSupport

@testable import Console

/// Issue 13 item 1: colour means state. Healthy is calm, the ramp has a legend with its
/// stops, the lowest band is readable on every theme, and every NPU state has its own glyph.
@Suite struct StateColourTests {
    static let themesDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("themes")

    /// Renders the Pod view of `snapshot` with NPU 0 selected and returns the buffer.
    static func pod(_ snapshot: Snapshot, width: Int = 80, height: Int = 24) -> CellBuffer {
        var state = ConsoleUpdate.update(ConsoleState(width: width, height: height), .tick(snapshot)).0
        state.selectedNPU = 383
        return ConsoleScreen.render(state, snapshot, theme: .builtinDark, width: width, height: height)
    }

    /// Where NPU `id`'s cell is drawn.
    static func cell(_ b: CellBuffer, npu id: Int) -> Cell {
        let layout = PodLayout(width: b.width, height: b.height)
        let (x, y) = layout.origin(ofNode: id / 8)
        return b[x + layout.labelWidth + (id % 8) * layout.cellWidth, y]
    }

    @Test func decodeBusyWithLowKVIsCalmAndFullKVIsRed() throws {
        var s = SnapshotFixtures.superpod
        let decode = try #require(s.npus.firstIndex { $0.role == .decode && !$0.faulted && $0.node != 20 })
        s.npus[decode].utilization = 1.0
        s.npus[decode].kvUsage = 0.01
        let calm = Self.cell(Self.pod(s), npu: decode)
        #expect(calm.character == "D")
        #expect(calm.style == Style(fg: .good))
        s.npus[decode].kvUsage = 0.96
        #expect(Self.cell(Self.pod(s), npu: decode).style == Style(fg: .bad, bold: true))
        s.npus[decode].kvUsage = 0.8
        #expect(Self.cell(Self.pod(s), npu: decode).style == Style(fg: .warn, bold: true))
        // Prefill is judged by its TE's DP groups holding a prompt (PrefillLoadColourTests):
        // a TE with none is dim (readable) whatever its busy share; every group busy is red.
        let prefill = try #require(s.npus.firstIndex { $0.role == .prefill && $0.node != 5 })
        let te = s.npus.indices.filter { s.npus[$0].instance == s.npus[prefill].instance }
        for i in te { s.npus[i].requestsInFlight = 0 }
        s.npus[prefill].utilization = 0.97
        #expect(Self.cell(Self.pod(s), npu: prefill).style == .dim)
        for i in te { s.npus[i].requestsInFlight = 3 }
        #expect(Self.cell(Self.pod(s), npu: prefill).style == Style(fg: .bad, bold: true))
    }

    @Test func legendShowsTheStopsAndTheGlyphsAtEverySize() {
        for (w, h) in [(80, 24), (100, 30), (120, 40), (160, 45), (200, 60)] {
            let b = Self.pod(SnapshotFixtures.superpod, width: w, height: h)
            let text = b.lines.joined(separator: "\n")
            // Legend rows are never cut at the grid's border.
            for line in b.lines where line.contains("P pre") {
                #expect(line.contains("~ draining") || line.contains("≠link"), "\(w)×\(h): \(line)")
            }
            for line in b.lines where line.contains("load ■") {
                #expect(line.contains("~draining") || line.contains("KV held)"), "\(w)×\(h): \(line)")
            }
            #expect(text.contains("load ■idle ■<70% ok ■<90% high ■≥90% crit"), "\(w)×\(h)")
            for glyph in ["X dead", "slow", "HBM", "link", "drained", "draining"] {
                #expect(text.contains(glyph), "\(glyph) at \(w)×\(h)")
            }
            // The swatches carry the colours of the bands they name.
            let row = b.lines.firstIndex { $0.contains("load ■") }!
            let swatches = (0..<b.width).map { b[$0, row] }.filter { $0.character == "■" }.map(\.style)
            #expect(swatches == NPULoad.Band.allCases.map(NPULoad.style))
        }
    }

    @Test func drainedDrainingDeadSlowHBMAndLinkEachHaveTheirGlyph() {
        var s = SnapshotFixtures.superpod
        s.activeFaults = [
            FaultStatus(id: 1, description: "fault npu 140 · detected in 2.1 s", injectedAt: 1),
            FaultStatus(id: 2, description: "straggler die 300 (2× slower)", injectedAt: 2),
            FaultStatus(id: 3, description: "fault hbm die 336", injectedAt: 3),
            FaultStatus(id: 4, description: "fault link 200-210", injectedAt: 4, recoveredAt: 5),
        ]
        s.npus[150].faulted = true
        s.npus[168].faulted = true
        let b = Self.pod(s)
        #expect(Self.cell(b, npu: 140).character == "X")
        #expect(Self.cell(b, npu: 150).character == "↓")
        #expect(Self.cell(b, npu: 168).character == "#")
        #expect(Self.cell(b, npu: 200).character == "≠")
        #expect(Self.cell(b, npu: 210).character == "≠")
        // Node markers: drained node 5 ⊘, draining node 20 ~ (not the drained glyph).
        let layout = PodLayout(width: 80, height: 24)
        func marker(_ node: Int) -> Character {
            let (x, y) = layout.origin(ofNode: node)
            return b[x, y].character
        }
        #expect(marker(5) == "⊘")
        #expect(marker(20) == "~")
        #expect(marker(17) == "X")
        #expect(marker(18) == "↓")
        #expect(marker(21) == "#")
        #expect(marker(25) == "≠")
        // A drained node's NPUs are dim, not coloured by load.
        #expect(Self.cell(b, npu: 5 * 8 + 1).style == .dim)
        // The header counts drained and draining apart.
        let wide = Self.pod(s, width: 200, height: 60).lines[1]
        #expect(wide.contains("drained 1 draining 1"))
    }

    @Test func expertHeatMapHasItsScale() {
        let heat = SnapshotFixtures.superpod.experts.heat
        let peak = max(2, heat.map { $0.max() ?? 0 }.max() ?? 0)
        for (w, h) in [(80, 24), (200, 60)] {
            let lines = renderFixture(.experts, width: w, height: h)
            #expect(lines.contains { $0.contains("colour ≤0.1× ████████ \(Format.fixed(peak, 2))× mean (max), log") })
        }
    }

    /// The heat scale is logarithmic: with a 24× expert the mean still sits well inside the ramp
    /// (on the old linear scale it was at 4%, the bottom colour), and order is kept.
    @Test func expertHeatScaleKeepsTheMeanReadableUnderHeavySkew() {
        let peak = 24.0
        let mean = ExpertsView.heatScale(1, peak: peak)
        #expect(mean > 0.3 && mean < 0.5, "1× mean at \(mean)")
        #expect(ExpertsView.heatScale(0.05, peak: peak) == 0)
        #expect(ExpertsView.heatScale(peak, peak: peak) == 1)
        #expect(ExpertsView.heatScale(40, peak: peak) == 1)
        let levels = [0.2, 0.5, 1, 2, 4, 8, 16].map { ExpertsView.heatScale($0, peak: peak) }
        #expect(levels == levels.sorted() && Set(levels).count == levels.count)
        #expect(ExpertsView.heatScale(2, peak: peak) - ExpertsView.heatScale(0.5, peak: peak) > 0.2)
    }

    /// WCAG contrast of a 256-colour index against another.
    static func luminance(_ index: Int) -> Double {
        let rgb: (Double, Double, Double)
        switch index {
        case 0..<16:
            let basic: [(Double, Double, Double)] = [
                (0, 0, 0), (205, 0, 0), (0, 205, 0), (205, 205, 0), (0, 0, 238), (205, 0, 205), (0, 205, 205),
                (229, 229, 229), (127, 127, 127), (255, 0, 0), (0, 255, 0), (255, 255, 0), (92, 92, 255),
                (255, 0, 255), (0, 255, 255), (255, 255, 255),
            ]
            rgb = basic[index]
        case 16..<232:
            let i = index - 16
            let level = { (v: Int) in v == 0 ? 0.0 : Double(55 + 40 * v) }
            rgb = (level(i / 36), level((i / 6) % 6), level(i % 6))
        default:
            let v = Double(8 + 10 * (index - 232))
            rgb = (v, v, v)
        }
        func channel(_ c: Double) -> Double {
            let s = c / 255
            return s <= 0.03928 ? s / 12.92 : pow((s + 0.055) / 1.055, 2.4)
        }
        return 0.2126 * channel(rgb.0) + 0.7152 * channel(rgb.1) + 0.0722 * channel(rgb.2)
    }

    static func contrast(_ a: Int, _ b: Int) -> Double {
        let (la, lb) = (luminance(a), luminance(b))
        return (max(la, lb) + 0.05) / (min(la, lb) + 0.05)
    }

    @Test func everyLoadBandIsReadableOnEveryThemesBackground() throws {
        let catalog = ThemeCatalog.load(directory: Self.themesDirectory)
        let colourThemes = catalog.themes.filter { !$0.monochrome }
        #expect(colourThemes.count >= 3)
        for theme in colourThemes {
            for band in NPULoad.Band.allCases {
                let r = theme.resolve(NPULoad.style(band), depth: .colors256)
                // A theme without its own background is drawn on the terminal's: black for
                // dark themes, white for the light one.
                let background = r.bg >= 0 ? r.bg : (theme.name == "light" ? 231 : 16)
                #expect(r.fg >= 0)
                #expect(
                    Self.contrast(r.fg, background) >= 3, "\(theme.name) \(band): \(r.fg) on \(background)")
            }
        }
    }
}

/// The header bar's vitals are coloured by state (TTFT/TPOT p99 green within the SLO, red over
/// it; faults red, degraded amber; drains amber) on the bar's own background. The high-contrast
/// theme's bar was white: its green (46) and yellow (226) read at 1.4:1 and 1.1:1 there, so
/// "TTFT99 1334/2000ms" and "faults 0, 1 degraded" all but vanished in the theme meant to be
/// the easiest to read.
@Suite struct HeaderColourTests {
    @Test func theHeadersStateColoursAreReadableOnItsBar() {
        let catalog = ThemeCatalog.load(directory: StateColourTests.themesDirectory)
        let colourThemes = catalog.themes.filter { !$0.monochrome }
        #expect(colourThemes.count >= 3)
        for theme in colourThemes {
            let bar = theme.resolve(Style(fg: .header), depth: .colors256)
            #expect(bar.bg >= 0, "\(theme.name): the header bar has no background")
            for role in [ColorRole.header, .good, .warn, .bad] {
                let r = theme.resolve(Style(fg: role, bg: .header), depth: .colors256)
                #expect(r.bg == bar.bg)
                #expect(StateColourTests.contrast(r.fg, r.bg) >= 3,
                        "\(theme.name) \(role) on the header: \(r.fg) on \(r.bg), \(StateColourTests.contrast(r.fg, r.bg)):1")
            }
        }
    }
}

/// A latency bar is red only when all of its range is over the SLO: the bin that holds the SLO
/// is amber (its counts do not say how many of its samples are over), the ones within it green.
@Suite struct LatencyBarColourTests {
    @Test func theBinHoldingTheSLOIsAmberNotRed() {
        // Log bins as the engine keeps them: … 512–1024, 1024–2048, 2048–4096 ms; SLO 2000 ms.
        let bins = HistogramBins(upperBoundsMs: [128, 256, 512, 1024, 2048, 4096], counts: [5, 40, 300, 200, 40, 3])
        var b = CellBuffer(width: 60, height: 20)
        LatencyView.histogram(&b, Rect(x: 0, y: 0, width: 60, height: 20), "TTFT", bins, (400, 900, 2200), slo: 2000)
        // The bottom bar row, left to right: one run of cells per bin.
        let barRow = 1 + (20 - 2 - 5)  // inside the border, above the axis and its four text rows
        var runs: [Style] = []
        for x in 1..<59 where b[x, barRow].character != " " {
            let style = b[x, barRow].style
            if runs.last != style { runs.append(style) }
        }
        #expect(runs == [.good, .warn, .bad], "\(runs)")
        // An SLO on a bin edge leaves no bin straddling it.
        var edge = CellBuffer(width: 60, height: 20)
        LatencyView.histogram(&edge, Rect(x: 0, y: 0, width: 60, height: 20), "TTFT", bins, (400, 900, 2200), slo: 2048)
        var edgeRuns: [Style] = []
        for x in 1..<59 where edge[x, barRow].character != " " {
            let style = edge[x, barRow].style
            if edgeRuns.last != style { edgeRuns.append(style) }
        }
        #expect(edgeRuns == [.good, .bad], "\(edgeRuns)")
        #expect(LatencyView.barStyle(lower: 0, upper: 10, slo: nil) == .accent)
    }

    /// Without colour (`NO_COLOR`, a mono terminal) a bar wholly over the SLO has a glyph of its
    /// own, `╳`, and the scale row names it; only the ▲ marker divided them before. The bin
    /// holding the SLO stays solid with the ▲ under it.
    @Test func withoutColourBarsOverTheSLOHaveTheirOwnGlyph() {
        let bins = HistogramBins(upperBoundsMs: [128, 256, 512, 1024, 2048, 4096], counts: [5, 40, 300, 200, 40, 3])
        var b = CellBuffer(width: 60, height: 20)
        LatencyView.histogram(&b, Rect(x: 0, y: 0, width: 60, height: 20), "TTFT", bins, (400, 900, 2200), slo: 2000,
                              monochrome: true)
        let barRow = 1 + (20 - 2 - 5)
        var runs: [Character] = []
        for x in 1..<59 where b[x, barRow].character != " " {
            let c = b[x, barRow].character
            if runs.last != c { runs.append(c) }
        }
        #expect(runs == ["▂", "█", "╳"], "\(runs)")  // the 5-sample bin, the solid ones, the tail
        #expect(b.line(1).contains("tallest bar 300 of n 588  ╳ over SLO"), "\(b.line(1))")
        // In colour, the same bars stay solid and the scale row has no glyph legend (the colours'
        // legend is on the bottom border).
        var colour = CellBuffer(width: 60, height: 20)
        LatencyView.histogram(&colour, Rect(x: 0, y: 0, width: 60, height: 20), "TTFT", bins, (400, 900, 2200), slo: 2000)
        #expect(!colour.text.contains("╳") && !colour.line(1).contains("over SLO"), "\(colour.text)")
        // Under LANG=C too: `x`, not a sparkline level.
        #expect(ASCIIFallback.ascii("╳") == "x" && !CellBuffer.sparkGlyphs.map(ASCIIFallback.ascii).contains("x"))
        // At 80×24 in the mono theme the short legend fits the TTFT and TPOT panels' scale rows.
        var state = primedState()
        state.view = .latency
        let mono = ConsoleScreen.render(state, SnapshotFixtures.superpod, theme: .builtinMono, width: 80, height: 24)
        #expect(mono.line(4).filter { $0 == "╳" }.count == 2, "\(mono.text)")
    }
}

/// The decode-groups strip says what its bars mean: height 0…100% of a group's KV, and, where
/// the border has room, the colour bands of the Pod legend (every chart has its scale).
@Suite struct KVStripScaleTests {
    @Test func theStripsScaleIsOnItsBorderAtEverySize() {
        for (w, h) in [(80, 24), (120, 40), (160, 45), (200, 60)] {
            var state = ConsoleUpdate.update(ConsoleState(width: w, height: h), .tick(SnapshotFixtures.superpod)).0
            state.view = .kvCache
            let lines = ConsoleScreen.render(state, SnapshotFixtures.superpod, theme: .builtinDark, width: w, height: h).lines
            let border = lines.first { $0.contains("Decode DP groups") } ?? ""
            #expect(border.contains("height ▁0…█100%"), "\(w)×\(h): \(border)")
            #expect(border.hasSuffix("┐") && border.count == w, "\(w)×\(h): \(border)")
            if w >= 120 { #expect(border.contains("■<5% ■<70% ■<90% ■≥90%"), "\(w)×\(h): \(border)") }
        }
    }
}

/// In the Latency view orange marks the histogram bin that holds the SLO and the ▲ SLO marker;
/// the "waiting" trend was orange too, always, at a calm queue of 14 as at a flood, so the same
/// colour meant "near the SLO" and "a count". It is drawn as the other counts are.
@Suite struct LatencyTrendColourTests {
    @Test(arguments: [(80, 24), (200, 60)])
    func theWaitingTrendIsNotInTheWarningColour(size: (Int, Int)) throws {
        let (w, h) = size
        var state = ConsoleState(width: w, height: h)
        state = ConsoleUpdate.update(state, .tick(SnapshotFixtures.superpod)).0
        state.view = .latency
        let b = ConsoleScreen.render(state, SnapshotFixtures.superpod, theme: .builtinDark, width: w, height: h)
        let y = try #require(b.lines.firstIndex { $0.contains("│ waiting") })
        let running = try #require(b.lines.firstIndex { $0.contains("│ running") })
        let styles = Set((0..<w).map { b[$0, y].style }.filter { $0 != .dim && $0 != .text && $0 != Style() })
        #expect(!styles.contains(.warn), "\(b.line(y))")
        // Its figure is drawn as that of "running", its neighbour (right-aligned, ending at 18).
        #expect(b[18, y].style == b[18, running].style, "\(b.line(y))")
    }
}
