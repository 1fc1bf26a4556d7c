import ServingEngine

/// The what-if overlay (issue 16): `:preview drain node 20`, or `p` at a drain/fault
/// confirmation, asks the engine to run two forks ahead (as it is, and with the command); the
/// overlay shows both sides, the deltas coloured by whether they are better or worse, a verdict
/// line, `a` to apply the command for real and Esc to dismiss. The live engine keeps running
/// while the preview computes; after a moment a progress bar shows; Esc then cancels it.
public struct PreviewOverlay: Sendable, Equatable {
    public enum Phase: Sendable, Equatable {
        case computing(progress: Double)
        case ready(PreviewResult)
        case refused(String)
    }
    /// The command previewed, sent as is by `a`.
    public var command: String
    /// The full request, `preview drain node 20 for 10m`.
    public var line: String
    public var phase: Phase = .computing(progress: 0)
    /// Wall seconds when it was asked (the progress bar waits ``quietSeconds``).
    public var askedAt: Double?

    /// A preview shorter than this shows only "computing…", no bar.
    public static let quietSeconds = 0.3

    public init(command: String, line: String, askedAt: Double?) {
        self.command = command
        self.line = line
        self.askedAt = askedAt
    }
}

/// What a preview computing elsewhere tells the console.
public enum PreviewUpdate: Sendable, Equatable {
    case progress(line: String, Double)
    case finished(line: String, Result<PreviewResult, PreviewRefusal>)
}

/// The overlay's keys and messages (called from ``ConsoleUpdate``; pure).
enum PreviewKeys {
    /// A `:` line that asks for a preview rather than sending a command.
    static func isPreview(_ line: String) -> Bool { PreviewRequest.isPreview(line) }

    /// Opens the overlay for `line` (with or without the `preview` keyword and `for DURATION`),
    /// or says in the footer why the line is not a preview.
    static func start(_ line: String, _ s: inout ConsoleState, _ effects: inout [ConsoleEffect]) {
        switch PreviewRequest.parse(line, on: s.pod) {
        case .failure(let error):
            s.status = StatusLine("preview: " + (error == emptyCommand ? emptyHint : error.message), isError: true)
        case .success(let request):
            s.confirmation = nil
            s.faultMenu = nil
            s.preview = PreviewOverlay(command: request.command.description, line: request.description, askedAt: s.wallNow)
            effects.append(.preview(commandLine: request.description))
        }
    }

    /// The parser's refusal of a line with no command, asked of the parser rather than copied.
    static let emptyCommand: CommandParseError? = {
        if case .failure(let error) = PreviewRequest.parse("preview") { error } else { nil }
    }()

    /// The footer's answer to `:preview` alone. The parser's own, "e.g. 'preview drain node 20
    /// for 10m'", named a node a one-node GPU cluster lacks (the preview then refused it).
    static var emptyHint: String {
        let words = PreviewRequest.commandWords
        return "preview what? preview COMMAND [for DURATION]: COMMAND starts with "
            + words.dropLast().joined(separator: ", ") + " or " + (words.last ?? "") + " (Tab lists the rest); DURATION "
            + PreviewRequest.durationsText
    }

    /// `a` applies the previewed command for real (the engine's reply lands in the footer); a
    /// destructive one (``asksFirst(_:)``) first asks y/n, as `d` and the fault menu do. Esc,
    /// `q` or `n` dismiss, and cancel a preview still computing (its forks stop within a slice
    /// and free their place, so the next preview is not refused as busy). Every other key is
    /// inert while the overlay is up (`:` is taken before, by ``ConsoleUpdate``: it closes the
    /// box and opens the command line).
    static func handle(_ key: Key, _ s: inout ConsoleState, _ effects: inout [ConsoleEffect]) {
        guard let overlay = s.preview else { return }
        switch key {
        case .escape, .char("q"), .char("n"):
            s.preview = nil
            if case .computing = overlay.phase {
                s.status = StatusLine("preview cancelled: \(overlay.command)")
                effects.append(.cancelPreview(commandLine: overlay.line))
            }
        case .char("a"), .char("A"):
            guard case .ready = overlay.phase else { return }
            s.preview = nil
            if asksFirst(overlay.command) {
                ConsoleUpdate.confirm(overlay.command, &s, &effects)
            } else {
                effects.append(.send(commandLine: overlay.command))
            }
        default: break
        }
    }

