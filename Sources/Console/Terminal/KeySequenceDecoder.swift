/// Turns the characters the terminal delivers into console keys, including the escape
/// sequences ncurses did not recognise.
///
/// ncurses only knows the sequences of the terminfo entry named by `TERM`. Inside tmux with
/// `TERM=xterm-256color` the End key arrives as `ESC [ 4 ~` while the entry says `ESC O F`;
/// ncurses then hands the bytes over one by one and the "4" would switch to view 4. So every
/// ESC is held here until it is known to be a lone Esc (nothing followed in time) or the start
/// of a CSI (`ESC [`) or SS3 (`ESC O`) sequence; a complete sequence becomes a key if it is one
/// of the common Home/End/PgUp/PgDn/Insert/Delete/arrow/F-key variants and is dropped otherwise.
/// The bytes of a sequence never reach the console as ordinary keys.
///
/// Bracketed paste (the console turns it on with `ESC [ ? 2004 h`): the terminal wraps pasted
/// text in `ESC [ 200 ~ … ESC [ 201 ~`. Everything between the brackets is one ``Decoded/paste(_:)``,
/// never keys, so a pasted `d`, space or `f1y` cannot drain, pause or inject a fault. At most
/// ``maxPasteScalars`` characters are kept (the rest is consumed and dropped). A pause inside a
/// paste does not end it (the caller's ``inputPaused(quietMs:pasteOpenMs:)``): a paste that comes
/// in pieces (a slow or lossy link, a busy machine) stays one paste until its end marker, and
/// only one whose end marker never comes ends, after ``pasteQuietLimitMs`` of silence or
/// ``pasteOpenLimitMs`` in all (``pasteOpen(forMs:)``).
///
/// Pure (no ncurses): ``NcursesTerminal`` feeds it and tells it when input paused.
struct KeySequenceDecoder {
    /// What one piece of input means.
    enum Decoded: Equatable {
        /// A key the console acts on.
        case key(Key)
        /// A key recognised but without a console meaning (``Key`` has no such case): dropped,
        /// exactly as when ncurses itself reports it.
        case unbound(UnboundKey)
        /// An unrecognised or cut-off sequence, spelled out (ESC as `^[`): dropped.
        case dropped(String)
        /// Text the terminal delivered between the bracketed-paste markers, raw (newlines and
        /// control characters included; the console decides what to keep).
        case paste(String)

        /// What the console receives (nothing for unbound keys and dropped sequences).
        var message: ConsoleMessage? {
            switch self {
            case .key(let key): .key(key)
            case .paste(let text): .paste(text)
            case .unbound, .dropped: nil
            }
        }
    }

    enum UnboundKey: Equatable {
        case insert, delete, begin, backTab
        case function(Int)
    }

    private enum State: Equatable {
        case ground
        case escape  // an ESC, waiting to see what follows
        case csi(params: String, intermediates: String)  // ESC [ …
        case ss3(params: String)  // ESC O …
        case linuxFunction  // ESC [ [ (Linux console F1–F5)
        /// Inside a bracketed paste; `matched` bytes of the end marker seen so far.
        case paste(matched: Int)
    }

    private var state: State = .ground
    /// The paste being read (kept outside `state` so appending does not copy it every byte).
    private var pasted = String.UnicodeScalarView()
    private var pastedCount = 0  // pasted.count is not O(1)
    /// Parameter bytes kept per sequence; a longer run is still consumed to its final byte.
    private static let maxParams = 32
    /// Characters of one paste kept (64 Ki); a longer paste is still read to its end marker.
    static let maxPasteScalars = 65_536
    /// `ESC [ 2 0 1 ~`: the end of a bracketed paste.
    private static let pasteEnd: [UInt32] = [27, 0x5B, 0x32, 0x30, 0x31, 0x7E]

    /// True while an ESC, an unfinished sequence or a paste is held: the caller should read on
    /// (with a short wait; longer inside a paste, see ``isInPaste``) and call ``flush()`` when
    /// nothing more comes.
    var isPending: Bool { state != .ground }

    /// Inside a bracketed paste: keys ncurses decodes now are part of the pasted text.
    var isInPaste: Bool { if case .paste = state { true } else { false } }

