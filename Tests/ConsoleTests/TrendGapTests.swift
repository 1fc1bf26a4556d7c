import ServingEngine
import Testing
import XDSTestSupport

@testable import Console

/// The Latency view's "Over time" lines had blank stretches that nothing explained: an interval
/// in which no request completed (start-up, a drain or a fault that stops completions) is a
/// gap in a p99 line, drawn as a blank; and while the engine holds fewer points than the chart
/// is wide (the first minutes), every line stopped short with blank columns before its range,
/// under a title saying "newest right". A gap is now a mark the title explains, the lines end
/// at the right edge, and the blank before their first point is named.
@Suite struct TrendGapTests {
    static let sizes = [(80, 24), (120, 40), (200, 60)]

    static func render(_ s: Snapshot, width: Int, height: Int, ascii: Bool = false) -> [String] {
        var state = ConsoleUpdate.update(ConsoleState(width: width, height: height), .tick(s)).0
        state.view = .latency
        let b = ConsoleScreen.render(state, s, theme: .builtinDark, width: width, height: height)
        return ascii ? b.asciiOnly().lines : b.lines
    }

    /// A snapshot 40 points into a run whose p99s have a stretch without completions (a drain)
    /// and none yet in the first two intervals.
    static func gappy(points: Int = 40) -> Snapshot {
        var s = SnapshotFixtures.superpod
        func gaps(_ v: [Double]) -> [Double] {
            v.enumerated().map { i, x in i < 2 || (20..<28).contains(i) ? 0 : x }
        }
        s.series.outputTokensPerSecond = Array(s.series.outputTokensPerSecond.prefix(points))
        s.series.ttftP99Ms = gaps(Array(s.series.ttftP99Ms.prefix(points)))
        s.series.tpotP99Ms = gaps(Array(s.series.tpotP99Ms.prefix(points)))
        s.series.e2eP99Ms = gaps(Array(s.series.e2eP99Ms.prefix(points)))
        s.series.running = Array(s.series.running.prefix(points))
        s.series.waiting = Array(s.series.waiting.prefix(points))
        return s
    }

    /// The columns of a trend row between its value (col 20 of the panel) and its range.
    static func plot(_ row: String, width: Int) -> [Character] {
        let chars = Array(row)
        let sparkWidth = max(1, (width - 2) - 21 - 20)
        return Array(chars[21..<(21 + sparkWidth)])
    }

    @Test(arguments: sizes)
    func aGapIsAMarkTheTitleExplains(size: (Int, Int)) throws {
        let lines = Self.render(Self.gappy(), width: size.0, height: size.1)
        let title = try #require(lines.first { $0.contains("Over time") }, "\(lines.joined(separator: "\n"))")
        #expect(title.contains("no completion: ⋅") || title.contains("no request completed in the interval: ⋅"), "\(title)")
        for label in ["TTFT p99", "TPOT p99", "E2E p99"] {
            let row = try #require(lines.first { $0.contains("│ \(label) ") })
            let plot = Self.plot(row, width: size.0)
            // The line ends at the right edge (the newest point beside its range) and no blank
            // sits between its first point and its last.
            let first = try #require(plot.firstIndex { $0 != " " }, "\(row)")
            #expect(plot.last != " ", "\(label) \(size): '\(row)'")
            #expect(!plot[first...].contains(" "), "\(label) \(size): '\(row)'")
            #expect(plot.contains("⋅"), "\(label) \(size): '\(row)'")
        }
        // A line that never lacks a point has no mark.
        let tok = try #require(lines.first { $0.contains("│ tok/s ") })
        #expect(!Self.plot(tok, width: size.0).contains("⋅"), "\(tok)")
    }

    /// The title's separator `·` and the gap mark `⋅` side by side ("min…max · ⋅ no
    /// completion" at 80 columns) read as one dot: no separator stands next to the mark, and
    /// the title still says what it means. The same under LANG=C, where the mark is `_`.
    @Test(arguments: sizes)
    func theGapMarkStandsApartFromTheSeparators(size: (Int, Int)) throws {
        for ascii in [false, true] {
            let lines = Self.render(Self.gappy(), width: size.0, height: size.1, ascii: ascii)
            let title = try #require(lines.first { $0.contains("Over time") })
            let mark: Character = ascii ? "_" : "⋅", separator: Character = ascii ? "." : "·"
            let chars = Array(title)
            let at = try #require(chars.firstIndex(of: mark), "\(title)")
            let before = chars[..<at].last { $0 != " " }, after = chars[(at + 1)...].first { $0 != " " }
            #expect(before != separator && after != separator, "\(size) ascii \(ascii): \(title)")
            #expect(title.contains("no completion") || title.contains("no request completed"), "\(title)")
        }
    }

    /// Fewer points than columns: the blank before the first point is "before the start", said
    /// in the title (the engine keeps its series from the start until they are full).
    @Test func theBlankBeforeTheFirstPointIsNamed() throws {
        let lines = Self.render(Self.gappy(points: 40), width: 200, height: 60)
        let title = try #require(lines.first { $0.contains("Over time") })
        #expect(title.contains("since start"), "\(title)")
        let tok = try #require(lines.first { $0.contains("│ tok/s ") })
        let plot = Self.plot(tok, width: 200)
        #expect(plot.prefix(plot.count - 41).allSatisfy { $0 == " " } && !plot.suffix(41).contains(" "), "\(tok)")
        // A full chart is not "since start".
        let full = Self.render(SnapshotFixtures.superpod, width: 80, height: 24)
        #expect(!(full.first { $0.contains("Over time") } ?? "").contains("since start"))
    }

    /// The newest interval without a completion: the line ends in a mark, and the figure beside
    /// it (the last interval that had one) is not drawn in the SLO's good or bad colour as a
    /// live value.
    @Test func aLineEndingInAGapShowsItsLastValueAsOld() throws {
        var s = SnapshotFixtures.superpod
        s.series.ttftP99Ms.replaceSubrange(110..<120, with: repeatElement(0, count: 10))
        var state = ConsoleUpdate.update(ConsoleState(width: 200, height: 60), .tick(s)).0
        state.view = .latency
        let b = ConsoleScreen.render(state, s, theme: .builtinDark, width: 200, height: 60)
        let y = try #require(b.lines.firstIndex { $0.contains("│ TTFT p99 ") })
        let plot = Self.plot(b.lines[y], width: 200)
        #expect(plot.suffix(11).allSatisfy { $0 == "⋅" }, "\(b.lines[y])")
        let valueX = 1 + 9 + 7  // right-aligned in 8 columns from col 10 of the panel
        #expect(b[valueX, y].style.fg == .dim, "\(b.lines[y])")
    }

    /// Under LANG=C the mark stays apart from the lowest sparkline level (`.`).
    @Test func theMarkHasItsOwnASCIIStandIn() throws {
        let lines = Self.render(Self.gappy(), width: 200, height: 60, ascii: true)
        let row = try #require(lines.first { $0.contains("| TTFT p99 ") })
        #expect(Self.plot(row, width: 200).contains("_"), "\(row)")
    }
}
