import Foundation
import Testing

@testable import APIServer

/// Chat messages as OpenAI's endpoint takes them: a known role, and content unless the message
/// is an assistant's (tool-calling) or a legacy function result. Both were served before.
@Suite struct ChatMessageValidationTests {
    static func validate(_ json: String) -> String? {
        do {
            let body = try JSONDecoder().decode(ChatCompletionBody.self, from: Data(json.utf8))
            _ = try BodyFuzzTests.validator.validate(body)
            return nil
        } catch let error as APIError {
            return error.message
        } catch {
            return "undecodable: \(error)"
        }
    }

    @Test func unknownRolesAndMissingContentAreRefusedNamingTheMessage() {
        #expect(Self.validate(#"{"messages": [{"role": "user", "content": "hi"}, {"role": "alien", "content": "x"}]}"#)
                == "'messages[1].role' must be one of system, developer, user, assistant, tool, function (got 'alien')")
        #expect(Self.validate(#"{"messages": [{"role": "user"}]}"#)
                == "'messages[0].content' is missing; a user message needs content")
        #expect(Self.validate(#"{"messages": [{"role": "system", "content": null}, {"role": "user", "content": "x"}]}"#)
                == "'messages[0].content' is missing; a system message needs content")
        // What OpenAI takes is still served.
        for role in ["system", "developer", "user"] {
            #expect(Self.validate(#"{"messages": [{"role": "\#(role)", "content": "x"}]}"#) == nil, "\(role)")
        }
        #expect(Self.validate(#"{"messages": [{"role": "tool", "content": "x", "tool_call_id": "call_1"}]}"#) == nil)
        #expect(Self.validate(#"{"messages": [{"role": "user", "content": "x"}, {"role": "assistant"}, {"role": "user", "content": "y"}]}"#) == nil)
        #expect(Self.validate(#"{"messages": [{"role": "user", "content": [{"type": "text", "text": "x"}]}]}"#) == nil)
    }

    /// A text-only model cannot read an image, audio or file part. Such parts were served and sized
    /// at 0 tokens; now each is refused with OpenAI's error naming `messages[i].content[j]` and its
    /// type (as on vLLM for a text-only model), before anything reaches the engine. Text parts,
    /// alone or several, are still served and tokenized.
    @Test func nonTextContentPartsAreRefusedNamingThePart() async throws {
        try await LiveServer.with { server in
            let parts: [(part: [String: Any], says: String)] = [
                (["type": "image_url", "image_url": ["url": "data:image/png;base64,iVBORw0KGgo="]], "'image_url' content"),
                (["type": "input_audio", "input_audio": ["data": "UklGRg==", "format": "wav"]], "'input_audio' content"),
                (["type": "file", "file": ["file_id": "file-1"]], "'file' content"),
                (["type": "video_url", "video_url": ["url": "http://x/v.mp4"]], "'video_url' content"),
                (["type": "text"], "text part without a 'text' string"),
                (["image_url": ["url": "http://x/y.png"]], "has no 'type'"),
            ]
            for (part, says) in parts {
                let messages: [[String: Any]] = [
                    ["role": "system", "content": "be brief"],
                    ["role": "user", "content": [["type": "text", "text": "what is this?"], part]],
                ]
                for path in ["/v1/chat/completions", "/tokenize"] {
                    let reply = try await server.post(path, json: ["messages": messages, "max_tokens": 4])
                    #expect(reply.status == 400, "\(path) \(part): \(reply.text)")
                    let error = try #require(try reply.json()["error"] as? [String: Any], "\(reply.text)")
                    #expect(error["param"] as? String == "messages[1].content[1]", "\(error)")
                    #expect(error["type"] as? String == "invalid_request_error", "\(error)")
                    let message = try #require(error["message"] as? String)
                    #expect(message.hasPrefix("'messages[1].content[1]'") && message.contains(says)
                            && message.contains("text-only"), "\(message)")
                }
            }
            #expect(server.backend.submitted.isEmpty)

            // Content as a list of text parts is served, its text counted.
            let texts: [[String: Any]] = [["role": "user", "content": [
                ["type": "text", "text": "Hello there,"], ["type": "text", "text": "general Kenobi."]]]]
            let served = try await server.post("/v1/chat/completions", json: ["messages": texts, "max_tokens": 4])
            #expect(served.status == 200, "\(served.text)")
            #expect(server.backend.submitted.count == 1)
            let tokenized = try await server.post("/tokenize", json: ["messages": texts])
            #expect(tokenized.status == 200, "\(tokenized.text)")
            let plain = try await server.post("/tokenize", json: ["messages": [
                ["role": "user", "content": "Hello there,\ngeneral Kenobi."]]])
            #expect(try tokenized.json()["count"] as? Int == (try plain.json()["count"] as? Int))
            // vLLM reads an `input_text` part (the Responses API's name) as text too; it was served
            // and counted before this refusal came in, and still is.
            let input = try await server.post("/tokenize", json: ["messages": [["role": "user", "content": [
                ["type": "input_text", "text": "Hello there,"], ["type": "text", "text": "general Kenobi."]]]]])
            #expect(input.status == 200, "\(input.text)")
            let inputCount = try input.json()["count"] as? Int
            let plainCount = try plain.json()["count"] as? Int
            #expect(inputCount != nil && inputCount == plainCount, "\(input.text)")
        }
    }

    /// A message whose content is an empty array of parts is refused (400 `empty_array`, naming the
    /// message), as OpenAI refuses it, on the chat endpoint and /tokenize alike: it was served as an
    /// empty text, and nothing reached the engine to say so. A `""` string and text parts with empty
    /// text are still served, as OpenAI serves them.
    @Test func anEmptyContentArrayIsRefusedAndEmptyTextIsServed() async throws {
        #expect(Self.validate(#"{"messages": [{"role": "user", "content": []}]}"#)
                == "'messages[0].content' is an empty array; send a string, or an array of at least one content part")
        #expect(Self.validate(#"{"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": []}]}"#)
                == "'messages[1].content' is an empty array; send a string, or an array of at least one content part")
        #expect(Self.validate(#"{"messages": [{"role": "user", "content": ""}]}"#) == nil)
        #expect(Self.validate(#"{"messages": [{"role": "user", "content": [{"type": "text", "text": ""}]}]}"#) == nil)
        try await LiveServer.with { server in
            let body: [String: Any] = ["messages": [["role": "system", "content": "be brief"], ["role": "user", "content": []]],
                                       "max_tokens": 3]
            for path in ["/v1/chat/completions", "/tokenize"] {
                let refused = try await server.post(path, json: body)
                #expect(refused.status == 400, "\(path): \(refused.text)")
                let error = try #require(try refused.json()["error"] as? [String: Any], "\(refused.text)")
                #expect(error["type"] as? String == "invalid_request_error" && error["code"] as? String == "empty_array")
                #expect(error["param"] as? String == "messages[1].content", "\(error)")
            }
            #expect(server.backend.submitted.isEmpty)
            let empty = try await server.post("/v1/chat/completions", json: ["messages": [["role": "user", "content": ""]], "max_tokens": 3])
            #expect(empty.status == 200, "\(empty.text)")
        }
    }

    /// /tokenize of chat messages sizes what a chat completion would send, so it refuses what the
    /// chat endpoint refuses, with the same message: it counted tokens for no messages, an unknown
    /// role or a user message without content (7, 14 and 12 tokens) that a chat completion
    /// refuses. A body with both 'prompt' and 'messages' is refused too: it tokenized the prompt
    /// and silently ignored the messages.
    @Test func tokenizeRefusesTheMessagesChatRefuses() async throws {
        try await LiveServer.with { server in
            let bodies: [[String: Any]] = [
                ["messages": []],
                ["messages": [["role": "alien", "content": "x"]]],
                ["messages": [["role": "user", "content": "x"], ["role": "user"]]],
                ["messages": [["role": "system", "content": NSNull()]]],
            ]
            for body in bodies {
                let chat = try await server.post("/v1/chat/completions", json: body)
                let tokenize = try await server.post("/tokenize", json: body)
                #expect(chat.status == 400 && tokenize.status == 400, "\(body): \(tokenize.text)")
                let chatError = try #require(try chat.json()["error"] as? [String: Any])
                let tokenizeError = try #require(try tokenize.json()["error"] as? [String: Any], "\(tokenize.text)")
                #expect(tokenizeError["message"] as? String == chatError["message"] as? String, "\(body)")
                #expect(tokenizeError["param"] as? String == chatError["param"] as? String, "\(body)")
            }
            let both = try await server.post("/tokenize", json: ["prompt": "a", "messages": [["role": "user", "content": "b"]]])
            #expect(both.status == 400, "\(both.text)")
            #expect(both.text.contains("'prompt' or 'messages'"), "\(both.text)")
            #expect(try await server.post("/tokenize", json: ["messages": [["role": "user", "content": "b"]]]).status == 200)
            #expect(try await server.post("/tokenize", json: ["messages": [["role": "assistant"], ["role": "user", "content": "b"]]]).status == 200)
            #expect(server.backend.submitted.isEmpty)
        }
    }

    /// A tool message answers an assistant's tool call by its id: OpenAI refuses one without
    /// `tool_call_id` (400 `missing_required_parameter`, param `messages[N].tool_call_id`). It was
    /// served 200 here, so a client that mis-built its tool transcript passed against xds and
    /// failed against OpenAI. A `null` id is no id; a tool message with one is still served.
    @Test func aToolMessageWithoutToolCallIDIsRefusedAsOpenAIDoes() async throws {
        try await LiveServer.with { server in
            let call: [String: Any] = ["id": "call_1", "type": "function", "function": ["name": "f", "arguments": "{}"]]
            for id in [nil, NSNull()] as [Any?] {
                var tool: [String: Any] = ["role": "tool", "content": "42"]
                if let id { tool["tool_call_id"] = id }
                let messages: [[String: Any]] = [
                    ["role": "user", "content": "what is f?"], ["role": "assistant", "tool_calls": [call]], tool,
                ]
                for path in ["/v1/chat/completions", "/tokenize"] {
                    let reply = try await server.post(path, json: ["model": "deepseek-r1", "messages": messages, "max_tokens": 4])
                    #expect(reply.status == 400, "\(path) \(String(describing: id)): \(reply.text)")
                    let error = try #require(try reply.json()["error"] as? [String: Any], "\(reply.text)")
                    #expect(error["param"] as? String == "messages[2].tool_call_id", "\(error)")
                    #expect(error["code"] as? String == "missing_required_parameter", "\(error)")
                    #expect(error["message"] as? String == "Missing required parameter: 'messages[2].tool_call_id'.", "\(error)")
                }
            }
            #expect(server.backend.submitted.isEmpty)
            let served = try await server.post("/v1/chat/completions", json: [
                "model": "deepseek-r1", "max_tokens": 4,
                "messages": [["role": "user", "content": "what is f?"], ["role": "assistant", "tool_calls": [call]],
                             ["role": "tool", "content": "42", "tool_call_id": "call_1"]],
            ])
            #expect(served.status == 200, "\(served.text)")
        }
    }
}