    /// The whole input at once, then a pause: what a test (or a burst) decodes to.
    static func decode<S: Sequence>(_ codes: S) -> [Decoded] where S.Element == UInt32 {
        var decoder = KeySequenceDecoder()
        var out = codes.flatMap { decoder.feed($0) }
        out += decoder.flush()
        return out
    }

    static func decode(_ text: String) -> [Decoded] { decode(text.unicodeScalars.map(\.value)) }

    /// Everything that reaches the console, keys and pastes.
    static func messages(_ text: String) -> [ConsoleMessage] { decode(text).compactMap(\.message) }

    /// Only what reaches the console.
    static func keys(_ text: String) -> [Key] {
        decode(text).compactMap { if case .key(let k) = $0 { k } else { nil } }
    }

    /// One character (Unicode scalar value) as read from the terminal.
    mutating func feed(_ code: UInt32) -> [Decoded] {
        switch state {
        case .paste(let matched):
            return feedPaste(code, matched: matched)
        case .ground:
            if code == 27 {
                state = .escape
                return []
            }
            return Self.plain(code).map { [$0] } ?? []
        case .escape:
            switch code {
            case 0x5B:  // [
                state = .csi(params: "", intermediates: "")
                return []
            case 0x4F:  // O
                state = .ss3(params: "")
                return []
            case 27:  // Esc Esc: the first one was a lone Esc
                return [.key(.escape)]
            default:
                // Esc then an ordinary key in quick succession (or Alt+key): both as typed.
                state = .ground
                return [.key(.escape)] + feed(code)
            }
        case .csi(let params, let intermediates):
            switch code {
            case 0x30...0x3F:
                state = .csi(params: Self.append(params, code), intermediates: intermediates)
                return []
            case 0x24 where intermediates.isEmpty && !params.isEmpty && params.allSatisfy(Self.isDigit):
                // rxvt ends shifted editing keys with '$' (ESC [ 7 $ = Shift-Home), which
                // ECMA-48 would read as an intermediate still waiting for its final byte.
                state = .ground
                return [Self.tilde(params: params, raw: "^[[" + params + "$")]
            case 0x20...0x2F:
                state = .csi(params: params, intermediates: Self.append(intermediates, code))
                return []
            case 0x5B where params.isEmpty && intermediates.isEmpty:
                state = .linuxFunction
                return []
            case 0x7E where params == "200" && intermediates.isEmpty:
                state = .paste(matched: 0)
                pasted = String.UnicodeScalarView()
                pastedCount = 0
                return []
            case 0x40...0x7E:
                state = .ground
                return [Self.csi(params: params, intermediates: intermediates, final: code)]
            default:
                return abandon(code, raw: "^[[" + params + intermediates)
            }
        case .ss3(let params):
            switch code {
            case 0x30...0x3F:
                state = .ss3(params: Self.append(params, code))
                return []
            case 0x40...0x7E:
                state = .ground
                return [Self.ss3(params: params, final: code)]
            default:
                return abandon(code, raw: "^[O" + params)
            }
        case .linuxFunction:
            switch code {
            case 0x41...0x45:  // A–E
                state = .ground
                return [.unbound(.function(Int(code) - 0x40))]
            case 0x40...0x7E:
                state = .ground
                return [.dropped("^[[[" + Self.text(code))]
            default:
                return abandon(code, raw: "^[[[")
            }
        }
    }

    /// How long a paste may go quiet before it counts as ended without its end marker. A
    /// terminal always sends the end marker, but the pieces of a paste can be far apart: over
    /// ssh a lost packet stalls the rest for TCP's retransmission timeout (200 ms to seconds),
    /// and on a loaded machine the pty refills late. With the 500 ms this used to be, the rest
    /// of a paste that stalled longer ran as hotkeys: a pasted `d r t f1y` switched the theme
    /// and injected a fault. Keys typed while a paste is held are part of it (ignored), so the
    /// limit stays a few seconds: only a terminal that never sends the end marker meets it.
    static let pasteQuietLimitMs = 3_000

    /// How long a paste may stay open in all, however closely its characters come. The quiet
    /// limit alone never ended a paste whose end marker was lost while keys kept coming less
    /// than ``pasteQuietLimitMs`` apart: every key an operator pressed to get the console back
    /// (Esc, q, Ctrl-C) was pasted text and restarted the wait, so the console looked frozen for
    /// as long as they tried. A real paste of the ``maxPasteScalars`` kept takes well under a
    /// second, even over ssh; after this limit what came is the paste and keys act again.
    static let pasteOpenLimitMs = 10_000

