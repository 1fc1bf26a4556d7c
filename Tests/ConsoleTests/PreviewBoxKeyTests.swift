import ServingEngine
import Testing
import XDSTestSupport

@testable import Console

/// A review (tmux, release build) found the what-if box acting on typed letters: with a
/// `fault node 5` preview on screen, `:heal all` applied the fault (its `a`) and paused the
/// engine (its space), because the box swallowed `:` and took `a` as "apply". Now `:` closes the
/// box and opens the command line, every key but the box's own is inert, and `a` on a
/// destructive command asks y/n first, as `d` and the fault menu do.
@Suite struct PreviewBoxKeyTests {
    /// Keys through the update function, effects collected in order.
    static func press(_ state: ConsoleState, _ keys: [Key]) -> (ConsoleState, [ConsoleEffect]) {
        var s = state
        var effects: [ConsoleEffect] = []
        for key in keys {
            let (next, more) = ConsoleUpdate.update(s, .key(key))
            s = next
            effects += more
        }
        return (s, effects)
    }

    /// A box for `command` with its answer in (`.ready`), or refused, or still computing.
    static func box(_ command: String, _ phase: PreviewOverlay.Phase? = nil) -> ConsoleState {
        var (s, _) = PreviewOverlayTests.open("preview \(command)")
        let line = "preview \(command) for 10m"
        #expect(s.preview?.line == line)
        var result = PreviewOverlayTests.result()
        result.command = command
        let answer = phase ?? .ready(result)
        switch answer {
        case .ready(let r): s = ConsoleUpdate.update(s, .preview(.finished(line: line, .success(r)))).0
        case .refused(let why): s = ConsoleUpdate.update(s, .preview(.finished(line: line, .failure(PreviewRefusal(why))))).0
        case .computing(let share): s = ConsoleUpdate.update(s, .preview(.progress(line: line, share))).0
        }
        #expect(s.preview?.phase == answer)
        return s
    }

    /// The review's repro: `:heal all` typed on a `fault node 5` preview sent `fault node 5`
    /// then `pause`. It must send exactly `heal all`.
    @Test func typingACommandOnTheBoxRunsThatCommandOnly() {
        let (s, effects) = Self.press(Self.box("fault node 5"), [.char(":")] + typed("heal all") + [.enter])
        #expect(effects == [.send(commandLine: "heal all")])
        #expect(s.preview == nil && s.confirmation == nil && s.prompt == nil && !s.paused)
        // `:rate 30` on a drain preview drained node 20 for real (`a`) and changed the theme (`t`).
        let (r, rateEffects) = Self.press(Self.box("drain node 20"), [.char(":")] + typed("rate 30") + [.enter])
        #expect(rateEffects == [.send(commandLine: "rate 30")])
        #expect(r.themeIndex == 0 && r.preview == nil)
    }

    /// `:` on a box still computing cancels the preview (its forks stop) and opens the prompt.
    @Test func colonCancelsAComputingPreviewAndOpensThePrompt() {
        let (s, effects) = Self.press(Self.box("drain node 20", .computing(progress: 0.3)), [.char(":")])
        #expect(effects == [.cancelPreview(commandLine: "preview drain node 20 for 10m")])
        #expect(s.preview == nil && s.prompt?.purpose == .command && s.prompt?.text == "")
    }

