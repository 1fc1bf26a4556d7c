import Foundation
import ServingEngine
import Testing
import XDSTestSupport

@testable import Console

/// The Requests view without a cap (issue 13): pages of the engine's table around the cursor,
/// PgUp/PgDn/Home/End over every request in flight, the sort marker and highlighted row kept, and
/// the detail box from the engine's own record.
@Suite(.timeLimit(.minutes(10))) struct RequestPagingTests {
    static let total = 5_000

    /// Rows `offset..<offset+limit` of a table of `total` requests sorted by age (id order).
    static func page(_ query: RequestQuery, total: Int = total) -> RequestPage {
        let offset = min(query.offset, total - 1)
        let rows = (offset..<min(total, offset + query.limit)).map { i in
            RequestStatus(id: 100_000 + i, arrivedAt: Double(i) / 100, stage: i % 3 == 0 ? .decode : .prefill,
                          promptTokens: 1000 + i, outputTokens: 200, generatedTokens: i % 3 == 0 ? 20 : 0,
                          location: i % 3 == 0 ? "decode-0/dp\(i % 320)" : "prefill-1/dp\(i % 4)",
                          ttftMs: i % 3 == 0 ? 800 : nil)
        }
        var answered = query
        answered.offset = offset
        return RequestPage(query: answered, simTime: 700, inFlight: total, matching: total, rows: rows)
    }

    /// Applies a message and answers every query effect the way the engine would.
    static func step(_ state: ConsoleState, _ message: ConsoleMessage) -> (ConsoleState, [RequestQuery]) {
        var (s, effects) = ConsoleUpdate.update(state, message)
        var asked: [RequestQuery] = []
        for case .queryRequests(let q) in effects {
            asked.append(q)
            s = ConsoleUpdate.update(s, .requestPage(.success(page(q)))).0
        }
        return (s, asked)
    }

    static func paged(width: Int = 120, height: Int = 40) -> ConsoleState {
        var state = ConsoleState(width: width, height: height)
        state.requestQueries = true
        state.view = .requests
        return step(state, .tick(SnapshotFixtures.superpod)).0
    }

    static func render(_ state: ConsoleState, _ w: Int = 120, _ h: Int = 40) -> [String] {
        ConsoleScreen.render(state, SnapshotFixtures.superpod, theme: .builtinDark, width: w, height: h).lines
    }

    @Test func ticksAskForTheWindowAroundTheCursor() {
        var state = ConsoleState(width: 120, height: 40)
        state.requestQueries = true
        // Not in the Requests view: no question.
        #expect(ConsoleUpdate.update(state, .tick(SnapshotFixtures.superpod)).1.isEmpty)
        state.view = .requests
        let (_, asked) = Self.step(state, .tick(SnapshotFixtures.superpod))
        #expect(asked == [RequestQuery(sort: .age, offset: 0, limit: RequestPaging.window)])
        // A link without queries: the snapshot's list, and nothing asked.
        var plain = ConsoleState(width: 120, height: 40)
        plain.view = .requests
        #expect(ConsoleUpdate.update(plain, .tick(SnapshotFixtures.superpod)).1.isEmpty)
    }

    @Test func everyRequestInFlightCanBeReachedWithEndPgUpAndHome() {
        var state = Self.paged()
        var lines = Self.render(state)
        // The fake pages are read at 700 s, the snapshot at 642.5 s: the title says when.
        #expect(lines[3].hasPrefix("┌ In flight · 5000 at sim 0:11:40.0 (rows 1–18 of 5000) · sort age ▼"), "\(lines[3])")
        #expect(lines[4].hasPrefix("│ id       stage        age▼  prompt     gen/out     TTFT where"))
        #expect(lines[5].hasPrefix("│ #100000  decode"))
        // End: the last request in flight and then the recent ones; the engine is asked for the end.
        let recent = RequestsView.recent(state, state.requestsRecent).count
        var asked: [RequestQuery]
        (state, asked) = Self.step(state, .key(.end))
        #expect(state.requestScroll == Self.total + recent - 1)
        #expect(asked.first?.offset == (Self.total + recent - 1 - RequestPaging.window / 3) / 100 * 100)
        // Back to the last in-flight row: its id, highlighted, on the last row of the panel.
        (state, _) = Self.step(state, .key(.up))
        for _ in 1..<recent { (state, _) = Self.step(state, .key(.up)) }
        #expect(state.requestScroll == Self.total - 1)
        lines = Self.render(state)
        // (With the page's time the sort's long form no longer fits 120 columns; "s/S sort" does.)
        #expect(lines[3].hasPrefix("┌ In flight · 5000 at sim 0:11:40.0 (rows 4983–5000 of 5000) · s/S sort"), "\(lines[3])")
        let last = lines.firstIndex { $0.contains("#104999") }
        #expect(last == 22, "the cursor's row is the last of the 18 rows (5…22)")
        #expect(RequestsView.selected(state)?.id == 104_999)
        // PgUp moves a screenful; the row under the cursor is the one Enter opens.
        (state, _) = Self.step(state, .key(.pageUp))
        #expect(state.requestScroll == Self.total - 1 - ConsoleUpdate.pageRows(state))
        #expect(RequestsView.selected(state)?.id == 100_000 + state.requestScroll)
        (state, asked) = Self.step(state, .key(.home))
        #expect(state.requestScroll == 0 && asked.first?.offset == 0)
        #expect(Self.render(state)[5].hasPrefix("│ #100000"))
    }

    @Test func rowsNotFetchedYetSayLoadingAndTheSortMarkerStays() {
        var state = Self.paged()
        state.requestSortReversed = true  // the held page answers the natural order (▼), not the reversed: not used
        state.requestPage = Self.page(RequestQuery(sort: .age, reversed: true, offset: 0, limit: 300))
        state = ConsoleUpdate.update(state, .key(.end)).0  // asked, not answered yet
        let lines = Self.render(state)
        #expect(lines[4].contains("age▲"))  // reversed: the youngest first
        #expect(lines.contains { $0.contains("…        loading") })
    }

    @Test func enterAsksTheEngineForTheRequestAndShowsItsTimes() throws {
        var state = Self.paged()
        for _ in 0..<3 { state = Self.step(state, .key(.down)).0 }
        var (next, effects) = ConsoleUpdate.update(state, .key(.enter))
        #expect(next.requestDetail == 100_003)
        #expect(effects == [.queryRequestDetail(id: 100_003)])
        var text = Self.render(next).joined(separator: "\n")
        #expect(text.contains("asking the engine for its record of request #100003…"))
        let d = Self.detail(stage: .completed)
        next = ConsoleUpdate.update(next, .requestDetail(id: 100_003, .success(d))).0
        text = Self.render(next).joined(separator: "\n")
        for line in [
            "stage      completed",
            "tokens     prompt 4000 (1024 from the prefix cache) · output 300 of 300",
            "latency    E2E 12.5s · TTFT 900ms · TPOT 38.8ms (mean after the first token)",
            "  arrived   0:10:00.000",
            "  queued    0:10:00.000 → 0:10:00.250          250ms  for prefill-2/dp1",
            "  prefill   0:10:00.250 → 0:10:00.731          481ms  prefill-2/dp1",
            "  KV wait   0:10:00.731 → 0:10:00.800         69.0ms  for room on decode-0",
            "  KV xfer   0:10:00.800 → 0:10:00.812         12.0ms  to decode-0/dp17",
            "  decode    0:10:00.850 joined the batch on decode-0/dp17 · 1st token 0:10:00.900 · 300 tokens",
            "  finished  0:10:12.500",
        ] {
            #expect(text.contains(line), "detail lacks: \(line)")
        }
        // Each tick refreshes the open detail; an answer for another request is ignored.
        (next, effects) = ConsoleUpdate.update(next, .tick(SnapshotFixtures.superpod))
        #expect(effects.contains(.queryRequestDetail(id: 100_003)))
        var other = d
        other.id = 7
        #expect(ConsoleUpdate.update(next, .requestDetail(id: 7, .success(other))).0.requestDetailRecord == d)
        // A failed query says why.
        next.requestDetailRecord = nil
        next = ConsoleUpdate.update(next, .requestDetail(id: 100_003, .failure(RequestQueryRefusal("engine stopped")))).0
        #expect(Self.render(next).joined().contains("the engine did not answer: engine stopped"))
    }

    @Test func aReprefilledOrFailedRequestSaysSo() {
        var d = RequestDetail(id: 9, stage: .failed, arrivedAt: 10, promptTokens: 100, outputTokens: 50, simTime: 30)
        d.reprefills = 1
        d.requeuedAt = 12
        d.finishedAt = 13
        d.reason = "its hardware failed and no prefill TE is in service to prefill it again"
        let text = RequestDetailView.lines(d).map(\.0).joined(separator: "\n")
        #expect(text.contains("re-prefill ×1"))
        #expect(text.contains("  re-queued 0:00:12.000 → 0:00:13.000"))
        #expect(text.contains("  failed    0:00:13.000 · its hardware failed"))
    }
}

