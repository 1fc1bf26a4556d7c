import CNcursesw
import Glibc

/// The only ncurses user (swift-notes.md §1): turns ``CellBuffer`` frames into curses
/// calls and curses input into ``ConsoleMessage``s. Every method must be called on the
/// one thread that created it, from `init` to ``shutdown()``.
final class NcursesTerminal {
    private let window: UnsafeMutablePointer<WINDOW>
    private let screen: OpaquePointer
    let depth: ColorDepth
    private var previous: CellBuffer?
    private var pairs: [Int64: Int32] = [:]
    private var nextPair: Int32 = 1
    private var resolved: [Style: (attr: attr_t, pair: Int32)] = [:]
    private var theme: Theme?
    private var closed = false
    /// The locale cannot encode the console's glyphs (`LANG=C`): frames go out as ASCII.
    let asciiOnly: Bool
    private var decoder = KeySequenceDecoder()
    /// Keys decoded ahead (one read can complete more than one, e.g. Esc followed by a key).
    private var pending: [ConsoleMessage] = []

    /// Whether ``init(monochrome:)`` would find a terminal: stdout a tty and TERM a terminal
    /// ncurses knows, asked without taking the screen (ncurses stays in this file).
    static var isAvailable: Bool { isatty(1) == 1 && tui_terminal_known() == 1 }

    /// `nil` when there is no usable terminal (e.g. stdout is not a tty or TERM is unknown).
    init?(monochrome: Bool) {
        setlocale(LC_ALL, "")  // before newterm, or wide characters are not drawn at all
        asciiOnly = ASCIIFallback.isNeeded(codeset: String(cString: nl_langinfo(nl_item(CODESET))))
        // Escape should close a prompt at once, not after ncurses' default 1 s wait.
        set_escdelay(25)
        // newterm (unlike initscr) returns nil instead of exiting when there is no terminal.
        // Swift 6 rejects the C globals stdout/stdin, so open our own streams on fds 1 and 0.
        guard isatty(1) == 1, let output = fdopen(1, "w"), let input = fdopen(0, "r"),
            let screen = newterm(nil, output, input)
        else { return nil }
        self.screen = screen
        guard let window = tui_stdscr() else {
            endwin()
            delscreen(screen)
            return nil
        }
        self.window = window
        raw()  // Ctrl-C arrives as key 3 and quits through our own path (swift-notes.md 1.3.6)
        noecho()
        keypad(window, true)
        curs_set(0)
        mousemask(tui_all_mouse_events(), nil)
        mouseinterval(0)
        Self.bracketedPaste(true)
        if !monochrome, has_colors() {
            start_color()
            use_default_colors()
            depth = tui_colors() >= 256 ? .colors256 : .colors8
        } else {
            depth = .monochrome
        }
    }

    var size: (width: Int, height: Int) { (Int(getmaxx(window)), Int(getmaxy(window))) }

    /// Bracketed paste mode: the terminal wraps pasted text in `ESC [ 200 ~ … ESC [ 201 ~`, so a
    /// paste arrives as one ``ConsoleMessage/paste(_:)`` instead of a run of hotkeys. ncurses
    /// does not know the mode, so it is switched here, straight on fd 1 (ncurses has flushed
    /// its own output by then: it writes only in `doupdate`/`endwin`), on at start and after a
    /// suspend, off on every way out (``shutdown()``, ``suspend()``, the forced exit of
    /// ``ConsoleApp``). `write` is async-signal-safe; terminals without the mode ignore it.
    static func bracketedPaste(_ on: Bool) {
        let sequence: StaticString = on ? "\u{1B}[?2004h" : "\u{1B}[?2004l"
        _ = Glibc.write(1, sequence.utf8Start, sequence.utf8CodeUnitCount)
    }

    /// The last resort of ``ConsoleApp`` when the UI thread is stuck outside curses and a signal
    /// asked to quit: paste mode off and curses modes restored from the calling thread (the
    /// process exits right after). Here, so that ncurses is called from this file only.
    static func restoreFromAnotherThread() {
        bracketedPaste(false)
        endwin()
    }

