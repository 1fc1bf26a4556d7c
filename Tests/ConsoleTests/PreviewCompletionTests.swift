import Testing
import XDSTestSupport

@testable import Console

/// Tab after a whole command under `preview` said "nothing follows 'preview drain node 20'",
/// though `for DURATION` may follow (interfaces.md: `preview COMMAND [for DURATION]`), and
/// `preview ` offered `speed`, `pause`, `resume`, `preview` and `clear`, which a preview refuses.
@Suite struct PreviewCompletionTests {
    @Test func forFollowsAWholeCommand() {
        #expect(PromptEditing.complete("preview drain node 20 ").0 == "preview drain node 20 for ")
        #expect(PromptEditing.complete("preview rate 30 f").0 == "preview rate 30 for ")
        #expect(PromptEditing.complete("preview rebalance ").0 == "preview rebalance for ")
        #expect(PromptEditing.complete("preview drain node 20 for ").1 == "next: <DURATION>")
        // An optional word may come first.
        #expect(PromptEditing.complete("preview fault link 3-9 ").1 == "degrade for")
        // Not before the command is whole, and not after a word whose value is due.
        #expect(PromptEditing.complete("preview drain node ").1 == "next: <N>")
        #expect(PromptEditing.complete("preview fault link 3-9 degrade ").1 == "nothing follows 'preview fault link 3-9 degrade'")
        #expect(PromptEditing.complete("preview drain node 20 for 10m ").1 == "nothing follows 'preview drain node 20 for 10m'")
    }

    @Test func onlyWhatAPreviewCanRunIsOffered() throws {
        let offered = try #require(PromptEditing.complete("preview ").1).split(separator: " ").map(String.init)
        for refused in ["speed", "pause", "resume", "preview", "clear"] { #expect(!offered.contains(refused), "\(offered)") }
        for kept in ["drain", "fault", "rate", "scale", "rebalance"] { #expect(offered.contains(kept), "\(offered)") }
        #expect(PromptEditing.complete("preview sp").0 == "preview sp")
        #expect(PromptEditing.complete("preview sp").1 == "no completion for 'sp'")
    }
}

/// The engine takes keywords in any case ("Drain Node 3" drains node 3), but Tab after
/// "Drain " said "nothing follows 'Drain'" and "Dr" had "no completion": both false.
@Suite struct CompletionCaseTests {
    @Test func keywordsCompleteInAnyCase() {
        #expect(PromptEditing.complete("Drain ").0 == "Drain node ")
        #expect(PromptEditing.complete("DRAIN NODE ").1 == "next: <N>")
        #expect(PromptEditing.complete("Dr").0 == "drain ")
        #expect(PromptEditing.complete("Fault St").0 == "Fault straggler ")
        #expect(PromptEditing.complete("Preview Drain Node 20 ").0 == "Preview Drain Node 20 for ")
    }
}

/// `clear faults` is the console's own command; "Clear Faults" or "clear  faults" went to the
/// engine (which reads its commands in any case and spacing) and came back "unknown command".
@Suite struct ClearFaultsSpellingTests {
    @Test(arguments: ["Clear Faults", "clear  faults", "CLEAR faults"])
    func clearFaultsInAnySpellingStaysInTheConsole(line: String) {
        let link = FakeEngineLink()
        let state = drive(primedState(), link, keys: [.char(":")] + typed(line) + [.enter])
        #expect(link.sentCommands.isEmpty, "\(link.sentCommands)")
        #expect(state.status?.text.hasPrefix("cleared 0 healed faults") == true, "\(String(describing: state.status))")
    }
}
