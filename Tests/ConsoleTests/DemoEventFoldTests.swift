import ServingEngine
import Testing
import XDSTestSupport

@testable import Console

/// The default demo logs a `rate` step every 15 simulated seconds and the decode TE two
/// rebalance lines a minute. At 0:20 the Events view listed 108 rows of them, one a row, and an
/// operator's drain at 0:05 was 60 rows down, off a 120×40 screen.
@Suite struct DemoEventFoldTests {
    /// 20 simulated minutes of the demo as the engine logs it, with a drain at 300.5 s and an
    /// operator's `rate 30` (not a step) at 900.5 s.
    static func snapshot() -> Snapshot {
        var s = SnapshotFixtures.superpod
        var events: [EngineEvent] = []
        let steps = DemoLoad.scenario.steps.filter { $0.at < 1_200 }
        var minute = 60.0
        for step in steps {
            while minute <= step.at {
                events.append(EngineEvent(time: minute, kind: .rebalance, message: "decode-0: rebalance started (greedy): imbalance 1.2\(Int(minute) % 7) → 1.16 planned"))
                events.append(EngineEvent(time: minute, kind: .rebalance, message: "decode-0: rebalance done in 0.02 s: served imbalance 1.3\(Int(minute) % 5) → 1.20"))
                minute += 60
            }
            if step.at > 300, !events.contains(where: { $0.kind == .drain }) {
                events.append(EngineEvent(time: 300.5, kind: .drain, message: "drain node 3: node 3 draining: 12 requests left to finish"))
            }
            if step.at > 900, !events.contains(where: { $0.message.hasPrefix("rate 30:") }) {
                events.append(EngineEvent(time: 900.5, kind: .command, message: "rate 30: synthetic arrival rate set to 30 requests/s"))
            }
            events.append(EngineEvent(time: step.at, kind: .command, message: "\(step.command): synthetic arrival rate set"))
        }
        s.events = events
        s.simTime = 1_199
        return s
    }

    static func state(_ s: Snapshot, scenario: Scenario?) -> ConsoleState {
        var state = ConsoleUpdate.update(ConsoleState(width: 120, height: 40), .tick(s)).0
        state.view = .events
        state.scenario = scenario
        return state
    }

    @Test func theDemosRateStepsFoldAndTheDrainStaysOnScreen() {
        let s = Self.snapshot()
        #expect(s.events.count > 100)
        let state = Self.state(s, scenario: DemoLoad.scenario)
        let rows = EventsView.shown(state)
        // Nothing is lost: every event is in some row's count.
        #expect(rows.map(\.count).reduce(0, +) == s.events.count)
        let lines = ConsoleScreen.render(state, s, theme: .builtinDark, width: 120, height: 40).lines
        let text = lines.joined(separator: "\n")
        #expect(text.contains("drain node 3: node 3 draining"), "\(text)")
        // The operator's own rate is a row of its own, never folded into the demo's.
        let own = rows.first { $0.event.message.hasPrefix("rate 30:") }
        #expect(own?.count == 1)
        #expect(text.contains("rate 30: synthetic arrival rate set to 30 requests/s"))
        #expect(!text.contains("rate 30: synthetic arrival rate set to 30 requests/s (×"))
        // Folded demo steps say how many they are.
        #expect(rows.contains { $0.event.kind == .command && $0.count > 10 })
    }

    /// "rate 25" and "rate 32.2" are one shape: digit by digit they were two, and at 0:23 of
    /// the demo the rate steps since the drain stood as "rate 32.2 … (×65)", "rate 25 … (×4)",
    /// "rate 40 … (×3)", "rate 38.8 … (×17)". Between two other events the demo now leaves one
    /// row per routine kind of line: here 3 spans × (rate, rebalance started, done) + 2.
    @Test func wholeAndDecimalRatesAreOneShape() {
        #expect(EventsView.shape("rate 25: synthetic arrival rate set to 25 requests/s")
                == EventsView.shape("rate 32.2: synthetic arrival rate set to 32.2 requests/s"))
        #expect(EventsView.shape("imbalance 1.43 → 1.22 in 0.02 s") == "imbalance # → # in # s")
        #expect(EventsView.shape("node 3.") == "node #.")
        let rows = EventsView.shown(Self.state(Self.snapshot(), scenario: DemoLoad.scenario))
        #expect(rows.count <= 11, "\(rows.map { "\($0.event.message) ×\($0.count)" })")
    }

    /// Without a scenario (a remote console, `--rate`) a `rate` command is the operator's and
    /// never folds by shape.
    @Test func withoutAScenarioRateCommandsStayOneARow() {
        let s = Self.snapshot()
        let rows = EventsView.shown(Self.state(s, scenario: nil))
        let rates = s.events.filter { $0.kind == .command }.count
        #expect(rows.filter { $0.event.kind == .command }.count == rates)
    }

    /// The cursor's row and the row an event folds into agree (Enter opens the row's event).
    @Test func rowOfAFoldedStepIsItsRow() {
        let s = Self.snapshot()
        let state = Self.state(s, scenario: DemoLoad.scenario)
        let rows = EventsView.shown(state)
        for e in s.events.suffix(40) {
            guard let r = EventsView.row(of: e, state) else {
                Issue.record("no row for \(e.message)")
                continue
            }
            #expect(EventsView.shape(rows[r].event.message) == EventsView.shape(e.message) || rows[r].event == e)
        }
    }
}
