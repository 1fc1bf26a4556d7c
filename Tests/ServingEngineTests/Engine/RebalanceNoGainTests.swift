import PodModel
import Testing
import XDSTestSupport
@testable import ServingEngine

/// An operator's `rebalance` (the console's `r`) when the placement is already the plan: nothing
/// is wrong and nothing was refused, yet it was logged as a WARN "commandRejected" line
/// ("rebalance refused: rebalance skipped: …") and answered as a failure (a red ✗ in the console,
/// 400 from the admin API), the same as a bad command. It is an answer: INFO, of the rebalance
/// kind, saying there is nothing to gain and why.
@Suite struct RebalanceNoGainTests {
    @Test func rebalanceWithNothingToGainIsInfoNotAWarning() async throws {
        let (first, second, events) = try await offPool { () throws -> (CommandReply, CommandReply, [EngineEvent]) in
            let e = try ServingEngine(configuration: EngineConfiguration(
                deployment: TestDeployments.faultPod, seed: 1, syntheticRate: 20))
            e.run(until: 20)
            // Either a swap starts (and is done well before 25 s) or the placement is already the plan.
            let first = e.apply(.rebalance)
            e.run(until: 25)
            let second = e.apply(.rebalance)
            return (first, second, e.snapshot().events)
        }
        #expect(first.accepted, "\(first.message)")
        // Now the placement is the plan of the counts it was planned from: nothing to gain.
        #expect(second.accepted, "\(second.message)")
        #expect(second.message.hasPrefix("rebalance: nothing to gain: collected-load imbalance "), "\(second.message)")
        let line = try #require(events.last { $0.message.contains("nothing to gain") })
        #expect(line.severity == .info && line.kind == .rebalance, "\(line)")
        #expect(!events.contains { $0.severity == .warning && $0.message.contains("rebalance") },
                "\(events.filter { $0.severity == .warning }.map(\.message))")
    }
}
