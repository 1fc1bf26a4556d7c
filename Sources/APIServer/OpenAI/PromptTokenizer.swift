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
}
