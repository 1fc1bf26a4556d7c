import ServingEngine
import Testing
import XDSTestSupport

@testable import Console

/// The Instances table's KV figure is drawn in the load band's colour. Below 5 % (the idle
/// band) it was drawn white, the text colour, and at 5 % green: the legend's idle swatch is
/// grey, so white keyed no state. The figure now takes the band's own colour (``NPULoad/style(_:)``),
/// the legend's and the KV view's.
@Suite struct InstancesKVColourTests {
    @Test func eachFigureHasItsBandsColour() throws {
        var s = SnapshotFixtures.superpod
        let shares = [0.04, 0.05, 0.75, 0.95]
        for (i, share) in shares.enumerated() {
            s.instances[i].kvUsage = share
            s.instances[i].kvBlocksTotal = nil
        }
        var state = ConsoleUpdate.update(ConsoleState(width: 120, height: 40), .tick(s)).0
        state.view = .pod
        let b = ConsoleScreen.render(state, s, theme: .builtinDark, width: 120, height: 40)
        for (i, share) in shares.enumerated() {
            let name = s.instances[i].name
            let y = try #require(b.lines.firstIndex { $0.hasPrefix("│ \(name) ") }, "\(b.lines.joined(separator: "\n"))")
            // The row's one percentage: its first digit.
            let row = Array(b.lines[y])
            let end = try #require(row.firstIndex(of: "%"), "\(b.lines[y])")
            let x = (row[..<end].lastIndex(of: " ") ?? 0) + 1
            #expect(b[x, y].style == NPULoad.style(NPULoad.band(share)), "\(name) \(share): \(b[x, y].style) in \(b.lines[y])")
        }
        // The legend's idle swatch is that colour.
        #expect(NPULoad.style(.idle) == .dim)
    }
}
