import ServingEngine

/// The whole screen as a pure function of state and snapshot (Elm's `view`).
///
/// ```swift
/// let frame = ConsoleScreen.render(state, snapshot, theme: .builtinDark, width: 80, height: 24)
/// print(frame.text)
/// ```
public enum ConsoleScreen {
    public static func render(
        _ state: ConsoleState, _ snapshot: Snapshot, theme: Theme, width: Int, height: Int
    ) -> CellBuffer {
        var b = CellBuffer(width: width, height: height)
        if width < ConsoleState.minimumWidth || height < ConsoleState.minimumHeight {
            // Wrapped, so the size needed shows however narrow the terminal is; shorter forms when
            // even that does not fit (at 10×3 the wrapped sentence stopped before "80×24").
            // With a prompt open q is ignored too (it may be a letter of what was typed), so the
            // message named a key that did nothing there; Ctrl-C quits in every case.
            // Every form says how to quit: at 20×5 the shorter ones kept the size and dropped it.
            let quitKey = state.prompt == nil ? "q" : "Ctrl-C"
            let messages = [
                "Terminal \(width)×\(height) is too small: the console needs at least 80×24. Until then keys do nothing; \(quitKey) quits.",
                "Terminal \(width)×\(height) is too small: the console needs at least 80×24; \(quitKey) quits.",
                "too small: needs 80×24; \(quitKey) quits", "needs 80×24; \(quitKey) quits", "80×24; \(quitKey) quits",
                "\(quitKey) quits",
            ]
            let lines =
                messages.lazy.map { DetailOverlays.wrap($0, width: width) }.first { $0.count <= height }
                ?? DetailOverlays.wrap(messages.last!, width: width)
            for (i, line) in lines.enumerated() where i < height {
                b.put(line, x: 0, y: i, style: .warn)
            }
            return b
        }
        header(&b, state, snapshot)
        tabBar(&b, state, theme)
        let area = ScreenLayout.content(width: width, height: height)
        switch state.view {
        case let view where !snapshot.hasData && view != .pod && view != .events:
            // Before the first snapshot (`--connect` to a server that does not answer) these
            // views drew the empty snapshot as a live pod: "no MoE layers in this deployment",
            // "no prefill instances", "In flight · 0", KV "mean 0.0%". As the Pod view does, they
            // say there is nothing yet. (Events keeps its own "no events yet", which is true.)
            b.box(area, title: view.title)
            b.put("no snapshot from the engine yet (the header says why)", x: area.x + 2, y: area.y + 1,
                  style: .dim, clip: area.inner)
        case .pod: PodView.draw(&b, area, state, snapshot, theme)
        case .experts: ExpertsView.draw(&b, area, state, snapshot, theme)
        case .kvCache: KVCacheView.draw(&b, area, state, snapshot, theme)
        case .latency: LatencyView.draw(&b, area, state, snapshot, theme)
        case .requests: RequestsView.draw(&b, area, state, snapshot, theme)
        case .events: EventsView.draw(&b, area, state, snapshot, theme)
        }
        // Faults and drains stay in sight: on the bottom border of views without the panel.
        if !(state.view == .pod && PodLayout(width: width, height: height).faults != nil),
            let (text, style) = PodView.ticker(snapshot, width: width - 4)
        {
            var line = text
            if line.count > width - 4 { line = String(line.prefix(width - 5)) + "…" }
            b.put(line, x: 2, y: area.maxY - 1, style: style)
        }
        footer(&b, state, snapshot)
        if snapshot.linkStatus != nil { staleOut(&b) }
        if let menu = state.faultMenu { Overlays.faultMenu(&b, menu, state, snapshot) }
        if let preview = state.preview {
            PreviewOverlayView.draw(&b, preview, state, colocated: snapshot.npus.contains { $0.role == .colocated })
        }
        if let id = state.requestDetail { DetailOverlays.request(&b, id, state, snapshot) }
        if let event = state.eventDetail { DetailOverlays.event(&b, event, state, snapshot) }
        if state.showHelp {
            // Before the engine's first answer nothing says whether it has a pool: the usual line.
            Overlays.help(&b, state, theme, colocated: KVCacheView.isColocated(snapshot),
                          dramPool: !snapshot.hasData || snapshot.kv.poolCapacityBytes > 0,
                          denseModel: snapshot.servesDenseModel)
        }
        return b
    }

