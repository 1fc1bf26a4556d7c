import Foundation
import NIOCore

/// Response bodies in OpenAI's wire format, written by ``JSONWire``'s one encoder (keys sorted, so
/// the same body is the same bytes every time; OpenAI's clients read keys by name, not position).
/// Keys that OpenAI sends as `null` (`finish_reason` while streaming, `logprobs`) are written as
/// `null`, not omitted, because some clients index them: those types encode by hand for that.

struct Usage: Equatable, Encodable {
    var promptTokens: Int
    var completionTokens: Int
    /// Prompt tokens served from the prefix cache (`prompt_tokens_details.cached_tokens`).
    var cachedTokens: Int = 0
    var totalTokens: Int { promptTokens + completionTokens }

    private struct PromptTokensDetails: Encodable {
        var cachedTokens: Int
        enum CodingKeys: String, CodingKey { case cachedTokens = "cached_tokens" }
    }
    private enum CodingKeys: String, CodingKey {
        case promptTokens = "prompt_tokens", completionTokens = "completion_tokens", totalTokens = "total_tokens"
        case promptTokensDetails = "prompt_tokens_details"
    }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(promptTokens, forKey: .promptTokens)
        try c.encode(completionTokens, forKey: .completionTokens)
        try c.encode(totalTokens, forKey: .totalTokens)
        try c.encode(PromptTokensDetails(cachedTokens: cachedTokens), forKey: .promptTokensDetails)
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

/// One choice of a chunk or of a full response. `role` set (with `content` "") is the chat
/// stream's opening delta; neither set is the closing delta (`{}`) that carries `finish_reason`.
struct Choice: Encodable {
    var flavor: CompletionFlavor
    var streaming: Bool
    var role: String?
    var content: String?
    var finishReason: String?

    /// A chat stream's `delta`: only the keys that changed (absent, not null).
    private struct Delta: Encodable {
        var role: String?
        var content: String?
    }
    private struct Message: Encodable {
        var role = "assistant"
        var content: String
    }
    private enum CodingKeys: String, CodingKey {
        case index, delta, message, text, logprobs
        case finishReason = "finish_reason"
    }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(0, forKey: .index)
        switch (flavor, streaming) {
        case (.chat, true):
            try c.encode(Delta(role: role, content: content), forKey: .delta)
        case (.chat, false):
            try c.encode(Message(content: content ?? ""), forKey: .message)
        case (.text, _):
            try c.encode(content ?? "", forKey: .text)
        }
        // Every choice of both endpoints, whole or streamed, as OpenAI and vLLM write it (chat
        // choices had no key at all: `choice["logprobs"]` raised in a raw-JSON client).
        try c.encodeNil(forKey: .logprobs)
        try c.encodeOrNull(finishReason, forKey: .finishReason)
    }
}

/// A full response (non-streaming) or one stream chunk; `usage` is present on full responses and
/// on the last chunk when the client asked for `stream_options.include_usage`.
struct CompletionBody: Encodable {
    var header: CompletionHeader
    var streaming: Bool
    var choices: [Choice]
    var usage: Usage?

    private enum CodingKeys: String, CodingKey { case id, object, created, model, choices, usage }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
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
        /// The context window, as vLLM's model card carries it (clients size prompts by it).
        var maxModelLen: Int
        enum CodingKeys: String, CodingKey { case id, object, created, ownedBy = "owned_by", maxModelLen = "max_model_len" }
    }
    var object = "list"
    var data: [Model]
}

/// Server-sent-event framing shared by the completion and admin streams.
enum ServerSentEvent {
    /// `data: …` + blank line; OpenAI streams use unnamed events.
    static func data(_ payload: String) -> String { "data: \(payload)\n\n" }
    /// `data: JSON` + blank line, encoded straight into the buffer the stream writes (one per
    /// streamed token, so no detour through String).
    static func data(json value: some Encodable) -> ByteBuffer {
        let json = JSONWire.data(value)
        var buffer = ByteBuffer()
        buffer.reserveCapacity(json.count + 8)
        buffer.writeString("data: ")
        buffer.writeBytes(json)
        buffer.writeString("\n\n")
        return buffer
    }
    /// `event: NAME` + `data: …` + blank line; the admin stream names its events.
    static func named(_ name: String, _ payload: String) -> String { "event: \(name)\ndata: \(payload)\n\n" }
    static let done = "data: [DONE]\n\n"
}
