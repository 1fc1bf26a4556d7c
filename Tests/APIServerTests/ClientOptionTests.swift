import Foundation
import Testing
import XDSTestSupport

@testable import APIServer

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// What real applications send beside the prompt (the `openai` package's parameters, curl's
/// habits): each option either works as OpenAI and vLLM document it, or is refused with a 400 that
/// names it — never answered as if it had been honoured.
@Suite(.serialized, .timeLimit(.minutes(10)))
struct ClientOptionTests {
    static var chat: [String: Any] { ["messages": [["role": "user", "content": "hi"]], "max_tokens": 3] }

    /// Options whose answer a placeholder reply cannot hold: log-probabilities, JSON output, a forced
    /// tool call, a suffix. They were answered 200 with plain text and `logprobs: null`, which an
    /// application only finds out about when `json.loads(content)` or `tool_calls[0]` fails.
    @Test func optionsTheReplyCannotHoldAreRefusedByName() async throws {
        let named: [String: Any] = ["type": "function", "function": ["name": "get_weather"]]
        let chatCases: [([String: Any], String)] = [
            (["logprobs": true], "logprobs"), (["logprobs": true, "top_logprobs": 5], "logprobs"),
            // Without `logprobs` (OpenAI and vLLM refuse it: it needs `logprobs: true`): was a 200.
            (["top_logprobs": 5], "top_logprobs"), (["logprobs": false, "top_logprobs": 1], "top_logprobs"),
            (["response_format": ["type": "json_object"]], "response_format"),
            (["response_format": ["type": "json_schema", "json_schema": ["name": "x", "schema": [:] as [String: Any]]]],
             "response_format"),
            (["tool_choice": "required"], "tool_choice"), (["tool_choice": named], "tool_choice"),
            // The deprecated form of a forced call (`functions` + `function_call`): was a 200 with
            // no `function_call` in the reply.
            (["functions": [["name": "get_weather"]], "function_call": ["name": "get_weather"]], "function_call"),
            (["function_call": "bogus"], "function_call"),
            (["echo": true], "echo"),
            // Audio output (gpt-4o-audio's `modalities` and `audio`): was answered with text and `audio: null`.
            (["modalities": ["text", "audio"], "audio": ["voice": "alloy", "format": "wav"]], "modalities"),
            (["modalities": ["audio"]], "modalities"), (["audio": ["voice": "alloy", "format": "mp3"]], "audio"),
        ]
        let textCases: [([String: Any], String)] = [
            (["prompt": "x", "logprobs": 2], "logprobs"), (["prompt": "x", "logprobs": 0], "logprobs"),
            (["prompt": "x", "suffix": "the end"], "suffix"), (["prompt": [1, 2, 3], "echo": true], "echo"),
        ]
        try await LiveServer.with { server in
            for (extra, field) in chatCases {
                let reply = try await server.post("/v1/chat/completions", json: Self.chat.merging(extra) { $1 })
                #expect(reply.status == 400, "\(extra): \(reply.text)")
                let error = try #require(try reply.json()["error"] as? [String: Any], "\(reply.text)")
                #expect(error["param"] as? String == field, "\(extra): \(reply.text)")
                #expect(error["code"] as? String == "unsupported_parameter", "\(extra): \(reply.text)")
                #expect(error["type"] as? String == "invalid_request_error")
            }
            for (body, field) in textCases {
                let reply = try await server.post("/v1/completions", json: body)
                #expect(reply.status == 400, "\(body): \(reply.text)")
                #expect(try #require(try reply.json()["error"] as? [String: Any])["param"] as? String == field)
            }
            #expect(server.backend.submitted.isEmpty)
        }
    }

