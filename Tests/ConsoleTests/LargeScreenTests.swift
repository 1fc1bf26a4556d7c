import Foundation
import ServingEngine
import Testing
import XDSTestSupport

@testable import Console

/// Large terminals: the extra rows and columns carry figures, not blank panels (at 300×90 the
/// Pod view's instance table and Faults panel were 74 and 72 rows for nine TEs and one fault),
/// and the Experts heat map's colour scale sits with the map.
@Suite struct LargeScreenTests {
    /// The superpod fixture with `count` more events, so an events panel has enough to fill.
    static func busySnapshot(events count: Int) -> Snapshot {
        var s = SnapshotFixtures.superpod
        s.events += (0..<count).map {
            EngineEvent(time: 650 + Double($0), kind: .command, message: "rate \(30 + $0)")
        }
        return s
    }

    static func render(_ view: ConsoleView, _ s: Snapshot, width: Int, height: Int) -> [String] {
        var state = ConsoleUpdate.update(ConsoleState(width: width, height: height), .tick(s)).0
        state.view = view
        return ConsoleScreen.render(state, s, theme: .builtinDark, width: width, height: height).lines
    }

    /// The columns `range` of `line`, as a string (lines are whole characters, one per cell).
    static func slice(_ line: String, _ range: Range<Int>) -> String {
        String(Array(line)[range.clamped(to: 0..<line.count)])
    }

