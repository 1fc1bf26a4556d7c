import PodModel
import SimKit
import Testing
import XDSTestSupport

@testable import ServingEngine

/// While every prefill TE is out for a recovery, arrivals were refused even when one was due back
/// in a fraction of a second ("no prefill TE accepts work (prefill-0, prefill-1 copying weights
/// onto spare NPUs; the first is back in 0.1 s)"), though requests re-queued by the same fault
/// waited for it. An arrival now waits in the queue of the prefill TE due back first when that is
/// within the TTFT SLO, as a re-queued request does; it is refused otherwise. The wait is bounded
/// by the outage's known end: if the TE comes back unable to serve (awaiting repair), what waited
/// for it goes to a TE in service, or fails saying it waited for one that did not come back.
@Suite struct ArrivalsWaitForAReturningPrefillTETests {
    /// faultPod under load; both prefill TEs lose an NPU at 5 s (detected about 3 s later).
    static func bothPrefillTEsFault(rate: Double, configure: (inout EngineConfiguration) -> Void = { _ in }) throws
        -> ServingEngine {
        let e = try FaultTests.engine(rate: rate, limit: 4_000, configure: configure)
        e.run(until: 5)
        #expect(e.apply(.faultNPU(0)).accepted)
        #expect(e.apply(.faultNPU(8)).accepted)
        return e
    }

    @Test func arrivalsWaitForAPrefillTEForkingBackWithinTheSLO() throws {
        // (At 200/s the two TEs' backlog from the undetected stall, re-queued on the TE back
        // first, alone passes its admission bound of 1,024 waiting: arrivals are then refused,
        // saying so.)
        let e = try Self.bothPrefillTEsFault(rate: 50)
        e.run(until: 12)
        let forks = FaultTests.events(e, .recovery).filter { $0.contains("NPU-fork") }
        #expect(forks.count >= 2, "both prefill TEs fork onto spares: \(forks)")
        let refused = FaultTests.events(e, .requestRejected)
        #expect(refused.isEmpty, "\(refused.count) arrivals refused while prefill was 0.1 s from back: \(refused.first ?? "")")
        #expect(e.runToCompletion(limit: 3_600))
        let requests = e.report().requests
        #expect(requests.failed == 0 && requests.rejected == 0, "\(requests.failureReasons) \(requests.rejectionReasons)")
        FaultTests.expectSound(e)
        FaultTests.expectEmpty(e)
    }

    /// pd-failover restarts both prefill TEs for 1.5 s (within the SLO) with every spare NPU dead,
    /// so each returns without its lost die, awaiting repair: the arrivals that waited for them
    /// fail saying so (not "its hardware failed", nor counted as re-prefilled), and nothing waits on.
    @Test func arrivalsThatWaitedForAPrefillTEThatCameBackAwaitingRepairFailSayingSo() throws {
        let e = try Self.bothPrefillTEsFault(rate: 100) {
            $0.recoveryPolicy = "pd-failover"
            $0.faults.componentRestartSeconds = 1.5
        }
        for npu in e.spareNPUs() { #expect(e.apply(.faultNPU(npu)).accepted) }
        e.run(until: 20)
        for te in e.instances.indices where e.instances[te].role == .prefill {
            #expect(e.faults.outage(of: te) == .awaitingRepair, "\(e.instances[te].name)")
            #expect(e.requestsOn(instance: te).isEmpty, "nothing waits on a TE awaiting repair")
        }
        let reasons = e.report().requests.failureReasons
        let waited = "it waited for a prefill TE due back within the TTFT SLO, which came back awaiting repair, "
            + "and no prefill TE is in service to take it"
        #expect(reasons[waited] ?? 0 > 0, "\(reasons)")
        #expect(e.runToCompletion(limit: 3_600))
        FaultTests.expectSound(e)
        FaultTests.expectEmpty(e)
    }
}

/// An arrival waiting for a prefill TE's return that a second fault takes off that TE (an HBM
/// fault on it mid-restart under pd-failover restarts it again) was counted as re-prefilled for
/// the second fault, and its request as prefilled again, though it was never prefilled.
@Suite struct WaitingArrivalsTakenOffBySecondFaultTests {
    @Test func anArrivalWaitingForAPrefillTEIsNotCountedAsRePrefilledWhenAnotherFaultEvictsIt() throws {
        let e = try ArrivalsWaitForAReturningPrefillTETests.bothPrefillTEsFault(rate: 100) {
            $0.recoveryPolicy = "pd-failover"
            $0.faults.componentRestartSeconds = 1.5
        }
        // Detected at 8 s, both restart until 9.5 s; arrivals wait for prefill-0 (back first).
        e.run(until: 8.6)
        let te = 0
        #expect(e.faults.outage(of: te) == .restarting(until: 9.5), "\(e.faults.outages)")
        let arrivals = Set(e.faults.arrivalsWaiting[te] ?? [])
        let held = Set(e.requestsOn(instance: te))
        #expect(!arrivals.isEmpty && arrivals.isSubset(of: held), "\(arrivals.count) arrivals wait among \(held.count)")
        // Die 4 is on NPU 2 of prefill-0: the HBM fault is detected at 9 s and restarts it again.
        #expect(e.apply(.faultHBM(die: 4)).accepted)
        let hbm = try #require(e.faults.records.last?.id)
        e.run(until: 9.05)
        let record = try #require(e.faults.record(hbm))
        #expect(record.detectedAt != nil, "\(record)")
        #expect(record.requestsReprefilled == held.subtracting(arrivals).count,
                "\(record.requestsReprefilled) re-prefilled, of which \(arrivals.count) were arrivals never prefilled (\(held.count) held)")
        for id in arrivals {
            guard let r = e.requests[id] else { continue }
            #expect(r.times.reprefills == 0, "request \(id) never prefilled, counted prefilled again")
        }
        #expect(e.runToCompletion(limit: 3_600))
        FaultTests.expectSound(e)
        FaultTests.expectEmpty(e)
    }
}
