import ServingEngine
import Testing
import XDSTestSupport

@testable import Console

/// A table cell longer than its column is cut with "…": the Requests view's reason column at
/// 80 columns read "NPU 140 lost during deco", and a cut number ("10485.6" for 10485.6s, an age
/// past its 7 columns) could not be told from a whole one.
@Suite struct TableCutTests {
    @Test func aCutCellSaysSo() {
        var b = CellBuffer(width: 30, height: 3)
        b.table(columns: [("reason", 12), ("age", -6)],
                rows: [[("prefill queue full", .text), ("10485.6s", .text)], [("whole", .text), ("7.0s", .text)]],
                in: Rect(x: 0, y: 0, width: 30, height: 3))
        #expect(b.lines[1] == "prefill que… 10485…")
        #expect(b.lines[2] == "whole          7.0s")
    }

    @Test func theRequestsViewMarksACutReason() {
        var s = SnapshotFixtures.superpod
        // The newest finished request, so it is on screen at 80×24.
        s.recent[19].stage = .failed
        s.recent[19].reason = "restart of the world after fault 3"
        var state = ConsoleUpdate.update(ConsoleState(width: 80, height: 24), .tick(s)).0
        state.view = .requests
        let lines = ConsoleScreen.render(state, s, theme: .builtinDark, width: 80, height: 24).lines
        let row = lines.first { $0.contains("#95919") }
        #expect(row?.contains("restart of the world af…") == true, "\(lines.joined(separator: "\n"))")
    }
}
