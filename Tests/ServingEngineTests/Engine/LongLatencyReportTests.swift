import Testing
import XDSTestSupport

@testable import ServingEngine

/// The report's latencies are the requests' own, however long they took: the histograms stopped
/// at 10 hours, so a request slowed by a 1000× straggler (19.5 hours end to end in `xds run
/// --workload` of one 10,000-token reply) read 10 hours at p90 and p99, and the mean was off by
/// a third, while `--requests-out` gave its true E2E.
@Suite(.timeLimit(.minutes(10))) struct LongLatencyReportTests {
    @Test func aRequestPastTenHoursIsReportedAtItsOwnLatency() throws {
        var config = EngineConfiguration(deployment: TestDeployments.faultPod, seed: 1)
        config.expertSkew = false
        // Heartbeat rounds once a minute: the run spans most of a day of simulated time.
        config.faults.heartbeatIntervalSeconds = 60
        let engine = try ServingEngine(configuration: config, workload: FixedWorkload([
            RequestSpec(id: 0, arrival: 0, promptTokens: 1_000, outputTokens: 3_000),
        ]))
        var finished: [FinishedRequest] = []
        engine.observers.requestFinished = { finished.append($0) }
        // A decode die (the decode TE holds NPUs 16… of faultPod, dies 32…) a thousand times slower.
        #expect(engine.apply(.faultStraggler(die: 40, slowdown: 1_000)).accepted)
        #expect(engine.runToCompletion(limit: 1_000_000))
        let request = try #require(finished.first)
        #expect(request.stage == .completed)
        let e2eMs = request.endToEnd * 1_000, tpotMs = try #require(request.tpot) * 1_000
        #expect(e2eMs > 36_000_000, "the request must outlast the old 10-hour ceiling: \(e2eMs) ms")
        let latency = engine.report().latencyMs
        // HdrHistogram at three significant digits: within 1/1024 of the value.
        for (name, reported, actual) in [("e2e p50", latency.e2e.p50, e2eMs), ("e2e p99", latency.e2e.p99, e2eMs),
                                         ("e2e mean", latency.e2e.mean, e2eMs), ("tpot p99", latency.tpot.p99, tpotMs)] {
            #expect(abs(reported - actual) <= actual / 1_024, "\(name): reported \(reported) ms, the request's \(actual) ms")
        }
    }
}
