import ServingEngine
import Testing
import XDSTestSupport

@testable import Console

/// A multi-line paste (bracketed by the terminal) through the whole loop, drawn into the cell
/// grid: it only ever changes the prompt's text or the footer. Before, the first pasted line ran
/// as a command and every later character as a hotkey: `d` asked to drain, space paused, `r`
/// rebalanced, `t` changed the theme, and `f1y` injected a fault with no one confirming.
@Suite struct PasteRenderTests {
    static let script = "rate 30\rspeed 2\rrate 31\r d r t f1y \r"
    static var bracketed: String { BracketedPasteDecoderTests.start + script + BracketedPasteDecoderTests.end }

    /// The bytes as the terminal sends them, decoded and dispatched as the app does.
    static func feed(_ bytes: String, to state: ConsoleState, _ link: FakeEngineLink) -> ConsoleState {
        KeySequenceDecoder.messages(bytes).reduce(state) { ConsoleApp.dispatch($1, to: $0, link: link) }
    }

    static func footer(_ state: ConsoleState, width: Int = 80) -> String {
        ConsoleScreen.render(state, SnapshotFixtures.superpod, theme: .builtinDark, width: width, height: 24).lines[23]
    }

    /// Everything a stray hotkey could have changed, to compare before and after.
    static func untouched(_ a: ConsoleState, _ b: ConsoleState) -> Bool {
        a.view == b.view && a.paused == b.paused && a.speed == b.speed && a.themeIndex == b.themeIndex
            && a.confirmation == b.confirmation && a.faultMenu == b.faultMenu && a.showHelp == b.showHelp
            && a.selectedNPU == b.selectedNPU && a.quitting == b.quitting && a.preview == b.preview
    }

    @Test func intoThePromptOnlyTheFirstLineIsKeptAndNothingRuns() {
        let link = FakeEngineLink()
        let open = drive(primedState(), link, keys: [.char(":")])
        let after = Self.feed(Self.bracketed, to: open, link)
        #expect(link.sentCommands.isEmpty)
        #expect(after.prompt?.text == "rate 30")
        #expect(Self.untouched(open, after))
        let footer = Self.footer(after)
        #expect(footer.hasPrefix(":rate 30█  pasted 4 lines: kept the first only — run commands one at a time"), "\(footer)")
        // Enter is the operator's: it sends that one line.
        _ = drive(after, link, keys: [.enter])
        #expect(link.sentCommands == ["rate 30"])
    }

    /// Pasted into text already typed; tabs become blanks, control characters go, and a single
    /// line with its newline runs nothing and needs no note.
    @Test func aPasteAddsToTheTypedTextAsText() {
        let link = FakeEngineLink()
        var state = drive(primedState(), link, keys: [.char(":")] + typed("fault "))
        state = Self.feed(BracketedPasteDecoderTests.start + "npu\t12\u{07}\u{03}\r" + BracketedPasteDecoderTests.end, to: state, link)
        #expect(state.prompt?.text == "fault npu 12")
        #expect(state.status == nil && link.sentCommands.isEmpty && !state.quitting)
        #expect(Self.footer(state).hasPrefix(":fault npu 12█  Enter sends"))
    }

    /// With no prompt open a paste does nothing but say so, in every view.
    @Test(arguments: ConsoleView.allCases)
    func withNoPromptAPasteIsIgnored(view: ConsoleView) {
        let link = FakeEngineLink()
        let before = drive(primedState(), link, keys: [.char(Character(String(view.rawValue)))])
        let after = Self.feed(Self.bracketed, to: before, link)
        #expect(link.sentCommands.isEmpty)
        #expect(after.prompt == nil && Self.untouched(before, after))
        #expect(Self.footer(after).hasPrefix("✗ paste ignored — press : to type a command"), "\(Self.footer(after))")
        // Typed keys act as before once the paste is over.
        #expect(drive(after, link, keys: [.char("t")]).themeIndex == before.themeIndex + 1)
    }

    /// A y/n question is not answered (nor cancelled) by a paste holding `y`; the fault menu
    /// takes no pasted choice; y typed afterwards still confirms.
    @Test func aPasteNeverAnswersAQuestionOrAMenu() {
        let link = FakeEngineLink()
        let asking = drive(primedState(), link, keys: [.char("d")])
        #expect(asking.confirmation?.command == "drain node 0")
        let after = Self.feed(BracketedPasteDecoderTests.start + "y\ry\r" + BracketedPasteDecoderTests.end, to: asking, link)
        #expect(link.sentCommands.isEmpty && Self.untouched(asking, after))
        #expect(Self.footer(after).hasPrefix("drain node 0? y/n  paste ignored — answer with y or n"), "\(Self.footer(after))")
        _ = drive(after, link, keys: [.char("y")])
        #expect(link.sentCommands == ["drain node 0"])

        let menu = drive(primedState(), link, keys: [.char("f")])
        let pasted = Self.feed(BracketedPasteDecoderTests.start + "2\ry" + BracketedPasteDecoderTests.end, to: menu, link)
        #expect(pasted.faultMenu == menu.faultMenu && pasted.confirmation == nil)
        #expect(link.sentCommands == ["drain node 0"])
    }

    /// The `/` filter takes the first line too, and filters with it live.
    @Test func aPasteIntoTheFilterFilters() {
        let link = FakeEngineLink()
        var state = drive(primedState(), link, keys: [.char("6"), .char("/")])
        state = Self.feed(BracketedPasteDecoderTests.start + "drain\rd" + BracketedPasteDecoderTests.end, to: state, link)
        #expect(state.eventFilter == "drain" && state.prompt?.text == "drain")
        #expect(state.status?.text == "pasted 2 lines: kept the first only")
        #expect(link.sentCommands.isEmpty)
    }

    /// The help's command page says what a paste does.
    @Test func helpExplainsPaste() {
        var help = primedState()
        help.showHelp = true
        help.helpPage = 1
        let page = ConsoleScreen.render(help, SnapshotFixtures.superpod, theme: .builtinDark, width: 80, height: 24).lines
        #expect(page.contains { $0.contains("paste") && $0.contains("first line to the prompt, runs nothing") },
                "\(page.joined(separator: "\n"))")
    }
}

extension PasteRenderTests {
    /// Beside a longer typed line the paste's note ran off the screen's edge, cut mid-word
    /// with no sign: ":rate 5junkjunk█  pasted 2 lines: kept the first only — run commands one
    /// at a ti" at 80 columns. A note that does not fit beside the prompt goes whole on the row
    /// above it; the prompt line keeps the typed text and the cursor.
    @Test func aNoteTooLongBesideThePromptIsShownWhole() {
        let link = FakeEngineLink()
        let open = drive(primedState(), link, keys: [.char(":")])
        let paste = BracketedPasteDecoderTests.start + "rate 5junkjunk\rrate 9\r" + BracketedPasteDecoderTests.end
        let after = Self.feed(paste, to: open, link)
        let lines = ConsoleScreen.render(after, SnapshotFixtures.superpod, theme: .builtinDark, width: 80, height: 24).lines
        #expect(lines[23].hasPrefix(":rate 5junkjunk█"), "\(lines[23])")
        let bottom = lines[20...23].joined(separator: "\n")
        #expect(bottom.contains("pasted 2 lines: kept the first only — run commands one at a time"), "\(bottom)")
        #expect(lines.allSatisfy { $0.count <= 80 })
        #expect(link.sentCommands.isEmpty)
    }
}
