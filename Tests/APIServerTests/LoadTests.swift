import ServingEngine
import APIServer
import Foundation
import Testing
import XDSTestSupport

/// Many concurrent streams: every request gets a complete stream or an error, nothing is lost,
/// and the server's counters agree with what the clients saw.
@Suite(.serialized, .timeLimit(.minutes(10)))
struct LoadTests {
    enum Outcome: Sendable { case complete(tokens: Int), error(status: Int), broken(String) }

    @Test func twoHundredRequestsFiftyConcurrentStreams() async throws {
        let total = 200, concurrency = 50
        // Every tenth request is refused by the engine, to mix errors into the load.
        let backend = FakeCompletionBackend(
            outputTokens: 20, tokensPerBatch: 2, tokenInterval: .milliseconds(2), rejectEvery: 10)
        try await LiveServer.with(backend: backend) { server in
            let started = ContinuousClock.now
            var outcomes: [Outcome] = []
            try await withThrowingTaskGroup(of: Outcome.self) { group in
                var next = 0
                func launch(_ index: Int) {
                    group.addTask {
                        let prompt = "request \(index)"
                        let reply = try await server.post(
                            "/v1/chat/completions",
                            json: [
                                "messages": [["role": "user", "content": prompt]], "stream": true,
                                "stream_options": ["include_usage": true],
                            ])
                        guard reply.status == 200 else { return .error(status: reply.status) }
                        let stream = try parseCompletionStream(reply.text, chat: true)
                        guard stream.endedWithDone, stream.finishReasons == ["stop"],
                            let usage = stream.usage?["completion_tokens"] as? Int,
                            usage == PromptTokenizer.count(stream.content)
                        else { return .broken(reply.text) }
                        return .complete(tokens: usage)
                    }
                }
                while next < concurrency {
                    launch(next)
                    next += 1
                }
                while let outcome = try await group.next() {
                    outcomes.append(outcome)
                    if next < total {
                        launch(next)
                        next += 1
                    }
                }
            }
            let elapsed = ContinuousClock.now - started
            let complete = outcomes.compactMap { if case .complete(let t) = $0 { t } else { nil } }
            let broken = outcomes.filter { if case .broken = $0 { true } else { false } }
            let refused = outcomes.filter { if case .error(429) = $0 { true } else { false } }
            #expect(outcomes.count == total)
            #expect(broken.isEmpty, "\(broken.prefix(2))")
            #expect(refused.count == total / 10)
            #expect(complete.count + refused.count == total)
            #expect(complete.allSatisfy { $0 == 20 })
            #expect(backend.submitted.count == total)
            #expect(backend.cancelledIDs.isEmpty)

            let m = PrometheusText(try await server.get("/metrics").text)
            #expect(m.sum("vllm:request_success_total") == Double(complete.count))
            #expect(m.sum("vllm:generation_tokens_total") == Double(complete.reduce(0, +)))
            #expect(m.sum("vllm:e2e_request_latency_seconds_count") == Double(complete.count))
            #expect(m.sum("xds_http_requests_rejected_total") == Double(refused.count))
            // About 0.6 s alone. The bound catches a stalled server, not a busy machine: in a full
            // `swift test` other suites may hold the cooperative threads for seconds.
            #expect(elapsed < .seconds(30), "load test took \(elapsed)")
        }
    }

    @Test func rejectionsUnderLoadAreCountedToo() async throws {
        let backend = FakeCompletionBackend(outputTokens: 5)
        try await LiveServer.with(backend: backend) { server in
            var statuses: [Int] = []
            try await withThrowingTaskGroup(of: Int.self) { group in
                for index in 0..<40 {
                    group.addTask {
                        if index == 20 { backend.mode = .reject(reason: "full") }
                        return try await server.post(
                            "/v1/completions", json: ["prompt": "x", "stream": true]
                        ).status
                    }
                }
                for try await status in group { statuses.append(status) }
            }
            #expect(statuses.count == 40)
            #expect(statuses.allSatisfy { $0 == 200 || $0 == 429 })
            let m = PrometheusText(try await server.get("/metrics").text)
            let ok = statuses.filter { $0 == 200 }.count
            #expect(m.sum("vllm:request_success_total") == Double(ok))
            #expect(m.sum("xds_http_requests_rejected_total") == Double(40 - ok))
        }
    }
}
