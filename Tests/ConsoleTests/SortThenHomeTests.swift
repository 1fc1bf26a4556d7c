import ServingEngine
import Testing
import XDSTestSupport

@testable import Console

/// `S` then `Home` pressed together in the paged Requests view: until the engine answers the new
/// order, the rows at hand are the snapshot's list (its oldest few hundred) sorted the new way.
/// Home marked the request on row 1 of that list, and when the page for `S` arrived, holding that
/// request on row 451, the highlight followed it there: Home was undone ("rows 451–468"). The
/// operator's last key decides: the cursor stays on row 1.
@Suite struct SortThenHomeTests {
    static let total = 750

    /// The engine's table by age, ids 100_000… oldest first; reversed, newest first.
    static func page(_ query: RequestQuery) -> RequestPage {
        let offset = min(query.offset, total - 1)
        let rows = (offset..<min(total, offset + query.limit)).map { i in
            let id = query.reversed ? 100_000 + total - 1 - i : 100_000 + i
            return RequestStatus(id: id, arrivedAt: Double(id - 100_000) / 100, stage: .decode, promptTokens: 1000,
                                 outputTokens: 200, generatedTokens: 20, location: "decode-0/dp1")
        }
        var answered = query
        answered.offset = offset
        return RequestPage(query: answered, simTime: 700, inFlight: total, matching: total, rows: rows)
    }

    /// The snapshot lists the oldest 300 in flight, as the engine's snapshot does.
    static var snapshot: Snapshot {
        var s = SnapshotFixtures.superpod
        s.inFlight = page(RequestQuery(offset: 0, limit: 300)).rows
        s.requests.inFlight = total
        return s
    }

    /// Applies `message`; the queries it asks are returned, not answered.
    static func send(_ s: inout ConsoleState, _ message: ConsoleMessage) -> [RequestQuery] {
        let (next, effects) = ConsoleUpdate.update(s, message)
        s = next
        return effects.compactMap { if case .queryRequests(let q) = $0 { q } else { nil } }
    }

    /// Answers `queries` in order, and any query an answer leads to, until none is left.
    static func answer(_ s: inout ConsoleState, _ queries: [RequestQuery]) {
        var queue = queries
        while !queue.isEmpty { queue += send(&s, .requestPage(.success(page(queue.removeFirst())))) }
    }

    @Test func homeRightAfterReverseSortStaysOnTheFirstRow() throws {
        var state = ConsoleState(width: 80, height: 24)
        state.requestQueries = true
        state.view = .requests
        Self.answer(&state, Self.send(&state, .tick(Self.snapshot)))
        state.requestScroll = 450
        Self.answer(&state, [RequestPaging.query(state)])  // the rows around row 451 at hand
        Self.answer(&state, Self.send(&state, .key(.down)))
        #expect(state.requestScroll == 451 && state.requestSelectedID == 100_451, "\(state.requestScroll) \(String(describing: state.requestSelectedID)) \(String(describing: state.requestPage?.query))")
        // S and Home before the engine answers either.
        var asked = Self.send(&state, .key(.char("S")))
        asked += Self.send(&state, .key(.home))
        #expect(state.requestScroll == 0)
        Self.answer(&state, asked)
        #expect(state.requestScroll == 0, "Home was undone: cursor on row \(state.requestScroll + 1)")
        #expect(RequestsView.selected(state)?.id == 100_749)
        let title = ConsoleScreen.render(state, Self.snapshot, theme: .builtinDark, width: 80, height: 24).lines
            .first { $0.contains("In flight") } ?? ""
        #expect(title.contains("rows 1–"), "\(title)")
        // The next tick keeps it there.
        Self.answer(&state, Self.send(&state, .tick(Self.snapshot)))
        #expect(state.requestScroll == 0)
    }
}
