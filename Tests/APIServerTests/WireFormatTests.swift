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

    @Test func jsonStringsAreEscaped() throws {
        let tricky = "quote \" backslash \\ newline \n tab \t bell \u{07} ünïcödé 🚀 </script>"
        var object = JSONObject()
        object.add("text", tricky)
        object.add("none", nil as String?)
        object.add("n", 3)
        #expect(object.json.hasPrefix(#"{"text":"quote \" backslash \\ newline \n tab \t bell \u0007"#))
        let parsed = try #require(
            try JSONSerialization.jsonObject(with: Data(object.json.utf8)) as? [String: Any])
        #expect(parsed["text"] as? String == tricky)
        #expect(parsed["none"] is NSNull)
        #expect(parsed["n"] as? Int == 3)
    }

    @Test func chunkKeysComeInOpenAIOrder() {
        let header = CompletionHeader(id: "chatcmpl-9", created: 1, model: "deepseek-r1", flavor: .chat)
        let chunk = CompletionBody(
            header: header, streaming: true,
            choices: [Choice(flavor: .chat, streaming: true, content: "Hi")], usage: nil)
        #expect(
            chunk.json
                == #"{"id":"chatcmpl-9","object":"chat.completion.chunk","created":1,"model":"deepseek-r1","#
                + #""choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}"#)
    }
}
