import Testing
import XDSTestSupport

@testable import Console

/// The terminal's key decoder: Home/End/PgUp/PgDn sent in the spellings ncurses' terminfo entry
/// may not know (tmux with TERM=xterm-256color sends End as ESC [ 4 ~) become keys, every
/// other complete CSI/SS3 sequence is dropped, and a lone Esc stays Esc. Before this, the "4"
/// of ESC [ 4 ~ switched the console to view 4.
@Suite(.timeLimit(.minutes(10))) struct KeySequenceDecoderTests {
    typealias D = KeySequenceDecoder.Decoded

    @Test(arguments: [
        // vt220 / tmux / screen
        ("\u{1B}[1~", Key.home), ("\u{1B}[4~", .end), ("\u{1B}[5~", .pageUp), ("\u{1B}[6~", .pageDown),
        // rxvt
        ("\u{1B}[7~", .home), ("\u{1B}[8~", .end),
        // xterm normal and application mode
        ("\u{1B}[H", .home), ("\u{1B}[F", .end), ("\u{1B}OH", .home), ("\u{1B}OF", .end),
        ("\u{1B}[A", .up), ("\u{1B}[B", .down), ("\u{1B}[C", .right), ("\u{1B}[D", .left),
        ("\u{1B}OA", .up), ("\u{1B}OB", .down), ("\u{1B}OC", .right), ("\u{1B}OD", .left),
        // with modifiers: Ctrl-Home, Shift-End, Ctrl-PgUp, Alt-PgDn, Ctrl-Up, old xterm Ctrl-Home
        ("\u{1B}[1;5H", .home), ("\u{1B}[1;2F", .end), ("\u{1B}[5;5~", .pageUp), ("\u{1B}[6;3~", .pageDown),
        ("\u{1B}[1;5A", .up), ("\u{1B}O5H", .home), ("\u{1B}[4;5~", .end),
        // rxvt Shift ($), Ctrl (^), Ctrl-Shift (@)
        ("\u{1B}[7$", .home), ("\u{1B}[8^", .end), ("\u{1B}[5@", .pageUp), ("\u{1B}[6$", .pageDown),
        // application keypad
        ("\u{1B}OM", .enter), ("\u{1B}Ot", .char("4")), ("\u{1B}Ok", .char("+")),
    ] as [(String, Key)])
    func decodesTheCommonSpellings(sequence: String, key: Key) {
        #expect(KeySequenceDecoder.decode(sequence) == [.key(key)])
    }

    @Test(arguments: [
        ("\u{1B}[2~", D.unbound(.insert)), ("\u{1B}[3~", .unbound(.delete)), ("\u{1B}[3;5~", .unbound(.delete)),
        ("\u{1B}OP", .unbound(.function(1))), ("\u{1B}OS", .unbound(.function(4))),
        ("\u{1B}[1;5P", .unbound(.function(1))), ("\u{1B}[11~", .unbound(.function(1))),
        ("\u{1B}[15~", .unbound(.function(5))), ("\u{1B}[17~", .unbound(.function(6))),
        ("\u{1B}[24~", .unbound(.function(12))), ("\u{1B}[24;2~", .unbound(.function(12))),
        ("\u{1B}[34~", .unbound(.function(20))), ("\u{1B}[[A", .unbound(.function(1))),
        ("\u{1B}[[E", .unbound(.function(5))), ("\u{1B}[Z", .unbound(.backTab)), ("\u{1B}[E", .unbound(.begin)),
        ("\u{1B}OE", .unbound(.begin)),
    ] as [(String, D)])
    func recognisesKeysTheConsoleHasNoUseFor(sequence: String, decoded: D) {
        #expect(KeySequenceDecoder.decode(sequence) == [decoded])
        #expect(KeySequenceDecoder.keys(sequence).isEmpty)
    }

    /// Complete sequences that are not keys (or not keys we know) are dropped whole: none of
    /// their bytes reaches the console, whatever comes after them is intact.
    @Test(arguments: [
        "\u{1B}[99~", "\u{1B}[16~", "\u{1B}[201~", "\u{1B}[1;5X", "\u{1B}[24;80R", "\u{1B}[?1;2c",
        "\u{1B}[<0;10;5M", "\u{1B}[I", "\u{1B}[O", "\u{1B}[2 q", "\u{1B}[>4;1m", "\u{1B}[9;5~",
        "\u{1B}O~", "\u{1B}Oz", "\u{1B}[[Z", "\u{1B}[1!p",
        "\u{1B}[" + String(repeating: "1;", count: 40) + "4~",  // overlong parameters still end at ~
    ])
    func dropsOtherCompleteSequences(sequence: String) {
        let decoded = KeySequenceDecoder.decode(sequence + "j")
        #expect(decoded.count == 2)
        if case .dropped = decoded.first {} else { Issue.record("\(decoded) does not start with a drop") }
        #expect(decoded.last == .key(.char("j")))
    }

    @Test func aLoneEscIsEscAndEscEscIsTwo() {
        #expect(KeySequenceDecoder.decode("\u{1B}") == [.key(.escape)])
        #expect(KeySequenceDecoder.keys("\u{1B}\u{1B}") == [.escape, .escape])
        // Esc then a key typed at once (or Alt+key) is both keys, as before.
        #expect(KeySequenceDecoder.keys("\u{1B}q") == [.escape, .char("q")])
        // Esc straight before a sequence: the Esc, then the sequence's key.
        #expect(KeySequenceDecoder.keys("\u{1B}\u{1B}[4~") == [.escape, .end])
    }

    @Test func keysAroundSequencesArriveInOrder() {
        #expect(KeySequenceDecoder.keys("5\u{1B}[4~k\u{1B}[1~\u{1B}OF\r") == [.char("5"), .end, .char("k"), .home, .end, .enter])
        #expect(KeySequenceDecoder.keys("\u{1B}[99~4") == [.char("4")])
        #expect(KeySequenceDecoder.keys("é\u{1B}[Fü") == [.char("é"), .end, .char("ü")])
    }

    /// A sequence cut off by a pause (the caller flushes) is dropped; a cut by a control
    /// character drops the half and keeps the control key, so Ctrl-C always quits.
    @Test func cutOffSequencesAreDroppedAndControlKeysSurvive() {
        for half in ["\u{1B}[", "\u{1B}[4", "\u{1B}[1;5", "\u{1B}O", "\u{1B}[[", "\u{1B}[2 "] {
            let decoded = KeySequenceDecoder.decode(half)
            #expect(decoded.count == 1)
            if case .dropped = decoded.first {} else { Issue.record("\(half.debugDescription) → \(decoded)") }
        }
        #expect(KeySequenceDecoder.keys("\u{1B}[4\u{03}") == [Key.controlC])
        #expect(KeySequenceDecoder.keys("\u{1B}O\r") == [.enter])
        #expect(KeySequenceDecoder.keys("\u{1B}[1;\u{1B}[4~") == [.end])  // a new ESC restarts
        #expect(KeySequenceDecoder.keys("\u{1B}[4\u{1B}") == [.escape])
    }

    @Test func streamingFeedHoldsOnlyWhileASequenceIsOpen() {
        var decoder = KeySequenceDecoder()
        #expect(decoder.feed(0x1B).isEmpty && decoder.isPending)
        #expect(decoder.feed(UInt32(UInt8(ascii: "["))).isEmpty && decoder.isPending)
        #expect(decoder.feed(UInt32(UInt8(ascii: "4"))).isEmpty && decoder.isPending)
        #expect(decoder.feed(UInt32(UInt8(ascii: "~"))) == [.key(.end)] && !decoder.isPending)
        #expect(decoder.feed(UInt32(UInt8(ascii: "4"))) == [.key(.char("4"))] && !decoder.isPending)
        #expect(decoder.flush().isEmpty)
        #expect(decoder.feed(0x1B).isEmpty)
        #expect(decoder.flush() == [.key(.escape)] && !decoder.isPending)
    }

    /// Plain characters decode as ncurses' single characters always did.
    @Test func plainCharacters() {
        #expect(KeySequenceDecoder.keys("\u{03}\t\n\r\u{08}\u{7F}a4~") == [
            Key.controlC, .tab, .enter, .enter, .backspace, .backspace, .char("a"), .char("4"), .char("~"),
        ])
    }

    @Test func xtermModifiedKeyNamesMeanTheirPlainKey() {
        #expect(KeySequenceDecoder.modifiedKey(named: "kEND5") == .end)
        #expect(KeySequenceDecoder.modifiedKey(named: "kHOM3") == .home)
        #expect(KeySequenceDecoder.modifiedKey(named: "kNXT6") == .pageDown)
        #expect(KeySequenceDecoder.modifiedKey(named: "kUP5") == .up)
        #expect(KeySequenceDecoder.modifiedKey(named: "kEND") == nil)
        #expect(KeySequenceDecoder.modifiedKey(named: "kDC5") == nil)
        #expect(KeySequenceDecoder.modifiedKey(named: "kENDX") == nil)
    }

    /// The reported bug end to end: End and Home as raw sequences on the Requests view move
    /// the highlight and never switch views.
    @Test func rawEndAndHomeInRequestsMoveTheHighlightAndStay() throws {
        let link = FakeEngineLink()
        var state = drive(primedState(), link, keys: [.char("5")])
        #expect(state.view == .requests)
        let rows = RequestsView.rowCount(state)
        try #require(rows > 1)
        for end in ["\u{1B}[4~", "\u{1B}[8~", "\u{1B}OF", "\u{1B}[F", "\u{1B}[1;5F"] {
            state = drive(state, link, keys: KeySequenceDecoder.keys(end))
            #expect(state.view == .requests && state.requestScroll == rows - 1, "\(end.debugDescription)")
            for home in ["\u{1B}[1~", "\u{1B}[7~", "\u{1B}OH", "\u{1B}[H", "\u{1B}[1;5H"] {
                let back = drive(state, link, keys: KeySequenceDecoder.keys(home))
                #expect(back.view == .requests && back.requestScroll == 0, "\(home.debugDescription)")
            }
        }
        #expect(link.sentCommands.isEmpty)
    }
}
