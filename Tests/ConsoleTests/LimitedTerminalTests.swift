import Foundation
import ServingEngine
import Testing
import XDSTestSupport

@testable import Console

/// Terminals nobody tuned the console to: a locale without UTF-8 (`LANG=C`), eight colours
/// (`TERM=xterm`, `screen`, `linux`), `NO_COLOR` and `--theme` names that do not exist.
@Suite struct LimitedTerminalTests {
    /// The superpod fixture with one fault of every kind, so every state glyph is on screen.
    static let busy: Snapshot = {
        var s = SnapshotFixtures.superpod
        s.activeFaults = [
            FaultStatus(id: 1, description: "fault npu 140 · detected in 2.1 s", injectedAt: 1, detectedAt: 3.1),
            FaultStatus(id: 2, description: "straggler die 300 (2× slower)", injectedAt: 2),
            FaultStatus(id: 3, description: "fault hbm die 336", injectedAt: 3),
            FaultStatus(id: 4, description: "fault link 200-210", injectedAt: 4, recoveredAt: 5),
        ]
        return s
    }()

    /// Every view, the overlays, a question and the prompt, at a small and a large size.
    static func screens() -> [CellBuffer] {
        var frames: [CellBuffer] = []
        for (w, h) in [(80, 24), (120, 40), (200, 60)] {
            let primed = ConsoleUpdate.update(ConsoleState(width: w, height: h), .tick(busy)).0
            var states: [ConsoleState] = ConsoleView.allCases.map {
                var s = primed
                s.view = $0
                return s
            }
            var s = primed
            s.showHelp = true
            states.append(s)
            s.helpPage = 1
            states.append(s)
            states.append(ConsoleUpdate.update(primed, .key(.char("f"))).0)
            states.append(ConsoleUpdate.update(primed, .key(.char("d"))).0)
            var prompt = primed
            for key in [Key.char(":")] + typed("scale decode +1") { prompt = ConsoleUpdate.update(prompt, .key(key)).0 }
            states.append(prompt)
            var replied = primed
            replied.status = StatusLine("no active fault 77", isError: true)
            states.append(replied)
            frames += states.map { ConsoleScreen.render($0, busy, theme: .builtinDark, width: w, height: h) }
        }
        return frames
    }

    // MARK: LANG=C

