import ServingEngine

/// Boxes opened by Enter: a request's timeline (Requests) and one event in full (Events).
enum DetailOverlays {
    /// Units the engine's texts put after a number ("2.3 s", "120 ms", "64 GB").
    static let unitWords: Set<String> = ["s", "ms", "µs", "min", "h", "GB", "TB", "MB", "KB", "%", "×", "s,", "s;", "s)", "ms,", "ms)", "s:"]

    /// Wraps `text` into lines of at most `width` columns, at spaces where it can. The console's
    /// one word-wrapper: the what-if box had a twin of its own that split "30.0" from its "s".
    static func wrap(_ text: String, width: Int) -> [String] {
        guard width > 0 else { return [] }
        var lines: [String] = []
        var line = ""
        // A unit stays with its number: "recovered in 0.2" / "s" split a figure from its unit.
        var words: [String] = []
        for word in text.split(separator: " ", omittingEmptySubsequences: false).map(String.init) {
            if unitWords.contains(word), let last = words.last, last.last?.isNumber == true, last.count + 1 + word.count <= width {
                words[words.count - 1] += " " + word
            } else {
                words.append(word)
            }
        }
        for word in words {
            var word = word
            while word.count > width {
                if !line.isEmpty { lines.append(line); line = "" }
                lines.append(String(word.prefix(width)))
                word = String(word.dropFirst(width))
            }
            if line.isEmpty {
                line = word
            } else if line.count + 1 + word.count <= width {
                line += " " + word
            } else {
                lines.append(line)
                line = word
            }
        }
        if !line.isEmpty { lines.append(line) }
        return lines
    }

    static func request(_ b: inout CellBuffer, _ id: Int, _ state: ConsoleState, _ s: Snapshot) {
        // The engine's own record when the link answers detail queries; the snapshot's view otherwise.
        if let detail = state.requestDetailRecord, detail.id == id {
            box(&b, "Request #\(id) · any key closes", RequestDetailView.lines(detail))
            return
        }
        if state.requestQueries {
            let waiting = state.requestQueryProblem.map { ("the engine did not answer: \($0)", Style.bad) }
                ?? ("asking the engine for its record of request #\(id)…", Style.dim)
            box(&b, "Request #\(id) · any key closes", [waiting])
            return
        }
        let r = (s.inFlight + s.recent).first { $0.id == id }
        let timeline = state.memory.timelines[id]
        var lines: [(String, Style)] = []
        guard let r else {
            lines.append(("request #\(id) is no longer in the snapshot (finished requests leave", .dim))
            lines.append(("the recent list after a while)", .dim))
            box(&b, "Request #\(id)", lines)
            return
        }
        lines.append(("stage      \(r.stage.rawValue)" + (r.reason.map { " · \($0)" } ?? ""), RequestsView.stageStyle(r.stage)))
        lines.append(("where      \(r.location.isEmpty ? "–" : r.location)", .text))
        lines.append(("tokens     prompt \(r.promptTokens) · output \(r.generatedTokens) of \(r.outputTokens)", .text))
        let end = r.finishedAt ?? s.simTime
        lines.append(
            ("arrived    \(Format.clockTenths(r.arrivedAt)) · \(r.finishedAt == nil ? "age" : "E2E") "
                + Format.ms(max(0, end - r.arrivedAt) * 1000) + " · TTFT " + (r.ttftMs.map(Format.ms) ?? "–"), .text))
        if r.generatedTokens > 1, let ttft = r.ttftMs, r.finishedAt != nil {
            let tpot = (max(0, end - r.arrivedAt) * 1000 - ttft) / Double(r.generatedTokens - 1)
            lines.append(("TPOT       \(Format.ms(tpot)) mean per output token after the first", .text))
        }
        lines.append(("", .text))
        lines.append(("Timeline (as seen by the console, a few snapshots per second)", Style(fg: .title, bold: true)))
        for step in timeline?.steps ?? [] {
            let place = step.location.isEmpty ? "" : " · \(step.location)"
            let what: String =
                switch step.stage {
                case .queued: "queued"
                case .prefill: "prefill on its TE"
                case .transfer: "KV transfer to decode"
                case .decode: "decode"
                case .completed: "finished"
                case .failed: "failed"
                case .rejected: "rejected"
                case .cancelled: "cancelled"
                }
            lines.append(("  \(Format.clockTenths(step.simTime))  \(what)\(place)", RequestsView.stageStyle(step.stage)))
        }
        if timeline == nil { lines.append(("  (not seen yet)", .dim)) }
        box(&b, "Request #\(id) · any key closes", lines)
    }

