import PodModel
import SimKit
import Testing
import XDSTestSupport

@testable import ServingEngine

/// With one prefill TE left, a die of it dies: its requests are re-queued while it is out. When
/// it is back within the TTFT SLO (an NPU-fork of a fraction of a second) they wait for it, as
/// prefilled requests wait for a decode TE about to return; otherwise they fail with a reason
/// that says when it is back. A review found all 34 of cloudmatrix-infer's failed during a
/// 0.17 s fork, none re-prefilled.
@Suite struct PrefillOutageHoldTests {
    /// faultPod scaled to one prefill TE under load, then a die of that TE dies at 6 s.
    static func onePrefillTELosesADie(configure: (inout EngineConfiguration) -> Void = { _ in }) throws
        -> (engine: ServingEngine, te: Int) {
        let engine = try FaultTests.engine(rate: 30, limit: 300, configure: configure)
        engine.run(until: 1)
        #expect(engine.apply(.scale(role: .prefill, change: .to(1), from: nil)).accepted)
        engine.run(until: 6)
        let live = engine.instances.indices.filter { engine.instances[$0].role == .prefill && !engine.isRetired($0) }
        let te = try #require(live.count == 1 ? live.first : nil, "one prefill TE left: \(live)")
        #expect(engine.instances[te].waiting + engine.requestsOn(instance: te).count > 0, "it holds work")
        #expect(engine.apply(.faultDie(engine.cluster.dies(of: te)[0])).accepted)
        return (engine, te)
    }

    @Test func requestsWaitForTheOnlyPrefillTEForkingBackWithinTheSLO() throws {
        let (engine, te) = try Self.onePrefillTELosesADie()
        engine.run(until: 12)
        let record = try #require(engine.faults.record(1))
        #expect(record.recoveredAt != nil, "the fork is over")
        #expect(record.requestsReprefilled > 0 && record.requestsFailed == 0,
                "reprefilled \(record.requestsReprefilled), failed \(record.requestsFailed): \(FaultTests.events(engine, .recovery))")
        #expect(!engine.faults.hasOutage(te))
        #expect(engine.runToCompletion(limit: 3_600))
        #expect(engine.report().requests.failed == 0, "\(engine.report().requests.failureReasons)")
        FaultTests.expectSound(engine)
        FaultTests.expectEmpty(engine)
    }

    @Test func requestsFailSayingWhenWhenThePrefillTEIsBackPastTheSLO() throws {
        // pd-failover restarts the prefill TE: 5 s, past the 2 s TTFT SLO.
        let (engine, _) = try Self.onePrefillTELosesADie { $0.recoveryPolicy = "pd-failover" }
        #expect(engine.runToCompletion(limit: 3_600))
        let reasons = engine.report().requests.failureReasons
        let kind = ServingEngine.hardwareAndNowhereElse + "; the first prefill TE is back, past the TTFT SLO"
        #expect(reasons[kind] ?? 0 > 0, "\(reasons)")
        let line = engine.recentEvents().first { $0.message.contains("past the TTFT SLO") }?.message ?? ""
        #expect(line.contains("; the first prefill TE is back in 5 s, past the TTFT SLO"), "\(line)")
        FaultTests.expectSound(engine)
        FaultTests.expectEmpty(engine)
    }

    @Test func aShortRestartIsWaitedFor() throws {
        let (engine, _) = try Self.onePrefillTELosesADie {
            $0.recoveryPolicy = "pd-failover"
            $0.faults.componentRestartSeconds = 1.5
        }
        #expect(engine.runToCompletion(limit: 3_600))
        #expect(engine.report().requests.failed == 0, "\(engine.report().requests.failureReasons)")
        #expect((engine.faults.record(1)?.requestsReprefilled ?? 0) > 0)
        FaultTests.expectSound(engine)
    }

    /// A short restart with no spare to come back on leaves the TE awaiting repair: what waited
    /// for it does not wait for the repair too (nothing would take it), it fails with the reason.
    @Test func whatWaitedForARestartThatEndsAwaitingRepairIsNotStranded() throws {
        let (engine, te) = try Self.onePrefillTELosesADie {
            $0.recoveryPolicy = "pd-failover"
            $0.faults.componentRestartSeconds = 1.5
        }
        // Every spare dies before the restart ends, so the TE returns without its lost die.
        for npu in engine.spareNPUs() { #expect(engine.apply(.faultNPU(npu)).accepted) }
        engine.run(until: 20)
        #expect(engine.faults.outage(of: te) == .awaitingRepair)
        #expect(engine.requestsOn(instance: te).isEmpty, "nothing waits on a TE awaiting repair")
        #expect(engine.runToCompletion(limit: 3_600))
        #expect(engine.report().requests.failureReasons[ServingEngine.hardwareAndNowhereElse] ?? 0 > 0,
                "\(engine.report().requests.failureReasons)")
        FaultTests.expectSound(engine)
        FaultTests.expectEmpty(engine)
    }
}
