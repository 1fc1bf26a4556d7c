import PodModel
import ServingEngine
import Testing
import XDSTestSupport

@testable import Console

/// Text keeps at least one blank before a panel's right border, in every view and at every
/// size: "0.6% of decode│" read as if the border were part of the figure, and a text that ends
/// at the border cannot be told from one the border cut.
@Suite(.cpuBound) struct BorderPaddingTests {
    static let sizes = [(80, 24), (100, 30), (120, 40), (200, 60)]

    /// Every place in `lines` where text touches a vertical border from inside: a character
    /// that is neither blank nor box drawing directly left of a `│` whose right side is a blank,
    /// another border or the screen edge (so the `│` closes a panel).
    static func flushAgainstBorder(_ lines: [String]) -> [String] {
        let box: Set<Character> = ["│", "┌", "┐", "└", "┘", "├", "┤", "┬", "┴", "┼", "─", " "]
        var found: [String] = []
        for (y, text) in lines.enumerated() {
            let line = Array(text)
            for x in 1..<max(1, line.count) where line[x] == "│" && !box.contains(line[x - 1]) {
                let after: Character = x + 1 < line.count ? line[x + 1] : " "
                guard after == " " || after == "│" || x + 1 == line.count else { continue }
                found.append("row \(y): …\(String(line[max(0, x - 30)...x]))")
            }
        }
        return found
    }

    static func render(_ view: ConsoleView, _ s: Snapshot, width: Int, height: Int) -> [String] {
        var state = ConsoleUpdate.update(ConsoleState(width: width, height: height), .tick(s)).0
        state.view = view
        return ConsoleScreen.render(state, s, theme: .builtinDark, width: width, height: height).lines
    }

    /// The engine at 400 req/s for half a minute: queues in the tens of thousands, KV near full,
    /// every latency past its SLO (the review's `--rate 400 --mix reasoning`).
    static let saturated: Snapshot = {
        let engine = try! ServingEngine(configuration: EngineConfiguration(deployment: .superpod, seed: 1, syntheticRate: 400))
        engine.run(until: 30)
        return engine.snapshot()
    }()

    /// The review's left-open defect: at 80×24 the pool panel's "KV written" note ("0.6% of
    /// decode", 14 columns) ended in the border's column, at every width, and with thousands of
    /// transfers queued the transfers line ran into the border too.
    @Test(arguments: sizes)
    func kvPoolPanelKeepsABlankBeforeItsBorder(size: (Int, Int)) {
        var s = SnapshotFixtures.superpod
        s.kv.decodeUsage = 0.006
        s.kv.transferQueue = 12777
        s.kv.transfersInProgress = 212
        let lines = Self.render(.kvCache, s, width: size.0, height: size.1)
        #expect(Self.flushAgainstBorder(lines).isEmpty, "\(Self.flushAgainstBorder(lines))")
        #expect(lines.contains { $0.contains("0.6% of decode │") }, "\(lines.joined(separator: "\n"))")
        // Shortened where the panel is narrow, never cut: both counts stay whole.
        #expect(lines.contains { $0.contains("12777") && $0.contains(" 212 ") }, "\(lines.joined(separator: "\n"))")
    }

    /// Event rows were cut to end in the border's column ("…loading dies 17…│", "(×33)│"),
    /// and a message that just fitted ended there too ("migrated to spare│"); the Pod view's
    /// recent events wrapped to the same edge ("287 dies│" at 200×60).
    @Test(arguments: sizes)
    func eventRowsKeepABlankBeforeTheBorder(size: (Int, Int)) {
        var s = SnapshotFixtures.superpod
        // A rebalance line as long as the review's, folded from two.
        let long = EngineEvent(
            time: 120, kind: .rebalance,
            message: "decode-0: rebalance started (greedy): collected-load imbalance 1.30 → 1.16 planned; 287 dies get new experts")
        s.events.append(contentsOf: [long, long])
        for view in [ConsoleView.events, .pod] {
            let lines = Self.render(view, s, width: size.0, height: size.1)
            #expect(Self.flushAgainstBorder(lines).isEmpty, "\(view): \(Self.flushAgainstBorder(lines))")
        }
    }

    /// The latency panels' p99 line and y-scale line were let run to the border: "p99 36.4ms
    /// ▲ SLO 35.0ms│" at 80×24, "tallest bar 2077 of n 6644 · bins 1ms│" at 120×40 under load.
    @Test(arguments: sizes)
    func latencyPanelsKeepABlankBeforeTheBorder(size: (Int, Int)) {
        for s in [SnapshotFixtures.superpod, Self.saturated] {
            for mono in [false, true] {
                var state = ConsoleUpdate.update(ConsoleState(width: size.0, height: size.1), .tick(s)).0
                state.view = .latency
                let lines = ConsoleScreen.render(
                    state, s, theme: mono ? .builtinMono : .builtinDark, width: size.0, height: size.1
                ).lines
                #expect(Self.flushAgainstBorder(lines).isEmpty, "mono \(mono): \(Self.flushAgainstBorder(lines))")
            }
        }
    }

    /// The Experts view's captions chosen by ``CellBuffer/put(firstFitting:x:y:style:clip:)``
    /// took a form that ended in the border's column: "(5 dies per column)│" at 120×40.
    @Test(arguments: sizes)
    func expertCaptionsKeepABlankBeforeTheBorder(size: (Int, Int)) {
        let lines = Self.render(.experts, SnapshotFixtures.superpod, width: size.0, height: size.1)
        #expect(Self.flushAgainstBorder(lines).isEmpty, "\(Self.flushAgainstBorder(lines))")
    }

