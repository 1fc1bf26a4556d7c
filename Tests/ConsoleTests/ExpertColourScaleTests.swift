import ServingEngine
import Testing
import XDSTestSupport

@testable import Console

/// The Experts view drew its per-die strip in the heat ramp on a linear scale full at 4×, beside
/// the heat map that draws the same ramp on a log scale up to its hottest expert (30× in the
/// demo): a 1× die was navy, a 1× expert teal, one colour meaning two loads side by side. The
/// heat ramp now belongs to the heat map (and its scale line) alone; the strip's colour is the
/// die's state against the imbalance thresholds, keyed on its caption.
@Suite struct ExpertColourScaleTests {
    static func render(_ s: Snapshot, width: Int = 200, height: Int = 60, theme: Theme = .builtinDark) -> CellBuffer {
        var state = ConsoleState(width: width, height: height)
        state = ConsoleUpdate.update(state, .tick(s)).0
        state.view = .experts
        return ConsoleScreen.render(state, s, theme: theme, width: width, height: height)
    }

    static func isHeat(_ role: ColorRole?) -> Bool {
        if case .heat = role { return true }
        return false
    }

    /// The fixture with two dies pushed past the thresholds: die 5 at 4.5× (warn), die 7 at 7× (alarm).
    static let hotDies: Snapshot = {
        var s = SnapshotFixtures.superpod
        s.experts.dieLoad[5] = 4.5
        s.experts.dieLoad[7] = 7
        return s
    }()

    @Test func theHeatRampAppearsOnlyInTheHeatMapAndItsScale() throws {
        let b = Self.render(Self.hotDies)
        let lines = b.lines
        let dieTop = try #require(lines.firstIndex { $0.contains(" Die load ") })
        for y in dieTop..<b.height {
            for x in 0..<b.width where Self.isHeat(b[x, y].style.fg) || Self.isHeat(b[x, y].style.bg) {
                Issue.record("heat colour at \(x),\(y) in the Die load panel: '\(lines[y])'")
                return
            }
        }
    }

    @Test func theStripColoursEachDieByItsStateAndKeysThem() throws {
        let s = Self.hotDies
        let b = Self.render(s)
        let lines = b.lines
        let caption = try #require(lines.firstIndex { $0.contains("every die") })
        // The key: one swatch per state, in the state's colour, with its threshold.
        #expect(lines[caption].contains("■ <4× ■ ≥4× warn ■ ≥6× alarm"), "\(lines[caption])")
        let swatches = (0..<b.width).filter { b[$0, caption].character == "■" }.map { b[$0, caption].style.fg }
        #expect(swatches == [.good, .warn, .bad])
        // The caption no longer says colour is load: height is.
        #expect(lines[caption].contains("height = load × mean, full at the warn level 4×"))
        #expect(!lines[caption].contains("colour and height"))
        // The strip's first row starts one column inside the panel, die 0 first.
        let x0 = try #require(Array(lines[caption]).firstIndex { $0 == "e" })
        for (die, load) in s.experts.dieLoad.prefix(12).enumerated() {
            let style = b[x0 + die, caption + 1].style.fg
            let want: ColorRole = load >= 6 ? .bad : load >= 4 ? .warn : .good
            #expect(style == want, "die \(die) at \(load)×: \(style)")
        }
    }

    /// Without colour the strip and its key differ by attribute, and the height still shows load.
    @Test func monoStillShowsHeights() throws {
        let b = Self.render(Self.hotDies, theme: .builtinMono)
        let lines = b.lines
        let caption = try #require(lines.firstIndex { $0.contains("every die") })
        let strip = Array(lines[caption + 1])
        let x0 = try #require(Array(lines[caption]).firstIndex { $0 == "e" })
        // Dies 5 (4.5×) and 7 (7×) are over the warn level: full blocks.
        #expect(strip[x0 + 5] == "█" && strip[x0 + 7] == "█", "\(String(strip.prefix(20)))")
        #expect(strip[x0 + 0] != "█")
    }
}
