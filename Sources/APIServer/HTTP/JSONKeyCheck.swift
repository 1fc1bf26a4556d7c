import PodModel

/// What a JSON decoder does not say about a body it took or refused: a key given twice in one
/// object, a string with an unpaired UTF-16 surrogate escape, and a trailing comma.
///
/// Foundation's decoder keeps the first of two equal keys, Python's `json` (and so OpenAI's
/// own server) the last; `{"max_tokens": 2, "max_tokens": -1}` would be served with 2 here and
/// refused there. An ambiguous body is refused with the field named instead, so a bad number is
/// never dropped silently. A lone `\ud800` is valid JSON syntax but no Unicode text; the decoder
/// then blames the field's type, which sends the client looking in the wrong place. A trailing
/// comma (`{"max_tokens": 3,}`) is not JSON (RFC 8259), and OpenAI's server refuses it, but
/// Foundation's parser lets it through; it is refused here too (the trace reader refuses it as well).
///
/// One pass over the bytes with an explicit stack (no recursion, so any nesting depth is safe);
/// keys are compared as written, escapes included. The body is at most the route's limit (1 MB).
enum JSONKeyCheck {
    enum Finding: Equatable {
        /// The path of the second occurrence, e.g. `max_tokens` or `messages[0].role`.
        case duplicateKey(path: String)
        /// The path of the string holding it, and the escape as written (e.g. `\ud800`).
        case unpairedSurrogate(path: String?, escape: String)
        /// The path of the object or array that ends with a comma (nil at the top level).
        case trailingComma(path: String?)
        /// A bare word where a value goes that is not `true`, `false` or `null` (`NaN`,
        /// `-Infinity`, `undefined`, `True`): the path of the field holding it (nil at the top
        /// level) and the word (at most 24 bytes). Foundation refuses such a body as "not valid
        /// JSON" without saying where.
        case bareWord(path: String?, word: String)
        /// A number no 64-bit float holds (`1e400`, or `1e-400`, which is not 0): the path of the
        /// field holding it (nil at the top level), the number (at most 40 bytes), and whether it
        /// underflows to 0 (rather than overflows). Foundation refuses such a body as "not valid
        /// JSON" without saying where.
        case unrepresentableNumber(path: String?, number: String, underflows: Bool)
        /// A number JSON's grammar does not allow (`+1`, `.5`, `01`, `1.`, `1e`): the path of the
        /// field holding it (nil at the top level) and the number as written (at most 40 bytes).
        /// Foundation refuses such a body as "not valid JSON" without saying where.
        case malformedNumber(path: String?, number: String)
        /// A control character (U+0000–U+001F) written raw inside a string, where JSON requires
        /// an escape (RFC 8259 §7): the path of the string (a key's own path when it is in a key;
        /// nil at the top level) and the byte. Foundation refuses it as the field's "wrong type"
        /// (a field that also takes an array) or as "not valid JSON" without saying where.
        case rawControlCharacter(path: String?, byte: UInt8)
        /// A backslash escape JSON does not have (`\x`, `\'`, `\u` without four hex digits): the
        /// path of the string (as for a control character) and the escape as written. Foundation
        /// refuses it as the field's "wrong type" or as "not valid JSON" without saying where.
        case badEscape(path: String?, escape: String)
        /// The body ends while arrays or objects are open: the closers they need, innermost first
        /// (`]}`), the outermost's kind (`object`, `array`), and the position (from 1) of the
        /// body's last byte other than whitespace, after which they go.
        case endsBeforeClosing(closers: String, outermost: String, after: Int)
        /// The body ends inside a string: the position (from 1) of its opening quote.
        case endsInsideString(start: Int)
        /// The top-level value (`object`, `array` or `value`) is followed by more than whitespace:
        /// the position (from 1) of the first such byte and what follows (at most 24 characters).
        case moreAfterValue(kind: String, at: Int, text: String)
        /// A `}` or `]` at `at` (from 1) that does not close the innermost open object or array:
        /// the closer written, and the one due.
        case unmatchedCloser(at: Int, written: UInt8, due: UInt8)
        /// A token where JSON's grammar has another due (`{"a" 1}`, `{"a": 1 "b": 2}`, `{"a":}`,
        /// `[1,,2]`, `{'a': 1}`): its position (from 1), what it is (`a number`, `a ','`) and what
        /// is due there (`a ':'`, `',' or '}'`).
        case unexpected(at: Int, found: String, due: String)
    }

