import Foundation
import PodModel
import SimKit
import Testing
import XDSTestSupport

@testable import ServingEngine

/// A rate change takes effect at once: the arrival already drawn at the old rate is re-timed
/// (issue 10: `rate 0.000001` then `rate 50` used to wait out a gap of days).
@Suite struct RateChangeTests {
    @Test func aFastRateAfterAVerySlowOneTakesEffectAtOnce() throws {
        let engine = try ServingEngineTests.synthetic(TestDeployments.toyPod, rate: 20, limit: 100_000)
        engine.run(until: 1)
        // The slowest rate taken: one arrival every 10,000 s on average.
        #expect(engine.apply(.rate(requestsPerSecond: 0.0001)).accepted)
        engine.run(until: 2)
        let before = engine.report().requests.arrived
        #expect(engine.apply(.rate(requestsPerSecond: 50)).accepted)
        engine.run(until: 12)
        let arrived = engine.report().requests.arrived - before
        // 10 s at 50/s: about 500 (Poisson, sd ≈ 22); the old behaviour gave a handful.
        #expect(arrived > 400 && arrived < 600, "arrived \(arrived) in 10 s at 50 requests/s")
        #expect(engine.inFlightProblems() == [])
    }

    /// Below 0.0001/s no arrival would ever come: the engine refuses it as the parser and
    /// `--rate` do, naming the range, and keeps its rate.
    @Test func aRateTooLowToEverArriveIsRefused() throws {
        let engine = try ServingEngineTests.synthetic(TestDeployments.toyPod, rate: 20, limit: 100_000)
        let reply = engine.apply(.rate(requestsPerSecond: 1e-300))
        #expect(!reply.accepted)
        #expect(reply.message.contains("rate must be 0 (no synthetic arrivals) or between 0.0001 and 10000 requests/s, got 1e-300"),
                "\(reply.message)")
        engine.run(until: 5)
        #expect(engine.report().requests.arrived > 50, "still arriving at 20/s")
    }

    @Test func rateZeroParksTheNextArrivalUntilTheRateRises() throws {
        let engine = try ServingEngineTests.synthetic(TestDeployments.toyPod, rate: 20, limit: 100_000)
        engine.run(until: 1)
        #expect(engine.apply(.rate(requestsPerSecond: 0)).accepted)
        let parkedAt = engine.report().requests.arrived
        engine.run(until: 30)
        #expect(engine.report().requests.arrived == parkedAt, "no arrival while the rate is 0")
        #expect(engine.apply(.rate(requestsPerSecond: 20)).accepted)
        engine.run(until: 40)
        let arrived = engine.report().requests.arrived - parkedAt
        #expect(arrived > 140 && arrived < 260, "arrived \(arrived) in 10 s at 20 requests/s")
    }

    @Test func rateChangesStayDeterministic() throws {
        func run() throws -> RunReport {
            let engine = try ServingEngineTests.synthetic(TestDeployments.toyPod, rate: 20, limit: 100_000)
            engine.run(until: 3)
            _ = engine.apply(.rate(requestsPerSecond: 0.5))
            engine.run(until: 5)
            _ = engine.apply(.rate(requestsPerSecond: 0))
            engine.run(until: 6)
            _ = engine.apply(.rate(requestsPerSecond: 35))
            engine.run(until: 15)
            return engine.report()
        }
        #expect(try run() == run())
    }
}
