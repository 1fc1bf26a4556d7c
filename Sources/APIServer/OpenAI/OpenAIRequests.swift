import Foundation
import PodModel

/// The body of `POST /v1/chat/completions`, as much of it as a simulated engine can honour.
///
/// Sampling fields the simulation cannot act on (`temperature`, `top_p`, the penalties,
/// `top_logprobs`, `seed`, `logit_bias`, vLLM's `top_k`, `min_p`, `repetition_penalty`) are decoded
/// only to check them against their ranges (``CompletionValidator``), then ignored; `tools` and
/// `functions` are checked for shape (``ReplyShapeFields``) and ignored; undeclared fields
/// (`metadata`, …) are accepted and ignored. Options that would
/// change what the reply holds (``ReplyShapeFields``: log-probabilities, JSON output, a forced tool
/// call) are refused with a 400 naming them, not answered without what they asked. The length fields
/// behave as in vLLM's OpenAI server (``BenchmarkFields``): `ignore_eos`, `min_tokens`, and `stop`
/// strings, which end the reply where the generated text contains them.
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
    var sampling: SamplingFields
    var bench: BenchmarkFields
    var shape: ReplyShapeFields

    enum CodingKeys: String, CodingKey {
        case model, messages, stream, n, user
        case maxTokens = "max_tokens"
        case maxCompletionTokens = "max_completion_tokens"
        case streamOptions = "stream_options"
    }

    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        model = try c.decodeIfPresent(String.self, forKey: .model)
        messages = try c.decode([ChatMessage].self, forKey: .messages)
        maxTokens = try c.decodeIfPresent(Int.self, forKey: .maxTokens)
        maxCompletionTokens = try c.decodeIfPresent(Int.self, forKey: .maxCompletionTokens)
        stream = try c.decodeIfPresent(Bool.self, forKey: .stream)
        streamOptions = try c.decodeIfPresent(StreamOptions.self, forKey: .streamOptions)
        n = try c.decodeIfPresent(Int.self, forKey: .n)
        user = try c.decodeIfPresent(String.self, forKey: .user)
        sampling = try SamplingFields(from: decoder)
        bench = try BenchmarkFields(from: decoder)
        shape = try ReplyShapeFields(from: decoder)
    }
}

/// Options that change what a reply holds rather than how it is sampled. A simulated engine's reply
/// is placeholder text: it has no token log-probabilities, is not JSON, and calls no tool. Answering
/// such a request with plain text would be a silently wrong answer (the client's `json.loads` or
/// `tool_calls[0]` fails later, far from the cause), so ``CompletionValidator`` refuses these with a
/// 400 naming the option, as OpenAI does for what a model does not support. `echo` (legacy) is
/// honoured for text prompts.
struct ReplyShapeFields: Decodable {
    /// Chat `logprobs: true`, or a legacy `logprobs` count (even 0: the sampled token's own).
    var logprobs = false
    /// `response_format.type` (`text` is what every reply is).
    var responseFormat: String?
    /// `tool_choice` when it is not `none` or `auto` (`required`, or a named function), as a
    /// message names it.
    var forcedToolChoice: String?
    /// The same for the deprecated `function_call` (`{"name": "f"}` forces a call to `f`): it was
    /// answered 200 with text and no `function_call`, as `tool_choice` no longer is.
    var forcedFunctionCall: String?
    /// The first tool whose `type` is neither `function` nor `custom` (the kinds OpenAI's chat
    /// endpoint takes; vLLM takes `function`): its index and type. The tool lists are otherwise only decoded to check
    /// their shape (``ToolSpec``): `"tools": "x"` was answered 200.
    var unknownToolType: (index: Int, type: String)?
    var suffix: String?
    var echo = false
    /// The field that asks for spoken output: `modalities` naming "audio", else an `audio` object
    /// (its voice and format); nil when none does. Such a request was answered with text and
    /// `audio: null`, which a client playing `message.audio.data` finds only when it fails.
    var audioOutput: String?
    /// The first of the fields a placeholder reply cannot honour (``UnservedField``: vLLM's
    /// reply-shaping fields, sent through the openai package's `extra_body`, and OpenAI's
    /// `web_search_options`) whose value asks for something, and what the reply lacks for it.
    /// They were answered 200 with unconstrained text and none of what they asked, as
    /// `response_format` no longer is.
    var unservedField: (field: String, lacks: String)?

    /// Fields that change what a reply holds and that it cannot honour, in the order they are
    /// looked at.
    private enum UnservedField: String, CodingKey, CaseIterable {
        // Constrained decoding (vLLM's `response_format`): asking for anything is refused.
        case guidedJSON = "guided_json", guidedRegex = "guided_regex", guidedChoice = "guided_choice"
        case guidedGrammar = "guided_grammar", structuralTag = "structural_tag", structuredOutputs = "structured_outputs"
        case promptLogprobs = "prompt_logprobs"
        case stopTokenIDs = "stop_token_ids", allowedTokenIDs = "allowed_token_ids", badWords = "bad_words"
        case returnTokenIDs = "return_token_ids"
        // vLLM's left truncation of the prompt, and OpenAI's web search: served and ignored, the
        // first's usage and context check counted every prompt token, the second searched nothing.
        case truncatePromptTokens = "truncate_prompt_tokens", webSearchOptions = "web_search_options"