    /// What JSON's grammar takes next, for `grammar` (RFC 8259 §2–5).
    private enum Due {
        /// A value: at the start, after `:`.
        case value
        /// A value after an array's `,` (or its `]`: a trailing comma, which the decoder takes
        /// and ``Finding/trailingComma(path:)`` names).
        case element
        /// A value or `]`, after `[`.
        case valueOrClose
        /// A key after an object's `,` (or its `}`, as for `element`).
        case key
        /// A key or `}`, after `{`.
        case keyOrClose
        case colon
        /// `,` or the container's closer, after a value.
        case commaOrClose

        var takesValue: Bool { self == .value || self == .element || self == .valueOrClose }
        var takesKey: Bool { self == .key || self == .keyOrClose }
        var takesClose: Bool { self != .value && self != .colon }

        /// How a refusal says it, in an object when `inObject`.
        func said(inObject: Bool) -> String {
            switch self {
            case .value, .element: "a value"
            case .valueOrClose: "a value or ']'"
            case .key: "a key (a string)"
            case .keyOrClose: "a key (a string) or '}'"
            case .colon: "a ':'"
            case .commaOrClose: inObject ? "',' or '}'" : "',' or ']'"
            }
        }
    }

    private enum Frame {
        case object(keys: Set<[UInt8]>, current: [UInt8]?, expectsKey: Bool)
        case array(index: Int)

        /// The byte that closes it.
        var closer: UInt8 {
            if case .object = self { return UInt8(ascii: "}") }
            return UInt8(ascii: "]")
        }
    }

    /// How deep Foundation's JSON decoder nests arrays and objects before it gives up with a
    /// plain "not valid JSON" (swift-foundation's JSON scanner limit).
    static let maxDecodableDepth = 512

    /// Whether arrays and objects in `bytes` nest more than `limit` deep (outside strings).
    static func nestingExceeds<Bytes: Sequence<UInt8>>(_ limit: Int, in bytes: Bytes) -> Bool {
        var depth = 0
        var inString = false
        var escaped = false
        for byte in bytes {
            if inString {
                if escaped { escaped = false } else if byte == UInt8(ascii: "\\") { escaped = true } else if byte == UInt8(ascii: "\"") { inString = false }
                continue
            }
            switch byte {
            case UInt8(ascii: "\""): inString = true
            case UInt8(ascii: "["), UInt8(ascii: "{"):
                depth += 1
                if depth > limit { return true }
            case UInt8(ascii: "]"), UInt8(ascii: "}"): depth -= 1
            default: break
            }
        }
        return false
    }

