import ServingEngine
import Testing
import XDSTestSupport

@testable import Console

/// "Render this snapshot at this size, expect these lines" (style.md, ratatui-style).
@Suite struct ViewRenderTests {
    static let header80 = [
        spread(" xds  superpod · deepseek-r1 · ascend-910c", "150.0 req/s   ▶ 1×   sim 0:10:42", width: 79),
        // Drained and draining nodes counted apart, shortened to the grid's glyphs at 80 columns.
        // Labels shorten (then the gaps) before anything is dropped: every vital at 80 columns.
        " 182k tok/s r/w 24.3k/812 ⚠1 ⊘1 ~1 so far: TTFT99 1.8/2s TPOT99 36/35ms SLO 96%",
        "  1 Pod   2 Experts   3 KV cache   4 Latency   5 Requests   6 Events",
    ]
    static let footer80 = "q quit ? help : cmd ␣ pause +- speed d/u drain f fault r rebal t theme hjkl move"

    static let header200 = [
        spread(
            " xds  superpod · deepseek-r1 · ascend-910c", "150.0 req/s   ▶ 1×   sim 0:10:42", width: 199),
        " 182.4k tok/s  run 24.3k  wait 812  faults 1  drained 1 draining 1  since start: TTFT99 1820/2000ms  TPOT99 36.4/35ms  SLO 96%",
        spread(
            "  1 Pod   2 Experts   3 KV cache   4 Latency   5 Requests   6 Events", "theme dark", width: 199),
    ]
    static let footer200 =
        "q quit  ? help  : cmd  1-6 views  space pause  +/- speed  hjkl move  d/u drain  f fault  r rebalance  t theme"

    @Test(arguments: ConsoleView.allCases)
    func headerTabsAndFooterAt80x24(view: ConsoleView) {
        let lines = renderFixture(view)
        #expect(lines.count == 24)
        #expect(Array(lines[0..<3]) == Self.header80)
        // A view with keys of its own takes the tight form, and `?more` says the help has the
        // keys that did not fit (the short form was cut at its end without saying so).
        let footer =
            switch view {
            case .requests: "q quit ?more :cmd /filter ⏎detail s sort ␣pause +-speed d drain f fault r rebal"
            case .events: "q quit ?more :cmd /filter v level ⏎detail ␣pause +-speed d drain f fault r rebal"
            case .experts: "q quit ?more :cmd /filter ␣pause +-speed d drain f fault r rebal hjkl move"
            // hjkl moves nothing in the KV and Latency views, and is not offered there
            // (FooterOffersTests); the Latency view's keys then fit the short form.
            case .latency: "q quit ? help : cmd w window ␣ pause +- speed d/u drain f fault r rebal t theme"
            case .kvCache: "q quit ? help : cmd ␣ pause +- speed d/u drain f fault r rebal t theme"
            default: Self.footer80
            }
        #expect(lines[23] == footer)
        #expect(lines.allSatisfy { $0.count <= 80 })
    }

