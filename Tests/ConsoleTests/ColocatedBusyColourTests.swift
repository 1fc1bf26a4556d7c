import PodModel
import ServingEngine
import Testing
import XDSTestSupport

@testable import Console

/// A colocated replica (a GPU of `colocated:2:llama-2-7b:nvidia-a100:tp1`) steps whenever any
/// request is in flight, as a decode die does: at 1 request/s its GPU is 100 % busy with room for
/// many more requests. Its detail drew "util 100%" in the alarm red (beside "node 0 … util 13%"),
/// the grid drew the GPU red "crit", and the node table's busy bar too. As on the superpod's
/// decode dies, a colocated GPU is now judged by its KV use: the busy share is drawn neutral.
@Suite struct ColocatedBusyColourTests {
    static let snapshot = try! SnapshotFixtures.live("colocated:2:llama-2-7b:nvidia-a100:tp1", rate: 2, until: 30)

    static func render(_ s: Snapshot, npu: Int, width: Int = 200, height: Int = 60) -> CellBuffer {
        var state = ConsoleUpdate.update(ConsoleState(width: width, height: height), .tick(s)).0
        state.selectedNPU = npu
        return ConsoleScreen.render(state, s, theme: .builtinDark, width: width, height: height)
    }

    static func barCells(_ b: CellBuffer, row: Int) -> [Cell] {
        (0..<b.width).map { b[$0, row] }.filter { "█▏▎▍▌▋▊▉".contains($0.character) }
    }

    @Test func aBusyGPUIsNotRed() throws {
        let s = Self.snapshot
        let busy = try #require(s.npus.first { $0.role == .colocated && $0.utilization >= 0.9 }, "no busy GPU")
        #expect(busy.kvUsage < 0.7, "the fixture's KV is not what would make it red")
        let b = Self.render(s, npu: busy.id)
        let row = try #require(b.lines.firstIndex { $0.contains("│ util ") }, "\(b.text)")
        let bar = Self.barCells(b, row: row)
        #expect(!bar.isEmpty && bar.allSatisfy { $0.style.fg == .accent }, "\(Set(bar.map(\.style)))")
        // The grid cell is coloured by its state: busy with room, not critical.
        let cell = OtherDeploymentRenderTests.gridCell(b, npu: busy.id, width: 200, height: 60)
        #expect(cell.style != Style(fg: .bad, bold: true), "\(cell)")
        // The legend says what the colour measures.
        #expect(b.text.contains("colocated KV"), "\(b.text)")
        // The KV meter carries the load colours.
        let kvRow = try #require(b.lines.firstIndex { $0.contains("│ KV ") }, "\(b.text)")
        #expect(Self.barCells(b, row: kvRow).allSatisfy { $0.style.fg != .accent })
    }
}
