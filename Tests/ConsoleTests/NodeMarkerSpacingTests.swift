import ServingEngine
import Testing
import XDSTestSupport

@testable import Console

/// A node's drain/fault marker sits before its number, which a blank separates from its first
/// NPU cell. It used to sit between the two: after `fault npu 163`, LANG=C showed `20XDDDXDDDD`,
/// nine cells of which two dead, for one dead NPU (an HBM-faulted node `21##D^D^DDD`), and with
/// two-column cells a dead node read `20X X X X X X X X X`.
@Suite struct NodeMarkerSpacingTests {
    /// Each node's label, its marker and the cells after it, from the rendered lines.
    static func nodes(_ lines: [String], width: Int, height: Int) -> [(label: String, marker: Character, next: Character, cells: String)] {
        let layout = PodLayout(width: width, height: height)
        var found: [(String, Character, Character, String)] = []
        for node in 0..<48 {
            let (x, y) = layout.origin(ofNode: node)
            let line = Array(lines[y])
            let cells = String(line[(x + layout.labelWidth)..<(x + layout.labelWidth + 8 * layout.cellWidth)])
            found.append((String(line[(x + 1)..<(x + 3)]), line[x], line[x + 3], cells))
        }
        return found
    }

    @Test(arguments: [(80, 24), (100, 30), (160, 45), (200, 60), (300, 80)])
    func aMarkerNeverTouchesTheFirstCell(size: (Int, Int)) {
        let (w, h) = size
        var state = ConsoleState(width: w, height: h)
        state = ConsoleUpdate.update(state, .tick(SnapshotFixtures.superpod)).0
        let frame = ConsoleScreen.render(state, SnapshotFixtures.superpod, theme: .builtinDark, width: w, height: h)
        for lines in [frame.lines, frame.asciiOnly().lines] {
            let nodes = Self.nodes(lines, width: w, height: h)
            for (node, n) in nodes.enumerated() {
                #expect(n.label == (node < 10 ? "0\(node)" : "\(node)"), "\(w)×\(h) node \(node)")
                // A blank after the number, except at 80 columns, where the number goes right
                // before the cells so that the first column's marker keeps a blank after the
                // border (``LeftBorderPaddingTests``).
                let wanted: Character = PodLayout(width: w, height: h).labelWidth == 4 ? " " : n.cells.first!
                #expect(n.next == wanted, "\(w)×\(h) node \(node): '\(n.label)\(n.marker)\(n.next)\(n.cells)'")
                #expect(!n.cells.hasPrefix(" "), "\(w)×\(h) node \(node): '\(n.cells)'")
            }
            // The fixture's node 17 has NPU 140 dead: one X as its marker, one in its cells.
            let n17 = nodes[17]
            #expect(n17.marker == "X")
            #expect(n17.cells.filter { $0 == "X" }.count == 1, "\(w)×\(h): '\(n17.cells)'")
            // The marker is not spaced as a cell is: it touches the number, never a cell.
            let (x, y) = PodLayout(width: w, height: h).origin(ofNode: 17)
            let row = Array(lines[y])
            let label = PodLayout(width: w, height: h).labelWidth == 4 ? "X17 " : "X17D"
            #expect(String(row[x..<(x + 4)]) == label, "\(w)×\(h): '\(String(row[x..<(x + 12)]))'")
            // Nor the cells of the node before it: a blank there, two for two-column cells (one
            // blank is their own rhythm, and the marker read as a ninth cell of that node).
            let layout = PodLayout(width: w, height: h)
            let (x20, y20) = layout.origin(ofNode: 20)
            #expect(String(Array(lines[y20])[(x20 - layout.cellWidth)..<x20]) == String(repeating: " ", count: layout.cellWidth),
                    "\(w)×\(h): '\(String(Array(lines[y20])[(x20 - 3)..<(x20 + 4)]))'")
        }
    }
}

extension NodeMarkerSpacingTests {
    /// The large screen's Nodes table put the marker after the number (`17X`, `05⊘`) while the
    /// grid above it, for the same nodes, reads `X17`, `⊘05`: one screen, two orders. The table
    /// now puts it before, as the grid does, in both character sets.
    @Test func theNodeTableWritesTheMarkerAsTheGridDoes() throws {
        let (w, h) = (300, 90)
        var state = ConsoleState(width: w, height: h)
        state = ConsoleUpdate.update(state, .tick(SnapshotFixtures.superpod)).0
        let frame = ConsoleScreen.render(state, SnapshotFixtures.superpod, theme: .builtinDark, width: w, height: h)
        for lines in [frame.lines, frame.asciiOnly().lines] {
            let top = try #require(lines.firstIndex { $0.contains(" Nodes ") && $0.contains(" 48 ") })
            // The table's box starts where its title's corner is; its rows start 2 in.
            let title = Array(lines[top])
            let corner = try #require(title.indices.first { i in String(title[(i + 1)...].prefix(7)) == " Nodes " })
            let layout = PodLayout(width: w, height: h)
            for node in [5, 16, 17] {
                let (x, y) = layout.origin(ofNode: node)
                let grid = String(Array(lines[y])[x..<(x + 3)])
                let table = Array(lines[top + 3 + node])
                let row = String(table[(corner + 2)..<(corner + 5)])
                #expect(row == grid, "node \(node): grid '\(grid)', table '\(row)'")
            }
        }
    }
}
