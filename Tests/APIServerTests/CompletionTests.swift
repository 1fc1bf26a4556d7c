import ServingEngine
import APIServer
import Foundation
import Testing
import XDSTestSupport

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// The OpenAI-compatible endpoints against a live server and a timer-driven fake engine.
@Suite(.serialized, .timeLimit(.minutes(10)))
struct CompletionTests {
    nonisolated(unsafe) static let messages: [[String: Any]] = [
        ["role": "system", "content": "You are terse."],
        ["role": "user", "content": "Explain expert parallelism in one sentence."],
    ]
    static var promptTokens: Int {
        PromptTokenizer.count(
            PromptTokenizer.chatPrompt([
                ("system", "You are terse."), ("user", "Explain expert parallelism in one sentence."),
            ]))
    }

    @Test func chatCompletionWhole() async throws {
        try await LiveServer.with(backend: FakeCompletionBackend(outputTokens: 12)) { server in
            let reply = try await server.post(
                "/v1/chat/completions",
                json: ["model": "deepseek-r1", "messages": Self.messages, "temperature": 0.2])
            #expect(reply.status == 200)
            #expect(reply.headers["content-type"]?.hasPrefix("application/json") == true)
            let body = try reply.json()
            #expect(body["object"] as? String == "chat.completion")
            #expect((body["id"] as? String)?.hasPrefix("chatcmpl-") == true)
            #expect(body["model"] as? String == "deepseek-r1")
            #expect(body["created"] is Int)
            let choice = try #require((body["choices"] as? [[String: Any]])?.first)
            #expect(choice["finish_reason"] as? String == "stop")
            let message = try #require(choice["message"] as? [String: Any])
            #expect(message["role"] as? String == "assistant")
            let content = try #require(message["content"] as? String)
            let usage = try #require(body["usage"] as? [String: Any]).compactMapValues { $0 as? Int }
            #expect(usage["completion_tokens"] == 12)
            let details = (body["usage"] as? [String: Any])?["prompt_tokens_details"] as? [String: Any]
            #expect((0...Self.promptTokens).contains(details?["cached_tokens"] as? Int ?? -1), "cached_tokens is reported")
            #expect(PromptTokenizer.count(content) == 12)
            #expect(usage["prompt_tokens"] == Self.promptTokens)
            #expect(usage["total_tokens"] == 12 + Self.promptTokens)
            #expect(server.backend.submitted.first?.promptTokens == Self.promptTokens)
            #expect(server.backend.submitted.first?.maxTokens == 256)
        }
    }

    @Test func chatCompletionStreamed() async throws {
        try await LiveServer.with(backend: FakeCompletionBackend(outputTokens: 30, tokensPerBatch: 2)) {
            server in
            let reply = try await server.post(
                "/v1/chat/completions",
                json: [
                    "model": "deepseek-r1", "messages": Self.messages, "stream": true, "max_tokens": 21,
                    "stream_options": ["include_usage": true], "stop": ["\n"], "user": "alice",
                ])
            #expect(reply.status == 200)
            #expect(reply.headers["content-type"]?.hasPrefix("text/event-stream") == true)
            let stream = try parseCompletionStream(reply.text, chat: true)
            #expect(stream.endedWithDone)
            #expect(stream.error == nil)
            // Opening delta: the role and an empty content, as OpenAI's and vLLM's (it had no
            // `content` key, so a client reading `delta["content"]` raised on it). Empty, so it is
            // no token: aiperf and the openai package time the first token from the next chunk.
            let first = try #require((stream.chunks.first?["choices"] as? [[String: Any]])?.first)
            #expect(first["delta"] as? [String: String] == ["role": "assistant", "content": ""], "\(first)")
            #expect(first["finish_reason"] is NSNull)
            // max_tokens 21 < 30: cut by length, in batches of 2 then 1.
            #expect(stream.finishReasons == ["length"])
            #expect(PromptTokenizer.count(stream.content) == 21)
            let usage = try #require(stream.usage).compactMapValues { $0 as? Int }
            #expect(usage["completion_tokens"] == 21)
            #expect(usage["prompt_tokens"] == Self.promptTokens)
            #expect(server.backend.submitted.first?.user == "alice")
            // Every chunk of one completion carries the same id.
            #expect(Set(stream.chunks.compactMap { $0["id"] as? String }).count == 1)
        }
    }

