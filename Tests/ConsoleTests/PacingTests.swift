import ServingEngine
import Testing
import XDSTestSupport

@testable import Console

/// Issue 13 item 7: the header shows the achieved speed beside the requested one, and status
/// lines give the footer back after a few seconds.
@Suite struct PacingTests {
    static func ticked(_ state: ConsoleState, wall: Double, sim: Double, speed: Double? = 1000) -> ConsoleState {
        var s = SnapshotFixtures.superpod
        s.simTime = sim
        s.speed = speed
        let clocked = ConsoleUpdate.update(state, .clock(wallSeconds: wall)).0
        return ConsoleUpdate.update(clocked, .tick(s)).0
    }

    @Test func achievedSpeedIsMeasuredAndShownBesideTheRequested() {
        var state = ConsoleState(width: 200, height: 60)
        // 1000× requested, but the engine only manages 300 simulated seconds per wall second.
        for i in 0...10 {
            state = Self.ticked(state, wall: 100 + Double(i) * 0.5, sim: 600 + Double(i) * 150)
        }
        let achieved = try? #require(state.achievedSpeed)
        #expect(achieved.map { abs($0 - 300) < 1e-9 } == true)
        var s = SnapshotFixtures.superpod
        s.speed = 1000
        s.simTime = 2100
        let header = ConsoleScreen.render(state, s, theme: .builtinDark, width: 200, height: 60).lines[0]
        #expect(header.contains("▶ 1000× (≈300× achieved)"))
        let narrow = ConsoleScreen.render(state, s, theme: .builtinDark, width: 80, height: 24).lines[0]
        #expect(narrow.contains("▶ 1000× (≈300×)"))
        #expect(narrow.hasSuffix("sim 0:35:00"))
        // A speed change starts a new measurement instead of mixing the two.
        state = Self.ticked(state, wall: 106, sim: 2300, speed: 10)
        #expect(state.achievedSpeed == nil)
        state = Self.ticked(state, wall: 108, sim: 2320, speed: 10)
        #expect(state.achievedSpeed == 10)
    }

    /// `-` from 1000× (measured ≈300×) to 500×: the key sets the requested speed at once, so the
    /// first snapshot at 500× matched it and the samples taken at 1000× stayed in the window.
    /// Pressed 20 times down to 0.1×, the header read "▶ 0.1× (≈448×)" for seconds.
    @Test func aSpeedKeyStartsANewMeasurement() {
        var state = ConsoleState(width: 200, height: 60)
        for i in 0...10 {
            state = Self.ticked(state, wall: 100 + Double(i) * 0.5, sim: 600 + Double(i) * 150)
        }
        #expect(state.achievedSpeed.map { abs($0 - 300) < 1e-9 } == true)
        state = ConsoleUpdate.update(state, .key(.char("-"))).0
        #expect(state.speed == 500)
        #expect(state.achievedSpeed == nil)
        // The engine now keeps 10 simulated seconds per wall second.
        state = Self.ticked(state, wall: 105.5, sim: 2250, speed: 500)
        state = Self.ticked(state, wall: 106, sim: 2255, speed: 500)
        #expect(state.achievedSpeed == nil)
        state = Self.ticked(state, wall: 106.5, sim: 2260, speed: 500)
        #expect(state.achievedSpeed.map { abs($0 - 10) < 1e-9 } == true, "\(String(describing: state.achievedSpeed))")
    }

    /// `xds console --connect` to a server that then stopped: the header said "⚠ … reconnecting…"
    /// and "▶ 1× (≈1.0×)" beside a sim clock that no longer moved, because the achieved speed was
    /// measured only when a snapshot came, and none came. A stalled embedded engine looked the same.
    @Test func aClockThatStandsIsShownAchievingNothing() {
        var state = ConsoleState(width: 200, height: 60)
        for i in 0...8 {
            state = Self.ticked(state, wall: 100 + Double(i) * 0.5, sim: 50 + Double(i) * 0.5, speed: 1)
        }
        #expect(state.achievedSpeed.map { abs($0 - 1) < 1e-9 } == true)
        // Snapshots every 0.5 s keep it measured; a gap shorter than the window changes nothing.
        state = ConsoleUpdate.update(state, .clock(wallSeconds: 106)).0
        #expect(state.achievedSpeed.map { abs($0 - 1) < 1e-9 } == true)
        // No snapshot for a whole window: nothing moved in it.
        state = ConsoleUpdate.update(state, .clock(wallSeconds: 107.5)).0
        #expect(state.achievedSpeed == 0)
        var frozen = SnapshotFixtures.superpod
        frozen.simTime = 54
        frozen.speed = 1
        frozen.linkStatus = "connection refused — reconnecting…"
        let header = ConsoleScreen.render(state, frozen, theme: .builtinDark, width: 200, height: 60).lines[0]
        #expect(header.contains("▶ 1× (≈0.0× achieved)"), "\(header)")
        // Snapshots again: measured afresh, back at the pace the engine keeps.
        for i in 0...4 {
            state = Self.ticked(state, wall: 108 + Double(i) * 0.5, sim: 58 + Double(i) * 0.5, speed: 1)
        }
        #expect(state.achievedSpeed.map { abs($0 - 1) < 0.5 } == true)
        // Paused, the standing clock is the pause, shown as such.
        var paused = SnapshotFixtures.superpod
        paused.paused = true
        paused.speed = 1
        state = ConsoleUpdate.update(state, .tick(paused)).0
        state = ConsoleUpdate.update(state, .clock(wallSeconds: 200)).0
        let pausedHeader = ConsoleScreen.render(state, paused, theme: .builtinDark, width: 200, height: 60).lines[0]
        #expect(pausedHeader.contains("⏸ paused") && !pausedHeader.contains("≈"))
    }

    @Test func statusLinesFadeAndTheKeyHintsComeBack() {
        let link = FakeEngineLink()
        var state = ConsoleUpdate.update(primedState(), .clock(wallSeconds: 50)).0
        state.selectedNPU = 5 * 8  // node 5 is drained in the fixture
        state = drive(state, link, keys: [.char("u")])
        #expect(state.status != nil)
        let shown = ConsoleScreen.render(state, link.latestSnapshot(), theme: .builtinDark, width: 80, height: 24)
        #expect(shown.lines[23].hasPrefix("✓ "))
        state = ConsoleUpdate.update(state, .clock(wallSeconds: 52)).0
        #expect(state.status != nil)
        state = ConsoleUpdate.update(state, .clock(wallSeconds: 50 + ConsoleState.statusSeconds)).0
        #expect(state.status == nil)
        let back = ConsoleScreen.render(state, link.latestSnapshot(), theme: .builtinDark, width: 80, height: 24)
        #expect(back.lines[23].hasPrefix("q quit ? help"))
        // Errors stay longer.
        state = drive(state, link, keys: [.char(":")] + typed("explode") + [.enter])
        #expect(state.status?.isError == true)
        state = ConsoleUpdate.update(state, .clock(wallSeconds: 56 + ConsoleState.statusSeconds)).0
        #expect(state.status?.isError == true)
        state = ConsoleUpdate.update(state, .clock(wallSeconds: 56 + ConsoleState.errorStatusSeconds)).0
        #expect(state.status == nil)
    }
}