    /// A dense model's Die load panel said "none: llama-3-70b is a dense model (no experts" at
    /// 80×24, cut by the border with no mark; it wraps instead, every word kept.
    @Test(arguments: sizes)
    func denseModelNoteIsWholeAtEverySize(size: (Int, Int)) {
        let lines = Self.render(.experts, OtherDeploymentRenderTests.snapshot, width: size.0, height: size.1)
        let text = lines.joined(separator: "\n")
        #expect(Self.flushAgainstBorder(lines).isEmpty, "\(Self.flushAgainstBorder(lines))")
        #expect(text.contains("no EPLB)"), "\(text)")
    }

    /// The Pod view's NPU panel: its node line took the key hint where it ended in the border's
    /// column ("node 0 in service  util 100%  requests 1074  d/u drain  f fault│" at 120×40
    /// under load). Swept over request counts and loads, as its length follows them.
    @Test(arguments: sizes)
    func npuPanelLinesKeepABlankBeforeTheBorder(size: (Int, Int)) {
        for requests in [1, 12, 107, 1074, 10740] {
            for util in [0.03, 0.5, 1.0] {
                var s = SnapshotFixtures.superpod
                for i in 0..<8 {
                    s.npus[i].utilization = util
                    s.npus[i].requestsInFlight = i == 0 ? requests : 0
                }
                let lines = Self.render(.pod, s, width: size.0, height: size.1)
                let bad = Self.flushAgainstBorder(lines)
                #expect(bad.isEmpty, "requests \(requests) util \(util): \(bad)")
            }
        }
    }

    /// Every view at every size, on the fixture, the fixture with faults and drains, the engine
    /// under load and a GPU deployment of a dense model, dark and monochrome.
    @Test(arguments: sizes)
    func everyViewKeepsABlankBeforeEachBorder(size: (Int, Int)) {
        let snapshots = [
            ("fixture", SnapshotFixtures.superpod), ("faulted", ReviewRecheckTests.faulted), ("saturated", Self.saturated),
            ("colocated", OtherDeploymentRenderTests.snapshot),
        ]
        for (name, s) in snapshots {
            for view in ConsoleView.allCases {
                for theme in [Theme.builtinDark, .builtinMono] {
                    var state = ConsoleUpdate.update(ConsoleState(width: size.0, height: size.1), .tick(s)).0
                    state.view = view
                    let lines = ConsoleScreen.render(state, s, theme: theme, width: size.0, height: size.1).lines
                    let bad = Self.flushAgainstBorder(lines)
                    #expect(bad.isEmpty, "\(name) \(view) mono \(theme.monochrome): \(bad)")
                }
            }
        }
    }

    /// The boxes drawn over a view (help, both pages; the fault menu; a request's and an
    /// event's detail; a what-if result), each drawn alone on a blank screen so only its own
    /// text meets its own border.
    @Test(arguments: sizes)
    func everyOverlayKeepsABlankBeforeItsBorder(size: (Int, Int)) {
        let (w, h) = size
        let s = ReviewRecheckTests.faulted
        let state = ConsoleUpdate.update(ConsoleState(width: w, height: h), .tick(s)).0
        var boxes: [(String, (inout CellBuffer) -> Void)] = []
        for page in [0, 1] {
            var st = state
            st.showHelp = true
            st.helpPage = page
            boxes.append(("help \(page)", { Overlays.help(&$0, st, .builtinDark) }))
        }
        for npu in [0, 163, 300] {
            boxes.append(("fault menu \(npu)", { Overlays.faultMenu(&$0, FaultMenu(npu: npu), state, s) }))
        }
        for e in s.events {
            boxes.append(("event \(e.message.prefix(20))", { DetailOverlays.event(&$0, e, state, s) }))
        }
        for r in s.inFlight.prefix(5) {
            boxes.append(("request \(r.id)", { DetailOverlays.request(&$0, r.id, state, s) }))
        }
        var preview = PreviewOverlay(command: "drain node 20", line: "preview drain node 20 for 10m", askedAt: 0)
        for phase in [PreviewOverlay.Phase.computing(progress: 0.4), .ready(PreviewOverlayTests.result(lostWith: 3))] {
            preview.phase = phase
            let p = preview
            boxes.append(("preview", { PreviewOverlayView.draw(&$0, p, state) }))
        }
        for (name, draw) in boxes {
            var b = CellBuffer(width: w, height: h)
            draw(&b)
            let bad = Self.flushAgainstBorder(b.lines)
            #expect(bad.isEmpty, "\(name): \(bad)")
        }
    }

    /// A marked node in the grid's first column drew its marker against the left border
    /// ("│X00 XPP↓PP#P") at every size. Where the grid has a spare column (all but 80 wide) the
    /// marker has a blank before it; at 80 columns, see ``LeftBorderPaddingTests``.
    @Test(arguments: [(100, 30), (120, 40), (160, 45), (200, 60)])
    func aFirstColumnMarkerDoesNotTouchTheLeftBorder(size: (Int, Int)) {
        let lines = Self.render(.pod, ReviewRecheckTests.faulted, width: size.0, height: size.1)
        let layout = PodLayout(width: size.0, height: size.1)
        for node in 0..<8 {
            let row = Array(lines[layout.origin(ofNode: node).y])
            #expect(row[layout.grid.x] == "│" && row[layout.grid.x + 1] == " ", "\(String(row))")
        }
        // The fixture marks node 5 (drained) in the first column.
        let five = lines[layout.origin(ofNode: 5).y]
        #expect(five.hasPrefix("│ ⊘05 "), "\(five)")
        // Mouse hits follow the drawing: a click on node 5's first cell selects NPU 40.
        let (x, y) = layout.origin(ofNode: 5)
        #expect(layout.npu(atX: x + layout.labelWidth, y: y) == 40)
        #expect(Self.flushAgainstBorder(lines).isEmpty)
    }
}
