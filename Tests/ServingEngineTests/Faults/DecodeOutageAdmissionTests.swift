import PodModel
import SimKit
import Testing
import XDSTestSupport

@testable import ServingEngine

/// With prefill and decode apart, a request that arrives while no decode TE takes work and none
/// is back within the TTFT SLO is turned away at once: taken in, it waited for the decode TE's
/// return (five minutes under a pd-failover restart; a review's HTTP client hung that long).
@Suite struct DecodeOutageAdmissionTests {
    static func glitched(restartSeconds: Double) throws -> ServingEngine {
        let engine = try FaultTests.engine(rate: 30, limit: 400) {
            $0.recoveryPolicy = "pd-failover"
            $0.faults.componentRestartSeconds = restartSeconds
        }
        engine.run(until: 2)
        #expect(engine.apply(.faultGlitch).accepted)
        return engine
    }

    @Test func arrivalsDuringALongDecodeRestartAreTurnedAway() throws {
        let engine = try Self.glitched(restartSeconds: 6)
        let d = try FaultTests.decodeIndex(engine)
        #expect(!engine.cluster.hasPlaceableGroup(te: d), "the decode TE restarts")
        engine.run(until: 5)
        let during = engine.report().requests
        #expect(during.rejectionReasons["no decode TE accepts work"] ?? 0 > 30, "\(during.rejectionReasons)")
        let line = engine.recentEvents().first { $0.message.contains("no decode TE accepts work") }?.message ?? ""
        #expect(line.contains("(all restarting, drained or out of service; the first is back in "), "\(line)")
        // Back: taken in again, and everything accepted is served.
        engine.run(until: 9)
        let rejected = engine.report().requests.rejected
        engine.run(until: 12)
        #expect(engine.report().requests.rejected == rejected, "none turned away once decode is back")
        #expect(engine.runToCompletion(limit: 3_600))
        FaultTests.expectSound(engine)
        #expect(engine.report().requests.failed == 0)
    }

    @Test func aDecodeTEDueBackWithinTheSLOIsWaitedFor() throws {
        // 1.5 s of restart is within the 2 s TTFT SLO: arrivals wait, none is turned away.
        let engine = try Self.glitched(restartSeconds: 1.5)
        #expect(engine.runToCompletion(limit: 3_600))
        #expect(engine.report().requests.rejected == 0)
        FaultTests.expectSound(engine)
    }
}

/// Requests that finished prefill while no decode TE takes work and none is coming back by itself.
@Suite struct StrandedTransferTests {
    /// Every decode node drained under load: the prefilled requests queued for decode fail with
    /// the reason at the next heartbeat, new arrivals are rejected, and nothing is left in flight
    /// (three requests used to wait in the transfer queue for good, neither finished nor failed).
    @Test func prefilledRequestsWithNoDecodeTEEverBackFailWithTheReason() throws {
        let engine = try FaultTests.engine(rate: 30, limit: 200)
        engine.run(until: 3)
        for node in 2...4 { #expect(engine.apply(.drain(node: node)).accepted) }   // decode NPUs 16–39
        #expect(engine.runToCompletion(limit: 3_600), "nothing waits with no end")
        let counts = engine.report().requests
        #expect(counts.inFlight == 0 && counts.arrived == counts.completed + counts.failed + counts.rejected)
        let reason = "prefilled, then no decode TE accepts work (all restarting, drained or out of service)"
        #expect(counts.failureReasons[reason] ?? 0 > 0, "\(counts.failureReasons)")
        #expect(counts.rejectionReasons["no decode TE accepts work"] ?? 0 > 0)
        FaultTests.expectSound(engine)
        FaultTests.expectEmpty(engine)
    }

    /// A decode TE restarting is coming back: what it will take waits for it, none fails.
    @Test func prefilledRequestsWaitForADecodeTEThatIsRestarting() throws {
        let engine = try DecodeOutageAdmissionTests.glitched(restartSeconds: 6)
        #expect(engine.runToCompletion(limit: 3_600))
        #expect(engine.report().requests.failed == 0)
        FaultTests.expectSound(engine)
    }
}
