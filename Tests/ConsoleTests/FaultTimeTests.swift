import ServingEngine
import Testing
import XDSTestSupport

@testable import Console

/// "detected in 0.0 s" read as a missing figure: the engine writes tenths, and a glitch is found
/// when the iteration in flight ends (ms later), an HBM error in the heartbeat round of its own
/// instant. The Faults panel writes such times from the engine's timestamps.
@Suite struct FaultTimeTests {
    static func status(_ text: String, injected: Double, detected: Double?, recovered: Double? = nil) -> FaultStatus {
        FaultStatus(id: 5, description: text, injectedAt: injected, detectedAt: detected, recoveredAt: recovered)
    }

    @Test func subTenthTimesAreWrittenAsTheyAre() {
        // A glitch (engine run: injected 40.37, found 3.8 ms later, recovered 0.39 s later).
        let glitch = Self.status("fault glitch · detected in 0.0 s · recovered in 0.4 s", injected: 40.37,
                                 detected: 40.3737943, recovered: 40.7604)
        #expect(glitch.shownDescription == "fault glitch · detected in 4 ms · recovered in 0.4 s")
        // An HBM error reported in the heartbeat round of the instant it was injected.
        let hbm = Self.status("fault hbm die 300 · detected in 0.0 s · recovered in 0.0 s", injected: 30,
                              detected: 30, recovered: 30)
        #expect(hbm.shownDescription == "fault hbm die 300 · detected at once (ECC, heartbeat) · recovered at once")
        // Times of a tenth and more stay as the engine wrote them.
        let npu = Self.status("fault npu 140 · detected in 2.1 s", injected: 1, detected: 3.1)
        #expect(npu.shownDescription == "fault npu 140 · detected in 2.1 s")
    }

    @Test func theFaultsPanelShowsNoZeroTime() {
        var s = SnapshotFixtures.superpod
        s.activeFaults = [Self.status("fault hbm die 300 · detected in 0.0 s · recovered in 0.0 s", injected: 600,
                                      detected: 600, recovered: 600)]
        var state = ConsoleUpdate.update(ConsoleState(width: 160, height: 48), .tick(s)).0
        state.view = .pod
        let text = ConsoleScreen.render(state, s, theme: .builtinDark, width: 160, height: 48).text
        #expect(!text.contains("0.0 s"), "\(text)")
        #expect(text.contains("detected at once (ECC, heartbeat)"), "\(text)")
    }
}

