import ServingEngine
import Testing
import XDSTestSupport

@testable import Console

/// The `?` help as drawn: its lines keep clear of the box's border.
@Suite struct HelpOverlayTests {
    static func frame(_ state: ConsoleState, theme: Theme = .builtinDark, width: Int = 80, height: Int = 24) -> CellBuffer {
        ConsoleScreen.render(state, SnapshotFixtures.superpod, theme: theme, width: width, height: height)
    }

    /// The help's Pod glyph legend ended in the box's last cell at 80 columns (the box is 78
    /// wide there), touching the border. Every help line on both pages keeps a blank before the
    /// right border at every width from 80, in colour, in mono and under LANG=C.
    @Test func helpLinesKeepABlankBeforeTheRightBorder() {
        for width in 80...84 {
            for theme in [Theme.builtinDark, .builtinMono] {
                for page in [0, 1] {
                    var state = primedState(width: width, height: 24)
                    state.showHelp = true
                    state.helpPage = page
                    let frames = [Self.frame(state, theme: theme, width: width), Self.frame(state, theme: theme, width: width).asciiOnly()]
                    for b in frames {
                        let rect = Overlays.centered(b, width: 80, height: Overlays.helpLines.count + 4)
                        for y in rect.y + 1..<rect.maxY - 1 {
                            #expect(b[rect.maxX - 2, y].character == " ",
                                    "page \(page + 1) at \(width) (\(theme.name)): '\(b.line(y))'")
                        }
                    }
                }
            }
        }
    }
}
