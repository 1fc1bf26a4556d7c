import Foundation
import ServingEngine
import Testing
import XDSTestSupport

@testable import Console

/// The what-if overlay (issue 16): opened from `:preview`, from `p` at a drain or fault
/// confirmation, and from the fault menu; `a` applies, Esc dismisses; drawn in the cell grid.
@Suite struct PreviewOverlayTests {
    /// A side as the admin API would send it (the report's nested types have no public inits).
    static func side(completed: Int, failed: Int, reasons: String, ttftP99: Double, attainment: Double,
                     peak: Double) -> String {
        """
        {"requests": {"arrived": 90000, "completed": \(completed), "failed": \(failed), "rejected": 0,
                      "in_flight": \(1200 + 90000 - completed - failed), "in_flight_at_start": 1200,
                      "failure_reasons": {\(reasons)}, "rejection_reasons": {}},
         "latency_ms": {"ttft": {"mean": 900, "p50": 800, "p90": 1200, "p99": \(ttftP99)},
                        "tpot": {"mean": 30, "p50": 29, "p90": 33, "p99": 35},
                        "e2e": {"mean": 40000, "p50": 35000, "p90": 60000, "p99": 90000}},
         "slo": {"ttft_ms": 2000, "tpot_ms": 35, "attainment": \(attainment)},
         "throughput": {"output_tokens_per_s": 180000, "output_tokens_per_s_per_npu": 1406,
                        "prefill_tokens_per_s_per_npu": 5000},
         "kv": {"peak_usage": \(peak), "prefix_hit_rate": 0.41}}
        """
    }

    static func result(lostWith: Int = 0) -> PreviewResult {
        let baseline = side(completed: 89_500, failed: 0, reasons: "", ttftP99: 1_500, attainment: 0.97, peak: 0.62)
        let with = side(completed: 89_000, failed: lostWith, reasons: lostWith > 0 ? "\"decode TE down\": \(lostWith)" : "",
                        ttftP99: 2_070, attainment: 0.91, peak: 0.71)
        let json = """
            {"command": "drain node 20", "duration_s": 600, "from_s": 642, "reply": "node 20 drained",
             "wall_seconds": 0.84, "baseline": \(baseline), "with_command": \(with)}
            """
        return try! JSONDecoder().decode(PreviewResult.self, from: Data(json.utf8))
    }

    static func open(_ line: String) -> (ConsoleState, [ConsoleEffect]) {
        var s = primedState()
        s.wallNow = 100
        var effects: [ConsoleEffect] = []
        for key in [Key.char(":")] + typed(line) + [.enter] {
            let (next, more) = ConsoleUpdate.update(s, .key(key))
            s = next
            effects += more
        }
        return (s, effects)
    }

    @Test func previewLineOpensTheOverlayAndAsksTheEngine() {
        let (s, effects) = Self.open("preview drain node 20")
        #expect(effects == [.preview(commandLine: "preview drain node 20 for 10m")])
        #expect(s.preview?.command == "drain node 20")
        #expect(s.preview?.phase == .computing(progress: 0))
    }

    @Test func badPreviewSaysWhyAndOpensNothing() {
        let (s, effects) = Self.open("preview drain node 20 for 5h")
        #expect(effects.isEmpty && s.preview == nil)
        #expect(s.status?.isError == true && s.status?.text.contains("1s to 1h") == true)
    }

    /// `:preview drain node -1` named the grammar's "between 0 and 999999"; `:drain node -1` names
    /// the pod's range (the engine's parse), and so does the preview now, from the snapshot's pod.
    @Test func aBadIndexInAPreviewNamesThePodsRange() {
        for (line, range) in [("preview drain node -1", "; the pod has nodes 0…47"),
                              ("preview fault die x for 1m", "; the pod has dies 0…767")] {
            let (s, effects) = Self.open(line)
            #expect(effects.isEmpty && s.preview == nil && s.status?.isError == true)
            #expect(s.status?.text.hasSuffix(range) == true, "\(s.status?.text ?? "")")
        }
    }

