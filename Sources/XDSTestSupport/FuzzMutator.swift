/// A deterministic input mutator for the fuzz harness: byte flips, splices of interesting
/// tokens (`nan`, `inf`, `1e308`, `-1`, `9223372036854775808`, …), replacement of numbers,
/// huge repeats, control characters, truncation, quotes and braces, crossover between seeds.
/// Same seed, same sequence of inputs, on every machine.
///
/// ```swift
/// var mutator = FuzzMutator(seed: 42, maxBytes: 4_096)
/// let input = mutator.mutate(Array("rate 5".utf8), corpus: [])
/// ```
public struct FuzzMutator: Sendable {
    /// Tokens that have broken parsers before: non-finite and huge numbers, integer edges,
    /// signs, JSON/TOML punctuation, control and bidi characters, byte-order marks.
    public static let interestingTokens: [String] = [
        "nan", "NaN", "-nan", "inf", "-inf", "Infinity", "-Infinity", "+inf", "1e308", "-1e308", "1e309", "1e400",
        "1e-308", "4.9e-324", "-1", "-0", "0", "1", "+1", "1.5", "0.5", "1e15", "1e13", "1e12", "1e10",
        "2147483647", "2147483648", "4294967296", "9007199254740993", "9223372036854775807",
        "9223372036854775808", "-9223372036854775808", "-9223372036854775809", "18446744073709551616",
        "99999999999999999999", "0x10", "0x1p3", "1_000", "00000000000000000000001", "1e", ".", "-", "+",
        "null", "true", "false", "\"\"", "\"", "'", "''", "[]", "{}", "[", "]", "{", "}", ",", ":", "=", "\\",
        "\\u0000", "\\ud800", "[[step]]", "[[prefill]]", "\n", "\r\n", "\r", "\t", " ", "\u{0}", "\u{7}",
        "\u{1B}[2J", "\u{1B}]0;x\u{7}", "\u{7F}", "\u{85}", "\u{2028}", "\u{202E}", "\u{FEFF}", "é", "🙂",
        "max", "all", "ms", "h", "s", "m", "#", "\"\"\"", "'''",
    ]

    private var state: UInt64
    /// Inputs never grow beyond this many bytes.
    public let maxBytes: Int
    /// One mutation in `hugeEvery` is a huge repeat up to `maxBytes` (0: never).
    public let hugeEvery: Int

    public init(seed: UInt64, maxBytes: Int = 8_192, hugeEvery: Int = 200) {
        state = seed &* 0x9E37_79B9_7F4A_7C15 ^ 0xD1B5_4A32_D192_ED03
        self.maxBytes = max(16, maxBytes)
        self.hugeEvery = hugeEvery
    }

    /// SplitMix64.
    public mutating func nextRandom() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in `0..<n` (n > 0).
    public mutating func below(_ n: Int) -> Int { Int(nextRandom() % UInt64(max(1, n))) }

    /// 1–4 stacked mutations of `input`; `corpus` supplies material for crossover.
    public mutating func mutate(_ input: [UInt8], corpus: [[UInt8]]) -> [UInt8] {
        var bytes = input
        for _ in 0..<(1 + below(4)) { bytes = mutateOnce(bytes, corpus: corpus) }
        if bytes.count > maxBytes { bytes.removeLast(bytes.count - maxBytes) }
        return bytes
    }

    private mutating func token() -> [UInt8] {
        Array(Self.interestingTokens[below(Self.interestingTokens.count)].utf8)
    }

    private mutating func mutateOnce(_ input: [UInt8], corpus: [[UInt8]]) -> [UInt8] {
        var bytes = input
        let position = below(bytes.count + 1)
        if hugeEvery > 0, below(hugeEvery) == 0 {
            // A huge repeat of a token or of a slice of the input, up to maxBytes.
            let unit = bytes.isEmpty || below(2) == 0 ? token() : Array(bytes[position..<min(bytes.count, position + 1 + below(16))])
            let room = maxBytes - bytes.count
            guard room > 0, !unit.isEmpty else { return bytes }
            var repeated: [UInt8] = []
            repeated.reserveCapacity(room)
            while repeated.count + unit.count <= room { repeated += unit }
            bytes.insert(contentsOf: repeated, at: min(position, bytes.count))
            return bytes
        }
        switch below(12) {
        case 0 where !bytes.isEmpty:  // flip one bit
            let i = below(bytes.count)
            bytes[i] ^= UInt8(1) << UInt8(below(8))
        case 1 where !bytes.isEmpty:  // random byte
            bytes[below(bytes.count)] = UInt8(truncatingIfNeeded: nextRandom())
        case 2, 3:  // insert an interesting token
            bytes.insert(contentsOf: token(), at: position)
        case 4, 5:  // replace a run of digits (a number) with an interesting token
            let digitStarts = bytes.indices.filter { isNumberByte(bytes[$0]) && ($0 == 0 || !isNumberByte(bytes[$0 - 1])) }
            guard !digitStarts.isEmpty else { return bytes + token() }
            let start = digitStarts[below(digitStarts.count)]
            var end = start
            while end < bytes.count, isNumberByte(bytes[end]) { end += 1 }
            bytes.replaceSubrange(start..<end, with: token())
        case 6 where !bytes.isEmpty:  // delete a range
            let start = below(bytes.count)
            bytes.removeSubrange(start..<min(bytes.count, start + 1 + below(32)))
        case 7 where !bytes.isEmpty:  // duplicate a range
            let start = below(bytes.count)
            let slice = bytes[start..<min(bytes.count, start + 1 + below(64))]
            bytes.insert(contentsOf: slice, at: below(bytes.count + 1))
        case 8 where !corpus.isEmpty:  // crossover with another seed
            let other = corpus[below(corpus.count)]
            let cut = below(other.count + 1)
            bytes = Array(bytes[..<position]) + Array(other[cut...])
        case 9:  // truncate
            bytes = Array(bytes[..<position])
        case 10:  // a control character
            bytes.insert(UInt8(below(32)), at: position)
        default:  // punctuation that changes structure
            let punctuation: [UInt8] = Array("\"'{}[],:=#\\\n ".utf8)
            bytes.insert(punctuation[below(punctuation.count)], at: position)
        }
        return bytes
    }

    private func isNumberByte(_ b: UInt8) -> Bool { (b >= 48 && b <= 57) || b == UInt8(ascii: ".") }
}