    /// Waits up to `timeoutMs` for one input; `nil` on timeout (or when all that came was a
    /// sequence the console has no key for, which is dropped).
    func read(timeoutMs: Int32) -> ConsoleMessage? {
        if !pending.isEmpty { return pending.removeFirst() }
        var waitMs = timeoutMs
        var reads = 0
        while true {
            // After an ESC the rest of a sequence is normally already buffered; the wait only
            // decides how soon a lone Esc counts (ncurses already waited ESCDELAY for it).
            let wait = decoder.isInPaste ? Self.pasteWaitMs : decoder.isPending ? Self.sequenceWaitMs : waitMs
            wtimeout(window, wait)
            var ch: wint_t = 0
            let result = wget_wch(window, &ch)
            reads += 1
            if result == OK || result == KEY_CODE_YES { lastInputMs = Self.monotonicMs() }
            let wasInPaste = decoder.isInPaste
            switch result {
            case OK:
                queue(decoder.feed(UInt32(ch)))
            case KEY_CODE_YES where decoder.isInPaste:
                // ncurses matched a key sequence inside the pasted text (a pasted ESC [ A, say):
                // it is part of the paste, not a key. A resize still counts.
                if Int32(ch) == KEY_RESIZE, let message = decodeFunctionKey(KEY_RESIZE) { pending.append(message) }
            case KEY_CODE_YES:
                queue(decoder.flush())
                if let message = decodeFunctionKey(Int32(ch)) { pending.append(message) }
            default:  // nothing more within the wait
                // A paste stays open over the pause (see ``KeySequenceDecoder/pasteQuietLimitMs``);
                // meanwhile the loop draws, and the next read goes on with the paste.
                let now = Self.monotonicMs()
                queue(decoder.inputPaused(quietMs: now - lastInputMs, pasteOpenMs: now - pasteStartMs))
                return pending.isEmpty ? nil : pending.removeFirst()
            }
            // A paste ends after ``KeySequenceDecoder/pasteOpenLimitMs`` in all, even while
            // characters keep coming (its end marker lost, the operator pressing keys).
            if !wasInPaste, decoder.isInPaste { pasteStartMs = lastInputMs }
            if decoder.isInPaste { queue(decoder.pasteOpen(forMs: Self.monotonicMs() - pasteStartMs)) }
            if !decoder.isPending, !pending.isEmpty { return pending.removeFirst() }
            // A long paste: let the loop draw and look at signals now and then; the decoder
            // keeps its place and the next read goes on with the paste.
            if decoder.isInPaste, reads >= Self.maxReadsPerCall {
                return pending.isEmpty ? nil : pending.removeFirst()
            }
            // A dropped sequence: keep reading, but don't wait again for new input.
            if !decoder.isPending { waitMs = 0 }
        }
    }

    /// How long a held ESC or half sequence waits for its next byte.
    private static let sequenceWaitMs: Int32 = 30
    /// How long one read inside a paste waits for its next byte before the loop gets to draw;
    /// the paste itself stays open much longer (``KeySequenceDecoder/pasteQuietLimitMs``).
    private static let pasteWaitMs: Int32 = 100
    /// When the last character came (for how long a held paste has been quiet).
    private var lastInputMs = 0
    /// When the paste being read began (its start marker came).
    private var pasteStartMs = 0

    private static func monotonicMs() -> Int {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return t.tv_sec * 1000 + t.tv_nsec / 1_000_000
    }
    private static let maxReadsPerCall = 8_192

    private func queue(_ decoded: [KeySequenceDecoder.Decoded]) {
        pending += decoded.compactMap(\.message)
    }

