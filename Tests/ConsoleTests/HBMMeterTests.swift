import ServingEngine
import Testing
import XDSTestSupport

@testable import Console

/// The HBM meter is not a load: weights fill most of it from the start (a fresh superpod's
/// prefill chip at ~78% was drawn "high"), and the KV pool is reserved up front. It is drawn in
/// the neutral colour and says what it holds; the KV meter under it carries the pool's state.
@Suite struct HBMMeterTests {
    @Test func hbmMeterIsNeutralAndSaysWhatItHolds() throws {
        for (w, h) in [(80, 24), (160, 48), (250, 70)] {
            var s = SnapshotFixtures.superpod
            s.npus[0].hbmUsedBytes = 100.3e9
            s.npus[0].hbmCapacityBytes = 128e9
            var state = ConsoleUpdate.update(ConsoleState(width: w, height: h), .tick(s)).0
            state.view = .pod
            state.selectedNPU = 0
            let frame = ConsoleScreen.render(state, s, theme: .builtinDark, width: w, height: h)
            let y = try #require(frame.lines.firstIndex { $0.contains("│ HBM ") }, "\(w)×\(h)")
            let line = frame.line(y)
            #expect(line.contains("100.3/128.0 GB weights + KV in use"), "\(w)×\(h): \(line)")
            let x = try #require(Array(line).firstIndex(of: "█"))
            #expect(frame[x, y].style == Style(fg: .accent), "\(w)×\(h)")
        }
    }
}
