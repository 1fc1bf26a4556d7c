import Foundation

/// Plain-ASCII stand-ins for the console's glyphs, for terminals whose locale is not UTF-8
/// (`LANG=C`, `LC_ALL=POSIX`, a Latin-1 locale).
///
/// ncurses in such a locale cannot encode box drawing, blocks, arrows, `·` or `×`: it wrote
/// nothing for them (or the wrong bytes), so boxes vanished, bars and sparklines were blank and
/// the rest of a line shifted left. Each glyph maps to exactly one ASCII character, so columns
/// stay where the views put them; glyphs that carry a state keep distinct stand-ins
/// (`X` dead, `v` slow, `#` HBM, `!` link, `/` drained, `~` draining) and the eight sparkline
/// levels stay in order (`. : - = + * % #`). A legend's colour swatch `■` is `o`: as `#` the
/// Pod legend's four load swatches were the HBM fault's glyph, and the KV legend's the strip's
/// 100% level.
///
/// ```swift
/// let frame = ConsoleScreen.render(state, snapshot, theme: theme, width: 80, height: 24)
/// let shown = ASCIIFallback.isNeeded(codeset: "ANSI_X3.4-1968") ? frame.asciiOnly() : frame
/// ```
enum ASCIIFallback {
    /// Whether a locale codeset (`nl_langinfo(CODESET)`) cannot show the console's glyphs.
    static func isNeeded(codeset: String) -> Bool {
        let name = codeset.uppercased().filter { $0.isLetter || $0.isNumber }
        return name != "UTF8"
    }

    static let table: [Character: Character] = [
        // Boxes and rules.
        "─": "-", "━": "-", "│": "|", "┃": "|", "┌": "+", "┐": "+", "└": "+", "┘": "+",
        "├": "+", "┤": "+", "┬": "+", "┴": "+", "┼": "+", "═": "=", "║": "|",
        // Sparkline levels, low to high (█ is also a full bar cell and the prompt's cursor).
        "▁": ".", "▂": ":", "▃": "-", "▄": "=", "▅": "+", "▆": "*", "▇": "%", "█": "#",
        // A bar's partial last cell, the heat map's half block, shades, swatches.
        "▏": "|", "▎": "|", "▍": "|", "▌": "|", "▋": "|", "▊": "|", "▉": "|", "▕": "|",
        "▀": "\"", "░": ".", "▒": ":", "▓": "*", "■": "o",
        // Markers and arrows.
        "▲": "^", "▼": "v", "▶": ">", "◀": "<", "►": ">", "△": "^", "▽": "v",
        "↑": "^", "↓": "v", "←": "<", "→": ">", "↔": "-", "⏎": "<", "⏸": "=", "␣": "_",
        // NPU states (↓ slow is above): ≠ link down, ⊘ drained.
        "≠": "!", "⊘": "/",
        // A latency bar over the SLO, without colour; a trend's interval without a sample,
        // apart from the lowest sparkline level (`.`).
        "╳": "x", "⋅": "_",
        // Punctuation and signs of the views' and the engine's texts.
        "·": ".", "•": "*", "…": ".", "–": "-", "—": "-", "−": "-", "‐": "-", "×": "x", "÷": "/",
        "±": "+", "≈": "~", "≤": "<", "≥": ">", "µ": "u", "°": "o", "²": "2", "³": "3", "¹": "1",
        "⁰": "0", "“": "\"", "”": "\"", "‘": "'", "’": "'", "§": "S", "π": "p",
        // Status marks.
        "⚠": "!", "✓": "+", "✗": "!",
    ]

    /// The ASCII stand-in of one cell's character: itself when ASCII, the table's, the base
    /// letter of an accented one (é → e), else `?`.
    static func ascii(_ ch: Character) -> Character {
        if ch.isASCII { return ch }
        if let mapped = table[ch] { return mapped }
        if let base = String(ch).decomposedStringWithCanonicalMapping.unicodeScalars.first,
            base.isASCII, base.properties.isAlphabetic
        {
            return Character(base)
        }
        return "?"
    }
}

extension ASCIIFallback {
    /// Signs whose one-character stand-in says something else: `≥90% crit` read `>90% crit`,
    /// `imbalance 1.81 → 1.22` read `1.81 > 1.22` (a comparison), `±50%` read `+50%`. They take
    /// the cells they need where the line has room (``CellBuffer/asciiOnly()``).
    static let spelled: [Character: String] = [
        "≥": ">=", "≤": "<=", "±": "+/-", "→": "->", "←": "<-", "↔": "<->",
        // `~` (its stand-in before) is the draining NPU's glyph: a cut name read as draining,
        // and a range `0.1…100` as `0.1~100`.
        "…": "..",
    ]

    /// Arrows whose stand-in says something else before what follows them: the Latency view's
    /// tallest bar `↑952 of n 2592` read `^952`, the `^` of its SLO marker `▲ SLO` (an SLO
    /// count?), and the Pod legend's slow NPU `↓slow` read as a word, `vslow`. Written out
    /// (`max 952`, `v slow`) where the line has room, else `#952` and `v`. Only before those
    /// words: in the Pod grid a slow NPU's `↓` sits right before its neighbour's glyph.
    static func spelled(_ ch: Character, before rest: some Collection<Character>) -> (long: String, short: Character)? {
        switch ch {
        case "↑" where rest.first?.isNumber == true: return ("max ", "#")
        case "↓" where rest.starts(with: "slow"): return ("v ", "v")
        default: return nil
        }
    }

