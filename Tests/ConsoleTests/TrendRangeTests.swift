import ServingEngine
import Testing
import XDSTestSupport

@testable import Console

/// A trend line's range is its scale: where min and max round to the same figure, it shows
/// them whole. At --rate 400 "running 30.7k … 30.7k…30.7k" stood beside a line that rose and
/// fell over its full height, a scale of nothing.
@Suite struct TrendRangeTests {
    @Test(arguments: [(80, 24), (120, 40), (200, 60)])
    func aRangeThatRoundsToOneFigureIsShownWhole(size: (Int, Int)) throws {
        var s = SnapshotFixtures.superpod
        s.series.running = (0..<200).map { $0 % 2 == 0 ? 30_650 : 30_739 }
        s.requests.running = 30_700
        var state = ConsoleUpdate.update(ConsoleState(width: size.0, height: size.1), .tick(s)).0
        state.view = .latency
        let rendered = ConsoleScreen.render(state, s, theme: .builtinDark, width: size.0, height: size.1).lines
        let row = try #require(rendered.first { $0.contains("│ running ") }, "\(rendered.joined(separator: "\n"))")
        #expect(!row.contains("30.7k…30.7k"), "\(row)")
        #expect(row.contains("30650…30739"), "\(row)")
        // A range that reads as two figures keeps the short form.
        let tok = try #require(rendered.first { $0.contains("│ tok/s ") })
        #expect(tok.contains("k…") && tok.contains("k "), "\(tok)")
    }
}
