import Foundation

/// The body of `POST /v1/chat/completions`, as much of it as a simulated engine can honour.
///
/// Fields the simulation cannot act on (`temperature`, `top_p`, `seed`, `logprobs`, `tools`, …)
/// are not declared, so any value is accepted and ignored. `stop` is accepted and ignored too: the
/// engine's workload model, not the text, decides where a completion ends.
struct ChatCompletionBody: Decodable {
    var model: String?
    var messages: [ChatMessage]
    var maxTokens: Int?
    /// The newer OpenAI name for `max_tokens`; either is honoured.
    var maxCompletionTokens: Int?
    var stream: Bool?
    var streamOptions: StreamOptions?
    var n: Int?
    var user: String?

    enum CodingKeys: String, CodingKey {
        case model, messages, stream, n, user
        case maxTokens = "max_tokens"
        case maxCompletionTokens = "max_completion_tokens"
        case streamOptions = "stream_options"
    }
}

struct ChatMessage: Decodable {
    var role: String
    var content: MessageContent?
}

/// A message's content: a string, or an array of parts of which the `text` parts count.
struct MessageContent: Decodable {
    var text: String

    private struct Part: Decodable {
        var type: String?
        var text: String?
    }

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let string = try? container.decode(String.self) {
            text = string
        } else {
            // Images and audio parts have no text; a simulated engine sizes them at zero.
            text = try container.decode([Part].self).compactMap(\.text).joined(separator: "\n")
        }
    }
}

struct StreamOptions: Decodable {
    var includeUsage: Bool?
    enum CodingKeys: String, CodingKey { case includeUsage = "include_usage" }
}

/// The body of `POST /v1/completions` (the legacy text endpoint). As for chat, sampling fields,
/// `stop`, `echo`, `suffix` and `logprobs` are accepted and ignored.
struct TextCompletionBody: Decodable {
    var model: String?
    var prompt: PromptInput
    var maxTokens: Int?
    var stream: Bool?
    var streamOptions: StreamOptions?
    var n: Int?
    var user: String?

    enum CodingKeys: String, CodingKey {
        case model, prompt, stream, n, user
        case maxTokens = "max_tokens"
        case streamOptions = "stream_options"
    }
}

/// `prompt` is a string, one string in an array, or token ids (one array, or one array in an
/// array). Several prompts in one call would need several choices; they are refused like `n > 1`.
struct PromptInput: Decodable {
    enum Shape { case text(String), tokenIDs(Int), batch(Int) }
    var shape: Shape

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let text = try? container.decode(String.self) {
            shape = .text(text)
        } else if let texts = try? container.decode([String].self) {
            shape = texts.count == 1 ? .text(texts[0]) : .batch(texts.count)
        } else if let ids = try? container.decode([Int].self) {
            shape = .tokenIDs(ids.count)
        } else {
            let batches = try container.decode([[Int]].self)
            shape = batches.count == 1 ? .tokenIDs(batches[0].count) : .batch(batches.count)
        }
    }
}

/// What both endpoints reduce to once the body is checked.
struct ValidatedCompletion {
    var model: String
    var promptTokens: Int
    var maxTokens: Int
    var stream: Bool
    var includeUsageInStream: Bool
    var user: String?
}

/// Turns a body into a ``ValidatedCompletion`` or the 4xx the client should see.
struct CompletionValidator {
    var servedModel: String
    var defaultMaxTokens: Int
    var maxTokensCap: Int

    func validate(_ body: ChatCompletionBody) throws(APIError) -> ValidatedCompletion {
        guard !body.messages.isEmpty else {
            throw .invalidRequest("'messages' must contain at least one message", param: "messages")
        }
        let prompt = PromptTokenizer.chatPrompt(body.messages.map { ($0.role, $0.content?.text ?? "") })
        return try common(
            model: body.model, n: body.n, maxTokens: body.maxCompletionTokens ?? body.maxTokens,
            promptTokens: PromptTokenizer.count(prompt), stream: body.stream,
            streamOptions: body.streamOptions, user: body.user)
    }

    func validate(_ body: TextCompletionBody) throws(APIError) -> ValidatedCompletion {
        let promptTokens: Int
        switch body.prompt.shape {
        case .text(let text): promptTokens = PromptTokenizer.count(text)
        case .tokenIDs(let count): promptTokens = count
        case .batch:
            throw .invalidRequest("only one prompt per request is supported", param: "prompt")
        }
        guard promptTokens > 0 else { throw .invalidRequest("'prompt' must not be empty", param: "prompt") }
        return try common(
            model: body.model, n: body.n, maxTokens: body.maxTokens, promptTokens: promptTokens,
            stream: body.stream, streamOptions: body.streamOptions, user: body.user)
    }

    private func common(
        model: String?, n: Int?, maxTokens: Int?, promptTokens: Int, stream: Bool?,
        streamOptions: StreamOptions?, user: String?
    ) throws(APIError) -> ValidatedCompletion {
        // A missing model means the served one, as in vLLM; a wrong one is a 404 (OpenAI's shape).
        if let model, model != servedModel { throw .modelNotFound(model) }
        if let n, n != 1 { throw .invalidRequest("only n = 1 is supported (got \(n))", param: "n") }
        let requested = maxTokens ?? defaultMaxTokens
        guard requested >= 1 else {
            throw .invalidRequest("'max_tokens' must be at least 1 (got \(requested))", param: "max_tokens")
        }
        return ValidatedCompletion(
            model: servedModel, promptTokens: promptTokens,
            // Capped rather than refused: clients often send a model's whole context as max_tokens.
            maxTokens: min(requested, maxTokensCap), stream: stream ?? false,
            includeUsageInStream: streamOptions?.includeUsage ?? false, user: user)
    }
}

extension APIError {
    /// A client-facing message for a body that did not decode: which field, what was wrong —
    /// never the Swift error dump.
    static func undecodable(_ error: any Error) -> APIError {
        guard let error = error as? DecodingError else {
            return .invalidRequest("request body is not valid JSON", param: nil)
        }
        func path(_ context: DecodingError.Context) -> String? {
            let keys = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }
            return keys.isEmpty ? nil : keys.joined(separator: ".").replacingOccurrences(of: ".[", with: "[")
        }
        switch error {
        case .keyNotFound(let key, let context):
            let field = (path(context).map { $0 + "." } ?? "") + key.stringValue
            return .invalidRequest("missing required field '\(field)'", param: field)
        case .typeMismatch(_, let context), .valueNotFound(_, let context):
            guard let field = path(context) else {
                return .invalidRequest("request body must be a JSON object", param: nil)
            }
            return .invalidRequest("field '\(field)' has the wrong type", param: field)
        case .dataCorrupted(let context):
            if let field = path(context) {
                return .invalidRequest("field '\(field)' has an invalid value", param: field)
            }
            return .invalidRequest("request body is not valid JSON", param: nil)
        @unknown default:
            return .invalidRequest("request body is not valid JSON", param: nil)
        }
    }
}