    /// `:preview` alone showed the parser's "e.g. 'preview drain node 20 for 10m'", which a pod
    /// without node 20 (a one-node GPU cluster) then refused. The hint now gives the grammar and
    /// the command words a preview takes, asked of the parsers: not speed, pause or resume.
    @Test func emptyPreviewHintsAtFormsThePreviewTakes() {
        for line in ["preview", "preview   ", "preview for 10m"] {
            let (s, effects) = Self.open(line)
            #expect(effects.isEmpty && s.preview == nil && s.status?.isError == true)
            #expect(s.status?.text == "preview: preview what? preview COMMAND [for DURATION]: COMMAND starts with drain, "
                + "undrain, fault, heal, rebalance, rate, scale, autoscale or policy (Tab lists the rest); DURATION 1s…1h, "
                + "default 10m", "\(line): \(s.status?.text ?? "no status")")
        }
        // The words left out are the ones the preview refuses; each word kept starts a line it takes.
        for refused in ["speed 2", "speed max", "pause", "resume"] {
            #expect((try? PreviewRequest.parse("preview \(refused)").get()) == nil, "\(refused)")
        }
        let examples = ["drain node 0", "undrain node 0", "fault glitch", "heal all", "rebalance", "rate 5",
                        "scale decode +1", "autoscale slo", "policy je round-robin"]
        #expect(examples.map { String($0.prefix { $0 != " " }) } == PreviewRequest.commandWords)
        for example in examples {
            let (s, effects) = Self.open("preview \(example)")
            #expect(effects == [.preview(commandLine: "preview \(example) for 10m")], "\(example): \(s.status?.text ?? "")")
        }
        // A bad command still gets the parser's own reason.
        let (bad, _) = Self.open("preview drain nod 1")
        #expect(bad.status?.text.hasPrefix("preview: ") == true && bad.status?.text.contains("COMMAND starts with") == false)
    }

    @Test func drainConfirmationAndFaultMenuOfferAPreview() {
        var s = primedState()
        s.selectedNPU = 16
        var (next, effects) = ConsoleUpdate.update(s, .key(.char("d")))
        #expect(next.confirmation?.command == "drain node 2")
        (next, effects) = ConsoleUpdate.update(next, .key(.char("p")))
        #expect(effects == [.preview(commandLine: "preview drain node 2 for 10m")])
        #expect(next.confirmation == nil && next.preview?.command == "drain node 2")

        (next, _) = ConsoleUpdate.update(s, .key(.char("f")))
        (next, _) = ConsoleUpdate.update(next, .key(.down))
        (next, effects) = ConsoleUpdate.update(next, .key(.char("p")))
        #expect(effects == [.preview(commandLine: "preview fault npu 16 for 10m")])
        #expect(next.faultMenu == nil)

        // And from a fault's y/n confirmation.
        (next, _) = ConsoleUpdate.update(s, .key(.char("f")))
        (next, _) = ConsoleUpdate.update(next, .key(.char("3")))
        #expect(next.confirmation?.command == "fault node 2")
        (next, effects) = ConsoleUpdate.update(next, .key(.char("p")))
        #expect(effects == [.preview(commandLine: "preview fault node 2 for 10m")])
    }

    @Test func applyOnlyWhenReadyAndEscapeDismisses() {
        var (s, _) = Self.open("preview drain node 20")
        var effects: [ConsoleEffect]
        (s, effects) = ConsoleUpdate.update(s, .key(.char("a")))
        #expect(effects.isEmpty && s.preview != nil, "nothing to apply while computing")
        (s, _) = ConsoleUpdate.update(s, .preview(.progress(line: "preview drain node 20 for 10m", 0.5)))
        #expect(s.preview?.phase == .computing(progress: 0.5))
        // An answer for another preview (one dismissed earlier) is ignored.
        (s, _) = ConsoleUpdate.update(s, .preview(.finished(line: "preview rebalance for 10m", .success(Self.result()))))
        #expect(s.preview?.phase == .computing(progress: 0.5))
        (s, _) = ConsoleUpdate.update(s, .preview(.finished(line: "preview drain node 20 for 10m", .success(Self.result()))))
        #expect(s.preview?.phase == .ready(Self.result()))
        (s, _) = ConsoleUpdate.update(s, .key(.char("d")))
        #expect(s.confirmation == nil && s.preview != nil, "keys under the overlay are swallowed")
        // A drain asks y/n first (PreviewBoxKeyTests), then `y` sends it.
        let asked = ConsoleUpdate.update(s, .key(.char("a")))
        #expect(asked.1.isEmpty && asked.0.preview == nil && asked.0.confirmation?.command == "drain node 20")
        let applied = ConsoleUpdate.update(asked.0, .key(.char("y")))
        #expect(applied.1 == [.send(commandLine: "drain node 20")])
        let dismissed = ConsoleUpdate.update(s, .key(.escape))
        #expect(dismissed.1.isEmpty && dismissed.0.preview == nil)
    }

    /// The per-die row says which dies, as `xds run` does ("per decode die"): the figure is
    /// output over the dies that decode (320 on the superpod), and "output tok/s per die" read
    /// as over all 768. On a colocated deployment every die decodes, and it says "per die".
    @Test func perDieRowNamesTheDiesItDividesBy() {
        let ready: (inout ConsoleState) -> Void = {
            $0.preview = PreviewOverlay(command: "drain node 20", line: "preview drain node 20 for 10m", askedAt: 0)
            $0.preview?.phase = .ready(Self.result())
        }
        let pod = renderFixture(.pod, ready)
        let rateRow = pod.firstIndex { $0.contains("output tok/s ") }
        #expect(rateRow.map { pod[$0 + 1].contains("│   per decode die ") && pod[$0 + 1].contains("1406") } == true,
                "\(pod.joined(separator: "\n"))")
        #expect(!pod.contains { $0.contains("tok/s per die") })
        var colocated = SnapshotFixtures.superpod
        for i in colocated.npus.indices where colocated.npus[i].role != .spare { colocated.npus[i].role = .colocated }
        var state = ConsoleUpdate.update(ConsoleState(width: 80, height: 24), .tick(colocated)).0
        ready(&state)
        let lines = ConsoleScreen.render(state, colocated, theme: .builtinDark, width: 80, height: 24).lines
        #expect(lines.contains { $0.contains("│   per die ") && $0.contains("1406") }, "\(lines.joined(separator: "\n"))")
        #expect(!lines.contains { $0.contains("decode die") })
    }

    @Test func readyOverlayAt80x24() {
        let lines = renderFixture(.pod) {
            $0.preview = PreviewOverlay(command: "drain node 20", line: "preview drain node 20 for 10m", askedAt: 0)
            $0.preview?.phase = .ready(Self.result())
        }
        let body = lines.joined(separator: "\n")
        #expect(lines.count == 24 && lines.allSatisfy { $0.count <= 80 })
        #expect(body.contains("What if · drain node 20"))
        #expect(body.contains("baseline  with command        change"))
        #expect(lines.contains { $0.contains("TTFT p99") && $0.contains("1.50s") && $0.contains("2.07s") && $0.contains("+38%") })
        #expect(lines.contains { $0.contains("SLO attainment") && $0.contains("97.0%") && $0.contains("−6.0 pt") })
        #expect(lines.contains { $0.contains("│   per decode die ") && $0.contains("1406") })
        // The window's counts reconcile: what was in flight at the fork is shown with them.
        #expect(lines.contains { $0.contains("in flight at start") && $0.contains("1200") })
        #expect(body.contains("TTFT p99 +38%, TPOT p99 unchanged for 10 min, 0 requests lost"))
        #expect(body.contains("a applies drain node 20 (y/n first) · Esc dismisses · : command line"))
    }

    /// The scenario steps due in the window ran on both sides; the box says which, so their
    /// effect is not read as the command's (they were only in the JSON).
    @Test func scheduledStepsInTheWindowAreNamed() {
        var r = Self.result()
        r.scheduledSteps = [.init(atSeconds: 720, command: "rate 150"), .init(atSeconds: 810, command: "fault npu 170")]
        let lines = renderFixture(.pod) {
            $0.preview = PreviewOverlay(command: "drain node 20", line: "x", askedAt: 0)
            $0.preview?.phase = .ready(r)
        }
        #expect(lines.contains { $0.contains("both sides also ran: rate 150 at 0:12:00, fault npu 170 at 0:13:30") })
        #expect(lines.count == 24 && lines.allSatisfy { $0.count <= 80 })
        // It covers no figure (it was drawn over the last one, the prefix hit rate), nor the verdict.
        for label in PreviewOverlayView.rows(r).map(\.label) + ["TTFT p99 +38%, TPOT p99 unchanged for 10 min"] {
            #expect(lines.contains { $0.contains(label) }, "\(label) is hidden at 80×24")
        }
        // A taller screen has room for the loss line as well.
        var lossy = r
        lossy.withCommand.requests.failed = 3
        lossy.withCommand.requests.failureReasons = ["decode TE down": 3]
        let tall = renderFixture(.pod, width: 100, height: 40) {
            $0.preview = PreviewOverlay(command: "drain node 20", line: "x", askedAt: 0)
            $0.preview?.phase = .ready(lossy)
        }
        for label in PreviewOverlayView.rows(lossy).map(\.label) + ["both sides also ran", "most lost: 3 × decode TE down"] {
            #expect(tall.contains { $0.contains(label) }, "\(label) is hidden at 100×40")
        }
        // Many steps: as many as fit, then how many more; a refusal is flagged.
        r.scheduledSteps = (0..<12).map { .init(atSeconds: Double(700 + 10 * $0), command: "rate \(100 + $0)") }
        r.scheduledSteps[3].withCommandRefused = "no"
        let line = PreviewOverlayView.scheduledLine(r, width: 100)!
        #expect(line == "both sides also ran: rate 100 at 0:11:40, rate 101 at 0:11:50, +10 more (refused by one side)")
        #expect(PreviewOverlayView.scheduledLine(r, width: 72)!.count <= 72)
        // None due: no line.
        let plain = renderFixture(.pod) {
            $0.preview = PreviewOverlay(command: "drain node 20", line: "x", askedAt: 0)
            $0.preview?.phase = .ready(Self.result())
        }
        #expect(!plain.contains { $0.contains("also ran") })
        #expect(PreviewOverlayView.scheduledLine(Self.result(), width: 72) == nil)
    }

    @Test func deltasAreColouredByBetterOrWorse() {
        let rows = PreviewOverlayView.rows(Self.result())
        func style(_ label: String) -> Style { PreviewOverlayView.deltaStyle(rows.first { $0.label == label }!) }
        #expect(style("TTFT p99").fg == .bad, "slower is worse")
        #expect(style("SLO attainment").fg == .bad)
        #expect(style("TPOT p99").fg == .dim, "unchanged")
        #expect(style("arrived").fg == .dim, "no better direction")
        var better = Self.result()
        swap(&better.baseline, &better.withCommand)
        let swapped = PreviewOverlayView.rows(better)
        #expect(PreviewOverlayView.deltaStyle(swapped.first { $0.label == "TTFT p99" }!).fg == .good)
    }

    /// A change smaller than the last digit shown read "−0.0%", beside rows saying "=" for none:
    /// it is "≈" now, "=" stays for no change at all, and the smallest shown change is 0.1%.
    @Test func aChangeBelowTheShownDigitIsNearlyEqualNotMinusZero() {
        func delta(_ baseline: Double, _ with: Double) -> String {
            PreviewOverlayView.delta(.init(label: "TTFT p99", baseline: baseline, withCommand: with,
                                           format: { Format.ms($0) }, better: .lower))
        }
        #expect(delta(1_500, 1_499.7) == "≈")
        #expect(delta(1_500, 1_500.3) == "≈")
        #expect(delta(1_500, 1_500) == "=")
        #expect(delta(1_500, 1_498.5) == "−0.1%")
        #expect(delta(1_500, 2_070) == "+38%")
        var nearly = Self.result()
        nearly.withCommand.latencyMs.ttft.p99 = nearly.baseline.latencyMs.ttft.p99 * 1.0002
        #expect(PreviewOverlayView.verdict(nearly).hasPrefix("TTFT p99 within 0.05%, TPOT p99 unchanged for 10 min"), "\(PreviewOverlayView.verdict(nearly))")
    }

    @Test func verdictCountsLostRequests() {
        #expect(PreviewOverlayView.verdict(Self.result(lostWith: 12)) == "TTFT p99 +38%, TPOT p99 unchanged for 10 min, 12 requests lost (0 without)")
        let lines = renderFixture(.pod) {
            $0.preview = PreviewOverlay(command: "drain node 20", line: "x", askedAt: 0)
            $0.preview?.phase = .ready(Self.result(lostWith: 12))
        }
        #expect(lines.contains { $0.contains("most lost: 12 × decode TE down") })
    }

    @Test func computingShowsProgressAfterAMomentAndRefusalSaysWhy() {
        func render(_ phase: PreviewOverlay.Phase, wall: Double) -> String {
            renderFixture(.pod) {
                $0.wallNow = wall
                $0.preview = PreviewOverlay(command: "drain node 20", line: "preview drain node 20 for 10m", askedAt: 10)
                $0.preview?.phase = phase
            }.joined(separator: "\n")
        }
        let quick = render(.computing(progress: 0.4), wall: 10.1)
        #expect(quick.contains("computing…") && !quick.contains("40%"))
        let slow = render(.computing(progress: 0.4), wall: 11)
        #expect(slow.contains("computing… ▕████████████░░░░░░░░░░░░░░░░░░▏ 40%"))
        let refused = render(.refused("the engine would reject 'drain node 99': no node 99"), wall: 11)
        #expect(refused.contains("Not previewed:") && refused.contains("no node 99"))
    }

    /// A preview stopped by its wall-clock budget says where it stopped and why, in place of the
    /// window line, and its verdict names the window it covered.
    @Test func aStoppedPreviewSaysWhereItStopped() {
        var stopped = Self.result()
        stopped.coveredSeconds = 255
        stopped.stopped = "stopped at 4.25m of the 10m window: it used up its 30 s wall-clock budget"
        let text = renderFixture(.pod) {
            $0.preview = PreviewOverlay(command: "drain node 20", line: "x", askedAt: 0)
            $0.preview?.phase = .ready(stopped)
        }.joined(separator: "\n")
        #expect(text.contains("stopped at 4.25m of the 10m window: it used up its 30 s wall-clock budget"))
        #expect(!text.contains("next 10 min of simulated time"))
        #expect(PreviewOverlayView.verdict(stopped) == "TTFT p99 +38%, TPOT p99 unchanged for 255 s, 0 requests lost")
        let whole = renderFixture(.pod) {
            $0.preview = PreviewOverlay(command: "drain node 20", line: "x", askedAt: 0)
            $0.preview?.phase = .ready(Self.result())
        }.joined(separator: "\n")
        #expect(whole.contains("next 10 min of simulated time") && !whole.contains("stopped at"))
    }
}

