import ServingEngine
import Testing
import XDSTestSupport

@testable import Console

/// The event box keeps the event opened while newer ones of its folded row arrive, but its
/// "repeated ×N" was the row's count now: live at 20×, Enter on "rate 0.139 … (×10)" at 0:02:30
/// and a second later the box said "time 0:02:30.0 … repeated ×11" beside the row's newest
/// "0:02:45.0 … rate 0.144 (×11)", as if the event shown had repeated eleven times. The box says
/// which is the newest of the row when it is not the one shown.
@Suite struct EventRepeatDetailTests {
    static func snapshot(rebalances: Int) -> Snapshot {
        var s = SnapshotFixtures.superpod
        s.events = (0..<rebalances).map {
            EngineEvent(time: 60 + Double($0), kind: .rebalance, message: "prefill-\($0): rebalance skipped")
        }
        return s
    }

    func render(_ state: ConsoleState, _ s: Snapshot) -> String {
        ConsoleScreen.render(state, s, theme: .builtinDark, width: 120, height: 40).text
    }

    @Test func theBoxSaysWhichIsTheNewestOfItsRow() throws {
        let before = Self.snapshot(rebalances: 3)
        var state = ConsoleUpdate.update(ConsoleState(width: 120, height: 40), .tick(before)).0
        state.view = .events
        state = drive(state, FakeEngineLink(), keys: [.enter])
        #expect(state.eventDetail?.message == "prefill-2: rebalance skipped")
        let opened = render(state, before)
        #expect(opened.contains("repeated   ×3 (collapsed, routine)"), "\(opened)")
        #expect(!opened.contains("the newest at"), "\(opened)")
        let after = Self.snapshot(rebalances: 5)
        state = ConsoleUpdate.update(state, .tick(after)).0
        let text = render(state, after)
        #expect(text.contains("time       0:01:02.0 (simulated)"), "\(text)")
        #expect(text.contains("repeated   ×5 (collapsed, routine) · the newest at 0:01:04.0"), "\(text)")
    }
}
