/// Response bodies in OpenAI's wire format, written with keys in OpenAI's order (`id`, `object`,
/// `created`, `model`, `choices`, `usage`) so a stream reads like OpenAI's byte for byte in shape;
/// Foundation's encoder would scramble the order. Keys that OpenAI sends as `null`
/// (`finish_reason` while streaming, `logprobs`) are written as `null`, not omitted, because some
/// clients index them.

struct Usage: Equatable {
    var promptTokens: Int
    var completionTokens: Int
    /// Prompt tokens served from the prefix cache (`prompt_tokens_details.cached_tokens`).
    var cachedTokens: Int = 0
    var totalTokens: Int { promptTokens + completionTokens }

    var json: String {
        var o = JSONObject()
        o.add("prompt_tokens", promptTokens)
        o.add("completion_tokens", completionTokens)
        o.add("total_tokens", totalTokens)
        var details = JSONObject()
        details.add("cached_tokens", cachedTokens)
        o.add("prompt_tokens_details", raw: details.json)
        return o.json
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
/// stream's opening delta; neither set is the closing delta (`{}`) that carries `finish_reason`.
struct Choice {
    var flavor: CompletionFlavor
    var streaming: Bool
    var role: String?
    var content: String?
    var finishReason: String?

    var json: String {
        var o = JSONObject()
        o.add("index", 0)
        switch (flavor, streaming) {
        case (.chat, true):
            var delta = JSONObject()
            if let role { delta.add("role", role) }
            if let content { delta.add("content", content) }
            o.add("delta", raw: delta.json)
        case (.chat, false):
            var message = JSONObject()
            message.add("role", "assistant")
            message.add("content", content ?? "")
            o.add("message", raw: message.json)
        case (.text, _):
            o.add("text", content ?? "")
            o.add("logprobs", raw: "null")
        }
        o.add("finish_reason", finishReason)
        return o.json
    }
}

/// A full response (non-streaming) or one stream chunk; `usage` is present on full responses and
/// on the last chunk when the client asked for `stream_options.include_usage`.
struct CompletionBody {
    var header: CompletionHeader
    var streaming: Bool
    var choices: [Choice]
    var usage: Usage?

    var json: String {
        var o = JSONObject()
        o.add("id", header.id)
        o.add("object", streaming ? header.flavor.chunkObject : header.flavor.object)
        o.add("created", header.created)
        o.add("model", header.model)
        o.add("choices", raw: "[" + choices.map(\.json).joined(separator: ",") + "]")
        if let usage { o.add("usage", raw: usage.json) }
        return o.json
    }
}

/// A JSON object written field by field, in the order the fields are added.
struct JSONObject {
    private var text = "{"
    private var isEmpty = true

    mutating func add(_ key: String, raw value: String) {
        if !isEmpty { text += "," }
        isEmpty = false
        text += Self.quoted(key) + ":" + value
    }
    mutating func add(_ key: String, _ value: Int) { add(key, raw: String(value)) }
    /// A string, or `null` when nil.
    mutating func add(_ key: String, _ value: String?) { add(key, raw: value.map(Self.quoted) ?? "null") }

    var json: String { text + "}" }

    /// `value` as a JSON string literal (RFC 8259 §7: quote, backslash and control characters escaped).
    static func quoted(_ value: String) -> String {
        var out = "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
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
