import Testing

@testable import Console

/// Bracketed paste in the key decoder: what the terminal sends between `ESC [ 200 ~` and
/// `ESC [ 201 ~` is one paste, never keys. Before, the start marker was dropped as an unknown
/// sequence and every pasted character ran as a hotkey (`d` drain, space pause, `f1y` fault).
@Suite struct BracketedPasteDecoderTests {
    static let start = "\u{1B}[200~"
    static let end = "\u{1B}[201~"

    @Test func aPasteIsOneEventAndTheKeysAroundItStayKeys() {
        let text = "rate 30\rspeed 2\rrate 31\r d r t f1y\r"
        #expect(KeySequenceDecoder.decode("j" + Self.start + text + Self.end + "k") == [
            .key(.char("j")), .paste(text), .key(.char("k")),
        ])
        #expect(KeySequenceDecoder.keys(Self.start + text + Self.end).isEmpty)
        #expect(KeySequenceDecoder.decode(Self.start + Self.end) == [.paste("")])
    }

    /// The markers split over reads (one byte per feed, the way wget_wch delivers them): nothing
    /// comes out until the end marker, and the decoder says it is inside a paste meanwhile.
    @Test func markersSplitAcrossReads() {
        var decoder = KeySequenceDecoder()
        var out: [KeySequenceDecoder.Decoded] = []
        for code in (Self.start + "d ").unicodeScalars.map(\.value) { out += decoder.feed(code) }
        #expect(out.isEmpty && decoder.isPending && decoder.isInPaste)
        for code in "\u{1B}[20".unicodeScalars.map(\.value) { out += decoder.feed(code) }
        #expect(out.isEmpty && decoder.isInPaste)
        out += decoder.feed(UInt32(UInt8(ascii: "1")))
        out += decoder.feed(UInt32(UInt8(ascii: "~")))
        #expect(out == [.paste("d ")])
        #expect(!decoder.isPending && !decoder.isInPaste)
        #expect(decoder.feed(UInt32(UInt8(ascii: "d"))) == [.key(.char("d"))])
    }

    /// Pasted text may hold an ESC or a start of the end marker; only the whole marker ends it.
    @Test func escapesInsideAPasteAreText() {
        let inner = "a\u{1B}[20b\u{1B}[2\u{1B}\u{1B}[A\u{1B}[200~c"
        #expect(KeySequenceDecoder.decode(Self.start + inner + Self.end + "q") == [.paste(inner), .key(.char("q"))])
    }

    /// The smoke test's paste (start marker, `d r t f1y`, then Enter and the end marker) in three
    /// pieces with 600 ms between them, as a busy machine or a stalled ssh link delivers it. The
    /// terminal reports each gap; a paste stays open over it, so nothing runs as a key. Before,
    /// the gap ended the paste: 'd' asked to drain, 't' switched the theme and 'f1y' injected a
    /// fault (the smoke test's header showed 'faults 1' and 'theme light' under load 14).
    @Test func aPasteInPiecesWithGapsStaysOnePaste() {
        var decoder = KeySequenceDecoder()
        var out: [KeySequenceDecoder.Decoded] = []
        func piece(_ text: String) { for code in text.unicodeScalars.map(\.value) { out += decoder.feed(code) } }
        piece(Self.start)
        out += decoder.inputPaused(quietMs: 600)
        piece("d r t f1y")
        out += decoder.inputPaused(quietMs: 600)
        // Split inside the end marker too.
        piece("\r\u{1B}[20")
        out += decoder.inputPaused(quietMs: 2_500)
        piece("1~")
        #expect(out == [.paste("d r t f1y\r")])
        #expect(!decoder.isPending)
        #expect(decoder.feed(UInt32(UInt8(ascii: "t"))) == [.key(.char("t"))])
    }

    /// A paste whose end marker never comes ends after the quiet limit, with what came, and the
    /// keys after it act again; an ESC or half sequence still ends at the first pause.
    @Test func aPasteWithoutItsEndEndsAfterTheQuietLimit() {
        var decoder = KeySequenceDecoder()
        for code in (Self.start + "rate 30").unicodeScalars.map(\.value) { #expect(decoder.feed(code).isEmpty) }
        #expect(decoder.inputPaused(quietMs: KeySequenceDecoder.pasteQuietLimitMs - 1).isEmpty)
        #expect(decoder.isInPaste)
        #expect(decoder.inputPaused(quietMs: KeySequenceDecoder.pasteQuietLimitMs) == [.paste("rate 30")])
        #expect(!decoder.isPending)
        #expect(decoder.feed(UInt32(UInt8(ascii: "q"))) == [.key(.char("q"))])
        #expect(decoder.feed(27).isEmpty)
        #expect(decoder.inputPaused(quietMs: 30) == [.key(.escape)])
        for code in "\u{1B}[4".unicodeScalars.map(\.value) { #expect(decoder.feed(code).isEmpty) }
        #expect(decoder.inputPaused(quietMs: 30) == [.dropped("^[[4")])
    }

    /// No end marker: a pause in the input (the caller's flush) ends the paste with what came;
    /// input goes on as keys after it, and a lone Esc is still Esc.
    @Test func anUnterminatedPasteEndsAtThePause() {
        var decoder = KeySequenceDecoder()
        for code in (Self.start + "drain node 0\ry").unicodeScalars.map(\.value) { #expect(decoder.feed(code).isEmpty) }
        #expect(decoder.flush() == [.paste("drain node 0\ry")])
        #expect(!decoder.isPending)
        #expect(decoder.feed(27).isEmpty)
        #expect(decoder.flush() == [.key(.escape)])
        // Cut inside the end marker: the half marker is dropped, not kept as text.
        #expect(KeySequenceDecoder.decode(Self.start + "ab\u{1B}[20") == [.paste("ab")])
    }

    /// A paste longer than the bound keeps its first 64 Ki characters and is still read to its
    /// end marker, so its tail never turns into keys.
    @Test func aHugePasteIsBoundedAndReadToItsEnd() {
        let huge = String(repeating: "d y ", count: 20_000)  // 80,000 characters
        let decoded = KeySequenceDecoder.decode(Self.start + huge + Self.end + "4")
        #expect(decoded.count == 2)
        guard case .paste(let kept) = decoded.first else {
            Issue.record("\(decoded.prefix(3))")
            return
        }
        #expect(kept.unicodeScalars.count == KeySequenceDecoder.maxPasteScalars)
        #expect(huge.hasPrefix(kept))
        #expect(decoded.last == .key(.char("4")))
    }

    /// A lone end marker (its start lost) is dropped like any unknown sequence; the other escape
    /// keys decode as before, also right after a paste.
    @Test func otherSequencesStillDecode() {
        #expect(KeySequenceDecoder.keys(Self.end + "j") == [.char("j")])
        #expect(KeySequenceDecoder.keys(Self.start + "x" + Self.end + "\u{1B}[4~\u{1B}OH\u{1B}[A") == [.end, .home, .up])
        #expect(KeySequenceDecoder.decode(Self.start + "x" + Self.end + "\u{1B}") == [.paste("x"), .key(.escape)])
        #expect(KeySequenceDecoder.keys("\u{1B}[2~\u{1B}[20~") == [])  // Insert and F9: unbound, not a paste
        #expect(KeySequenceDecoder.decode("\u{1B}[2~") == [.unbound(.insert)])
    }

    /// A paste whose end marker never comes while keys keep coming less than the quiet limit
    /// apart (an operator pressing Esc, q, Ctrl-C to get the console back): it used to swallow
    /// them all for as long as they came. It now ends ``pasteOpenLimitMs`` after it began, with
    /// what came, and the keys after it act; ``pasteOpen(forMs:)`` ends it the same way while
    /// input streams in with no pause at all.
    @Test func aPasteWithoutItsEndEndsAfterTheOpenLimitEvenWhileKeysKeepComing() {
        var decoder = KeySequenceDecoder()
        for code in (Self.start + "rate 30").unicodeScalars.map(\.value) { #expect(decoder.feed(code).isEmpty) }
        var out: [KeySequenceDecoder.Decoded] = []
        var openMs = 0
        // A key every 2 s (under the 3-s quiet limit), each followed by the terminal's pause.
        while openMs < 60_000, decoder.isInPaste {
            openMs += 2_000
            out += decoder.feed(27)
            out += decoder.inputPaused(quietMs: 2_000, pasteOpenMs: openMs)
        }
        #expect(!decoder.isInPaste, "still swallowing keys after \(openMs) ms")
        #expect(openMs <= KeySequenceDecoder.pasteOpenLimitMs + 2_000)
        #expect(out.count == 1)
        if case .paste(let text) = out.first { #expect(text.hasPrefix("rate 30")) } else { Issue.record("\(out)") }
        #expect(decoder.feed(UInt32(UInt8(ascii: "q"))) == [.key(.char("q"))])

        // Input with no pause at all: the caller asks after each character.
        var streaming = KeySequenceDecoder()
        for code in (Self.start + "d").unicodeScalars.map(\.value) { _ = streaming.feed(code) }
        #expect(streaming.pasteOpen(forMs: KeySequenceDecoder.pasteOpenLimitMs - 1).isEmpty)
        #expect(streaming.isInPaste)
        #expect(streaming.pasteOpen(forMs: KeySequenceDecoder.pasteOpenLimitMs) == [.paste("d")])
        #expect(streaming.feed(UInt32(UInt8(ascii: "q"))) == [.key(.char("q"))])
        // Only a paste: a held ESC is left for the pause to decide.
        #expect(streaming.feed(27).isEmpty)
        #expect(streaming.pasteOpen(forMs: 60_000).isEmpty && streaming.isPending)
    }

    @Test func messagesCarryThePaste() {
        #expect(KeySequenceDecoder.messages("d" + Self.start + "r t" + Self.end) == [.key(.char("d")), .paste("r t")])
    }
}
