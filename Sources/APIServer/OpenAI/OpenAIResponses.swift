/// Response bodies in OpenAI's wire format. Keys that OpenAI sends as `null` (`finish_reason`
/// while streaming, `logprobs`) are written as `null`, not omitted, because some clients index them.

struct Usage: Encodable, Equatable {
    var promptTokens: Int
    var completionTokens: Int
    var totalTokens: Int { promptTokens + completionTokens }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(promptTokens, forKey: .promptTokens)
        try c.encode(completionTokens, forKey: .completionTokens)
        try c.encode(totalTokens, forKey: .totalTokens)
    }
    enum CodingKeys: String, CodingKey {
        case promptTokens = "prompt_tokens", completionTokens = "completion_tokens", totalTokens =
            "total_tokens"
    }
}

/// Which of the two endpoints a response belongs to: they differ only in names and nesting.
enum CompletionFlavor: Sendable {
    case chat, text

    var idPrefix: String { self == .chat ? "chatcmpl-" : "cmpl-" }
    var object: String { self == .chat ? "chat.completion" : "text_completion" }
    var chunkObject: String { self == .chat ? "chat.completion.chunk" : "text_completion" }
}

/// What identifies one completion in every chunk and in the final body.
struct CompletionHeader: Sendable {
    var id: String
    var created: Int
    var model: String
    var flavor: CompletionFlavor
}

/// One choice of a chunk or of a full response. `content == nil` with `role` set is the chat
/// stream's opening delta; `errorMessage` is the error chunk of a stream that failed midway.
struct Choice: Encodable {
    var flavor: CompletionFlavor
    var streaming: Bool
    var role: String?
    var content: String?
    var finishReason: String?

    enum Keys: String, CodingKey {
        case index, delta, message, text, logprobs, finishReason = "finish_reason"
    }
    enum MessageKeys: String, CodingKey { case role, content }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: Keys.self)
        try c.encode(0, forKey: .index)
        switch (flavor, streaming) {
        case (.chat, true):
            var delta = c.nestedContainer(keyedBy: MessageKeys.self, forKey: .delta)
            try delta.encodeIfPresent(role, forKey: .role)
            try delta.encodeIfPresent(content, forKey: .content)
        case (.chat, false):
            var message = c.nestedContainer(keyedBy: MessageKeys.self, forKey: .message)
            try message.encode("assistant", forKey: .role)
            try message.encode(content ?? "", forKey: .content)
        case (.text, _):
            try c.encode(content ?? "", forKey: .text)
            try c.encodeNil(forKey: .logprobs)
        }
        try c.encode(finishReason, forKey: .finishReason)
    }
}

/// A full response (non-streaming) or one stream chunk; `usage` is present on full responses and
/// on the last chunk when the client asked for `stream_options.include_usage`.
struct CompletionBody: Encodable {
    var header: CompletionHeader
    var streaming: Bool
    var choices: [Choice]
    var usage: Usage?

    enum Keys: String, CodingKey { case id, object, created, model, choices, usage }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: Keys.self)
        try c.encode(header.id, forKey: .id)
        try c.encode(streaming ? header.flavor.chunkObject : header.flavor.object, forKey: .object)
        try c.encode(header.created, forKey: .created)
        try c.encode(header.model, forKey: .model)
        try c.encode(choices, forKey: .choices)
        try c.encodeIfPresent(usage, forKey: .usage)
    }
}

/// `GET /v1/models`.
struct ModelList: Encodable {
    struct Model: Encodable {
        var id: String
        var object = "model"
        var created: Int
        var ownedBy = "xds"
        enum CodingKeys: String, CodingKey { case id, object, created, ownedBy = "owned_by" }
    }
    var object = "list"
    var data: [Model]
}

/// Server-sent-event framing shared by the completion and admin streams.
enum ServerSentEvent {
    /// `data: …` + blank line; OpenAI streams use unnamed events.
    static func data(_ payload: String) -> String { "data: \(payload)\n\n" }
    /// `event: NAME` + `data: …` + blank line; the admin stream names its events.
    static func named(_ name: String, _ payload: String) -> String { "event: \(name)\ndata: \(payload)\n\n" }
    static let done = "data: [DONE]\n\n"
}
