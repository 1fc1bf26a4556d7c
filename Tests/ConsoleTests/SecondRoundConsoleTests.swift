import Foundation
import ServingEngine
import Testing
import XDSTestSupport

@testable import Console

/// Console defects found in the second review round, held in the rendered cells.
@Suite struct SecondRoundConsoleTests {
    /// ``ReviewRecheckTests/render(_:_:width:height:_:)``: the same rendering of one view.
    static func render(
        _ view: ConsoleView, _ s: Snapshot, width: Int, height: Int,
        _ adjust: (inout ConsoleState) -> Void = { _ in }
    ) -> [String] {
        ReviewRecheckTests.render(view, s, width: width, height: height, adjust)
    }

    /// A dead NPU's HBM line said "0.0/128.0 GB · no alarm colour: KV below", a note about
    /// the load colours of a chip that has none: it says the chip is dead and since when.
    @Test func deadNPUsHBMLineSaysItIsDeadAndSinceWhen() {
        for (width, height) in [(80, 24), (120, 40), (200, 55)] {
            let lines = Self.render(.pod, ReviewRecheckTests.faulted, width: width, height: height) { $0.selectedNPU = 163 }
            let hbm = lines.first { $0.contains("│ HBM ") } ?? ""
            #expect(!hbm.contains("alarm colour") && !hbm.contains("weights"), "\(width)×\(height): \(hbm)")
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
        #expect(hbm.contains("· dead") && !hbm.contains("alarm colour") && !hbm.contains("since"), "\(hbm)")
    }

    /// After its server went away a remote console kept the last figures in their state colours
    /// (SLO 100% green, load colours on the grid), so numbers hours old looked live. While the
    /// link is down no cell below the header's first line carries a state colour, and the
    /// header says the figures are those of the last snapshot.
    @Test func aLostServersFiguresLookStale() {
        var s = ReviewRecheckTests.faulted
        s.simTime = 83
        s.linkStatus = "127.0.0.1:18700: disconnected — reconnecting…"
        for (view, width, height) in [(ConsoleView.pod, 120, 40), (.pod, 80, 24), (.latency, 120, 40), (.experts, 200, 55)] {
            var state = ConsoleUpdate.update(ConsoleState(width: width, height: height), .tick(s)).0
            state.view = view
            let b = ConsoleScreen.render(state, s, theme: .builtinDark, width: width, height: height)
            #expect(b.lines[0].contains("⚠ 127.0.0.1:18700: disconnected"), "\(b.lines[0])")
            if width >= 120 { #expect(b.lines[0].contains("figures as of sim 0:01:23"), "\(b.lines[0])") }
            var coloured: [String] = []
            for y in 1..<height {
                for x in 0..<width {
                    let style = b[x, y].style
                    for role in [style.fg, style.bg].compactMap({ $0 }) {
                        switch role {
                        case .good, .warn, .bad, .heat, .role: coloured.append("\(x),\(y) \(b[x, y].character)")
                        default: break
                        }
                    }
                }
            }
            #expect(coloured.isEmpty, "\(view) \(width)×\(height): \(coloured.prefix(8))")
            // Live again: the colours come back.
            s.linkStatus = nil
            let live = ConsoleScreen.render(state, s, theme: .builtinDark, width: width, height: height)
            #expect((1..<height).contains { y in (0..<width).contains { x in
                if case .good = live[x, y].style.fg { return true } else { return false } } })
            s.linkStatus = "127.0.0.1:18700: disconnected — reconnecting…"
        }
    }
}
