/// Echoes user input inside one-line error messages: control characters (C0, DEL, C1, and
/// the Unicode line and paragraph separators) become visible `\u{…}` escapes so they never
/// reach a terminal raw or split a message over lines, and long input is cut with "…".
///
/// ```swift
/// InputEcho.quoted("a\u{1B}[2Jb")          // "'a\u{1B}[2Jb'" with the escape spelled out
/// InputEcho.quoted(String(repeating: "9", count: 500)).count   // ≤ 64
/// ```
public enum InputEcho {
    /// Characters of input shown before the cut.
    public static let maxEchoCharacters = 48

    /// `text` made safe for a one-line message, without quotes.
    public static func clean(_ text: some StringProtocol, limit: Int = maxEchoCharacters) -> String {
        var out = ""
        var count = 0
        for scalar in text.unicodeScalars {
            if count >= limit {
                out += "…"
                break
            }
            count += 1
            let v = scalar.value
            if scalar.isTerminalControl || Self.isInvisible(scalar) {
                out += "\\u{" + String(v, radix: 16, uppercase: true) + "}"
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    /// Characters that draw nothing (zero-width spaces and joiners, direction marks, the
    /// word joiner, the byte-order mark, the soft hyphen): pasted in with a value, they made
    /// `--je-routing 'round-robin<U+FEFF>'` read "unknown JE routing policy 'round-robin';
    /// expected one of: …, round-robin", the one difference unseen. Echoed as escapes.
    static func isInvisible(_ scalar: Unicode.Scalar) -> Bool {
        let v = scalar.value
        return v == 0xAD || v == 0x180E || (0x200B...0x200F).contains(v) || (0x2060...0x2064).contains(v) || v == 0xFEFF
    }

    /// `text` made safe and wrapped in single quotes.
    public static func quoted(_ text: some StringProtocol, limit: Int = maxEchoCharacters) -> String {
        "'" + clean(text, limit: limit) + "'"
    }

    /// True if `text` holds a character ``clean(_:limit:)`` would escape.
    public static func hasControlCharacters(_ text: some StringProtocol, allowing allowed: Set<Unicode.Scalar> = []) -> Bool {
        text.unicodeScalars.contains { scalar in
            !allowed.contains(scalar) && clean(String(scalar)) != String(scalar)
        }
    }
}
