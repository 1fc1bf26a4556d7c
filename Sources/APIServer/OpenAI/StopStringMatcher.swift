/// Finds a request's `stop` strings in its reply as the reply grows, in time proportional to the
/// new text alone, whatever the stop strings' length.
///
/// A body may hold stop strings of nearly a megabyte. Searching the reply's tail again for each of
/// them at every chunk cost time in the stop strings' length per chunk: ten streams with four
/// 60,000-emoji stop strings took both cores of the server for as long as they ran, and another
/// client's first chunk waited 43 s instead of 26 ms. Here each stop string is a Knuth–Morris–Pratt
/// automaton over UTF-8 bytes: its table is built once per request, and each byte of the reply
/// moves every automaton by amortised constant work.
///
/// Matching is on UTF-8 bytes, which for valid UTF-8 on both sides is matching on code points,
/// with no normalisation: what vLLM's stop checker does (Python's `str.find`).
struct StopStringMatcher {
    private struct Automaton {
        let pattern: [UInt8]
        /// `fallback[i]`: the length of the longest proper prefix of `pattern[0...i]` that is also
        /// its suffix (the KMP failure function).
        let fallback: [Int32]
        /// Bytes of `pattern` matched by the end of the text fed so far.
        var matched = 0

        init(_ stop: String) {
            pattern = Array(stop.utf8)
            var fallback = [Int32](repeating: 0, count: pattern.count)
            var k = 0
            for i in pattern.indices.dropFirst() {
                while k > 0, pattern[i] != pattern[k] { k = Int(fallback[k - 1]) }
                if pattern[i] == pattern[k] { k += 1 }
                fallback[i] = Int32(k)
            }
            self.fallback = fallback
        }

        /// Moves on by one byte; true when a whole match ends with it.
        mutating func step(_ byte: UInt8) -> Bool {
            while matched > 0, pattern[matched] != byte { matched = Int(fallback[matched - 1]) }
            if pattern[matched] == byte { matched += 1 }
            guard matched == pattern.count else { return false }
            matched = Int(fallback[matched - 1])
            return true
        }
    }

    private var automata: [Automaton]
    /// UTF-8 bytes of the reply fed so far.
    private(set) var fedBytes = 0

    /// `stops`: non-empty strings (the validator refuses empty ones).
    init(_ stops: [String]) {
        automata = stops.filter { !$0.isEmpty }.map(Automaton.init)
    }

    var isEmpty: Bool { automata.isEmpty }

    /// UTF-8 bytes of the longest stop string (0 with none).
    var longestBytes: Int { automata.map(\.pattern.count).max() ?? 0 }

    /// A stop string found in the reply: its UTF-8 offsets in the whole reply.
    struct Match: Equatable {
        var start: Int
        var end: Int
    }

    /// Feeds the reply's next piece. Returns the earliest-starting stop string that ends inside
    /// `text` and that `accept` takes (given its start offset), the shorter of two that start
    /// together (it ends first); nil when there is none. For each stop string only its first
    /// match in `text` that `accept` takes counts, as a search from the left finds it.
    mutating func feed(_ text: String, accept: (Int) -> Bool) -> Match? {
        var earliest: Match?
        var found = [Bool](repeating: false, count: automata.count)
        for byte in text.utf8 {
            fedBytes += 1
            for i in automata.indices {
                // Every automaton steps on every byte, even one that already matched in `text`.
                guard automata[i].step(byte), !found[i] else { continue }
                let start = fedBytes - automata[i].pattern.count
                guard accept(start) else { continue }
                found[i] = true
                // Bytes come in order, so a later match with the same start is a longer one.
                if start < earliest?.start ?? .max { earliest = Match(start: start, end: fedBytes) }
            }
        }
        return earliest
    }
}