        /// What the field asks for that the reply lacks, or nil when its value asks for nothing
        /// (null, an empty list, `false`). A value of the wrong type is refused as such.
        func asks(in c: KeyedDecodingContainer<UnservedField>) throws -> String? {
            switch self {
            case .guidedJSON, .guidedRegex, .guidedChoice, .guidedGrammar, .structuralTag, .structuredOutputs:
                guard c.contains(self), try !c.decodeNil(forKey: self) else { return nil }
                return "not constrained to a schema, pattern, choice or grammar (leave it out)"
            case .promptLogprobs:
                return try c.decodeIfPresent(Int.self, forKey: self).map { _ in "with no token probabilities (leave it out)" }
            case .stopTokenIDs, .allowedTokenIDs:
                return try c.decodeIfPresent([Int].self, forKey: self)?.isEmpty == false
                    ? "not sampled from token ids (leave it out; 'stop' strings and 'max_tokens' end a reply)" : nil
            case .badWords:
                return try c.decodeIfPresent([String].self, forKey: self)?.isEmpty == false ? "not sampled, so no word can be banned (leave it out)" : nil
            case .returnTokenIDs:
                return try c.decodeIfPresent(Bool.self, forKey: self) == true ? "with no token ids (send false, or leave it out)" : nil
            case .truncatePromptTokens:
                return try c.decodeIfPresent(Int.self, forKey: self).map { _ in
                    "and the prompt is not truncated: every prompt token is prefilled and counted (leave it out)"
                }
            case .webSearchOptions:
                guard c.contains(self), try !c.decodeNil(forKey: self) else { return nil }
                return "with no web search (leave it out)"
            }
        }
    }

    private struct ResponseFormat: Decodable { var type: String }
    private struct NamedTool: Decodable {
        struct Function: Decodable { var name: String? }
        var function: Function?
    }
    private struct NamedFunction: Decodable { var name: String? }
    /// A `tools` entry: `{"type": "function", "function": {"name": …}}` (its description and
    /// parameters are not read).
    private struct ToolSpec: Decodable {
        struct Function: Decodable { var name: String }
        /// The tool kinds taken (OpenAI's `custom` tools hold free-form input; like functions,
        /// they are ignored).
        static let types: Set<String> = ["function", "custom"]
        var type: String
        enum CodingKeys: String, CodingKey { case type, function }
        init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            type = try c.decode(String.self, forKey: .type)
            if type == "function" { _ = try c.decode(Function.self, forKey: .function) }
        }
    }
    /// A deprecated `functions` entry: `{"name": …}`.
    private struct FunctionSpec: Decodable { var name: String }
    enum CodingKeys: String, CodingKey {
        case logprobs, suffix, echo, modalities, audio
        case responseFormat = "response_format"
        case toolChoice = "tool_choice"
        case functionCall = "function_call"
        case tools, functions
    }

    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        if let flag = try? c.decodeIfPresent(Bool.self, forKey: .logprobs) {
            logprobs = flag
        } else {
            logprobs = try c.decodeIfPresent(Int.self, forKey: .logprobs) != nil
        }
        responseFormat = try c.decodeIfPresent(ResponseFormat.self, forKey: .responseFormat)?.type
        if let choice = try? c.decodeIfPresent(String.self, forKey: .toolChoice) {
            forcedToolChoice = ["none", "auto"].contains(choice) ? nil : InputEcho.quoted(choice)
        } else if let named = try c.decodeIfPresent(NamedTool.self, forKey: .toolChoice) {
            forcedToolChoice = "function " + (named.function?.name.map { InputEcho.quoted($0) } ?? "(unnamed)")
        }
        if let choice = try? c.decodeIfPresent(String.self, forKey: .functionCall) {
            forcedFunctionCall = ["none", "auto"].contains(choice) ? nil : InputEcho.quoted(choice)
        } else if let named = try c.decodeIfPresent(NamedFunction.self, forKey: .functionCall) {
            forcedFunctionCall = "function " + (named.name.map { InputEcho.quoted($0) } ?? "(unnamed)")
        }
        let tools = try c.decodeIfPresent([ToolSpec].self, forKey: .tools) ?? []
        if let index = tools.firstIndex(where: { !ToolSpec.types.contains($0.type) }) { unknownToolType = (index, tools[index].type) }
        _ = try c.decodeIfPresent([FunctionSpec].self, forKey: .functions)
        suffix = try c.decodeIfPresent(String.self, forKey: .suffix)
        echo = try c.decodeIfPresent(Bool.self, forKey: .echo) ?? false
        if try c.decodeIfPresent([String].self, forKey: .modalities)?.contains("audio") == true {
            audioOutput = "modalities"
        } else if c.contains(.audio), try !c.decodeNil(forKey: .audio) {
            audioOutput = "audio"
        }
        let unserved = try decoder.container(keyedBy: UnservedField.self)
        for field in UnservedField.allCases {
            guard let lacks = try field.asks(in: unserved) else { continue }
            unservedField = (field.rawValue, lacks)
            break
        }
    }
}

/// The numeric sampling fields both endpoints share, decoded only to be range-checked.
/// (`logprobs` differs: a bool for chat, a count 0…5 for the legacy endpoint.)
struct SamplingFields: Decodable {
    var temperature: Double?
    var topP: Double?
    var presencePenalty: Double?
    var frequencyPenalty: Double?
    var topLogprobs: Int?
    var bestOf: Int?
    var logprobsCount: Int?
    /// OpenAI's `seed` and `logit_bias`, and vLLM's `top_k`, `min_p` and `repetition_penalty`:
    /// ignored like the others, but checked like them (a bias of 1e308 or a penalty of −1 was
    /// answered 200 before, as if it had been honoured).
    var seed: Int?
    var logitBias: [String: Double]?
    var topK: Int?
    var minP: Double?
    var repetitionPenalty: Double?

