import ServingEngine
import Testing
import XDSTestSupport

@testable import Console

/// The `?` help as drawn: its lines keep clear of the box's border, and what it says about speed
/// is what the keys and the command do.
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

    /// The header's "wait" is every request in flight not in a decode batch: queued, being
    /// prefilled or moving its KV (the engine's waiting = in flight − running). Paused with
    /// "r/w 446/7", the Requests view listed 6 of the 7 in prefill; nothing on screen said that
    /// "wait" counted them, and it reads as 7 requests queued. The help says what both count.
    @Test func helpSaysWhatRunAndWaitCount() {
        var state = primedState(width: 80, height: 24)
        state.showHelp = true
        let lines = Self.frame(state).lines
        #expect(lines.contains { $0.contains(" header    run = decoding, wait = queued/prefill/KV; p99, SLO% since start ") },
                "\(lines.joined(separator: "\n"))")
    }

    /// The keys' line said `+`/`-` went "0.1×…max" while `:speed` took 0.01…100000: two ranges
    /// for one speed. Both pages now say the same: the keys step 0.1 … 1000 then max, and
    /// `:speed` takes any value of the command language's range.
    @Test func helpSaysWhatTheSpeedKeysAndCommandTake() {
        let keys = Overlays.helpLines.map(\.1).first { $0.contains("+/= -/_") } ?? ""
        #expect(keys.contains("0.1×…1000×, max"), "\(keys)")
        #expect(ConsoleUpdate.speedSteps.first == 0.1 && ConsoleUpdate.speedSteps.last == 1000)
        let commands = Overlays.commandLines.map(\.1).joined(separator: "\n")
        #expect(CommandLimits.minSpeed == 0.01 && CommandLimits.maxSpeed == 100_000)
        #expect(commands.contains("speed S (any 0.01…100000)"), "\(commands)")
        #expect(commands.contains("+ / - keys: 0.1 0.2 0.5 1 2 5 10 20 50 100 200 500 1000 · max"), "\(commands)")
        // What the keys do, step by step: the help's ladder is the one `+` climbs.
        var state = primedState()
        var seen: [String] = []
        state.speed = 0.1
        for _ in 0..<ConsoleUpdate.speedSteps.count {
            var effects: [ConsoleEffect] = []
            ConsoleUpdate.changeSpeed(faster: true, &state, &effects)
            if case .send(let line)? = effects.first { seen.append(line) }
        }
        #expect(seen.last == "speed max" && seen.dropLast().last == "speed 1000", "\(seen)")
        // The command page fits its box: its last line is not under the box's footer.
        #expect(Overlays.commandLines.count <= Overlays.helpLines.count + 1)
    }
}

extension HelpOverlayTests {
    /// The header's p99s and SLO % are of the whole run (the engine's cumulative histograms),
    /// while the Latency view's panels are of their window ("last 1 min" by default): side by
    /// side they read as two answers ("TTFT99 1236/2000ms" over "p99≈1.48s") with nothing saying
    /// why. The help names the header's scope.
    @Test func helpSaysTheHeadersFiguresAreSinceStart() {
        var state = primedState()
        state.showHelp = true
        let text = Self.frame(state).lines.joined(separator: "\n")
        #expect(text.contains("p99, SLO% since start"), "\(text)")
    }
}

extension HelpOverlayTests {
    /// At 80 columns the header counts faults and drains as `⚠1 ⊘1 ~1`, under LANG=C `!1 /1 ~1`, and
    /// the help explained neither: `!` is also the Pod legend's dead-link glyph. The help names
    /// what each glyph of the narrow header counts, in both character sets.
    @Test func helpExplainsTheNarrowHeadersGlyphs() {
        var state = primedState()
        let header = Self.frame(state).asciiOnly().lines[1]
        #expect(header.contains("!1 /1 ~1"), "\(header)")
        state.showHelp = true
        let text = Self.frame(state).lines.joined(separator: "\n")
        #expect(text.contains("⚠N faults") && text.contains("⊘N drained") && text.contains("~N draining"), "\(text)")
        let ascii = Self.frame(state).asciiOnly().lines.joined(separator: "\n")
        #expect(ascii.contains("!N faults") && ascii.contains("/N drained"), "\(ascii)")
    }
}

extension HelpOverlayTests {
    /// `=` and `_` change the speed as `+` and `-` do (no Shift needed), and the mouse wheel
    /// scrolls a list as j/k do, but the help named none of them: a user reading `?` could
    /// not know that the wheel or the unshifted keys did anything. The keys act, and the help
    /// as drawn at 80×24 names them.
    @Test func helpNamesTheUnshiftedSpeedKeysAndTheWheel() {
        var state = primedState()
        state.speed = 1
        let faster = ConsoleUpdate.update(state, .key(.char("="))).1
        let slower = ConsoleUpdate.update(state, .key(.char("_"))).1
        #expect(faster == [.send(commandLine: "speed 2")] && slower == [.send(commandLine: "speed 0.5")], "\(faster) \(slower)")
        state.view = .events
        let scrolled = ConsoleUpdate.update(state, .mouse(.wheelDown(x: 10, y: 10))).0
        #expect(scrolled.eventScroll == 3, "\(scrolled.eventScroll) of \(EventsView.shown(state).count)")
        state.showHelp = true
        let text = Self.frame(state).lines.joined(separator: "\n")
        #expect(text.contains("+/= -/_  speed steps"), "\(text)")
        #expect(text.contains("click; wheel"), "\(text)")
    }
}
