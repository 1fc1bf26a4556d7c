/// A tiny scanner for the flat JSON objects of a JSONL trace: string keys whose values are
/// numbers, arrays of numbers, strings, booleans or null. Hand-written because it is an
/// order of magnitude faster than a general decoder on hour-long traces and reports
/// precise problems.
struct FlatJSONScanner {
    enum Value { case number(Double), numbers([Double]), other }
    struct Problem: Error { let message: String }

    let bytes: ArraySlice<UInt8>
    private var index: Int

    init(bytes: ArraySlice<UInt8>) {
        self.bytes = bytes
        index = bytes.startIndex
    }

    mutating func object() throws(Problem) -> [String: Value] {
        var result: [String: Value] = [:]
        try expect("{")
        skipSpace()
        if peek == UInt8(ascii: "}") {
            index += 1
            return result
        }
        while true {
            skipSpace()
            let key = try string()
            try expect(":")
            result[key] = try value()
            skipSpace()
            guard let c = peek else { throw Problem(message: "unterminated JSON object") }
            index += 1
            if c == UInt8(ascii: "}") { break }
            if c != UInt8(ascii: ",") { throw Problem(message: "expected ',' or '}' in JSON object") }
        }
        skipSpace()
        if index < bytes.endIndex { throw Problem(message: "unexpected text after the JSON object") }
        return result
    }

    private var peek: UInt8? { index < bytes.endIndex ? bytes[index] : nil }

    private mutating func skipSpace() {
        while let c = peek, c == 32 || c == 9 || c == 13 { index += 1 }
    }

    private mutating func expect(_ character: Character) throws(Problem) {
        skipSpace()
        guard peek == character.asciiValue else { throw Problem(message: "expected '\(character)' in JSON") }
        index += 1
    }

    private mutating func string() throws(Problem) -> String {
        try expect("\"")
        let start = index
        while let c = peek, c != UInt8(ascii: "\"") { index += c == UInt8(ascii: "\\") ? 2 : 1 }
        guard index < bytes.endIndex else { throw Problem(message: "unterminated JSON string") }
        let text = String(decoding: bytes[start..<index], as: UTF8.self)
        index += 1
        return text
    }

    private mutating func number() throws(Problem) -> Double {
        skipSpace()
        let start = index
        // Plain digits (every number of a Mooncake trace) are read here: up to 15 digits an
        // integer is exact in a Double, so the value is the one `Double(String)` would give.
        var integer = 0
        while let c = peek, c >= 48 && c <= 57, index - start < 15 {
            integer = integer * 10 + Int(c - 48)
            index += 1
        }
        if index > start, peek.map({ !(($0 >= 48 && $0 <= 57) || $0 == 45 || $0 == 43 || $0 == 46 || $0 == 101 || $0 == 69) }) ?? true {
            return Double(integer)
        }
        index = start
        while let c = peek, (c >= 48 && c <= 57) || c == 45 || c == 43 || c == 46 || c == 101 || c == 69 { index += 1 }
        guard start < index, let n = Double(String(decoding: bytes[start..<index], as: UTF8.self)) else {
            throw Problem(message: "expected a JSON number")
        }
        return n
    }

    private mutating func value() throws(Problem) -> Value {
        skipSpace()
        switch peek {
        case UInt8(ascii: "["):
            index += 1
            var numbers: [Double] = []
            skipSpace()
            if peek == UInt8(ascii: "]") {
                index += 1
                return .numbers(numbers)
            }
            while true {
                numbers.append(try number())
                skipSpace()
                guard let c = peek else { throw Problem(message: "unterminated JSON array") }
                index += 1
                if c == UInt8(ascii: "]") { return .numbers(numbers) }
                if c != UInt8(ascii: ",") { throw Problem(message: "expected ',' or ']' in JSON array") }
            }
        case UInt8(ascii: "\""):
            _ = try string()
            return .other
        case UInt8(ascii: "t"), UInt8(ascii: "f"), UInt8(ascii: "n"):
            while let c = peek, c >= 97 && c <= 122 { index += 1 }
            return .other
        default:
            return .number(try number())
        }
    }
}