    enum CodingKeys: String, CodingKey {
        case temperature
        case topP = "top_p"
        case presencePenalty = "presence_penalty"
        case frequencyPenalty = "frequency_penalty"
        case topLogprobs = "top_logprobs"
        case bestOf = "best_of"
        case logprobs
        case seed
        case logitBias = "logit_bias"
        case topK = "top_k"
        case minP = "min_p"
        case repetitionPenalty = "repetition_penalty"
    }

    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        temperature = try c.decodeIfPresent(Double.self, forKey: .temperature)
        topP = try c.decodeIfPresent(Double.self, forKey: .topP)
        presencePenalty = try c.decodeIfPresent(Double.self, forKey: .presencePenalty)
        frequencyPenalty = try c.decodeIfPresent(Double.self, forKey: .frequencyPenalty)
        topLogprobs = try c.decodeIfPresent(Int.self, forKey: .topLogprobs)
        bestOf = try c.decodeIfPresent(Int.self, forKey: .bestOf)
        // Chat sends a bool, the legacy endpoint a count; a bool is no count to check.
        logprobsCount = (try? c.decodeIfPresent(Bool.self, forKey: .logprobs)) != nil
            ? nil : try c.decodeIfPresent(Int.self, forKey: .logprobs)
        seed = try c.decodeIfPresent(Int.self, forKey: .seed)
        logitBias = try c.decodeIfPresent([String: Double].self, forKey: .logitBias)
        topK = try c.decodeIfPresent(Int.self, forKey: .topK)
        minP = try c.decodeIfPresent(Double.self, forKey: .minP)
        repetitionPenalty = try c.decodeIfPresent(Double.self, forKey: .repetitionPenalty)
    }
}

/// vLLM's extra benchmark fields both endpoints share, plus OpenAI's `stop`.
struct BenchmarkFields: Decodable {
    var ignoreEOS: Bool?
    var minTokens: Int?
    var stop: [String]?
    /// vLLM's `include_stop_str_in_output`.
    var includeStopString: Bool?

    enum CodingKeys: String, CodingKey {
        case stop
        case ignoreEOS = "ignore_eos"
        case minTokens = "min_tokens"
        case includeStopString = "include_stop_str_in_output"
    }

    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        ignoreEOS = try c.decodeIfPresent(Bool.self, forKey: .ignoreEOS)
        minTokens = try c.decodeIfPresent(Int.self, forKey: .minTokens)
        includeStopString = try c.decodeIfPresent(Bool.self, forKey: .includeStopString)
        // `stop` is a string, an array of strings, or null.
        if let one = try? c.decodeIfPresent(String.self, forKey: .stop) {
            stop = [one]
        } else {
            stop = try c.decodeIfPresent([String].self, forKey: .stop)
        }
    }
}

struct ChatMessage: Decodable {
    var role: String
    var content: MessageContent?
    /// Not used by the reply, but decoded so that a value of another type is refused as OpenAI
    /// refuses it (`"name": 5` was served as if absent).
    var name: String?
    var toolCallID: String?

    private enum CodingKeys: String, CodingKey {
        case role, content, name
        case toolCallID = "tool_call_id"
    }
}

/// A message's content: a string, or an array of parts, which must all be text (``unreadablePart``).
struct MessageContent: Decodable {
    var text: String
    /// The first part that is not text, with its index in the array and why: the served model is
    /// text-only (as a text-only model on vLLM, which refuses images and audio for it). Such a part
    /// was served and sized at 0 tokens, so an image-heavy benchmark measured nothing like what it
    /// sent; ``ChatMessage/refuseUnreadableParts(_:model:)`` refuses it, naming the part.
    var unreadablePart: (index: Int, problem: String)?
    /// The content was an array of no parts. OpenAI refuses it (400 `empty_array`: an array of
    /// parts has at least one); it was served as an empty text, answering a message that said nothing
    /// as if it had said "" (``CompletionValidator/check(_:)`` refuses it now). A `""` string, or text
    /// parts whose text is empty, are taken, as OpenAI takes them.
    var isEmptyArray = false

    private struct Part: Decodable {
        var type: String?
        var text: String?
        /// An assistant's `refusal` part: text too (as vLLM reads it).
        var refusal: String?
    }

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let string = try? container.decode(String.self) {
            text = string
        } else {
            var texts: [String] = []
            let parts = try container.decode([Part].self)
            isEmptyArray = parts.isEmpty
            for (index, part) in parts.enumerated() {
                switch part.type {
                case "text", "input_text":  // vLLM reads the Responses API's `input_text` as text too
                    if let text = part.text { texts.append(text); continue }
                    unreadablePart = unreadablePart ?? (index, "is a text part without a 'text' string")
                case "refusal":
                    if let refusal = part.refusal { texts.append(refusal); continue }
                    unreadablePart = unreadablePart ?? (index, "is a refusal part without a 'refusal' string")
                case nil:
                    unreadablePart = unreadablePart ?? (index, "has no 'type'; a content part is {\"type\": \"text\", \"text\": ...}")
                case let type?:
                    unreadablePart = unreadablePart ?? (index, "is \(InputEcho.quoted(type)) content")
                }
            }
            text = texts.joined(separator: "\n")
        }
    }
}

extension ChatMessage {
    /// Refuses (400, naming `messages[i].content[j]`) the first content part the text-only
    /// served model cannot read: an image, audio, file or other non-text part, or a malformed one.
    static func refuseUnreadableParts(_ messages: [ChatMessage], model: String) throws(APIError) {
        for (i, message) in messages.enumerated() {
            guard let (j, problem) = message.content?.unreadablePart else { continue }
            throw .unsupported(
                "'messages[\(i)].content[\(j)]' \(problem); the served model \(InputEcho.quoted(model)) is text-only "
                    + "and reads only text parts", param: "messages[\(i)].content[\(j)]")
        }
    }
}

