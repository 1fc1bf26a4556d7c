import ServingEngine

/// View 6: the engine's event log, newest first, filtered with `/` and by severity (`v`);
/// routine events (rebalances, the demo's rate steps) are collapsed (×N); Enter shows the selected one in full.
enum EventsView {
    static func matches(_ e: EngineEvent, _ filter: String) -> Bool {
        guard !filter.isEmpty else { return true }
        let needle = filter.lowercased()
        return e.message.lowercased().contains(needle) || e.kind.rawValue.lowercased().contains(needle)
            || e.severity.rawValue.contains(needle)
    }

    /// The message with its numbers blanked, each number one `#` whatever its digits and
    /// decimal point: "expert rebalance 3 started" and "… 4 started" are the same routine
    /// event, and so are the demo's "rate 25: … 25 requests/s" and "rate 32.2: … 32.2
    /// requests/s" (digit by digit they were two shapes, listed as two rows).
    static func shape(_ message: String) -> String {
        // Over UTF-8 bytes (the numbers are ASCII): it runs for every listed event several times
        // a frame, on up to the engine's 1,000 held.
        let bytes = Array(message.utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        func digit(_ i: Int) -> Bool { i >= 0 && i < bytes.count && bytes[i] >= 0x30 && bytes[i] <= 0x39 }
        var i = 0
        while i < bytes.count {
            guard digit(i) else {
                out.append(bytes[i])
                i += 1
                continue
            }
            out.append(UInt8(ascii: "#"))
            // The number runs on over digits and over a point between two digits.
            while i < bytes.count && (digit(i) || (bytes[i] == UInt8(ascii: ".") && digit(i - 1) && digit(i + 1))) { i += 1 }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Kinds the engine logs over and over with changing numbers (rebalance every minute, …):
    /// a run of them folds by shape. Everything else is an action or a change of state: `rate 25`
    /// from the demo load then the operator's `rate 30` are two commands, and folding them by
    /// shape showed "rate 30 … (×2)" for a command sent once. Those fold only when identical.
    static let routineKinds: Set<EngineEvent.Kind> = [.rebalance, .info, .requestFinished, .queueThreshold]

    /// The listed events, newest first: filtered, and routine (info) events folded into one row
    /// with their count.
    static func shown(_ state: ConsoleState) -> [(event: EngineEvent, count: Int)] {
        var rows: [(event: EngineEvent, count: Int)] = []
        fold(state) { e, row in
            if row < rows.count { rows[row].count += 1 } else { rows.append((e, 1)) }
            return true
        }
        return rows
    }

    /// The row of ``shown(_:)`` that lists `event` (its own row, or the row it is folded into);
    /// nil once it has left the engine's ring or the filter hides it. The cursor and an open
    /// detail follow an event by it, since new events shift every row down.
    static func row(of event: EngineEvent, _ state: ConsoleState) -> Int? {
        var found: Int?
        fold(state) { e, row in
            if e == event { found = row }
            return found == nil
        }
        return found
    }

    /// Whether `e` is a `rate` step of the scenario the console runs (the default demo's daily
    /// cycle is one every 15 simulated seconds): the engine logs it as a command like any
    /// other, at the step's time. Those steps are routine; an operator's `rate` is not.
    static func isScenarioRateStep(_ e: EngineEvent, _ scenario: Scenario?) -> Bool {
        guard e.kind == .command, e.severity == .info, e.message.hasPrefix("rate "), let steps = scenario?.steps,
            !steps.isEmpty
        else { return false }
        let tolerance = 1e-6
        var lo = 0, hi = steps.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if steps[mid].at < e.time - tolerance { lo = mid + 1 } else { hi = mid }
        }
        var i = lo
        while i < steps.count, steps[i].at <= e.time + tolerance {
            if case .rate = steps[i].command, e.message.hasPrefix("\(steps[i].command): ") { return true }
            i += 1
        }
        return false
    }

    /// A line the engine logs over and over (folded here, and not kept once it leaves the ring).
    static func isRoutine(_ e: EngineEvent, _ scenario: Scenario?) -> Bool {
        e.severity == .info && (routineKinds.contains(e.kind) || isScenarioRateStep(e, scenario))
    }

    /// Walks the listed events newest first, giving each the row it is listed on (a row before
    /// the newest when it folds into one); stops when `visit` returns false.
    ///
    /// A routine event folds into the row of the same shape anywhere since the last other
    /// event, not only into the row just above: the demo's rate steps (4 a minute) and the
    /// rebalance lines (2 a minute) alternate, so runs of one shape were one or two long, and
    /// after 20 minutes 108 rows of them buried the few faults, drains and commands. Now
    /// between two such events there are a handful of rows (×N). Other info events (actions,
    /// changes of state) fold only into an identical row just above; warnings and errors never.
    private static func fold(_ state: ConsoleState, _ visit: (EngineEvent, _ row: Int) -> Bool) {
        var lastShape = ""
        var routineRows: [String: Int] = [:]
        var rows = 0
        for e in state.events.reversed()
        where state.eventLevel.admits(e.severity) && matches(e, state.eventFilter) {
            let routine = isRoutine(e, state.scenario)
            let text = routine ? shape(e.message) : e.message
            let s = e.severity == .info ? "\(e.kind.rawValue)|" + text : ""
            var row = rows
            if routine, let r = routineRows[s] {
                row = r
            } else if !routine, rows > 0, !s.isEmpty, s == lastShape {
                row = rows - 1
            } else {
                rows += 1
                if routine { routineRows[s] = row } else { routineRows = [:] }
            }
            lastShape = s
            if !visit(e, row) { return }
        }
    }

    static func style(_ severity: EngineEvent.Severity) -> Style {
        switch severity {
        case .info: .text
        case .warning: .warn
        case .error: .bad
        }
    }

    /// One event row: time, severity, kind, message (with its fold count); shared with the Pod
    /// view's recent-events panel so both read the same.
    static func drawRow(
        _ b: inout CellBuffer, _ row: (event: EngineEvent, count: Int), y: Int, inner: Rect, selected: Bool,
        message line: String? = nil
    ) {
        let (e, count) = (row.event, row.count)
        let style = selected ? Style(fg: .selection, bold: true, reverse: true) : style(e.severity)
        var x = b.put(Format.right(Format.clockTenths(e.time), 10), x: inner.x + 1, y: y, style: selected ? style : .dim)
        x = b.put(
            " " + Format.left(e.severity == .info ? "info" : e.severity == .warning ? "WARN" : "ERROR", 5),
            x: x, y: y, style: style)
        x = b.put(" " + Format.left(e.kind.rawValue, 15), x: x, y: y, style: selected ? style : .dim)
        let fold = count > 1 ? " (×\(count))" : ""
        var message = line ?? " " + e.message + fold
        // Cut lines end in an ellipsis; Enter (in the Events view) shows the whole message. A
        // folded row keeps its count after the ellipsis: at 80 columns "rate 54.7: synthetic
        // arrival rate set to 54…" read as one step where nine were folded.
        // One blank stays before the border: cut to end in its column, a row read as running
        // under it ("loading dies 17…│", "(×33)│").
        let room = inner.maxX - 1 - x
        if message.count > room, room > 1 {
            if line == nil, !fold.isEmpty, room > fold.count + 2 {
                message = String((" " + e.message).prefix(room - 1 - fold.count)) + "…" + fold
            } else {
                message = String(message.prefix(room - 1)) + "…"
            }
        }
        b.put(message, x: x, y: y, style: style, clip: inner)
    }

    /// Cells before an event row's message: the time (10), severity and kind with their blanks.
    static let messageColumn = 1 + 10 + 6 + 16

    /// An event's message as lines of a message column `room` wide (its fold count after it),
    /// words kept whole where they fit, each line a blank after the column's start and one
    /// before its end (the border: "287 dies│" at 200×60).
    static func messageLines(_ row: (event: EngineEvent, count: Int), room: Int) -> [String] {
        let text = row.event.message + (row.count > 1 ? " (×\(row.count))" : "")
        return DetailOverlays.wrap(text, width: max(1, room - 2)).map { " " + $0 }
    }

    /// One event row with its whole message, wrapped under the message column, on at most
    /// `maxLines` lines; returns the lines used. For a panel with no Enter to show an event in
    /// full (the Pod view's recent events): at 250×70 its lines were cut at the panel's edge.
    /// A message longer than `maxLines` ends its last line in "…".
    @discardableResult
    static func drawWrapped(
        _ b: inout CellBuffer, _ row: (event: EngineEvent, count: Int), y: Int, inner: Rect, maxLines: Int
    ) -> Int {
        guard maxLines > 0 else { return 0 }
        let room = inner.maxX - (inner.x + messageColumn)
        var lines = messageLines(row, room: room)
        guard room > 8, lines.count > 1 else {
            drawRow(&b, row, y: y, inner: inner, selected: false)
            return 1
        }
        if lines.count > maxLines {
            lines = Array(lines.prefix(maxLines))
            let last = lines[maxLines - 1]
            lines[maxLines - 1] = String(last.prefix(room - 2)) + "…"
        }
        drawRow(&b, (row.event, 1), y: y, inner: inner, selected: false, message: lines[0])
        for (i, more) in lines.enumerated().dropFirst() {
            b.put(more, x: inner.x + messageColumn, y: y + i, style: style(row.event.severity), clip: inner)
        }
        return lines.count
    }

    static func draw(
        _ b: inout CellBuffer, _ area: Rect, _ state: ConsoleState, _ s: Snapshot, _ theme: Theme
    ) {
        let shown = shown(state)
        let filterNote =
            state.eventFilter.isEmpty ? "/ filter" : "filter \"\(state.eventFilter)\" (Esc clears)"
        let total = shown.map(\.count).reduce(0, +)
        // Shorter forms before a cut one: at 80 columns a filter's title lost its end,
        // "(Esc clears" with no ")" and no "Enter full".
        let count = "Events · \(total) of \(state.events.count)"
        let level = "level \(state.eventLevel.rawValue) (v)"
        let titles = [
            [count, "newest first", level, filterNote, "Enter full"], [count, level, filterNote, "Enter full"],
            [count, level, filterNote],
        ].map { $0.joined(separator: " · ") }
        b.box(area, titles: titles)
        let inner = area.inner
        let cursor = min(state.eventScroll, max(0, shown.count - 1))
        let offset = max(0, cursor - inner.height + 1)
        for (i, row) in shown.enumerated().dropFirst(offset).prefix(inner.height) {
            drawRow(&b, row, y: inner.y + i - offset, inner: inner, selected: i == cursor)
        }
        if shown.isEmpty {
            b.put(
                state.events.isEmpty ? "no events yet" : "no event matches the filter", x: inner.x + 1,
                y: inner.y,
                style: .dim)
        }
    }
}