    /// Whether `a` asks y/n before sending `command`: the commands that take capacity away or
    /// break hardware, which the console's own keys (`d`, the `f` menu) already ask about:
    /// drains, faults, and a scale that may remove TEs (`-K`, or `N`, which the console cannot
    /// compare with the count at the moment it is sent). Never asked with `--yes`.
    static func asksFirst(_ command: String) -> Bool {
        guard case .success(let parsed) = OperatorCommand.parse(command) else { return true }
        switch parsed {
        case .drain, .faultDie, .faultNPU, .faultNode, .faultLink, .faultStraggler, .faultHBM, .faultGlitch:
            return true
        case .scale(_, .by(let k), _): return k < 0
        case .scale(_, .to, _): return true
        case .undrain, .heal, .healAll, .rebalance, .rate, .speed, .speedMax, .pause, .resume, .policy, .autoscale:
            return false
        }
    }

    /// A progress report or the answer; ignored unless it is for the overlay on screen.
    static func absorb(_ update: PreviewUpdate, _ s: inout ConsoleState) {
        guard var overlay = s.preview else { return }
        switch update {
        case .progress(let line, let share):
            guard line == overlay.line, case .computing = overlay.phase else { return }
            overlay.phase = .computing(progress: share)
        case .finished(let line, let answer):
            guard line == overlay.line, case .computing = overlay.phase else { return }
            switch answer {
            case .success(let result): overlay.phase = .ready(result)
            case .failure(let refusal): overlay.phase = .refused(refusal.message)
            }
        }
        s.preview = overlay
    }
}

/// Draws the overlay: a box over the current view.
enum PreviewOverlayView {
    /// Which way is better for a row's figure.
    enum Better { case higher, lower, neither }

    struct Row {
        var label: String
        var baseline: Double
        var withCommand: Double
        var format: (Double) -> String
        var better: Better
        /// Shares (SLO, KV) compare in percentage points, other figures in per cent.
        var points = false
    }

    /// `colocated`: every die both prefills and decodes, so the per-die rate is over all of them
    /// ("per die"); elsewhere it is over the dies that decode, and the row says so, as `xds run`
    /// does ("output tok/s per die" read as over the whole pod's 768).
    static func rows(_ r: PreviewResult, colocated: Bool = false) -> [Row] {
        let b = r.baseline, w = r.withCommand
        let ms: (Double) -> String = { Format.ms($0) }
        let share: (Double) -> String = { Format.fixed($0 * 100, 1) + "%" }
        let count: (Double) -> String = { Format.count($0) }
        let rate: (Double) -> String = { Format.count($0) }
        var rows: [Row] = []
        // What was already in the system at the fork: without it, "completed" above "arrived"
        // read as a contradiction (the window's counts reconcile with it).
        if let bStart = b.requests.inFlightAtStart, let wStart = w.requests.inFlightAtStart {
            rows.append(Row(label: "in flight at start", baseline: Double(bStart), withCommand: Double(wStart),
                            format: count, better: .neither))
        }
        return rows + [
            Row(label: "arrived", baseline: Double(b.requests.arrived), withCommand: Double(w.requests.arrived),
                format: count, better: .neither),
            Row(label: "completed", baseline: Double(b.requests.completed), withCommand: Double(w.requests.completed),
                format: count, better: .higher),
            Row(label: "failed + rejected", baseline: Double(b.lost), withCommand: Double(w.lost), format: count, better: .lower),
            Row(label: "in flight at end", baseline: Double(b.requests.inFlight), withCommand: Double(w.requests.inFlight),
                format: count, better: .lower),
            Row(label: "TTFT p50", baseline: b.latencyMs.ttft.p50, withCommand: w.latencyMs.ttft.p50, format: ms, better: .lower),
            Row(label: "TTFT p99", baseline: b.latencyMs.ttft.p99, withCommand: w.latencyMs.ttft.p99, format: ms, better: .lower),
            Row(label: "TPOT p50", baseline: b.latencyMs.tpot.p50, withCommand: w.latencyMs.tpot.p50, format: ms, better: .lower),
            Row(label: "TPOT p99", baseline: b.latencyMs.tpot.p99, withCommand: w.latencyMs.tpot.p99, format: ms, better: .lower),
            Row(label: "E2E p99", baseline: b.latencyMs.e2e.p99, withCommand: w.latencyMs.e2e.p99, format: ms, better: .lower),
            Row(label: "SLO attainment", baseline: b.slo.attainment, withCommand: w.slo.attainment, format: share,
                better: .higher, points: true),
            Row(label: "output tok/s", baseline: b.throughput.outputTokensPerS, withCommand: w.throughput.outputTokensPerS,
                format: rate, better: .higher),
            Row(label: colocated ? "  per die" : "  per decode die", baseline: b.throughput.outputTokensPerSPerNPU,
                withCommand: w.throughput.outputTokensPerSPerNPU, format: { Format.fixed($0, 0) }, better: .higher),
            // A colocated deployment has no decode TE: its groups' KV serves prefill and decode
            // ("decode KV peak" named TEs it does not have, as the KV view did).
            Row(label: colocated ? "KV peak" : "decode KV peak", baseline: b.kv.peakUsage, withCommand: w.kv.peakUsage, format: share,
                better: .lower, points: true),
            Row(label: "prefix hit rate", baseline: b.kv.prefixHitRate, withCommand: w.kv.prefixHitRate, format: share,
                better: .higher, points: true),
        ]
    }