struct StreamOptions: Decodable {
    var includeUsage: Bool?
    /// vLLM's `continuous_usage_stats`: every content chunk carries the usage so far.
    var continuousUsageStats: Bool?
    enum CodingKeys: String, CodingKey {
        case includeUsage = "include_usage"
        case continuousUsageStats = "continuous_usage_stats"
    }
}

/// The body of `POST /v1/completions` (the legacy text endpoint). As for chat, sampling fields
/// are range-checked and ignored, and options the simulation cannot honour (``ReplyShapeFields``:
/// `logprobs`, `suffix`) are refused; `echo` puts a text prompt before the reply.
struct TextCompletionBody: Decodable {
    var model: String?
    var prompt: PromptInput
    var maxTokens: Int?
    var maxCompletionTokens: Int?
    var stream: Bool?
    var streamOptions: StreamOptions?
    var n: Int?
    var user: String?
    var sampling: SamplingFields
    var bench: BenchmarkFields
    var shape: ReplyShapeFields

    enum CodingKeys: String, CodingKey {
        case model, prompt, stream, n, user
        case maxTokens = "max_tokens"
        case maxCompletionTokens = "max_completion_tokens"
        case streamOptions = "stream_options"
    }

    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        model = try c.decodeIfPresent(String.self, forKey: .model)
        prompt = try c.decode(PromptInput.self, forKey: .prompt)
        maxTokens = try c.decodeIfPresent(Int.self, forKey: .maxTokens)
        maxCompletionTokens = try c.decodeIfPresent(Int.self, forKey: .maxCompletionTokens)
        stream = try c.decodeIfPresent(Bool.self, forKey: .stream)
        streamOptions = try c.decodeIfPresent(StreamOptions.self, forKey: .streamOptions)
        n = try c.decodeIfPresent(Int.self, forKey: .n)
        user = try c.decodeIfPresent(String.self, forKey: .user)
        sampling = try SamplingFields(from: decoder)
        bench = try BenchmarkFields(from: decoder)
        shape = try ReplyShapeFields(from: decoder)
    }
}

/// `prompt` is a string, one string in an array, or token ids (one array, or one array in an
/// array). Several prompts in one call would need several choices; they are refused like `n > 1`.
struct PromptInput: Decodable {
    /// `tokenIDs` carries the count and whether every id is within ``tokenIDRange``.
    enum Shape { case text(String), tokenIDs(Int, allInRange: Bool), batch(Int) }
    var shape: Shape
    /// The token ids of a token-id prompt (empty for text), for its prefix keys.
    var ids: [Int] = []

    /// Token ids a prompt may hold: the 32-bit ids tokenizers use.
    static let tokenIDRange = 0...Int(Int32.max)

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        func ids(_ list: [Int]) -> Shape { .tokenIDs(list.count, allInRange: list.allSatisfy(Self.tokenIDRange.contains)) }
        if let text = try? container.decode(String.self) {
            shape = .text(text)
        } else if let texts = try? container.decode([String].self) {
            shape = texts.count <= 1 ? .text(texts.first ?? "") : .batch(texts.count)
        } else if let list = try? container.decode([Int].self) {
            shape = ids(list)
            self.ids = list
        } else {
            do {
                let batches = try container.decode([[Int]].self)
                shape = batches.count == 1 ? ids(batches[0]) : .batch(batches.count)
                if batches.count == 1 { self.ids = batches[0] }
            } catch {
                // Every reading failed; the one to report is the one the array's first element
                // chose. The last reading (arrays of ids) blamed element 0 of `[1, 2.5]` or
                // `["a", 1]`, which is fine there, and never the element that is wrong.
                var elements = try decoder.unkeyedContainer()
                if (try? elements.decode(String.self)) != nil { _ = try container.decode([String].self) }
                let first: Double?
                do { first = try elements.decode(Double.self) } catch {
                    // A first id no float holds (`[1e400]`) was blamed as the wrong type; decoded
                    // as ids, it fails without a place, as `[1, 1e400]` does, and the body reader
                    // names it ("has an invalid value 1e400"). Anything but a number (a bool, an
                    // array) is a type mismatch and goes on as before.
                    if case DecodingError.typeMismatch = error {} else { _ = try container.decode([Int].self) }
                    first = nil
                    // Neither a string, a number nor an array (`[true]`, `[{}]`): the
                    // last reading's "expected an array" named one shape of four.
                    var probe = try decoder.unkeyedContainer()
                    if (try? probe.nestedUnkeyedContainer()) == nil {
                        throw APIError.invalidRequest(
                            "field 'prompt[0]' has the wrong type (expected a string, a token id or an array of token ids)",
                            param: "prompt[0]")
                    }
                }
                if first != nil {
                    // A number that is no integer (2.5, 1e30) the decoder reports without its place
                    // ("not valid JSON"), so it is found here; a string or bool among ids it names.
                    if let numbers = try? container.decode([Double].self),
                       let i = numbers.firstIndex(where: { Int(exactly: $0) == nil }) {
                        throw APIError.invalidRequest(
                            "field 'prompt[\(i)]' has an invalid value \(numbers[i]) (expected a token id, an integer "
                                + "within \(Self.tokenIDRange.lowerBound)…\(Self.tokenIDRange.upperBound))", param: "prompt[\(i)]")
                    }
                    _ = try container.decode([Int].self)
                }
                throw error
            }
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
    /// `stream_options.continuous_usage_stats`: usage in every content chunk.
    var continuousUsage: Bool = false
    var minTokens: Int = 0
    var ignoreEOS: Bool = false
    /// Strings that end the reply where the generated text contains them (not included)…
    var stop: [String] = []
    /// …unless `include_stop_str_in_output` asks for the one found to end the reply.
    var includeStopString = false
    /// The prompt's token ids (``PromptTokenizer/tokenIDs(_:)``), cut into prefix blocks.
    var promptTokenIDs: [Int] = []
    /// Legacy `echo: true`: the prompt text, which the reply starts with.
    var echo: String?
}

/// Turns a body into a ``ValidatedCompletion`` or the 4xx the client should see.
///
/// Every number is checked against a stated range, and the message names the field and the range:
///
/// | field | range |
/// |---|---|
/// | `max_tokens`, `max_completion_tokens` | 1…`maxModelLen`; above `maxTokensCap` (or beyond what the context window leaves after the prompt) it is lowered, not refused |
/// | prompt length (tokens) | 1…`maxModelLen` − 1 (`context_length_exceeded` beyond) |
/// | `n`, `best_of` | 1 (one choice per request) |
/// | `temperature` | 0…2 |
/// | `top_p` | 0…1 |
/// | `presence_penalty`, `frequency_penalty` | −2…2 |
/// | `top_logprobs` | 0…20; `logprobs` (legacy count) 0…5 |
/// | `seed` | an integer (64-bit) |
/// | `logit_bias` | token ids 0…2147483647 mapped to numbers within −100…100 |
/// | `top_k` (vLLM) | −1…2147483647 (−1 and 0: every token) |
/// | `min_p` (vLLM) | 0…1 |
/// | `repetition_penalty` (vLLM) | above 0, at most 100 |
/// | token ids in `prompt` | 0…2147483647 |
/// | `stream_options.include_usage`, `continuous_usage_stats` | booleans; `stream_options` only with `stream: true` (else 400) |
/// | `min_tokens` | 0…`max_tokens` (the requested one) |
/// | `ignore_eos` | a boolean: exactly `max_tokens` tokens; a `max_tokens` that would be lowered is then a 400 |
/// | `stop` | a string or 0…4 non-empty strings |
///
/// Options the simulated reply cannot hold are refused, 400 naming them (``ReplyShapeFields``):
/// `logprobs` (any but `false`/`null`), `response_format` other than `text`, `tool_choice` or
/// `function_call` other than `none`/`auto`, `suffix` (as vLLM), `echo` on chat or with a token-id prompt.
struct CompletionValidator {
    var servedModel: String
    var defaultMaxTokens: Int
    var maxTokensCap: Int
    /// The model's context window in tokens: prompt plus output.
    var maxModelLen: Int = 131_072

