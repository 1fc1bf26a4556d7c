import PodModel
import Testing
import XDSTestSupport
@testable import ServingEngine

/// Arrivals refused while every prefill TE is out for a short recovery were refused with "no
/// prefill TE accepts work (all drained or out of service)": nothing said what was down or that
/// prefill was due back in a fraction of a second (repro: `fault npu 0` and `fault npu 8` on the
/// fault pod's two prefill TEs; each is replaced by a spare NPU after detection). The reason now
/// says what each TE is doing and when the first is back; the report still counts them under
/// the JE's reason, which has no figures.
@Suite struct PrefillOutageRefusalTests {
    @Test func aRefusalDuringAPrefillRecoverySaysWhatIsDownAndWhenItIsBack() throws {
        let e = try FaultTests.engine(rate: 200, limit: 4_000)
        e.run(until: 5)
        #expect(e.apply(.faultNPU(0)).accepted)
        #expect(e.apply(.faultNPU(8)).accepted)
        e.run(until: 12)
        let refusals = e.snapshot().events.filter { $0.kind == .requestRejected && $0.message.contains("no prefill TE accepts work") }
        let first = try #require(refusals.first, "some arrival came while both prefill TEs were out")
        #expect(first.message.contains("prefill-0, prefill-1 copying weights onto spare NPUs; the first is back in 0."),
                "\(first.message)")
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