    /// "+38%", "−2.1 pt", "=" (no change), "≈" (a change that shows as 0.0: a figure that moved
    /// by less than its last digit read "−0.0%" beside rows saying "="), "new" (from zero).
    static func delta(_ row: Row) -> String {
        let d = row.withCommand - row.baseline
        if row.points {
            return abs(d) < 0.0005 ? "=" : (d > 0 ? "+" : "−") + Format.fixed(abs(d) * 100, 1) + " pt"
        }
        if d == 0 { return "=" }
        if row.baseline == 0 { return (d > 0 ? "+" : "−") + row.format(abs(d)) }
        let pct = d / abs(row.baseline) * 100
        if abs(pct) < 0.05 { return "≈" }
        return (pct > 0 ? "+" : "−") + Format.fixed(abs(pct), abs(pct) >= 10 ? 0 : 1) + "%"
    }

    /// Green if the command makes the figure better, red if worse, dim if the change is within
    /// 1% (1 pt for shares) or the figure has no better direction.
    static func deltaStyle(_ row: Row) -> Style {
        let d = row.withCommand - row.baseline
        let small = row.points ? abs(d) < 0.01 : abs(d) <= 0.01 * max(abs(row.baseline), 1e-12)
        guard row.better != .neither, !small else { return .dim }
        let better = row.better == .higher ? d > 0 : d < 0
        return better ? Style(fg: .good, bold: true) : Style(fg: .bad, bold: true)
    }

    /// "10 min", "90 s", "1 h".
    static func words(duration seconds: Double) -> String {
        if seconds >= 3_600, seconds.truncatingRemainder(dividingBy: 3_600) == 0 { return "\(Int(seconds / 3_600)) h" }
        if seconds >= 60, seconds.truncatingRemainder(dividingBy: 60) == 0 { return "\(Int(seconds / 60)) min" }
        return Format.fixed(seconds, seconds == seconds.rounded() ? 0 : 1) + " s"
    }

    /// "TTFT p99 +38%, TPOT p99 +2.1% for 10 min, 0 requests lost": both SLO latencies, as
    /// `xds bench preview` prints them. With TTFT alone a straggler's preview read "TTFT p99
    /// +1.6% for 10 min, 0 requests lost" over a table saying TPOT p99 +75%. `width`: the room on
    /// the line; the first form that fits is given (the changes in symbols, then shorter labels).
    static func verdict(_ r: PreviewResult, width: Int = .max) -> String {
        let all = rows(r)
        let ttft = delta(all.first { $0.label == "TTFT p99" }!), tpot = delta(all.first { $0.label == "TPOT p99" }!)
        func said(_ change: String) -> String { change == "=" ? "unchanged" : change == "≈" ? "within 0.05%" : change }
        let lost = r.withCommand.lost
        let window = r.stopped == nil ? r.durationSeconds : r.coveredSeconds
        let without = r.baseline.lost != lost ? " (\(r.baseline.lost) without)" : ""
        let tail = " for \(words(duration: window)), \(lost) request\(lost == 1 ? "" : "s") lost\(without)"
        let short = " for \(words(duration: window)), \(lost) lost\(without)"
        let forms = [
            "TTFT p99 \(said(ttft)), TPOT p99 \(said(tpot))\(tail)",
            "TTFT p99 \(said(ttft)), TPOT p99 \(said(tpot))\(short)",
            "TTFT p99 \(ttft), TPOT p99 \(tpot)\(short)",
            "TTFT99 \(ttft), TPOT99 \(tpot)\(short)",
        ]
        return forms.first { $0.count <= width } ?? forms[forms.count - 1]
    }