extension PreviewOverlayTests {
    /// Accepted but changing nothing (`autoscale slo` on a colocated deployment), the box showed
    /// two equal sides with no reason; the engine's reply says why now, on the line naming the
    /// window, the verdict's line (equal sides: the rows' "=" say all it said) and the loss line.
    /// Unequal sides keep their lines.
    @Test func equalSidesShowTheEnginesReply() throws {
        var same = Self.equalSides(reply: Self.scalesNothingReply)
        let lines = Self.renderReady(same, command: "autoscale slo")
        let text = lines.joined(separator: "\n")
        #expect(lines.allSatisfy { $0.count <= 80 })
        // Whole, on three lines (it was cut after two: "… has none it can scale…").
        #expect(text.contains("│ autoscaler slo (evaluates every 5 s); it scales prefill and decode TEs, "), "\(text)")
        #expect(text.contains("│ and deployment 'colocated:4:llama-2-7b:nvidia-a100:tp1' has none it can "), "\(text)")
        #expect(text.contains("│ scale (colocated TEs scale only by command: scale colocated N) "), "\(text)")
        #expect(!text.contains("…") && !text.contains("TTFT p99 unchanged"), "\(text)")
        // What the verdict said (the window, nothing changed) is in the title.
        #expect(text.contains("┌ What if · autoscale slo for 10 min: no change ─"), "\(text)")
        // A reply that fits is shown whole, and the verdict keeps its line.
        same.reply = "autoscaler slo (evaluates every 5 s)"
        let short = Self.renderReady(same, command: "autoscale slo").joined(separator: "\n")
        #expect(short.contains("│ autoscaler slo (evaluates every 5 s) "), "\(short)")
        #expect(short.contains("TTFT p99 unchanged, TPOT p99 unchanged for 10 min"), "\(short)")
        #expect(!text.contains("next 10 min of simulated time"))
        let differing = Self.renderReady(Self.result(), command: "drain node 20").joined(separator: "\n")
        #expect(differing.contains("next 10 min of simulated time") && !differing.contains("node 20 drained"))
    }