    // MARK: header

    /// Blanks kept between the title and the rate: with one, a scenario's next step ran into
    /// the arrival rate ("next 0:00:45 rate 25.4 25.2 req/s" read as one figure).
    static let titleGap = 2

    static func header(_ b: inout CellBuffer, _ state: ConsoleState, _ s: Snapshot) {
        let bar = Style(fg: .header)
        b.fill(Rect(x: 0, y: 0, width: b.width, height: 2), with: Cell(character: " ", style: bar))
        var x = b.put(" xds ", x: 0, y: 0, style: Style(fg: .header, bold: true))
        if let status = s.linkStatus {
            // Cut with an ellipsis where the line is short: at 80 columns it ran off the edge as
            // "(is xds serve running there?) — retryi".
            var text = " ⚠ \(status) "
            if x + text.count > b.width { text = String(text.prefix(max(0, b.width - x - 1))) + "…" }
            x = b.put(text, x: x, y: 0, style: Style(fg: .bad, bg: .header, bold: true))
            // The figures on screen are the last snapshot's, greyed (see ``staleOut``): say so.
            if s.hasData { x = b.put("figures as of sim \(Format.clock(s.simTime)) ", x: x, y: 0, style: Style(fg: .header, bold: true)) }
        }
        let names = [s.deploymentName, s.modelName, s.hardwareName].filter { !$0.isEmpty }
        let speed = Format.speed(s.speed, paused: s.paused, achieved: state.achievedSpeed, short: b.width < 160)
        // Attached to a server that never answered: no figure is known, and zeros ("0 tok/s",
        // "faults 0", "0.00 req/s") read as a pod that is idle and healthy.
        let known = s.hasData
        func figure(_ text: String) -> String { known ? text : "–" }
        // The synthetic rate when one is set; else what arrives (a trace, HTTP), measured, with
        // the "≈" the achieved speed uses.
        let rate =
            !known ? "–" : s.arrivalRate > 0 || s.requests.arrived == 0
            ? Format.rate(s.arrivalRate) : state.memory.observedArrivalRate(s).map { "≈" + Format.rate($0) } ?? "–"
        let right = "\(rate) req/s   \(speed)   sim \(Format.clock(s.simTime)) "
        // The names give way to the pacing and the clock when the line is short.
        var title = " " + names.joined(separator: " · ")
        if let scenario = state.scenario {
            // A running scenario names itself and its next step instead of the deployment.
            let next = scenario.steps.first { $0.at > s.simTime }
            let step = next.map { "next \(Format.clock($0.at)) \($0.command)" } ?? "all steps done"
            // The next step matters more than the name, and stays whole: when room is short the
            // word "scenario" goes, then "next" ("NPU loss: 0:11:40 fault npu 280"), then the
            // name is cut. At 80 columns the name was dropped altogether, and nothing said which
            // scenario was running.
            let room = b.width - right.count - x - Self.titleGap
            title = " scenario: \(scenario.name) · \(step)"
            if title.count > room { title = " \(scenario.name) · \(step)" }
            let after = ": " + (next.map { "\(Format.clock($0.at)) \($0.command)" } ?? step)
            if title.count > room { title = " \(scenario.name)\(after)" }
            // A cut name keeps at least three characters and its ellipsis; else the step alone.
            // One cell more is left free: under LANG=C the ellipsis is written `..`, and took a
            // blank of the gap before the rate ("rate 40 40.0 req/s").
            let nameRoom = room - 2 - after.count
            var cut = String(scenario.name.prefix(nameRoom - 1))
            while cut.last == " " { cut.removeLast() }
            if title.count > room { title = nameRoom >= 4 ? " \(cut)…\(after)" : " \(step)" }
        }
        let room = b.width - right.count - x - Self.titleGap
        if title.count > room { title = room > 1 ? String(title.prefix(room - 1)) + "…" : "" }
        x = b.put(title, x: x, y: 0, style: bar)
        b.put(
            right, x: max(x + 1, b.width - right.count), y: 0,
            style: s.paused ? Style(fg: .header, bold: true) : bar)

        // Before the first sample a percentile is unknown, not 0 ms, and an attainment with no
        // completed request is unknown, not 0 %: both show "–" in the neutral colour.
        let ttftSeen = s.histograms.ttft.hasSamples, tpotSeen = s.histograms.tpot.hasSamples
        let ttftOK = s.latency.ttftP99Ms <= s.slo.ttftMs
        let tpotOK = s.latency.tpotP99Ms <= s.slo.tpotMs
        func slo(_ ok: Bool, seen: Bool) -> Style { seen ? Style(fg: ok ? .good : .bad, bg: .header, bold: !ok) : bar }
        // On narrow screens labels shorten first, then the gaps, then the tight forms, and only
        // then are the lowest priorities dropped: at 80 columns every vital stays.
        // Before the first snapshot the SLOs are unknown too: "–/2s" and "–/35ms" were the empty
        // snapshot's defaults, shown as if the server had said them. The SLOs are written as
        // given (``Format/exact(_:minDigits:maxDigits:)``), not rounded.
        let ttft = !known ? "–" : "\(ttftSeen ? Format.fixed(s.latency.ttftP99Ms, 0) : "–")/\(Format.exact(s.slo.ttftMs))ms"
        let tpot = !known ? "–" : "\(tpotSeen ? Format.fixed(s.latency.tpotP99Ms) : "–")/\(Format.exact(s.slo.tpotMs))ms"
        // In seconds when the SLO is: "1.82/2s".
        let ttftShort =
            known && s.slo.ttftMs >= 1000
            ? "\(ttftSeen ? Format.fixed(s.latency.ttftP99Ms / 1000, 2) : "–")/\(Format.exact(s.slo.ttftMs / 1000, maxDigits: 4))s"
            : ttft
        // Compact (form 3): a digit less where that keeps the figure's side of its SLO
        // ("36/35ms" for 36.4 ms, but "35.4/35ms" stays, as "35/35ms" would read as met).
        func compactLatency(_ value: Double, _ slo: Double, scale: Double, digits: Int) -> String? {
            let shown = Format.fixed(value / scale, digits)
            guard let back = Double(shown).map({ $0 * scale }) else { return nil }
            // The same relation to the SLO (under, on or over) as the figure itself.
            return (back < slo) == (value < slo) && (back == slo) == (value == slo) ? shown : nil
        }
        let ttftCompact =
            s.slo.ttftMs >= 1000 && ttftSeen
            ? compactLatency(s.latency.ttftP99Ms, s.slo.ttftMs, scale: 1000, digits: 1).map { $0 + ttftShort.drop { $0 != "/" } } ?? ttftShort
            : ttftShort
        let tpotCompact =
            tpotSeen ? compactLatency(s.latency.tpotP99Ms, s.slo.tpotMs, scale: 1, digits: 0).map { $0 + tpot.drop { $0 != "/" } } ?? tpot : tpot
        let tokens = figure(Format.count(s.outputTokensPerSecond))
        // Tight: three figures are enough for a rate ("182k", not "182.4k").
        let tokensTight =
            (1e5..<1e6).contains(s.outputTokensPerSecond) ? figure(Format.fixed(s.outputTokensPerSecond / 1e3, 0) + "k") : tokens
        let (running, waiting) = (figure(Format.count(s.requests.running)), figure(Format.count(s.requests.waiting)))
        // Compact (form 4, the last): counts in whole thousands from 10k ("24k", not "24.3k"). A
        // digit less misleads no one; taking the "99" off "TTFT99" did ("TTFT 1.82/2s" read as
        // a mean), and that is what this form replaced.
        func compactCount(_ n: Int) -> String { (1e4..<1e6).contains(Double(n)) ? figure(Format.fixed(Double(n) / 1e3, 0) + "k") : figure(Format.count(n)) }
        let (runningCompact, waitingCompact) = (compactCount(s.requests.running), compactCount(s.requests.waiting))
        // (long, short, tight, style, priority). The rate and the counts are of now; the p99s
        // and the SLO attainment are of the whole run (the engine's cumulative histograms and
        // counts), so they stand together behind a label that says so. Without it, "TTFT99"
        // beside "tok/s" read as the current latency, and only the help said otherwise.
        var segments: [(String, String, String, Style, Int)] = [
            ("\(tokens) tok/s", "\(tokens) tok/s", "\(tokensTight) tok/s", bar, 1),
            ("run \(running)  wait \(waiting)", "r/w \(running)/\(waiting)", "r/w \(running)/\(waiting)", bar, 1),
        ]
        let runWaitTight = segments[1].2, runWaitCompact = "r/w \(runningCompact)/\(waitingCompact)"
        // Unrecovered faults apart from recovered ones still in force (a rerouted link is still down).
        let faults = s.activeFaults.filter { $0.recoveredAt == nil }.count
        let degraded = s.activeFaults.count - faults
        // Tight: the glyph the fault ticker and the grid use (⚠), as drains use ⊘ and ~.
        segments.append(
            (
                degraded > 0 ? "faults \(faults), \(degraded) degraded" : "faults \(figure("\(faults)"))",
                degraded > 0 ? "faults \(faults)+\(degraded)" : "faults \(figure("\(faults)"))",
                degraded > 0 ? "⚠\(faults)+\(degraded)" : "⚠\(figure("\(faults)"))",
                faults > 0 ? Style(fg: .bad, bg: .header, bold: true) : degraded > 0 ? Style(fg: .warn, bg: .header) : bar, 1
            ))
        // Drained (no work left) and draining (still finishing) are counted apart.
        let drained = s.drainedNodes.count, draining = s.drainingNodes.count
        let drainShort = draining > 0 ? "⊘\(drained) ~\(draining)" : "⊘\(figure("\(drained)"))"
        segments.append(
            (
                draining > 0 ? "drained \(drained) draining \(draining)" : "drained \(figure("\(drained)"))",
                drainShort, drainShort, drained + draining > 0 ? Style(fg: .warn, bg: .header) : bar, 3
            ))
        // The scope of what follows, with a colon so it reads as a label and not as a figure,
        // in one piece with the first of them so it is never kept without it or parted from it.
        // Every form keeps the percentile in the name ("TTFT99 1.82/2s"): with "TTFT 1.82/2s"
        // only the help said it was a p99 and not a mean. When even the compact line does not
        // fit, whole fields give way (lowest priority first), never the "99" of one.
        segments.append(
            ("since start: TTFT99 " + ttft, "since start: TTFT99 " + ttftShort, "so far: TTFT99 " + ttftShort, slo(ttftOK, seen: ttftSeen), 0))
        segments.append(("TPOT99 " + tpot, "TPOT99 " + tpot, "TPOT99 " + tpot, slo(tpotOK, seen: tpotSeen), 0))
        let compactLatencies = ["so far: TTFT99 " + ttftShort: "so far: TTFT99 " + ttftCompact, "TPOT99 " + tpot: "TPOT99 " + tpotCompact]
        let attained = s.requests.completed > 0 ? Format.percent(s.latency.sloAttainment) : "–"
        segments.append(("SLO \(attained)", "SLO \(attained)", "SLO \(attained)", bar, 1))
        let budget = b.width - 1
        var dropAbove = 4
        var form = 0  // 0 long, 1 short, 2 tight, 3 TTFT and TPOT a digit less, 4 counts too
        var gap = 2
        func text(_ segment: (String, String, String, Style, Int)) -> String {
            switch form {
            case 0: segment.0
            case 1: segment.1
            case 2: segment.2
            case 3: compactLatencies[segment.2] ?? segment.2
            default: segment.2 == runWaitTight ? runWaitCompact : compactLatencies[segment.2] ?? segment.2
            }
        }
        func width() -> Int {
            segments.filter({ $0.4 <= dropAbove }).map({ text($0).count + gap }).reduce(-gap, +)
        }
        while width() > budget {
            if form == 0 {
                form = 1
            } else if gap == 2 {
                gap = 1
            } else if form < 4 {
                form += 1
            } else if dropAbove > 0 {
                dropAbove -= 1
            } else {
                break
            }
        }
        x = 1
        for segment in segments where segment.4 <= dropAbove {
            var shown = text(segment)
            guard x + shown.count <= b.width else { break }
            // The scope label in the bar's colour: the SLO's green or red is the figure's.
            if let label = ["since start: ", "so far: "].first(where: { shown.hasPrefix($0) }) {
                x = b.put(label, x: x, y: 1, style: bar)
                shown.removeFirst(label.count)
            }
            x = b.put(shown, x: x, y: 1, style: segment.3) + gap
        }
    }