    /// The event opened with Enter, whatever arrived since: the box used to hold a position in
    /// the list, and each new event (a rate step, a rebalance) put another event in the box.
    static func event(_ b: inout CellBuffer, _ e: EngineEvent, _ state: ConsoleState, _ s: Snapshot) {
        let shown = EventsView.shown(state)
        let row = EventsView.row(of: e, state).map { shown[$0] }
        let count = row?.count ?? 1
        var lines: [(String, Style)] = [
            ("time       \(Format.clockTenths(e.time)) (simulated)", .text),
            ("severity   \(e.severity.rawValue) · kind \(e.kind.rawValue)", EventsView.style(e.severity)),
        ]
        // The count is the row's now, newer repeats included: when the row's newest is not the
        // event shown, it says when that was ("time 0:02:30.0 … repeated ×11" sat beside the
        // row's "0:02:45.0 … (×11)" and read as eleven repeats of the event in the box).
        let newest = row.flatMap { $0.event != e ? " · the newest at \(Format.clockTenths($0.event.time))" : nil } ?? ""
        if count > 1 { lines.append(("repeated   ×\(count) (collapsed, routine)" + newest, .dim)) }
        if let id = e.requestId { lines.append(("request    #\(id)", .text)) }
        lines.append(("", .text))
        let width = min(b.width - 6, 96)
        for line in wrap(e.message, width: width) { lines.append((line, EventsView.style(e.severity))) }
        box(&b, "Event · any key closes", lines)
    }

    /// `text` in lines of at most `width`, the later ones indented under the value ("stage
    /// failed · …" goes on under "failed", a timeline line under its times).
    static func wrapHanging(_ text: String, width: Int) -> [String] {
        guard text.count > width, width > 20 else { return [text] }
        let lead = text.prefix { $0 == " " }.count
        let body = String(text.dropFirst(lead))
        // The value starts after the label's run of two or more blanks; else two in.
        let chars = Array(body)
        var indent = lead + 2
        if let gap = chars.indices.dropFirst().dropLast().first(where: { chars[$0] == " " && chars[$0 + 1] == " " }) {
            indent = lead + gap + chars[gap...].prefix { $0 == " " }.count
        }
        indent = min(indent, width / 2)
        guard let head = wrap(body, width: width - lead).first else { return [text] }
        let rest = String(body.dropFirst(head.count).drop { $0 == " " })
        return [String(repeating: " ", count: lead) + head]
            + wrap(rest, width: width - indent).map { String(repeating: " ", count: indent) + $0 }
    }

    static func box(_ b: inout CellBuffer, _ title: String, _ lines: [(String, Style)]) {
        // Lines wider than the screen allows wrap inside the box: cut at its border, the decode
        // line lost its first-token time and token count at 80 columns, a failure its reason.
        let room = b.width - 6
        let lines = lines.flatMap { text, style in wrapHanging(text, width: room).map { ($0, style) } }
        let width = min(b.width - 2, max(60, (lines.map(\.0.count).max() ?? 0) + 4))
        let rect = Overlays.centered(b, width: width, height: lines.count + 2)
        b.fill(rect)
        b.box(rect, title: title, style: .accent)
        let inner = rect.inner
        for (i, (text, style)) in lines.enumerated() where i < inner.height {
            b.put(text, x: inner.x + 1, y: inner.y + i, style: style, clip: inner)
        }
    }
}
