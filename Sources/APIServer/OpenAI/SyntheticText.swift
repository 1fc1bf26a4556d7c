/// Readable filler text for simulated completions, produced token by token.
///
/// The engine decides *how many* tokens a request gets and *when*; this decides what they say.
/// It is seeded by the engine's request id, so the same session replays the same words. Every
/// emitted token is one ``PromptTokenizer`` token (a word piece of at most four characters, or a
/// punctuation mark), so counting the returned text gives back exactly the engine's token count —
/// also when the text is cut into stream chunks at any token boundary.
///
/// ```swift
/// var text = SyntheticText(seed: 17)
/// let first = text.next(3)      // e.g. "Expe" + "rts" + " rout" = "Experts rout"
/// PromptTokenizer.count(first)  // 3
/// ```
public struct SyntheticText: Sendable {
    private var random: SplitMix64
    private var pending: [String] = []
    private var pendingIndex = 0
    private var atStart = true

    public init(seed: Int) {
        random = SplitMix64(seed: UInt64(bitPattern: Int64(seed)) &+ 0x5DEE_CE66)
    }

    /// The next `count` tokens as text.
    public mutating func next(_ count: Int) -> String {
        var text = ""
        for _ in 0..<max(0, count) {
            if pendingIndex == pending.count { refill() }
            text += pending[pendingIndex]
            pendingIndex += 1
        }
        return text
    }

    /// Queues the tokens of one sentence: 5–12 words, maybe a comma, a full stop.
    private mutating func refill() {
        pending.removeAll(keepingCapacity: true)
        pendingIndex = 0
        let words = 5 + Int(random.next() % 8)
        for index in 0..<words {
            var word = Self.vocabulary[Int(random.next() % UInt64(Self.vocabulary.count))]
            if index == 0 { word = word.prefix(1).uppercased() + word.dropFirst() }
            appendPieces(of: word, leadingSpace: !(atStart && index == 0))
            if index < words - 1, index > 1, random.next() % 7 == 0 { pending.append(",") }
        }
        pending.append(".")
        atStart = false
    }

    /// Splits a word into the same 4-character pieces the tokenizer counts.
    private mutating func appendPieces(of word: String, leadingSpace: Bool) {
        var rest = Substring(word)
        var first = true
        while !rest.isEmpty {
            let piece = rest.prefix(PromptTokenizer.pieceLength)
            pending.append((first && leadingSpace ? " " : "") + piece)
            rest = rest.dropFirst(piece.count)
            first = false
        }
    }

    /// Words from the domain, so a demo stream reads like an operator's notebook.
    static let vocabulary = [
        "the", "pod", "serves", "tokens", "experts", "route", "each", "layer", "decode", "prefill",
        "batch", "cache", "blocks", "are", "pulled", "from", "memory", "when", "load", "shifts",
        "dies", "share", "work", "across", "the", "fabric", "requests", "arrive", "and", "leave",
        "latency", "stays", "low", "while", "throughput", "grows", "a", "node", "drains", "slowly",
        "heartbeats", "report", "healthy", "links", "attention", "runs", "beside", "every", "step",
        "of", "to", "with", "balance", "moves", "hot", "weights", "quietly", "scheduler", "picks",
        "group", "prefix", "hits", "save", "time", "bandwidth", "is", "plenty", "here", "in",
    ]
}

/// A tiny seeded generator (Steele et al., "Fast splittable pseudorandom number generators", 2014):
/// deterministic across platforms, unlike `SystemRandomNumberGenerator`.
struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
