import ServingEngine

/// View 6: the engine's event log, newest first, filtered with `/`.
enum EventsView {
    static func matches(_ e: EngineEvent, _ filter: String) -> Bool {
        guard !filter.isEmpty else { return true }
        let needle = filter.lowercased()
        return e.message.lowercased().contains(needle) || e.kind.rawValue.lowercased().contains(needle)
            || e.severity.rawValue.contains(needle)
    }

    static func draw(
        _ b: inout CellBuffer, _ area: Rect, _ state: ConsoleState, _ s: Snapshot, _ theme: Theme
    ) {
        let shown = s.events.reversed().filter { matches($0, state.eventFilter) }
        let filterNote =
            state.eventFilter.isEmpty ? "/ filter" : "filter \"\(state.eventFilter)\" (Esc clears)"
        b.box(area, title: "Events · \(shown.count) of \(s.events.count) · newest first · \(filterNote)")
        let inner = area.inner
        for (i, e) in shown.dropFirst(min(state.eventScroll, max(0, shown.count - 1))).prefix(inner.height)
            .enumerated()
        {
            let y = inner.y + i
            let style: Style =
                switch e.severity {
                case .info: .text
                case .warning: .warn
                case .error: .bad
                }
            var x = b.put(Format.right(Format.clockTenths(e.time), 10), x: inner.x + 1, y: y, style: .dim)
            x = b.put(
                " "
                    + Format.left(e.severity == .info ? "info" : e.severity == .warning ? "WARN" : "ERROR", 5),
                x: x, y: y, style: style)
            x = b.put(" " + Format.left(e.kind.rawValue, 15), x: x, y: y, style: .dim)
            b.put(" " + e.message, x: x, y: y, style: style, clip: inner)
        }
        if shown.isEmpty {
            b.put(
                s.events.isEmpty ? "no events yet" : "no event matches the filter", x: inner.x + 1,
                y: inner.y,
                style: .dim)
        }
    }
}