    /// While the link to the engine is down, the last snapshot stays on screen, but it pictures
    /// no live state: its state colours (SLO green, load bands, role and heat colours, warnings)
    /// are turned to the neutral ones, so stale figures cannot pass for live ones. The header's
    /// first line (the link's warning) and the footer keep theirs.
    static func staleOut(_ b: inout CellBuffer) {
        guard b.height > 2 else { return }
        func stateColour(_ role: ColorRole?) -> Bool {
            switch role {
            case .good, .warn, .bad, .heat, .role: true
            default: false
            }
        }
        for y in 1..<(b.height - 1) {
            for x in 0..<b.width {
                var cell = b[x, y]
                guard stateColour(cell.style.fg) || stateColour(cell.style.bg) else { continue }
                if stateColour(cell.style.fg) { cell.style.fg = cell.style.bg == .header ? .header : .dim }
                if stateColour(cell.style.bg) { cell.style.bg = nil }
                cell.style.bold = false
                b[x, y] = cell
            }
        }
    }

    // MARK: tabs and footer

    static func tabBar(_ b: inout CellBuffer, _ state: ConsoleState, _ theme: Theme) {
        for (view, columns) in ScreenLayout.tabRanges {
            let active = view == state.view
            b.put(
                ScreenLayout.tabLabel(view), x: columns.lowerBound, y: ScreenLayout.tabRow,
                style: active ? Style(fg: .tabActive, bold: true) : .dim)
        }
        let note = "theme \(theme.name) "
        let end = ScreenLayout.tabRanges.last!.columns.upperBound
        if b.width - note.count > end + 2 {
            b.put(note, x: b.width - note.count, y: ScreenLayout.tabRow, style: .dim)
        }
    }

