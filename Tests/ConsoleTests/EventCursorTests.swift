import ServingEngine
import Testing
import XDSTestSupport

@testable import Console

/// The Events cursor and detail box are about an event, not a row: new events arrive every few
/// simulated seconds (the demo's rate steps, rebalances) and push every row down, and folded
/// routine events make the list shorter than the events held.
@Suite struct EventCursorTests {
    /// Nine prefill rebalance lines (one row, ×9) then `count` numbered commands, oldest first.
    static func snapshot(commands count: Int, from first: Int = 0) -> Snapshot {
        var s = SnapshotFixtures.superpod
        s.events = (0..<9).map {
            EngineEvent(time: 60, kind: .rebalance, message: "prefill-\($0): rebalance skipped")
        }
        s.events += (first..<first + count).map {
            EngineEvent(time: 100 + Double($0), kind: .command, message: "rate \($0): synthetic arrival rate set")
        }
        return s
    }

    static func events(_ s: Snapshot) -> ConsoleState {
        var state = ConsoleUpdate.update(ConsoleState(width: 120, height: 40), .tick(s)).0
        state.view = .events
        return state
    }

    func render(_ state: ConsoleState, _ s: Snapshot) -> [String] {
        ConsoleScreen.render(state, s, theme: .builtinDark, width: 120, height: 40).lines
    }

    /// Live at 100×: Enter on "rate 45.7" (0:26:15), and two seconds later the box said
    /// "rebalance done … 0:31:00": it held a row number, and four new events had moved in.
    @Test func anOpenEventStaysTheEventOpened() {
        let before = Self.snapshot(commands: 5)
        var state = drive(Self.events(before), FakeEngineLink(), keys: [.char("j"), .char("j"), .enter])
        #expect(render(state, before).joined().contains("rate 2: synthetic arrival rate set"))
        let after = Self.snapshot(commands: 8)  // three newer commands on top
        state = ConsoleUpdate.update(state, .tick(after)).0
        let text = render(state, after).joined(separator: "\n")
        #expect(text.contains("Event · any key closes"))
        let box = text.split(separator: "\n").filter { $0.contains("synthetic arrival rate set") && $0.contains("│ rate") }
        #expect(box.count == 1 && box[0].contains("│ rate 2: synthetic"), "\(box)")
    }

    /// 14 events held, 6 rows listed (nine rebalances fold into one): End put the cursor on
    /// event 13, drawn on the last row, so ↑ did nothing seven times and Enter opened nothing.
    @Test func endAndArrowsStayOnTheRowsListed() {
        let s = Self.snapshot(commands: 5)
        var state = Self.events(s)
        #expect(EventsView.shown(state).count == 6)
        state = drive(state, FakeEngineLink(), keys: [.end])
        #expect(state.eventScroll == 5)
        state = drive(state, FakeEngineLink(), keys: [.char("k")])
        #expect(state.eventScroll == 4)
        let cursorRow = render(state, s).first { $0.contains("rate 0: synthetic") }
        #expect(cursorRow != nil)
        state = drive(state, FakeEngineLink(), keys: [.end, .enter])
        #expect(state.eventDetail?.message == "prefill-8: rebalance skipped")
        #expect(render(state, s).joined().contains("repeated   ×9"))
        state = drive(state, FakeEngineLink(), keys: [.escape] + Array(repeating: Key.char("j"), count: 20))
        #expect(state.eventScroll == 5)
    }

