import Foundation
import ServingEngine
import Testing
import XDSTestSupport

@testable import Console

/// Console defects found in the second review round, held in the rendered cells.
@Suite struct SecondRoundConsoleTests {
    static func render(
        _ view: ConsoleView, _ s: Snapshot, width: Int, height: Int,
        _ adjust: (inout ConsoleState) -> Void = { _ in }
    ) -> [String] {
        var state = ConsoleUpdate.update(ConsoleState(width: width, height: height), .tick(s)).0
        state.view = view
        adjust(&state)
        return ConsoleScreen.render(state, s, theme: .builtinDark, width: width, height: height).lines
    }

    /// A dead NPU's HBM line said "0.0/128.0 GB · no alarm colour: KV below", a note about
    /// the load colours of a chip that has none: it says the chip is dead and since when.
    @Test func deadNPUsHBMLineSaysItIsDeadAndSinceWhen() {
        for (width, height) in [(80, 24), (120, 40), (200, 55)] {
            let lines = Self.render(.pod, ReviewRecheckTests.faulted, width: width, height: height) { $0.selectedNPU = 163 }
            let hbm = lines.first { $0.contains("│ HBM ") } ?? ""
            #expect(!hbm.contains("no alarm colour") && !hbm.contains("weights"), "\(width)×\(height): \(hbm)")
            #expect(hbm.contains("dead since 0:00:22"), "\(width)×\(height): \(hbm)")
            // A live NPU keeps its note where it fits.
            let live = Self.render(.pod, ReviewRecheckTests.faulted, width: width, height: height) { $0.selectedNPU = 0 }
            #expect(!(live.first { $0.contains("│ HBM ") } ?? "").contains("dead"))
        }
        // Faulted by the engine with no command the console can read: dead, time unknown.
        var s = SnapshotFixtures.superpod
        s.npus[7].faulted = true
        let lines = Self.render(.pod, s, width: 120, height: 40) { $0.selectedNPU = 7 }
        let hbm = lines.first { $0.contains("│ HBM ") } ?? ""
        #expect(hbm.contains("· dead") && !hbm.contains("no alarm colour") && !hbm.contains("since"), "\(hbm)")
    }
}
