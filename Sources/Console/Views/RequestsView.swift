import ServingEngine

/// View 5: requests in flight (sortable) and the ones that just finished, failed or were rejected.
enum RequestsView {
    static let stageOrder = Dictionary(
        uniqueKeysWithValues: RequestStage.allCases.enumerated().map { ($1, $0) })

    static func sorted(_ requests: [RequestStatus], by key: RequestSortKey, reversed: Bool = false) -> [RequestStatus] {
        // Natural order: oldest, earliest stage, most tokens, lowest id, longest prompt, slowest
        // first token (those without one last); ties by id so the order is stable.
        let natural: [RequestStatus] =
            switch key {
            case .age: requests.sorted { ($0.arrivedAt, $0.id) < ($1.arrivedAt, $1.id) }
            case .stage:
                requests.sorted {
                    (stageOrder[$0.stage]!, $0.arrivedAt, $0.id) < (stageOrder[$1.stage]!, $1.arrivedAt, $1.id)
                }
            case .tokens:
                requests.sorted {
                    ($0.promptTokens + $0.outputTokens, $1.id) > ($1.promptTokens + $1.outputTokens, $0.id)
                }
            case .id: requests.sorted { $0.id < $1.id }
            case .prompt: requests.sorted { ($0.promptTokens, $1.id) > ($1.promptTokens, $0.id) }
            case .ttft: requests.sorted { ($0.ttftMs ?? -1, $1.id) > ($1.ttftMs ?? -1, $0.id) }
            }
        return reversed ? natural.reversed() : natural
    }

    /// The rows the cursor walks: the filtered, sorted in-flight list, then the recent ones
    /// (newest first). The cursor is ``ConsoleState/requestScroll``.
    static func ordered(_ state: ConsoleState) -> [RequestStatus] {
        inFlight(state, state.requestsInFlight) + recent(state, state.requestsRecent)
    }

    /// The in-flight rows the view can show: a window of the engine's whole table when the link
    /// pages it (``RequestPaging``), else the snapshot's list sorted here. `total` counts every
    /// row of the list; `rows` hold rows `offset ..< offset + rows.count` of it.
    static func window(_ state: ConsoleState, _ snapshotList: [RequestStatus])
        -> (rows: [RequestStatus], offset: Int, total: Int, paged: Bool)
    {
        if let page = RequestPaging.page(state) { return (page.rows, page.query.offset, page.matching, true) }
        let list = inFlight(state, snapshotList)
        return (list, 0, list.count, false)
    }

    /// Rows the cursor can walk: every in-flight row (paged or listed), then the recent ones.
    static func rowCount(_ state: ConsoleState) -> Int {
        window(state, state.requestsInFlight).total + recent(state, state.requestsRecent).count
    }

    /// The request under the cursor, if its row is at hand.
    static func selected(_ state: ConsoleState) -> RequestStatus? {
        let w = window(state, state.requestsInFlight)
        let cursor = state.requestScroll
        if cursor < w.total {
            return (w.offset..<(w.offset + w.rows.count)).contains(cursor) ? w.rows[cursor - w.offset] : nil
        }
        let recent = recent(state, state.requestsRecent)
        return cursor - w.total < recent.count ? recent[cursor - w.total] : nil
    }

    static func inFlight(_ state: ConsoleState, _ list: [RequestStatus]) -> [RequestStatus] {
        sorted(list.filter { matches($0, state.requestFilter) }, by: state.requestSort, reversed: state.requestSortReversed)
    }

    static func recent(_ state: ConsoleState, _ list: [RequestStatus]) -> [RequestStatus] {
        list.reversed().filter { matches($0, state.requestFilter) }
    }

    /// The `/` filter: a case-insensitive substring of the id (`#42`), stage, place or reason.
    static func matches(_ r: RequestStatus, _ filter: String) -> Bool {
        guard !filter.isEmpty else { return true }
        let needle = filter.lowercased()
        return "#\(r.id)".contains(needle) || r.stage.rawValue.lowercased().contains(needle)
            || r.location.lowercased().contains(needle) || (r.reason?.lowercased().contains(needle) ?? false)
    }

