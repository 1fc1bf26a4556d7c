import Foundation
import ServingEngine
import Testing
import XDSTestSupport

@testable import Console

/// The console review's defects walked again against the console (console-review.md): the ones
/// found still open, each fixed and held here in the rendered cells.
@Suite struct ReviewRecheckTests {
    /// The fixture with NPU 163 dead (listed with the spares, as the engine does after its
    /// replacement), nodes 5 (prefill) and 20 (decode) drained, and faults of three kinds.
    static let faulted: Snapshot = {
        var s = SnapshotFixtures.superpod
        s.activeFaults = [
            FaultStatus(id: 1, description: "fault npu 163 · detected in 2.3 s · recovered in 2.4 s", injectedAt: 22,
                        detectedAt: 24.3, recoveredAt: 24.4),
            FaultStatus(id: 3, description: "straggler die 300 (3× slower) · detected in 0.2 s · kept until healed",
                        injectedAt: 24, detectedAt: 24.2),
            FaultStatus(id: 4, description: "fault hbm die 40 · detected in 0.2 s · recovered in 0.2 s", injectedAt: 25,
                        detectedAt: 25.2, recoveredAt: 25.2),
        ]
        s.npus[163].role = .spare
        s.npus[163].instance = ""
        s.npus[163].experts = []
        s.npus[163].dpGroups = []
        s.npus[163].faulted = true
        s.npus[163].requestsInFlight = 0
        s.drainingNodes = []
        s.drainedNodes = [5, 20]
        for i in 160..<168 { s.npus[i].draining = false }
        return s
    }()

    static func render(
        _ view: ConsoleView, _ s: Snapshot = faulted, width: Int = 80, height: Int = 24,
        _ adjust: (inout ConsoleState) -> Void = { _ in }
    ) -> [String] {
        var state = ConsoleUpdate.update(ConsoleState(width: width, height: height), .tick(s)).0
        state.view = view
        adjust(&state)
        return ConsoleScreen.render(state, s, theme: .builtinDark, width: width, height: height).lines
    }

    /// #5: a dead NPU said "X dead  role spare": fenced hardware is no spare. #4: its node's line
    /// said "faulted" only, hiding that it was drained, beside "util 88%" that a drained node
    /// was not expected to have: its NPUs still hold expert slots every DP group uses.
    @Test func deadNPUIsFencedAndItsNodeSaysFaultedAndDrained() {
        let lines = Self.render(.pod) { $0.selectedNPU = 163 }
        #expect(lines[16] == "│ X dead  role none (fenced)  instance –  requests 0                           │")
        #expect(lines[21].hasPrefix("│ node 20 faulted, ⊘ drained (its experts still serve)  util "), "\(lines[21])")
        // A drained node without experts (prefill) has no such note; a healthy one is in service.
        let prefill = Self.render(.pod) { $0.selectedNPU = 40 }
        #expect(prefill[21].hasPrefix("│ node 5 ⊘ drained  util 0%  requests 0"), "\(prefill[21])")
    }