    /// `max_tokens` of a legacy `/v1/completions` request that gives none: 16, OpenAI's documented
    /// default for that endpoint and vLLM's. The server-wide default (``defaultMaxTokens``, 256) was
    /// used, so a client relying on the endpoint's default got replies 16 times as long as it asked.
    static let legacyDefaultMaxTokens = 16

    /// The message roles OpenAI's chat endpoint takes.
    static let chatRoles = ["system", "developer", "user", "assistant", "tool", "function"]

    /// The chat messages a chat completion takes (and /tokenize, which sizes one, so that it
    /// refuses what the chat endpoint would): at least one, each with a known role and content
    /// unless an assistant's or function's, every content part text.
    func check(_ messages: [ChatMessage]) throws(APIError) {
        guard !messages.isEmpty else {
            throw .invalidRequest("'messages' must contain at least one message", param: "messages")
        }
        for (i, message) in messages.enumerated() {
            // OpenAI's roles; an unknown one, or a message that says nothing, is a 400 there too.
            guard Self.chatRoles.contains(message.role) else {
                throw .invalidRequest(
                    "'messages[\(i)].role' must be one of \(Self.chatRoles.joined(separator: ", ")) (got \(InputEcho.quoted(message.role)))",
                    param: "messages[\(i)].role")
            }
            // Only an assistant's (tool-calling) or a legacy function message may come without content.
            if message.content == nil, message.role != "assistant", message.role != "function" {
                throw .invalidRequest("'messages[\(i)].content' is missing; a \(message.role) message needs content",
                                      param: "messages[\(i)].content")
            }
            // OpenAI's tool message answers one call of an assistant message by its id; without
            // it OpenAI refuses the request (400 `missing_required_parameter` naming the field),
            // and so does this server, so that a client mis-building a tool transcript hears of it
            // here as it would there (it was served). We run no tools, so the id is checked only
            // for presence: a string (another type is refused when the body is decoded).
            if message.role == "tool", message.toolCallID == nil {
                throw .invalidRequest("Missing required parameter: 'messages[\(i)].tool_call_id'.",
                                      param: "messages[\(i)].tool_call_id", code: "missing_required_parameter")
            }
            if message.content?.isEmptyArray == true {
                throw .invalidRequest(
                    "'messages[\(i)].content' is an empty array; send a string, or an array of at least one content part",
                    param: "messages[\(i)].content", code: "empty_array")
            }
        }
        try ChatMessage.refuseUnreadableParts(messages, model: servedModel)
    }

    func validate(_ body: ChatCompletionBody) throws(APIError) -> ValidatedCompletion {
        try check(body.messages)
        try Self.check(body.shape, echo: "'echo' is supported on /v1/completions only")
        let prompt = PromptTokenizer.chatPrompt(body.messages.map { ($0.role, $0.content?.text ?? "") })
        let field = body.maxCompletionTokens != nil ? "max_completion_tokens" : "max_tokens"
        let ids = PromptTokenizer.tokenIDs(prompt)
        var completion = try common(
            model: body.model, n: body.n, maxTokens: (body.maxCompletionTokens ?? body.maxTokens, field),
            promptTokens: (ids.count, "messages"), stream: body.stream,
            streamOptions: body.streamOptions, sampling: body.sampling, user: body.user, bench: body.bench)
        completion.promptTokenIDs = ids
        return completion
    }