    static let footerKeys: [(String, String)] = [
        ("q", "quit"), ("?", "help"), (":", "cmd"), ("1-6", "views"), ("space", "pause"), ("+/-", "speed"),
        ("hjkl", "move"), ("d/u", "drain"), ("f", "fault"), ("r", "rebalance"), ("t", "theme"),
    ]

    /// The same keys, labels glued to their keys, for screens under 120 columns.
    static let footerKeysShort: [(String, String)] = [
        ("q", "quit"), ("?", "help"), (":", "cmd"), ("", ""), ("␣", "pause"), ("+-", "speed"), ("d/u", "drain"),
        ("f", "fault"), ("r", "rebal"), ("t", "theme"), ("hjkl", "move"),
    ]

    static func footer(_ b: inout CellBuffer, _ state: ConsoleState, _ snapshot: Snapshot) {
        let y = b.height - 1
        if let pending = state.confirmation {
            let x = b.put(pending.question + " y/n", x: 0, y: y, style: Style(fg: .warn, bold: true))
            // A note (a paste ignored) takes the hint's place; the question stays open.
            if let note = state.status?.text {
                b.put("  " + note, x: x, y: y, style: .dim)
                return
            }
            // The hint in the form that fits whole: at 80 columns a straggler's question left
            // "(y confirms, p previews, any other key ca", and the way out was cut off.
            let hints = [
                "  (y confirms, p previews, any other key cancels)", "  (y confirms, p previews, other keys cancel)",
                "  (p previews, other keys cancel)", "  (other keys cancel)",
            ]
            if let hint = hints.first(where: { x + $0.count <= b.width }) { b.put(hint, x: x, y: y, style: .dim) }
            return
        }
        if let prompt = state.prompt {
            let lead = prompt.purpose == .command ? ":" : "/"
            // A line wider than the screen shows its end, where the typing happens (as a shell
            // does): clipped at the right edge, the cursor and the last words were off-screen.
            var shown = prompt.text
            let room = b.width - 2  // the lead and the cursor
            if shown.count > room { shown = "…" + String(shown.suffix(max(0, room - 1))) }
            let x = b.put(lead + shown, x: 0, y: y, style: .text)
            b.put("█", x: x, y: y, style: .accent)
            if let status = state.status {
                if x + 1 + 2 + status.text.count <= b.width {
                    b.put("  " + status.text, x: x + 1, y: y, style: .dim)
                } else {
                    // Too long beside the typed line: whole, on the rows above it, as a status
                    // without a prompt is. Beside it, it ran off the edge mid-word ("pasted 2
                    // lines: kept the first only — run commands one at a ti").
                    var lines = DetailOverlays.wrap(status.text, width: b.width - 2)
                    if lines.count > 2 {
                        lines = Array(lines.prefix(2))
                        lines[1] = String(lines[1].prefix(b.width - 3)) + "…"
                    }
                    for (i, line) in lines.enumerated() {
                        let row = y - lines.count + i
                        b.fill(Rect(x: 0, y: row, width: b.width, height: 1))
                        b.put("  " + line, x: 0, y: row, style: .dim)
                    }
                }
            } else if x + 4 < b.width {
                let hint =
                    prompt.purpose == .noList
                    ? "no list here: / filters Experts (2), Requests (5), Events (6) · Esc"
                    : prompt.purpose == .command ? "Enter sends · Esc cancels" : "filters as you type · Enter keeps · Esc clears"
                b.put("  " + hint, x: x + 1, y: y, style: .dim)
            }
            return
        }
        if let status = state.status {
            // A status wider than the screen wraps onto the rows above (at most three, for the
            // seconds it shows): cut at the edge, an error lost what it ended with, e.g. the
            // durations `:preview` takes, and the first-run hint its other scenarios.
            // Under a box (a what-if, the help) the rows above are the box's: one row, cut with "…".
            let mostRows = ConsoleUpdate.boxOpen(state) ? 1 : 3
            var lines = DetailOverlays.wrap(status.text, width: b.width - 2)
            if lines.count > mostRows {
                lines = Array(lines.prefix(mostRows))
                lines[mostRows - 1] = String(lines[mostRows - 1].prefix(b.width - 3)) + "…"
            }
            let style: Style = status.isError ? .bad : status.isWarning ? .warn : .good
            let mark = status.isError ? "✗ " : status.isWarning ? "⚠ " : "✓ "
            for (i, line) in lines.enumerated() {
                let row = y - (lines.count - 1) + i
                b.fill(Rect(x: 0, y: row, width: b.width, height: 1))
                b.put((i == 0 ? mark : "  ") + line, x: 0, y: row, style: style)
            }
            return
        }
        if state.preview != nil || state.faultMenu != nil {
            // The view's keys (space, r, t, 1-6 …) do nothing under these boxes; listing them
            // here said otherwise.
            b.put("keys act on the box above · Esc closes it · : command line", x: 0, y: y, style: .dim)
            return
        }
        var x = 0
        for (key, label) in footerItems(state.view, width: b.width, idle: idleKeys(state, snapshot)) {
            x = b.put(key, x: x, y: y, style: .accent)
            x = b.put(label, x: x, y: y, style: .dim)
        }
    }