    /// vLLM's own spellings of the same kind of option (sent through the openai package's
    /// `extra_body`): constrained decoding (`guided_json`, `guided_choice`, …, `structured_outputs`,
    /// vLLM's `response_format`), prompt log-probabilities, token-id stops and filters, the stop
    /// ids in the reply. Each was answered 200 with unconstrained
    /// placeholder text and none of what it asked, as `response_format` no longer is.
    @Test func vLLMsReplyShapingFieldsAreRefusedByName() async throws {
        let fields: [([String: Any], String)] = [
            (["guided_json": ["type": "object"]], "guided_json"), (["guided_regex": "[0-9]+"], "guided_regex"),
            (["guided_choice": ["yes", "no"]], "guided_choice"), (["guided_grammar": "root ::= \"x\""], "guided_grammar"),
            (["structural_tag": "{}"], "structural_tag"), (["structured_outputs": ["choice": ["yes", "no"]]], "structured_outputs"),
            (["prompt_logprobs": 1], "prompt_logprobs"), (["prompt_logprobs": 0], "prompt_logprobs"),
            (["stop_token_ids": [2]], "stop_token_ids"), (["allowed_token_ids": [1, 2]], "allowed_token_ids"),
            (["bad_words": ["cache"]], "bad_words"), (["return_token_ids": true], "return_token_ids"),
            // vLLM's `truncate_prompt_tokens` and OpenAI's `web_search_options` were served 200 and
            // ignored: the first's usage and context check counted every prompt token where vLLM
            // counts the kept ones, the second's reply searched nothing.
            (["truncate_prompt_tokens": 2], "truncate_prompt_tokens"), (["truncate_prompt_tokens": -1], "truncate_prompt_tokens"),
            (["web_search_options": [String: Any]()], "web_search_options"),
            (["web_search_options": ["search_context_size": "low"]], "web_search_options"),
        ]
        let harmless: [[String: Any]] = [
            ["guided_json": NSNull(), "guided_choice": NSNull(), "structured_outputs": NSNull()],
            ["guided_decoding_backend": "xgrammar"], ["prompt_logprobs": NSNull()], ["stop_token_ids": [Int]()],
            ["allowed_token_ids": NSNull()], ["bad_words": [String]()], ["include_stop_str_in_output": false],
            ["return_token_ids": false], ["skip_special_tokens": true], ["truncate_prompt_tokens": NSNull()],
            ["web_search_options": NSNull()],
        ]
        try await LiveServer.with { server in
            for (path, base) in [("/v1/chat/completions", Self.chat), ("/v1/completions", ["prompt": "x", "max_tokens": 3])] {
                let served = server.backend.submitted.count
                for (extra, field) in fields {
                    let reply = try await server.post(path, json: base.merging(extra) { $1 })
                    #expect(reply.status == 400, "\(path) \(extra): \(reply.text)")
                    let error = try #require(try reply.json()["error"] as? [String: Any], "\(reply.text)")
                    #expect(error["param"] as? String == field, "\(path) \(extra): \(reply.text)")
                    #expect(error["code"] as? String == "unsupported_parameter", "\(path) \(extra): \(reply.text)")
                    #expect((error["message"] as? String)?.hasPrefix("'\(field)'") == true, "\(path) \(extra): \(reply.text)")
                }
                #expect(server.backend.submitted.count == served, "\(path): a refused request reached the engine")
                for extra in harmless {
                    let reply = try await server.post(path, json: base.merging(extra) { $1 })
                    #expect(reply.status == 200, "\(path) \(extra): \(reply.text)")
                }
            }
            #expect(server.backend.submitted.count == 2 * harmless.count)
        }
    }

    /// `tools` and the deprecated `functions` are ignored (the reply calls no tool), but a value
    /// that is not a tool list was answered 200 as well (`"tools": "x"`); OpenAI and vLLM refuse it
    /// naming the field, and so does xds now.
    @Test func malformedToolListsAreRefusedByName() async throws {
        let cases: [([String: Any], String)] = [
            (["tools": "x"], "tools"), (["tools": ["x"]], "tools[0]"), (["tools": [["function": ["name": "f"]]]], "tools[0].type"),
            (["tools": [["type": "function"]]], "tools[0].function"),
            (["tools": [["type": "function", "function": ["parameters": ["type": "object"]]]]], "tools[0].function.name"),
            (["tools": [["type": "function", "function": ["name": "f"]], ["type": "bogus"]]], "tools[1].type"),
            (["functions": "x"], "functions"), (["functions": [["description": "d"]]], "functions[0].name"),
        ]
        try await LiveServer.with { server in
            for (extra, field) in cases {
                let reply = try await server.post("/v1/chat/completions", json: Self.chat.merging(extra) { $1 })
                #expect(reply.status == 400, "\(extra): \(reply.text)")
                let error = try #require(try reply.json()["error"] as? [String: Any], "\(extra): \(reply.text)")
                #expect(error["param"] as? String == field, "\(extra): \(reply.text)")
            }
            #expect(server.backend.submitted.isEmpty)
        }
    }