    /// No input came for `quietMs` (since the last character): a held ESC or half sequence
    /// ends (``flush()``), but a paste goes on until its end marker, ``pasteQuietLimitMs`` of
    /// quiet or ``pasteOpenLimitMs`` since it began (`pasteOpenMs`).
    mutating func inputPaused(quietMs: Int, pasteOpenMs: Int = 0) -> [Decoded] {
        if isInPaste, quietMs < Self.pasteQuietLimitMs, pasteOpenMs < Self.pasteOpenLimitMs { return [] }
        return flush()
    }

    /// A paste open for `openMs` (since its start marker), while input still comes: past
    /// ``pasteOpenLimitMs`` it ends with what came; anything else held is left alone.
    mutating func pasteOpen(forMs openMs: Int) -> [Decoded] {
        guard isInPaste, openMs >= Self.pasteOpenLimitMs else { return [] }
        return flush()
    }

    /// Input paused (the short wait ran out) or ncurses reported a key of its own: a held
    /// ESC is a lone Esc, a half sequence is dropped.
    mutating func flush() -> [Decoded] {
        defer { state = .ground }
        switch state {
        case .paste:
            // No end marker in time: what came is the paste (a cut-off end marker is dropped).
            return [endPaste()]
        case .ground: return []
        case .escape: return [.key(.escape)]
        case .csi(let params, let intermediates): return [.dropped("^[[" + params + intermediates)]
        case .ss3(let params): return [.dropped("^[O" + params)]
        case .linuxFunction: return [.dropped("^[[[")]
        }
    }

    /// One character inside a paste: text, unless it continues the end marker. A marker that
    /// breaks off was text after all (pasted text may hold an ESC or "ESC [ 2").
    private mutating func feedPaste(_ code: UInt32, matched: Int) -> [Decoded] {
        if code == Self.pasteEnd[matched] {
            if matched + 1 == Self.pasteEnd.count {
                state = .ground
                return [endPaste()]
            }
            state = .paste(matched: matched + 1)
            return []
        }
        for byte in Self.pasteEnd[..<matched] { keepPasted(byte) }
        if code == Self.pasteEnd[0] {
            state = .paste(matched: 1)
        } else {
            keepPasted(code)
            state = .paste(matched: 0)
        }
        return []
    }

    private mutating func keepPasted(_ code: UInt32) {
        guard pastedCount < Self.maxPasteScalars, let scalar = Unicode.Scalar(code) else { return }
        pasted.append(scalar)
        pastedCount += 1
    }

    private mutating func endPaste() -> Decoded {
        defer {
            pasted = String.UnicodeScalarView()
            pastedCount = 0
        }
        return .paste(String(pasted))
    }

    /// A byte that cannot continue the sequence (a control character, say Ctrl-C, or
    /// non-ASCII): the half sequence is dropped and the byte counts on its own.
    private mutating func abandon(_ code: UInt32, raw: String) -> [Decoded] {
        state = .ground
        return [.dropped(raw)] + feed(code)
    }

    /// An ordinary character (what ncurses' own decoding of single characters used to do).
    static func plain(_ code: UInt32) -> Decoded? {
        switch code {
        case 3: return .key(Key.controlC)
        case 9: return .key(.tab)
        case 10, 13: return .key(.enter)
        case 27: return .key(.escape)
        case 8, 127: return .key(.backspace)
        default:
            guard let scalar = Unicode.Scalar(code) else { return nil }
            return .key(.char(Character(scalar)))
        }
    }

    /// A complete CSI sequence. Modifiers (`;5` = Ctrl, …) are ignored: Ctrl-End is End.
    private static func csi(params: String, intermediates: String, final: UInt32) -> Decoded {
        let raw = "^[[" + params + intermediates + text(final)
        // Private markers (< = > ?) are reports (SGR mouse, focus, mode answers), not keys.
        guard intermediates.isEmpty, params.allSatisfy({ isDigit($0) || $0 == ";" }) else {
            return .dropped(raw)
        }
        switch final {
        case 0x7E, 0x5E, 0x40:  // ~ (vt220/xterm), ^ and @ (rxvt Ctrl, Ctrl-Shift)
            return tilde(params: params, raw: raw)
        default:
            // Letter keys carry no number or 1 (ESC [ 1 ; 5 H = Ctrl-Home); anything else with
            // such a final byte is a report (ESC [ 24 ; 80 R is a cursor position, not F3).
            let fields = params.split(separator: ";", omittingEmptySubsequences: false)
            guard params.isEmpty || fields[0] == "1" || (fields[0].isEmpty && fields.count > 1) else {
                return .dropped(raw)
            }
            return letter(final) ?? .dropped(raw)
        }
    }

