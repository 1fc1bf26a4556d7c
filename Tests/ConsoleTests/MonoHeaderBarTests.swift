import ServingEngine
import Testing
import XDSTestSupport

@testable import Console

/// Without colour the header bar is reverse video, but its SLO figures (TTFT99, TPOT99) and a
/// faults or drains count in a warning state are drawn on the bar's background role, which the
/// monochrome resolution ignored: they lost the reverse and cut holes in the bar, a good TPOT99
/// as plain text, as if it were no part of the header. They now keep the bar's reverse, and
/// their state is the attributes on top (bad: bold, underlined).
@Suite struct MonoHeaderBarTests {
    /// The theme loaded from themes/mono.toml, and the built-in one `NO_COLOR` falls back on.
    static func themes() throws -> [Theme] {
        let file = try #require(ThemeCatalog.load(directory: ThemeCatalog.findDirectory()).themes.first { $0.name == "mono" })
        return [file, .builtinMono]
    }

    @Test func theSecondHeaderLineIsOneReversedBar() throws {
        var s = SnapshotFixtures.superpod
        s.drainedNodes = [5]
        for theme in try Self.themes() {
            for width in [80, 120, 200] {
                let state = ConsoleUpdate.update(ConsoleState(width: width, height: 40), .tick(s)).0
                let b = ConsoleScreen.render(state, s, theme: theme, width: width, height: 40)
                let line = b.line(1)
                // The bar runs to the end of its last figure, "SLO 100%".
                let end = try #require(line.range(of: "SLO ")).upperBound
                let last = line.distance(from: line.startIndex, to: end) + 3
                for x in 0..<last {
                    let r = theme.resolve(b[x, 1].style, depth: .monochrome)
                    #expect(r.attributes.reverse, "\(theme.name) \(width): column \(x) '\(b[x, 1].character)' of '\(line)'")
                    if !r.attributes.reverse { break }
                }
            }
        }
    }

    @Test func aBadFigureOnTheBarStaysApartByItsAttributes() throws {
        for theme in try Self.themes() {
            let bad = theme.resolve(Style(fg: .bad, bg: .header, bold: true), depth: .monochrome).attributes
            let good = theme.resolve(Style(fg: .good, bg: .header), depth: .monochrome).attributes
            #expect(bad.reverse && bad.bold && bad.underline, "\(theme.name)")
            #expect(good.reverse && !good.underline, "\(theme.name)")
            // Off the bar nothing changes: a bad figure elsewhere is not reversed.
            #expect(!theme.resolve(Style.bad, depth: .monochrome).attributes.reverse)
        }
    }
}