    /// ncurses in a non-UTF-8 locale cannot encode box drawing, blocks, arrows, `·` or `×`: boxes
    /// vanished, bars were blank and the rest of each line shifted left. The ASCII frame has
    /// one printable ASCII character per cell, keeps every style, and leaves no console glyph as `?`.
    @Test func asciiFrameKeepsEveryCellAndItsStyle() {
        for frame in Self.screens() {
            let ascii = frame.asciiOnly()
            #expect(ascii.width == frame.width && ascii.height == frame.height)
            for y in 0..<frame.height {
                // A line with a sign written out (`>=`) moves its text right by a cell or two.
                let line = Array(frame.line(y))
                let spelled = line.indices.contains {
                    ASCIIFallback.spelled[line[$0]] != nil || ASCIIFallback.spelled(line[$0], before: line[($0 + 1)...]) != nil
                }
                for x in 0..<frame.width {
                    let (was, now) = (frame[x, y], ascii[x, y])
                    if !spelled { #expect(now.style == was.style) }
                    #expect(now.character.isASCII && (now.character.asciiValue ?? 0) >= 0x20, "\(was.character) → \(now.character)")
                    if was.character != "?" {
                        #expect(now.character != "?", "no stand-in for \(was.character) in \(frame.line(y))")
                    }
                }
            }
        }
        let pod = Self.screens()[0].asciiOnly().text
        #expect(pod.contains("+ Pod . 48x8 NPUs"), "\(pod)")
        #expect(pod.contains("|  00"), "\(pod)")
    }

    /// States stay distinct in ASCII: each NPU state glyph has its own stand-in, none of them a
    /// role letter, and the eight sparkline levels keep their order in distinct characters.
    @Test func asciiStandInsKeepStatesAndLevelsApart() {
        let states = [NPUState.dead, .slow, .hbm, .link, .drained, .draining].map { ASCIIFallback.ascii($0.glyph!) }
        #expect(Set(states).count == states.count, "\(states)")
        let roles: [Character] = ["P", "D", "A", "E", "C", ASCIIFallback.ascii("·")]
        #expect(Set(states).isDisjoint(with: roles))
        let levels = CellBuffer.sparkGlyphs.map(ASCIIFallback.ascii)
        #expect(Set(levels).count == 8 && !levels.contains(" "), "\(levels)")
        #expect(ASCIIFallback.ascii("é") == "e" && ASCIIFallback.ascii("你") == "?")
    }

    /// Signs whose one-character stand-in says something else are written out: `≥90%` is not
    /// `>90%`, `1.81 → 1.22` is not the comparison `1.81 > 1.22`, `±50%` is not `+50%`. The
    /// text after them moves into the nearest spare blanks of the line, never across a panel's side.
    @Test func asciiWritesOutSignsThatASingleCharacterWouldChange() {
        func ascii(_ text: String, width: Int) -> String {
            var b = CellBuffer(width: width, height: 1)
            b.put(text, x: 0, y: 0, style: .text)
            return b.asciiOnly().line(0)
        }
        #expect(ascii("* ≥90% crit  ⊘drained", width: 30) == "* >=90% crit /drained")
        #expect(ascii("imbalance 1.81 → 1.22", width: 30) == "imbalance 1.81 -> 1.22")
        #expect(ascii("±50% ≤0.1×", width: 30) == "+/-50% <=0.1x")
        // No spare blank: the blank after it is used, else the one before it.
        #expect(ascii("1.81 → 1.22", width: 11) == "1.81 ->1.22")
        #expect(ascii("1.81 →", width: 6) == "1.81->")
        // A panel's side stops the move; the title's rule gives a cell.
        #expect(ascii("a ≥ b│ c", width: 8) == "a >=b| c")
        #expect(ascii("┌ ≥90% ──┐", width: 10) == "+ >=90% -+")
        // An ellipsis is `..`: its stand-in was `~`, the draining NPU's glyph. One that ends a
        // cut text at the edge takes the text's last cell; one inside a line with no room at
        // all is `.`.
        #expect(ascii("0.1…100 x", width: 12) == "0.1..100 x")
        #expect(ascii("cut… next", width: 12) == "cut.. next")
        #expect(ascii("deepseek-r1-na…", width: 15) == "deepseek-r1-n..")
        #expect(ascii("│deepseek…│", width: 11) == "|deepsee..|")
        #expect(ascii("…tail", width: 5) == ".tail")
        #expect(ascii("0.1…100", width: 7) == "0.1.100")
        // A title's rule to the left gives the cell, the text moving left.
        #expect(ascii("┌── height ▁0…█100% ┐", width: 21) == "+- height .0..#100% +")
        #expect(!ascii("a…│b…", width: 5).contains("~"))
        // The Latency view's tallest bar `↑952` was `^952`, the `^` of its SLO marker `▲ SLO`;
        // the Pod legend's `↓slow` was the word `vslow`. A slow NPU's `↓` in the grid stays one cell.
        #expect(ascii("│↑952 of n 2592 · bins 1 ms    │", width: 32) == "|max 952 of n 2592 . bins 1 ms |")
        #expect(ascii("│↑952 of n 2592│", width: 16) == "|#952 of n 2592|")
        #expect(ascii(" ▲ SLO 2.0 s", width: 12) == " ^ SLO 2.0 s")
        #expect(ascii("X dead ↓slow #HBM  ", width: 19) == "X dead v slow #HBM")
        #expect(ascii("18↓^D^DDD↓D 26", width: 14) == "18v^D^DDDvD 26")
        #expect(ascii("↑↓ history", width: 12) == "^v history")
        // The whole pod legend of the fixture, at 80 columns.
        let legend = Self.screens()[0].asciiOnly().lines.first { $0.contains("crit") }
        #expect(legend?.contains(">=90% crit") == true, "\(legend ?? "")")
    }

    @Test func onlyAUTF8CodesetShowsTheGlyphs() {
        for codeset in ["UTF-8", "utf8", "UTF8"] { #expect(!ASCIIFallback.isNeeded(codeset: codeset)) }
        for codeset in ["ANSI_X3.4-1968", "ISO-8859-1", "ASCII", ""] { #expect(ASCIIFallback.isNeeded(codeset: codeset)) }
    }

    // MARK: eight colours

    static let shipped = ThemeCatalog.load(directory: ThemeTests.themesDirectory).themes.filter { !$0.monochrome }

    /// In eight colours the 24 greys fold to black or white: the dark theme's borders and spare
    /// NPUs were black on a black terminal, the light theme's dim text and borders white on its
    /// own white. No cell's ink may equal the ground it is drawn on (the heat map's ▀, whose two
    /// halves may share a colour, excepted).
    @Test func eightColourInkNeverVanishesIntoItsGround() {
        let frames = Self.screens()
        for theme in Self.shipped {
            var vanished: Set<String> = []
            for frame in frames {
                for cell in frame.cells where cell.character != " " {
                    if case .heat = cell.style.bg { continue }
                    let r = theme.resolve(cell.style, depth: .colors8)
                    if r.fg >= 0, r.fg == max(r.bg, 0) { vanished.insert("\(cell.style.fg) '\(cell.character)'") }
                }
            }
            #expect(vanished.isEmpty, "\(theme.name): \(vanished.sorted())")
        }
    }

    /// A colour means a state: in eight colours `warn` (draining, high load, a straggler) and
    /// `bad` (critical, dead) must differ. Orange (214, 130) became red, so the Pod legend's
    /// "<90% high" and "≥90% crit" swatches were the same red.
    @Test func eightColourWarnIsNotBad() {
        for theme in Self.shipped {
            let warn = theme.resolve(.warn, depth: .colors8).fg
            let bad = theme.resolve(.bad, depth: .colors8).fg
            let good = theme.resolve(.good, depth: .colors8).fg
            #expect(Set([warn, bad, good]).count == 3, "\(theme.name): warn \(warn) bad \(bad) good \(good)")
            let bands = NPULoad.Band.allCases.map { theme.resolve(NPULoad.style($0), depth: .colors8) }
            #expect(Set(bands.map(\.fg)).count == bands.count, "\(theme.name): \(bands)")
        }
        #expect(ThemeColor.nearest8(214) == 3 && ThemeColor.nearest8(130) == 3)  // oranges: yellow
        #expect(ThemeColor.nearest8(203) == 1 && ThemeColor.nearest8(209) == 1)  // salmon: still red
    }

    // MARK: NO_COLOR and --theme

    @Test func noColorCountsOnlyWhenNotEmpty() {
        #expect(ConsoleOptions.noColor(["NO_COLOR": "1"]))
        #expect(ConsoleOptions.noColor(["NO_COLOR": "0"]))  // any value (no-color.org)
        #expect(!ConsoleOptions.noColor(["NO_COLOR": ""]))
        #expect(!ConsoleOptions.noColor([:]))
    }

    @Test func themeChoiceSaysWhatItCouldNotUse() throws {
        let catalog = ThemeCatalog.load(directory: ThemeTests.themesDirectory)
        let plain = catalog.start(named: nil, noColor: false, logPath: "/tmp/l")
        #expect(plain.index == 0 && plain.notice == nil && !plain.monochrome && plain.themes.count == 4)
        let light = catalog.start(named: "light", noColor: false, logPath: "/tmp/l")
        #expect(light.themes[light.index].name == "light" && light.notice == nil)
        let unknown = catalog.start(named: "solarized", noColor: false, logPath: "/tmp/l")
        #expect(unknown.themes[unknown.index].name == "dark")
        #expect(unknown.notice == "no theme named 'solarized'; using dark · themes: dark, light, high-contrast, mono")
        // NO_COLOR: mono, unless a theme is named (an explicit choice overrides NO_COLOR).
        let mono = catalog.start(named: nil, noColor: true, logPath: "/tmp/l")
        #expect(mono.monochrome && mono.themes.map(\.name) == ["mono"])
        let asked = catalog.start(named: "light", noColor: true, logPath: "/tmp/l")
        #expect(!asked.monochrome && asked.themes[asked.index].name == "light")
        let typo = catalog.start(named: "ligth", noColor: true, logPath: "/tmp/l")
        #expect(typo.monochrome && typo.notice?.hasPrefix("no theme named 'ligth'; using mono (NO_COLOR)") == true)
        // A broken theme file is named, with where the reason is.
        let dir = try TestScratch.makeDirectory("xds-themes")
        try "name = \"mine\"\n[colors\n".write(to: dir.appendingPathComponent("mine.toml"), atomically: false, encoding: .utf8)
        let broken = ThemeCatalog.load(directory: dir).start(named: "mine", noColor: false, logPath: "/tmp/l")
        #expect(broken.notice == "no theme named 'mine'; using dark · themes: dark · theme file mine.toml skipped: see /tmp/l")
    }
}
