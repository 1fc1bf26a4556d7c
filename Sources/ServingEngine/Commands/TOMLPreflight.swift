/// Checks TOML text for what the TOML library (toml++ inside TOMLKit) does not survive before
/// handing it over: in debug builds toml++ aborts the process on an assertion, in release
/// builds it assumes the case away, when a table header's `[` or `[[` is followed by anything
/// but a key (`[[\u{5}step]]`, `[ =]`, `[[é]]`). Raw control characters other than tab and
/// newlines, which TOML forbids anywhere, are refused here as well. Both are invalid TOML, so
/// refusing them first changes no valid file's meaning.
///
/// Found by the fuzz harness (issue 10). It lives beside the scenario reader; the deployment
/// reader (`TOMLDocument.parse` in PodModel) needs the same check.
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
        var multiline: [UInt8]? = nil  // the closing delimiter of an open multi-line string
        let all = Array(text.utf8)
        for (index, raw) in all.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).enumerated() {
            var bytes = raw[...]
            if let closing = multiline {
                guard let end = find(closing, in: bytes) else { continue }
                bytes = bytes[(end + closing.count)...]
                multiline = nil
            } else if let header = tableHeaderProblem(bytes) {
                return (index + 1, header)
            }
            multiline = openMultilineString(bytes)
        }
        return nil
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

    /// The closing delimiter if `line` leaves a `"""` or `'''` string open.
    private static func openMultilineString(_ line: ArraySlice<UInt8>) -> [UInt8]? {
        var i = line.startIndex
        while i < line.endIndex {
            let c = line[i]
            if c == UInt8(ascii: "#") { return nil }
            if c == UInt8(ascii: "\"") || c == UInt8(ascii: "'") {
                let triple = [c, c, c]
                if line[i...].starts(with: triple) {
                    guard let end = find(triple, in: line[(i + 3)...]) else { return triple }
                    i = end + 3
                    continue
                }
                // A one-line string: skip to its closing quote (basic strings honour \").
                var j = i + 1
                while j < line.endIndex, line[j] != c {
                    j += c == UInt8(ascii: "\"") && line[j] == UInt8(ascii: "\\") ? 2 : 1
                }
                i = j + 1
                continue
            }
            i += 1
        }
        return nil
    }

    private static func find(_ needle: [UInt8], in haystack: ArraySlice<UInt8>) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        var i = haystack.startIndex
        while i + needle.count <= haystack.endIndex {
            if haystack[i..<(i + needle.count)].elementsEqual(needle) { return i }
            i += 1
        }
        return nil
    }
}
