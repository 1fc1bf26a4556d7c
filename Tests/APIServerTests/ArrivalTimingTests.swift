import Foundation
import ServingEngine
import Testing
@testable import APIServer

/// Issue 14: `/metrics` times an HTTP request from its arrival at the server (as vLLM does), not
/// from the moment the engine's clock took it in: the host's arrival lead and the handler's time
/// before submission are added to TTFT, end-to-end and queue time, never to the gaps between tokens.
@Suite(.timeLimit(.minutes(10)))
struct ArrivalTimingTests {
    struct Stamps: ArrivalStamping {
        let leads: [Int: Double]
        func takeArrivalLead(requestID: Int) -> Double? { leads[requestID] }
        func arrivalLead(requestID: Int) -> Double? { leads[requestID] }
    }

    static func request(_ id: Int) -> FinishedRequest {
        FinishedRequest(id: id, arrival: 1, finishedAt: 2, stage: .completed, promptTokens: 10, outputTokens: 11,
                        prefillStartedAt: 1, firstTokenAt: 1.1)
    }

    @Test func leadsAndHandlerTimeCountFromArrival() {
        let metrics = ServingMetrics(modelName: "deepseek-r1", arrivals: Stamps(leads: [7: 0.05]))
        metrics.follow(EngineFeed())
        metrics.noteTimeBeforeSubmission(requestID: 8, seconds: 0.02)
        for id in [7, 8, 9] { metrics.observe(FirstToken(id: id, ttft: 0.1)) }  // TTFT: at the first token
        metrics.observe(Self.request(7))  // the host's lead: 50 ms
        metrics.observe(Self.request(8))  // the handler's 20 ms before submission
        metrics.observe(Self.request(9))  // neither: the engine's stamps as they are
        let m = PrometheusText(metrics.exposition(for: Snapshot()))
        func sum(_ name: String) -> Double { m.samples.first { $0.key.hasPrefix(name + "_sum{") }?.value ?? .nan }
        #expect(abs(sum("vllm:time_to_first_token_seconds") - (0.15 + 0.12 + 0.1)) < 1e-9)
        #expect(abs(sum("vllm:e2e_request_latency_seconds") - (1.05 + 1.02 + 1)) < 1e-9)
        #expect(abs(sum("vllm:request_queue_time_seconds") - (0.05 + 0.02)) < 1e-9)
        #expect(abs(sum("vllm:request_prefill_time_seconds") - 0.3) < 1e-9)
        // Gaps between tokens are the engine's: 0.9 s over 10 gaps, for each of the three.
        #expect(abs(sum("vllm:inter_token_latency_seconds") - 3 * 0.9) < 1e-9)
    }

    /// TTFT is recorded when the first token comes out, once, and not again at the finish (it
    /// was recorded at the finish only: the histogram lagged by each request's decode, and a
    /// request failed after its first token never showed).
    @Test func ttftIsRecordedAtTheFirstTokenOnly() {
        let metrics = ServingMetrics(modelName: "deepseek-r1")
        metrics.follow(EngineFeed())
        func count() -> Double {
            PrometheusText(metrics.exposition(for: Snapshot())).samples
                .first { $0.key.hasPrefix("vllm:time_to_first_token_seconds_count{") }?.value ?? .nan
        }
        metrics.observe(FirstToken(id: 1, ttft: 0.1))
        #expect(count() == 1, "still decoding, already counted")
        metrics.observe(Self.request(1))
        #expect(count() == 1, "not again when it completes")
        var failed = Self.request(2)
        failed.stage = .failed
        metrics.observe(FirstToken(id: 2, ttft: 0.1))
        metrics.observe(failed)
        #expect(count() == 2, "a request that failed after its first token had one")
    }

    @Test func handlerTimeIsScaledToTheEnginesPaceAndDroppedWhenPaused() {
        let metrics = ServingMetrics(modelName: "deepseek-r1")
        metrics.follow(EngineFeed())
        var fast = Snapshot()
        fast.speed = 10
        _ = metrics.exposition(for: fast)
        metrics.noteTimeBeforeSubmission(requestID: 1, seconds: 0.02)  // 0.2 simulated seconds at 10x
        var paused = Snapshot()
        paused.paused = true
        _ = metrics.exposition(for: paused)
        metrics.noteTimeBeforeSubmission(requestID: 2, seconds: 0.02)  // paused: no simulated length
        for id in [1, 2] { metrics.observe(FirstToken(id: id, ttft: 0.1)) }
        metrics.observe(Self.request(1))
        metrics.observe(Self.request(2))
        let m = PrometheusText(metrics.exposition(for: Snapshot()))
        let ttft = m.samples.first { $0.key.hasPrefix("vllm:time_to_first_token_seconds_sum{") }?.value ?? .nan
        #expect(abs(ttft - (0.3 + 0.1)) < 1e-9)
    }
}
