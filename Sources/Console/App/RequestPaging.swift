import ServingEngine

/// How the Requests view pages through the engine's whole in-flight table (issue 13, "no cap"):
/// it asks for a window of rows around the cursor whenever the snapshot moves or the sort, filter
/// or cursor asks for other rows, and for the open request's detail while its box is open.
/// Pure: it only decides which ``ConsoleEffect``s to ask for and absorbs the answers.
enum RequestPaging {
    /// Rows asked for at a time; rows are fetched in steps of ``step`` so small moves of the
    /// cursor stay inside the window already held.
    static let window = 300
    static let step = 100

    /// The window for the cursor: from `step`-aligned rows before it, `window` rows long.
    static func query(_ s: ConsoleState) -> RequestQuery {
        let offset = max(0, (s.requestScroll - window / 3) / step * step)
        return RequestQuery(sort: s.requestSort, reversed: s.requestSortReversed, filter: s.requestFilter,
                            offset: min(offset, RequestQuery.offsetRange.upperBound), limit: window)
    }

    /// The page held, if it answers the current sort and filter.
    static func page(_ s: ConsoleState) -> RequestPage? {
        guard let page = s.requestPage, page.query.sort == s.requestSort,
              page.query.reversed == s.requestSortReversed, page.query.filter == s.requestFilter else { return nil }
        return page
    }

    static func absorb(_ message: ConsoleMessage, _ s: inout ConsoleState) {
        switch message {
        case .requestPage(.success(let page)):
            s.requestPage = page
            s.requestQueryProblem = nil
            // Rows shifted (older requests finished): keep the highlight on the same request.
            if let id = s.requestSelectedID, RequestPaging.page(s) != nil, s.requestScroll < page.matching,
               let i = page.rows.firstIndex(where: { $0.id == id }) {
                s.requestScroll = page.query.offset + i
            }
        case .requestPage(.failure(let refusal)):
            s.requestQueryProblem = refusal.message
        case .requestDetail(let id, .success(let detail)) where id == s.requestDetail:
            s.requestDetailRecord = detail
            s.requestQueryProblem = nil
        case .requestDetail(let id, .failure(let refusal)) where id == s.requestDetail:
            s.requestQueryProblem = refusal.message
        default: break
        }
    }

    /// The queries to send after `message` took `before` to `after`.
    static func follow(_ before: ConsoleState, _ after: inout ConsoleState, _ message: ConsoleMessage) -> [ConsoleEffect] {
        guard after.requestQueries, !after.quitting else { return [] }
        var effects: [ConsoleEffect] = []
        switch message {
        case .key, .mouse, .paste:
            // The operator moved the cursor (or sorted, filtered): it now marks this request. Until
            // the engine answers the new sort or filter, the rows at hand are the snapshot's list
            // (its oldest few hundred) in the new order, not the engine's rows: a request picked
            // there sits elsewhere in the page that comes, and following it undid the key (S then
            // Home: the highlight went back to row 451). Then nothing is marked; the row stays.
            if after.view == .requests {
                after.requestSelectedID = RequestPaging.page(after) == nil ? nil : RequestsView.selected(after)?.id
            }
        default: break
        }
        let ticked = if case .tick = message { true } else { false }
        if after.view == .requests {
            let wanted = query(after)
            if ticked || before.view != .requests || wanted != query(before) { effects.append(.queryRequests(wanted)) }
        }
        if after.requestDetail != before.requestDetail { after.requestDetailRecord = nil }
        if let id = after.requestDetail, ticked || id != before.requestDetail {
            effects.append(.queryRequestDetail(id: id))
        }
        return effects
    }
}
