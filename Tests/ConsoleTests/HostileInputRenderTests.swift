import ServingEngine
import Testing
import XDSTestSupport

@testable import Console

/// What an operator can type or paste into the `:` prompt must draw one character per column
/// and keep the cursor in sight.
@Suite struct HostileInputRenderTests {
    /// A line wider than the screen showed its first 79 characters and no cursor: what was
    /// being typed (the end) was off-screen. Now the end shows after a "…", with the cursor.
    @Test(arguments: [80, 120, 200])
    func longCommandLineShowsItsEndAndTheCursor(width: Int) {
        let text = (0..<60).map { "w\($0)" }.joined(separator: " ") + " END"  // over 250 characters
        let link = FakeEngineLink()
        let state = drive(primedState(width: width, height: 24), link, keys: [.char(":")] + typed(text))
        #expect(state.prompt?.text == text)  // the text itself is kept whole
        let footer = ConsoleScreen.render(state, link.latestSnapshot(), theme: .builtinDark, width: width, height: 24)
            .lines[23]
        #expect(footer.hasPrefix(":…"))
        #expect(footer.hasSuffix(" END█"), "\(footer)")
        #expect(footer.count == width)
        // Enter still sends the whole line.
        _ = drive(state, link, keys: [.enter])
        #expect(link.sentCommands == [text])
    }

    /// A short line is drawn as typed.
    @Test func shortCommandLineIsUnchanged() {
        let state = drive(primedState(), FakeEngineLink(), keys: [.char(":")] + typed("rate 20"))
        let footer = ConsoleScreen.render(
            state, SnapshotFixtures.superpod, theme: .builtinDark, width: 80, height: 24
        ).lines[23]
        #expect(footer.hasPrefix(":rate 20█  Enter sends"))
    }

    /// Wide characters (CJK, emoji) take two terminal columns but one cell: drawn as they were,
    /// the next cell overwrote their second half and everything after shifted. Each becomes one
    /// `?`, as a control character does, so the columns stay right; narrow text is untouched.
    @Test func wideAndZeroWidthCharactersTakeOneColumnAsQuestionMarks() {
        var b = CellBuffer(width: 30, height: 1)
        let end = b.put("a你好b🚀c한d\u{200B}e⚠\u{FE0F}f🇨🇳g", x: 0, y: 0)
        #expect(b.text == "a??b?c?d?e?f?g")
        #expect(end == 14)
        var narrow = CellBuffer(width: 40, height: 1)
        narrow.put("é ü π ж ⊘ ⏸ ⚠ ✓ ▇ │ ┌ … ␣ ⏎", x: 0, y: 0)
        #expect(narrow.text == "é ü π ж ⊘ ⏸ ⚠ ✓ ▇ │ ┌ … ␣ ⏎")
    }

    /// The same through the prompt: typed CJK and emoji stay in the command sent, and the
    /// footer keeps one column per character, the cursor right after them.
    @Test func wideCharactersInThePromptKeepTheCursorInPlace() {
        let link = FakeEngineLink()
        let state = drive(primedState(), link, keys: [.char(":")] + typed("drain 节点 🚀"))
        let footer = ConsoleScreen.render(state, link.latestSnapshot(), theme: .builtinDark, width: 80, height: 24)
            .lines[23]
        #expect(footer.hasPrefix(":drain ?? ?█"))
        _ = drive(state, link, keys: [.enter])
        #expect(link.sentCommands == ["drain 节点 🚀"])
    }

    /// A scenario step that just fits before the rate was followed by one blank only, so
    /// "next 0:11:40 rate 25.4 150.0 req/s" read as one figure; two blanks keep them apart.
    @Test func scenarioStepKeepsItsDistanceFromTheRate() throws {
        var state = primedState()
        state.scenario = Scenario(
            name: "demo1", steps: [Scenario.Step(at: 700, command: try OperatorCommand.parse("rate 25.4").get())])
        let line = ConsoleScreen.render(state, SnapshotFixtures.superpod, theme: .builtinDark, width: 80, height: 24)
            .lines[0]
        let rate = try #require(line.firstRange(of: "150.0 req/s"))
        #expect(line[..<rate.lowerBound].hasSuffix("  "), "\(line)")
        #expect(line.contains("next 0:11:40 rate 25.4"), "\(line)")
    }

    /// A small deployment's demo runs below 1 req/s: the header said 0.1 for 0.144 (one decimal).
    @Test func ratesBelowOneKeepTwoDecimals() {
        #expect(Format.rate(0.144) == "0.14" && Format.rate(0.251) == "0.25" && Format.rate(0) == "0.00")
        #expect(Format.rate(150) == "150.0" && Format.rate(25.4) == "25.4" && Format.rate(0.996) == "1.0")
        var snapshot = SnapshotFixtures.superpod
        snapshot.arrivalRate = 0.144
        let line = ConsoleScreen.render(primedState(), snapshot, theme: .builtinDark, width: 120, height: 30).lines[0]
        #expect(line.contains("0.14 req/s"), "\(line)")
    }

    /// Resized to a sliver (10×3, 12×1): the wrapped sentence was cut before the size needed.
    /// A shorter form is used when the sentence does not fit; the full one where it does. Every
    /// form says how to quit, so on one row of 12 (too short for "80×24; q quits") the way out
    /// is what shows.
    @Test(arguments: [(10, 3), (20, 2), (12, 1), (7, 2), (30, 8), (79, 24)])
    func sliverTerminalStillNamesTheSizeNeeded(size: (Int, Int)) {
        let (w, h) = size
        let lines = ConsoleScreen.render(
            ConsoleState(width: w, height: h), SnapshotFixtures.superpod, theme: .builtinDark, width: w, height: h
        ).lines
        #expect(lines.count == h && lines.allSatisfy { $0.count <= w })
        #expect(lines.joined(separator: " ").contains(h == 1 ? "q quits" : "80×24"), "\(w)×\(h): \(lines)")
    }

    /// Space to resume: the header said "▶ 1× (≈0.0×)" until a new second was measured,
    /// because the next (running) snapshot matched the toggled state and kept the paused 0.
    @Test func resumeBySpaceDoesNotClaimZeroSpeed() {
        var state = ConsoleUpdate.update(primedState(width: 200, height: 60), .clock(wallSeconds: 10)).0
        var paused = SnapshotFixtures.superpod
        paused.paused = true
        paused.speed = 1
        state = ConsoleUpdate.update(state, .tick(paused)).0
        #expect(state.achievedSpeed == 0)
        state = drive(state, FakeEngineLink(), keys: [.char(" ")])
        var running = paused
        running.paused = false
        state = ConsoleUpdate.update(ConsoleUpdate.update(state, .clock(wallSeconds: 10.5)).0, .tick(running)).0
        let header = ConsoleScreen.render(state, running, theme: .builtinDark, width: 200, height: 60).lines[0]
        #expect(!header.contains("≈0.0×"), "\(header)")
        #expect(header.contains("▶ 1×"))
    }
}
