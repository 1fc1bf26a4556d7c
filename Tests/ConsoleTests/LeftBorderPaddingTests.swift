import ServingEngine
import Testing
import XDSTestSupport

@testable import Console

/// Text keeps a blank after a panel's left border too. At 80 columns the Pod view's six node
/// blocks filled the grid's 78 inner columns exactly, so a drained or faulted node of the first
/// column drew its marker against the border: "│⊘05 PPPPPPPP", the marker read as part of the
/// frame.
@Suite struct LeftBorderPaddingTests {
    /// Every place in `lines` where text touches a vertical border from inside on the left: a
    /// character that is neither blank nor box drawing directly right of a `│` whose left side
    /// is a blank, another border or the screen edge (so the `│` opens a panel).
    static func flushAgainstLeftBorder(_ lines: [String]) -> [String] {
        let box: Set<Character> = ["│", "┌", "┐", "└", "┘", "├", "┤", "┬", "┴", "┼", "─", " "]
        var found: [String] = []
        for (y, text) in lines.enumerated() {
            let line = Array(text)
            for x in 0..<max(0, line.count - 1) where line[x] == "│" && !box.contains(line[x + 1]) {
                let before: Character = x > 0 ? line[x - 1] : " "
                guard before == " " || before == "│" || x == 0 else { continue }
                found.append("row \(y): \(String(line[x..<min(line.count, x + 30)]))…")
            }
        }
        return found
    }

    @Test(arguments: [(80, 24), (100, 30), (120, 40), (200, 60)])
    func aFirstColumnMarkerKeepsABlankAfterTheBorder(size: (Int, Int)) {
        let (w, h) = size
        let lines = ReviewRecheckTests.render(.pod, width: w, height: h)
        let layout = PodLayout(width: w, height: h)
        // The fixture marks node 5 (drained) in the first column.
        let five = lines[layout.origin(ofNode: 5).y]
        #expect(five.hasPrefix("│ ⊘05"), "\(w)×\(h): \(five)")
        #expect(Self.flushAgainstLeftBorder(lines).isEmpty, "\(w)×\(h): \(Self.flushAgainstLeftBorder(lines))")
        // The last block keeps a blank before the right border.
        #expect(BorderPaddingTests.flushAgainstBorder(lines).isEmpty)
        // Mouse hits follow the drawing: node 5's first cell (the first letter after its
        // number) is NPU 40, its last NPU 47.
        let (x, y) = layout.origin(ofNode: 5)
        let row = Array(five)
        let first = (x + 3..<row.count).first { row[$0] != " " }!
        #expect(layout.npu(atX: first, y: y) == 40)
        #expect(layout.npu(atX: first + 7 * layout.cellWidth, y: y) == 47)
        #expect(layout.npu(atX: first - 1, y: y) == nil)
    }
}