    func validate(_ body: TextCompletionBody) throws(APIError) -> ValidatedCompletion {
        let promptTokens: Int
        var ids = body.prompt.ids
        var echo: String?
        if case .text(let text) = body.prompt.shape, body.shape.echo { echo = text }
        // A count out of its range is told the range before any count is told it is not
        // supported: `logprobs: 21` was answered "not supported", as if 21 were a count to ask for.
        try Self.check(body.sampling.logprobsCount, "logprobs", 0...5)
        try Self.check(
            body.shape, echo: echo == nil ? "'echo' needs a text prompt: token ids have no text here to echo" : nil)
        if let suffix = body.shape.suffix, !suffix.isEmpty {
            throw .unsupported("'suffix' is not supported (as in vLLM)", param: "suffix")
        }
        switch body.prompt.shape {
        case .text(let text):
            ids = PromptTokenizer.tokenIDs(text)
            promptTokens = ids.count
        case .tokenIDs(let count, let allInRange):
            guard allInRange else {
                throw .invalidRequest(
                    "token ids in 'prompt' must be within \(PromptInput.tokenIDRange.lowerBound)…"
                        + "\(PromptInput.tokenIDRange.upperBound)", param: "prompt")
            }
            promptTokens = count
        case .batch:
            throw .invalidRequest("only one prompt per request is supported", param: "prompt")
        }
        guard promptTokens > 0 else { throw .invalidRequest("'prompt' must not be empty", param: "prompt") }
        let field = body.maxCompletionTokens != nil ? "max_completion_tokens" : "max_tokens"
        var completion = try common(
            model: body.model, n: body.n,
            maxTokens: (body.maxCompletionTokens ?? body.maxTokens ?? Self.legacyDefaultMaxTokens, field),
            promptTokens: (promptTokens, "prompt"), stream: body.stream, streamOptions: body.streamOptions,
            sampling: body.sampling, user: body.user, bench: body.bench)
        completion.promptTokenIDs = ids
        completion.echo = echo
        return completion
    }

    /// Refuses what the reply cannot hold (``ReplyShapeFields``); `echo`: why an `echo: true` is
    /// refused here, nil when it is honoured.
    private static func check(_ shape: ReplyShapeFields, echo refusal: String?) throws(APIError) {
        let placeholder = "xds simulates the serving system; its replies are placeholder text"
        if shape.logprobs {
            throw .unsupported("'logprobs' is not supported: \(placeholder), with no token probabilities", param: "logprobs")
        }
        if let format = shape.responseFormat, format != "text" {
            throw .unsupported(
                "'response_format' of type \(InputEcho.quoted(format)) is not supported: \(placeholder), not JSON "
                    + "(send type 'text' or leave it out)", param: "response_format")
        }
        if let choice = shape.forcedToolChoice {
            throw .unsupported(
                "'tool_choice' \(choice) is not supported: "
                    + "\(placeholder) and call no tool (send 'auto' or 'none', or leave it out)", param: "tool_choice")
        }
        if let (index, type) = shape.unknownToolType {
            throw .invalidRequest(
                "'tools[\(index)].type' must be 'function' or 'custom' (got \(InputEcho.quoted(type)))", param: "tools[\(index)].type")
        }
        if let choice = shape.forcedFunctionCall {
            throw .unsupported(
                "'function_call' \(choice) is not supported: "
                    + "\(placeholder) and call no function (send 'auto' or 'none', or leave it out)", param: "function_call")
        }
        if let field = shape.audioOutput {
            throw .unsupported(
                "'\(field)' asks for audio output, which is not supported: \(placeholder), with no audio "
                    + "(send modalities [\"text\"] and no 'audio', or leave them out)", param: field)
        }
        if let (field, lacks) = shape.unservedField {
            throw .unsupported("'\(field)' is not supported: \(placeholder), \(lacks)", param: field)
        }
        if shape.echo, let refusal { throw .unsupported(refusal, param: "echo") }
    }