    static func filterNote(_ filter: String) -> String {
        filter.isEmpty ? "/ filter" : "filter \"\(filter)\" (Esc clears)"
    }

    /// A stage's colour (the list and the request box). Waiting stages are plain text: orange
    /// (`warn`) means high load, a warning, degraded or draining everywhere else, and a request
    /// queued or in transfer is its normal course, not an alarm. The alarm colour stays for failed
    /// and rejected.
    static func stageStyle(_ stage: RequestStage) -> Style {
        switch stage {
        case .queued, .transfer: .text
        case .prefill, .decode: .accent
        case .completed: .good
        case .failed, .rejected: .bad
        case .cancelled: .dim
        }
    }

    /// The column title with its arrow when it is the sort column.
    static func title(_ name: String, _ key: RequestSortKey, _ state: ConsoleState) -> String {
        state.requestSort == key ? name + arrow(key, reversed: state.requestSortReversed) : name
    }

    /// Which way the sort column's values run down the list, as a table header says it: ▲ the
    /// smallest at the top, ▼ the largest. The natural orders of age (oldest first), tokens,
    /// prompt (most first) and TTFT (slowest first) run downwards, so they show ▼; `S` flips it.
    /// (▲ used to mean "natural order", so the default "age▲" listed the oldest, largest age first.)
    static func arrow(_ key: RequestSortKey, reversed: Bool) -> String {
        let descending: Bool =
            switch key {
            case .age, .tokens, .prompt, .ttft: true
            case .stage, .id: false
            }
        return descending != reversed ? "▼" : "▲"
    }

