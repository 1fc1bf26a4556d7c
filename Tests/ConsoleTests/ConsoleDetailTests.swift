import Foundation
import PodModel
import ServingEngine
import Testing
import XDSTestSupport

@testable import Console

/// Issue 13, second slice: windows, sparkline scales, help of `:` commands, context-aware
/// completion, request and event detail, fault history and the ticker, small layouts.
@Suite(.timeLimit(.minutes(10))) struct ConsoleDetailTests {
    static let sizes = [(80, 24), (100, 30), (120, 40), (160, 45), (200, 60)]

    // MARK: completion and help

    @Test func completionFollowsTheWordsTyped() {
        #expect(PromptEditing.complete("dr").0 == "drain ")
        #expect(PromptEditing.complete("drain ").0 == "drain node ")
        #expect(PromptEditing.complete("drain node ").1 == "next: <N>")
        let fault = PromptEditing.complete("fault ")
        #expect(fault.1 == "die npu node link straggler hbm glitch")
        #expect(PromptEditing.complete("fault st").0 == "fault straggler ")
        #expect(PromptEditing.complete("fault straggler ").0 == "fault straggler die ")
        #expect(PromptEditing.complete("fault straggler die 4 ").0 == "fault straggler die 4 slowdown ")
        #expect(PromptEditing.complete("fault link 3-9 ").0 == "fault link 3-9 degrade ")
        #expect(PromptEditing.complete("heal ").1 == "all <FAULT_ID>")
        #expect(PromptEditing.complete("preview dr").0 == "preview drain ")
        // After `drain`, the keyword list of other verbs is not offered.
        #expect(PromptEditing.complete("drain n").0 == "drain node ")
        #expect(PromptEditing.complete("drain x").1 == "no completion for 'x'")
    }

    @Test func tabInThePromptUsesTheContext() {
        let link = FakeEngineLink()
        let state = drive(primedState(), link, keys: [.char(":")] + typed("undrain ") + [.tab])
        #expect(state.prompt?.text == "undrain node ")
    }

    @Test(arguments: sizes)
    func helpSecondPageListsEveryCommand(size: (Int, Int)) {
        let link = FakeEngineLink()
        var state = drive(primedState(width: size.0, height: size.1), link, keys: [.char("?"), .tab])
        #expect(state.showHelp && state.helpPage == 1)
        let text = ConsoleScreen.render(
            state, SnapshotFixtures.superpod, theme: .builtinDark, width: size.0, height: size.1
        ).lines.joined(separator: "\n")
        for syntax in [
            "drain node N", "undrain node N", "fault die D", "fault npu N", "fault node N",
            "fault link A-B [degrade F]", "fault straggler die D [slowdown F]", "fault hbm die D", "fault glitch",
            "heal FAULT_ID", "heal all", "rebalance", "rate R", "speed S", "pause", "resume", "clear faults",
        ] {
            #expect(text.contains(syntax), "help page 2 lacks \(syntax) at \(size)")
        }
        state = drive(state, link, keys: [.tab])
        #expect(state.showHelp && state.helpPage == 0)
        state = drive(state, link, keys: [.char("x")])
        #expect(!state.showHelp && !state.quitting)
    }

    /// Help's Pod line names the state glyphs the grid draws, each with the word the legend
    /// uses. It said "! X fault": no cell ever shows "!", and ↓ # ≠ went unexplained.
    @Test(arguments: sizes)
    func helpNamesTheGridsStateGlyphs(size: (Int, Int)) {
        let state = drive(primedState(width: size.0, height: size.1), FakeEngineLink(), keys: [.char("?")])
        let text = ConsoleScreen.render(
            state, SnapshotFixtures.superpod, theme: .builtinDark, width: size.0, height: size.1
        ).text
        for npuState in [NPUState.dead, .slow, .hbm, .link, .drained, .draining] {
            let word = NPUState.legend.components(separatedBy: "\(npuState.glyph!) ")[1].prefix { $0 != " " }
            #expect(text.contains("\(npuState.glyph!) \(word)"), "help lacks \(npuState.glyph!) \(word) at \(size)")
        }
        #expect(!text.contains("! X"), "\(text)")
    }

    // MARK: requests

    @Test func requestsSortByAnyColumnWithMarkerAndReverse() {
        let link = FakeEngineLink()
        var state = drive(primedState(width: 120, height: 40), link, keys: [.char("5")])
        var lines = render(state, 120, 40)
        // The oldest first: ages run downwards, ▼ (as in any table header).
        #expect(lines[4].contains("age▼"))
        #expect(lines[3].contains("sort age ▼"))
        state = drive(state, link, keys: [.char("s"), .char("s"), .char("s")])
        #expect(state.requestSort == .id)
        lines = render(state, 120, 40)
        #expect(lines[4].contains("id▲"))
        #expect(lines[5].contains("#96000"))
        state = drive(state, link, keys: [.char("S")])
        lines = render(state, 120, 40)
        #expect(lines[4].contains("id▼"))
        #expect(lines[5].contains("#97443"))  // 96000 + 39 × 37: the highest id first
    }

    @Test func enterOpensTheSelectedRequestsTimeline() {
        let link = FakeEngineLink()
        // A request seen queued, then in prefill, then in decode: three timeline steps.
        var s1 = SnapshotFixtures.superpod
        s1.simTime = 600
        s1.inFlight = [RequestStatus(id: 7, arrivedAt: 599.5, stage: .queued, promptTokens: 900, outputTokens: 100, location: "prefill-1")]
        var s2 = s1
        s2.simTime = 600.4
        s2.inFlight[0].stage = .prefill
        s2.inFlight[0].location = "prefill-1/dp3"
        var s3 = s2
        s3.simTime = 601.2
        s3.inFlight[0].stage = .decode
        s3.inFlight[0].location = "decode-0/dp42"
        s3.inFlight[0].generatedTokens = 5
        s3.inFlight[0].ttftMs = 800
        var state = ConsoleState(width: 80, height: 24)
        for s in [s1, s2, s3] { state = ConsoleUpdate.update(state, .tick(s)).0 }
        state = drive(state, link, keys: [.char("5")])
        #expect(render(state, 80, 24, s3)[5].contains("#7"))
        state = drive(state, link, keys: [.enter])
        #expect(state.requestDetail == 7)
        let text = render(state, 80, 24, s3).joined(separator: "\n")
        #expect(text.contains("Request #7"))
        #expect(text.contains("0:09:59.5  queued"))
        #expect(text.contains("0:10:00.4  prefill on its TE · prefill-1/dp3"))
        #expect(text.contains("0:10:01.2  decode · decode-0/dp42"))
        #expect(text.contains("output 5 of 100"))
        // Any key closes it, and a letter there is not a hotkey.
        state = drive(state, link, keys: [.char("d")])
        #expect(state.requestDetail == nil && state.confirmation == nil && link.sentCommands.isEmpty)
    }

    @Test func theCursorWalksIntoRecentRequests() {
        let link = FakeEngineLink()
        var state = drive(primedState(width: 80, height: 24), link, keys: [.char("5")])
        state = drive(state, link, keys: Array(repeating: Key.down, count: 41))
        state = drive(state, link, keys: [.enter])
        // 40 in flight, so row 41 is the second-newest recent request (#95918).
        #expect(state.requestDetail == 95_918)
    }

    // MARK: events

    @Test func eventsCollapseRoutineRepeatsAndFilterBySeverity() {
        var s = SnapshotFixtures.superpod
        for i in 0..<5 {
            s.events.append(
                EngineEvent(time: 650 + Double(i), kind: .rebalance, message: "prefill-\(i) rebalance skipped"))
        }
        var state = ConsoleUpdate.update(ConsoleState(width: 120, height: 40), .tick(s)).0
        state.view = .events
        var lines = render(state, 120, 40, s)
        #expect(lines[4].contains("prefill-4 rebalance skipped (×5)"))
        state = drive(state, FakeEngineLink(), keys: [.char("v"), .char("v")])
        #expect(state.eventLevel == .errors)
        lines = render(state, 120, 40, s)
        #expect(lines[3].contains("level errors (v)"))
        #expect(lines[4].contains("ERROR") && lines[5].contains("ERROR") && !lines[6].contains("WARN"))
    }

    /// `:rate 30` once, after the demo load's own `rate 25`: the Events view showed one row
    /// "rate 30 … (×2)" (the two commands have the same shape once numbers are blanked). Commands
    /// and other actions fold only when identical; routine kinds still fold by shape.
    @Test func differentCommandsNeverFoldIntoOne() {
        var s = SnapshotFixtures.superpod
        s.events.append(contentsOf: [
            EngineEvent(time: 600, kind: .command, message: "rate 25: synthetic arrival rate set to 25 requests/s"),
            EngineEvent(time: 604.9, kind: .command, message: "rate 30: synthetic arrival rate set to 30 requests/s"),
            EngineEvent(time: 605, kind: .drain, message: "node 3 draining"),
            EngineEvent(time: 606, kind: .drain, message: "node 4 draining"),
            EngineEvent(time: 607, kind: .command, message: "pause: paused"),
            EngineEvent(time: 608, kind: .command, message: "pause: paused"),
        ])
        var state = ConsoleUpdate.update(ConsoleState(width: 120, height: 40), .tick(s)).0
        state.view = .events
        let rows = EventsView.shown(state).prefix(5).map { ($0.event.message, $0.count) }
        #expect(rows.map(\.0) == [
            "pause: paused", "node 4 draining", "node 3 draining",
            "rate 30: synthetic arrival rate set to 30 requests/s", "rate 25: synthetic arrival rate set to 25 requests/s",
        ])
        #expect(rows.map(\.1) == [2, 1, 1, 1, 1])
        let lines = render(state, 120, 40, s)
        #expect(lines.contains { $0.contains("rate 30: synthetic arrival rate set to 30 requests/s") && !$0.contains("×") })
    }

    @Test func enterShowsAnEventInFull() {
        var s = SnapshotFixtures.superpod
        let long = "fault 2: replacing NPUs 163 of decode-0 with spare NPUs 288: NPU-fork weight copy 0.121 s over UB; 2 requests re-prefilled"
        s.events.append(EngineEvent(time: 660, kind: .recovery, severity: .warning, message: long))
        var state = ConsoleUpdate.update(ConsoleState(width: 80, height: 24), .tick(s)).0
        state.view = .events
        let row = render(state, 80, 24, s)[4]
        #expect(row.hasSuffix("… │"))  // cut before the edge, and says so
        state = drive(state, FakeEngineLink(), keys: [.enter])
        let text = render(state, 80, 24, s).joined(separator: "\n")
        #expect(text.contains("Event · any key closes"))
        #expect(text.contains("2 requests re-prefilled"))
    }

    // MARK: latency windows and scales

    @Test func latencyWindowSubtractsOlderSamples() {
        var early = SnapshotFixtures.superpod
        early.simTime = 500
        var later = SnapshotFixtures.superpod
        later.simTime = 600
        later.histograms.ttft.counts = early.histograms.ttft.counts.enumerated().map { $1 + ($0 == 20 ? 7 : 0) }
        var state = ConsoleState(width: 200, height: 60)
        state = ConsoleUpdate.update(state, .tick(early)).0
        state = ConsoleUpdate.update(state, .tick(later)).0
        let (h, covered) = state.memory.histograms(.oneMinute, now: later)
        #expect(covered == 100)
        #expect(h.ttft.counts.reduce(0, +) == 7 && h.ttft.counts[20] == 7)
        // All 7 in the bin 2000…2100 ms: p99 interpolated near its top.
        let p99 = ConsoleMemory.quantile(h.ttft, 0.99)!
        #expect(p99 > 2090 && p99 <= 2100)
        #expect(state.memory.histograms(.all, now: later).0 == later.histograms)
        state.view = .latency
        var lines = render(state, 200, 60, later)
        // Two samples 100 s apart: the 1-min window says it covers 1:40 min.
        #expect(lines[3].contains("TTFT · last 1:40 min · linear axis"))
        #expect(lines.contains { $0.contains("p99≈") })
        state = drive(state, FakeEngineLink(), keys: [.char("w"), .char("w")])
        #expect(state.latencyWindow == .all)
        lines = render(state, 200, 60, later)
        #expect(lines[3].contains("TTFT · all"))
    }

    @Test func windowLabelsSayHowMuchTheyHold() {
        #expect(LatencyView.windowLabel(.oneMinute, covered: 42) == "42 s of 1 min")
        #expect(LatencyView.windowLabel(.oneMinute, covered: 61) == "last 1 min")
        #expect(LatencyView.windowLabel(.tenMinutes, covered: 900, cut: false) == "since start")
        #expect(LatencyView.windowLabel(.oneMinute, covered: 100) == "last 1:40 min")
        #expect(LatencyView.shortWindow("42 s of 1 min") == "42s/1m")
        #expect(LatencyView.windowLabel(.all, covered: 900) == "all")
    }

    @Test(arguments: sizes)
    func sparklinesShowTheirRangeAndSpan(size: (Int, Int)) {
        let lines = renderFixture(.latency, width: size.0, height: size.1)
        let over = lines.first { $0.contains("Over time · last") }
        #expect(over != nil, "no time span in the trends title at \(size)")
        #expect(over?.contains("one point per 5 s") == true || over?.contains("1 point/5 s") == true)
        let tokens = lines.first { $0.contains("│ tok/s") }
        #expect(tokens?.contains("k…") == true, "tok/s line has no min…max at \(size)")
        let histogramScale = lines.contains { $0.contains("tallest bar") || $0.contains("│ ↑") }
        #expect(histogramScale, "histograms have no y scale at \(size)")
    }

    // MARK: faults

    @Test func faultHistoryOutlivesHealAndCountsOutcomes() {
        var s = SnapshotFixtures.superpod
        // The engine's own counts; an event's wording is not read.
        s.activeFaults[0].requestsReprefilled = 4
        s.activeFaults[0].requestsFailed = 2
        s.events.append(
            EngineEvent(
                time: 599, kind: .recovery, severity: .warning,
                message: "fault 1: decode-0 restarts: out for 300 s; 9 requests re-prefilled, 9 failed"))
        var state = ConsoleUpdate.update(ConsoleState(width: 120, height: 40), .tick(s)).0
        #expect(state.memory.faults.count == 1)
        #expect(state.memory.faults[0].reprefilled == 4 && state.memory.faults[0].failed == 2)
        // The same events again (the next snapshot) are not counted twice.
        var healed = s
        healed.simTime += 1
        healed.activeFaults = []
        state = ConsoleUpdate.update(state, .tick(healed)).0
        #expect(state.memory.faults[0].reprefilled == 4 && state.memory.faults[0].healedAt == healed.simTime)
        let text = render(state, 120, 40, healed).joined(separator: "\n")

        #expect(text.contains("Faults · drains · 1 healed (:clear faults)"))
        #expect(text.contains("#1 healed  NPU 140 lost (node 17)"))
        #expect(text.contains("│  at 0:09:58 · healed 0:10:43"))
        #expect(text.contains("│  4 re-prefilled · 2 failed"))
        state = drive(state, FakeEngineLink(), keys: [.char(":")] + typed("clear faults") + [.enter])
        #expect(state.memory.faults.isEmpty)
    }

    /// A snapshot only shows that a fault is gone; at speed 50 the first one without it comes
    /// seconds of simulated time after the heal. The panel dates the heal by the fault's own line.
    @Test func healedTimeIsTheHealLinesNotTheNextSnapshots() {
        let s = SnapshotFixtures.superpod
        let id = s.activeFaults[0].id
        var state = ConsoleUpdate.update(ConsoleState(width: 120, height: 40), .tick(s)).0
        var healed = s
        healed.simTime += 30
        healed.activeFaults = []
        healed.events += [
            // The fault's line from before the last snapshot that showed it active: not its end.
            EngineEvent(time: s.simTime - 5, kind: .recovery, message: "fault \(id) recovered", faultId: id),
            EngineEvent(time: s.simTime + 12.5, kind: .heal, message: "fault \(id) healed", faultId: id),
            // Another fault's heal inside the same window.
            EngineEvent(time: s.simTime + 20, kind: .heal, message: "fault \(id + 1) healed", faultId: id + 1),
        ]
        state = ConsoleUpdate.update(state, .tick(healed)).0
        #expect(state.memory.faults[0].healedAt == s.simTime + 12.5)
        let text = render(state, 120, 40, healed).joined(separator: "\n")
        let clock = { (t: Double) in "\(Int(t) / 3600):\(String(format: "%02d", Int(t) / 60 % 60)):\(String(format: "%02d", Int(t) % 60))" }
        #expect(text.contains("· healed \(clock(s.simTime + 12.5))"), "\(text)")
    }

    @Test(arguments: sizes)
    func faultsStayInSightAtEverySize(size: (Int, Int)) {
        for view in ConsoleView.allCases {
            let lines = renderFixture(view, width: size.0, height: size.1)
            let panel = lines.contains { $0.contains("Faults · drains") }
            let ticker = lines.contains { $0.contains("⚠ #1 NPU 140 lost (node 17)") }
            #expect(panel || ticker, "\(view) at \(size) shows no trace of the active fault")
            if view == .pod && size.0 >= 120 { #expect(panel, "Pod at \(size) lost the Faults panel") }
        }
    }

    @Test func headerCountsDegradationsApartFromFaults() {
        var s = SnapshotFixtures.superpod
        s.activeFaults.append(
            FaultStatus(id: 2, description: "link 10-200 down", injectedAt: 600, detectedAt: 600.3, recoveredAt: 600.5))
        let state = ConsoleUpdate.update(ConsoleState(width: 200, height: 60), .tick(s)).0
        #expect(render(state, 200, 60, s)[1].contains("faults 1, 1 degraded"))
    }

    // MARK: small terminals and start-up

    @Test func tooSmallMessageAlwaysShowsTheSizeNeeded() {
        for (w, h) in [(60, 20), (40, 10), (79, 24)] {
            let text = ConsoleScreen.render(
                ConsoleState(width: w, height: h), SnapshotFixtures.superpod, theme: .builtinDark, width: w, height: h
            ).lines.joined(separator: " ").split(separator: " ").joined(separator: " ")
            #expect(text.contains("at least 80×24."), "size cut at \(w)×\(h)")
        }
    }

    @Test func scenarioNameAndNextStepInTheHeader() throws {
        var state = primedState(width: 200, height: 60)
        state.scenario = Scenario(
            name: "NPU loss", steps: [Scenario.Step(at: 700, command: try OperatorCommand.parse("fault npu 280").get())])
        #expect(render(state, 200, 60)[0].contains("scenario: NPU loss · next 0:11:40 fault npu 280"))
    }

    /// At 80 columns the step stays whole (it was cut to "rate 0.…" beside the word "scenario");
    /// the name beside it may be cut (EightyColumnTests), the step never.
    @Test func nextStepStaysWholeAt80Columns() throws {
        var state = primedState(width: 80, height: 24)
        // The achieved speed shown beside the set one, as on a live console: the line is full.
        state.achievedSpeed = 1
        state.scenario = Scenario(
            name: "demo load", steps: [Scenario.Step(at: 900, command: try OperatorCommand.parse("rate 0.144").get())])
        let line = render(state, 80, 24)[0]
        #expect(line.contains("(≈1.0×)"), "\(line)")
        #expect(line.hasPrefix(" xds  demo load: 0:15:00 rate 0.144  "), "\(line)")
    }

    @Test func startHintFadesAfterItsTime() {
        var state = primedState()
        state.status = StatusLine("try a story", seconds: 20)
        state = ConsoleUpdate.update(state, .clock(wallSeconds: 100)).0
        state = ConsoleUpdate.update(state, .clock(wallSeconds: 110)).0
        #expect(state.status != nil)
        state = ConsoleUpdate.update(state, .clock(wallSeconds: 121)).0
        #expect(state.status == nil)
    }

    @Test func demoLoadScalesWithTheDeploymentsDecodeCapacity() throws {
        // The superpod keeps its rates exactly; two A100s get a small fraction of them (25–55 req/s
        // drowned them within a minute: TTFT p99 30 s, 750 waiting).
        #expect(DemoLoad.scale(for: .superpod) == 1)
        #expect(DemoLoad.scenario(scale: DemoLoad.scale(for: .superpod)) == DemoLoad.scenario)
        let small = try Deployment.resolve("colocated:2:llama-2-7b:nvidia-a100:tp1")
        let big = try Deployment.resolve("colocated:8:llama-2-7b:nvidia-a100:tp1")
        let s2 = DemoLoad.scale(for: small), s8 = DemoLoad.scale(for: big)
        #expect(s2 > 0 && s2 < 0.05, "two A100s against the superpod: \(s2)")
        #expect(abs(s8 / s2 - 4) < 1e-9, "four times the replicas, four times the load: \(s8 / s2)")
        let scenario = DemoLoad.scenario(scale: s2)
        #expect(scenario.name.hasPrefix("demo: daily cycle 0."), "\(scenario.name)")
        for step in scenario.steps {
            guard case .rate(let r) = step.command else { Issue.record("not a rate step: \(step.command)"); continue }
            #expect(r > 0 && r < 55 * 1.5 * 0.05)
            let line = step.command.description
            #expect(line.count <= 12, "a readable rate: \(line)")
            #expect(try OperatorCommand.parse(line).get() == step.command, "\(line) does not read back")
        }
        #expect(DemoLoad.threeDigits(0.28254643) == 0.283 && DemoLoad.threeDigits(1234.5) == 1230)
        // Nonsense scales fall back to the superpod's rates.
        #expect(DemoLoad.scenario(scale: .nan) == DemoLoad.scenario && DemoLoad.scenario(scale: -1) == DemoLoad.scenario)
        // A deployment a million times smaller still gets steps the command language takes.
        for step in DemoLoad.scenario(scale: 1e-9).steps {
            guard case .rate(let r) = step.command else { continue }
            #expect(r == CommandLimits.minNonzeroRate, "\(r)")
            #expect(try OperatorCommand.parse(step.command.description).get() == step.command)
        }
    }

    @Test func demoLoadKeepsCyclingForASimulatedDay() {
        // It stopped after two hours: a demo at speed 100 went flat after 72 s of wall time.
        let steps = DemoLoad.scenario.steps
        let late = steps.filter { $0.at > 23 * 3600 }.map(\.command)
        #expect(late.contains(.rate(requestsPerSecond: 55)) && late.contains(.rate(requestsPerSecond: 25)))
        #expect(steps.last!.at <= 86_400 && steps.count <= Scenario.maxSteps)
    }

    @Test func demoLoadCyclesWithBurstsAndReadsBackAsCommands() throws {
        #expect(DemoLoad.rate(at: 0) == 25)
        #expect(DemoLoad.rate(at: 600) == 55)
        #expect(DemoLoad.rate(at: 1200) == 25)
        // A burst: 1.5× the cycle for 30 s from 4:00, then back.
        let base = 40 + 15 * sin(2 * Double.pi * 240 / 1200 - Double.pi / 2)
        #expect(abs(DemoLoad.rate(at: 240) - base * 1.5) < 0.06)
        #expect(abs(DemoLoad.rate(at: 270) - (40 + 15 * sin(2 * Double.pi * 270 / 1200 - Double.pi / 2))) < 0.06)
        let scenario = DemoLoad.scenario
        #expect(scenario == DemoLoad.scenario)  // the same every run
        #expect(scenario.steps.first?.at == 0)
        #expect(scenario.steps.map(\.at) == scenario.steps.map(\.at).sorted())
        for step in scenario.steps {
            let line = step.command.description
            #expect(try OperatorCommand.parse(line).get() == step.command, "\(line) does not read back")
        }
        var state = primedState(width: 120, height: 40)
        state.scenario = scenario
        #expect(render(state, 120, 40)[0].contains("scenario: demo: daily cycle 25…55 req/s"))
    }

    @Test func dieStripIsLabelledAndImbalanceStatesItsThresholds() {
        let lines = renderFixture(.experts, width: 200, height: 60)
        #expect(lines.contains { $0.contains("every die, in id order") && $0.contains("load × mean, full at the warn level 4×") })
        #expect(lines.contains { $0.contains("imbalance (each layer's max/mean, averaged) 1.41") && $0.contains("warn ≥4 alarm ≥6") })
        // The die row's max is each die's mean over layers, and says so beside the imbalance.
        #expect(lines.contains { $0.contains("each die, mean over layers: max 1.42×  min 0.80×") })
    }

    @Test func yesSettingSkipsTheQuestion() {
        var state = primedState()
        state.confirmDestructive = false
        let link = FakeEngineLink()
        _ = drive(state, link, keys: [.char("d")])
        #expect(link.sentCommands == ["drain node 0"])
    }

    func render(_ state: ConsoleState, _ w: Int, _ h: Int, _ s: Snapshot = SnapshotFixtures.superpod) -> [String] {
        ConsoleScreen.render(state, s, theme: .builtinDark, width: w, height: h).lines
    }
}
