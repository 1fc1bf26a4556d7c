import ServingEngine
import Testing
import XDSTestSupport

@testable import Console

/// Issue 13 item 4: `/` filters lists live, letters typed after `/` never act, destructive
/// keys wait for `y`, `Esc` always gets out, and the `:` line does not ask.
@Suite struct KeySafetyTests {
    /// Every letter and digit that is a hotkey somewhere, typed after `/`.
    static let hotkeyText = "dp240 fqrtu 1 2 3 4 5 6 s hjkl ? :+-"

    @Test(arguments: ConsoleView.allCases)
    func slashThenLettersNeverActs(view: ConsoleView) {
        let link = FakeEngineLink()
        var start = primedState()
        start.view = view
        start.selectedNPU = 9
        var state = drive(start, link, keys: [.char("/")] + typed(Self.hotkeyText))
        #expect(state.prompt != nil)
        #expect(state.view == view)
        #expect(!state.quitting && !state.showHelp && state.faultMenu == nil && state.confirmation == nil)
        #expect(state.selectedNPU == 9 && state.themeIndex == 0 && state.requestSort == .age)
        // Enter and Esc both leave the prompt without sending anything.
        for closing in [Key.enter, .escape] {
            let closed = drive(state, link, keys: [closing])
            #expect(closed.prompt == nil && closed.view == view && !closed.quitting)
        }
        state = drive(state, link, keys: [.enter, .char("/"), .char("d"), .char("q"), .escape])
        #expect(link.sentCommands.isEmpty)
        #expect(state.prompt == nil && !state.quitting)
    }

