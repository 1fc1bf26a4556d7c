import ServingEngine
import Testing
import XDSTestSupport

@testable import Console

/// A storm of space presses (200 from tmux send-keys) went to the engine as 200 pause/resume
/// round trips before the next frame (1.2 s in a debug build). Within one burst of input only the
/// last of a run of pause/resume is sent; every other command keeps its place in the order typed.
@Suite struct PauseFoldTests {
    static func burst(_ state: ConsoleState, _ link: FakeEngineLink, _ keys: [Key], limit: Int = 1_000) -> ConsoleState {
        var rest = keys.dropFirst().map { ConsoleMessage.key($0) }[...]
        return ConsoleApp.dispatchBurst(.key(keys[0]), to: state, link: link, limit: limit) { rest.popFirst() }
    }

    @Test(arguments: [(200, "resume", false), (201, "pause", true), (1, "pause", true), (2, "resume", false)])
    func aRunOfSpacesSendsItsLastToggleOnly(presses: Int, last: String, paused: Bool) {
        let link = FakeEngineLink()
        let state = Self.burst(primedState(), link, Array(repeating: .char(" "), count: presses))
        #expect(link.sentCommands == [last])
        #expect(state.paused == paused)
        #expect(state.status?.text.isEmpty == false)  // the engine's answer is shown
    }

    /// Another command between the toggles sends the held one first: the order is as typed.
    @Test func otherCommandsKeepTheirPlace() {
        let link = FakeEngineLink()
        let keys: [Key] = [.char(" ")] + [.char(":")] + typed("rate 30") + [.enter] + Array(repeating: .char(" "), count: 3)
            + [.char("d"), .char("y"), .char(" "), .char("q")]
        let state = Self.burst(primedState(), link, keys)
        #expect(link.sentCommands == ["pause", "rate 30", "resume", "drain node 0", "pause"])
        #expect(state.quitting)
    }

    /// In a prompt a space is text; typed one message per loop turn (no burst) every toggle is
    /// sent as before.
    @Test func spacesInAPromptAndKeysOneByOneAreUnchanged() {
        let link = FakeEngineLink()
        _ = Self.burst(primedState(), link, [.char(":")] + typed("speed 2") + [.enter])
        #expect(link.sentCommands == ["speed 2"])
        let one = FakeEngineLink()
        _ = drive(primedState(), one, keys: Array(repeating: .char(" "), count: 4))
        #expect(one.sentCommands == ["pause", "resume", "pause", "resume"])
    }

    /// The burst is bounded like the loop's (64 keys before a frame): 200 presses in bursts of
    /// 65 send one command per burst, and the engine ends where the keys say.
    @Test func boundedBurstsSendOnePerBurst() {
        let link = FakeEngineLink()
        var keys = Array(repeating: Key.char(" "), count: 200)[...]
        var state = primedState()
        while let first = keys.popFirst() {
            state = ConsoleApp.dispatchBurst(.key(first), to: state, link: link, limit: 64) {
                keys.popFirst().map { .key($0) }
            }
        }
        #expect(link.sentCommands == ["pause", "resume", "pause", "resume"])  // 65, 65, 65, 5 presses
        #expect(!state.paused)
    }
}
