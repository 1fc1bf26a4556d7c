import PodModel
import SimKit
import Testing
import XDSTestSupport

@testable import ServingEngine

/// A die dies on an NPU that an NPU-fork in progress is replacing: the NPU leaves the TE when the
/// copy ends, so the TE is not stalled by it and stays in service. It hung on the die after the
/// fork, was declared three heartbeats later and put "out of service until repaired (no spare
/// NPUs)" with nothing of its own dead, refusing every request after (found by review:
/// cloudmatrix-infer, `scale prefill 1`, `fault die 0`, then `fault die 1` during the fork).
@Suite struct ForkedAwayDieTests {
    @Test func aDieDyingOnTheNPUBeingForkedAwayStallsNothing() throws {
        let engine = try FaultTests.engine(rate: 20, limit: 300)
        let npu = engine.cluster.npus(of: 0)[0]
        let dies = (0..<engine.topology.diesPerNPU).map { npu * engine.topology.diesPerNPU + $0 }
        engine.run(until: 2)
        #expect(engine.apply(.faultDie(dies[0])).accepted)
        // Detected on the third silent round; the fork onto a spare starts then.
        var t = 2.0
        while t < 10, !{ if case .forking = engine.faults.outage(of: 0) { true } else { false } }() {
            t += 0.01
            engine.run(until: t)
        }
        guard case .forking(_, let spares)? = engine.faults.outage(of: 0), spares[npu] != nil else {
            Issue.record("prefill-0 forks NPU \(npu) away: \(String(describing: engine.faults.outage(of: 0)))")
            return
        }
        // The reply names the fork: "no TE uses it" was said of an NPU prefill-0 still held.
        let reply = engine.apply(.faultDie(dies[1]))
        #expect(reply.accepted)
        #expect(reply.message.hasSuffix("dead; stalls no TE (NPU \(npu) leaves prefill-0 when its NPU-fork copy ends)"),
                "\(reply.message)")
        engine.run(until: t + 6)
        #expect(!engine.faults.hasOutage(0), "back from the fork and in service: \(String(describing: engine.faults.outage(of: 0)))")
        #expect(!engine.cluster.npus(of: 0).contains(npu), "the forked-away NPU left the TE")
        #expect(engine.runToCompletion(limit: 3_600))
        let counts = engine.report().requests
        #expect(counts.failed == 0 && counts.rejected == 0, "\(counts.failureReasons) \(counts.rejectionReasons)")
        FaultTests.expectSound(engine)
        FaultTests.expectEmpty(engine)
    }
}