    /// A legacy `logprobs` count out of its range (−1, 21) was told "'logprobs' is not supported",
    /// as an in-range count is: the client learnt nothing of the range it broke. It is told the
    /// range first (400, OpenAI's error shape, param `logprobs`); an in-range count stays refused
    /// as not supported.
    @Test func aLogprobsCountOutOfRangeIsToldTheRange() async throws {
        try await LiveServer.with { server in
            for count in [-1, 6, 21, 1_000_000] {
                let reply = try await server.post("/v1/completions", json: ["prompt": "x", "logprobs": count])
                #expect(reply.status == 400, "\(count): \(reply.text)")
                let error = try #require(try reply.json()["error"] as? [String: Any], "\(reply.text)")
                #expect(error["message"] as? String == "'logprobs' must be within 0…5 (got \(count))", "\(reply.text)")
                #expect(error["param"] as? String == "logprobs" && error["type"] as? String == "invalid_request_error")
                #expect(error["code"] is NSNull, "\(reply.text)")
            }
            let inRange = try await server.post("/v1/completions", json: ["prompt": "x", "logprobs": 5])
            #expect(inRange.status == 400)
            #expect(try #require(try inRange.json()["error"] as? [String: Any])["code"] as? String == "unsupported_parameter")
            #expect(server.backend.submitted.isEmpty)
        }
    }

    /// The same options in the values that ask for nothing the reply lacks still work.
    @Test func theirHarmlessValuesAreServed() async throws {
        let tools: [[String: Any]] = [["type": "function", "function": ["name": "f", "parameters": ["type": "object"]]]]
        let chatCases: [[String: Any]] = [
            ["logprobs": false], ["logprobs": NSNull()], ["response_format": ["type": "text"]],
            ["top_logprobs": 0], ["logprobs": false, "top_logprobs": 0], ["top_logprobs": NSNull()],
            ["tools": tools], ["tools": tools + [["type": "custom", "custom": ["name": "g"]]]], ["tools": tools, "tool_choice": "auto"], ["tools": tools, "tool_choice": "none"],
            ["functions": [["name": "f"]], "function_call": "auto"], ["function_call": "none"], ["function_call": NSNull()],
            ["echo": false], ["seed": 7, "user": "u", "temperature": 0, "top_p": 1],
            ["modalities": ["text"]], ["audio": NSNull(), "modalities": NSNull()],
        ]
        try await LiveServer.with { server in
            for extra in chatCases {
                let reply = try await server.post("/v1/chat/completions", json: Self.chat.merging(extra) { $1 })
                #expect(reply.status == 200, "\(extra): \(reply.text)")
            }
            for body: [String: Any] in [["prompt": "x", "suffix": ""], ["prompt": "x", "logprobs": NSNull()], ["prompt": "x", "echo": false]] {
                let reply = try await server.post("/v1/completions", json: body)
                #expect(reply.status == 200, "\(body): \(reply.text)")
            }
            #expect(server.backend.submitted.count == chatCases.count + 3)
        }
    }

    /// Legacy `echo: true` starts the reply with the prompt (it was dropped silently), whole and
    /// streamed; usage still counts only the generated tokens.
    @Test func echoStartsTheReplyWithThePrompt() async throws {
        try await LiveServer.with(backend: FakeCompletionBackend(outputTokens: 3)) { server in
            let whole = try await server.post("/v1/completions", json: ["prompt": "Say this", "echo": true])
            #expect(whole.status == 200, "\(whole.text)")
            let choice = try #require((try whole.json()["choices"] as? [[String: Any]])?.first)
            let text = try #require(choice["text"] as? String)
            #expect(text.hasPrefix("Say this") && text.count > "Say this".count, "\(text)")
            let usage = try #require(try whole.json()["usage"] as? [String: Any])
            #expect(usage["completion_tokens"] as? Int == 3)

            let streamed = try await server.post(
                "/v1/completions", json: ["prompt": "Say this", "echo": true, "stream": true])
            let parsed = try parseCompletionStream(streamed.text, chat: false)
            #expect(parsed.content.hasPrefix("Say this") && parsed.content.count > "Say this".count, "\(streamed.text)")
        }
    }