    /// Under the box, on every phase, no key but its own acts: the view, theme, pause, speed,
    /// selection and sort stay, nothing is sent and no other box opens.
    @Test(arguments: ["ready", "refused", "computing"])
    func otherKeysAreInertUnderTheBox(phase: String) {
        let command = "drain node 20"
        let start = Self.box(command, phase == "refused" ? .refused("no node 20") : phase == "computing" ? .computing(progress: 0.5) : nil)
        // The box's own keys: a (apply), Esc/q/n (dismiss), `:` (command line).
        let own: Set<Character> = ["a", "A", "q", "n", ":"]
        let printable = (32...126).map { Character(UnicodeScalar($0)!) }.filter { !own.contains($0) }
        var keys = printable.map { Key.char($0) }
        keys += [.enter, .tab, .up, .down, .left, .right, .pageUp, .pageDown, .home, .end]
        for key in keys {
            let (s, effects) = Self.press(start, [key])
            #expect(effects.isEmpty, "\(key) on a \(phase) box: \(effects)")
            #expect(s.preview == start.preview, "\(key) on a \(phase) box")
            #expect(s.view == start.view && s.themeIndex == start.themeIndex && s.paused == start.paused
                    && s.speed == start.speed && s.selectedNPU == start.selectedNPU && !s.quitting && !s.showHelp
                    && s.faultMenu == nil && s.confirmation == nil && s.prompt == nil, "\(key) on a \(phase) box")
        }
    }

    /// `a` on a destructive command asks y/n (the question names it) like `d` and the fault
    /// menu; `y` then sends it, any other key cancels. A harmless command applies at once, and
    /// so does everything under `--yes`.
    @Test func applyingADestructiveCommandAsksFirst() {
        for command in ["drain node 20", "fault node 5", "fault link 130-200 degrade 2", "fault glitch",
                        "scale decode -1", "scale prefill 2"] {
            let (asked, effects) = Self.press(Self.box(command), [.char("a")])
            #expect(effects.isEmpty && asked.preview == nil, "\(command)")
            #expect(asked.confirmation?.command == command && asked.confirmation?.question == "\(command)?")
            #expect(Self.press(asked, [.char("y")]).1 == [.send(commandLine: command)], "\(command)")
            let (cancelled, none) = Self.press(asked, [.char(" ")])
            #expect(none.isEmpty && cancelled.status?.text == "cancelled: \(command)" && !cancelled.paused)
        }
        for command in ["undrain node 3", "heal all", "rate 30", "rebalance", "scale decode +1", "autoscale slo"] {
            let (s, effects) = Self.press(Self.box(command), [.char("a")])
            #expect(effects == [.send(commandLine: command)] && s.confirmation == nil && s.preview == nil, "\(command)")
        }
        var yes = Self.box("fault node 5")
        yes.confirmDestructive = false
        #expect(Self.press(yes, [.char("a")]).1 == [.send(commandLine: "fault node 5")])
    }

    /// The box says which keys it takes, and whether `a` asks first.
    @Test func theBoxNamesItsKeys() {
        func text(_ s: ConsoleState) -> String {
            ConsoleScreen.render(s, SnapshotFixtures.superpod, theme: .builtinDark, width: 80, height: 24).text
        }
        let drain = text(Self.box("drain node 20"))
        #expect(drain.contains("a applies drain node 20 (y/n first) · Esc dismisses · : command line"), "\(drain)")
        #expect(text(Self.box("rate 30")).contains("a applies rate 30 at once · Esc dismisses · : command line"))
        var yes = Self.box("drain node 20")
        yes.confirmDestructive = false
        #expect(text(yes).contains("a applies drain node 20 at once"))
        #expect(text(Self.box("drain node 20", .refused("no node 20"))).contains("Esc closes · : command line"))
        #expect(text(Self.box("drain node 20", .computing(progress: 0.1)))
            .contains("Esc cancels the preview · : cancels it and opens the command line"))
        // The footer does not list the view's keys (space, r, t …) under the box: they do nothing there.
        let footer = drain.split(separator: "\n").last.map(String.init) ?? ""
        #expect(footer.contains("keys act on the box above") && !footer.contains("pause"), "\(footer)")
    }

    /// The mouse: a click closes the box (cancelling a preview still computing, as Esc does) and
    /// does not also switch the view under it; the wheel does not scroll the view under a box.
    @Test func theMouseDoesNotReachUnderTheBox() {
        let tab = ScreenLayout.tabRanges.first { $0.view == .events }!.columns.lowerBound
        for phase in [PreviewOverlay.Phase.computing(progress: 0.2), .refused("no node 20")] {
            let start = Self.box("drain node 20", phase)
            let (s, effects) = ConsoleUpdate.update(start, .mouse(.click(x: tab, y: ScreenLayout.tabRow)))
            #expect(s.preview == nil && s.view == .pod)
            let cancels = phase == .computing(progress: 0.2)
            #expect(effects == (cancels ? [.cancelPreview(commandLine: "preview drain node 20 for 10m")] : []))
        }
        var requests = Self.box("drain node 20")
        requests.view = .events
        requests.eventCount = 50
        let wheeled = ConsoleUpdate.update(requests, .mouse(.wheelDown(x: 10, y: 10))).0
        #expect(wheeled.eventScroll == 0 && wheeled.preview != nil)
    }

    /// `:` is the same from every other box: it closes it (a y/n question is cancelled and says
    /// so) and opens the command line, so what is typed next is text, not keys. At a drain
    /// question, `:heal all` cancelled the drain, then its space paused the engine.
    @Test func colonOpensTheCommandLineFromEveryBox() {
        let base = primedState()
        let boxes: [(String, [Key])] = [
            ("confirmation", [.char("d")]), ("fault menu", [.char("f")]), ("help", [.char("?")]),
        ]
        for (name, open) in boxes {
            let (opened, _) = Self.press(base, open)
            #expect(opened.confirmation != nil || opened.faultMenu != nil || opened.showHelp, "\(name)")
            let (s, effects) = Self.press(opened, [.char(":")] + typed("heal all") + [.enter])
            #expect(effects == [.send(commandLine: "heal all")], "\(name): \(effects)")
            #expect(s.confirmation == nil && s.faultMenu == nil && !s.showHelp && s.prompt == nil && !s.paused, "\(name)")
        }
        let (asked, _) = Self.press(base, [.char("d")])
        let (prompt, _) = Self.press(asked, [.char(":")])
        #expect(prompt.prompt?.purpose == .command && prompt.status?.text == "cancelled: drain node 0")
    }
}
