import ServingEngine
import Testing
import XDSTestSupport

@testable import Console

/// The state machine driven by key sequences, with the fake link answering commands.
@Suite struct UpdateTests {
    @Test func numberKeysAndTabClicksSwitchViews() {
        var state = primedState()
        for view in ConsoleView.allCases {
            state = ConsoleUpdate.update(state, .key(.char(Character("\(view.rawValue)")))).0
            #expect(state.view == view)
        }
        let experts = ScreenLayout.tabRanges[1].columns.lowerBound + 2
        state = ConsoleUpdate.update(state, .mouse(.click(x: experts, y: ScreenLayout.tabRow))).0
        #expect(state.view == .experts)
    }

    @Test func arrowsAndHJKLMoveTheNPUSelectionAcrossTheGrid() {
        let link = FakeEngineLink()
        var state = drive(primedState(), link, keys: [.char("l"), .right])
        #expect(state.selectedNPU == 2)
        state = drive(state, link, keys: [.char("j"), .down])
        #expect(state.selectedNPU == 2 * 8 + 2)  // node 2
        state = drive(state, link, keys: Array(repeating: .char("l"), count: 6))
        #expect(state.selectedNPU == 10 * 8 + 0)  // next node column: node 10, NPU 80
        state = drive(state, link, keys: Array(repeating: .up, count: 5) + [.char("h")])
        #expect(state.selectedNPU == 7)  // clamped at node 0's row, back in the first column
        // Clicking an NPU cell selects it (node 17 is column 2, row 1 of the grid).
        let layout = PodLayout(width: 80, height: 24)
        let (x, y) = layout.origin(ofNode: 17)
        state = ConsoleUpdate.update(state, .mouse(.click(x: x + layout.labelWidth + 4, y: y))).0
        #expect(state.selectedNPU == 140)
    }

    @Test func drainAndUndrainTheSelectedNode() {
        let link = FakeEngineLink()
        let state = drive(primedState(), link, keys: [.char("j"), .char("j"), .char("j")])
        let (asking, effects) = ConsoleUpdate.update(state, .key(.char("d")))
        #expect(effects.isEmpty)
        #expect(asking.confirmation == Confirmation(question: "drain node 3?", command: "drain node 3"))
        #expect(ConsoleUpdate.update(asking, .key(.char("y"))).1 == [.send(commandLine: "drain node 3")])
        let after = drive(state, link, keys: [.char("d"), .char("y"), .char("u")])
        #expect(link.sentCommands == ["drain node 3", "undrain node 3"])
        #expect(after.status == StatusLine("node 3 accepts work again"))
        let noDrain = primedState(capabilities: [.faults])
        let (greyed, none) = ConsoleUpdate.update(noDrain, .key(.char("d")))
        #expect(none.isEmpty)
        #expect(greyed.status?.isError == true)
    }

