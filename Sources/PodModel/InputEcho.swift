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
            if scalar.isTerminalControl {
                out += "\\u{" + String(v, radix: 16, uppercase: true) + "}"
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
        return out
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
