import PodModel
import SimKit
import Testing

@testable import ServingEngine

/// ``FaultSystem`` through its own API (no engine): records, dead dies, heartbeats, halts,
/// stragglers, outages, glitch redos, KV probes, HBM masks, and its copy (expert dies: ClusterManagerTests).
@Suite(.timeLimit(.minutes(10))) struct FaultSystemTests {
    @Test func injectedFaultsGetDenseIdsAndDiesDieOncePerFault() {
        let faults = FaultSystem()
        let npu = faults.inject(.dead(dies: [4, 5]), label: "fault npu 2", at: 1, stalled: [0])
        faults.killDies([4, 5])
        let node = faults.inject(.dead(dies: [0, 1, 2, 3, 4, 5]), label: "fault node 0", at: 2)
        faults.killDies([0, 1, 2, 3, 4, 5])
        #expect(npu == 1 && node == 2 && faults.nextID == 3)
        #expect(faults.index(of: 2) == 1 && faults.index(of: 3) == nil && faults.index(of: 0) == nil)
        #expect(faults.record(1)?.label == "fault npu 2" && faults.record(1)?.stalled == [0])
        #expect(faults.activeCount == 2 && faults.undetectedIDs == [1, 2])
        #expect(faults.deadDies[4] == 2 && faults.isDead(0) && !faults.isDead(6))
        faults.learnDead([4, 5, 6])
        #expect(faults.knownDead == [4, 5], "die 6 is not dead: the control plane cannot know it as dead")
        #expect(faults.holdsKnownDead([3, 4]) && !faults.holdsKnownDead([0, 1]))

        // Healing the node leaves dies 4–5 dead (the NPU fault still kills them) and known. Nothing
        // had detected the node fault: healed before detection, not recovered (no recovery acted).
        let healed = faults.heal(2, at: 5) { _ in false }
        #expect(healed?.healedAt == 5 && healed?.recoveredAt == nil && healed?.healedBeforeDetection == true)
        #expect(healed?.recovery == "healed by the operator before detection (no recovery acted)")
        #expect(!faults.isDead(0) && faults.isDead(4) && faults.knownDead == [4, 5])
        #expect(faults.heal(2, at: 6) { _ in false } == nil, "already healed")
        #expect(faults.heal(9, at: 6) { _ in false } == nil, "no such fault")
        // A detected fault the operator heals is recovered at the heal, as before.
        faults.markDetected(1, at: 6, how: "device check")
        let detected = faults.heal(1, at: 7) { _ in false }
        #expect(detected?.recoveredAt == 7 && detected?.healedBeforeDetection == false && detected?.recovery == "healed by the operator")
        #expect(faults.deadDies.isEmpty && faults.knownDead.isEmpty && faults.activeCount == 0)
        // Nothing recovers a fault healed before detection later either.
        faults.markRecovered(2, at: 8)
        #expect(faults.record(2)?.recoveredAt == nil)
    }

    @Test func aStalledTEIsDeclaredAfterTheConfiguredSilentRounds() {
        var settings = FaultSettings()
        settings.missedHeartbeatsToDeclare = 3
        let faults = FaultSystem(settings: settings)
        let id = faults.inject(.dead(dies: [8]), label: "fault die 8", at: 0, stalled: [1])
        #expect(faults.isSilent(1) && !faults.isSilent(0))
        #expect(faults.heartbeat(instance: 0) == nil && faults.silentRounds[0] == nil, "TE 0 answers")
        #expect(faults.heartbeat(instance: 1) == nil && faults.heartbeat(instance: 1) == nil)
        #expect(faults.silentRounds[1] == 2)
        #expect(faults.heartbeat(instance: 1) == 3, "declared on the third silent round")
        #expect(faults.silentRounds[1] == nil, "the count starts over")
        faults.markDetected(id, at: 3, how: "DP masters silent")
        #expect(!faults.isSilent(1) && faults.heartbeat(instance: 1) == nil)
        #expect(faults.record(id)?.detectedAt == 3 && faults.record(id)?.detection == "DP masters silent")
    }

    @Test func aDeviceCheckDetectsTheDeadDieFaultsStallingTheTE() {
        let faults = FaultSystem()
        let a = faults.inject(.dead(dies: [4, 5]), label: "fault npu 2", at: 0, stalled: [1])
        _ = faults.inject(.hbm(die: 9), label: "fault hbm die 9", at: 0)
        let c = faults.inject(.dead(dies: [40]), label: "fault die 40", at: 0, stalled: [1, 2])
        _ = faults.inject(.dead(dies: [60]), label: "fault die 60", at: 0, stalled: [3])
        let (ids, dies) = faults.detectDead(stalling: 1, at: 3, how: "silent")
        #expect(ids == [a, c] && dies == [4, 5, 40])
        #expect(faults.record(c)?.detectedAt == 3 && faults.record(2)?.detectedAt == nil && faults.record(4)?.detectedAt == nil)
        #expect(faults.detectDead(stalling: 1, at: 4, how: "again").ids.isEmpty, "already detected")
    }

    @Test func aFailedStartSettlesOnlyFaultsStallingNoOtherTE() {
        let faults = FaultSystem()
        let a = faults.inject(.dead(dies: [4]), label: "fault die 4", at: 0, stalled: [5])
        faults.killDies([4])
        let b = faults.inject(.dead(dies: [6]), label: "fault die 6", at: 0, stalled: [5, 1])
        faults.killDies([6])
        let settled = faults.settleFailedStart(instance: 5, dies: [4, 6, 7], at: 2, how: "load failed")
        #expect(settled == [a])
        #expect(faults.record(a)?.detection == "load failed" && faults.knownDead == [4])
        #expect(faults.record(b)?.detectedAt == nil && faults.record(b)?.stalled == [1], "TE 1 still waits on it")
    }

    @Test func linkStateCombinesTheLinksOnAPath() {
        let faults = FaultSystem()
        _ = faults.inject(.link(npuA: 1, npuB: 9, degrade: 2), label: "slow", at: 0)
        _ = faults.inject(.link(npuA: 2, npuB: 9, degrade: 3), label: "slower", at: 0)
        let down = faults.inject(.link(npuA: 3, npuB: 9, degrade: nil), label: "down", at: 0)
        let all = faults.linkState { _, b in b == 9 }
        #expect(all.blocked && !all.rerouted && all.slowdown == 6)
        faults.markRecovered(down, at: 1)
        let rerouted = faults.linkState { a, _ in a == 3 }
        #expect(!rerouted.blocked && rerouted.rerouted && rerouted.slowdown == 1)
        let none = faults.linkState { _, _ in false }
        #expect(!none.blocked && !none.rerouted && none.slowdown == 1)
    }

    @Test func haltsFollowOutagesAndUndetectedStalls() {
        let faults = FaultSystem()
        let id = faults.inject(.dead(dies: [2]), label: "fault die 2", at: 0, stalled: [0, 3])
        faults.beginOutage(5, .awaitingRepair)
        #expect(faults.recomputeHalted().isEmpty)
        #expect(faults.halted == [0, 3, 5] && faults.isHalted(3) && !faults.isHalted(1))
        faults.markDetected(id, at: 2, how: "found")
        #expect(faults.recomputeHalted() == [0, 3], "detected: the stall is over, the outage stays")
        faults.endOutage(5)
        #expect(faults.recomputeHalted() == [5] && faults.halted.isEmpty)
        // A TE that scaling retires is forgotten at once.
        faults.beginOutage(4, .killed)
        faults.recomputeHalted()
        faults.forget(instance: 4)
        #expect(!faults.hasOutage(4) && !faults.isHalted(4))
    }

    @Test func recoveryUnderWayIsNotEndedByAHeal() {
        let faults = FaultSystem()
        let id = faults.inject(.dead(dies: [6, 7]), label: "fault npu 3", at: 1, stalled: [2])
        faults.killDies([6, 7])
        faults.learnDead([6, 7])
        faults.markDetected(id, at: 4, how: "silent")
        faults.beginOutage(2, .restarting(until: 9))
        faults.awaitRecovery([id], onReturnOf: 2)
        faults.beginOutage(1, .awaitingRepair)
        faults.beginOutage(0, .awaitingRepair)
        // TE 0 still holds another dead die; TE 1 does not.
        let record = faults.heal(id, at: 5) { $0 == 0 }
        #expect(record?.recoveredAt == nil, "the restart recovers it when TE 2 returns")
        #expect(faults.outage(of: 1) == nil && faults.outage(of: 0) == .awaitingRepair)
        #expect(faults.outage(of: 2) == .restarting(until: 9))
        #expect(faults.takePendingRecovery(of: 2) == [id] && faults.takePendingRecovery(of: 2).isEmpty)
        faults.markRecovered(id, at: 9)
        faults.markRecovered(id, at: 10)
        #expect(faults.record(id)?.recoveredAt == 9, "the first recovery time stands")
    }

    @Test func recoveryStoryAndCostsAccumulate() {
        let faults = FaultSystem()
        let id = faults.inject(.hbm(die: 3), label: "fault hbm die 3", at: 0)
        faults.noteRecovery(id, "masked")
        faults.noteRecovery(id, "3 failed")
        faults.count(id, reprefilled: 2, failed: 3)
        faults.count(id, reprefilled: 1, failed: 0)
        faults.noteRecovery(99, "ignored")
        #expect(faults.record(id)?.recovery == "masked; 3 failed")
        #expect(faults.record(id)?.requestsReprefilled == 3 && faults.record(id)?.requestsFailed == 3)
    }

    /// A recovery's steps and its end are recorded by the fault system, which hands back the log
    /// lines (timed from each fault's injection); costs count on the first fault.
    @Test func recoveryStepsAndEndsAreRecordedWithTheirLogLines() {
        let faults = FaultSystem()
        let a = faults.inject(.dead(dies: [4]), label: "fault die 4", at: 1)
        let b = faults.inject(.dead(dies: [5]), label: "fault die 5", at: 2.5)
        let step = faults.noteStep([a, b], "NPU-fork under way", at: 3)
        #expect(step.kind == .recovery && step.severity == .warning && step.message == "faults 1, 2: NPU-fork under way")
        #expect(faults.noteStep([b], "still", at: 3).message == "fault 2: still")
        let lines = faults.finishRecovery([a, b, 99], reprefilled: 4, failed: 1, "back in service", at: 4)
        #expect(lines.map(\.message) == ["fault 1 recovered 3 s after injection: back in service",
                                         "fault 2 recovered 1.5 s after injection: back in service"], "no line for an unknown id")
        #expect(faults.record(a)?.recovery == "NPU-fork under way; back in service" && faults.record(a)?.recoveredAt == 4)
        #expect(faults.record(b)?.recovery == "NPU-fork under way; still; back in service")
        #expect(faults.record(a)?.requestsReprefilled == 4 && faults.record(a)?.requestsFailed == 1)
        #expect(faults.record(b)?.requestsReprefilled == 0)
        _ = faults.finishRecovery([b], reprefilled: 0, failed: 0, "again", at: 9)
        #expect(faults.record(b)?.recoveredAt == 4, "the first recovery time stands")
    }

    @Test func stragglersSetTheSlowestDieOfEachInstance() {
        let faults = FaultSystem()
        #expect(faults.slowdown(of: 0) == nil)
        let a = faults.inject(.straggler(die: 10, slowdown: 2), label: "a", at: 0)
        faults.slowDie(10, by: 2)
        _ = faults.inject(.straggler(die: 10, slowdown: 4), label: "b", at: 0)
        faults.slowDie(10, by: 4)
        _ = faults.inject(.straggler(die: 30, slowdown: 3), label: "c", at: 0)
        faults.slowDie(30, by: 3)
        #expect(faults.stragglers == [10: 4, 30: 3])
        // Dies 10 and 30 in TE 1; die 30 out of service (nil): TE 1 runs at die 10's pace.
        faults.recomputeSlowdowns { $0 == 10 ? (1, true) : nil }
        #expect(faults.slowdown(of: 1) == 4 && faults.slowdown(of: 0) == nil)
        _ = faults.heal(2, at: 1) { _ in false }
        #expect(faults.stragglers == [10: 2, 30: 3], "recomputed from the faults still active")
        _ = faults.heal(a, at: 1) { _ in false }
        _ = faults.heal(3, at: 1) { _ in false }
        #expect(faults.stragglers.isEmpty && faults.slowdown(of: 1) == nil)
    }

    @Test func aGlitchIsRecoveredWhenTheLastRedoEnds() {
        let faults = FaultSystem()
        let id = faults.inject(.glitch, label: "fault glitch", at: 1)
        #expect(faults.plan(.glitch, role: .decode) == .redoIteration)
        faults.scheduleRedo([0, 2], fault: id)
        #expect(faults.takeRedo(1).isEmpty && faults.takeRedo(0) == [id] && faults.takeRedo(0).isEmpty)
        #expect(faults.noteRedone(fault: id, by: "decode-0", endingAt: 1.5, now: 1.1) == nil, "TE 2 still owes a redo")
        #expect(faults.takeRedo(2) == [id])
        #expect(faults.noteRedone(fault: id, by: "prefill-2", endingAt: 1.3, now: 1.2) == 1.5, "the later end")
        #expect(faults.redone(fault: id) == ["decode-0", "prefill-2"])
        faults.markHealed(id, at: 1.5)
        faults.markHealed(id, at: 2)
        faults.endGlitch(id)
        #expect(faults.record(id)?.healedAt == 1.5 && faults.redone(fault: id).isEmpty && faults.glitches.ends.isEmpty)
    }

    /// Two glitches in one failed iteration are redone by one redo and both recover (the second
    /// used to replace the first, which then stayed open for good).
    @Test func twoGlitchesInOneIterationAreBothRedone() {
        let faults = FaultSystem()
        let first = faults.inject(.glitch, label: "fault glitch", at: 1)
        let second = faults.inject(.glitch, label: "fault glitch", at: 1.2)
        faults.scheduleRedo([0], fault: first)
        faults.scheduleRedo([0, 1], fault: second)
        #expect(faults.takeRedo(0) == [first, second] && faults.takeRedo(0).isEmpty)
        #expect(faults.noteRedone(fault: first, by: "decode-0", endingAt: 2, now: 1.5) == 2)
        #expect(faults.noteRedone(fault: second, by: "decode-0", endingAt: 2, now: 1.5) == nil, "TE 1 still owes one")
        #expect(faults.takeRedo(1) == [second])
        #expect(faults.noteRedone(fault: second, by: "prefill-1", endingAt: 2.5, now: 1.6) == 2.5)
    }

    @Test func overlappingGlitchesAllRecoverInTheEngine() throws {
        let engine = try FaultTests.engine(rate: 30, limit: 120)
        engine.run(until: 3)
        #expect(engine.apply(.faultGlitch).accepted)
        // 5 ms later: within the iterations the first one failed.
        engine.run(until: 3.005)
        #expect(engine.apply(.faultGlitch).accepted)
        #expect(engine.runToCompletion(limit: 3_600))
        let report = engine.report()
        #expect(report.faults.injected == 2 && report.faults.recovered == 2, "\(report.faultDetails.map(\.recovery))")
        FaultTests.expectSound(engine)
    }

    @Test func kvProbesReportADelayOncePerEpisodeAndNotWhileHalted() {
        let faults = FaultSystem()
        #expect(!faults.probeKV(decode: 3, waiting: 0))
        #expect(faults.probeKV(decode: 3, waiting: 5))
        #expect(!faults.probeKV(decode: 3, waiting: 7), "logged once per episode")
        #expect(!faults.probeKV(decode: 3, waiting: 0) && faults.delayedChannels.isEmpty)
        #expect(faults.probeKV(decode: 3, waiting: 1), "a new episode")
        _ = faults.inject(.dead(dies: [0]), label: "x", at: 0, stalled: [4])
        faults.recomputeHalted()
        #expect(!faults.probeKV(decode: 4, waiting: 2), "a halted TE's waiting KV is not back-pressure")
    }

    @Test func thePolicyDecidesAndCanBeReplaced() throws {
        var settings = FaultSettings()
        settings.killPrefillToPreserveDecode = true
        let faults = FaultSystem(settings: settings)
        #expect(faults.policy.name == "fine-grained")
        #expect(faults.plan(.dead(dies: [0]), role: .decode) == .decodeFailover([.shrink, .spare, .killPrefill, .restart]))
        #expect(faults.plan(.dead(dies: [0]), role: .prefill) == .requeuePrefill(restartFirst: false))
        faults.use(try Policies.recovery.make("restart-world"))
        #expect(faults.plan(.hbm(die: 0), role: .decode) == .restartWorld)
        #expect(faults.plan(.straggler(die: 0, slowdown: 2), role: .decode) == .observe)
    }

    @Test func aCopyIsIndependent() throws {
        let faults = FaultSystem()
        let id = faults.inject(.dead(dies: [1]), label: "fault die 1", at: 0, stalled: [0])
        faults.killDies([1])
        faults.beginOutage(2, .awaitingRepair)
        faults.use(try Policies.recovery.make("pd-failover"))
        let copy = faults.copy()
        #expect(copy !== faults && copy.records.count == 1 && copy.policy.name == "pd-failover")
        #expect(copy.outage(of: 2) == .awaitingRepair && copy.isDead(1))
        _ = copy.heartbeat(instance: 0)
        #expect(copy.silentRounds == [0: 1])
        copy.markDetected(id, at: 3, how: "copy")
        copy.endOutage(2)
        _ = copy.inject(.glitch, label: "g", at: 4)
        #expect(faults.record(id)?.detectedAt == nil && faults.outage(of: 2) == .awaitingRepair)
        #expect(faults.records.count == 1 && faults.nextID == 2 && faults.silentRounds.isEmpty)
    }

    /// The engine's `fork()` gives the copy its own fault system: healing there leaves the
    /// original's fault active and its TE stalled.
    @Test func anEngineForkOwnsItsFaultSystem() throws {
        let engine = try FaultTests.engine(rate: 30, limit: 120)
        engine.run(until: 1)
        #expect(engine.apply(.faultNPU(21)).accepted)
        engine.run(until: 2)                                // not detected yet: 3 silent rounds needed
        let fork = try engine.fork()
        #expect(fork.faults !== engine.faults && fork.faults.records.count == 1 && !fork.faults.halted.isEmpty)
        #expect(fork.apply(.healAll).accepted)
        #expect(fork.faults.activeCount == 0 && fork.faults.halted.isEmpty)
        #expect(engine.faults.activeCount == 1 && !engine.faults.halted.isEmpty && engine.faults.isDead(42))
    }
}