    @Test func promptSendsCommandsAndShowsTheLinksRejection() {
        let link = FakeEngineLink()
        var state = drive(primedState(), link, keys: [.char(":")] + typed("explode now"))
        #expect(state.prompt?.text == "explode now")
        let frame = ConsoleScreen.render(
            state, link.latestSnapshot(), theme: .builtinDark, width: 80, height: 24)
        #expect(frame.lines[23] == ":explode now█  Enter sends · Esc cancels")
        state = drive(state, link, keys: [.enter])
        #expect(state.prompt == nil)
        #expect(link.sentCommands == ["explode now"])
        #expect(state.status?.isError == true)
        // The engine's own words: the fake parses with OperatorCommand.parse.
        #expect(state.status?.text.hasPrefix("unknown command 'explode'; expected one of: drain, undrain") == true)
        let after = ConsoleScreen.render(
            state, link.latestSnapshot(), theme: .builtinDark, width: 80, height: 24)
        // Longer than 80 columns, it wraps onto the row above the footer, whole.
        #expect(after.lines[22].hasPrefix("✗ unknown command 'explode'; expected one of: drain"))
        #expect(after.lines[22...].joined(separator: " ").split(separator: " ").joined(separator: " ")
                == "✗ " + (state.status?.text ?? ""))
        // Esc cancels without sending; backspace on an empty line closes the prompt too.
        state = drive(state, link, keys: [.char(":")] + typed("rate 5") + [.escape])
        #expect(state.prompt == nil && link.sentCommands.count == 1)
        state = drive(state, link, keys: [.char(":"), .char("x"), .backspace, .backspace])
        #expect(state.prompt == nil)
    }

    @Test func promptHistoryWithUpAndDown() {
        let link = FakeEngineLink()
        var state = drive(primedState(), link, keys: [.char(":")] + typed("rate 20") + [.enter])
        state = drive(state, link, keys: [.char(":")] + typed("speed 10") + [.enter])
        #expect(state.history == ["rate 20", "speed 10"])
        state = drive(state, link, keys: [.char(":"), .up])
        #expect(state.prompt?.text == "speed 10")
        state = drive(state, link, keys: [.up, .up])
        #expect(state.prompt?.text == "rate 20")
        state = drive(state, link, keys: [.down])
        #expect(state.prompt?.text == "speed 10")
        state = drive(state, link, keys: [.down])
        #expect(state.prompt?.text == "")
        state = drive(state, link, keys: [.up, .enter])
        #expect(link.sentCommands == ["rate 20", "speed 10", "speed 10"])
        #expect(state.history == ["rate 20", "speed 10"])
    }

    @Test func tabCompletesCommandKeywords() {
        let link = FakeEngineLink()
        var state = drive(primedState(), link, keys: [.char(":")] + typed("dra") + [.tab])
        #expect(state.prompt?.text == "drain ")
        state = drive(state, link, keys: typed("no") + [.tab])
        #expect(state.prompt?.text == "drain node ")
        state = drive(state, link, keys: [.escape, .char(":")] + typed("fault st") + [.tab])
        #expect(state.prompt?.text == "fault straggler ")
        // Ambiguous: extend to the common prefix and list the candidates.
        state = drive(state, link, keys: [.escape, .char(":")] + typed("re") + [.tab])
        #expect(state.prompt?.text == "re")
        #expect(state.status?.text == "rebalance resume")
        state = drive(state, link, keys: [.escape, .char(":")] + typed("zz") + [.tab])
        #expect(state.status?.text == "no completion for 'zz'")
    }

    @Test func helpOpensAndAnyKeyClosesIt() {
        var state = ConsoleUpdate.update(primedState(), .key(.char("?"))).0
        #expect(state.showHelp)
        let (closed, effects) = ConsoleUpdate.update(state, .key(.char("2")))
        #expect(!closed.showHelp && closed.view == .pod && effects.isEmpty)
        state = ConsoleUpdate.update(closed, .key(.char("?"))).0
        #expect(ConsoleUpdate.update(state, .key(.char("q"))).1 == [.quit])
    }

    @Test func qAndControlCQuitButQInThePromptIsText() {
        #expect(ConsoleUpdate.update(primedState(), .key(.char("q"))).1 == [.quit])
        #expect(ConsoleUpdate.update(primedState(), .key(Key.controlC)).1 == [.quit])
        var state = ConsoleUpdate.update(primedState(), .key(.char(":"))).0
        let (typing, effects) = ConsoleUpdate.update(state, .key(.char("q")))
        #expect(effects.isEmpty && typing.prompt?.text == "q")
        state = typing
        #expect(ConsoleUpdate.update(state, .key(Key.controlC)).1 == [.quit])
    }

    @Test func spacePausesOrResumesAccordingToTheSnapshot() {
        let state = primedState()
        #expect(ConsoleUpdate.update(state, .key(.char(" "))).1 == [.send(commandLine: "pause")])
        var paused = SnapshotFixtures.superpod
        paused.paused = true
        let pausedState = ConsoleUpdate.update(state, .tick(paused)).0
        #expect(ConsoleUpdate.update(pausedState, .key(.char(" "))).1 == [.send(commandLine: "resume")])
    }

    @Test func plusAndMinusStepThroughSpeeds() {
        func press(_ key: Character, from speed: Double?) -> [ConsoleEffect] {
            var snapshot = SnapshotFixtures.superpod
            snapshot.speed = speed
            let state = ConsoleUpdate.update(primedState(), .tick(snapshot)).0
            return ConsoleUpdate.update(state, .key(.char(key))).1
        }
        #expect(press("+", from: 1) == [.send(commandLine: "speed 2")])
        #expect(press("+", from: 0.2) == [.send(commandLine: "speed 0.5")])
        #expect(press("+", from: 1000) == [.send(commandLine: "speed max")])
        #expect(press("+", from: nil) == [])
        #expect(press("-", from: nil) == [.send(commandLine: "speed 1000")])
        #expect(press("-", from: 1) == [.send(commandLine: "speed 0.5")])
        #expect(press("-", from: 0.1) == [.send(commandLine: "speed 0.1")])
    }

    @Test func faultMenuInjectsForTheSelectionOrExplainsWhyNot() {
        let link = FakeEngineLink()
        var state = drive(primedState(), link, keys: [.char("l"), .char("f")])
        #expect(state.faultMenu?.npu == 1)
        state = drive(state, link, keys: [.down, .enter])
        #expect(link.sentCommands.isEmpty)
        #expect(state.faultMenu == nil && state.confirmation?.question == "fault npu 1?")
        state = drive(state, link, keys: [.char("y")])
        #expect(link.sentCommands == ["fault npu 1"])
        state = drive(state, link, keys: [.char("f"), .char("4"), .char("y")])
        #expect(link.sentCommands.last == "fault straggler die 2 slowdown 2")
        #expect(state.status?.isError == false)

        let limited = FakeEngineLink(capabilities: [.drain])
        var greyed = drive(primedState(capabilities: [.drain]), limited, keys: [.char("f"), .enter])
        #expect(limited.sentCommands.isEmpty)
        #expect(
            greyed.status
                == StatusLine("fault injection is not available in this engine build", isError: true))
        greyed = drive(greyed, limited, keys: [.escape])
        #expect(greyed.faultMenu == nil)
    }

    @Test func rebalanceNeedsTheCapability() {
        #expect(ConsoleUpdate.update(primedState(), .key(.char("r"))).1 == [.send(commandLine: "rebalance")])
        let (state, effects) = ConsoleUpdate.update(primedState(capabilities: [.drain]), .key(.char("r")))
        #expect(effects.isEmpty && state.status?.isError == true)
    }

    @Test func themeSortFilterAndScrolling() {
        let link = FakeEngineLink()
        var state = drive(primedState(), link, keys: [.char("t"), .char("t")])
        #expect(state.themeIndex == 2)
        state = drive(state, link, keys: [.char("5"), .char("s"), .char("s")])
        #expect(state.requestSort == .tokens)
        // PgDn moves a screenful: the 9 rows of the in-flight table at 80×24.
        state = drive(state, link, keys: [.down, .down, .pageDown])
        #expect(state.requestScroll == 11)
        state = ConsoleUpdate.update(state, .mouse(.wheelUp(x: 10, y: 10))).0
        #expect(state.requestScroll == 8)
        state = drive(state, link, keys: [.char("6"), .char("/")] + typed("fault") + [.enter])
        #expect(state.eventFilter == "fault")
        state = drive(state, link, keys: [.escape])
        #expect(state.eventFilter == "")
        state = drive(state, link, keys: [.char("2"), .right, .right, .down])
        #expect(state.selectedExpert == 2 && state.selectedLayer == 1)
    }

    @Test func resizeAndTickKeepSelectionsInBounds() {
        var state = primedState()
        state.selectedNPU = 383
        var small = SnapshotFixtures.superpod
        small.npus = Array(small.npus.prefix(16))
        state = ConsoleUpdate.update(state, .tick(small)).0
        #expect(state.selectedNPU == 15)
        state = ConsoleUpdate.update(state, .resize(width: 120, height: 40)).0
        #expect(state.width == 120 && state.height == 40)
    }

    /// The fake refuses exactly what the engine's parser refuses, with the parser's message, and
    /// takes what it takes (a console test can't pass on a grammar the engine doesn't have).
    @Test func fakeLinkUsesTheEnginesParser() {
        let link = FakeEngineLink()
        for good in [
            "drain node 3", "fault link 3-4 degrade 1.5", "fault hbm die 9", "heal all", "speed max",
            "rate 12.5", "rate 0", "speed 0.1", "FAULT  straggler die 2 slowdown 2",
        ] {
            guard case .success = OperatorCommand.parse(good) else {
                Issue.record("the engine refuses '\(good)'")
                continue
            }
            let reply = link.send(commandLine: good)
            #expect(reply.accepted, "\(good): \(reply.message)")
        }
        for bad in [
            "drain 3", "fault", "fault npu x", "speed fast", "heal", "launch", "speed 0", "rate -1",
            "fault link 3-4 degrade 0.5", "speed nan", "rate inf", "drain node -2", "pause now", "",
        ] {
            guard case .failure(let error) = OperatorCommand.parse(bad) else {
                Issue.record("the engine takes '\(bad)'")
                continue
            }
            let reply = link.send(commandLine: bad)
            #expect(!reply.accepted, "\(bad)")
            #expect(reply.message == error.message, "\(bad)")
        }
        #expect(link.latestSnapshot().drainedNodes.contains(3))
        #expect(link.latestSnapshot().speed == 0.1)
        #expect(link.latestSnapshot().arrivalRate == 0)
        // Node checks answer as the engine does.
        #expect(link.send(commandLine: "drain node 3") == CommandReply(accepted: false, message: "node 3 is already drained"))
        #expect(link.send(commandLine: "undrain node 4") == CommandReply(accepted: false, message: "node 4 is not drained"))
        #expect(link.send(commandLine: "drain node 48")
            == CommandReply(accepted: false, message: "node 48 does not exist; the pod has nodes 0…47"))
        #expect(link.send(commandLine: "undrain node 3") == CommandReply(accepted: true, message: "node 3 accepts work again"))
    }
}