    @Test(arguments: ConsoleView.allCases)
    func headerTabsAndFooterAt200x60(view: ConsoleView) {
        let lines = renderFixture(view, width: 200, height: 60)
        #expect(lines.count == 60)
        #expect(Array(lines[0..<3]) == Self.header200)
        if ![.requests, .events, .experts, .latency, .kvCache].contains(view) { #expect(lines[59] == Self.footer200) }
        if view == .kvCache { #expect(lines[59] == Self.footer200.replacingOccurrences(of: "hjkl move  ", with: "")) }
        // Every view uses the extra space: its frame reaches the right edge and the bottom.
        #expect(lines[3].count == 200)
        #expect(lines[58].hasPrefix("└") && lines[58].hasSuffix("┘"))
    }

    @Test func podViewAt80x24() {
        let lines = renderFixture(.pod)
        #expect(
            lines[3] == "┌ Pod · 48×8 NPUs · colour = load (prefill groups busy, decode KV held) ───────┐")
        #expect(
            lines[4] == "│  00PPPPPPPP   08PPPPPPPP   16DDDDDDDD   24DDDDDDDD   32DDDDDDDD   40········ │")
        #expect(
            lines[5] == "│  01PPPPPPPP   09PPPPPPPP  X17DDDDXDDD   25DDDDDDDD   33DDDDDDDD   41········ │")
        #expect(
            lines[8] == "│  04PPPPPPPP   12PPPPPPPP  ~20DDDDDDDD   28DDDDDDDD   36········   44········ │")
        #expect(
            lines[9] == "│ ⊘05PPPPPPPP   13PPPPPPPP   21DDDDDDDD   29DDDDDDDD   37········   45········ │")
        #expect(
            lines[12] == "│ P pre D dec ·spare X dead ↓slow #HBM ≠link                                   │")
        #expect(
            lines[13] == "│ load ■idle ■<70% ok ■<90% high ■≥90% crit ⊘drained ~draining                 │")
        #expect(
            lines[15] == "┌ NPU 0 · node 0 ──────────────────────────────────────────────────────────────┐")
        #expect(
            lines[16] == "│ role prefill  instance prefill-0  requests 8                                 │")
        #expect(
            lines[18] == "│ util  ████████████████···· 80% TE busy · 8/8 groups busy                     │")
        #expect(
            lines[19] == "│ HBM   █████████████······· 82.9/128.0 GB weights + KV in use                 │")
    }

    @Test func podDetailFollowsTheSelection() {
        let lines = renderFixture(.pod) { $0.selectedNPU = 140 }
        #expect(lines[15].hasPrefix("┌ NPU 140 · node 17 ─"))
        #expect(lines[16].hasPrefix("│ X dead  role decode  instance decode-0  requests"))
        // NPU 140 is dead: its experts are not served there (DeadNPUDetailTests).
        #expect(lines[17].hasPrefix("│ DP groups 24, 25 of 320  experts 24, 25 not served here"))
        #expect(lines[21].hasPrefix("│ node 17 faulted  util"))
    }

    @Test func podViewAt200x60PutsDetailBesideTheGrid() {
        let lines = renderFixture(.pod, width: 200, height: 60)
        #expect(
            lines[5].hasPrefix(
                "│  01 P P P P P P P P   09 P P P P P P P P  X17 D D D D X D D D   25 D D D D D D D D"))
        #expect(lines[3].contains("┐┌ NPU 0 · node 0 ─"))
        #expect(lines[16].hasPrefix("│ instance     kind       NPUs  queued  running    KV     step"))
        #expect(lines[25].hasPrefix("│ decode-0     decode      160     310    24.3k   68%   88.5ms"))
    }

    @Test func expertsView() {
        let lines = renderFixture(.experts)
        #expect(
            lines[3] == "┌ Expert heat · 58 layers × 256 experts · 4 per column, max ───────────────────┐")
        #expect(lines[4].hasPrefix("│ L00▶▀▀▀▀"))
        #expect(
            lines[12] == "│     ▲ L0 E0 1.26× mean           colour ≤0.1× ████████ 6.20× mean (max), log │")
        #expect(
            lines[14] == "┌ Die load · 320 expert dies ──────────────────┐┌ Hottest (× mean) · / filter ─┐")
        #expect(lines[15].hasSuffix("││ L03 E17     6.20×            │"))
        #expect(
            lines[16] == "│ layer mean: max 1.42× min 0.80× (8/column)   ││ L12 E45     4.80×            │")
        #expect(lines[17].hasPrefix("│ imbalance (max/mean) 1.41 "))
        #expect(lines[18].hasPrefix("│ rebalances 3  rebalancing · loading 3 dies"))
        let wide = renderFixture(.experts, width: 200, height: 60)
        #expect(wide[3].hasPrefix("┌ Expert heat · 58 layers × 256 experts · 2 per column, max ─"))
    }

    @Test func kvCacheView() {
        let lines = renderFixture(.kvCache)
        #expect(
            lines[3] == "┌ Decode DP groups · 320 (one per die) · KV held + reserved ── height ▁0…█100% ┐")
        // Side by side, one scope (DP groups, held + reserved, now); the written share's peak,
        // another scope, says so (in full where it fits, shortened at 80 columns).
        #expect(
            lines[4] == "│ now: mean 64%  fullest group 97%  full (≥95%) 2  written peak so far 91%     │")
        #expect(lines[5].hasPrefix("│   0 ▅▇▇▅"))
        #expect(lines[9].hasPrefix("│ 256 "))
        #expect(
            lines[11] == "┌ Prefill TEs · KV held ───────────────┐┌ Prefix cache · DRAM pool · transfers ┐")
        #expect(
            lines[14] == "│ prefill-2  ██▍·················  12% ││ KV written ██████▍··· 64% of decode  │")
        #expect(
            lines[15] == "│ prefill-3  █████████···········  45% ││ transfers queued 37  in progress 212 │")
    }

    @Test func latencyView() {
        let lines = renderFixture(.latency)
        #expect(
            lines[3] == "┌ TTFT · all · lin ──────┐┌ TPOT · all · lin ──────┐┌ E2E · all · lin ─────────┐")
        #expect(
            lines[10] == "│ ┬─┬─────┬▲─────────┤   ││ ┬─┬─────────▲──────┤   ││ ┬─┬─────┬──────────┤     │")
        #expect(lines[11] == "│ 0 400ms 1.60s  4.00s   ││ 0 14.0ms      50.0ms   ││ 0 12.0s 48.0s 120.0s     │")
        #expect(
            lines[12] == "│ p50 640ms  p90 1.31s   ││ p50 27.5ms  p90 32.1ms ││ p50 29.8s  p90 51.2s     │")
        #expect(
            lines[13] == "│ p99 1.82s  ▲ SLO 2.00s ││ p99 36.4ms ▲SLO 35.0ms ││ p99 88.4s                │")
        #expect(
            lines[15] == "┌ Over time · last 3:05 min · 1 point/5 s · min…max · no completion: ⋅ ────────┐")
        // The newest interval's p99 beside the line (the header has the one since start).
        #expect(lines[16].hasPrefix("│ TTFT p99    1.91s  ▅"))  // the line ends at the value beside it
        #expect(lines[16].hasSuffix(" 1.42s…2.17s         │"))
    }

    @Test func requestsViewSortsAndShowsReasons() {
        let lines = renderFixture(.requests)
        #expect(
            lines[3] == "┌ In flight · 25.1k (snapshot lists 40) · s/S sort · Enter · / filter ─────────┐")
        #expect(
            lines[4] == "│ id       stage        age▼  prompt     gen/out     TTFT where                │")
        #expect(
            lines[5] == "│ #96000   decode      60.0s    5575    650/1952    500ms decode-0/dp0         │")
        let byStage = renderFixture(.requests) { $0.requestSort = .stage }
        #expect(byStage[5].hasPrefix("│ #96148   queued "))
        let tall = renderFixture(.requests, width: 100, height: 60)
        #expect(tall.contains { $0.contains("failed") && $0.contains("NPU 140 lost during decode") })
        #expect(tall.contains { $0.contains("rejected") && $0.contains("prefill queue full (429)") })
    }

    @Test func eventsViewNewestFirstAndFiltered() {
        let lines = renderFixture(.events)
        #expect(
            lines[3] == "┌ Events · 13 of 13 · newest first · level all (v) · / filter · Enter full ────┐")
        #expect(
            lines[4] == "│  0:10:40.1 info  rebalance       expert rebalance 3 started: loading dies 1… │")
        #expect(
            lines[10] == "│  0:09:58.3 ERROR faultDetected   NPU 140 heartbeat missed (node 17)          │")
        let filtered = renderFixture(.events) { $0.eventFilter = "drain" }
        // Whole at 80 columns: "newest first" gives way before the filter's note is cut.
        #expect(filtered[3] == "┌ Events · 3 of 13 · level all (v) · filter \"drain\" (Esc clears) · Enter full ─┐")
        #expect(
            filtered[5] == "│  0:06:52.7 info  drain           node 5 drained: prefill-2 running on 8 NPUs │")
    }

    @Test func tooSmallTerminalWrapsItsMessage() {
        for (w, h) in [(79, 24), (80, 23), (40, 10)] {
            var state = ConsoleState(width: w, height: h)
            state.view = .experts
            let lines = ConsoleScreen.render(
                state, SnapshotFixtures.superpod, theme: .builtinDark, width: w, height: h
            ).lines.map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            #expect(
                lines.joined(separator: " ")
                    == "Terminal \(w)×\(h) is too small: the console needs at least 80×24. Until then keys do nothing; q quits.")
        }
    }

    /// At 20×5 the message kept only "Terminal 20×5 is too small: the console needs at least
    /// 80×24." and lost "q quits": every shorter form dropped the way out first. Down to 7×2
    /// the screen says both the size needed and the key that quits (Ctrl-C with a prompt open),
    /// and at one row the key alone.
    @Test func theSmallestTerminalsStillSayHowToQuit() {
        let link = FakeEngineLink()
        let prompted = drive(primedState(), link, keys: typed(":dr"))
        for (base, key) in [(primedState(), "q quits"), (prompted, "Ctrl-C quits")] {
            for w in 1...79 {
                for h in 1...23 {
                    let state = ConsoleUpdate.update(base, .resize(width: w, height: h)).0
                    let text = ConsoleScreen.render(state, SnapshotFixtures.superpod, theme: .builtinDark, width: w, height: h)
                        .lines.map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }.joined(separator: " ")
                    if w >= key.count || (h >= 2 && w >= 6) { #expect(text.contains(key), "\(w)×\(h): \(text)") }
                    if h >= 2 && w >= key.count { #expect(text.contains("80×24"), "\(w)×\(h): \(text)") }
                }
            }
        }
        let at20x5 = ConsoleScreen.render(primedState(width: 20, height: 5), SnapshotFixtures.superpod, theme: .builtinDark,
                                          width: 20, height: 5).lines
        #expect(at20x5 == ["Terminal 20×5 is too", "small: the console", "needs at least", "80×24; q quits.", ""],
                "\(at20x5)")
    }

    @Test func helpOverlayNamesEveryViewAndTheLogFile() {
        let lines = renderFixture(.pod) {
            $0.showHelp = true
            $0.logPath = "/tmp/xds-console.log"
        }
        let text = lines.joined(separator: "\n")
        #expect(text.contains("Help 1/2 · keys · Tab : commands · any other key closes"))
        for view in ConsoleView.allCases where view != .kvCache { #expect(text.contains("│ \(view.title)")) }
        #expect(text.contains("KV cache"))
        #expect(text.contains("log /tmp/xds-console.log"))
    }

    @Test func faultMenuIsGreyedWithoutTheCapability() {
        let available = renderFixture(.pod) { $0.faultMenu = FaultMenu(npu: 37) }.joined(separator: "\n")
        #expect(available.contains("Fault · NPU 37 · node 4"))
        #expect(available.contains(" 1  fail die 74"))
        #expect(available.contains("1-6 or Enter, then y injects"))
        let greyed = renderFixture(.pod) {
            $0.capabilities = [.drain]
            $0.faultMenu = FaultMenu(npu: 37)
        }.joined(separator: "\n")
        #expect(greyed.contains("fault injection is not available"))
    }
}

