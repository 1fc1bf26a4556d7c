import ServingEngine
@testable import APIServer
import Foundation
import Testing
import XDSTestSupport

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// Every failure a client can cause or meet, in OpenAI's error shape, with no Swift internals.
@Suite(.serialized, .timeLimit(.minutes(10)))
struct ErrorTests {
    /// Checks the `{"error": {"message", "type", "param", "code"}}` shape and returns the detail.
    @discardableResult
    func expectOpenAIError(_ reply: LiveServer.Reply, status: Int, type: String, code: String? = nil)
        throws -> [String: Any]
    {
        #expect(reply.status == status, "\(reply.text)")
        #expect(reply.headers["content-type"]?.hasPrefix("application/json") == true)
        let detail = try #require(try reply.json()["error"] as? [String: Any], "\(reply.text)")
        #expect(Set(detail.keys) == ["message", "type", "param", "code"])
        #expect((detail["message"] as? String)?.isEmpty == false)
        #expect(detail["type"] as? String == type)
        if let code { #expect(detail["code"] as? String == code) }
        // No Swift error dumps: those mention types, files or "Error(" descriptions.
        for leak in ["Swift.", "DecodingError", "Context(", ".swift", "codingPath"] {
            #expect(!reply.text.contains(leak), "response leaks '\(leak)': \(reply.text)")
        }
        return detail
    }

    /// A `prompt` array with one element of the wrong kind names that element: `[1, 2.5]` and
    /// `["a", 1]` were told "field 'prompt[0]' has the wrong type", blaming the first element, which
    /// is fine, since the last shape tried (arrays of token ids) fails there first (and a
    /// non-integer among ids came out as "request body is not valid JSON").
    @Test func aWrongPromptElementIsTheOneNamed() async throws {
        try await LiveServer.with { server in
            for (prompt, param) in [("[1, 2.5]", "prompt[1]"), ("[1, 2, 1e30]", "prompt[2]"), (#"["a", 1]"#, "prompt[1]"), ("[7, 8, true]", "prompt[2]"),
                                    (#"[[1], "a"]"#, "prompt[1]"), ("[null]", "prompt[0]"), (#"{"a": 1}"#, "prompt")] {
                let reply = try await server.post("/v1/completions", raw: #"{"max_tokens": 2, "prompt": \#(prompt)}"#)
                let detail = try expectOpenAIError(reply, status: 400, type: "invalid_request_error")
                #expect(detail["param"] as? String == param, "\(prompt): \(reply.text)")
                #expect((detail["message"] as? String)?.contains("'\(param)'") == true, "\(prompt): \(reply.text)")
            }
            #expect(server.backend.submitted.isEmpty)
        }
    }

    /// A token-id prompt's element of the wrong type says what a token id is, as a non-integer
    /// number there does ("a token id, an integer within 0…2147483647"), not only "an integer".
    @Test func aWrongTypeAmongTokenIDsSaysTheirRange() async throws {
        try await LiveServer.with { server in
            for (prompt, param) in [("[7, 8, true]", "prompt[2]"), ("[[1], [2, \"x\"]]", "prompt[1][1]")] {
                let reply = try await server.post("/v1/completions", raw: #"{"max_tokens": 2, "prompt": \#(prompt)}"#)
                let detail = try expectOpenAIError(reply, status: 400, type: "invalid_request_error")
                #expect(detail["param"] as? String == param, "\(prompt): \(reply.text)")
                #expect(detail["message"] as? String
                    == "field '\(param)' has the wrong type (expected a token id, an integer within 0…2147483647)",
                    "\(prompt): \(reply.text)")
            }
            // An array of strings is still told a string.
            let strings = try await server.post("/v1/completions", raw: #"{"max_tokens": 2, "prompt": ["a", 1]}"#)
            #expect(strings.text.contains("(expected a string)"), "\(strings.text)")
        }
    }

    /// A first element that is no shape a prompt takes (`[true]`, `[{}]`) was told
    /// "(expected an array)", one of the four shapes (h249's finding); it names them all.
    @Test func aFirstPromptElementOfNoShapeNamesTheShapes() async throws {
        try await LiveServer.with { server in
            for prompt in ["[true]", #"[{"a": 1}]"#, "[false, 1]"] {
                let reply = try await server.post("/v1/completions", raw: #"{"max_tokens": 2, "prompt": \#(prompt)}"#)
                let detail = try expectOpenAIError(reply, status: 400, type: "invalid_request_error")
                #expect(detail["param"] as? String == "prompt[0]", "\(prompt): \(reply.text)")
                #expect(detail["message"] as? String
                    == "field 'prompt[0]' has the wrong type (expected a string, a token id or an array of token ids)",
                    "\(prompt): \(reply.text)")
            }
            #expect(server.backend.submitted.isEmpty)
        }
    }

    @Test func unknownModelIs404() async throws {
        try await LiveServer.with { server in
            let reply = try await server.post(
                "/v1/chat/completions",
                json: ["model": "gpt-4o", "messages": [["role": "user", "content": "hi"]]])
            let detail = try expectOpenAIError(
                reply, status: 404, type: "invalid_request_error", code: "model_not_found")
            #expect(detail["param"] as? String == "model")
            #expect(server.backend.submitted.isEmpty)
        }
    }

    @Test func invalidBodiesAre400() async throws {
        try await LiveServer.with { server in
            try expectOpenAIError(
                try await server.post("/v1/chat/completions", raw: "{not json"), status: 400,
                type: "invalid_request_error")
            let missing = try expectOpenAIError(
                try await server.post("/v1/chat/completions", json: ["model": "deepseek-r1"]), status: 400,
                type: "invalid_request_error")
            #expect(missing["param"] as? String == "messages")
            let wrongType = try expectOpenAIError(
                try await server.post(
                    "/v1/chat/completions",
                    json: ["messages": [["role": "user", "content": "x"]], "max_tokens": "9"]),
                status: 400, type: "invalid_request_error")
            #expect(wrongType["param"] as? String == "max_tokens")
            try expectOpenAIError(
                try await server.post("/v1/chat/completions", json: ["messages": []]), status: 400,
                type: "invalid_request_error")
            let notObject = try expectOpenAIError(
                try await server.post("/v1/chat/completions", raw: "[1, 2]"), status: 400,
                type: "invalid_request_error")
            #expect(notObject["message"] as? String == "request body must be a JSON object")
            let nested = try expectOpenAIError(
                try await server.post("/v1/chat/completions", json: ["messages": [["content": "no role"]]]),
                status: 400, type: "invalid_request_error")
            #expect(nested["param"] as? String == "messages[0].role")
            try expectOpenAIError(
                try await server.post("/v1/completions", json: ["prompt": ["a", "b"]]), status: 400,
                type: "invalid_request_error")
            try expectOpenAIError(
                try await server.post("/v1/completions", json: ["prompt": "x", "max_tokens": 0]), status: 400,
                type: "invalid_request_error")
            #expect(server.backend.submitted.isEmpty)
        }
    }

    @Test func onlyOneChoiceIsServed() async throws {
        try await LiveServer.with { server in
            let detail = try expectOpenAIError(
                try await server.post(
                    "/v1/chat/completions", json: ["messages": [["role": "user", "content": "hi"]], "n": 2]),
                status: 400, type: "invalid_request_error")
            #expect(detail["param"] as? String == "n")
        }
    }

    @Test func oversizedBodyIs413() async throws {
        try await LiveServer.with { server in
            let huge = String(repeating: "a", count: (1 << 20) + 10)
            let reply = try await server.post("/v1/completions", raw: #"{"prompt": "\#(huge)"}"#)
            try expectOpenAIError(
                reply, status: 413, type: "invalid_request_error", code: "request_too_large")
        }
    }

    /// A client that sends its whole oversize body before it reads (Python's urllib, which also
    /// says `Connection: close`) gets the 413 and its message: the server stopped reading at the
    /// limit and half-closed, so the client's send stalled on a full socket and it never read the
    /// answer (urllib timed out after 30 s). Now the rest of the body is read and dropped for a
    /// bounded time (a lingering close, as nginx's) and the connection then closes. A keep-alive
    /// client is told `Connection: close` too.
    @Test func anOversizeBodySentWholeBeforeReadingStillGetsThe413() async throws {
        try await LiveServer.with { server in
            for connectionHeader in ["Connection: close\r\n", ""] {
                let connection = try RawConnection(port: server.port, readTimeout: 20)
                defer { connection.close() }
                let body = Array(#"{"prompt": ""#.utf8) + [UInt8](repeating: UInt8(ascii: "a"), count: 10_000_000)
                    + Array(#""}"#.utf8)
                let head = "POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                    + connectionHeader + "Content-Length: \(body.count)\r\n\r\n"
                let sentAll = await connection.sendAllOffPool(Array(head.utf8) + body)
                #expect(sentAll, "the server stopped reading the body (\(connectionHeader))")
                let answer = String(decoding: await connection.readBytesUntilClosed(), as: UTF8.self)
                #expect(answer.hasPrefix("HTTP/1.1 413"), "\(connectionHeader): \(answer.prefix(200))")
                #expect(answer.contains("Connection: close"), "\(answer.prefix(300))")
                #expect(answer.contains(APIError.bodyTooLarge(limitBytes: 1 << 20).json), "\(answer.prefix(300))")
            }
        }
    }

    @Test func maxTokensIsCappedWithinTheContextWindowAndRefusedBeyondIt() async throws {
        try await LiveServer.with { server in
            let reply = try await server.post(
                "/v1/completions", json: ["prompt": "x", "max_tokens": 100_000])
            #expect(reply.status == 200)
            #expect(server.backend.submitted.first?.maxTokens == 16_384)
            let beyond = try expectOpenAIError(
                try await server.post("/v1/completions", json: ["prompt": "x", "max_tokens": 1_000_000]),
                status: 400, type: "invalid_request_error")
            #expect(beyond["param"] as? String == "max_tokens")
            #expect((beyond["message"] as? String)?.contains("1…131072") == true)
        }
    }

    @Test func overloadedEngineAnswers429And503() async throws {
        let backend = FakeCompletionBackend()
        try await LiveServer.with(backend: backend) { server in
            let messages = [["role": "user", "content": "hi"]]
            backend.mode = .reject(reason: "prefill queues are full")
            let rejected = try await server.post(
                "/v1/chat/completions", json: ["messages": messages, "stream": true])
            let detail = try expectOpenAIError(
                rejected, status: 429, type: "rate_limit_error", code: "rate_limit_exceeded")
            #expect(detail["message"] as? String == "prefill queues are full")
            // When to try again, in whole seconds (RFC 9110 §10.2.3): a 429 had none.
            #expect(rejected.headers["retry-after"] == "1")
            let whole = try await server.post("/v1/completions", json: ["prompt": "hi"])
            #expect(whole.status == 429 && whole.headers["retry-after"] == "1")

            backend.mode = .unavailable(reason: "no healthy decode group")
            let unavailable = try await server.post("/v1/completions", json: ["prompt": "hi"])
            try expectOpenAIError(unavailable, status: 503, type: "service_unavailable_error")
            #expect(unavailable.headers["retry-after"] == nil)

            backend.mode = .refuse(status: 400, reason: "prompt exceeds every instance's KV capacity")
            let never = try expectOpenAIError(
                try await server.post("/v1/completions", json: ["prompt": "hi"]), status: 400,
                type: "invalid_request_error")
            #expect(never["message"] as? String == "prompt exceeds every instance's KV capacity")

            let metrics = PrometheusText(try await server.get("/metrics").text)
            #expect(metrics.sum("xds_http_requests_rejected_total", containing: [#"status="400""#]) == 1)
            #expect(metrics.sum("xds_http_requests_rejected_total", containing: [#"status="429""#]) == 2)
            #expect(metrics.sum("xds_http_requests_rejected_total", containing: [#"status="503""#]) == 1)
            #expect(metrics.sum("vllm:request_success_total") == 0)
        }
    }

    @Test func failureMidStreamIsAnErrorChunkThenDone() async throws {
        let backend = FakeCompletionBackend(outputTokens: 50)
        backend.mode = .failAfter(tokens: 4, reason: "NPU 37 failed")
        try await LiveServer.with(backend: backend) { server in
            let reply = try await server.post(
                "/v1/chat/completions",
                json: ["messages": [["role": "user", "content": "hi"]], "stream": true])
            #expect(reply.status == 200)
            let stream = try parseCompletionStream(reply.text, chat: true)
            #expect(PromptTokenizer.count(stream.content) == 4)
            #expect(stream.error?["message"] as? String == "NPU 37 failed")
            #expect(stream.error?["type"] as? String == "service_unavailable_error")
            #expect(stream.endedWithDone)

            let whole = try await server.post("/v1/completions", json: ["prompt": "hi"])
            try expectOpenAIError(whole, status: 503, type: "service_unavailable_error")
        }
    }

    @Test func anEngineWithoutSubmissionStillServesTheRest() async throws {
        let server = APIServer(
            configuration: .init(adminToken: LiveServer.token), link: RecordingEngineLink(),
            backend: UnavailableCompletionBackend(
                modelName: "deepseek-r1", reason: "not accepting HTTP requests"))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await server.run() }
            let base = "http://127.0.0.1:\(try await server.boundPort())"
            var request = URLRequest(url: try #require(URL(string: base + "/v1/completions")))
            request.httpMethod = "POST"
            request.httpBody = Data(#"{"prompt": "hi"}"#.utf8)
            let (data, response) = try await URLSession.shared.data(for: request)
            #expect((response as? HTTPURLResponse)?.statusCode == 503)
            #expect(String(decoding: data, as: UTF8.self).contains("not accepting HTTP requests"))
            let (_, ready) = try await URLSession.shared.data(from: try #require(URL(string: base + "/ready")))
            #expect((ready as? HTTPURLResponse)?.statusCode == 503)
            let (_, health) = try await URLSession.shared.data(from: try #require(URL(string: base + "/health")))
            #expect((health as? HTTPURLResponse)?.statusCode == 200)
            let (_, metrics) = try await URLSession.shared.data(from: try #require(URL(string: base + "/metrics")))
            #expect((metrics as? HTTPURLResponse)?.statusCode == 200)
            group.cancelAll()
        }
    }

    @Test func unknownRouteIsJSON404() async throws {
        try await LiveServer.with { server in
            try expectOpenAIError(
                try await server.get("/v2/nothing"), status: 404, type: "invalid_request_error")
        }
    }
}
