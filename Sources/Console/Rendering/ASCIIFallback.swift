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
        // Punctuation and signs of the views' and the engine's texts.
        "·": ".", "•": "*", "…": "~", "–": "-", "—": "-", "−": "-", "‐": "-", "×": "x", "÷": "/",
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

extension CellBuffer {
    /// The same frame with every character replaced by its ``ASCIIFallback`` stand-in; styles
    /// (and so colours) are kept.
    func asciiOnly() -> CellBuffer {
        var copy = self
        for y in 0..<height {
            for x in 0..<width where !self[x, y].character.isASCII {
                copy[x, y].character = ASCIIFallback.ascii(self[x, y].character)
            }
        }
        return copy
    }
}
