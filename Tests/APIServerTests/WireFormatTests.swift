import Foundation
import Testing

@testable import APIServer

/// The pure parts of the wire format: prompt sizing, synthetic text, JSON rendering.
struct WireFormatTests {
    @Test func tokenizerRules() {
        #expect(PromptTokenizer.count("") == 0)
        #expect(PromptTokenizer.count("the") == 1)
        #expect(PromptTokenizer.count("tokens") == 2)
        #expect(PromptTokenizer.count("understanding") == 4)
        #expect(PromptTokenizer.count("Hello, world!") == 6)
        #expect(PromptTokenizer.count("  spaced\n\tout  ") == 3)
        #expect(PromptTokenizer.count("don't") == 3)
        #expect(PromptTokenizer.count(PromptTokenizer.chatPrompt([("user", "hi")])) == 13)
        // About 1.3 tokens per English word on ordinary prose.
        let prose = "The quick brown fox jumps over the lazy dog while the operator drains a node and watches"
        let ratio = Double(PromptTokenizer.count(prose)) / Double(prose.split(separator: " ").count)
        #expect(ratio > 1.1 && ratio < 1.6)
    }

    @Test func sameRequestIDSaysTheSameWords() {
        var a = SyntheticText(seed: 7)
        var b = SyntheticText(seed: 7)
        let chunked = a.next(3) + a.next(1) + a.next(40)
        #expect(chunked == b.next(44))
        #expect(PromptTokenizer.count(chunked) == 44)
        var other = SyntheticText(seed: 8)
        #expect(other.next(44) != chunked)
    }

    /// Every body the completion routes write, with every key and value OpenAI's clients read
    /// (`finish_reason` and `logprobs` as explicit nulls, the closing delta `{}`), compared as
    /// parsed JSON: key order is not part of the contract (the encoder sorts keys).
    @Test(arguments: WireSample.all) func bodiesMatchOpenAIShape(_ sample: WireSample) throws {
        let written = sample.render()
        let got = try #require(try JSONSerialization.jsonObject(with: Data(written.utf8)) as? NSDictionary, "\(written)")
        let want = try #require(
            try JSONSerialization.jsonObject(with: Data(sample.expected.utf8)) as? NSDictionary)
        #expect(got == want, "\(sample.name): wrote \(written)")
    }

    @Test func jsonStringsAreEscaped() throws {
        let tricky = "quote \" backslash \\ newline \n tab \t bell \u{07} ünïcödé 🚀 </script>"
        let header = CompletionHeader(id: "cmpl-1", created: 1, model: "deepseek-r1", flavor: .text)
        let body = CompletionBody(
            header: header, streaming: false,
            choices: [Choice(flavor: .text, streaming: false, content: tricky, finishReason: "stop")], usage: nil)
        let written = WireSample.rendered(body)
        #expect(!written.contains("\n") && !written.contains("\u{07}"), "control characters must be escaped")
        let parsed = try #require(try JSONSerialization.jsonObject(with: Data(written.utf8)) as? [String: Any])
        let choice = try #require((parsed["choices"] as? [[String: Any]])?.first)
        #expect(choice["text"] as? String == tricky)
        #expect(choice["logprobs"] is NSNull)
    }

    /// A stream chunk is one unnamed event, `data: {…}` and a blank line, and the same chunk is
    /// written byte for byte the same every time (sorted keys: no dictionary order leaks out).
    @Test func chunkFramingIsStable() throws {
        let header = CompletionHeader(id: "chatcmpl-9", created: 1, model: "deepseek-r1", flavor: .chat)
        let chunk = CompletionBody(
            header: header, streaming: true,
            choices: [Choice(flavor: .chat, streaming: true, content: "Hi")],
            usage: Usage(promptTokens: 12, completionTokens: 3, cachedTokens: 8))
        let frame = WireSample.frame(chunk)
        #expect(frame.hasPrefix("data: {") && frame.hasSuffix("}\n\n"))
        #expect(frame.dropFirst(6).dropLast(2).contains("\n") == false, "one data line per event")
        for _ in 0..<20 { #expect(WireSample.frame(chunk) == frame) }
        #expect(ServerSentEvent.done == "data: [DONE]\n\n")
    }
}

/// One body the server writes and what it must say. `expected` is what the hand-written writer
/// this replaced produced (its key order, OpenAI's); the test compares parsed objects.
struct WireSample: CustomTestStringConvertible, Sendable {
    var name: String
    var render: @Sendable () -> String
    var expected: String
    var testDescription: String { name }

    static func rendered(_ body: CompletionBody) -> String { JSONWire.string(body) }
    static func rendered(_ error: APIError) -> String { error.json }
    static func frame(_ body: CompletionBody) -> String { String(buffer: ServerSentEvent.data(json: body)) }

