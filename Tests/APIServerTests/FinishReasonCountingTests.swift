import ServingEngine
import Testing
import XDSTestSupport
@testable import APIServer

/// `vllm:request_success_total{finished_reason}` counts an HTTP request under the reason its
/// client was told, once, and the workload's own requests under the engine's.
@Suite(.timeLimit(.minutes(10)), .ownThread("FinishReasonCountingTests"))
struct FinishReasonCountingTests {
    static func success(_ metrics: ServingMetrics, _ reason: String) -> Double {
        PrometheusText(metrics.exposition(for: Snapshot()))
            .sum("vllm:request_success_total", containing: ["finished_reason=\"\(reason)\""])
    }

    static func completed(id: Int, reachedMaxTokens: Bool) -> FinishedRequest {
        var request = FinishedRequest(id: id, arrival: 1, finishedAt: 2, stage: .completed, promptTokens: 10,
                                      outputTokens: 40, prefillStartedAt: 1, firstTokenAt: 1.1)
        request.reachedMaxTokens = reachedMaxTokens
        return request
    }

    /// The engine made all 40 tokens (its finish says "length"), the face found a stop string in
    /// the last of them and told the client "stop": counted once, as "stop", whichever comes first.
    @Test func anHTTPRequestCountsUnderTheReasonItsClientGot() {
        for engineFirst in [true, false] {
            let metrics = ServingMetrics(modelName: "deepseek-r1")
            metrics.follow(EngineFeed())
            let client = Self.completed(id: 1 << 40, reachedMaxTokens: true)
            let face = RequestOutcome(admitted: true, promptTokens: 10, generatedTokens: 38, finishReason: "stop",
                                      timeToFirstTokenSeconds: 0.1, endToEndSeconds: 1)
            if engineFirst { metrics.observe(client) }
            metrics.record(face)
            if !engineFirst { metrics.observe(client) }
            #expect(Self.success(metrics, "stop") == 1, "engine first: \(engineFirst)")
            #expect(Self.success(metrics, "length") == 0, "engine first: \(engineFirst)")
            // The engine's series still count the request (its latency and lengths).
            let m = PrometheusText(metrics.exposition(for: Snapshot()))
            #expect(m.sum("vllm:e2e_request_latency_seconds_count") == 1)
        }
    }

    /// A request the workload generated has no client: the engine's reason is the one.
    @Test func aWorkloadRequestCountsUnderTheEnginesReason() {
        let metrics = ServingMetrics(modelName: "deepseek-r1")
        metrics.follow(EngineFeed())
        metrics.observe(Self.completed(id: 5, reachedMaxTokens: true))
        metrics.observe(Self.completed(id: 6, reachedMaxTokens: false))
        #expect(Self.success(metrics, "length") == 1)
        #expect(Self.success(metrics, "stop") == 1)
    }

    /// A session dropped before it ended (its response body never ran: the connection closed
    /// before the head went out) is the client leaving: the engine is told, and the request is
    /// counted as aborted instead of running on for nobody and never being counted.
    @Test func aSessionDroppedBeforeItEndsCancelsItsRequestAndCountsAnAbort() async throws {
        let backend = FakeCompletionBackend(outputTokens: 50, tokenInterval: .milliseconds(20))
        let metrics = ServingMetrics(modelName: "deepseek-r1")
        metrics.follow(EngineFeed())
        var events = backend.submit(CompletionRequest(promptTokens: 3, maxTokens: 50)).makeAsyncIterator()
        guard case .accepted(let id)? = await events.next() else {
            Issue.record("the fake backend did not accept")
            return
        }
        var session: CompletionSession? = CompletionSession(
            requestID: id, header: CompletionHeader(id: "cmpl-\(id)", created: 0, model: "deepseek-r1", flavor: .text),
            promptTokens: 3, events: events, started: .now, backend: backend, metrics: metrics)
        #expect(session != nil)
        session = nil
        #expect(backend.cancelledIDs == [id])
        #expect(Self.success(metrics, "abort") == 1)
    }
}