    /// Cells a line can give up without losing anything: a space before another space (or the
    /// line's end), one cell of a run of the same rule character (a box's top edge).
    static func isSpare(_ row: [Cell], _ j: Int) -> Bool {
        let c = row[j].character
        if c == " " { return j + 1 == row.count || row[j + 1].character == " " }
        return "─━═".contains(c) && j + 1 < row.count && row[j + 1].character == c
    }

    /// A panel's side: text never moves across it.
    static func isWall(_ c: Character) -> Bool { "│┃║┌┐└┘├┤┬┴┼".contains(c) }

    /// Inserts `cell` at `p`, taking the room from the first spare cell right of `p` before the
    /// next wall (the cells between move right by one); false, and `row` unchanged, if there is none.
    static func insert(_ cell: Cell, at p: Int, in row: inout [Cell]) -> Bool {
        guard p < row.count else { return false }
        var j = p
        while j < row.count, !isWall(row[j].character) {
            if isSpare(row, j) {
                row.remove(at: j)
                row.insert(cell, at: p)
                return true
            }
            j += 1
        }
        return false
    }
}

extension CellBuffer {
    /// The same frame with every character replaced by its ``ASCIIFallback`` stand-in; styles
    /// (and so colours) are kept. A sign of ``ASCIIFallback/spelled`` is written out (`>=`),
    /// the rest of its text moving right into the nearest spare blank of its panel; with no
    /// room to the right, a blank beside it is used (`1.81 ->1.22`), else a spare cell to its
    /// left (a title's rule) with the text between moving left; only where none is
    /// there does it get its one-character stand-in. An ellipsis `…` that ends a cut text at
    /// its line's or panel's edge is `..` all the same, over the text's last character.
    func asciiOnly() -> CellBuffer {
        var copy = self
        for y in 0..<height {
            let original = (0..<width).map { self[$0, y] }
            var row = original
            // Whether a sign was written out on this row yet (cells then no longer sit where
            // they were in `original`).
            var moved = false
            var x = 0
            while x < row.count {
                let cell = row[x]
                guard !cell.character.isASCII else { x += 1; continue }
                row[x].character = ASCIIFallback.ascii(cell.character)
                if let (long, short) = ASCIIFallback.spelled(cell.character, before: row[(x + 1)...].lazy.map(\.character)) {
                    var trial = row
                    trial[x].character = long.first ?? short
                    var done = true
                    for (k, ch) in long.enumerated().dropFirst() {
                        var c = cell
                        c.character = ch
                        if !ASCIIFallback.insert(c, at: x + k, in: &trial) { done = false; break }
                    }
                    if done { row = trial; moved = true; x += long.count } else { row[x].character = short; x += 1 }
                    continue
                }
                guard let long = ASCIIFallback.spelled[cell.character].map(Array.init) else { x += 1; continue }
                var trial = row
                trial[x].character = long[0]
                var done = true
                for (k, ch) in long.enumerated().dropFirst() {
                    var c = cell
                    c.character = ch
                    if !ASCIIFallback.insert(c, at: x + k, in: &trial) { done = false; break }
                }
                if done {
                    row = trial
                    moved = true
                    x += long.count
                    continue
                }
                if long.count == 2, x + 1 < row.count, row[x + 1].character == " " {
                    row[x].character = long[0]
                    row[x + 1] = cell
                    row[x + 1].character = long[1]
                    moved = true
                    x += 2
                    continue
                }
                // A spare cell to the left (a title's rule, two blanks) within the panel: the
                // text between moves left by one (`── height ▁0…█100%` → `- height .0..#100%`).
                if long.count == 2, !moved, x > 0, row[x - 1].character != " ",
                   let j = (0..<x).reversed().prefix(while: { !ASCIIFallback.isWall(original[$0].character) })
                       .first(where: { ASCIIFallback.isSpare(original, $0) }) {
                    row.remove(at: j)
                    row[x - 1].character = long[0]
                    var second = cell
                    second.character = long[1]
                    row.insert(second, at: x)
                    moved = true
                    x += 1
                    continue
                }
                // An ellipsis at the end of its line or panel ends a cut text: it may take that
                // text's last character.
                let endsCutText = cell.character == "…" && (x + 1 == row.count || ASCIIFallback.isWall(row[x + 1].character))
                if long.count == 2, x > 0,
                   row[x - 1].character == " " || endsCutText && !ASCIIFallback.isWall(row[x - 1].character) {
                    row[x - 1] = cell
                    row[x - 1].character = long[0]
                    row[x].character = long[1]
                }
                x += 1
            }
            for x in 0..<width {
                var c = row[x]
                if !c.character.isASCII { c.character = ASCIIFallback.ascii(c.character) }
                copy[x, y] = c
            }
        }
        return copy
    }
}