    /// Below 80×24 the screen shows only the size needed: no question, fault menu or reply can be
    /// seen, so keys must not act. At 40×12, `d y` drained node 0 and `f 3 y` failed it, unseen.
    /// A question left open when the terminal shrank is not answered by a blind `y` either.
    @Test(arguments: [(40, 12), (79, 24), (80, 23), (1, 1)])
    func keysDoNothingWhileTheTerminalIsTooSmall(size: (Int, Int)) {
        let link = FakeEngineLink()
        var state = ConsoleUpdate.update(primedState(), .resize(width: size.0, height: size.1)).0
        state = drive(state, link, keys: typed("dyf3y2r :drain node 4") + [.enter])
        state = ConsoleApp.dispatch(.paste("drain node 5\n"), to: state, link: link)
        state = ConsoleApp.dispatch(.mouse(.click(x: 10, y: 2)), to: state, link: link)
        #expect(link.sentCommands.isEmpty, "\(link.sentCommands) at \(size)")
        #expect(state.view == .pod && state.confirmation == nil && state.faultMenu == nil && state.prompt == nil)
        let text = ConsoleScreen.render(state, SnapshotFixtures.superpod, theme: .builtinDark, width: size.0, height: size.1)
            .lines.joined(separator: " ")
        if size.0 >= 40 { #expect(text.contains("q quits"), "\(text)") }
        // A question opened at full size and the terminal then shrunk: `y` does not answer it.
        var asked = drive(primedState(), link, keys: [.char("d")])
        #expect(asked.confirmation != nil)
        asked = ConsoleUpdate.update(asked, .resize(width: size.0, height: size.1)).0
        asked = drive(asked, link, keys: [.char("y")])
        #expect(link.sentCommands.isEmpty)
        // Back at a usable size the question is still there to answer; q quits while small.
        asked = ConsoleUpdate.update(asked, .resize(width: 80, height: 24)).0
        #expect(asked.confirmation != nil)
        let small = ConsoleUpdate.update(primedState(), .resize(width: size.0, height: size.1)).0
        #expect(drive(small, link, keys: [.char("q")]).quitting)
    }

    /// A prompt open when the terminal shrank: q is not taken there (it may be a typed letter),
    /// and the message said "q quits" all the same. It names Ctrl-C, which does quit.
    @Test func theTooSmallMessageNamesAKeyThatQuitsWithAPromptOpen() {
        let link = FakeEngineLink()
        var state = drive(primedState(), link, keys: typed(":drain"))
        #expect(state.prompt != nil)
        state = ConsoleUpdate.update(state, .resize(width: 61, height: 19)).0
        let text = ConsoleScreen.render(state, SnapshotFixtures.superpod, theme: .builtinDark, width: 61, height: 19)
            .lines.joined(separator: " ")
        #expect(text.contains("Ctrl-C quits") && !text.contains("; q quits"), "\(text)")
        #expect(!drive(state, link, keys: [.char("q")]).quitting)
        #expect(drive(state, link, keys: [Key.controlC]).quitting)
        #expect(link.sentCommands.isEmpty)
    }

    @Test func requestFilterFollowsTheTextAsItIsTyped() throws {
        let snapshot = SnapshotFixtures.superpod
        let target = try #require(snapshot.inFlight.first)
        let link = FakeEngineLink()
        var state = primedState(width: 120, height: 40)
        state.view = .requests
        state = drive(state, link, keys: [.char("/")] + typed("#\(target.id)"))
        // Live: no Enter yet, and the list already shows only the matches.
        #expect(state.requestFilter == "#\(target.id)")
        let matching = snapshot.inFlight.filter { RequestsView.matches($0, state.requestFilter) }
        #expect(matching.contains { $0.id == target.id })
        #expect(matching.count < snapshot.inFlight.count)
        let screen = ConsoleScreen.render(state, snapshot, theme: .builtinDark, width: 120, height: 40)
            .lines.joined(separator: "\n")
        #expect(screen.contains("snapshot lists \(matching.count))"))
        #expect(screen.contains("filter \"#\(target.id)\""))
        let other = try #require(snapshot.inFlight.first { !RequestsView.matches($0, state.requestFilter) })
        #expect(!screen.contains("#\(other.id) "))
        // Enter keeps the filter, Esc in the view clears it.
        state = drive(state, link, keys: [.enter])
        #expect(state.prompt == nil && state.requestFilter == "#\(target.id)")
        state = drive(state, link, keys: [.escape])
        #expect(state.requestFilter == "")
        // Esc inside the prompt clears as well.
        state = drive(state, link, keys: [.char("/")] + typed("decode") + [.escape])
        #expect(state.prompt == nil && state.requestFilter == "")
    }

    @Test func expertHotListAndEventsFilterLive() throws {
        let snapshot = SnapshotFixtures.superpod
        let hot = try #require(snapshot.experts.hottest.first)
        let link = FakeEngineLink()
        var state = primedState(width: 120, height: 40)
        state.view = .experts
        let needle = "L\(Format.pad2(hot.layer)) E\(hot.expert)"
        state = drive(state, link, keys: [.char("/")] + typed(needle))
        #expect(state.expertFilter == needle)
        let screen = ConsoleScreen.render(state, snapshot, theme: .builtinDark, width: 120, height: 40).lines
        let hotRows = screen.filter { $0.contains(needle) }
        #expect(!hotRows.isEmpty)
        let others = snapshot.experts.hottest.filter {
            !ExpertsView.matches(layer: $0.layer, expert: $0.expert, needle)
        }
        for other in others {
            #expect(!screen.contains { $0.contains("L\(Format.pad2(other.layer)) E\(other.expert) ") })
        }
        // Events filter without Enter.
        state = drive(state, link, keys: [.escape, .char("6"), .char("/")] + typed("drain"))
        #expect(state.eventFilter == "drain")
        #expect(link.sentCommands.isEmpty)
    }

    @Test func drainAsksNamingTheNodeAndOnlyYConfirms() {
        let link = FakeEngineLink()
        let start = drive(primedState(), link, keys: [.char("j"), .char("j"), .char("j")])
        for cancel in [Key.char("n"), .escape, .char("d"), .enter, .char("q")] {
            let state = drive(start, link, keys: [.char("d"), cancel])
            #expect(link.sentCommands.isEmpty)
            #expect(state.confirmation == nil && !state.quitting)
            #expect(state.status?.text == "cancelled: drain node 3")
        }
        let asking = drive(start, link, keys: [.char("d")])
        let footer = ConsoleScreen.render(
            asking, link.latestSnapshot(), theme: .builtinDark, width: 80, height: 24
        ).lines[23]
        #expect(footer.hasPrefix("drain node 3? y/n"))
        _ = drive(asking, link, keys: [.char("y")])
        #expect(link.sentCommands == ["drain node 3"])
    }

    @Test func faultMenuAsksBeforeInjectingAndEscAlwaysLeaves() {
        let link = FakeEngineLink()
        var state = drive(primedState(), link, keys: [.char("f"), .char("2")])
        #expect(state.confirmation?.question == "fault npu 0?")
        state = drive(state, link, keys: [.escape])
        #expect(link.sentCommands.isEmpty && state.confirmation == nil)
        // Esc leaves each overlay and prompt.
        for opener in [[Key.char("f")], [.char("?")], [.char(":")], [.char("/")], [.char("d")]] {
            let closed = drive(primedState(), link, keys: opener + [.escape])
            #expect(closed.prompt == nil && closed.faultMenu == nil && !closed.showHelp)
            #expect(closed.confirmation == nil)
        }
        #expect(link.sentCommands.isEmpty)
        state = drive(state, link, keys: [.char("f"), .char("2"), .char("y")])
        #expect(link.sentCommands == ["fault npu 0"])
    }

    @Test func commandLineAndTheYesSettingSkipTheQuestion() {
        let link = FakeEngineLink()
        _ = drive(primedState(), link, keys: [.char(":")] + typed("drain node 5") + [.enter])
        #expect(link.sentCommands == ["drain node 5"])
        var yes = primedState()
        yes.confirmDestructive = false
        let (_, effects) = ConsoleUpdate.update(yes, .key(.char("d")))
        #expect(effects == [.send(commandLine: "drain node 0")])
    }
}