    static func draw(_ b: inout CellBuffer, _ overlay: PreviewOverlay, _ state: ConsoleState, colocated: Bool = false) {
        // The figures' rows, and a line for the scenario steps the window also ran if any: the
        // box grows to hold them, as far as the screen allows (``drawReady``).
        var rowCount = 14
        var figures: [Row] = []
        if case .ready(let r) = overlay.phase {
            figures = rows(r, colocated: colocated)
            rowCount = figures.count + (r.scheduledSteps.isEmpty ? 0 : 1) - 1
        }
        // Between the header and the footer there are 21 rows at 80×24, one or two short of the
        // whole box: then the keys go on its bottom border, and the scenario steps take the loss
        // line, so every figure, the verdict and the keys stay in sight.
        let tight = rowCount + 8 > Overlays.room(b)
        let rect = Overlays.centered(b, width: 76, height: rowCount + 8)
        b.fill(rect)
        // Equal sides with the engine's reason: the reason takes the verdict's line, so the
        // title says what the verdict did (the window, no change).
        var title = "What if · \(overlay.command)"
        if case .ready(let r) = overlay.phase, r.noChangeReply != nil {
            title += " for \(words(duration: r.durationSeconds)): no change"
        }
        b.box(rect, title: title, style: .accent)
        let inner = rect.inner
        let x = inner.x + 1
        switch overlay.phase {
        case .computing(let progress):
            // Wrapped: in one line a long request ("fault straggler die 700 slowdown 2.5 for
            // 10m") was cut at the border, mid-number.
            var y = inner.y + 1
            for chunk in DetailOverlays.wrap("Running two forks of the live engine ahead (\(overlay.line)).", width: inner.width - 2) {
                b.put(chunk, x: x, y: y, style: .text, clip: inner)
                y += 1
            }
            b.put("The live run goes on meanwhile; nothing is applied.", x: x, y: y, style: .dim, clip: inner)
            var line = "computing…"
            if let asked = overlay.askedAt, let now = state.wallNow, now - asked >= PreviewOverlay.quietSeconds {
                let width = 30
                let filled = Int((min(max(progress, 0), 1) * Double(width)).rounded())
                line += " ▕" + String(repeating: "█", count: filled) + String(repeating: "░", count: width - filled)
                    + "▏ " + Format.percent(progress)
            }
            b.put(line, x: x, y: y + 2, style: .accent, clip: inner)
            b.put("Esc cancels the preview · : cancels it and opens the command line", x: x, y: inner.maxY - 1,
                  style: .dim, clip: inner)
        case .refused(let message):
            b.put("Not previewed:", x: x, y: inner.y + 1, style: .bad, clip: inner)
            var y = inner.y + 2
            for chunk in DetailOverlays.wrap(message, width: inner.width - 2) where y < inner.maxY - 1 {
                b.put(chunk, x: x, y: y, style: .warn, clip: inner)
                y += 1
            }
            b.put("Esc closes · : command line · other keys do nothing here", x: x, y: inner.maxY - 1, style: .dim,
                  clip: inner)
        case .ready(let r):
            let labelWidth = 22, column = 13
            // Below the figures: the scenario steps the window also ran on both sides (without
            // this line their effect read as the command's), the verdict, the commonest loss.
            // On a screen too short for all, the steps take the loss line (the verdict counts
            // the losses); they never cover a figure.
            let scheduled = scheduledLine(r, width: inner.width - 2)
            // The row the keys take: the last inside the box, or its bottom border when tight.
            let keysY = tight ? rect.maxY - 1 : inner.maxY - 1
            let roomy = inner.y + 2 + figures.count + (scheduled == nil ? 0 : 1) + 2 <= (tight ? inner.maxY : keysY)
            // The engine's reply when it alone says why the sides are equal: it takes the line
            // naming the window, the verdict's line and the loss line unless the scenario steps
            // take that. The verdict gives way: with both sides equal it only repeats what every
            // row's "=" says (its TTFT p99 and losses are rows). With one line left (80×24, steps
            // in the window) the reply lost its end ("…, and deployment…", then "… has none it
            // can scale…").
            let replyLines = noChangeLines(r, width: inner.width - 2, lines: scheduled != nil && !roomy ? 2 : 3)
            if let stopped = r.stopped {
                // Cut short (the wall-clock budget): say so where the window is named.
                b.put(stopped, x: x, y: inner.y, style: .warn, clip: inner)
            } else if let unfinished = r.unfinished {
                // The scale came into service after the window (or not at all): equal sides are no
                // verdict, so this says why, where the window is named. Cut to its first clause if
                // the whole line does not fit (the clause names the window and the finish).
                let first = unfinished.split(separator: ":", maxSplits: 1).first.map(String.init) ?? unfinished
                b.put(unfinished.count <= inner.width - 2 ? unfinished : first, x: x, y: inner.y, style: .warn, clip: inner)
            } else if let reply = replyLines.first {
                // Equal sides and no other reason: the engine's reply says why (it was only in
                // the JSON); what does not fit here goes on the loss line below.
                b.put(reply, x: x, y: inner.y, style: .warn, clip: inner)
            } else {
                b.put("next \(words(duration: r.durationSeconds)) of simulated time from \(Format.clock(r.fromSeconds))",
                      x: x, y: inner.y, style: .dim, clip: inner)
            }
            var cx = x + labelWidth
            for title in ["baseline", "with command", "change"] {
                b.put(Format.right(title, column), x: cx, y: inner.y + 1, style: Style(fg: .header, bold: true), clip: inner)
                cx += column + 1
            }
            for (i, row) in figures.enumerated() {
                let y = inner.y + 2 + i
                b.put(row.label, x: x, y: y, style: .text, clip: inner)
                b.put(Format.right(row.format(row.baseline), column), x: x + labelWidth, y: y, style: .text, clip: inner)
                b.put(Format.right(row.format(row.withCommand), column), x: x + labelWidth + column + 1, y: y,
                      style: .text, clip: inner)
                b.put(Format.right(delta(row), column), x: x + labelWidth + 2 * (column + 1), y: y,
                      style: deltaStyle(row), clip: inner)
            }
            var y = inner.y + 2 + figures.count
            if let scheduled, roomy {
                b.put(scheduled, x: x, y: y, style: .warn, clip: inner)
                y += 1
            }
            if replyLines.count >= 2 {
                b.put(replyLines[1], x: x, y: y, style: .warn, clip: inner)
            } else {
                let verdictStyle = r.withCommand.lost > r.baseline.lost ? Style.bad : Style(fg: .accent, bold: true)
                b.put(verdict(r, width: inner.maxX - x - 1), x: x, y: y, style: verdictStyle, clip: inner)
            }
            y += 1
            if let scheduled, !roomy {
                b.put(scheduled, x: x, y: y, style: .warn, clip: inner)
            } else if replyLines.count >= 3 {
                b.put(replyLines[2], x: x, y: y, style: .warn, clip: inner)
            } else if let (reason, count) = r.withCommand.requests.failureReasons.max(by: { ($0.value, $1.key) < ($1.value, $0.key) }) {
                b.put("most lost: \(count) × \(reason)", x: x, y: y, style: .warn, clip: inner)
            }
            // On the border the text keeps a blank from each corner, as a title does.
            let keysClip = tight ? Rect(x: rect.x + 1, y: keysY, width: rect.width - 2, height: 1) : inner
            let keys = tight ? " " + applyHint(overlay.command, state, room: rect.width - 4) + " "
                : applyHint(overlay.command, state, room: inner.width - 2)
            let wall = r.wallSeconds > 0 ? " · computed in \(Format.fixed(r.wallSeconds, 2)) s" : ""
            let end = b.put(keys, x: tight ? rect.x + 1 : x, y: keysY, style: .accent, clip: keysClip)
            // Whole or not at all (cut, it read "· com").
            let wallX = tight ? end - 1 : end
            if wallX + wall.count + (tight ? 1 : 0) <= keysClip.maxX {
                b.put(wall + (tight ? " " : ""), x: wallX, y: keysY, style: .dim, clip: keysClip)
            }
        }
    }