    /// The first finding in `bytes`, or nil; unpaired surrogates only if `surrogates`, numbers no
    /// float holds only if `numbers` (a body the decoder took may hold one in a field it does not
    /// read). Stops at the first byte that is not JSON it understands (the decoder reports those).
    /// `numberRoots`: with `numbers`, only a number under one of these top-level fields counts
    /// (`prompt[0]` is under `prompt`); nil: any.
    /// Raw control characters in strings only if `controls` (looked for when the decoder refused
    /// the body). Keys given twice and trailing commas only if `ambiguities`: the decoder takes
    /// both, so when it refused a body the cause lies further on, and a scan that stopped at them
    /// (`{"max_tokens": 4, "max_tokens": NaN}`) left the refusal "not valid JSON" with no field.
    /// Only if `grammar` (looked for when the decoder refused the body without a place): numbers
    /// outside JSON's grammar, a body that ends inside a string or before its brackets close, a
    /// token where another is due (a missing `:` or `,`, a `}` where a value goes, a closer of the
    /// wrong bracket), and more after the top-level value.
    /// Foundation on Linux says "not valid JSON" for each without a position.
    static func firstFinding(in bytes: [UInt8], surrogates: Bool = true, numbers: Bool = false,
                             numberRoots: Set<String>? = nil, controls: Bool = false, ambiguities: Bool = true,
                             grammar: Bool = false) -> Finding? {
        var stack: [Frame] = []
        var i = 0
        let n = bytes.count
        func path(appending key: [UInt8]? = nil) -> String {
            var parts = ""
            for frame in stack {
                switch frame {
                case let .object(_, current, _):
                    if let current { parts += (parts.isEmpty ? "" : ".") + String(decoding: current, as: UTF8.self) }
                case let .array(index):
                    parts += "[\(index)]"
                }
            }
            if let key { parts += (parts.isEmpty ? "" : ".") + String(decoding: key, as: UTF8.self) }
            return parts
        }
        // The last byte outside strings and whitespace (a string counts as its closing quote).
        var previous: UInt8 = 0
        // What the top-level value is, once it has begun, and whether it has ended (`grammar`).
        var topLevel: String?
        var topLevelEnded = false
        var due = Due.value
        // A UTF-8 byte-order mark the decoder skips.
        if grammar, bytes.starts(with: [0xEF, 0xBB, 0xBF]) { i = 3 }
        while i < n {
            let byte = bytes[i]
            if isWhitespace(byte) {
                i += 1
                continue
            }
            if grammar, topLevelEnded {
                let rest = String(decoding: bytes[i..<min(n, i + 96)], as: UTF8.self)
                return .moreAfterValue(kind: topLevel ?? "value", at: i + 1, text: InputEcho.clean(rest, limit: 24))
            }
            if topLevel == nil {
                topLevel = byte == UInt8(ascii: "{") ? "object" : byte == UInt8(ascii: "[") ? "array" : "value"
            }
            if grammar {
                let inObject: Bool
                if case .object? = stack.last { inObject = true } else { inObject = false }
                let next: Due?
                let found: String
                switch byte {
                case UInt8(ascii: "{"), UInt8(ascii: "["):
                    next = due.takesValue ? (byte == UInt8(ascii: "{") ? .keyOrClose : .valueOrClose) : nil
                    found = "a '\(Character(Unicode.Scalar(byte)))'"
                case UInt8(ascii: "}"), UInt8(ascii: "]"):
                    next = due.takesClose ? .commaOrClose : nil
                    found = "a '\(Character(Unicode.Scalar(byte)))'"
                case UInt8(ascii: ","):
                    next = due == .commaOrClose ? (inObject ? .key : .element) : nil
                    found = "a ','"
                case UInt8(ascii: ":"):
                    next = due == .colon ? .value : nil
                    found = "a ':'"
                case UInt8(ascii: "\""):
                    next = due.takesKey ? .colon : due.takesValue ? .commaOrClose : nil
                    found = "a string"
                default:
                    next = due.takesValue && (isNumberByte(byte) || isLetter(byte)) ? .commaOrClose : nil
                    let word = bytes[i..<min(n, i + 24)].prefix { isLetter($0) }
                    found = isNumberByte(byte) ? "a number" : isLetter(byte) ? "the word \(String(decoding: word, as: UTF8.self))"
                        : byte == UInt8(ascii: "'") ? "a single quote (JSON quotes strings and keys with \")"
                        : InputEcho.quoted(String(decoding: bytes[i..<min(n, i + 4)], as: UTF8.self).prefix(1))
                }
                guard let next else { return .unexpected(at: i + 1, found: found, due: due.said(inObject: inObject)) }
                due = next
            }
            // A value just read at the top level is the whole body's (checked at the next byte).
            defer {
                previous = byte
                if stack.isEmpty { topLevelEnded = true }
            }
            switch byte {
            case UInt8(ascii: "{"):
                stack.append(.object(keys: [], current: nil, expectsKey: true))
            case UInt8(ascii: "["):
                stack.append(.array(index: 0))
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                // Nothing open (`}` first, or after the value): `unexpected` or `moreAfterValue`.
                guard let top = stack.last else { return nil }
                if grammar, top.closer != byte { return .unmatchedCloser(at: i + 1, written: byte, due: top.closer) }
                if ambiguities, previous == UInt8(ascii: ",") {
                    stack.removeLast()
                    let at = path()
                    return .trailingComma(path: at.isEmpty ? nil : at)
                }
                stack.removeLast()
            case UInt8(ascii: ","):
                guard let top = stack.last else { return nil }
                switch top {
                case let .object(keys, _, _):
                    stack[stack.count - 1] = .object(keys: keys, current: nil, expectsKey: true)
                case let .array(index):
                    stack[stack.count - 1] = .array(index: index + 1)
                }
            case UInt8(ascii: ":"):
                if case let .object(keys, current, _)? = stack.last {
                    stack[stack.count - 1] = .object(keys: keys, current: current, expectsKey: false)
                }
            case UInt8(ascii: "\""):
                let start = i + 1
                var j = start
                var surrogate: String?
                var pendingHigh: Int?  // index of an unmatched high-surrogate escape
                var control: UInt8?  // the first control character written raw
                var badEscape: String?  // the first escape JSON does not have
                while j < n, bytes[j] != UInt8(ascii: "\"") {
                    if controls, control == nil, bytes[j] < 0x20 { control = bytes[j] }
                    if bytes[j] == UInt8(ascii: "\\"), j + 1 < n {
                        if controls, badEscape == nil { badEscape = Self.badEscape(bytes, j) }
                        if bytes[j + 1] == UInt8(ascii: "u"), j + 5 < n, let unit = hexUnit(bytes, j + 2) {
                            if (0xD800...0xDBFF).contains(unit) {
                                if pendingHigh != nil, surrogate == nil { surrogate = escapeText(bytes, pendingHigh!) }
                                pendingHigh = j
                            } else if (0xDC00...0xDFFF).contains(unit) {
                                if pendingHigh != nil && pendingHigh! + 6 == j {
                                    pendingHigh = nil
                                } else if surrogate == nil {
                                    surrogate = escapeText(bytes, pendingHigh ?? j)
                                }
                            } else if let high = pendingHigh, surrogate == nil {
                                surrogate = escapeText(bytes, high)
                            }
                            j += 6
                            continue
                        }
                        if let high = pendingHigh, surrogate == nil { surrogate = escapeText(bytes, high) }
                        pendingHigh = nil
                        j += 2
                        continue
                    }
                    if let high = pendingHigh, surrogate == nil { surrogate = escapeText(bytes, high) }
                    pendingHigh = nil
                    j += 1
                }
                if let high = pendingHigh, surrogate == nil { surrogate = escapeText(bytes, high) }
                if !surrogates { surrogate = nil }
                guard j < n else { return grammar ? .endsInsideString(start: i + 1) : nil }
                let text = Array(bytes[start..<j])
                if let control {
                    if case .object(_, _, true)? = stack.last { return .rawControlCharacter(path: path(appending: text), byte: control) }
                    let at = path()
                    return .rawControlCharacter(path: at.isEmpty ? nil : at, byte: control)
                }
                if let badEscape {
                    if case .object(_, _, true)? = stack.last { return .badEscape(path: path(appending: text), escape: badEscape) }
                    let at = path()
                    return .badEscape(path: at.isEmpty ? nil : at, escape: badEscape)
                }
                if case .object(var keys, _, true)? = stack.last {
                    if let surrogate { return .unpairedSurrogate(path: path(appending: text), escape: surrogate) }
                    if ambiguities, keys.contains(text) { return .duplicateKey(path: path(appending: text)) }
                    // The frame leaves the stack before the insert, so `keys` is the set's only
                    // reference and grows in place. Inserting into a copy while the stack still held
                    // the set copied it whole at every key: a 1 MB body of 110,000 keys in one
                    // object took 93 s of a core before the request was even decoded.
                    stack.removeLast()
                    keys.insert(text)
                    stack.append(.object(keys: keys, current: text, expectsKey: false))
                } else if let surrogate {
                    let at = path()
                    return .unpairedSurrogate(path: at.isEmpty ? nil : at, escape: surrogate)
                }
                i = j
            default:
                // A number is skipped whole, so the `e` of `1e5` is not read as a word.
                let signedWord = !isDigit(byte) && i + 1 < n && isLetter(bytes[i + 1])  // -Infinity
                if isNumberByte(byte) && !signedWord {
                    var j = i + 1
                    while j < n, isNumberByte(bytes[j]) || bytes[j] == UInt8(ascii: "e") || bytes[j] == UInt8(ascii: "E") { j += 1 }
                    if grammar, !isJSONNumber(bytes[i..<j]) {
                        let at = path()
                        return .malformedNumber(path: at.isEmpty ? nil : at, number: String(decoding: bytes[i..<min(j, i + 40)], as: UTF8.self))
                    }
                    if numbers, let (number, underflows) = unrepresentable(bytes[i..<j]) {
                        let at = path()
                        if numberRoots.map({ $0.contains(String(at.prefix { $0 != "." && $0 != "[" })) }) ?? true {
                            return .unrepresentableNumber(path: at.isEmpty ? nil : at, number: number, underflows: underflows)
                        }
                    }
                    i = j
                    continue
                }
                if isLetter(byte) || isNumberByte(byte) {
                    var j = i + 1
                    while j < n, isLetter(bytes[j]) || isNumberByte(bytes[j]) || bytes[j] == UInt8(ascii: "_") { j += 1 }
                    let word = bytes[i..<j]
                    // `tru` at the very end of an object or array is a body cut short, told so below.
                    let cutShort = grammar && j == n && !stack.isEmpty && Self.literals.contains { $0.starts(with: word) }
                    if !cutShort, !Self.literals.contains(where: { $0.elementsEqual(word) }) {
                        let at = path()
                        return .bareWord(path: at.isEmpty ? nil : at, word: String(decoding: word.prefix(24), as: UTF8.self))
                    }
                    i = j
                    continue
                }
            }
            i += 1
        }
        if grammar, let outermost = stack.first {
            let end = bytes.lastIndex { !isWhitespace($0) }.map { $0 + 1 } ?? 0
            let closers = String(decoding: stack.reversed().map(\.closer), as: UTF8.self)
            return .endsBeforeClosing(closers: closers, outermost: outermost.closer == UInt8(ascii: "}") ? "object" : "array", after: end)
        }
        return nil
    }

