/// Checks TOML text for what the TOML library (toml++ inside TOMLKit) does not survive before
/// handing it over: in debug builds toml++ aborts the process on an assertion, in release
/// builds it assumes the case away, when a table header's `[` or `[[` is followed by anything
/// but a key (`[[\u{5}step]]`, `[ =]`, `[[é]]`), or when an array holds `}` or a Unicode line
/// separator where a value belongs (`a = [}]`). Raw control characters other than tab and
/// newlines, which TOML forbids anywhere, and non-ASCII characters outside quoted strings and
/// comments, which TOML 1.0 forbids too, are refused here as well. Both are invalid TOML, so
/// refusing them first changes no valid file's meaning. A `\u0000` escape in a basic string is
/// valid TOML but is refused too: TOMLKit would cut the string at the NUL without a word.
///
/// Found by the fuzz harness (issue 10). ``TOMLDocument/parse(_:source:)`` runs it before every
/// TOML read (deployments, scenarios, themes).
///
/// ```swift
/// TOMLPreflight.problem(in: "[[\u{5}step]]\n")   // (1, "control character \u{5} is not allowed in TOML; …")
/// ```
public enum TOMLPreflight {
    /// The line (from 1) and a one-line description of the first problem, or nil.
    public static func problem(in text: String) -> (line: Int, message: String)? {
        var line = 1
        var previous: UInt32 = 0
        for scalar in text.unicodeScalars {
            defer { previous = scalar.value }
            if previous == 0x0D && scalar.value != 0x0A {
                return (line, "a carriage return must be followed by a newline in TOML")
            }
            switch scalar.value {
            case 0x0A: line += 1
            case 0x09, 0x0D: continue
            case 0x00...0x1F, 0x7F:
                return (line, "control character \(InputEcho.clean(String(scalar))) is not allowed in TOML; "
                    + "write it as an escape inside a quoted string")
            default: continue
            }
        }
        if previous == 0x0D { return (line, "a carriage return must be followed by a newline in TOML") }
        return structureProblem(Array(text.utf8))
    }

    /// One pass over the bytes that knows strings and comments: a line starting with `[` must
    /// be a well-formed table header start, and a `}` must not follow `[` or `,` (toml++
    /// asserts on `a = [}]`).
    private static func structureProblem(_ bytes: [UInt8]) -> (line: Int, message: String)? {
        enum State { case normal, basic, literal, multilineBasic, multilineLiteral, comment }
        var state = State.normal
        var line = 1
        var lineStart = true
        var lastSignificant: UInt8 = 0
        var i = 0
        let quote = UInt8(ascii: "\""), apostrophe = UInt8(ascii: "'"), backslash = UInt8(ascii: "\\")
        func at(_ j: Int) -> UInt8? { j < bytes.count ? bytes[j] : nil }
        func triple(_ c: UInt8) -> Bool { at(i) == c && at(i + 1) == c && at(i + 2) == c }
        while i < bytes.count {
            let c = bytes[i]
            if c == 10 {
                line += 1
                lineStart = true
                if state == .comment || state == .basic || state == .literal { state = .normal }
                i += 1
                continue
            }
            switch state {
            case .comment:
                i += 1
            case .basic:
                if c == backslash {
                    if let problem = nulEscapeProblem(bytes, at: i) { return (line, problem) }
                    i += 2
                    continue
                }
                if c == quote { state = .normal; lastSignificant = quote }
                i += 1
            case .literal:
                if c == apostrophe { state = .normal; lastSignificant = apostrophe }
                i += 1
            case .multilineBasic:
                if c == backslash {
                    if let problem = nulEscapeProblem(bytes, at: i) { return (line, problem) }
                    i += 2
                    continue
                }
                if triple(quote) { state = .normal; lastSignificant = quote; i += 3; continue }
                i += 1
            case .multilineLiteral:
                if triple(apostrophe) { state = .normal; lastSignificant = apostrophe; i += 3; continue }
                i += 1
            case .normal:
                if space.contains(c) || c == 13 { i += 1; continue }
                if c >= 0x80 {
                    // TOML 1.0 is ASCII outside strings and comments; toml++ asserts on U+2028 in an array.
                    return (line, "non-ASCII character outside a quoted string; TOML keys and values are ASCII unless quoted")
                }
                if lineStart, c == UInt8(ascii: "["), let problem = tableHeaderProblem(lineRest(bytes, from: i)) {
                    return (line, problem)
                }
                lineStart = false
                // A value (after `=`, or in an array) that is a number: refused if it underflows.
                if lastSignificant == UInt8(ascii: "=") || lastSignificant == UInt8(ascii: "[") || lastSignificant == UInt8(ascii: ","),
                   (c >= 48 && c <= 57) || c == UInt8(ascii: "+") || c == UInt8(ascii: "-") {
                    var end = i
                    while end < bytes.count, Self.isValueByte(bytes[end]) { end += 1 }
                    if let problem = underflowProblem(bytes, i..<end) { return (line, problem) }
                    lastSignificant = bytes[end - 1]
                    i = end
                    continue
                }
                switch c {
                case UInt8(ascii: "#"): state = .comment
                case quote: state = triple(quote) ? .multilineBasic : .basic; if state == .multilineBasic { i += 2 }
                case apostrophe: state = triple(apostrophe) ? .multilineLiteral : .literal; if state == .multilineLiteral { i += 2 }
                case UInt8(ascii: "}") where lastSignificant == UInt8(ascii: "[") || lastSignificant == UInt8(ascii: ","):
                    return (line, "unexpected '}' after '\(Character(Unicode.Scalar(lastSignificant)))'; expected a value")
                default: lastSignificant = c
                }
                i += 1
            }
        }
        return nil
    }