    /// The engine's reply (``PreviewResult/noChangeReply``) in at most `count` lines of `width`, from
    /// its second clause if the whole is longer, the last line ending in "…" if still longer; empty
    /// when the sides differ or a stop or an unfinished scale says why they do not.
    static func noChangeLines(_ r: PreviewResult, width: Int, lines count: Int = 2) -> [String] {
        guard let reply = r.noChangeReply?.terminalSafe, width > 1, count > 0 else { return [] }
        // Shorter and shorter forms, the first that fits whole: the reply; the reason after its
        // first clause, which echoes the command the box's title names ("autoscaler slo (…); it
        // scales prefill and decode TEs, and … has none it can scale"); that reason without its
        // asides in parentheses ("(colocated TEs scale only by command: …)"), a hint, where the
        // reason itself was cut mid-sentence.
        var forms = [reply]
        if let semicolon = reply.range(of: "; ") {
            let reason = String(reply[semicolon.upperBound...])
            forms.append(reason)
            forms.append(withoutAsides(reason))
        }
        let wrapped = forms.map { DetailOverlays.wrap($0, width: width) }
        if let whole = wrapped.first(where: { $0.count <= count }) { return whole }
        let lines = wrapped.last!
        // The last line shown says the reply goes on (at 80×24 with scenario steps in the window
        // the reply had one line, cut mid-sentence with no sign: "…, and deployment").
        let last = lines[count - 1]
        return Array(lines.prefix(count - 1)) + [String(last.prefix(width - 1)) + "…"]
    }