    /// Whether `text` is a number as JSON writes it (RFC 8259 §6): `-`? then `0` or digits not
    /// starting with 0, then `.` and digits, then `e` or `E`, a sign and digits, each optional.
    static func isJSONNumber(_ text: ArraySlice<UInt8>) -> Bool {
        var i = text.startIndex
        let end = text.endIndex
        func digits() -> Bool {
            let start = i
            while i < end, isDigit(text[i]) { i += 1 }
            return i > start
        }
        if i < end, text[i] == UInt8(ascii: "-") { i += 1 }
        if i < end, text[i] == UInt8(ascii: "0") { i += 1 } else if !digits() { return false }
        if i < end, text[i] == UInt8(ascii: ".") {
            i += 1
            guard digits() else { return false }
        }
        if i < end, text[i] == UInt8(ascii: "e") || text[i] == UInt8(ascii: "E") {
            i += 1
            if i < end, text[i] == UInt8(ascii: "+") || text[i] == UInt8(ascii: "-") { i += 1 }
            guard digits() else { return false }
        }
        return i == end
    }

    /// The number's text (at most 40 bytes) if no 64-bit float holds it, and whether it underflows:
    /// its magnitude overflows (`1e400`), or it underflows to 0 while its digits are not all 0 (`1e-400`).
    private static func unrepresentable(_ number: ArraySlice<UInt8>) -> (text: String, underflows: Bool)? {
        let text = String(decoding: number, as: UTF8.self)
        guard let value = Double(text) else { return nil }
        let underflows = underflowsToZero(text)
        return value.isFinite && !underflows ? nil : (String(text.prefix(40)), underflows)
    }