    /// A TOML float whose digits are not all 0 but whose value underflows to 0 (`1e-400`): the
    /// TOML library reads it as 0, so a scenario's `at = 1e-400` ran its step at the start, where
    /// the flags and the command language refuse such a number. Refused here, before any file's
    /// fields are read, so every TOML number (scenarios, deployments, themes) gets the same check.
    /// A bare key that looks like a number (`1e-400 = 2` in an inline table) is left alone.
    private static func underflowProblem(_ bytes: [UInt8], _ span: Range<Int>) -> String? {
        var after = span.upperBound
        while after < bytes.count, space.contains(bytes[after]) { after += 1 }
        if after < bytes.count, bytes[after] == UInt8(ascii: "=") || bytes[after] == UInt8(ascii: ".") { return nil }
        // TOML's decimal float: digits (`_` only between two), an optional fraction and exponent.
        let chars = bytes[span]
        var k = chars.startIndex
        func isDigit(_ j: Int) -> Bool { j < chars.endIndex && chars[j] >= 48 && chars[j] <= 57 }
        func digits() -> Bool {
            guard isDigit(k) else { return false }
            k += 1
            while isDigit(k) || (k < chars.endIndex && chars[k] == UInt8(ascii: "_") && isDigit(k + 1)) { k += 1 }
            return true
        }
        if k < chars.endIndex, chars[k] == UInt8(ascii: "+") || chars[k] == UInt8(ascii: "-") { k += 1 }
        guard digits() else { return nil }
        if k < chars.endIndex, chars[k] == UInt8(ascii: ".") { k += 1; guard digits() else { return nil } }
        let exponent = k
        if k < chars.endIndex, chars[k] == UInt8(ascii: "e") || chars[k] == UInt8(ascii: "E") {
            k += 1
            if k < chars.endIndex, chars[k] == UInt8(ascii: "+") || chars[k] == UInt8(ascii: "-") { k += 1 }
            guard digits() else { return nil }
        }
        guard k == chars.endIndex,
              let value = Double(String(decoding: chars.filter { $0 != UInt8(ascii: "_") }, as: UTF8.self)), value == 0,
              chars[chars.startIndex..<exponent].contains(where: { $0 >= 49 && $0 <= 57 }) else { return nil }
        let text = String(decoding: chars, as: UTF8.self)
        return "the number \(InputEcho.clean(text, limit: 40)) underflows to 0; write 0 if 0 is meant"
    }

    /// Bytes a bare TOML value (number, date, time, boolean) can hold.
    private static func isValueByte(_ c: UInt8) -> Bool {
        (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122)
            || c == UInt8(ascii: "_") || c == UInt8(ascii: "+") || c == UInt8(ascii: "-") || c == UInt8(ascii: ".") || c == UInt8(ascii: ":")
    }

    /// `\u0000` or `\U00000000` at `i` (a backslash in a basic string): valid TOML, but TOMLKit
    /// hands toml++'s strings to Swift as C strings, so the value was silently cut at the NUL:
    /// `command = "drain node 3\u0000 junk"` ran `drain node 3`, `at = "1s\u0000x"` was 1 s, and
    /// a deployment's `name = "a\u0000b"` was `a`. Refused, as a NUL is in no valid value here.
    private static func nulEscapeProblem(_ bytes: [UInt8], at i: Int) -> String? {
        func digits(_ count: Int) -> Bool {
            i + 2 + count <= bytes.count && bytes[(i + 2)..<(i + 2 + count)].allSatisfy { $0 == UInt8(ascii: "0") }
        }
        guard i + 1 < bytes.count else { return nil }
        let isNul = (bytes[i + 1] == UInt8(ascii: "u") && digits(4)) || (bytes[i + 1] == UInt8(ascii: "U") && digits(8))
        return isNul ? "a NUL character (\\u0000) in a string is not allowed: it would cut the string short" : nil
    }

    private static func lineRest(_ bytes: [UInt8], from start: Int) -> ArraySlice<UInt8> {
        var end = start
        while end < bytes.count, bytes[end] != 10 { end += 1 }
        return bytes[start..<end]
    }

    private static let space: Set<UInt8> = [32, 9]

    private static func isKeyStart(_ c: UInt8) -> Bool {
        (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c == UInt8(ascii: "_")
            || c == UInt8(ascii: "-") || c == UInt8(ascii: "\"") || c == UInt8(ascii: "'") || c == UInt8(ascii: "]")
    }

    /// A line that starts (after blanks) with `[` must go on with a key, as a table header does.
    private static func tableHeaderProblem(_ line: ArraySlice<UInt8>) -> String? {
        var rest = (line.last == 13 ? line.dropLast() : line).drop(while: { space.contains($0) })
        guard rest.first == UInt8(ascii: "[") else { return nil }
        rest = rest.dropFirst()
        if rest.first == UInt8(ascii: "[") { rest = rest.dropFirst() }
        rest = rest.drop(while: { space.contains($0) })
        guard let next = rest.first else { return "unterminated table header; expected [name] or [[name]]" }
        return isKeyStart(next) ? nil : "malformed table header; expected [name] or [[name]] with a plain or quoted name"
    }
}