    static func draw(
        _ b: inout CellBuffer, _ area: Rect, _ state: ConsoleState, _ s: Snapshot, _ theme: Theme
    ) {
        let (top, bottom) = area.splitTop(area.height * 3 / 5)
        let window = window(state, s.inFlight)
        let recent = recent(state, s.recent)
        let total = window.total
        let cursor = min(state.requestScroll, max(0, total + recent.count - 1))
        let topRows = max(1, top.height - 3)
        let topOffset = cursor < total ? max(0, cursor - topRows + 1) : max(0, total - topRows)
        // Paged from the engine: every request in flight can be reached. From the snapshot: its
        // oldest few hundred, and the title says so.
        let shownTo = min(total, topOffset + topRows)
        let listed =
            window.paged
            ? (total == 0 ? "none" : "rows \(topOffset + 1)–\(shownTo) of \(total)")
                + (state.requestFilter.isEmpty ? "" : " matching")
            : total < s.requests.inFlight ? "snapshot lists \(total)" : "all listed"
        // Paged: the count from the same answer as the rows (a snapshot is from another instant).
        // That answer is read at its own instant, not the header's: at 20× after faults "In
        // flight · 554" stood under the header's "r/w 579/20" (the snapshot's run and wait, 599
        // in flight) with nothing saying they were read apart. The page's sim time is then said
        // beside its count, to the tenth (the header's clock is to the second).
        let pageTime = RequestPaging.page(state).map(\.simTime).flatMap { $0 != s.simTime ? $0 : nil }
        let inFlightCount = Format.count(RequestPaging.page(state)?.inFlight ?? s.requests.inFlight)
            + (pageTime.map { " at sim \(Format.clockTenths($0))" } ?? "")
        // Ages from the instant the rows were read: a page is answered a moment before or after
        // the snapshot this frame draws, and at 50× the snapshot's clock made a request that had
        // just arrived "queued 6.9s".
        let rowsTime = RequestPaging.page(state)?.simTime ?? s.simTime
        let wide = top.width >= 120
        // Shorter forms before a cut one: at 80 columns the title cut the filter's own text
        // ('filter "decod' for "decode").
        let filter = filterNote(state.requestFilter)
        let bare = state.requestFilter.isEmpty ? filter : "filter \"\(state.requestFilter)\""
        var titles = [
            "In flight · \(inFlightCount) (\(listed)) · s/S sort · Enter · \(filter)",
            "In flight · \(inFlightCount) (\(listed)) · \(filter)", "In flight · \(inFlightCount) · \(filter)",
            "In flight · \(inFlightCount) · \(bare)",
        ]
        if wide {
            titles.insert(
                "In flight · \(inFlightCount) (\(listed)) · sort \(state.requestSort.rawValue) \(arrow(state.requestSort, reversed: state.requestSortReversed)) (s column, S reverse, Enter detail) · \(filter)",
                at: 0)
        }
        b.box(top, titles: titles)
        let rows = (topOffset..<shownTo).map { i -> [(String, Style)] in
            let inWindow = (window.offset..<(window.offset + window.rows.count)).contains(i)
            guard inWindow else {
                // Asked of the engine, not here yet (a jump with End or PgDn).
                let row: [(String, Style)] = [("…", .dim), ("loading", .dim), ("", .dim), ("", .dim), ("", .dim), ("", .dim), ("", .dim)]
                return i == cursor ? row.map { ($0.0, Style(fg: .selection, bold: true, reverse: true)) } : row
            }
            let r = window.rows[i - window.offset]
            let row: [(String, Style)] = [
                ("#\(r.id)", .text), (r.stage.rawValue, stageStyle(r.stage)),
                (Format.fixed(max(0, rowsTime - r.arrivedAt)) + "s", .text), ("\(r.promptTokens)", .text),
                ("\(r.generatedTokens)/\(r.outputTokens)", .text), (r.ttftMs.map(Format.ms) ?? "–", .text),
                (r.location, .dim),
            ]
            return i == cursor ? row.map { ($0.0, Style(fg: .selection, bold: true, reverse: true)) } : row
        }
        let columns: [(title: String, width: Int)] = [
            (title("id", .id, state), 8), (title("stage", .stage, state), 9), (title("age", .age, state), -7),
            (title("prompt", .prompt, state), -7), (title("gen/out", .tokens, state), -11),
            (title("TTFT", .ttft, state), -8), ("where", max(6, top.width - 65)),
        ]
        b.table(columns: columns, rows: Array(rows), in: inset(top))
        // The counts are the run's, not the rows': "Recently finished · completed 13.7k" over
        // five rows read as the list's size. Said in every form, the longest that fits.
        let counts =
            "completed \(Format.count(s.requests.completed)) · failed \(Format.count(s.requests.failed)) · rejected \(Format.count(s.requests.rejected))"
        b.box(
            bottom,
            titles: [
                "Recently finished · since start: \(counts)", "Recent · since start: \(counts)", "Recent · so far: \(counts)",
            ])
        let bottomRows = max(1, bottom.height - 3)
        let recentCursor = cursor - total
        let bottomOffset = recentCursor >= 0 ? max(0, recentCursor - bottomRows + 1) : 0
        let recentRows = recent.enumerated().dropFirst(bottomOffset).map { (i, r) -> [(String, Style)] in
            let e2e = r.finishedAt.map { Format.ms(($0 - r.arrivedAt) * 1000) } ?? "–"
            let row: [(String, Style)] = [
                (Format.clock(r.finishedAt ?? r.arrivedAt), .dim), ("#\(r.id)", .text),
                (r.stage.rawValue, stageStyle(r.stage)), ("\(r.promptTokens)+\(r.generatedTokens)", .text),
                (e2e, .text), (r.reason ?? r.location, r.reason == nil ? .dim : .bad),
            ]
            return i == recentCursor ? row.map { ($0.0, Style(fg: .selection, bold: true, reverse: true)) } : row
        }
        b.table(
            columns: [
                ("finished", 8), ("id", 8), ("stage", 9), ("in+out", -11), ("E2E", -8),
                ("reason / where", max(6, bottom.width - 56)),
            ],
            rows: Array(recentRows), in: inset(bottom))
    }

    static func inset(_ r: Rect) -> Rect {
        Rect(x: r.x + 2, y: r.y + 1, width: r.width - 4, height: r.height - 2)
    }
}