    private func common(
        model: String?, n: Int?, maxTokens: (value: Int?, field: String), promptTokens: (count: Int, field: String),
        stream: Bool?, streamOptions: StreamOptions?, sampling: SamplingFields, user: String?, bench: BenchmarkFields
    ) throws(APIError) -> ValidatedCompletion {
        // A missing model means the served one, as in vLLM; a wrong one is a 404 (OpenAI's shape).
        if let model, model != servedModel { throw .modelNotFound(model) }
        // As OpenAI (and vLLM): options of a stream that will not be streamed are a mistake worth
        // saying, not something to drop silently (`"stream_options": null` is no options).
        if streamOptions != nil, stream != true {
            throw .invalidRequest(
                "The 'stream_options' parameter is only allowed when 'stream' is enabled.", param: "stream_options")
        }
        if let n, n != 1 {
            let advice = n > 1 ? "; send \(n) requests instead" : ""
            throw .invalidRequest("only n = 1 is supported (got \(n))\(advice)", param: "n")
        }
        if let bestOf = sampling.bestOf, bestOf != 1 {
            throw .invalidRequest("only best_of = 1 is supported (got \(bestOf))", param: "best_of")
        }
        try Self.check(sampling.temperature, "temperature", 0...2)
        try Self.check(sampling.topP, "top_p", 0...1)
        try Self.check(sampling.presencePenalty, "presence_penalty", -2...2)
        try Self.check(sampling.frequencyPenalty, "frequency_penalty", -2...2)
        try Self.check(sampling.topLogprobs, "top_logprobs", 0...20)
        // Alternatives per token need `logprobs: true` (OpenAI and vLLM refuse them without it), and
        // there are none to give: answered 200 without them, the client never learnt why.
        if let top = sampling.topLogprobs, top > 0 {
            throw .unsupported("'top_logprobs' (\(top)) is not supported: xds simulates the serving system; its replies "
                + "are placeholder text, with no token probabilities (leave it out or send 0)", param: "top_logprobs")
        }
        try Self.check(sampling.logprobsCount, "logprobs", 0...5)
        try Self.check(sampling.topK, "top_k", -1...PromptInput.tokenIDRange.upperBound)
        try Self.check(sampling.minP, "min_p", 0...1)
        if let penalty = sampling.repetitionPenalty, !(penalty > 0 && penalty <= 100) {
            throw .invalidRequest("'repetition_penalty' must be above 0 and at most 100 (got \(penalty))",
                                  param: "repetition_penalty")
        }
        // Keys in a fixed order, so a body with two bad entries always names the same one.
        for (token, bias) in (sampling.logitBias ?? [:]).sorted(by: { $0.key < $1.key }) {
            guard let id = Int(token), PromptInput.tokenIDRange.contains(id) else {
                throw .invalidRequest(
                    "'logit_bias' keys must be token ids within \(PromptInput.tokenIDRange.lowerBound)…"
                        + "\(PromptInput.tokenIDRange.upperBound) (got \(InputEcho.quoted(token)))", param: "logit_bias")
            }
            try Self.check(bias, "logit_bias", -100...100)
        }
        guard promptTokens.count < maxModelLen else {
            throw APIError(
                status: .badRequest,
                message: "This model's maximum context length is \(maxModelLen) tokens; the prompt has "
                    + "\(promptTokens.count) tokens (the prompt must be within 1…\(maxModelLen - 1) tokens)",
                type: "invalid_request_error", param: promptTokens.field, code: "context_length_exceeded")
        }
        let requested = maxTokens.value ?? defaultMaxTokens
        try Self.check(requested, maxTokens.field, 1...maxModelLen)
        try Self.check(bench.minTokens, "min_tokens", 0...requested)
        let stop = bench.stop ?? []
        // A count of strings, said as one: "'stop' must be within 0…4 (got 5)" read as a number out of range.
        guard stop.count <= 4 else {
            throw .invalidRequest("'stop' holds at most 4 strings (got \(stop.count))", param: "stop")
        }
        if stop.contains(where: \.isEmpty) { throw .invalidRequest("'stop' strings must not be empty", param: "stop") }
        let maxTokensField = maxTokens.field
        let maxTokens = min(requested, maxTokensCap, maxModelLen - promptTokens.count)
        // `ignore_eos` promises exactly `max_tokens` tokens (benchmarks count on it): lowering it
        // silently would break that promise, so it is refused, naming what can be had.
        if bench.ignoreEOS == true, maxTokens < requested {
            let why = maxTokens == maxTokensCap
                ? "the server makes at most \(maxTokensCap) tokens per reply"
                : "the \(maxModelLen)-token context leaves \(maxModelLen - promptTokens.count) after the prompt's \(promptTokens.count)"
            throw .invalidRequest(
                "'\(maxTokensField)' \(requested) with ignore_eos cannot be met: \(why); ask for at most \(maxTokens)",
                param: maxTokensField)
        }
        return ValidatedCompletion(
            model: servedModel, promptTokens: promptTokens.count,
            // Lowered rather than refused: clients often send a model's whole context as max_tokens.
            maxTokens: maxTokens, stream: stream ?? false,
            includeUsageInStream: streamOptions?.includeUsage ?? false, user: user,
            continuousUsage: streamOptions?.continuousUsageStats ?? false,
            minTokens: min(bench.minTokens ?? 0, maxTokens), ignoreEOS: bench.ignoreEOS ?? false, stop: stop,
            includeStopString: bench.includeStopString ?? false)
    }

    private static func check<N: Comparable & CustomStringConvertible>(
        _ value: N?, _ field: String, _ range: ClosedRange<N>
    ) throws(APIError) {
        guard let value, !range.contains(value) else { return }
        throw .invalidRequest(
            "'\(field)' must be within \(range.lowerBound)…\(range.upperBound) (got \(value))", param: field)
    }
}

extension APIError {
    /// What a numeric field may hold, for messages about values that did not even decode
    /// (`1e400`, `1.5` where an integer is meant, a string). Ranges as ``CompletionValidator``
    /// states them (with the default context window).
    static let expectedValues: [String: String] = [
        "max_tokens": "an integer within 1…131072", "max_completion_tokens": "an integer within 1…131072",
        "n": "the integer 1", "best_of": "the integer 1", "temperature": "a number within 0…2",
        "top_p": "a number within 0…1", "presence_penalty": "a number within -2…2",
        "frequency_penalty": "a number within -2…2", "top_logprobs": "an integer within 0…20",
        "logprobs": "a boolean, or an integer within 0…5", "stream": "a boolean",
        "stream_options.include_usage": "a boolean", "stream_options.continuous_usage_stats": "a boolean",
        "min_tokens": "an integer within 0…max_tokens", "ignore_eos": "a boolean",
        "stop": "a string or an array of at most 4 strings", "command": "a string of at most 1024 bytes",
        "prompt": "a string, an array of strings, or arrays of token ids within 0…2147483647",
        "duration": "a string from 1s to 1h, such as 90s, 10m or 1h",
        "seed": "an integer within -9223372036854775808…9223372036854775807", "logit_bias": "an object mapping token ids to numbers within -100…100",
        "top_k": "an integer within -1…2147483647", "min_p": "a number within 0…1",
        "repetition_penalty": "a number above 0, at most 100",
    ]

