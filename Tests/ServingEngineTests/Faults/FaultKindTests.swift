import PodModel
import SimKit
import Testing
import XDSTestSupport

@testable import ServingEngine

/// Every fault kind on `faultPod` (prefill nodes 0–1, decode NPUs 16–39 = dies 32–79, spares
/// NPUs 40–47): nothing is lost, the fault is detected, and after `heal all` every request
/// completes or has failed with a reason.
@Suite(.timeLimit(.minutes(10))) struct FaultKindTests {
    struct Case: CustomTestStringConvertible, Sendable {
        var command: OperatorCommand
        var detected: Bool
        var recoveredBeforeHeal: Bool
        var testDescription: String { command.description }
    }

    static let cases: [Case] = [
        Case(command: .faultDie(33), detected: true, recoveredBeforeHeal: true),          // decode, routed die
        Case(command: .faultNPU(21), detected: true, recoveredBeforeHeal: true),          // decode, spare NPU-fork
        Case(command: .faultNode(0), detected: true, recoveredBeforeHeal: true),          // a whole prefill TE
        Case(command: .faultNPU(44), detected: true, recoveredBeforeHeal: true),          // a spare
        Case(command: .faultLink(from: 3, to: 20, degrade: nil), detected: true, recoveredBeforeHeal: true),
        Case(command: .faultLink(from: 3, to: 20, degrade: 4), detected: true, recoveredBeforeHeal: false),
        Case(command: .faultStraggler(die: 40, slowdown: 2), detected: true, recoveredBeforeHeal: false),
        Case(command: .faultHBM(die: 36), detected: true, recoveredBeforeHeal: true),     // decode die
        Case(command: .faultHBM(die: 2), detected: true, recoveredBeforeHeal: true),      // prefill die
        Case(command: .faultGlitch, detected: true, recoveredBeforeHeal: true),
    ]

    @Test(arguments: cases)
    func faultIsDetectedRecoveredAndLosesNothing(_ c: Case) throws {
        let engine = try FaultTests.engine(rate: 30, limit: 120)
        engine.run(until: 2.5)
        let reply = engine.apply(c.command)
        #expect(reply.accepted, "\(reply.message)")
        // A glitch with collectives in flight stays active until its redo ends; anything else is listed.
        #expect(engine.snapshot().activeFaults.count == 1)
        FaultTests.expectSound(engine, "\(c.command) at injection")
        engine.run(until: 12)
        FaultTests.expectSound(engine, "\(c.command) after 12 s")
        let counts = engine.report().faults
        #expect(counts.injected == 1)
        // Before any heal: detected, and recovered by the policy alone (or kept, for performance faults).
        let before = try #require(engine.report().faultDetails.first)
        #expect((before.detectedAt != nil) == c.detected, "\(before)")
        #expect((before.recoveredAt != nil) == c.recoveredBeforeHeal, "\(before)")
        #expect(before.timeToDetectS.map { $0 >= 0 && $0 <= 3.01 } ?? false, "\(before)")
        if let detected = before.detectedAt, let recovered = before.recoveredAt { #expect(detected <= recovered) }
        #expect(before.healedAt == nil || c.command == .faultGlitch, "only a glitch ends itself: \(before)")
        _ = engine.apply(.healAll)
        let after = try #require(engine.report().faultDetails.first)
        if c.recoveredBeforeHeal, c.command != .faultGlitch {
            // The recovery recorded before the heal stands; the heal came later.
            #expect(after.recoveredAt == before.recoveredAt)
            let recovered = try #require(after.recoveredAt), healed = try #require(after.healedAt)
            #expect(recovered < healed, "\(after)")
        } else if !c.recoveredBeforeHeal {
            #expect(after.recovery.contains("healed by the operator"), "\(after)")
        }
        #expect(engine.runToCompletion(limit: 3_600), "\(c.command): work left after heal all")
        FaultTests.expectSound(engine, "\(c.command) at the end")
        FaultTests.expectEmpty(engine, "\(c.command)")
        #expect(engine.snapshot().activeFaults.isEmpty)
        #expect(engine.snapshot().npus.filter(\.faulted).isEmpty)
    }

    @Test func deadDecodeDieStallsTheBarrierUntilTheHeartbeatsTimeOut() throws {
        let engine = try FaultTests.engine(rate: 30, limit: 120) { $0.faults.heartbeatIntervalSeconds = 0.5 }
        engine.run(until: 2.2)
        let d = try FaultTests.decodeIndex(engine)
        let stepBefore = engine.instances[d].stepIndex
        #expect(engine.apply(.faultDie(40)).accepted)
        #expect(engine.snapshot().npus[20].faulted == true)
        engine.run(until: 3.2)
        // Stalled: the step in flight never completes, nothing is detected yet.
        #expect(engine.instances[d].stepIndex <= stepBefore + 1)
        #expect(engine.report().faults.detected == 0)
        engine.run(until: 4)
        let detail = engine.report().faultDetails[0]
        // Three silent rounds of 0.5 s: detected after more than 1 s and at most 1.5 s.
        let detect = try #require(detail.timeToDetectS)
        #expect(detect > 1.0 && detect <= 1.5, "\(detail)")
        #expect(detail.detection.contains("silent"))
        #expect(engine.instances[d].stepIndex > stepBefore + 1, "decode resumes after the shrink")
        #expect(FaultTests.events(engine, .faultDetected).count == 1)
    }

    /// Heartbeat rounds keep to their interval's grid: a fault at 3.3 s with 0.1 s rounds is
    /// declared after the rounds at 3.4, 3.5 and 3.6 — not at 3.5000000000000018, where rounds
    /// kept by adding 0.1 to the last one had drifted past 3.3 and counted one at the injection.
    @Test(arguments: [(0.1, 3.6), (0.3, 4.2), (0.7, 4.9), (0.01, 3.33)])
    func deadDieDetectionCountsWholeRoundsOnTheGrid(interval: Double, declared: Double) throws {
        let engine = try FaultTests.engine(rate: 30, limit: 120) { $0.faults.heartbeatIntervalSeconds = interval }
        engine.run(until: 3.3)
        #expect(engine.apply(.faultDie(40)).accepted)
        engine.run(until: 6)
        let detail = try #require(engine.report().faultDetails.first)
        #expect(detail.detectedAt == declared, "\(detail)")
    }

    @Test func prefillTELossReprefillsItsRequestsOnTheOther() throws {
        // A burst: both prefill TEs hold queued work when prefill-0's node dies.
        let engine = try FaultTests.engine(rate: 200, limit: 150)
        engine.run(until: 0.6)
        let onTE0 = engine.requestsOn(instance: 0).count
        #expect(onTE0 > 0)
        #expect(engine.apply(.faultNPU(40)).accepted)                  // use up one spare NPU…
        for npu in 41...47 { #expect(engine.apply(.faultNPU(npu)).accepted) }   // …and the rest: no spares
        #expect(engine.apply(.faultNode(0)).accepted)
        engine.run(until: 5)
        let detail = try #require(engine.report().faultDetails.last)
        #expect(detail.requestsReprefilled > 0, "\(detail)")
        #expect(detail.recovery.contains("re-queued"), "\(detail.recovery)")
        #expect(engine.requestsOn(instance: 0).isEmpty)
        FaultTests.expectSound(engine)
        #expect(engine.runToCompletion(limit: 3_600))
        FaultTests.expectSound(engine)
        // prefill-1 did all the work; everything finished without losing a request.
        #expect(engine.report().requests.completed + engine.report().requests.failed == 150)
    }

    @Test func hbmFaultFailsOnlyTheRequestsWhoseKVLivedThere() throws {
        let engine = try FaultTests.engine(rate: 40, limit: 150)
        engine.run(until: 3)
        let d = try FaultTests.decodeIndex(engine)
        #expect(engine.apply(.faultHBM(die: 36)).accepted)           // decode die 36 = dp4
        // Detected at the next heartbeat round (4 s), when the DP master reports the ECC error.
        engine.run(until: 3.999)
        let holders = engine.kvStore.liveRequests(GroupRef(te: d, group: 4))
        #expect(holders > 0)
        engine.run(until: 4.5)
        #expect(engine.report().faultDetails[0].detectedAt == 4)
        let report = engine.report()
        #expect(report.requests.failed == holders)
        let reasons = FaultTests.events(engine, .requestFailed)
        #expect(reasons.count == holders && reasons.allSatisfy { $0.hasSuffix("hbm fault on die 36") })
        #expect(report.faultDetails[0].requestsFailed == holders)
        // The region is masked: the failed requests' blocks stay out of use until healed.
        let masked = GroupRef(te: d, group: 4)
        #expect(engine.kvStore.maskedGroup(fault: 1) == masked && engine.kvStore.maskCount(masked) == 1)
        #expect(report.faultDetails[0].recovery.contains("KV blocks masked on die 36"))
        #expect(engine.runToCompletion(limit: 3_600))
        #expect(engine.kvStore.liveRequests(masked) == 1)
        #expect(engine.kvStore.requestsHoldingKV(masked) == 0)
        let free = engine.kvStore.freeBlocks(masked)
        #expect(engine.apply(.heal(faultID: 1)).accepted)
        #expect(engine.kvStore.liveRequests(masked) == 0 && engine.kvStore.maskedGroup(fault: 1) == nil)
        #expect(engine.kvStore.freeBlocks(masked) > free, "the masked blocks are free again")
        #expect(engine.report().requests.completed == 150 - holders, "the service stayed up")
        FaultTests.expectSound(engine)
    }

    /// Dummy-payload probes: transfers held back by a full decode side are "delayed", not a
    /// fault; a dead link is "blocked", found within one round and rerouted over RoCE.
    @Test func kvProbesTellDelayedFromBlocked() throws {
        let engine = try FaultTests.engine(rate: 60, limit: 200)
        // Requests in prefill first: once decode takes nothing, new arrivals are turned away.
        engine.run(until: 0.5)
        for node in 2...4 { #expect(engine.apply(.drain(node: node)).accepted) }   // decode takes nothing
        engine.run(until: 4)
        let delayed = FaultTests.events(engine, .info).filter { $0.contains("delayed (decode saturated)") }
        #expect(delayed.count == 1, "logged once per episode")
        #expect(engine.report().faults.injected == 0)
        for node in 2...4 { #expect(engine.apply(.undrain(node: node)).accepted) }
        #expect(engine.apply(.faultLink(from: 9, to: 30, degrade: nil)).accepted)   // prefill-1 ↔ decode
        engine.run(until: 5.5)
        let detail = engine.report().faultDetails[0]
        #expect(detail.detection.contains("blocked") && detail.recovery.contains("rerouted over RoCE"), "\(detail)")
        #expect(detail.timeToDetectS == 1)
        let c = try #require(engine.channels.firstIndex { $0.prefillInstance == 1 })
        #expect(engine.channels[c].plane == .roce)
        #expect(FaultTests.events(engine, .faultDetected).first?.contains("detected 1 s after injection") == true)
        #expect(engine.apply(.healAll).accepted)
        #expect(engine.channels[c].plane == .ub)
        #expect(engine.runToCompletion(limit: 3_600))
        FaultTests.expectSound(engine)
        FaultTests.expectEmpty(engine)
    }
}