    /// With scenario steps in the window at 80×24 the steps take the loss line. The reply had
    /// one line left and lost its end ("it scales prefill and decode TEs, and deployment…"): the
    /// reason now has two lines and, too long for them whole, drops its aside in parentheses,
    /// so it reads to its end ("… has none it can scale") with no "…".
    @Test func aReplyBesideScenarioStepsKeepsItsWholeReason() throws {
        var same = Self.equalSides(reply: Self.scalesNothingReply)
        same.scheduledSteps = [.init(atSeconds: 30, command: "rate 0.239"), .init(atSeconds: 60, command: "rate 0.25")]
        let lines = Self.renderReady(same, command: "autoscale slo")
        let text = lines.joined(separator: "\n")
        #expect(text.contains("both sides also ran: rate 0.239"), "\(text)")
        #expect(text.contains("│ it scales prefill and decode TEs, and deployment "), "\(text)")
        #expect(text.contains("│ 'colocated:4:llama-2-7b:nvidia-a100:tp1' has none it can scale "), "\(text)")
        #expect(!text.contains("…"), "\(text)")
        // Every figure row is still there.
        #expect(text.contains("prefix hit rate") && text.contains("TTFT p99  "), "\(text)")
        // With a single line, the shortest form still ends in "…" rather than stopping unsaid.
        let one = PreviewOverlayView.noChangeLines(same, width: 72, lines: 1)
        #expect(one.count == 1 && one[0].hasSuffix("…") && one[0].count <= 72, "\(one)")
        #expect(PreviewOverlayView.withoutAsides("a (b) c (d), e (f)") == "a c, e")
    }