    /// Fields whose JSON number must be an integer (the rest of ``expectedValues`` take any number).
    static let integerFields: Set<String> = ["max_tokens", "max_completion_tokens", "min_tokens", "n", "best_of", "top_logprobs", "logprobs", "seed", "top_k"]

    /// A numeric field whose number the JSON decoder could not even represent (`1e400`, an
    /// integer beyond 64 bits, `1.5` where an integer is meant): Foundation reports those as
    /// "not valid JSON" without naming the field, so the body text is scanned for it.
    static func unrepresentableNumber(in body: Data, maxModelLen: Int? = nil) -> APIError? {
        let text = String(decoding: body.prefix(1 << 20), as: UTF8.self)
        for field in expectedValues.keys.sorted() where !field.contains(".") && field != "command" && field != "prompt" {
            guard let range = text.range(of: "\"\(field)\"\\s*:\\s*(-?[0-9][0-9.eE+-]*)", options: .regularExpression)
            else { continue }
            let number = text[range].split(separator: ":").last.map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
            // A number whose magnitude underflows (`1e-400`) is valid JSON that Foundation refuses;
            // Double(String) reads it as 0, so it counts as not fitting when its digits are not all 0.
            let underflows = JSONKeyCheck.underflowsToZero(number)
            let fits = integerFields.contains(field)
                ? Int(number) != nil : (Double(number)?.isFinite ?? false) && !underflows
            if !fits {
                let text = JSONKeyCheck.numberMessage(place: "field '\(field)'", number: String(number.prefix(40)), underflows: underflows)
                return .invalidRequest(
                    text + " (expected \(expected(field, maxModelLen: maxModelLen) ?? "a number"))", param: field)
            }
        }
        return nil
    }

    /// A client-facing message for a body that did not decode: which field, what was wrong —
    /// never the Swift error dump.
    /// What `field` may hold (``expectedValues``), the length fields' range from the served
    /// model's context window when the route knows it (a 1.5 for `max_tokens` was told
    /// "1…131072" by a server whose in-range check says "1…4096").
    static func expected(_ field: String, maxModelLen: Int?) -> String? {
        if let maxModelLen, field == "max_tokens" || field == "max_completion_tokens" {
            return "an integer within 1…\(maxModelLen)"
        }
        if field.hasPrefix("logit_bias.") { return "a number within -100…100" }  // one token's bias
        // A message's content is read as a string, then as parts; the second reading's complaint
        // alone ("expected an array") told a client sending `"content": 5` that text was wrong.
        if field.hasPrefix("messages["), field.hasSuffix("].content") { return "a string or an array of content parts" }
        return expectedValues[field]
    }

    /// The JSON type the decoder wanted when it reports `type` (nil for one of our own types).
    static func jsonType(_ type: Any.Type) -> String? {
        let id = ObjectIdentifier(type)
        if id == ObjectIdentifier(String.self) { return "a string" }
        if id == ObjectIdentifier(Bool.self) { return "a boolean" }
        if [Int.self, Int64.self, Int32.self, UInt.self, UInt64.self, UInt32.self].map(ObjectIdentifier.init).contains(id) {
            return "an integer"
        }
        if id == ObjectIdentifier(Double.self) || id == ObjectIdentifier(Float.self) { return "a number" }
        if id == ObjectIdentifier([Any].self) { return "an array" }
        if id == ObjectIdentifier([String: Any].self) { return "an object" }
        return nil
    }

    static func undecodable(_ error: any Error, body: Data = Data(), maxModelLen: Int? = nil) -> APIError {
        guard let error = error as? DecodingError else {
            return .invalidRequest("request body is not valid JSON", param: nil)
        }
        func path(_ context: DecodingError.Context) -> String? {
            // An array position's key is spelt "Index N"; an object's key that reads as a number
            // ("50256" in logit_bias) also has an intValue, but is a key, not an index.
            let keys = context.codingPath.map { key in
                key.intValue.flatMap { key.stringValue == String($0) ? nil : "[\($0)]" } ?? key.stringValue
            }
            return keys.isEmpty ? nil : keys.joined(separator: ".").replacingOccurrences(of: ".[", with: "[")
        }
        switch error {
        case .keyNotFound(let key, let context):
            let field = (path(context).map { $0 + "." } ?? "") + key.stringValue
            return .invalidRequest("missing required field '\(field)'", param: field)
        case .typeMismatch(let type, let context), .valueNotFound(let type, let context):
            guard let field = path(context) else {
                return .invalidRequest("request body must be a JSON object", param: nil)
            }
            // A field outside the table (`model`, `messages`, `stop[1]`, `user`) is told the JSON
            // type the decoder wanted, as OpenAI says "expected a string"; it was told nothing.
            // An integer inside `prompt` is a token id: its range, as a non-integer number there is told.
            let range = PromptInput.tokenIDRange
            let wanted = field.hasPrefix("prompt[") && jsonType(type) == "an integer"
                ? "a token id, an integer within \(range.lowerBound)…\(range.upperBound)" : jsonType(type)
            let expected = (expected(field, maxModelLen: maxModelLen) ?? wanted).map { " (expected \($0))" } ?? ""
            return .invalidRequest("field '\(field)' has the wrong type\(expected)", param: field)
        case .dataCorrupted(let context):
            if let field = path(context) {
                let expected = expected(field, maxModelLen: maxModelLen).map { " (expected \($0))" } ?? ""
                return .invalidRequest("field '\(field)' has an invalid value\(expected)", param: field)
            }
            return unrepresentableNumber(in: body, maxModelLen: maxModelLen)
                ?? .invalidRequest("request body is not valid JSON", param: nil)
        @unknown default:
            return .invalidRequest("request body is not valid JSON", param: nil)
        }
    }
}