    @Test func podAt300x90FillsTheInstanceEventsFaultsAndNodePanels() throws {
        let lines = Self.render(.pod, Self.busySnapshot(events: 80), width: 300, height: 90)
        #expect(lines.count == 90 && lines.allSatisfy { $0.count <= 300 })
        // Left column (128 wide, under the grid): the instance table keeps the rows its nine TEs
        // need, every one of them filled; the newest events fill the rest to the footer.
        #expect(Self.slice(lines[15], 0..<128).hasPrefix("┌ Instances · KV held ─"))
        for y in 17...25 { #expect(Self.slice(lines[y], 2..<12) != String(repeating: " ", count: 10), "row \(y)") }
        #expect(Self.slice(lines[25], 0..<128).hasPrefix("│ decode-0     decode      160     310    24.3k   68%   88.5ms degraded "))
        #expect(Self.slice(lines[26], 0..<128).hasPrefix("└─"))
        #expect(Self.slice(lines[27], 0..<128).hasPrefix("┌ Recent events · newest first · level all · view 6 lists them all ─"))
        #expect(Self.slice(lines[28], 0..<128).hasPrefix("│  0:12:09.0 info  command         rate 109 "))
        for y in 28...87 {
            #expect(Self.slice(lines[y], 1..<127).contains("command"), "event row \(y) is blank")
        }
        #expect(Self.slice(lines[88], 0..<128).hasPrefix("└─"))
        // Right column: the detail, the Faults panel with its fault, then one row per node.
        #expect(Self.slice(lines[17], 128..<300).hasPrefix("┌ Faults · drains ─"))
        #expect(lines[19].contains("│ #1 detected  NPU 140 lost (node 17) "))
        let nodesTop = try #require(lines.firstIndex { $0.contains("┌ Nodes · 48 · busy and KV held: mean over the node's chips (2 dies each), 0–100%") })
        #expect(nodesTop == 88 - 48 - 3)
        #expect(Self.slice(lines[nodesTop + 1], 128..<300).hasPrefix("│ node roles        instances        state          busy share"))
        #expect(Self.slice(lines[nodesTop + 2], 128..<300).contains("0%"))
        #expect(Self.slice(lines[nodesTop + 2], 128..<300).contains("100%"))
        // Every node has a row: its number, roles, state, two bars with their values, HBM and requests.
        for node in 0..<48 {
            let row = Self.slice(lines[nodesTop + 3 + node], 128..<300)
            #expect(Self.slice(row, 3..<5) == Format.pad2(node), "node \(node): \(row)")
            #expect(row.contains(" GB ") && row.contains("%"), "node \(node): \(row)")
        }
        // The fixture's faulted and drained nodes say so; decode node 16 is in service.
        #expect(Self.slice(lines[nodesTop + 3 + 17], 128..<300).hasPrefix("│ X17  8 decode     decode-0         faulted "))
        #expect(Self.slice(lines[nodesTop + 3 + 5], 128..<300).hasPrefix("│ ⊘05  8 prefill    prefill-2        drained "))
        #expect(Self.slice(lines[nodesTop + 3 + 16], 128..<300).hasPrefix("│  16  8 decode     decode-0         in service"))
        #expect(Self.slice(lines[nodesTop + 3 + 40], 128..<300).hasPrefix("│  40  8 spare      –                spare "))
        #expect(lines[88].hasSuffix("┘"))
    }

    /// The Pod view's recent events wrap a long message under its message column rather than
    /// cut it at the panel's edge (at 250×70 the NPU-fork line lost its re-prefilled count):
    /// every event shown is shown whole, newest first.
    @Test func podRecentEventsWrapLongMessagesAt250x70() throws {
        let long = "vertical shrink impossible for decode-0 (EP 320 needs every die); replacing NPU 163 with spare "
            + "NPU 288: NPU-fork weight copy 0.121 s over UB; 2 requests re-prefilled, 0 failed"
        var s = Self.busySnapshot(events: 3)
        s.events.append(EngineEvent(time: 700, kind: .command, message: long))
        let lines = Self.render(.pod, s, width: 250, height: 70)
        let top = try #require(lines.firstIndex { $0.hasPrefix("┌ Recent events") })
        let bottom = try #require(lines.indices.first { $0 > top && $0 < 69 && lines[$0].hasPrefix("└") })
        let rows = lines[(top + 1)..<bottom].map { Self.slice($0, 0..<128) }
        #expect(rows.allSatisfy { !$0.contains("…") }, "\(rows.joined(separator: "\n"))")
        // The newest event first, its message over as many lines as it needs, then the others.
        #expect(rows[0].hasPrefix("│  0:11:40.0 info  command         vertical shrink impossible"))
        // (Two lines in the 128 columns beside the grid.)
        let message = rows.prefix(2).map { Self.slice($0, 34..<127).trimmingCharacters(in: .whitespaces) }
        #expect(message.joined(separator: " ") == long, "\(message)")
        #expect(Self.slice(rows[1], 0..<34).allSatisfy { $0 == " " || $0 == "│" })
        #expect(rows[2].hasPrefix("│  0:10:52.0 info  command         rate 32"))
        // At 160×48 the panel (80 wide, on the left) wraps the message too; at 80×24 and
        // 120×40 there is no panel (its events are in view 6).
        let mid = Self.render(.pod, s, width: 160, height: 48)
        let midTop = try #require(mid.firstIndex { $0.hasPrefix("┌ Recent events") })
        let midRows = mid[(midTop + 1)...].prefix { !$0.hasPrefix("└") }.map { Self.slice($0, 0..<80) }
        #expect(midRows.allSatisfy { !$0.contains("…") }, "\(midRows.joined(separator: "\n"))")
        let midMessage = midRows.prefix { !$0.hasPrefix("│  0:10") }.map { Self.slice($0, 34..<79).trimmingCharacters(in: .whitespaces) }
        #expect(midMessage.joined(separator: " ") == long, "\(midMessage)")
        for (w, h) in [(80, 24), (120, 40)] {
            #expect(!Self.render(.pod, s, width: w, height: h).joined().contains("Recent events"), "\(w)×\(h)")
        }
    }

    /// A node of mixed roles counts them; spares are named, not drawn as "·".
    @Test func nodeRolesCountEachRole() {
        func chips(_ roles: [NPURole]) -> [NPUStatus] { roles.enumerated().map { NPUStatus(id: $0.offset, node: 0, role: $0.element) } }
        #expect(NodeTable.roles(chips(Array(repeating: .prefill, count: 8))) == "8 prefill")
        #expect(NodeTable.roles(chips([.colocated, .colocated, .colocated, .colocated, .spare, .spare, .spare, .spare])) == "4 C 4 spare")
        #expect(NodeTable.roles(chips([.prefill, .decode, .decode])) == "1 P 2 D")
    }

    /// Below 300×90 the panels split only where the rest is worth a panel: 200×60 keeps its
    /// instance table and Faults panel where they were and gets events under the table, no
    /// node table (the Faults column has no room for 48 rows).
    @Test func podAt200x60AddsEventsButNoNodeTable() {
        let lines = renderFixture(.pod, width: 200, height: 60)
        let text = lines.joined(separator: "\n")
        #expect(lines[27].hasPrefix("┌ Recent events · newest first"))
        #expect(lines[28].hasPrefix("│  0:10:40.1 info  rebalance       expert rebalance 3 started"))
        #expect(!text.contains("┌ Nodes"))
        // At 160×45 neither: the instance table keeps its rows.
        let narrow = renderFixture(.pod, width: 160, height: 45).joined(separator: "\n")
        #expect(!narrow.contains("Recent events") && !narrow.contains("┌ Nodes"))
    }

    /// At 200 columns the heat map takes 128 columns (the hot list stands beside its panel); its
    /// colour legend starts under the map's left edge on the row below the marker, not at the
    /// panel's far right.
    @Test func expertsLegendSitsUnderTheHeatMapAt200() throws {
        let lines = renderFixture(.experts, width: 200, height: 60)
        let markerRow = try #require(lines.firstIndex { $0.contains("▲ L0 E0 1.26× mean") })
        let legend = lines[markerRow + 1]
        #expect(legend.hasPrefix("│     colour ≤0.1× ████████ 6.20× mean (max), log "))
        // Within the map's 128 columns (from column 6), nothing of it to their right.
        let end = legend.range(of: ", log")!.upperBound
        #expect(legend.distance(from: legend.startIndex, to: end) <= 6 + 128)
        #expect(Self.slice(legend, 134..<135) == " " && Self.slice(legend, 135..<137) == "││")
        #expect(lines[markerRow + 2].hasPrefix("└"))
        // The map rows run to the marker row (its last row is right above it).
        #expect(lines[markerRow - 1].contains("▀"))
        // At 80×24 (no row to spare) the legend stays on the marker row.
        #expect(renderFixture(.experts)[12].hasSuffix("colour ≤0.1× ████████ 6.20× mean (max), log │"))
    }
}

extension LargeScreenTests {
    /// `xds console --scenario scenarios/npu-loss.toml` at 300×90, paused at 0:00:54: NPU 170 is
    /// dead and spare NPU 288 has taken its place in decode-0 (NPU-fork). The engine lists the
    /// dead chip with the spares (no TE), and the Nodes table counted it as one: node 21 read
    /// "7 D 1 spare", beside the grid's X for that chip, and its busy bar took the load colours
    /// a spare is judged by (orange at 87%) where the other decode nodes' bars are neutral. The
    /// table counts it as the grid draws it, dead, and judges the node by the chips that run.
    @Test func aReplacedDeadChipIsCountedDeadNotSpare() throws {
        var s = SnapshotFixtures.superpod
        s.npus[170].role = .spare
        s.npus[170].instance = ""
        s.npus[170].dpGroups = []
        s.npus[170].experts = []
        s.npus[170].utilization = 0
        s.npus[170].faulted = true
        s.npus[288].role = .decode
        s.npus[288].instance = "decode-0"
        s.npus[288].utilization = 0.9
        var state = ConsoleUpdate.update(ConsoleState(width: 300, height: 90), .tick(s)).0
        state.view = .pod
        let frame = ConsoleScreen.render(state, s, theme: .builtinDark, width: 300, height: 90)
        let lines = frame.lines
        let top = try #require(lines.firstIndex { $0.contains("┌ Nodes · 48 ") })
        let row21 = Self.slice(lines[top + 3 + 21], 128..<300)
        #expect(row21.hasPrefix("│ X21  7 D 1 dead   decode-0         faulted "), "\(row21)")
        #expect(Self.slice(lines[top + 3 + 36], 128..<300).hasPrefix("│  36  1 D 7 spare  decode-0         in service "))
        // The grid draws the same: X for the dead chip, D for the one that took its place.
        let layout = PodLayout(width: 300, height: 90)
        let (x21, y21) = layout.origin(ofNode: 21)
        #expect(frame[x21 + layout.labelWidth + 2 * layout.cellWidth, y21].character == "X")
        let (x36, y36) = layout.origin(ofNode: 36)
        #expect(frame[x36 + layout.labelWidth, y36].character == "D")
        // Node 21's busy bar is neutral, as every other decode node's is.
        let y = top + 3 + 21
        let bar = try #require((128..<300).first { frame[$0, y].character == "█" })
        let decodeBar = try #require((128..<300).first { frame[$0, top + 3 + 22].character == "█" })
        #expect(frame[bar, y].style == frame[decodeBar, top + 3 + 22].style, "\(frame[bar, y].style)")
        #expect(frame[bar, y].style == Style(fg: .accent))
    }
}
