/// A deterministic stand-in for DeepSeek's BPE tokenizer, good enough to size prompts.
///
/// The engine only needs token *counts* (the data plane is simulated), and a real BPE vocabulary
/// would be a large download for no behavioural gain. Rules:
/// - a run of letters or digits is a word; a word counts one token per started 4 characters
///   (`"the"` → 1, `"tokens"` → 2, `"understanding"` → 4);
/// - every other visible character (punctuation, symbols, emoji) is one token;
/// - whitespace separates and counts nothing.
/// English prose comes out at about 1.3 tokens per word, close to what BPE tokenizers report.
///
/// Chat messages are counted after ``chatPrompt(_:)`` joins them with role markers, the way a chat
/// template would, so the markers cost tokens too.
///
/// ```swift
/// PromptTokenizer.count("Hello, world!")   // 6: "Hell" "o" "," "worl" "d" "!"
/// ```
public enum PromptTokenizer {
    /// Characters per word piece; longer words are split every `pieceLength` characters.
    public static let pieceLength = 4

    /// Number of tokens in `text`.
    public static func count(_ text: String) -> Int {
        var tokens = 0
        var wordLength = 0
        for character in text {
            if character.isLetter || character.isNumber {
                // A new piece starts at characters 0, 4, 8, … of a word.
                if wordLength % pieceLength == 0 { tokens += 1 }
                wordLength += 1
            } else {
                wordLength = 0
                if !character.isWhitespace { tokens += 1 }
            }
        }
        return tokens
    }

    /// The text a chat template would feed the model: each message as `<|role|>\ncontent\n`, then
    /// `<|assistant|>\n` for the reply being generated.
    public static func chatPrompt(_ messages: [(role: String, content: String)]) -> String {
        var prompt = ""
        for message in messages {
            prompt += "<|\(message.role)|>\n\(message.content)\n"
        }
        return prompt + "<|assistant|>\n"
    }

    /// Size of the vocabulary token ids are drawn from (DeepSeek-V3's).
    public static let vocabularySize = 129_280

    /// The token ids of `text`: one per token ``count(_:)`` counts (so `tokenIDs(t).count ==
    /// count(t)`), each a stable hash of the token's characters into 0..<``vocabularySize``
    /// (FNV-1a, the same on every platform and run). Equal text gives equal ids.
    public static func tokenIDs(_ text: String) -> [Int] {
        var ids: [Int] = []
        var piece = ""
        func flush() {
            guard !piece.isEmpty else { return }
            ids.append(Int(fnv1a(piece) % UInt64(vocabularySize)))
            piece = ""
        }
        var wordLength = 0
        for character in text {
            if character.isLetter || character.isNumber {
                if wordLength % pieceLength == 0 { flush() }
                piece.append(character)
                wordLength += 1
            } else {
                flush()
                wordLength = 0
                if !character.isWhitespace {
                    piece.append(character)
                    flush()
                }
            }
        }
        flush()
        return ids
    }

    /// Tokens per prefix block the face hashes (a quarter of the engine's default 128-token KV block; the engine
    /// rebases the keys to its own KV block size, a multiple of this).
    public static let prefixBlockTokens = 64

    /// One content key per *full* block of `blockTokens` ids (a trailing partial block is not
    /// cacheable), as a trace's `hash_ids`: the engine chains them, so block i matches only if
    /// blocks 0…i all do.
    public static func blockKeys(_ ids: [Int], blockTokens: Int = prefixBlockTokens) -> [UInt64] {
        guard blockTokens > 0 else { return [] }
        return stride(from: 0, to: ids.count - blockTokens + 1, by: blockTokens).map { start in
            var hash: UInt64 = 0xcbf2_9ce4_8422_2325
            for id in ids[start..<start + blockTokens] {
                for shift in stride(from: 0, to: 32, by: 8) {
                    hash = (hash ^ UInt64((id >> shift) & 0xff)) &* 0x100_0000_01b3
                }
            }
            return hash
        }
    }

    private static func fnv1a(_ text: String) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        return hash
    }
}
