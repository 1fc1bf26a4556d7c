import Foundation
import ServingEngine
import Testing
import XDSTestSupport

@testable import Console

/// In raw mode Ctrl-Z is a key, not a SIGTSTP, and the console dropped it without a sign:
/// typed in `xds console`, nothing happened, where every program run from a shell stops and
/// `fg` brings it back. It now asks the app loop to suspend (the SIGTSTP path), from any view,
/// box, prompt or size, and changes nothing else.
@Suite struct SuspendKeyTests {
    @Test func ctrlZAsksToSuspendFromAnywhere() {
        var states: [ConsoleState] = []
        var plain = primedState()
        states.append(plain)
        plain.prompt = PromptState(purpose: .command, text: "drain node 3")
        states.append(plain)
        var help = primedState()
        help.showHelp = true
        states.append(help)
        states.append(primedState(width: 20, height: 5))
        for state in states {
            let (next, effects) = ConsoleUpdate.update(state, .key(Key.controlZ))
            #expect(effects == [.suspend], "\(effects)")
            // Back from `fg`, the screen is as it was: an open prompt keeps its text, help stays.
            #expect(next.prompt == state.prompt && next.showHelp == state.showHelp && !next.quitting)
        }
        // Not a command: the engine is sent nothing.
        let link = FakeEngineLink()
        _ = ConsoleApp.dispatch(.key(Key.controlZ), to: primedState(), link: link)
        #expect(link.sentCommands.isEmpty, "\(link.sentCommands)")
    }

    /// Started with no job-control shell (straight by tmux, a script's setsid), a stop would last
    /// for ever: nothing would send SIGCONT. Ctrl-Z then says so and suspends nothing.
    @Test func withoutJobControlCtrlZSaysWhyAndStaysUp() {
        var state = primedState()
        state.canSuspend = false
        state.prompt = PromptState(purpose: .command, text: "drain node 3")
        let (next, effects) = ConsoleUpdate.update(state, .key(Key.controlZ))
        #expect(effects.isEmpty, "\(effects)")
        #expect(next.status?.text.contains("not suspended") == true, "\(String(describing: next.status))")
        #expect(next.prompt == state.prompt && !next.quitting)
    }

    /// The parent read from /proc is the kernel's.
    @Test func theParentFromProcIsTheKernels() {
        #expect(JobControl.parentOf(getpid()) == getppid())
        #expect(JobControl.parentOf(-5) == 0)
    }

    /// The help names the key.
    @Test func helpNamesCtrlZ() {
        var state = primedState()
        state.showHelp = true
        let text = ConsoleScreen.render(state, SnapshotFixtures.superpod, theme: .builtinDark, width: 80, height: 24)
            .lines.joined(separator: "\n")
        #expect(text.contains("Ctrl-Z suspend (fg resumes)"), "\(text)")
    }

    /// Run straight by tmux (no job-control shell) the help still said "Ctrl-Z suspend (fg
    /// resumes)", and the key then only printed "not suspended". There the help says what the
    /// key does: it does not suspend, for want of job control; with a shell it says as before.
    @Test func withoutJobControlTheHelpSaysCtrlZDoesNotSuspend() {
        for width in [80, 120] {
            var state = primedState(width: width, height: 24)
            state.showHelp = true
            state.canSuspend = false
            let text = ConsoleScreen.render(state, SnapshotFixtures.superpod, theme: .builtinDark, width: width, height: 24)
                .lines.joined(separator: "\n")
            #expect(!text.contains("suspend (fg resumes)"), "\(text)")
            #expect(text.contains("│ q Ctrl-C  quit   Ctrl-Z does not suspend (no job control)  ?  this help"), "\(text)")
        }
    }
}