    /// The highlight stays on the event it marks as newer ones push it down; on the newest row
    /// it keeps showing the newest; when its event leaves the ring it stays on the last row.
    @Test func theCursorFollowsItsEvent() {
        var state = drive(Self.events(Self.snapshot(commands: 5)), FakeEngineLink(), keys: [.char("j"), .char("j")])
        #expect(EventsView.shown(state)[state.eventScroll].event.message == "rate 2: synthetic arrival rate set")
        state = ConsoleUpdate.update(state, .tick(Self.snapshot(commands: 8))).0
        #expect(state.eventScroll == 5)
        #expect(EventsView.shown(state)[state.eventScroll].event.message == "rate 2: synthetic arrival rate set")
        // The oldest commands leave the ring: the console keeps them (KeptEventsTests), and the
        // cursor stays on its event.
        let later = Self.snapshot(commands: 4, from: 10)
        state = ConsoleUpdate.update(state, .tick(later)).0
        #expect(EventsView.shown(state)[state.eventScroll].event.message == "rate 2: synthetic arrival rate set")
        // Routine lines are not kept: when its event leaves, the cursor stays on a row listed.
        var routine = drive(Self.events(Self.snapshot(commands: 5)), FakeEngineLink(), keys: [.end])
        #expect(EventsView.shown(routine)[routine.eventScroll].event.kind == .rebalance)
        var gone = Self.snapshot(commands: 1, from: 10)
        gone.events.removeFirst(9)
        routine = ConsoleUpdate.update(routine, .tick(gone)).0
        #expect(!EventsView.shown(routine).contains { $0.event.kind == .rebalance })
        #expect(routine.eventScroll < EventsView.shown(routine).count)

        var top = Self.events(Self.snapshot(commands: 5))
        top = drive(top, FakeEngineLink(), keys: [.home])
        top = ConsoleUpdate.update(top, .tick(Self.snapshot(commands: 8))).0
        #expect(top.eventScroll == 0)
        #expect(EventsView.shown(top)[0].event.message == "rate 7: synthetic arrival rate set")
    }

    /// Esc on the Events view clears the filter and puts the cursor on the newest row, as Esc
    /// in the `/` prompt does, rather than on whatever event sits at its old row.
    @Test func escClearingTheFilterStartsAtTheTop() {
        var state = drive(Self.events(Self.snapshot(commands: 5)), FakeEngineLink(), keys: [.char("/")] + typed("rate") + [.enter, .char("j"), .char("j")])
        #expect(state.eventFilter == "rate" && state.eventScroll == 2)
        state = drive(state, FakeEngineLink(), keys: [.escape])
        #expect(state.eventFilter == "" && state.eventScroll == 0)
    }

    /// A folded event is found in the row it folds into.
    @Test func aFoldedEventIsFoundInItsRow() {
        let state = Self.events(Self.snapshot(commands: 2))
        let folded = EngineEvent(time: 60, kind: .rebalance, message: "prefill-3: rebalance skipped")
        #expect(EventsView.row(of: folded, state) == 2)
        #expect(EventsView.row(of: EngineEvent(time: 1, kind: .info, message: "gone"), state) == nil)
    }
}

/// The Events title at 80 columns with a filter: it was cut mid-word ("(Esc clears" with no
/// ")", "Enter full" gone); it now drops "newest first" first, and stays whole.
@Suite struct EventsTitleTests {
    @Test func aFilteredTitleStaysWholeAt80Columns() {
        var state = EventCursorTests.events(EventCursorTests.snapshot(commands: 5))
        state = drive(state, FakeEngineLink(), keys: [.char("/")] + typed("rate") + [.enter, .char("v")])
        let top = ConsoleScreen.render(state, EventCursorTests.snapshot(commands: 5), theme: .builtinDark, width: 80, height: 24).lines[3]
        #expect(top.hasSuffix("filter \"rate\" (Esc clears) · Enter full ┐"), "\(top)")
        #expect(!top.contains("newest first"))
        let wide = ConsoleScreen.render(state, EventCursorTests.snapshot(commands: 5), theme: .builtinDark, width: 120, height: 40).lines[3]
        #expect(wide.contains("· newest first · level warn+ (v) · filter \"rate\" (Esc clears) · Enter full ─"), "\(wide)")
    }

    /// Requests and the Experts hot list at 80 columns cut the filter's own text from their
    /// titles ('filter "decod' for "decode", 'filter "L2' for "L23"): the operator read a
    /// filter other than the one applied.
    @Test func filterTextsStayWholeInNarrowTitles() {
        let requests = renderFixture(.requests) { $0.requestFilter = "decode-0/dp1" }.joined(separator: "\n")
        #expect(requests.contains("filter \"decode-0/dp1\""), "\(requests)")
        let experts = renderFixture(.experts) { $0.expertFilter = "L23" }.joined(separator: "\n")
        #expect(experts.contains("filter \"L23\""), "\(experts)")
        // Where the whole title fits, it is the one drawn.
        let wide = renderFixture(.requests, width: 200, height: 60) { $0.requestFilter = "decode" }[3]
        #expect(wide.contains("(s column, S reverse, Enter detail) · filter \"decode\" (Esc clears) ─"), "\(wide)")
    }
}
