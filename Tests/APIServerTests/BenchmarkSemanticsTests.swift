import APIServer
import EngineRuntime
import Foundation
import ServingEngine
import Testing
import XDSTestSupport

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// Issue 14, item 1 and 2: the request fields benchmark clients rely on, as vLLM's OpenAI server
/// honours them, over a live server on loopback in front of the real engine.
@Suite(.serialized, .timeLimit(.minutes(10)))
struct BenchmarkSemanticsTests {
    /// A real engine (no synthetic traffic) behind a live server; `body` gets a poster.
    static func withServer(_ body: (Poster) async throws -> Void) async throws {
        var config = EngineConfiguration(deployment: TestDeployments.toyPod)
        config.syntheticRate = 0
        let engine = try ServingEngine(configuration: config)
        let host = EngineHost(core: engine, speed: 50, publishInterval: 0.02)
        host.start()
        defer { host.stop() }
        try await LiveServer.with(host: host) { server in
            try await body(Poster(base: server.baseURL, session: server.session))
        }
    }

    struct Poster {
        let base: URL
        let session: URLSession

        func send(_ method: String, _ path: String, json: [String: Any]? = nil, headers: [String: String] = [:])
            async throws -> (status: Int, body: Data, response: HTTPURLResponse)
        {
            var request = URLRequest(url: base.appendingPathComponent(path))
            request.httpMethod = method
            if let json {
                request.httpBody = try JSONSerialization.data(withJSONObject: json)
                request.setValue("application/json", forHTTPHeaderField: "Content-Type")
            }
            for (key, value) in headers { request.setValue(value, forHTTPHeaderField: key) }
            let (data, response) = try await session.data(for: request)
            let http = try #require(response as? HTTPURLResponse)
            return (http.statusCode, data, http)
        }