    /// `text` without its parenthesised asides and the blank before each: "has none it can scale
    /// (colocated TEs scale only by command: scale colocated N)" → "has none it can scale".
    static func withoutAsides(_ text: String) -> String {
        var out = "", depth = 0
        for c in text {
            if c == "(" {
                // The blank before an aside goes with it: "scale (…), x" → "scale, x".
                if depth == 0 { while out.last == " " { out.removeLast() } }
                depth += 1
            } else if c == ")" && depth > 0 {
                depth -= 1
            } else if depth == 0 {
                out.append(c)
            }
        }
        return out
    }

    /// "both sides also ran: rate 150 at 0:12:00, fault npu 170 at 0:13:30": the scenario steps
    /// due in the window (``PreviewResult/scheduledSteps``), as many as fit in `width`, then
    /// "+N more"; "(refused by one side)" when a side refused one. Nil when none were due.
    static func scheduledLine(_ r: PreviewResult, width: Int) -> String? {
        let steps = r.scheduledSteps
        guard !steps.isEmpty else { return nil }
        let refused = steps.contains { $0.baselineRefused != nil || $0.withCommandRefused != nil }
        let tail = refused ? " (refused by one side)" : ""
        var line = "both sides also ran:"
        for (i, step) in steps.enumerated() {
            let item = (i == 0 ? " " : ", ") + "\(step.command.terminalSafe) at \(Format.clock(step.atSeconds))"
            let left = steps.count - i - 1
            // Room for this item and, if more follow, the "+N more" after it.
            let after = left > 0 ? ", +\(left) more" : ""
            if line.count + item.count + after.count + tail.count > width {
                line += (i == 0 ? " " : ", ") + "+\(steps.count - i) more"
                return line + tail
            }
            line += item
        }
        return line + tail
    }

    /// "a applies drain node 20 (y/n first) · Esc dismisses · : command line": the keys the
    /// box takes (every other key is inert), the command named when it fits in `room`.
    static func applyHint(_ command: String, _ state: ConsoleState, room: Int) -> String {
        let how = PreviewKeys.asksFirst(command) && state.confirmDestructive ? " (y/n first)" : " at once"
        let rest = " · Esc dismisses · : command line"
        let named = "a applies \(command)\(how)" + rest
        return named.count <= room ? named : "a applies it\(how)" + rest
    }
}
