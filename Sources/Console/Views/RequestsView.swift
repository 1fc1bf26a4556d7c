import ServingEngine

/// View 5: requests in flight (sortable) and the ones that just finished, failed or were rejected.
enum RequestsView {
    static let stageOrder = Dictionary(
        uniqueKeysWithValues: RequestStage.allCases.enumerated().map { ($1, $0) })

    static func sorted(_ requests: [RequestStatus], by key: RequestSortKey) -> [RequestStatus] {
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
        }
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

    static func stageStyle(_ stage: RequestStage) -> Style {
        switch stage {
        case .queued, .transfer: .warn
        case .prefill, .decode: .accent
        case .completed: .good
        case .failed, .rejected: .bad
        case .cancelled: .dim
        }
    }

    static func draw(
        _ b: inout CellBuffer, _ area: Rect, _ state: ConsoleState, _ s: Snapshot, _ theme: Theme
    ) {
        let (top, bottom) = area.splitTop(area.height * 3 / 5)
        let inFlight = sorted(s.inFlight.filter { matches($0, state.requestFilter) }, by: state.requestSort)
        b.box(
            top,
            title:
                "In flight · \(Format.count(s.requests.inFlight)) (showing \(inFlight.count)) · sort: \(state.requestSort.rawValue) (s) · \(filterNote(state.requestFilter))"
        )
        let rows = inFlight.dropFirst(min(state.requestScroll, max(0, inFlight.count - 1))).map {
            r -> [(String, Style)] in
            [
                ("#\(r.id)", .text), (r.stage.rawValue, stageStyle(r.stage)),
                (Format.fixed(max(0, s.simTime - r.arrivedAt)) + "s", .text), ("\(r.promptTokens)", .text),
                ("\(r.generatedTokens)/\(r.outputTokens)", .text), (r.ttftMs.map(Format.ms) ?? "–", .text),
                (r.location, .dim),
            ]
        }
        let columns: [(title: String, width: Int)] = [
            ("id", 8), ("stage", 9), ("age", -7), ("prompt", -7), ("gen/out", -11), ("TTFT", -8),
            ("where", max(6, top.width - 65)),
        ]
        b.table(columns: columns, rows: Array(rows), in: inset(top))
        b.box(
            bottom,
            title:
                "Recently finished · completed \(Format.count(s.requests.completed)) · failed \(s.requests.failed) · rejected \(s.requests.rejected)"
        )
        let recent = s.recent.reversed().filter { matches($0, state.requestFilter) }.map { r -> [(String, Style)] in
            let e2e = r.finishedAt.map { Format.ms(($0 - r.arrivedAt) * 1000) } ?? "–"
            return [
                (Format.clock(r.finishedAt ?? r.arrivedAt), .dim), ("#\(r.id)", .text),
                (r.stage.rawValue, stageStyle(r.stage)), ("\(r.promptTokens)+\(r.generatedTokens)", .text),
                (e2e, .text), (r.reason ?? r.location, r.reason == nil ? .dim : .bad),
            ]
        }
        b.table(
            columns: [
                ("finished", 8), ("id", 8), ("stage", 9), ("tokens", -11), ("E2E", -8),
                ("reason / where", max(6, bottom.width - 56)),
            ],
            rows: recent, in: inset(bottom))
    }

    static func inset(_ r: Rect) -> Rect {
        Rect(x: r.x + 2, y: r.y + 1, width: r.width - 4, height: r.height - 2)
    }
}