    /// The engine's reply to `autoscale slo` on colocated replicas: too long for one overlay line.
    static let scalesNothingReply = "autoscaler slo (evaluates every 5 s); it scales prefill and decode TEs, and deployment "
        + "'colocated:4:llama-2-7b:nvidia-a100:tp1' has none it can scale (colocated TEs scale only by command: scale colocated N)"

    /// ``result(lostWith:)`` with both sides equal and `reply` as the engine's reply.
    static func equalSides(reply: String) -> PreviewResult {
        var same = result()
        same.withCommand = same.baseline
        same.reply = reply
        return same
    }

    /// The Pod view at 80×24 under the finished preview `r` of `command`.
    static func renderReady(_ r: PreviewResult, command: String) -> [String] {
        renderFixture(.pod) {
            $0.preview = PreviewOverlay(command: command, line: "x", askedAt: 0)
            $0.preview?.phase = .ready(r)
        }
    }

    /// While computing, the box named the request in one line cut at its border: at 80 columns
    /// "… ahead (preview fault straggler die 7" lost the die, the slowdown and the window. The
    /// sentence wraps inside the box now.
    @Test func theComputingBoxNamesTheWholeRequest() {
        let line = "preview fault straggler die 700 slowdown 2.5 for 10m"
        let lines = renderFixture(.pod) {
            $0.wallNow = 11
            $0.preview = PreviewOverlay(command: "fault straggler die 700 slowdown 2.5", line: line, askedAt: 10)
            $0.preview?.phase = .computing(progress: 0.3)
        }
        // Words in reading order inside the box (the view under it shows at its sides: at 80
        // columns the Pod grid's last cells sit right of the box).
        let box = Overlays.centered(CellBuffer(width: 80, height: 24), width: 76, height: 1)
        let words = lines.map { String((Array($0) + Array(repeating: " ", count: 80))[(box.x + 1)..<(box.maxX - 1)]) }
            .joined(separator: " ").split(separator: " ").map(String.init)
            .filter { !$0.allSatisfy { "│┌┐└┘─".contains($0) } }
        let sentence = "Running two forks of the live engine ahead (\(line)).".split(separator: " ").map(String.init)
        #expect((0...(words.count - sentence.count)).contains { Array(words[$0..<$0 + sentence.count]) == sentence },
                "\(lines.joined(separator: "\n"))")
        #expect(lines.contains { $0.contains("The live run goes on meanwhile; nothing is applied.") })
        #expect(lines.contains { $0.contains("computing… ▕█████████░░░░░░░░░░░░░░░░░░░░░▏ 30%") })
    }
}

extension PreviewOverlayTests {
    /// The what-if box wrapped its texts with a word-wrapper of its own, a twin of the detail
    /// boxes' that lacked what that one learned: a unit stays with its number. A refusal at 80
    /// columns ended a line in "bound of 30.0" and began the next with "s before …". One wrapper
    /// now serves both; the figure keeps its unit on one line.
    @Test func aRefusalKeepsAUnitWithItsNumber() {
        let why = "both forks were stopped: they ran into the wall-clock time bound of 30.0 s before the 10 min window was simulated"
        let state = PreviewBoxKeyTests.box("drain node 20", .refused(why))
        let lines = ConsoleScreen.render(state, SnapshotFixtures.superpod, theme: .builtinDark, width: 80, height: 24).lines
        let text = lines.joined(separator: "\n")
        #expect(text.contains("│ both forks were stopped: they ran into the wall-clock time bound of      │"), "\(text)")
        #expect(text.contains("│ 30.0 s before the 10 min window was simulated                            │"), "\(text)")
    }
}