    /// An empty prompt list is an empty prompt, not "several prompts".
    @Test func anEmptyPromptListSaysItIsEmpty() async throws {
        try await LiveServer.with { server in
            let reply = try await server.post("/v1/completions", json: ["prompt": [String]()])
            #expect(reply.status == 400)
            let error = try #require(try reply.json()["error"] as? [String: Any], "\(reply.text)")
            #expect(error["message"] as? String == "'prompt' must not be empty", "\(reply.text)")
        }
    }

    /// HEAD works on every GET route (it was 404 on all but /health and /ready): the GET answer's
    /// status and Content-Length, no body.
    @Test func headAnswersLikeGetWithoutABody() async throws {
        try await LiveServer.with { server in
            for path in ["/v1/models", "/v1/models/\(server.backend.modelName)", "/metrics", "/version", "/health", "/ready"] {
                let get = try await server.get(path)
                let head = try await server.request("HEAD", path)
                #expect(head.status == get.status, "\(path)")
                #expect(head.body.isEmpty, "\(path)")
                #expect(head.headers["content-type"] == get.headers["content-type"], "\(path)")
            }
            #expect(try await server.request("HEAD", "/v1/models/no-such-model").status == 404)
            #expect(try await server.request("HEAD", "/admin/state").status == 401)
            #expect(try await server.request("HEAD", "/admin/state", token: LiveServer.token).status == 200)
            // Content-Length is the GET body's, as HTTP asks of a HEAD answer.
            let connection = try RawConnection(port: server.port, readTimeout: 15)
            defer { connection.close() }
            connection.write(raw: "HEAD /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            let answer = await connection.read(until: "\r\n\r\n")
            let models = try await server.get("/v1/models")
            #expect(answer.contains("Content-Length: \(models.body.count)"), "\(answer)")
        }
    }

    /// A known path asked with a method it does not take answers 405 with an `Allow` header (it
    /// was a 404, which told a client the route did not exist); `OPTIONS` on a known path, a CORS
    /// preflight included, answers 204 with `Allow` (it was a 404 too) and grants no other origin.
    /// Unknown paths and a route's own 404 (an unknown model) stay 404.
    @Test func wrongMethodIs405WithAllowAndOptionsIs204() async throws {
        try await LiveServer.with { server in
            let get = try await server.request("GET", "/v1/completions")
            #expect(get.status == 405 && get.headers["allow"] == "POST, OPTIONS", "\(get.status) \(get.headers)")
            let error = try #require(try get.json()["error"] as? [String: Any], "\(get.text)")
            #expect(error["code"] as? String == "method_not_allowed")
            #expect(error["message"] as? String == "/v1/completions does not take GET; it takes POST, OPTIONS")
            let post = try await server.request("POST", "/metrics", body: Data("{}".utf8))
            #expect(post.status == 405 && post.headers["allow"] == "GET, HEAD, OPTIONS")
            let delete = try await server.request("DELETE", "/v1/models/\(server.backend.modelName)")
            #expect(delete.status == 405 && delete.headers["allow"] == "GET, HEAD, OPTIONS")
            #expect(try await server.request("PUT", "/admin/commands").headers["allow"] == "POST, OPTIONS")
            #expect(try await server.request("HEAD", "/v1/chat/completions").status == 405)
            let options = try await server.request("OPTIONS", "/v1/chat/completions")
            #expect(options.status == 204 && options.headers["allow"] == "POST, OPTIONS" && options.body.isEmpty)
            #expect(try await server.request("OPTIONS", "/health").headers["allow"] == "GET, HEAD, OPTIONS")
            // A browser's preflight: told the methods, not granted the origin.
            let connection = try RawConnection(port: server.port, readTimeout: 15)
            defer { connection.close() }
            connection.write(raw: "OPTIONS /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: http://example.com\r\n"
                + "Access-Control-Request-Method: POST\r\n\r\n")
            let preflight = await connection.read(until: "\r\n\r\n")
            #expect(preflight.hasPrefix("HTTP/1.1 204") && preflight.contains("Allow: POST, OPTIONS"), "\(preflight)")
            #expect(!preflight.lowercased().contains("access-control-allow-origin"))
            for (method, path) in [("GET", "/no/such"), ("OPTIONS", "/no/such"), ("POST", "/v1"), ("GET", "/v1/models/no-such-model"),
                                   ("GET", "/v1/models/a/b")] {
                let reply = try await server.request(method, path)
                #expect(reply.status == 404 && reply.headers["allow"] == nil, "\(method) \(path): \(reply.status)")
            }
        }
    }

    /// `Expect: 100-continue` (curl sends it with any body over 1 KiB) is answered with `100
    /// Continue` before the body is sent; without it curl waited a second, which counted in the
    /// request's latency. The same connection then serves the next request.
    @Test func expectContinueIsAnsweredAtOnce() async throws {
        try await LiveServer.with(backend: FakeCompletionBackend(outputTokens: 2)) { server in
            let connection = try RawConnection(port: server.port, readTimeout: 5)
            defer { connection.close() }
            let json = #"{"prompt": "a prompt long enough to be worth asking about", "max_tokens": 2}"#
            for _ in 0..<2 {
                connection.write(raw:
                    "POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                    + "Content-Length: \(json.utf8.count)\r\nExpect: 100-continue\r\n\r\n")
                // The body is sent only after the interim answer, as curl does.
                let interim = await connection.read(until: "\r\n\r\n")
                #expect(interim.hasPrefix("HTTP/1.1 100 Continue\r\n"), "\(interim)")
                connection.write(raw: json)
                let answer = await connection.read(until: "\"finish_reason\"")
                #expect(answer.hasPrefix("HTTP/1.1 200"), "\(answer)")
            }
            #expect(server.backend.submitted.count == 2)
        }
    }

    /// A model id in the path is percent-decoded before it is looked up (RFC 3986 §2.1: `%2D` is
    /// `-`), as clients that escape path segments send it; `GET /v1/models/deepseek%2Dr1` was a 404
    /// naming `'deepseek%2Dr1'`. An unknown id is echoed decoded but still made safe (a control
    /// character escaped); escapes that do not decode are kept as sent.
    @Test func aPercentEncodedModelIDIsDecodedBeforeLookup() async throws {
        try await LiveServer.with { server in
            func get(_ path: String) async throws -> (status: String, body: String) {
                let connection = try RawConnection(port: server.port, readTimeout: 5)
                defer { connection.close() }
                connection.write(raw: "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                let answer = await connection.read(until: "never-sent")
                let parts = answer.components(separatedBy: "\r\n\r\n")
                return (String(answer.prefix(12)), parts.dropFirst().joined(separator: "\r\n\r\n"))
            }
            for path in ["/v1/models/deepseek%2Dr1", "/v1/models/%64%65%65%70%73%65%65%6B-r1", "/v1/models/deepseek-r1"] {
                let reply = try await get(path)
                #expect(reply.status == "HTTP/1.1 200", "\(path): \(reply)")
                #expect(reply.body.contains(#""id":"deepseek-r1""#), "\(path): \(reply.body)")
            }
            let cases = [("/v1/models/no%2Dsuch", "'no-such'"), ("/v1/models/a%0Ab", #"'a\\u{A}b'"#),
                         ("/v1/models/%zz", "'%zz'")]
            for (path, echo) in cases {
                let reply = try await get(path)
                #expect(reply.status == "HTTP/1.1 404", "\(path): \(reply)")
                #expect(reply.body.contains("The model \(echo) does not exist"), "\(path): \(reply.body)")
            }
        }
    }

    /// A body announced over the 1 MiB limit (`Content-Length`) by a client waiting for `100
    /// Continue` gets the 413 an oversize body gets, at once: it used to be told `100 Continue`, so
    /// curl sent 2 MB only to have them refused. The body is never asked for, nothing reaches the
    /// engine, and the connection closes after the answer (what the client sends next, if anything,
    /// has no known framing). A body within the limit is still asked for.
    @Test func anOversizeBodyAnnouncedWithExpectContinueIs413AtOnce() async throws {
        try await LiveServer.with(backend: FakeCompletionBackend(outputTokens: 2)) { server in
            let limit = server.api.configuration.maxBodyBytes
            // What a body found too large while read gets (ErrorTests.oversizedBodyIs413).
            let refusal = APIError.bodyTooLarge(limitBytes: limit).json
            for path in ["/v1/completions", "/v1/chat/completions", "/admin/commands", "/no/such"] {
                let connection = try RawConnection(port: server.port, readTimeout: 30)
                defer { connection.close() }
                connection.write(raw:
                    "POST \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                    + "Content-Length: 2000000\r\nExpect: 100-continue\r\n\r\n")
                // The server closes the connection (not our read timeout, which a quiet open
                // connection would reach: the server's body timeout is 60 s).
                let (answer, closed) = await connection.readUntilClosed()
                #expect(closed, "\(path): the connection stayed open")
                #expect(answer.hasPrefix("HTTP/1.1 413"), "\(path): \(answer)")
                #expect(!answer.contains("100 Continue") && answer.contains("Connection: close"), "\(path): \(answer)")
                let body = try #require(answer.range(of: "\r\n\r\n").map { answer[$0.upperBound...] }, "\(answer)")
                #expect(String(body) == refusal, "\(path): the same error body as a body read past the limit")
            }
            // The limit is the server's: one byte over it is refused, the limit itself asked for.
            for (length, continues) in [(limit + 1, false), (limit, true)] {
                let connection = try RawConnection(port: server.port, readTimeout: 5)
                defer { connection.close() }
                connection.write(raw:
                    "POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: \(length)\r\n"
                    + "Expect: 100-continue\r\n\r\n")
                let head = await connection.read(until: "\r\n\r\n")
                #expect(head.hasPrefix(continues ? "HTTP/1.1 100 Continue" : "HTTP/1.1 413"), "\(length): \(head)")
            }
            #expect(server.backend.submitted.isEmpty)
        }
    }

    /// A request pipelined behind a streamed reply gets its `100 Continue` only after that reply
    /// ended: an interim answer written at once would land inside the stream and corrupt it.
    @Test func expectContinueWaitsForTheResponseBeforeIt() async throws {
        let backend = FakeCompletionBackend(outputTokens: 20, tokenInterval: .milliseconds(20))
        try await LiveServer.with(backend: backend) { server in
            let connection = try RawConnection(port: server.port, readTimeout: 15)
            defer { connection.close() }
            let first = #"{"prompt": "stream this", "stream": true}"#
            let second = #"{"prompt": "then this", "max_tokens": 2}"#
            connection.write(raw:
                "POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: \(first.utf8.count)\r\n\r\n\(first)"
                + "POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: \(second.utf8.count)\r\n"
                + "Expect: 100-continue\r\n\r\n")
            let streamed = await connection.read(until: "100 Continue\r\n\r\n")
            let done = try #require(streamed.range(of: "data: [DONE]"), "\(streamed)")
            let interim = try #require(streamed.range(of: "HTTP/1.1 100 Continue"), "\(streamed)")
            #expect(done.upperBound <= interim.lowerBound, "\(streamed)")
            connection.write(raw: second)
            let answer = await connection.read(until: "\"finish_reason\"")
            #expect(answer.hasPrefix("HTTP/1.1 200"), "\(answer)")
        }
    }

    /// HTTP/1.0 (Apache's `ab`, with or without `-k`): without keep-alive the answer ends with the
    /// connection; with it the answer says `Connection: keep-alive` and the connection serves the
    /// next request; a streamed answer is never chunked. Before, the connection stayed open with no
    /// keep-alive answer and streams were chunked, so `ab` waited for every reply until its timeout.
    @Test func http10ClientsGetAnEndTheyCanRead() async throws {
        try await LiveServer.with(backend: FakeCompletionBackend(outputTokens: 3)) { server in
            // What the server sent, and whether it closed the connection (not our read timeout,
            // which a quiet open connection would reach first: the server's keep-alive timeout is 75 s).
            func exchange(_ request: String, until marker: String? = nil) async throws -> (String, Bool) {
                let connection = try RawConnection(port: server.port, readTimeout: 30)
                defer { connection.close() }
                connection.write(raw: request)
                guard let marker else { return await connection.readUntilClosed() }
                return (await connection.read(until: marker), false)
            }
            let (closed, wasClosed) = try await exchange("GET /health HTTP/1.0\r\n\r\n")
            #expect(closed.hasPrefix("HTTP/1.0 200") && closed.hasSuffix(#""status":"ok"}"#), "\(closed)")
            #expect(wasClosed, "the connection stayed open: \(closed)")

            // Kept open after the first (keep-alive) answer, closed after the second (plain 1.0).
            let (kept, keptClosed) = try await exchange(
                "GET /health HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /version HTTP/1.0\r\n\r\n")
            #expect(kept.components(separatedBy: "HTTP/1.0 200 OK").count == 3, "\(kept)")
            let heads = kept.lowercased().components(separatedBy: "http/1.0 200 ok").dropFirst()
            #expect(heads.first?.contains("connection: keep-alive") == true, "\(kept)")
            #expect(heads.last?.contains("connection: close") == true && kept.hasSuffix("}"), "\(kept)")
            #expect(keptClosed, "the connection stayed open: \(kept)")

            let json = #"{"prompt": "stream this", "stream": true}"#
            let (streamed, streamClosed) = try await exchange(
                "POST /v1/completions HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: \(json.utf8.count)\r\n\r\n\(json)")
            let head = streamed.components(separatedBy: "\r\n\r\n")[0].lowercased()
            #expect(head.hasPrefix("http/1.0 200") && !head.contains("transfer-encoding") && head.contains("connection: close"),
                    "\(streamed)")
            #expect(streamed.hasSuffix("data: [DONE]\n\n"), "\(streamed)")
            #expect(streamClosed, "the connection stayed open: \(streamed)")

            // HTTP/1.1 keeps its chunked streams and persistent connections.
            let (eleven, _) = try await exchange(
                "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: \(json.utf8.count)\r\n\r\n\(json)",
                until: "0\r\n\r\n")
            #expect(eleven.hasPrefix("HTTP/1.1 200") && eleven.lowercased().contains("transfer-encoding: chunked"), "\(eleven)")
        }
    }

    /// RFC 6750 allows one or more spaces between `Bearer` and the token.
    @Test func aBearerTokenAfterSeveralSpacesIsAccepted() async throws {
        let token = LiveServer.token
        #expect(AdminToken.authorizes(header: "Bearer  \(token)", expected: token))
        #expect(AdminToken.authorizes(header: "Bearer   \(token)", expected: token))
        #expect(!AdminToken.authorizes(header: "Bearer \(token) extra", expected: token))
        #expect(!AdminToken.authorizes(header: "Bearer\(token)", expected: token))
        try await LiveServer.with { server in
            var request = URLRequest(url: server.baseURL.appendingPathComponent("/admin/state"))
            request.setValue("Bearer  \(token)", forHTTPHeaderField: "Authorization")
            let (_, response) = try await server.session.data(for: request)
            #expect((response as? HTTPURLResponse)?.statusCode == 200)
        }
    }

    /// `OPTIONS *` asks about the server as a whole (RFC 9110 §9.3.7): it is answered as `OPTIONS`
    /// on a path is, 204 with `Allow` naming every method some route takes, and the connection
    /// serves the next request. It was a 404 `route_not_found`, telling a client probing the server
    /// that it does not exist.
    @Test func optionsAsteriskIs204WithEveryMethodAllowed() async throws {
        try await LiveServer.with { server in
            let connection = try RawConnection(port: server.port, readTimeout: 15)
            defer { connection.close() }
            connection.write(raw: "OPTIONS * HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\nGET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            let text = await connection.read(until: "HTTP/1.1 200")
            #expect(text.hasPrefix("HTTP/1.1 204"), "\(text.prefix(300))")
            let head = text.components(separatedBy: "\r\n\r\n").first ?? ""
            #expect(head.contains("\r\nAllow: GET, HEAD, POST, OPTIONS"), "\(head)")
            #expect(!head.lowercased().contains("connection: close"), "\(head)")
            #expect(text.contains("HTTP/1.1 200"), "the next request was not answered: \(text)")
        }
    }

    /// The asterisk form of a request target is valid only for OPTIONS (RFC 9112 §3.2.4): `GET *`
    /// names no resource and is a malformed request, a 400, not a 404 "no route" (which said the
    /// server lacks a resource that cannot exist). The connection still serves the next request.
    @Test(arguments: ["GET", "POST", "HEAD", "DELETE"])
    func asteriskTargetIs400ForAnyMethodButOptions(method: String) async throws {
        try await LiveServer.with { server in
            let connection = try RawConnection(port: server.port, readTimeout: 15)
            defer { connection.close() }
            let body = method == "POST" ? "Content-Length: 2\r\n\r\n{}" : "\r\n"
            connection.write(raw: "\(method) * HTTP/1.1\r\nHost: 127.0.0.1\r\n\(body)GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            let text = await connection.read(until: "HTTP/1.1 200")
            #expect(text.hasPrefix("HTTP/1.1 400"), "\(text.prefix(300))")
            if method != "HEAD" {
                #expect(text.contains("only OPTIONS takes the request target *"), "\(text.prefix(400))")
            }
            #expect(text.contains("HTTP/1.1 200"), "the next request was not answered: \(text)")
        }
    }
}
