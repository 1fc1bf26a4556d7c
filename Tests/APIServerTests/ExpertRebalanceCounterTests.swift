import APIServer
import Foundation
import ServingEngine
import Testing
import XDSTestSupport

/// `xds_expert_rebalances` is a gauge of a count that only grows, so `rate()` and `increase()`
/// (which need a counter) could not be used on it. The gauge stays (scripts read it by that
/// name); `xds_expert_rebalances_completed_total` is the same count as a counter.
@Suite(.timeLimit(.minutes(10)))
struct ExpertRebalanceCounterTests {
    @Test func rebalancesAreACounterBesideTheGauge() async throws {
        try await LiveServer.with { server in
            server.link.update { $0.experts.rebalances = 3 }
            var m = PrometheusText(try await server.get("/metrics").text)
            #expect(m.types["xds_expert_rebalances_completed_total"] == "counter", "\(m.types.keys.filter { $0.hasPrefix("xds_expert") })")
            #expect(m.samples["xds_expert_rebalances_completed_total"] == 3)
            #expect(m.types["xds_expert_rebalances"] == "gauge")
            #expect(m.samples["xds_expert_rebalances"] == 3)
            // A scrape with no new rebalance leaves it; a later one adds the new ones only.
            m = PrometheusText(try await server.get("/metrics").text)
            #expect(m.samples["xds_expert_rebalances_completed_total"] == 3)
            server.link.update { $0.experts.rebalances = 5 }
            m = PrometheusText(try await server.get("/metrics").text)
            #expect(m.samples["xds_expert_rebalances_completed_total"] == 5)
            #expect(m.samples["xds_expert_rebalances"] == 5)
        }
    }
}