    /// Whether the numeral `text` is not zero but a 64-bit float reads it as 0 (`1e-400`; `0e-400` is 0).
    static func underflowsToZero<Text: StringProtocol>(_ text: Text) -> Bool {
        let mantissa = text.prefix { $0 != "e" && $0 != "E" }
        return Double(String(text)) == 0 && mantissa.contains { ("1"..."9").contains($0) }
    }

    /// The refusal of a number no 64-bit float holds, at `place` ("field 'temperature'"). One that
    /// underflows says so: "has an invalid value 1e-400 (expected a number within 0…2)" alone
    /// named a range 1e-400 is in. xds refuses such a numeral wherever it reads numbers (flags,
    /// TOML, commands, traces) with the same advice, rather than serve a 0 the client did not write.
    static func numberMessage(place: String, number: String, underflows: Bool) -> String {
        "\(place) has an invalid value \(number)"
            + (underflows ? ": it underflows to 0 in a 64-bit float; write 0 if 0 is meant" : "")
    }

    /// JSON's three literal words (RFC 8259 §3).
    private static let literals: [[UInt8]] = [Array("true".utf8), Array("false".utf8), Array("null".utf8)]

    private static func isLetter(_ b: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(b) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(b)
    }

    /// JSON's whitespace (RFC 8259 §2).
    private static func isWhitespace(_ b: UInt8) -> Bool {
        b == UInt8(ascii: " ") || b == UInt8(ascii: "\t") || b == UInt8(ascii: "\n") || b == UInt8(ascii: "\r")
    }