    static let all: [WireSample] = {
        let chat = CompletionHeader(id: "chatcmpl-9", created: 1_700_000_000, model: "deepseek-r1", flavor: .chat)
        let text = CompletionHeader(id: "cmpl-3", created: 1_700_000_001, model: "deepseek-r1", flavor: .text)
        let usage = Usage(promptTokens: 12, completionTokens: 3, cachedTokens: 8)
        let usageJSON = #"{"prompt_tokens":12,"completion_tokens":3,"total_tokens":15,"prompt_tokens_details":{"cached_tokens":8}}"#
        func body(_ h: CompletionHeader, _ streaming: Bool, _ choices: [Choice], _ usage: Usage?) -> @Sendable () -> String {
            let b = CompletionBody(header: h, streaming: streaming, choices: choices, usage: usage)
            return { rendered(b) }
        }
        let chatHead = #"{"id":"chatcmpl-9","object":"chat.completion.chunk","created":1700000000,"model":"deepseek-r1","#
        let textHead = #"{"id":"cmpl-3","object":"text_completion","created":1700000001,"model":"deepseek-r1","#
        return [
            WireSample(
                name: "chat stream opening delta",
                render: body(chat, true, [Choice(flavor: .chat, streaming: true, role: "assistant")], nil),
                expected: chatHead + #""choices":[{"index":0,"delta":{"role":"assistant"},"logprobs":null,"finish_reason":null}]}"#),
            WireSample(
                name: "chat stream content",
                render: body(chat, true, [Choice(flavor: .chat, streaming: true, content: "Hi")], nil),
                expected: chatHead + #""choices":[{"index":0,"delta":{"content":"Hi"},"logprobs":null,"finish_reason":null}]}"#),
            WireSample(
                name: "chat stream content with continuous usage",
                render: body(chat, true, [Choice(flavor: .chat, streaming: true, content: "Hi")], usage),
                expected: chatHead + #""choices":[{"index":0,"delta":{"content":"Hi"},"logprobs":null,"finish_reason":null}],"usage":"#
                    + usageJSON + "}"),
            WireSample(
                name: "chat stream closing delta",
                render: body(chat, true, [Choice(flavor: .chat, streaming: true, finishReason: "stop")], nil),
                expected: chatHead + #""choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]}"#),
            WireSample(
                name: "chat stream usage chunk",
                render: body(chat, true, [], usage),
                expected: chatHead + #""choices":[],"usage":"# + usageJSON + "}"),
            WireSample(
                name: "chat whole response",
                render: body(chat, false, [Choice(flavor: .chat, streaming: false, content: "Hello there", finishReason: "length")], usage),
                expected: #"{"id":"chatcmpl-9","object":"chat.completion","created":1700000000,"model":"deepseek-r1","#
                    + #""choices":[{"index":0,"message":{"role":"assistant","content":"Hello there"},"logprobs":null,"finish_reason":"length"}],"#
                    + #""usage":"# + usageJSON + "}"),
            WireSample(
                name: "text stream content",
                render: body(text, true, [Choice(flavor: .text, streaming: true, content: "Hi")], nil),
                expected: textHead + #""choices":[{"index":0,"text":"Hi","logprobs":null,"finish_reason":null}]}"#),
            WireSample(
                name: "text stream closing",
                render: body(text, true, [Choice(flavor: .text, streaming: true, finishReason: "stop")], nil),
                expected: textHead + #""choices":[{"index":0,"text":"","logprobs":null,"finish_reason":"stop"}]}"#),
            WireSample(
                name: "text whole response",
                render: body(text, false, [Choice(flavor: .text, streaming: false, content: "Hello there", finishReason: "length")], usage),
                expected: textHead + #""choices":[{"index":0,"text":"Hello there","logprobs":null,"finish_reason":"length"}],"#
                    + #""usage":"# + usageJSON + "}"),
            WireSample(
                name: "error with param",
                render: { rendered(APIError.invalidRequest("max_tokens must be 1...1000000", param: "max_tokens")) },
                expected: #"{"error":{"message":"max_tokens must be 1...1000000","type":"invalid_request_error","param":"max_tokens","code":null}}"#),
            WireSample(
                name: "error without param or code",
                render: { rendered(APIError.internalError) },
                expected: #"{"error":{"message":"internal server error","type":"server_error","param":null,"code":null}}"#),
            WireSample(
                name: "error with code",
                render: { rendered(APIError.modelNotFound("gpt-4")) },
                expected: #"{"error":{"message":"The model 'gpt-4' does not exist","type":"invalid_request_error","param":"model","code":"model_not_found"}}"#),
        ]
    }()
}