    /// The footer's keys for `view` at `width`, each as (key, its label with the gap after it).
    ///
    /// Wide screens have the long labels; under 120 columns the short ones with single gaps. A
    /// view with keys of its own (filter, detail, sort, level, window) did not fit even so at 80
    /// columns, and the line was cut at its end: the Requests view lost f, r, t and hjkl with
    /// nothing to say so. Then the tight form is used: a sign key written against its label
    /// (`/filter`, `⏎detail`), one-word labels (`s sort`, `d drain`; `S` and `u` are in the
    /// help); and if that still does not fit, the least used keys go first (t, hjkl, r, …),
    /// never the view's own, and `? help` reads `? more`.
    ///
    /// Keys in `idle` (``idleKeys(_:_:)``) act on nothing here and are not offered.
    static func footerItems(_ view: ConsoleView, width: Int, idle: Set<String> = []) -> [(key: String, label: String)] {
        // The narrow set has a placeholder where the wide one has "1-6 views" (the tab bar shows
        // the numbers), so view keys go in at the same index.
        func withViewKeys(_ base: [(String, String)], sort: String) -> [(String, String)] {
            var keys = base
            if view == .requests { keys.insert(sort == "" ? ("s/S", "sort") : ("s", sort), at: 4) }
            if view == .requests || view == .events { keys.insert(("⏎", "detail"), at: 4) }
            if view == .events { keys.insert(("v", "level"), at: 4) }
            if view == .latency { keys.insert(("w", "window"), at: 4) }
            if [.events, .requests, .experts].contains(view) { keys.insert(("/", "filter"), at: 4) }
            return keys.filter { !$0.0.isEmpty && !idle.contains($0.0) }
        }
        if width >= 120 {
            return fitted(withViewKeys(footerKeys, sort: "").map { ($0.0, " \($0.1)  ") }, width: width)
        }
        let narrow = withViewKeys(footerKeysShort, sort: "").map { ($0.0, " \($0.1) ") }
        if fits(narrow, width) { return narrow }
        // Tight: sign keys against their labels, one key per label.
        let tightLabels = ["d/u": ("d", "drain")]
        let tight: [(key: String, label: String)] = withViewKeys(footerKeysShort, sort: "sort").map { key, label in
            let (k, l) = tightLabels[key] ?? (key, label)
            let sign = !(k.first?.isLetter ?? false)
            return (k, (sign ? "" : " ") + l + " ")
        }
        // Least used first; the rest (quit, help, the command line, the view's keys) stay.
        var shown = tight
        for dropped in ["t", "hjkl", "r", "f", "d", "+-", "␣"] where !fits(shown, width) {
            shown.removeAll { $0.key == dropped }
        }
        if shown.count < tight.count, let help = shown.firstIndex(where: { $0.key == "?" }) {
            shown[help].label = "more "
        }
        return fitted(shown, width: width)
    }

