import PodModel

/// A strict, streaming reader of one JSON Lines record (RFC 8259): the whole line must be one
/// JSON object; the members named in `keys` are kept (numbers, or arrays of numbers), every other
/// member is validated and skipped whatever it holds (nested objects and arrays included, up to
/// ``maxDepth`` levels).
///
/// Why not `JSONDecoder`: it accepts the same texts (the fuzz target `mooncake-json-grammar` checks
/// both agree on thousands of lines), but it builds a value for every member and costs about ten
/// times as much per line, and the hour-long Mooncake replay is meant to run 10,000× real time,
/// parse included. This reader allocates only the kept arrays.
///
/// ```swift
/// let values = try JSONLine.members(line, keys: JSONLine.keys(["timestamp", "hash_ids"]))
/// if case .number(let ms)? = values[0] { … }
/// ```
enum JSONLine {
    enum Value: Equatable {
        case number(Double)
        case numbers([Number])
        /// A value of another type (string, object, boolean, null, or an array not all numbers).
        case other
    }

    /// A number of a kept array: its value as `Double(String)` reads it, the exact value when it is
    /// written in plain digits (no sign, fraction or exponent) and fits a UInt64, and where its
    /// text lies on the line (offsets from the line's start), for a message. A Mooncake `hash_ids`
    /// entry is an id, not a quantity: 9007199254740993 read as a Double became …992, another id.
    struct Number: Equatable {
        var value: Double
        var integer: UInt64?
        var text: Range<Int>
    }

    struct Problem: Error {
        let message: String
        /// The position in `keys` of the kept member whose value is at fault, if any: its reader
        /// adds the range the member takes.
        var member: Int? = nil
    }

    /// Deepest nesting accepted, as `JSONDecoder`'s own limit.
    static let maxDepth = 512

    static func keys(_ names: [String]) -> [[UInt8]] { names.map { Array($0.utf8) } }

    /// The values of `keys` in the object on `line` (nil where absent; the last one wins if a key
    /// repeats, as in JavaScript and Python: ``uniqueMembers(_:keys:)`` refuses it instead), or the
    /// first syntax problem with its column.
    static func members(_ line: ArraySlice<UInt8>, keys: [[UInt8]]) throws(Problem) -> [Value?] {
        try members(line, keys: keys, refusingRepeats: false)
    }

    /// ``members(_:keys:)``, but a line naming one of `keys` twice is refused with the key's name:
    /// which of the two values was meant is a guess, and the HTTP API refuses such a body too. (A
    /// repeat of a member not kept changes nothing read, so it stays JSON's business.)
    static func uniqueMembers(_ line: ArraySlice<UInt8>, keys: [[UInt8]]) throws(Problem) -> [Value?] {
        try members(line, keys: keys, refusingRepeats: true)
    }

    private static func members(_ line: ArraySlice<UInt8>, keys: [[UInt8]], refusingRepeats: Bool) throws(Problem) -> [Value?] {
        var result = [Value?](repeating: nil, count: keys.count)
        let outcome: Problem? = line.withUnsafeBufferPointer { buffer in
            var cursor = Cursor(bytes: buffer, refusingRepeats: refusingRepeats)
            do throws(Problem) {
                try cursor.object(keys: keys, into: &result)
                return nil
            } catch {
                return error
            }
        }
        if let outcome { throw outcome }
        return result
    }

    private struct Cursor {
        let bytes: UnsafeBufferPointer<UInt8>
        let refusingRepeats: Bool
        var index = 0

        init(bytes: UnsafeBufferPointer<UInt8>, refusingRepeats: Bool = false) {
            self.bytes = bytes
            self.refusingRepeats = refusingRepeats
        }

        private var peek: UInt8? { index < bytes.count ? bytes[index] : nil }