    /// A complete SS3 sequence (application cursor and keypad keys; ESC O 5 H from old xterms).
    private static func ss3(params: String, final: UInt32) -> Decoded {
        if let key = letter(final) { return key }
        switch final {
        case 0x4D: return .key(.enter)  // keypad Enter
        case 0x58: return .key(.char("="))  // keypad =
        case 0x6A...0x79:  // keypad * + , - . / 0–9 in application keypad mode
            let keypad = Array("*+,-./0123456789")
            return .key(.char(keypad[Int(final) - 0x6A]))
        default: return .dropped("^[O" + params + text(final))
        }
    }

    /// Final letters shared by CSI and SS3.
    private static func letter(_ final: UInt32) -> Decoded? {
        switch final {
        case 0x41: .key(.up)  // A
        case 0x42: .key(.down)  // B
        case 0x43: .key(.right)  // C
        case 0x44: .key(.left)  // D
        case 0x48: .key(.home)  // H
        case 0x46: .key(.end)  // F
        case 0x45: .unbound(.begin)  // E: keypad 5
        case 0x50...0x53: .unbound(.function(Int(final) - 0x4F))  // P–S: F1–F4
        case 0x5A: .unbound(.backTab)  // Z: Shift-Tab
        default: nil
        }
    }

    /// `ESC [ n ~` and the rxvt `^ @ $` endings: the number names the key.
    private static func tilde(params: String, raw: String) -> Decoded {
        let number = params.split(separator: ";", omittingEmptySubsequences: false).first.flatMap { Int($0) }
        switch number {
        case 1, 7: return .key(.home)  // 1: vt220 Find / xterm Home; 7: rxvt
        case 4, 8: return .key(.end)  // 4: vt220 Select / tmux End; 8: rxvt
        case 5: return .key(.pageUp)
        case 6: return .key(.pageDown)
        case 2: return .unbound(.insert)
        case 3: return .unbound(.delete)
        case .some(let n):
            // F1–F20 as xterm/vt220/rxvt number them (gaps at 16, 22, 27, 30).
            let functionKeys = [11, 12, 13, 14, 15, 17, 18, 19, 20, 21, 23, 24, 25, 26, 28, 29, 31, 32, 33, 34]
            if let i = functionKeys.firstIndex(of: n) { return .unbound(.function(i + 1)) }
            return .dropped(raw)
        case nil:
            return .dropped(raw)
        }
    }

    /// Past ``maxParams`` a "…" marks the run as overlong, so it can no longer read as a key.
    private static func append(_ s: String, _ code: UInt32) -> String {
        if s.count < maxParams { return s + text(code) }
        return s.hasSuffix("…") ? s : s + "…"
    }

    private static func isDigit(_ c: Character) -> Bool { ("0"..."9").contains(c) }

    private static func text(_ code: UInt32) -> String {
        Unicode.Scalar(code).map { String(Character($0)) } ?? "?"
    }
}

extension KeySequenceDecoder {
    /// Keys that ncurses decoded itself beyond the plain ones: the vt220 Find/Select keys and
    /// the keypad corners sit where Home/End/PgUp/PgDn are; the xterm modified variants
    /// (`kHOM5` = Ctrl-Home, `kEND3`, `kUP5`, …) are named by ``keyname``-style strings and
    /// mean their unmodified key, as the decoder treats `ESC [ 1 ; 5 H`.
    static func modifiedKey(named name: String) -> Key? {
        let bases: [(String, Key)] = [
            ("kHOM", .home), ("kEND", .end), ("kPRV", .pageUp), ("kNXT", .pageDown),
            ("kUP", .up), ("kDN", .down), ("kLFT", .left), ("kRIT", .right),
        ]
        for (prefix, key) in bases where name.hasPrefix(prefix) {
            let modifier = name.dropFirst(prefix.count)
            if !modifier.isEmpty, modifier.allSatisfy(isDigit) { return key }
        }
        return nil
    }
}