    @Test func textCompletionWholeAndStreamed() async throws {
        try await LiveServer.with(backend: FakeCompletionBackend(outputTokens: 9)) { server in
            let whole = try await server.post(
                "/v1/completions", json: ["model": "deepseek-r1", "prompt": "Once upon a time"])
            #expect(whole.status == 200)
            let body = try whole.json()
            #expect(body["object"] as? String == "text_completion")
            #expect((body["id"] as? String)?.hasPrefix("cmpl-") == true)
            let choice = try #require((body["choices"] as? [[String: Any]])?.first)
            #expect(choice["logprobs"] is NSNull)
            #expect(PromptTokenizer.count(try #require(choice["text"] as? String)) == 9)
            let usage = try #require(body["usage"] as? [String: Any]).compactMapValues { $0 as? Int }
            #expect(usage["prompt_tokens"] == 4)
            #expect(usage["completion_tokens"] == 9)
            // No max_tokens: OpenAI's (and vLLM's) default for this endpoint, 16, not the
            // server-wide 256 that chat completions get.
            #expect(server.backend.submitted.last?.maxTokens == 16)

            let streamed = try await server.post(
                "/v1/completions", json: ["prompt": [1, 2, 3, 4, 5], "stream": true])
            #expect(streamed.status == 200)
            let stream = try parseCompletionStream(streamed.text, chat: false)
            #expect(stream.endedWithDone)
            #expect(stream.finishReasons == ["stop"])
            #expect(PromptTokenizer.count(stream.content) == 9)
            #expect(server.backend.submitted.last?.promptTokens == 5)
            #expect(server.backend.submitted.last?.maxTokens == 16)
            let asked = try await server.post("/v1/completions", json: ["prompt": "hi", "max_tokens": 300])
            #expect(asked.status == 200 && server.backend.submitted.last?.maxTokens == 300)
            let newer = try await server.post("/v1/completions", json: ["prompt": "hi", "max_completion_tokens": 40])
            #expect(newer.status == 200 && server.backend.submitted.last?.maxTokens == 40)
            // min_tokens beyond the default is measured against it, as in vLLM.
            let beyond = try await server.post("/v1/completions", json: ["prompt": "hi", "min_tokens": 17])
            #expect(beyond.status == 400 && beyond.text.contains("0…16"), "\(beyond.text)")
        }
    }

    @Test func modelsListsTheServedModel() async throws {
        try await LiveServer.with { server in
            let reply = try await server.get("/v1/models")
            #expect(reply.status == 200)
            let body = try reply.json()
            #expect(body["object"] as? String == "list")
            let models = try #require(body["data"] as? [[String: Any]])
            #expect(models.count == 1)
            #expect(models.first?["id"] as? String == "deepseek-r1")
            #expect(models.first?["object"] as? String == "model")
            #expect(models.first?["max_model_len"] as? Int == 131_072, "the context window, as vLLM's card has it")
            // One model by id, as the openai package's models.retrieve asks for it.
            let one = try await server.get("/v1/models/deepseek-r1")
            #expect(one.status == 200, "\(one.text)")
            #expect(try one.json()["id"] as? String == "deepseek-r1" && (try one.json()["object"] as? String) == "model")
            let other = try await server.get("/v1/models/gpt-9")
            #expect(other.status == 404)
            #expect(try (other.json()["error"] as? [String: Any])?["code"] as? String == "model_not_found", "\(other.text)")
        }
    }

    @Test func clientThatLeavesCancelsItsRequest() async throws {
        let backend = FakeCompletionBackend(outputTokens: 2_000, tokenInterval: .milliseconds(2))
        try await LiveServer.with(backend: backend) { server in
            let connection = try RawConnection(port: server.port, readTimeout: 15)  // a busy machine is slow
            connection.post(
                "/v1/chat/completions",
                json:
                    #"{"messages": [{"role": "user", "content": "hi"}], "stream": true, "max_tokens": 2000}"#)
            let head = await connection.read(until: #""content""#)
            #expect(head.hasPrefix("HTTP/1.1 200"))
            connection.close()
            #expect(await eventually { backend.cancelledIDs == [1] })
            #expect(await eventually { backend.inFlightCount == 0 })
            let metrics = PrometheusText(try await server.get("/metrics").text)
            #expect(metrics.sum("vllm:request_success_total", containing: [#"finished_reason="abort""#]) == 1)
        }
    }

    @Test func wholeResponseClientThatLeavesCancelsToo() async throws {
        let backend = FakeCompletionBackend(outputTokens: 2_000, tokenInterval: .milliseconds(2))
        try await LiveServer.with(backend: backend) { server in
            let connection = try RawConnection(port: server.port)
            connection.post("/v1/completions", json: #"{"prompt": "hi", "max_tokens": 2000}"#)
            #expect(await eventually { backend.inFlightCount == 1 })
            connection.close()
            #expect(await eventually { backend.cancelledIDs == [1] })
        }
    }

    /// A client that closes right after sending, before the completion starts waiting: the
    /// connection watched for that from the moment it opened (a watch installed at the first wait
    /// missed it, and the request ran to its end for nobody; this test's neighbour flaked on it).
    @Test(arguments: [#"{"prompt": "hi", "max_tokens": 2000}"#, #"{"prompt": "hi", "max_tokens": 2000, "stream": true}"#])
    func aClientThatClosesAtOnceCancelsItsRequest(body: String) async throws {
        let backend = FakeCompletionBackend(outputTokens: 2_000, tokenInterval: .milliseconds(2))
        try await LiveServer.with(backend: backend) { server in
            for round in 1...5 {
                let connection = try RawConnection(port: server.port)
                connection.post("/v1/completions", json: body)
                connection.close()
                #expect(await eventually { backend.cancelledIDs.count == round && backend.inFlightCount == 0 })
            }
        }
    }
}