        private func problem(_ what: String) -> Problem {
            guard index < bytes.count else { return Problem(message: "\(what), found the end of the line") }
            if let word = nonFiniteWord() { return Problem(message: "\(word.text) at column \(word.start + 1) is not a JSON number (JSON numbers are finite)") }
            let shown = String(decoding: bytes[index..<min(bytes.count, index + 12)], as: UTF8.self)
            return Problem(message: "\(what) at column \(index + 1), found \(InputEcho.quoted(shown))")
        }

        /// `NaN`, `Infinity` or `inf` (any case, `-Infinity` with its sign) where the reader
        /// stopped: what a writer that is not JSON's put for a number, said as such.
        private func nonFiniteWord() -> (text: String, start: Int)? {
            var start = index
            if start > 0, bytes[start - 1] == UInt8(ascii: "-") || bytes[start - 1] == UInt8(ascii: "+") { start -= 1 }
            var end = index
            while end < bytes.count, end - index < 12,
                  (bytes[end] | 0x20) >= UInt8(ascii: "a") && (bytes[end] | 0x20) <= UInt8(ascii: "z") { end += 1 }
            let word = String(decoding: UnsafeBufferPointer(rebasing: bytes[index..<end]), as: UTF8.self).lowercased()
            guard ["nan", "infinity", "inf"].contains(word) else { return nil }
            return (String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<end]), as: UTF8.self), start)
        }

        private mutating func skipSpace() {
            while index < bytes.count {
                let c = bytes[index]
                guard c == 0x20 || c == 0x09 || c == 0x0A || c == 0x0D else { return }
                index += 1
            }
        }

        private mutating func expect(_ c: UInt8, _ what: String) throws(Problem) {
            skipSpace()
            guard peek == c else { throw problem(what) }
            index += 1
        }

        mutating func object(keys: [[UInt8]], into result: inout [Value?]) throws(Problem) {
            try expect(UInt8(ascii: "{"), "expected '{' to start a JSON object")
            skipSpace()
            if peek == UInt8(ascii: "}") {
                index += 1
            } else {
                while true {
                    skipSpace()
                    let keyStart = index
                    let key = try keyIndex(keys)
                    if refusingRepeats, let key, result[key] != nil {
                        let name = String(decoding: keys[key], as: UTF8.self)
                        throw Problem(message: "\"\(name)\" is given twice (again at column \(keyStart + 1))")
                    }
                    try expect(UInt8(ascii: ":"), "expected ':' after a key in a JSON object")
                    skipSpace()
                    if let key {
                        // A kept member's problem names it: "expected a JSON value at column 54"
                        // left the reader counting columns to find which field it was.
                        do throws(Problem) { result[key] = try keptValue() } catch {
                            throw Problem(message: "\"\(String(decoding: keys[key], as: UTF8.self))\": \(error.message)", member: key)
                        }
                    } else {
                        try skipValue(depth: 1)
                    }
                    skipSpace()
                    guard let c = peek else { throw problem("unterminated JSON object") }
                    index += 1
                    if c == UInt8(ascii: "}") { break }
                    if c != UInt8(ascii: ",") {
                        index -= 1
                        throw problem("expected ',' or '}' in a JSON object")
                    }
                }
            }
            skipSpace()
            if index < bytes.count { throw problem("unexpected text after the JSON object") }
        }

        /// Reads a key; returns the position of the wanted key it names, if any.
        private mutating func keyIndex(_ keys: [[UInt8]]) throws(Problem) -> Int? {
            guard peek == UInt8(ascii: "\"") else { throw problem("expected a string key in a JSON object") }
            let (start, end, escaped) = try string()
            if !escaped {
                let raw = UnsafeBufferPointer(rebasing: bytes[start..<end])
                return keys.firstIndex { $0.elementsEqual(raw) }
            }
            let decoded = Array(Self.unescape(UnsafeBufferPointer(rebasing: bytes[start..<end])).utf8)
            return keys.firstIndex(of: decoded)
        }

        /// A kept member: a number, an array of numbers, or `.other` for any other valid value.
        private mutating func keptValue() throws(Problem) -> Value {
            guard let c = peek else { throw problem("expected a JSON value") }
            switch c {
            case UInt8(ascii: "["):
                let start = index
                index += 1
                var numbers: [Number] = []
                // Room for as many numbers as the rest of the line could hold (each takes a digit
                // and a separator), up to a few hundred: grown from empty, a Mooncake row's two
                // dozen `hash_ids` reallocated it five times.
                numbers.reserveCapacity(min((bytes.count - index) / 2, 256))
                skipSpace()
                if peek == UInt8(ascii: "]") {
                    index += 1
                    return .numbers(numbers)
                }
                while true {
                    skipSpace()
                    guard let c = peek, c == UInt8(ascii: "-") || (c >= 0x30 && c <= 0x39) else {
                        // Not all numbers: still valid JSON if the array is; validate it whole.
                        index = start
                        try skipValue(depth: 1)
                        return .other
                    }
                    let first = index
                    let value = try keptNumber()
                    numbers.append(Number(value: value, integer: plainInteger(first..<index, value: value), text: first..<index))
                    skipSpace()
                    guard let next = peek else { throw problem("unterminated JSON array") }
                    index += 1
                    if next == UInt8(ascii: "]") { return .numbers(numbers) }
                    if next != UInt8(ascii: ",") {
                        index -= 1
                        throw problem("expected ',' or ']' in a JSON array")
                    }
                }
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                return .number(try keptNumber())
            default:
                try skipValue(depth: 1)
                return .other
            }
        }

        private mutating func skipValue(depth: Int) throws(Problem) {
            guard depth <= JSONLine.maxDepth else { throw problem("JSON nested deeper than \(JSONLine.maxDepth) levels") }
            guard let c = peek else { throw problem("expected a JSON value") }
            switch c {
            case UInt8(ascii: "{"):
                index += 1
                skipSpace()
                if peek == UInt8(ascii: "}") {
                    index += 1
                    return
                }
                while true {
                    skipSpace()
                    guard peek == UInt8(ascii: "\"") else { throw problem("expected a string key in a JSON object") }
                    _ = try string()
                    try expect(UInt8(ascii: ":"), "expected ':' after a key in a JSON object")
                    skipSpace()
                    try skipValue(depth: depth + 1)
                    skipSpace()
                    guard let next = peek else { throw problem("unterminated JSON object") }
                    index += 1
                    if next == UInt8(ascii: "}") { return }
                    if next != UInt8(ascii: ",") {
                        index -= 1
                        throw problem("expected ',' or '}' in a JSON object")
                    }
                }
            case UInt8(ascii: "["):
                index += 1
                skipSpace()
                if peek == UInt8(ascii: "]") {
                    index += 1
                    return
                }
                while true {
                    skipSpace()
                    try skipValue(depth: depth + 1)
                    skipSpace()
                    guard let next = peek else { throw problem("unterminated JSON array") }
                    index += 1
                    if next == UInt8(ascii: "]") { return }
                    if next != UInt8(ascii: ",") {
                        index -= 1
                        throw problem("expected ',' or ']' in a JSON array")
                    }
                }
            case UInt8(ascii: "\""):
                _ = try string()
            case UInt8(ascii: "t"): try literal("true")
            case UInt8(ascii: "f"): try literal("false")
            case UInt8(ascii: "n"): try literal("null")
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                _ = try number()
            default:
                throw problem("expected a JSON value")
            }
        }

        private mutating func literal(_ word: StaticString) throws(Problem) {
            let n = word.utf8CodeUnitCount
            guard index + n <= bytes.count,
                  UnsafeBufferPointer(rebasing: bytes[index..<index + n]).elementsEqual(
                      UnsafeBufferPointer(start: word.utf8Start, count: n))
            else { throw problem("expected a JSON value") }
            index += n
        }

        /// The exact value of the number text at `span` (already read, to `value`) when it is plain
        /// digits that fit a UInt64; nil for a sign, fraction or exponent, or a larger number.
        private func plainInteger(_ span: Range<Int>, value: Double) -> UInt64? {
            guard !span.isEmpty, bytes[span.lowerBound] != UInt8(ascii: "-") else { return nil }
            // Up to 15 digits the Double is exact (``number()`` builds it so): no second read.
            if span.count <= 15 {
                return span.allSatisfy({ bytes[$0] &- 0x30 < 10 }) ? UInt64(value) : nil
            }
            var n: UInt64 = 0
            for i in span {
                let d = bytes[i] &- 0x30
                guard d < 10 else { return nil }
                let (times10, o1) = n.multipliedReportingOverflow(by: 10)
                let (sum, o2) = times10.addingReportingOverflow(UInt64(d))
                guard !o1, !o2 else { return nil }
                n = sum
            }
            return n
        }

        /// A kept member's number (``number()``), refused when its digits are not all 0 but its
        /// value underflows to 0: a Mooncake row's `"timestamp": 1e-400` was read as 0 ms and
        /// `"hash_ids": [1e-400]` as block 0, where `1.5` is refused and the flags and commands
        /// refuse `1e-400`. Members the reader skips are not its business.
        private mutating func keptNumber() throws(Problem) -> Double {
            let start = index
            let value = try number()
            guard value == 0 else { return value }
            let text = bytes[start..<index]
            guard text.prefix(while: { $0 != UInt8(ascii: "e") && $0 != UInt8(ascii: "E") }).contains(where: { $0 >= 49 && $0 <= 57 })
            else { return value }
            throw Problem(message: "the number \(String(decoding: text.prefix(40), as: UTF8.self)) underflows to 0 at column "
                + "\(start + 1); write 0 if 0 is meant")
        }

        /// A number by RFC 8259's grammar (no `+`, leading zeros, `.5`, `1.`, `nan` or `inf`);
        /// its value as `Double(String)` reads it (correctly rounded; beyond 1.8e308 it is
        /// infinite, which the callers' range checks refuse).
        private mutating func number() throws(Problem) -> Double {
            // Indexes the line's bytes directly, the digits in one tight loop: a Mooncake row is
            // two dozen numbers, and going through `peek`'s optional per byte made this the
            // parse's largest part (issue 12: 50 M instructions of a Mooncake hour).
            let start = index
            let n = bytes.count
            var i = index
            if i < n && bytes[i] == UInt8(ascii: "-") { i &+= 1 }
            guard i < n, bytes[i] &- 0x30 < 10 else {
                index = i
                throw problem("expected a digit in a JSON number")
            }
            var integer = 0
            var digits = 0
            if bytes[i] == 0x30 {
                i &+= 1
                digits = 1
            } else {
                while i < n {
                    let d = bytes[i] &- 0x30
                    guard d < 10 else { break }
                    if digits < 15 { integer = integer &* 10 &+ Int(d) }
                    digits &+= 1
                    i &+= 1
                }
            }
            index = i
            var plain = digits <= 15
            if peek == UInt8(ascii: ".") {
                plain = false
                index += 1
                guard let c = peek, c >= 0x30 && c <= 0x39 else { throw problem("expected a digit after '.' in a JSON number") }
                while let c = peek, c >= 0x30 && c <= 0x39 { index += 1 }
            }
            if peek == UInt8(ascii: "e") || peek == UInt8(ascii: "E") {
                plain = false
                index += 1
                if peek == UInt8(ascii: "+") || peek == UInt8(ascii: "-") { index += 1 }
                guard let c = peek, c >= 0x30 && c <= 0x39 else { throw problem("expected a digit in a JSON number's exponent") }
                while let c = peek, c >= 0x30 && c <= 0x39 { index += 1 }
            }
            // Up to 15 digits an integer is exact in a Double: the value Double(String) gives.
            if plain { return bytes[start] == UInt8(ascii: "-") ? -Double(integer) : Double(integer) }
            guard let value = Double(String(decoding: bytes[start..<index], as: UTF8.self)) else {
                throw problem("expected a JSON number")
            }
            return value
        }

        /// Validates a string at `index` (on its opening quote): escapes, no raw control
        /// characters, paired surrogates, well-formed UTF-8. Returns the content's bounds.
        private mutating func string() throws(Problem) -> (start: Int, end: Int, escaped: Bool) {
            index += 1
            let start = index
            var escaped = false
            var ascii = true
            while true {
                guard index < bytes.count else { throw problem("unterminated JSON string") }
                let c = bytes[index]
                if c == UInt8(ascii: "\"") { break }
                if c < 0x20 { throw problem("raw control character in a JSON string") }
                if c >= 0x80 { ascii = false }
                if c == UInt8(ascii: "\\") {
                    escaped = true
                    index += 1
                    guard let e = peek else { throw problem("unterminated JSON string") }
                    switch e {
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"),
                         UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                        index += 1
                    case UInt8(ascii: "u"):
                        index += 1
                        let unit = try hex4()
                        if (0xDC00...0xDFFF).contains(unit) { throw problem("unpaired surrogate in a JSON string") }
                        if (0xD800...0xDBFF).contains(unit) {
                            guard index + 1 < bytes.count, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u")
                            else { throw problem("unpaired surrogate in a JSON string") }
                            index += 2
                            guard (0xDC00...0xDFFF).contains(try hex4()) else { throw problem("unpaired surrogate in a JSON string") }
                        }
                    default:
                        throw problem("invalid escape in a JSON string")
                    }
                    continue
                }
                index += 1
            }
            let end = index
            index += 1
            if !ascii, String(validating: UnsafeBufferPointer(rebasing: bytes[start..<end]), as: UTF8.self) == nil {
                index = start
                throw problem("JSON string is not valid UTF-8")
            }
            return (start, end, escaped)
        }

        private mutating func hex4() throws(Problem) -> Int {
            guard index + 4 <= bytes.count else { throw problem("expected four hex digits after \\u") }
            var value = 0
            for _ in 0..<4 {
                let c = bytes[index]
                let digit: Int
                switch c {
                case 0x30...0x39: digit = Int(c - 0x30)
                case 0x41...0x46: digit = Int(c - 0x41 + 10)
                case 0x61...0x66: digit = Int(c - 0x61 + 10)
                default: throw problem("expected four hex digits after \\u")
                }
                value = value * 16 + digit
                index += 1
            }
            return value
        }

        /// The text of an already validated string body with its escapes resolved.
        static func unescape(_ body: UnsafeBufferPointer<UInt8>) -> String {
            var scalars = String.UnicodeScalarView()
            var units: [UInt8] = []
            var i = 0
            func flush() {
                if !units.isEmpty { scalars.append(contentsOf: String(decoding: units, as: UTF8.self).unicodeScalars) }
                units.removeAll()
            }
            func hex(_ at: Int) -> UInt32 {
                UInt32(String(decoding: body[at..<at + 4], as: UTF8.self), radix: 16) ?? 0
            }
            while i < body.count {
                let c = body[i]
                guard c == UInt8(ascii: "\\") else {
                    units.append(c)
                    i += 1
                    continue
                }
                let e = body[i + 1]
                i += 2
                switch e {
                case UInt8(ascii: "b"): units.append(0x08)
                case UInt8(ascii: "f"): units.append(0x0C)
                case UInt8(ascii: "n"): units.append(0x0A)
                case UInt8(ascii: "r"): units.append(0x0D)
                case UInt8(ascii: "t"): units.append(0x09)
                case UInt8(ascii: "u"):
                    flush()
                    var value = hex(i)
                    i += 4
                    if (0xD800...0xDBFF).contains(value) {
                        value = 0x10000 + ((value - 0xD800) << 10) + (hex(i + 2) - 0xDC00)
                        i += 6
                    }
                    scalars.append(Unicode.Scalar(value) ?? "\u{FFFD}")
                default: units.append(e)
                }
            }
            flush()
            return String(scalars)
        }
    }
}