extension RequestPagingTests {
    @Test func theHighlightFollowsItsRequestWhenRowsShift() {
        var state = Self.paged()
        for _ in 0..<40 { state = Self.step(state, .key(.down)).0 }
        #expect(state.requestSelectedID == 100_040)
        // Ten older requests finished: the table now starts at 100_010.
        var shifted = Self.page(RequestQuery(offset: 0, limit: 300), total: Self.total)
        shifted.rows = shifted.rows.map { r in
            var r = r
            r.id += 10
            return r
        }
        state = ConsoleUpdate.update(state, .requestPage(.success(shifted))).0
        #expect(state.requestScroll == 30 && RequestsView.selected(state)?.id == 100_040)
    }
}

extension RequestPagingTests {
    /// At 80 columns the request box cut its long lines at its border: the decode line lost its
    /// first-token time and token count, the latency line its closing words, a failure its
    /// reason's end. Long lines now wrap inside the box under their label; nothing is lost.
    /// Request #100003's record as the engine answers it: prefilled on prefill-2/dp1 from 600.25 s,
    /// moved to decode-0/dp17, finished at 612.5 s.
    static func detail(stage: RequestStage) -> RequestDetail {
        var d = RequestDetail(id: 100_003, stage: stage, arrivedAt: 600.0, promptTokens: 4000,
                              cachedPromptTokens: 1024, outputTokens: 300, generatedTokens: 300, simTime: 700)
        (d.prefillInstance, d.prefillGroup, d.decodeInstance, d.decodeGroup) = ("prefill-2", 1, "decode-0", 17)
        (d.prefillStartedAt, d.prefillEndedAt) = (600.25, 600.731)
        (d.transferStartedAt, d.transferEndedAt) = (600.8, 600.812)
        (d.decodeJoinedAt, d.firstTokenAt, d.finishedAt) = (600.85, 600.9, 612.5)
        return d
    }

