import Foundation
import ServingEngine
import Testing
import XDSTestSupport

@testable import Console

/// The header's p99s and SLO % are of the whole run (the engine's cumulative histograms and
/// counts), its tok/s of the last interval and its run/wait, faults and drains of now. Only the
/// help said so: on screen "TTFT99 1820/2000ms" stood beside "182.4k tok/s" with one look, and
/// read as the current latency. The cumulative figures now stand together behind a label that
/// names their scope, at every size from 80 columns, with no other figure cut or dropped.
@Suite struct HeaderScopeTests {
    static func vitals(_ s: Snapshot, width: Int, height: Int) -> String {
        let state = ConsoleUpdate.update(ConsoleState(width: width, height: height), .tick(s)).0
        return ConsoleScreen.render(state, s, theme: .builtinDark, width: width, height: height).lines[1]
    }

    static let sizes = [(80, 24), (81, 25), (100, 30), (132, 43), (160, 45), (200, 60)]

    @Test(arguments: sizes)
    func theCumulativeFiguresSayTheirScope(size: (Int, Int)) throws {
        var degraded = SnapshotFixtures.superpod
        degraded.activeFaults.append(
            FaultStatus(id: 2, description: "link 10-200 down", injectedAt: 600, detectedAt: 600.3, recoveredAt: 600.5))
        for s in [SnapshotFixtures.superpod, degraded] {
            let line = Self.vitals(s, width: size.0, height: size.1)
            #expect(line.count <= size.0, "\(size): \(line)")
            #expect(line.contains("182.4k tok/s") || line.contains("182k tok/s"), "\(size): \(line)")
            let label = try #require(line.range(of: "since start:") ?? line.range(of: "so far:"), "\(size): \(line)")
            // The run's figures after the label, now's figures before it.
            let after = line[label.upperBound...], before = line[..<label.lowerBound]
            for cumulative in ["TTFT", "TPOT", "SLO 96%"] { #expect(after.contains(cumulative), "\(size): \(line)") }
            for now in ["tok/s", "812"] { #expect(before.contains(now), "\(size): \(line)") }
            // Whole thousands in the last form (rather than take the "99" off the p99s).
            #expect(before.contains("24.3k") || before.contains("24k"), "\(size): \(line)")
            // Faults (word or ⚠) and drains (word or ⊘ ~), whole, before the label.
            #expect(before.contains("faults 1") || before.contains("⚠1"), "\(size): \(line)")
            #expect(before.contains("drained 1 draining 1") || before.contains("⊘1 ~1"), "\(size): \(line)")
            // Nothing is cut at the edge: the line ends with the SLO figure.
            #expect(line.hasSuffix("SLO 96%"), "\(size): \(line)")
        }
    }
}

/// The Latency view's "Over time" lines are per interval ("1 point/5 s"), and "tok/s" beside its
/// line is the newest interval's; but the figure beside each p99 line was the engine's p99 since
/// start, drawn as the line's newest point too (live: "TTFT p99 1.21s" over a line whose
/// intervals read 294ms…1.26s, equal to the header's cumulative "TTFT 1.21/2s"). It is now the
/// newest interval's p99, the line's own scope.
@Suite struct TrendScopeTests {
    @Test func theP99BesideEachLineIsItsNewestInterval() throws {
        let s = SnapshotFixtures.superpod
        let lines = renderFixture(.latency)
        for (label, series, cumulative) in [
            ("TTFT p99", s.series.ttftP99Ms, s.latency.ttftP99Ms), ("TPOT p99", s.series.tpotP99Ms, s.latency.tpotP99Ms),
            ("E2E p99", s.series.e2eP99Ms, s.latency.e2eP99Ms),
        ] {
            let newest = try #require(series.last { $0 > 0 })
            #expect(Format.ms(newest) != Format.ms(cumulative), "the fixture cannot tell them apart")
            let row = try #require(lines.first { $0.hasPrefix("│ \(label) ") })
            // The value column (8 wide, right-aligned) after the label.
            let value = String(Array(row)[11..<19]).trimmingCharacters(in: .whitespaces)
            #expect(value == Format.ms(newest), "\(row)")
        }
    }
}

/// A y/n question in the footer ends with how to answer it, whole: at 80 columns the
/// straggler's question left "(y confirms, p previews, any other key ca".
@Suite struct ConfirmationHintTests {
    @Test(arguments: [80, 81, 100, 200])
    func theHintFitsWhole(width: Int) {
        for command in ["drain node 0", "fault straggler die 0 slowdown 2", "fault link 10-200 degrade 0.5", "heal all"] {
            var state = primedState(width: width, height: 24)
            state.confirmation = Confirmation(question: "\(command)?", command: command)
            let footer = ConsoleScreen.render(state, SnapshotFixtures.superpod, theme: .builtinDark, width: width, height: 24)
                .lines[23]
            #expect(footer.hasPrefix("\(command)? y/n  ("), "\(footer)")
            #expect(footer.hasSuffix("cancel)") || footer.hasSuffix("cancels)"), "\(width): \(footer)")
        }
    }
}

/// The KV view's first line is of now ("now: mean 64%  fullest group 97%") but ended with
/// "written peak 91%", the run's peak since start, with nothing saying so.
@Suite struct KVPeakScopeTests {
    @Test(arguments: [(80, 24), (81, 25), (100, 30), (132, 43), (200, 60)])
    func thePeakSaysItIsTheRuns(size: (Int, Int)) throws {
        let lines = renderFixture(.kvCache, width: size.0, height: size.1)
        let row = try #require(lines.first { $0.contains("now: mean") })
        #expect(row.contains("peak since start 91%") || row.contains("peak so far 91%"), "\(size): \(row)")
    }
}

/// The Requests view's lower box lists a few recent rows under the run's counts
/// ("Recently finished · completed 13.7k · failed 0"), read as the list's size.
@Suite struct RecentCountsScopeTests {
    @Test(arguments: [(80, 24), (100, 30), (200, 60)])
    func theRunsCountsSayTheirScope(size: (Int, Int)) throws {
        let lines = renderFixture(.requests, width: size.0, height: size.1)
        let title = try #require(lines.first { $0.contains("completed ") && $0.contains("rejected ") })
        #expect(title.contains("since start: completed") || title.contains("so far: completed"), "\(size): \(title)")
        #expect(title.hasSuffix("┐"), "\(size): \(title)")
    }
}

/// A key that does nothing in the view (w outside Latency, s outside Requests, a stray letter)
/// said nothing: the footer stayed as it was, so a dead key looked like a slow console.
@Suite struct UnusedKeyTests {
    @Test func aKeyThatDoesNothingHereSaysWhereItActs() {
        let link = FakeEngineLink()
        for (key, view, says) in [
            (Key.char("w"), ConsoleView.pod, "Latency (4)"), (.char("v"), .latency, "Events (6)"),
            (.char("s"), .events, "Requests (5)"), (.enter, .pod, "Requests (5)"), (.char("x"), .pod, "no key x"),
        ] {
            var state = primedState()
            state.view = view
            let after = drive(state, link, keys: [key])
            #expect(after.status?.text.contains(says) == true, "\(key) in \(view): \(String(describing: after.status))")
            #expect(after.view == view && link.sentCommands.isEmpty, "\(key) in \(view) did something")
            let footer = ConsoleScreen.render(after, SnapshotFixtures.superpod, theme: .builtinDark, width: 80, height: 24).lines[23]
            #expect(footer.contains(says), "\(footer)")
        }
        // The keys of the view still act, with no such note.
        var latency = primedState()
        latency.view = .latency
        let windowed = drive(latency, link, keys: [.char("w")])
        #expect(windowed.status == nil && windowed.latencyWindow != latency.latencyWindow)
    }
}

/// A live NPU's HBM line ended "· no alarm colour: KV below", which read as a sentence cut off
/// at the edge (KV below what?). It names the row that carries the colour, or is left out.
@Suite struct HBMNoteTests {
    @Test(arguments: [(80, 24), (100, 30), (120, 40), (200, 60)])
    func theNoteNamesTheKVRow(size: (Int, Int)) throws {
        let lines = renderFixture(.pod, width: size.0, height: size.1) { $0.selectedNPU = 0 }
        let hbm = try #require(lines.first { $0.contains("│ HBM ") })
        #expect(!hbm.contains("KV below"), "\(size): \(hbm)")
        if hbm.contains("alarm") { #expect(hbm.contains("· alarm colour on the KV row"), "\(size): \(hbm)") }
    }
}

/// At ≤120 columns the header wrote "TTFT 1.82/2s  TPOT 36.4/35ms": the percentile was named
/// only in the help, so the figure could be a mean or a median as well. The short and tight
/// forms now say "TTFT99"/"TPOT99" as the long one does; only when even the tight line would
/// not fit does the "99" give way, before any figure is dropped.
@Suite struct HeaderPercentileTests {
    /// The demo's usual load: hundreds running, a short queue, no node draining.
    static var usual: Snapshot {
        var s = SnapshotFixtures.superpod
        s.requests.running = 900
        s.requests.waiting = 12
        s.drainingNodes = []
        return s
    }

    @Test(arguments: [80, 81, 90, 100, 110, 120, 121, 160, 200])
    func theShortHeaderNamesThePercentile(width: Int) {
        let line = HeaderScopeTests.vitals(Self.usual, width: width, height: 30)
        #expect(line.count <= width, "\(width): \(line)")
        #expect(line.contains("TTFT99 ") && line.contains("TPOT99 "), "\(width): \(line)")
        #expect(line.hasSuffix("SLO 96%"), "\(width): \(line)")
    }

    /// The busiest fixture (24.3k running, a node drained and one draining): every figure stays
    /// and so does the percentile, nothing past the edge. At 80 columns the "99" used to give
    /// way ("so far: TTFT 1.82/2s" beside a p99 figure); the running count is compacted instead
    /// ("r/w 24k/812").
    @Test(arguments: [80, 81, 82, 83, 84, 90, 100, 120])
    func aFullLineKeepsEveryFigureFirst(width: Int) {
        let line = HeaderScopeTests.vitals(SnapshotFixtures.superpod, width: width, height: 30)
        #expect(line.count <= width, "\(width): \(line)")
        #expect(line.contains("⊘1 ~1") || line.contains("drained 1 draining 1"), "\(width): \(line)")
        #expect(line.hasSuffix("SLO 96%"), "\(width): \(line)")
        #expect(line.contains("TTFT99 ") && line.contains("TPOT99 "), "\(width): \(line)")
    }

    /// The compact form rounds a latency only where the rounded figure keeps its side of the
    /// SLO: 36.4 ms over a 35 ms SLO may read "36/35ms", 35.4 ms may not read "35/35ms".
    @Test func compactLatenciesKeepTheirSideOfTheSLO() {
        for (tpot, shown) in [(36.4, "TPOT99 36/35ms"), (35.4, "TPOT99 35.4/35ms"), (34.6, "TPOT99 34.6/35ms"), (12.3, "TPOT99 12/35ms")] {
            var s = SnapshotFixtures.superpod
            s.latency.tpotP99Ms = tpot
            let line = HeaderScopeTests.vitals(s, width: 80, height: 24)
            #expect(line.contains(shown) && line.contains("TTFT99 "), "\(tpot): \(line)")
            #expect(line.count <= 80, "\(line)")
        }
    }

    /// Figures so wide that not even the compact line fits at 80 columns: whole fields go
    /// (the drains first), never the "99" that says what the latency figures are.
    @Test func anOverfullLineDropsFieldsNotThePercentile() {
        var s = SnapshotFixtures.superpod
        s.requests.running = 243_000
        s.requests.waiting = 81_200
        s.latency.ttftP99Ms = 123_456
        s.latency.tpotP99Ms = 1_234.5
        s.activeFaults += (10..<22).map { FaultStatus(id: $0, description: "npu \($0) down", injectedAt: 600) }
        let line = HeaderScopeTests.vitals(s, width: 80, height: 24)
        #expect(line.count <= 80, "\(line)")
        for label in ["TTFT", "TPOT"] {
            // A latency label on the line names its percentile.
            for range in line.ranges(of: label) { #expect(line[range.upperBound...].hasPrefix("99 "), "\(line)") }
        }
        #expect(line.contains("TTFT99 ") && line.contains("TPOT99 "), "\(line)")
    }
}

/// The SLOs are written as the operator gave them. The header rounded them to whole units:
/// `--slo-tpot-ms 35.5` read "/36ms", so a p99 of 35.7 ms stood red against a target it looked
/// under, and `--slo-ttft-ms 2550` read "/2.5s" (one decimal). The Latency view's "▲ SLO" label
/// wrote 150.5 ms as "151ms".
@Suite struct SLOAsGivenTests {
    static func snapshot(ttftMs: Double, tpotMs: Double, tpotP99Ms: Double) -> Snapshot {
        var s = SnapshotFixtures.superpod
        s.slo.ttftMs = ttftMs
        s.slo.tpotMs = tpotMs
        s.latency.tpotP99Ms = tpotP99Ms
        return s
    }

    static func render(_ s: Snapshot, view: ConsoleView, width: Int, height: Int) -> [String] {
        var state = ConsoleUpdate.update(ConsoleState(width: width, height: height), .tick(s)).0
        state.view = view
        return ConsoleScreen.render(state, s, theme: .builtinDark, width: width, height: height).lines
    }

    @Test(arguments: HeaderScopeTests.sizes)
    func theHeaderWritesTheSLOsWhole(size: (Int, Int)) {
        let s = Self.snapshot(ttftMs: 2550, tpotMs: 35.5, tpotP99Ms: 35.7)
        let line = Self.render(s, view: .pod, width: size.0, height: size.1)[1]
        #expect(line.contains("/35.5ms"), "\(size): \(line)")
        #expect(line.contains("/2.55s") || line.contains("/2550ms"), "\(size): \(line)")
        #expect(line.count <= size.0, "\(size): \(line)")
    }

    @Test func wholeSLOsKeepTheirShortForm() {
        let wide = Self.render(SnapshotFixtures.superpod, view: .pod, width: 200, height: 60)[1]
        #expect(wide.contains("/35ms"), "\(wide)")
        #expect(wide.contains("/2000ms"), "\(wide)")
        let narrow = Self.render(SnapshotFixtures.superpod, view: .pod, width: 80, height: 24)[1]
        #expect(narrow.contains("/35ms"), "\(narrow)")
        #expect(narrow.contains("/2s"), "\(narrow)")
    }

    @Test func theLatencyViewsSLOLabelIsTheTargetAsGiven() {
        let s = Self.snapshot(ttftMs: 2555, tpotMs: 150.5, tpotP99Ms: 140)
        let screen = Self.render(s, view: .latency, width: 200, height: 60).joined(separator: "\n")
        #expect(screen.contains("SLO 150.5ms"), "\(screen)")
        #expect(screen.contains("SLO 2.555s"), "\(screen)")
    }

    @Test func exactWritesTheFewestDecimalsThatHoldTheValue() {
        #expect(Format.exact(35) == "35")
        #expect(Format.exact(35.5) == "35.5")
        #expect(Format.exact(2.55, maxDigits: 4) == "2.55")
        #expect(Format.exact(35.123456) == "35.123")
        #expect(Format.target(35) == "35.0ms" && Format.target(2000) == "2.00s" && Format.target(150) == "150ms")
        #expect(Format.target(12_345) == "12.345s" && Format.target(0.25) == "0.25ms")
    }
}