        func object(_ data: Data) throws -> [String: Any] {
            try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any],
                         "\(String(decoding: data, as: UTF8.self))")
        }

        /// A whole (non-streamed) completion: content, finish reason, usage.
        func complete(_ json: [String: Any], chat: Bool = true) async throws
            -> (content: String, finish: String, usage: [String: Any])
        {
            let reply = try await send("POST", chat ? "v1/chat/completions" : "v1/completions", json: json)
            #expect(reply.status == 200, "\(String(decoding: reply.body, as: UTF8.self))")
            let body = try object(reply.body)
            let choice = try #require((body["choices"] as? [[String: Any]])?.first)
            let content = chat ? ((choice["message"] as? [String: Any])?["content"] as? String ?? "")
                : (choice["text"] as? String ?? "")
            return (content, choice["finish_reason"] as? String ?? "", try #require(body["usage"] as? [String: Any]))
        }
    }

    static var question: [[String: Any]] { [["role": "user", "content": "How does a SuperPod decode?"]] }

    @Test func ignoreEOSGivesExactlyMaxTokensWholeAndStreamed() async throws {
        try await Self.withServer { api in
            for maxTokens in [1, 37, 300] {
                let reply = try await api.complete(
                    ["messages": Self.question, "max_tokens": maxTokens, "ignore_eos": true])
                #expect(reply.usage["completion_tokens"] as? Int == maxTokens)
                #expect(PromptTokenizer.count(reply.content) == maxTokens)
                #expect(reply.finish == "length")
            }
            // max_completion_tokens is the same field, on both endpoints.
            let text = try await api.complete(
                ["prompt": "Tell me", "max_completion_tokens": 64, "ignore_eos": true], chat: false)
            #expect(text.usage["completion_tokens"] as? Int == 64)
            // Streamed, with usage at the end and in every chunk.
            let streamed = try await api.send("POST", "v1/chat/completions", json: [
                "messages": Self.question, "max_tokens": 120, "ignore_eos": true, "stream": true,
                "stream_options": ["include_usage": true, "continuous_usage_stats": true],
            ])
            #expect(streamed.status == 200)
            let parsed = try parseCompletionStream(String(decoding: streamed.body, as: UTF8.self), chat: true)
            #expect(parsed.usage?["completion_tokens"] as? Int == 120)
            #expect(PromptTokenizer.count(parsed.content) == 120)
            let contentChunks = parsed.chunks.filter {
                (($0["choices"] as? [[String: Any]])?.first?["delta"] as? [String: Any])?["content"] != nil
            }
            #expect(!contentChunks.isEmpty)
            #expect(contentChunks.allSatisfy { $0["usage"] is [String: Any] }, "continuous_usage_stats")
            // A max_tokens the server would lower cannot be "exactly max_tokens": with ignore_eos
            // it is a 400 naming the most it can give; without, it is lowered as documented.
            let capped = try await api.send("POST", "v1/completions",
                                            json: ["prompt": "hi", "max_tokens": 20_000, "ignore_eos": true])
            #expect(capped.status == 400)
            let message = String(decoding: capped.body, as: UTF8.self)
            #expect(message.contains("'max_tokens' 20000 with ignore_eos cannot be met") && message.contains("at most 16384"),
                    "\(message)")
            let lowered = try await api.send("POST", "v1/completions", json: ["prompt": "hi", "max_tokens": 20_000])
            #expect(lowered.status == 200)
        }
    }

    @Test func minTokensRaisesTheEngineLengthAndMaxTokensBoundsIt() async throws {
        try await Self.withServer { api in
            for _ in 0..<4 {
                let reply = try await api.complete(["messages": Self.question, "max_tokens": 250, "min_tokens": 200])
                let tokens = try #require(reply.usage["completion_tokens"] as? Int)
                #expect((200...250).contains(tokens))
                let free = try await api.complete(["messages": Self.question, "max_tokens": 5])
                #expect((1...5).contains(try #require(free.usage["completion_tokens"] as? Int)))
            }
            let bad = try await api.send("POST", "v1/chat/completions",
                                         json: ["messages": Self.question, "max_tokens": 5, "min_tokens": 6])
            #expect(bad.status == 400)
            #expect(String(decoding: bad.body, as: UTF8.self).contains("min_tokens"))
        }
    }

    @Test func stopStringEndsTheReplyBeforeIt() async throws {
        try await Self.withServer { api in
            // Every synthetic sentence ends with "."; a long fixed-length reply contains one.
            let reply = try await api.complete(
                ["messages": Self.question, "max_tokens": 200, "ignore_eos": true, "stop": ["."]])
            #expect(reply.finish == "stop")
            #expect(!reply.content.isEmpty && !reply.content.contains("."))
            let tokens = try #require(reply.usage["completion_tokens"] as? Int)
            #expect(tokens == PromptTokenizer.count(reply.content) && tokens < 200)
            // Streamed: the same cut.
            let streamed = try await api.send("POST", "v1/completions", json: [
                "prompt": "Go", "max_tokens": 200, "ignore_eos": true, "stop": ".", "stream": true,
            ])
            let parsed = try parseCompletionStream(String(decoding: streamed.body, as: UTF8.self), chat: false)
            #expect(parsed.finishReasons == ["stop"] && !parsed.content.contains(".") && parsed.endedWithDone)
            // As in vLLM, stop strings wait for min_tokens: "e" is in nearly every word, yet the
            // reply keeps at least 20 tokens and is then cut before the next "e".
            for _ in 0..<4 {
                let held = try await api.send("POST", "v1/completions", json: [
                    "prompt": "hello", "max_tokens": 60, "min_tokens": 20, "stop": ["e"],
                ])
                let body = try #require(try JSONSerialization.jsonObject(with: held.body) as? [String: Any])
                let usage = try #require(body["usage"] as? [String: Any])
                let choice = try #require((body["choices"] as? [[String: Any]])?.first)
                let text = try #require(choice["text"] as? String)
                let tokens = try #require(usage["completion_tokens"] as? Int)
                #expect(tokens >= 20 && tokens == PromptTokenizer.count(text), "\(tokens): \(text)")
            }
            let tooMany = try await api.send("POST", "v1/chat/completions",
                                             json: ["messages": Self.question, "stop": ["a", "b", "c", "d", "e"]])
            #expect(tooMany.status == 400)
            // Named as a count of strings: "'stop' must be within 0…4 (got 5)" read as a number out of range.
            let said = String(decoding: tooMany.body, as: UTF8.self)
            #expect(said.contains("'stop' holds at most 4 strings (got 5)"), "\(said)")
        }
    }

    /// An `X-Request-Id` comes back with exactly the bytes sent, or is refused with a 400 that names
    /// it: a Latin-1 byte (0xE9) came back as U+FFFD (EF BF BD), and an id over 256 bytes was
    /// silently not echoed, so a client matching replies by id lost them without a word.
    @Test func requestIDIsEchoedExactlyOrRefused() async throws {
        try await LiveServer.with { server in
            func ask(_ id: [UInt8]) async throws -> (head: [UInt8], body: String) {
                let connection = try RawConnection(port: server.port, readTimeout: 15)
                defer { connection.close() }
                let body = #"{"prompt": "hi", "max_tokens": 2}"#
                connection.write(bytes: Array(("POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                    + "Content-Type: application/json\r\nConnection: close\r\nContent-Length: \(body.utf8.count)\r\n"
                    + "X-Request-Id: ").utf8) + id + Array("\r\n\r\n\(body)".utf8))
                let answer = await connection.readBytesUntilClosed()
                let split = try #require(String(decoding: answer, as: UTF8.self).range(of: "\r\n\r\n"))
                let text = String(decoding: answer, as: UTF8.self)
                let headLength = text.utf8.distance(from: text.startIndex, to: split.lowerBound)
                return (Array(answer.prefix(headLength)), String(text[split.upperBound...]))
            }
            func echoed(_ head: [UInt8]) -> [UInt8]? {
                let marker = Array("\r\nX-Request-Id: ".utf8)
                guard let start = (0...(head.count - marker.count)).first(where: { Array(head[$0..<$0 + marker.count]) == marker })
                else { return nil }
                let rest = head[(start + marker.count)...]
                return Array(rest.prefix { $0 != 13 })
            }
            let plain = Array("trace 7f3a-01 ~!".utf8)
            let served = try await ask(plain)
            #expect(String(decoding: served.head, as: UTF8.self).hasPrefix("HTTP/1.1 200"))
            #expect(echoed(served.head) == plain)
            let long = [UInt8](repeating: UInt8(ascii: "a"), count: 256)
            #expect(echoed(try await ask(long).head) == long)
            for id in [Array("caf".utf8) + [0xE9], Array("café".utf8), [UInt8](repeating: UInt8(ascii: "a"), count: 257)] {
                let refused = try await ask(id)
                #expect(String(decoding: refused.head, as: UTF8.self).hasPrefix("HTTP/1.1 400"), "\(id)")
                #expect(echoed(refused.head) == nil, "\(id)")
                let error = try #require(
                    (try JSONSerialization.jsonObject(with: Data(refused.body.utf8)) as? [String: Any])?["error"] as? [String: Any])
                #expect(error["param"] as? String == "X-Request-Id" && error["code"] as? String == "invalid_request_id")
                #expect((error["message"] as? String)?.contains("printable ASCII") == true, "\(error)")
            }
        }
    }

    /// Two `X-Request-Id` headers: only the first was echoed, so a client (or proxy) that added its
    /// own id to one already set got the other one back and lost the reply. Two different ids cannot
    /// both be the request's id: refused with a 400 that says so, nothing served, no id echoed.
    /// Two identical ones are one id, echoed once.
    @Test func twoDifferentRequestIDsAreRefusedAndTwoEqualOnesAreOne() async throws {
        try await LiveServer.with { server in
            func ask(_ ids: [String]) async throws -> (head: String, body: String) {
                let connection = try RawConnection(port: server.port, readTimeout: 15)
                defer { connection.close() }
                let body = #"{"prompt": "hi", "max_tokens": 2}"#
                connection.write(raw: "POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                    + "Content-Type: application/json\r\nConnection: close\r\nContent-Length: \(body.utf8.count)\r\n"
                    + ids.map { "X-Request-Id: \($0)\r\n" }.joined() + "\r\n\(body)")
                let text = String(decoding: await connection.readBytesUntilClosed(), as: UTF8.self)
                let split = try #require(text.range(of: "\r\n\r\n"), "\(text)")
                return (String(text[..<split.lowerBound]), String(text[split.upperBound...]))
            }
            func echoed(_ head: String) -> [String] {
                head.components(separatedBy: "\r\n").filter { $0.lowercased().hasPrefix("x-request-id:") }
            }
            let refused = try await ask(["client-1", "proxy-2"])
            #expect(refused.head.hasPrefix("HTTP/1.1 400"), "\(refused.head)")
            #expect(echoed(refused.head).isEmpty, "\(refused.head)")
            let error = try #require(
                (try JSONSerialization.jsonObject(with: Data(refused.body.utf8)) as? [String: Any])?["error"] as? [String: Any])
            #expect(error["param"] as? String == "X-Request-Id" && error["code"] as? String == "invalid_request_id")
            let message = try #require(error["message"] as? String)
            #expect(message.contains("2 different") && message.contains("one"), "\(message)")
            #expect(server.backend.submitted.isEmpty)

            let same = try await ask(["trace-9", "trace-9"])
            #expect(same.head.hasPrefix("HTTP/1.1 200"), "\(same.head)")
            #expect(echoed(same.head) == ["X-Request-Id: trace-9"], "\(same.head)")
            #expect(server.backend.submitted.count == 1)

            // An empty or blank X-Request-Id names no id: it was echoed as an empty `X-Request-Id:`;
            // it is taken as absent (served, nothing echoed), also beside a real id, which is the id.
            for ids in [[""], ["   "], ["\t"], ["", ""]] {
                let blank = try await ask(ids)
                #expect(blank.head.hasPrefix("HTTP/1.1 200"), "\(ids): \(blank.head)")
                #expect(echoed(blank.head).isEmpty, "\(ids): \(blank.head)")
            }
            for ids in [["", "trace-10"], ["trace-10", " "]] {
                let one = try await ask(ids)
                #expect(one.head.hasPrefix("HTTP/1.1 200"), "\(ids): \(one.head)")
                #expect(echoed(one.head) == ["X-Request-Id: trace-10"], "\(ids): \(one.head)")
            }
            #expect(server.backend.submitted.count == 7)
        }
    }

    /// A /tokenize prompt with a lone surrogate escape is a string the decoder cannot take: it was
    /// refused as "must be a string (token ids need no tokenizing)", which it is; now the message
    /// says what is wrong with it, as /v1/completions does. Non-string prompts keep their message.
    @Test func tokenizeSaysWhatIsWrongWithAPromptString() async throws {
        try await LiveServer.with { server in
            let surrogate = try await server.post("/tokenize", raw: #"{"prompt": "ab\ud800"}"#)
            #expect(surrogate.status == 400)
            let error = try #require(try surrogate.json()["error"] as? [String: Any])
            let message = try #require(error["message"] as? String)
            #expect(message.contains("surrogate") && !message.contains("must be a string"), "\(message)")
            #expect(error["param"] as? String == "prompt")
            for raw in [#"{"prompt": [1, 2]}"#, #"{"prompt": 5}"#, #"{"prompt": true}"#, #"{"prompt": {"a": 1}}"#] {
                let refused = try await server.post("/tokenize", raw: raw)
                #expect(refused.status == 400 && refused.text.contains("must be a string"), "\(raw): \(refused.text)")
            }
            // A list of prompts (as /v1/completions takes) was told "token ids need no tokenizing".
            for raw in [#"{"prompt": ["a", "b"]}"#, #"{"prompt": ["a"]}"#] {
                let list = try await server.post("/tokenize", raw: raw)
                let message = try #require((try list.json()["error"] as? [String: Any])?["message"] as? String)
                #expect(list.status == 400 && message.contains("one string, not a list of prompts")
                    && !message.contains("token ids"), "\(raw): \(message)")
            }
            let ids = try await server.post("/tokenize", raw: #"{"prompt": [1, 2]}"#)
            #expect(ids.text.contains("token ids need no tokenizing"), "\(ids.text)")
            #expect(try await server.post("/tokenize", raw: #"{"prompt": "\ud83d\ude00"}"#).status == 200)
        }
    }

    @Test func requestIDVersionTokenizeAndN() async throws {
        try await Self.withServer { api in
            let echoed = try await api.send("POST", "v1/chat/completions",
                                            json: ["messages": Self.question, "max_tokens": 3],
                                            headers: ["X-Request-Id": "bench-42"])
            #expect(echoed.status == 200)
            #expect(echoed.response.value(forHTTPHeaderField: "X-Request-Id") == "bench-42")
            let missing = try await api.send("GET", "no/such", headers: ["X-Request-Id": "r-404"])
            #expect(missing.status == 404 && missing.response.value(forHTTPHeaderField: "X-Request-Id") == "r-404")

            let version = try await api.send("GET", "version")
            #expect(version.status == 200)
            #expect((try api.object(version.body)["version"] as? String)?.isEmpty == false)

            let prompt = "Hello, world! Understanding tokens."
            let tokenized = try await api.send("POST", "tokenize", json: ["prompt": prompt])
            #expect(tokenized.status == 200)
            let body = try api.object(tokenized.body)
            let tokens = try #require(body["tokens"] as? [Int])
            #expect(body["count"] as? Int == PromptTokenizer.count(prompt) && tokens.count == PromptTokenizer.count(prompt))
            #expect(tokens.allSatisfy { (0..<PromptTokenizer.vocabularySize).contains($0) })
            #expect(body["max_model_len"] as? Int == 131_072)
            #expect(try await api.send("POST", "tokenize", json: ["model": "other", "prompt": "x"]).status == 404)
            #expect(try await api.send("POST", "tokenize", json: [:]).status == 400)
            // Token ids are not text to tokenize (as on vLLM); the message says so rather than
            // listing the token-id arrays /v1/completions takes.
            let ids = try await api.send("POST", "tokenize", json: ["prompt": [1, 2, 3]])
            #expect(ids.status == 400)
            let text = String(decoding: ids.body, as: UTF8.self)
            #expect(text.contains("'prompt' of /tokenize must be a string") && !text.contains("arrays of token ids"), "\(text)")

            let n2 = try await api.send("POST", "v1/chat/completions", json: ["messages": Self.question, "n": 2])
            #expect(n2.status == 400)
            let error = try #require(try api.object(n2.body)["error"] as? [String: Any])
            #expect(error["param"] as? String == "n" && error["type"] as? String == "invalid_request_error")
            #expect((error["message"] as? String)?.contains("n = 1") == true)
        }
    }

    @Test func aRepeatedLongPromptHitsThePrefixCache() async throws {
        try await Self.withServer { api in
            let system = (0..<400).map { "Rule \($0): keep the experts balanced across every die." }
                .joined(separator: " ")
            let messages: [[String: Any]] = [["role": "system", "content": system], ["role": "user", "content": "Hi"]]
            let first = try await api.complete(["messages": messages, "max_tokens": 8, "ignore_eos": true])
            let firstCached = (first.usage["prompt_tokens_details"] as? [String: Any])?["cached_tokens"] as? Int
            #expect(firstCached == 0)
            var cached: [Int] = []
            for _ in 0..<3 {
                let again = try await api.complete(["messages": messages, "max_tokens": 8, "ignore_eos": true])
                cached.append((again.usage["prompt_tokens_details"] as? [String: Any])?["cached_tokens"] as? Int ?? -1)
            }
            let prompt = try #require(first.usage["prompt_tokens"] as? Int)
            #expect(prompt > 3_000)
            #expect(cached.allSatisfy { (0...prompt).contains($0) }, "\(cached)")
            #expect(cached.max() ?? 0 > prompt / 2, "a repeated prompt is served from the prefix cache: \(cached)")
        }
    }

    /// A reply that ends within its first token report (`max_tokens` 1, or 2 under MTP) got
    /// `cached_tokens: 0` although the engine served its prompt from the prefix cache: only a
    /// step's report carried the cached count, and such a reply has none before its finish. Now
    /// `usage` carries the engine's figure (the admin request record) for every length, whole
    /// and streamed, chat and text.
    @Test func aReplyOfOneStepStillReportsItsCachedPrompt() async throws {
        try await Self.withServer { api in
            let prompt = (0..<3_000).map { "q\(100_000 + ($0 * 7_919) % 900_000)" }.joined(separator: " ")
            let messages: [[String: Any]] = [["role": "user", "content": prompt]]
            // Warm the cache with each body (chat wraps the prompt in its template).
            _ = try await api.complete(["messages": messages, "max_tokens": 8, "ignore_eos": true])
            _ = try await api.complete(["prompt": prompt, "max_tokens": 8, "ignore_eos": true], chat: false)
            /// The engine's record of the request behind a reply's `id` (`chatcmpl-N`, `cmpl-N`).
            func engineCached(_ replyID: String) async throws -> Int {
                let number = try #require(replyID.split(separator: "-").last.flatMap { Int($0) }, "\(replyID)")
                let detail = try await api.send(
                    "GET", "admin/requests/\(number)", headers: ["Authorization": "Bearer \(LiveServer.token)"])
                #expect(detail.status == 200)
                return try #require(try api.object(detail.body)["cachedPromptTokens"] as? Int)
            }
            func cached(_ usage: [String: Any]?) -> Int? {
                (usage?["prompt_tokens_details"] as? [String: Any])?["cached_tokens"] as? Int
            }
            for maxTokens in [1, 2, 3] {
                for chat in [true, false] {
                    var body: [String: Any] = chat ? ["messages": messages] : ["prompt": prompt]
                    body["max_tokens"] = maxTokens
                    body["ignore_eos"] = true
                    let whole = try await api.send("POST", chat ? "v1/chat/completions" : "v1/completions", json: body)
                    #expect(whole.status == 200)
                    let reply = try api.object(whole.body)
                    let engine = try await engineCached(try #require(reply["id"] as? String))
                    #expect(engine > 0, "the repeated prompt was served from the cache")
                    #expect(cached(reply["usage"] as? [String: Any]) == engine, "whole, max_tokens \(maxTokens), chat \(chat)")

                    body["stream"] = true
                    body["stream_options"] = ["include_usage": true]
                    let streamed = try await api.send("POST", chat ? "v1/chat/completions" : "v1/completions", json: body)
                    #expect(streamed.status == 200)
                    let stream = try parseCompletionStream(String(decoding: streamed.body, as: UTF8.self), chat: chat)
                    let id = try #require(stream.chunks.first?["id"] as? String)
                    #expect(cached(stream.usage) == (try await engineCached(id)), "streamed, max_tokens \(maxTokens), chat \(chat)")
                }
            }
        }
    }

    @Test func promptTokenIDsMatchTheCountAndBlockKeysAreStable() {
        let text = "The pod serves tokens; experts route each layer!"
        let ids = PromptTokenizer.tokenIDs(text)
        #expect(ids.count == PromptTokenizer.count(text))
        #expect(ids == PromptTokenizer.tokenIDs(text))
        let long = Array(repeating: ids, count: 20).flatMap { $0 }
        let keys = PromptTokenizer.blockKeys(long)
        #expect(keys.count == long.count / PromptTokenizer.prefixBlockTokens)
        #expect(PromptTokenizer.blockKeys(Array(long.prefix(PromptTokenizer.prefixBlockTokens - 1))).isEmpty)
        #expect(PromptTokenizer.blockKeys(long + [1, 2, 3]) == keys, "a partial tail block adds no key")
    }
}
