import ServingEngine
import Testing
import XDSTestSupport

@testable import Console

/// In Requests, `/dp` then a click on the "6 Events" tab: the view changed, the prompt
/// "/dp█ filters as you type" stayed under Events, and the next letters went on filtering the
/// Requests list, which was no longer on screen.
@Suite struct TabClickFilterTests {
    static func click(_ view: ConsoleView) -> ConsoleMessage {
        let columns = ScreenLayout.tabRanges.first { $0.view == view }!.columns
        return .mouse(.click(x: columns.lowerBound + 1, y: ScreenLayout.tabRow))
    }

    @Test func aClickOnAnotherTabKeepsTheFilterAndClosesItsPrompt() {
        var state = primedState(width: 120, height: 40)
        state.view = .requests
        state = drive(state, FakeEngineLink(), keys: typed("/dp"))
        #expect(state.prompt?.purpose == .requestFilter)
        state = ConsoleUpdate.update(state, Self.click(.events)).0
        #expect(state.view == .events)
        #expect(state.prompt == nil)
        #expect(state.requestFilter == "dp")
        // The next letters are not typed into a prompt nobody sees (`x` is no hotkey).
        state = drive(state, FakeEngineLink(), keys: typed("x"))
        #expect(state.requestFilter == "dp" && state.eventFilter.isEmpty)
    }

    /// A `:` command prompt is not a view's: it stays open across a tab click.
    @Test func aCommandPromptStaysOpenAcrossATabClick() {
        var state = primedState(width: 120, height: 40)
        state = drive(state, FakeEngineLink(), keys: typed(":rate"))
        state = ConsoleUpdate.update(state, Self.click(.latency)).0
        #expect(state.view == .latency)
        #expect(state.prompt?.purpose == .command && state.prompt?.text == "rate")
    }
}