    private static func isDigit(_ b: UInt8) -> Bool { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(b) }

    private static func isHexDigit(_ b: UInt8) -> Bool {
        isDigit(b) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(b) || (UInt8(ascii: "A")...UInt8(ascii: "F")).contains(b)
    }

    /// A byte a JSON number may hold besides its exponent letter.
    private static func isNumberByte(_ b: UInt8) -> Bool {
        isDigit(b) || b == UInt8(ascii: "-") || b == UInt8(ascii: "+") || b == UInt8(ascii: ".")
    }

    /// The UTF-16 unit of the four hex digits at `at`, or nil.
    private static func hexUnit(_ bytes: [UInt8], _ at: Int) -> Int? {
        var value = 0
        for k in at..<at + 4 {
            let b = bytes[k]
            let digit: Int
            switch b {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = Int(b - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = Int(b - UInt8(ascii: "a")) + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = Int(b - UInt8(ascii: "A")) + 10
            default: return nil
            }
            value = value * 16 + digit
        }
        return value
    }

    /// The escape at `at` (a backslash) as written when JSON does not have it (RFC 8259 §7), else
    /// nil: `\u` with the hex digits that follow it (fewer than four), or the backslash and the
    /// character after it.
    private static func badEscape(_ bytes: [UInt8], _ at: Int) -> String? {
        let next = bytes[at + 1]
        if next == UInt8(ascii: "u") {
            var end = at + 2
            while end < min(bytes.count, at + 6), isHexDigit(bytes[end]) { end += 1 }
            return end == at + 6 ? nil : String(decoding: bytes[at..<end], as: UTF8.self)
        }
        if Array(#""\/bfnrt"#.utf8).contains(next) { return nil }
        var end = at + 2  // a character of several bytes is shown whole
        while end < bytes.count, end < at + 5, (0x80...0xBF).contains(bytes[end]) { end += 1 }
        return InputEcho.clean(String(decoding: bytes[at..<end], as: UTF8.self))
    }

    private static func escapeText(_ bytes: [UInt8], _ at: Int) -> String {
        String(decoding: bytes[at..<min(bytes.count, at + 6)], as: UTF8.self)
    }

    /// The client's message for a finding.
    static func message(_ finding: Finding) -> (text: String, param: String?) {
        switch finding {
        case let .duplicateKey(path):
            let shown = InputEcho.quoted(path)
            return ("field \(shown) appears more than once in one object; send each field once", path)
        case let .unpairedSurrogate(path, escape):
            let place = path.map { "field \(InputEcho.quoted($0))" } ?? "the request body"
            return ("\(place) holds an unpaired UTF-16 surrogate escape \(escape), which is not Unicode text", path)
        case let .trailingComma(path):
            let place = path.map { "field \(InputEcho.quoted($0))" } ?? "the request body"
            return ("\(place) ends with a comma before its closing bracket, which is not JSON; remove the comma", path)
        case let .bareWord(path, word):
            let place = path.map { "field \(InputEcho.quoted($0))" } ?? "the request body"
            let unsigned = word.drop { $0 == "-" || $0 == "+" }.lowercased()
            if ["nan", "infinity", "inf"].contains(unsigned) {
                return ("\(place) holds \(word), which is not JSON: JSON numbers are finite", path)
            }
            return ("\(place) holds the bare word \(word), which is not JSON (its words are true, false and null)", path)
        case let .unrepresentableNumber(path, number, underflows):
            let place = path.map { "field \(InputEcho.quoted($0))" } ?? "the request body"
            return (numberMessage(place: place, number: number, underflows: underflows), path)
        case let .malformedNumber(path, number):
            let place = path.map { "field \(InputEcho.quoted($0))" } ?? "the request body"
            return ("\(place) holds \(InputEcho.clean(number)), which is not a JSON number: JSON writes a number with no leading + or . "
                + "and no leading zero, and with digits after a . or an e", path)
        case let .rawControlCharacter(path, byte):
            let place = path.map { "field \(InputEcho.quoted($0))" } ?? "the request body"
            let code = "U+00" + (byte < 0x10 ? "0" : "") + String(byte, radix: 16, uppercase: true)
            let short: [UInt8: String] = [0x08: "\\b", 0x09: "\\t", 0x0A: "\\n", 0x0C: "\\f", 0x0D: "\\r"]
            let escape = short[byte] ?? "\\u00" + (byte < 0x10 ? "0" : "") + String(byte, radix: 16)
            return ("\(place) holds a control character (\(code)) written raw in a string, which is not JSON; "
                + "write it escaped, as \(escape)", path)
        case let .badEscape(path, escape):
            let place = path.map { "field \(InputEcho.quoted($0))" } ?? "the request body"
            return ("\(place) holds the escape \(escape), which is not JSON (its escapes are "
                + #"\", \\, \/, \b, \f, \n, \r, \t and \u with four hex digits)"#, path)
        case let .unexpected(at, found, due):
            return ("request body has \(found) at byte \(at) where \(due) is due", nil)
        case let .endsBeforeClosing(closers, outermost, after):
            // A body nested deep and cut short lacks as many closers as it opened: the first few shown.
            let shown = closers.count > 8 ? "'\(closers.prefix(8))…' (\(closers.count) closers)" : "'\(closers)'"
            let missing = closers.count == 1 ? "a \(shown) is missing" : "\(shown) are missing"
            return ("request body ends before its JSON \(outermost) closes (\(missing) after byte \(after))", nil)
        case let .endsInsideString(start):
            return ("request body ends inside a string that starts at byte \(start)", nil)
        case let .moreAfterValue(kind, at, text):
            return ("request body has more after its JSON \(kind) (from byte \(at): '\(text)')", nil)
        case let .unmatchedCloser(at, written, due):
            let (closer, due) = (Character(Unicode.Scalar(written)), Character(Unicode.Scalar(due)))
            return ("request body has a '\(closer)' at byte \(at) where a '\(due)' is due", nil)
        }
    }
}
