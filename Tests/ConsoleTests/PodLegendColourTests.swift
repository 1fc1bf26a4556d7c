import ServingEngine
import Testing
import XDSTestSupport

@testable import Console

/// A colour means a state: the Pod grid draws a dead NPU's "X" red and a straggler's "↓" orange,
/// so its legend keys those glyphs in the same colours (it drew the whole legend grey).
@Suite struct PodLegendColourTests {
    @Test(arguments: [(80, 24), (120, 40), (200, 60)])
    func stateGlyphsInTheLegendTakeTheGridsColours(size: (Int, Int)) throws {
        let (width, height) = size
        let b = StateColourTests.pod(SnapshotFixtures.superpod, width: width, height: height)
        let layout = PodLayout(width: width, height: height)
        let rows = [layout.grid.maxY - 3, layout.grid.maxY - 2]
        var seen: Set<Character> = []
        for y in rows {
            for x in layout.grid.inner.x..<layout.grid.inner.maxX {
                let cell = b[x, y]
                let state = [NPUState.dead, .slow, .hbm, .link, .drained, .draining].first { $0.glyph == cell.character }
                guard let state else { continue }
                seen.insert(cell.character)
                #expect(cell.style == state.style, "\(width)×\(height): '\(cell.character)' drawn \(cell.style), the grid draws it \(state.style)")
            }
        }
        #expect(seen == ["X", "↓", "#", "≠", "⊘", "~"], "\(width)×\(height): legend glyphs found \(seen)")
    }
}