    /// #3 at 80 columns: the bottom-border ticker spent the line on one fault's detection
    /// times and cut the degraded count and the drained node off ("…kept until healed…").
    /// Where the full texts do not fit, each fault is named by its first part.
    @Test func tickerKeepsDegradedAndDrainsAt80Columns() {
        let lines = Self.render(.experts)
        #expect(lines[22] == "└─ ⚠ #3 straggler die 300 (3× slower) · 2 degraded · ⊘ drained nodes 5,20 ─────┘",
                "\(lines[22])")
        // More faults than fit: counted, the degraded ones and the drains still there.
        let busy = ConsoleScreen.render(
            ConsoleUpdate.update(ConsoleState(width: 80, height: 24), .tick(LimitedTerminalTests.busy)).0,
            LimitedTerminalTests.busy, theme: .builtinDark, width: 80, height: 24
        ).lines
        #expect(busy[22] == "└─ ⚠ 3 faults · 1 degraded · ~ draining node 20 · ⊘ drained node 5 ────────────┘", "\(busy[22])")
        // Where it fits, the whole description.
        let wide = Self.render(.experts, width: 200, height: 55)
        #expect(wide[53].contains("#3 straggler die 300 (3× slower) · detected in 0.2 s · kept until healed · 2 recovered"))
    }

    /// The Faults panel wrapped "recovered in 0.2" / "s": a figure is never parted from its unit.
    @Test func wrapKeepsAFigureWithItsUnit() {
        #expect(DetailOverlays.wrap("fault hbm die 40 · detected in 0.2 s · recovered in 0.2 s", width: 44)
                == ["fault hbm die 40 · detected in 0.2 s ·", "recovered in 0.2 s"])
        #expect(DetailOverlays.wrap("took 12 ms, then 3 s", width: 9) == ["took", "12 ms,", "then 3 s"])
        let lines = Self.render(.pod, width: 120, height: 40)
        #expect(!lines.contains { $0.hasSuffix("│                       s                            │") })
    }

    /// #9: on a wide screen the heat map (whole experts per column) left a third of its panel
    /// blank, 128 of 196 columns at 200×55: the hot list stands beside it and the die load takes
    /// the full width. The hot list is in the text colour: every normal run has experts at 5–30×
    /// the mean (placement answers with replicas), and red at 3× painted the whole list red.
    @Test func heatMapSharesAWideScreenWithTheHotList() throws {
        var state = ConsoleUpdate.update(ConsoleState(width: 200, height: 55), .tick(Self.faulted)).0
        state.view = .experts
        let b = ConsoleScreen.render(state, Self.faulted, theme: .builtinDark, width: 200, height: 55)
        let lines = b.lines
        #expect(lines[3].hasPrefix("┌ Expert heat · 58 layers × 256 experts · 2 per column, max ─"))
        // The map panel ends where its 128 columns do (5 label columns, borders, a blank).
        let corner = try #require(Array(lines[3]).firstIndex(of: "┐"))
        #expect(corner == 135)
        #expect(String(Array(lines[3])[136...]).hasPrefix("┌ Hottest (× mean) · / filter ─"))
        let dies = try #require(lines.firstIndex { $0.hasPrefix("┌ Die load · ") })
        #expect(lines[dies].hasSuffix("┐") && !lines[dies].dropFirst().contains("┌"), "full width: \(lines[dies])")
        let hot = try #require(lines.firstIndex { $0.contains("L03 E17") })
        let x = try #require(Array(lines[hot]).firstIndex(of: "×"))
        #expect(b[x - 1, hot].style == .text)
        // At 120 columns the map fills its panel: the old layout.
        let narrow = Self.render(.experts, width: 120, height: 40)
        #expect(narrow[3].hasSuffix("┐") && !narrow[3].contains("Hottest"))
    }

    /// #8: the pool panel's "decode KV 1%" and the chart "Decode KV use" sat under a top line
    /// whose "mean" is another scope (held + reserved per group); both say they count tokens
    /// written. The chart's y axis fits 1 % data (0…2.0 %), not a 0…5 % floor that left it a
    /// strip along the bottom, and the figures beside it have its precision.
    @Test func kvScopesAreSaidAndTheChartFitsLowUse() throws {
        var s = Self.faulted
        s.series.kvUsage = Array(repeating: 0.012, count: 60)
        s.kv.decodeUsage = 0.012
        let lines = Self.render(.kvCache, s, width: 120, height: 40)
        #expect(lines.contains { $0.contains("│ KV written ") && $0.contains(" 1.2% of decode") }, "\(lines.joined(separator: "\n"))")
        let chart = try #require(lines.firstIndex { $0.contains("Decode KV written (tokens, all decode)") })
        #expect(lines[chart].contains("· y 0…2.0% "), "\(lines[chart])")
        // The top line's figures in the chart's precision: 1.2 %, not "1%" beside a 0…2 % axis.
        #expect(lines[4].contains("tokens written, all decode: now 1.2%"), "\(lines[4])")
        #expect(lines[chart + 1].hasPrefix("│ 2.0%┤"))
    }

    /// #20: attached to a server that never answered, the header read "0 tok/s … faults 0 …
    /// drained 0", an idle healthy pod, and the Pod box "0 nodes × 8 NPUs · colour = load ()".
    @Test func noSnapshotYetShowsDashesNotZeros() {
        var s = Snapshot()
        s.linkStatus = "no answer from http://127.0.0.1:9 (is xds serve running there?) — retrying…"
        let lines = Self.render(.pod, s, width: 120, height: 30)
        #expect(lines[0].hasPrefix(" xds  ⚠ no answer from http://127.0.0.1:9"))
        #expect(lines[0].contains(" – req/s "), "\(lines[0])")
        #expect(lines[1] == " – tok/s  run –  wait –  faults –  drained –  since start: TTFT99 –  TPOT99 –  SLO –")
        #expect(lines[3].hasPrefix("┌ Pod ─"))
        #expect(lines[4].hasPrefix("│ no snapshot from the engine yet (the header says why)"))
    }

    /// #20 again: before the first snapshot the header said "TTFT99 –/2s TPOT99 –/35ms", SLOs the
    /// console had not been told: the empty snapshot's defaults, shown as the server's (a server
    /// run with `--slo-ttft-ms 500` was shown against 2 s). Until the engine answers, the SLOs
    /// are unknown too, at every width; once it has, they show as before.
    @Test func noSnapshotYetClaimsNoSLO() {
        var s = Snapshot()
        s.linkStatus = "no answer from http://127.0.0.1:9 (is xds serve running there?) — retrying…"
        for w in [80, 100, 120, 200] {
            let header = Self.render(.pod, s, width: w, height: 30)[1]
            #expect(header.contains("TTFT99 –") && header.contains("TPOT99 –"), "\(w): \(header)")
            #expect(!header.contains("2000") && !header.contains("/2s") && !header.contains("35ms"), "\(w): \(header)")
        }
        let live = Self.render(.pod, SnapshotFixtures.superpod, width: 200, height: 60)[1]
        #expect(live.contains("/2000ms") && live.contains("/35ms"), "\(live)")
    }

    /// #20 at 80 columns: the link status ran off the header's edge with no sign of the cut,
    /// "(is xds serve running there?) — retryi".
    @Test func aLongLinkStatusIsCutWithAnEllipsis() {
        var s = Snapshot()
        s.linkStatus = "no answer from http://127.0.0.1:9 (is xds serve running there?) — retrying…"
        for w in [80, 100] {
            let header = Self.render(.pod, s, width: w, height: 24)[0]
            #expect(header.hasPrefix(" xds  ⚠ no answer from http://127.0.0.1:9 (is xds serve"), "\(header)")
            #expect(header.count <= w)
            #expect(header.hasSuffix("…") || header.contains("retrying… "), "\(header)")
        }
    }

    /// #20 in the other views: before the first snapshot they drew the empty one as a live pod,
    /// "no MoE layers in this deployment", "no prefill instances", "In flight · 0 (all listed)",
    /// KV "mean 0.0%  fullest group 0.0%".
    @Test(arguments: [ConsoleView.experts, .kvCache, .latency, .requests])
    func noSnapshotYetClaimsNothingInAnyView(view: ConsoleView) {
        var s = Snapshot()
        s.linkStatus = "no answer from http://127.0.0.1:9 (is xds serve running there?) — retrying…"
        for (w, h) in [(80, 24), (200, 60)] {
            let lines = Self.render(view, s, width: w, height: h)
            let text = lines.joined(separator: "\n")
            #expect(lines[3].hasPrefix("┌ \(view.title) ─"), "\(lines[3])")
            #expect(lines[4].hasPrefix("│ no snapshot from the engine yet (the header says why)"), "\(text)")
            for claim in ["no MoE layers", "no prefill instances", "In flight · 0", "0.0%", "0% so far"] {
                #expect(!text.contains(claim), "\(view) at \(w)×\(h): \(claim)")
            }
        }
    }
}