/// Whatever the engine publishes, the console draws something and never traps.
@Suite struct RobustRenderTests {
    static func hostile() -> Snapshot {
        var s = SnapshotFixtures.superpod
        s.simTime = .infinity
        s.outputTokensPerSecond = .nan
        s.latency.ttftP99Ms = 1e300
        s.kv.decodeGroups = [.nan, -3, 7, .infinity]
        s.experts.heat = [[1, .nan], [2]]  // ragged
        s.experts.dieLoad = [.nan, 1, .infinity]
        s.series.kvUsage = [.nan, 0.5, -.infinity]
        s.histograms.ttft = HistogramBins(upperBoundsMs: [10, 20, 30], counts: [1])
        s.npus[0].utilization = .nan
        return s
    }

    @Test(arguments: ConsoleView.allCases)
    func emptyAndHostileSnapshotsRender(view: ConsoleView) {
        for snapshot in [Snapshot(), Self.hostile()] {
            for (w, h) in [(80, 24), (200, 60), (81, 25)] {
                var state = ConsoleUpdate.update(ConsoleState(width: w, height: h), .tick(snapshot)).0
                state.view = view
                state.selectedExpert = 1
                state.selectedLayer = 1
                let frame = ConsoleScreen.render(state, snapshot, theme: .builtinDark, width: w, height: h)
                #expect(frame.lines[2].hasPrefix("  1 Pod"))
            }
        }
    }
}

@Test func podViewAt200x60ListsFaultsAndDrains() {
    let lines = renderFixture(.pod, width: 200, height: 60)
    #expect(
        lines[17].hasSuffix("┌ Faults · drains ─────────────────────────────────────────────────────┐"))
    #expect(
        lines[18].hasSuffix("│ ⊘ drained node 5  ~ draining node 20                                 │"))
    #expect(
        lines[19].hasSuffix("│ #1 detected  NPU 140 lost (node 17)                                  │"))
    #expect(
        lines[20].hasSuffix("│  at 0:09:58 · 0 re-prefilled · 0 failed                              │"))
}