    @Test func theRequestBoxWrapsLongLinesAt80Columns() {
        var state = Self.paged()
        for _ in 0..<3 { state = Self.step(state, .key(.down)).0 }
        state = ConsoleUpdate.update(state, .key(.enter)).0
        var d = Self.detail(stage: .failed)
        d.reprefills = 1
        d.reason = "prefilled, then no decode TE accepts work (all restarting, drained or out of service)"
        state = ConsoleUpdate.update(state, .requestDetail(id: 100_003, .success(d))).0
        for (w, h) in [(80, 24), (100, 30)] {
            let lines = Self.render(state, w, h)
            #expect(lines.allSatisfy { $0.count <= w })
            // The box's text, border to border, in reading order.
            let rows = lines.map { Array($0) }
            guard let top = rows.firstIndex(where: { String($0).contains("┌ Request #100003") }),
                  let left = rows[top].indices.first(where: { rows[top][$0] == "┌" && String(rows[top][$0...]).hasPrefix("┌ Request") }),
                  let right = rows[top].indices.last(where: { $0 > left && rows[top][$0] == "┐" }) else {
                Issue.record("no request box at \(w)×\(h)")
                continue
            }
            var inside: [String] = []
            for row in rows[(top + 1)...] {
                guard row.count > left, row[left] == "│" else { break }
                inside.append(String(row[(left + 1)..<min(right, row.count)]))
            }
            let shown = inside.joined(separator: " ").split(separator: " ").joined(separator: " ")
            for (text, _) in RequestDetailView.lines(d) where !text.isEmpty {
                let words = text.split(separator: " ").joined(separator: " ")
                #expect(shown.contains(words), "at \(w)×\(h) the box lacks: \(text)")
            }
        }
    }

    /// A row's age is counted from the instant its page was read, not from the snapshot's: the
    /// page is answered a moment before or after the snapshot the frame draws, and at 50× a
    /// request that had just arrived was listed as "queued 6.9s" (the snapshot was 6.9 simulated
    /// seconds newer than the page), which reads as a prefill queue seven seconds long.
    @Test func ageIsCountedFromThePagesOwnInstant() {
        var state = Self.paged()
        let pageTime = SnapshotFixtures.superpod.simTime - 6.5
        let rows = [
            RequestStatus(id: 777_001, arrivedAt: pageTime - 0.2, stage: .queued, promptTokens: 1086, outputTokens: 788,
                          generatedTokens: 0, location: "prefill-2/dp1", ttftMs: nil),
            RequestStatus(id: 777_000, arrivedAt: pageTime - 30, stage: .decode, promptTokens: 900, outputTokens: 400,
                          generatedTokens: 250, location: "decode-0/dp7", ttftMs: 300),
        ]
        state = ConsoleUpdate.update(state, .requestPage(.success(
            RequestPage(query: RequestPaging.query(state), simTime: pageTime, inFlight: 2, matching: 2, rows: rows)))).0
        let lines = Self.render(state)
        let young = lines.first { $0.contains("#777001") }
        let old = lines.first { $0.contains("#777000") }
        #expect(young?.contains(" queued       0.2s ") == true, "\(young ?? lines.joined(separator: "\n"))")
        #expect(old?.contains(" decode      30.0s ") == true, "\(old ?? "no row")")
    }
}
