import PodModel
import Testing
import XDSTestSupport
@testable import ServingEngine

/// Arrivals refused while every prefill TE is out for a recovery were refused with "no prefill TE
/// accepts work (all drained or out of service)": nothing said what was down or when prefill was
/// due back (repro: `fault npu 0` and `fault npu 8` on the fault pod's two prefill TEs). The
/// reason now says what each TE is doing and when the first is back (past the TTFT SLO: one due
/// back within it is waited for); the report still counts them under the JE's reason, which has
/// no figures.
@Suite struct PrefillOutageRefusalTests {
    @Test func aRefusalDuringAPrefillRecoverySaysWhatIsDownAndWhenItIsBack() throws {
        // pd-failover restarts both prefill TEs for 5 s, past the 2 s TTFT SLO: arrivals meanwhile
        // are refused (one due back within the SLO is waited for: ArrivalsWaitForAReturningPrefillTETests).
        let e = try FaultTests.engine(rate: 200, limit: 4_000) { $0.recoveryPolicy = "pd-failover" }
        e.run(until: 5)
        #expect(e.apply(.faultNPU(0)).accepted)
        #expect(e.apply(.faultNPU(8)).accepted)
        e.run(until: 12)
        let refusals = e.snapshot().events.filter { $0.kind == .requestRejected && $0.message.contains("no prefill TE accepts work") }
        let first = try #require(refusals.first, "some arrival came while both prefill TEs were out")
        #expect(first.message.contains("prefill-0, prefill-1 restarting; the first is back in "), "\(first.message)")
        #expect(first.message.hasSuffix(" s, past the TTFT SLO)"), "\(first.message)")
        let kinds = e.report().requests.rejectionReasons
        #expect(kinds["no prefill TE accepts work (all drained or out of service)"] == refusals.count, "\(kinds)")
    }

    @Test func aRefusalWithEveryPrefillTEDrainedSaysNoneIsComingBack() throws {
        let e = try FaultTests.engine(rate: 50, limit: 4_000)
        e.run(until: 2)
        #expect(e.apply(.drain(node: 0)).accepted)
        #expect(e.apply(.drain(node: 1)).accepted)
        e.run(until: 4)
        let refusal = try #require(e.snapshot().events.last { $0.kind == .requestRejected })
        #expect(refusal.message.hasSuffix("no prefill TE accepts work (prefill-0, prefill-1 drained; none is coming back by itself)"),
                "\(refusal.message)")
    }
}