extension ChatMessageValidationTests {
    /// A message content of the wrong type (a number, an object, a bool) was told "expected an
    /// array", the decoder's complaint about its last reading (content parts), as if a string
    /// were wrong too: OpenAI takes a string or an array of parts, and the error now says so.
    @Test func aContentOfTheWrongTypeIsToldBothShapes() async throws {
        try await LiveServer.with { server in
            for (content, index) in [("5", 0), ("{}", 0), ("true", 1)] {
                let messages = index == 0 ? #"[{"role": "user", "content": \#(content)}]"#
                    : #"[{"role": "system", "content": "x"}, {"role": "user", "content": \#(content)}]"#
                for path in ["/v1/chat/completions", "/tokenize"] {
                    let reply = try await server.post(path, raw: #"{"messages": \#(messages)}"#)
                    #expect(reply.status == 400, "\(path) \(content): \(reply.text)")
                    let error = try #require(try reply.json()["error"] as? [String: Any], "\(reply.text)")
                    #expect(error["message"] as? String == "field 'messages[\(index)].content' has the wrong type "
                            + "(expected a string or an array of content parts)", "\(path) \(content): \(reply.text)")
                    #expect(error["param"] as? String == "messages[\(index)].content", "\(reply.text)")
                }
            }
            #expect(server.backend.submitted.isEmpty)
        }
    }
}