    /// The footer's keys that act on nothing in this view of this deployment, so the footer does
    /// not offer them: on a dense model (Llama-3-70B on H100s) it listed `r rebalance`, which
    /// the engine refuses ("llama-3-70b has no experts"), and in the Experts view `/ filter` and
    /// `hjkl move` for a heat map that is not there; `hjkl` moves nothing in the KV and Latency
    /// views; and keys the link turns down (a server without drains or faults) are not offered.
    static func idleKeys(_ state: ConsoleState, _ s: Snapshot) -> Set<String> {
        var idle = Set<String>()
        let dense = s.servesDenseModel
        if dense || !state.capabilities.contains(.rebalance) { idle.insert("r") }
        if !state.capabilities.contains(.drain) { idle.insert("d/u") }
        if !state.capabilities.contains(.faults) { idle.insert("f") }
        if state.view == .kvCache || state.view == .latency || (state.view == .experts && dense) { idle.insert("hjkl") }
        if state.view == .experts && dense { idle.insert("/") }
        return idle
    }

    /// Whether all of `items` fit in `width`.
    private static func fits(_ items: [(key: String, label: String)], _ width: Int) -> Bool {
        fitted(items, width: width).count == items.count
    }

    /// The leading items that fit whole (a label's trailing gap may fall off the edge).
    private static func fitted(_ items: [(key: String, label: String)], width: Int) -> [(key: String, label: String)] {
        var x = 0
        var kept: [(key: String, label: String)] = []
        for item in items {
            let gap = item.label.reversed().prefix { $0 == " " }.count
            guard x + item.key.count + item.label.count - gap <= width else { break }
            kept.append(item)
            x += item.key.count + item.label.count
        }
        return kept
    }
}