    private func decodeFunctionKey(_ code: Int32) -> ConsoleMessage? {
        switch code {
        case KEY_UP: return .key(.up)
        case KEY_DOWN: return .key(.down)
        case KEY_LEFT: return .key(.left)
        case KEY_RIGHT: return .key(.right)
        case KEY_PPAGE: return .key(.pageUp)
        case KEY_NPAGE: return .key(.pageDown)
        case KEY_HOME: return .key(.home)
        case KEY_END: return .key(.end)
        // vt220 Find/Select and the keypad corners: where terminfo names Home/End that way.
        case KEY_FIND, KEY_A1: return .key(.home)
        case KEY_SELECT, KEY_C1: return .key(.end)
        case KEY_A3: return .key(.pageUp)
        case KEY_C3: return .key(.pageDown)
        case KEY_ENTER: return .key(.enter)
        case KEY_BACKSPACE: return .key(.backspace)
        case KEY_RESIZE:
            previous = nil
            let (w, h) = size
            return .resize(width: w, height: h)
        case KEY_MOUSE:
            var event = MEVENT()
            guard getmouse(&event) == OK else { return nil }
            let x = Int(event.x), y = Int(event.y)
            if event.bstate & (tui_button1_pressed() | tui_button1_clicked()) != 0 {
                return .mouse(.click(x: x, y: y))
            }
            if event.bstate & tui_button4_pressed() != 0 { return .mouse(.wheelUp(x: x, y: y)) }
            if event.bstate & tui_button5_pressed() != 0 { return .mouse(.wheelDown(x: x, y: y)) }
            return nil
        default:
            // xterm's modified keys (Ctrl-End = kEND5, …) as their plain key; others dropped.
            guard code > KEY_MAX, let name = keyname(code) else { return nil }
            return KeySequenceDecoder.modifiedKey(named: String(cString: name)).map { .key($0) }
        }
    }

    /// Draws the cells that changed since the last frame (all of them after a resize or a
    /// theme change), then updates the physical screen once.
    func present(_ frame: CellBuffer, theme: Theme) {
        if self.theme != theme {
            self.theme = theme
            resolved.removeAll(keepingCapacity: true)
            previous = nil
        }
        if previous == nil { werase(window) }
        let frame = asciiOnly ? frame.asciiOnly() : frame
        for run in frame.diff(from: previous) {
            for (i, cell) in run.cells.enumerated() {
                let (attr, pair) = curses(cell.style, theme)
                let code = cell.character.unicodeScalars.first?.value ?? 32
                _ = tui_put_wch(window, Int32(run.y), Int32(run.x + i), wchar_t(bitPattern: code), attr, pair)
            }
        }
        previous = frame
        wnoutrefresh(window)
        doupdate()
    }

    private func curses(_ style: Style, _ theme: Theme) -> (attr: attr_t, pair: Int32) {
        if let hit = resolved[style] { return hit }
        let r = theme.resolve(style, depth: depth)
        var attr = tui_a_normal()
        if r.attributes.bold { attr |= tui_a_bold() }
        if r.attributes.dim { attr |= tui_a_dim() }
        if r.attributes.reverse { attr |= tui_a_reverse() }
        if r.attributes.underline { attr |= tui_a_underline() }
        let value = (attr, depth == .monochrome ? 0 : pair(fg: r.fg, bg: r.bg))
        resolved[style] = value
        return value
    }

    /// Extended colour pairs are allocated on first use; when the terminal runs out,
    /// cells fall back to the default pair rather than failing.
    private func pair(fg: Int, bg: Int) -> Int32 {
        if fg < 0 && bg < 0 { return 0 }
        let key = Int64(fg) << 32 | Int64(UInt32(bitPattern: Int32(bg)))
        if let p = pairs[key] { return p }
        guard nextPair < tui_color_pairs() else { return 0 }
        let p = nextPair
        nextPair += 1
        init_extended_pair(p, Int32(fg), Int32(bg))
        pairs[key] = p
        return p
    }

    /// Gives the terminal back for a stop (SIGTSTP): paste mode off, curses modes restored.
    func suspend() {
        guard !closed else { return }
        Self.bracketedPaste(false)
        endwin()
    }

    /// After a stop: curses modes and paste mode back, the whole screen redrawn.
    func resume() {
        guard !closed else { return }
        Self.bracketedPaste(true)
        previous = nil
        refresh()
        let (w, h) = size  // the window may have been resized meanwhile
        pending.append(.resize(width: w, height: h))
    }

    /// Restores the terminal; safe to call more than once.
    func shutdown() {
        guard !closed else { return }
        closed = true
        Self.bracketedPaste(false)
        endwin()
        delscreen(screen)
    }

    deinit { shutdown() }
}
