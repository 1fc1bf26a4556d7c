import PodModel
import SimKit
import Testing

@testable import ServingEngine

/// ``ScalingController`` through its own API: TE lifecycles, the operations' pending TEs and
/// ready times, pre-warmed spares, the timer flags, the autoscaler's busy shares over an
/// evaluation interval, and copies that share nothing.
@Suite(.timeLimit(.minutes(10))) struct ScalingControllerTests {
    /// The scaling timers on `queue`, in pop order, with their times.
    static func timers(_ queue: inout EngineEventQueue) -> [(SimTime, ScalingTimer)] {
        var out: [(SimTime, ScalingTimer)] = []
        while let (time, payload) = queue.popNext() {
            if case .scaling(let timer) = payload { out.append((time, timer)) }
        }
        return out
    }

    @Test func aStartGoesThroughItsPhasesAndCompletesItsOperation() {
        let scaling = ScalingController()
        #expect(!scaling.hasLifecycles && scaling.phase(9) == .inService, "untouched TEs are in service")
        let op = scaling.openOperation(role: .prefill, from: 8, to: 10, at: 2)
        #expect(op == 0)
        scaling.beginStart(te: 9, operation: op, path: nil)
        scaling.beginStart(te: 10, operation: op, path: .pool)
        #expect(scaling.phase(9) == .allocating && scaling.phase(10) == .allocating)
        #expect(scaling.lifecycle[10]?.loadPath == .pool, "the forced path is kept until loading")
        #expect(scaling.pendingTEs(of: op) == 2)

        var queue = EngineEventQueue()
        scaling.schedulePhaseEnd(te: 9, at: 3, queue: &queue)
        #expect(scaling.lifecycle[9]?.phaseEndsAt == 3)
        let timers = Self.timers(&queue)
        #expect(timers.count == 1 && timers[0].0 == 3 && timers[0].1 == .phaseEnds(instance: 9))

        // The operation reports the slowest load path among its TEs.
        scaling.beginLoading(te: 9, path: .npuFork, source: 0)
        #expect(scaling.phase(9) == .loading && scaling.lifecycle[9]?.forkSource == 0)
        #expect(scaling.operation(op).loadPath == .npuFork)
        scaling.beginLoading(te: 10, path: .pool, source: nil)
        #expect(scaling.operation(op).loadPath == .pool)
        scaling.beginLoading(te: 9, path: .dram, source: nil)
        #expect(scaling.operation(op).loadPath == .pool, "a faster path does not replace a slower one")

        scaling.beginWarmUp(te: 9)
        #expect(scaling.phase(9) == .warmingUp && scaling.lifecycle[9]?.forkSource == nil)
        #expect(scaling.finishStart(te: 9, ready: true, at: 7))
        #expect(scaling.phase(9) == .inService && scaling.lifecycle[9]?.phaseEndsAt == nil)
        #expect(scaling.pendingTEs(of: op) == 1 && scaling.operation(op).readyS == nil, "TE 10 is still starting")
        #expect(scaling.finishStart(te: 10, ready: true, at: 9.5))
        #expect(scaling.pendingTEs(of: op) == 0 && scaling.operation(op).readyS == 9.5)
        #expect(!scaling.finishStart(te: 3, ready: true, at: 10), "TE 3 was never started by scaling")
        #expect(scaling.report() == {
            var r = ScalingReport()
            r.scaleUps = 1
            r.details = [ScaleDetail(role: "prefill", from: 8, to: 10, requestedS: 2, readyS: 9.5, loadPath: .pool)]
            return r
        }())
    }

    @Test func aScaleInDrainsThenRetires() {
        let scaling = ScalingController()
        let op = scaling.openOperation(role: .prefill, from: 8, to: 6, at: 1)
        scaling.beginScaleIn(te: 7, operation: op)
        scaling.beginScaleIn(te: 5, operation: op)
        #expect(scaling.drainingTEs() == [5, 7])
        #expect(scaling.pendingTEs(of: op) == 2)
        scaling.readyIfNothingPending(op, at: 1)
        #expect(scaling.operation(op).readyS == nil, "two TEs still drain")
        scaling.retire(te: 5)
        scaling.finishOne(of: op, at: 3)
        #expect(scaling.phase(5) == .retired && scaling.drainingTEs() == [7])
        #expect(scaling.operation(op).readyS == nil)
        scaling.retire(te: 7)
        scaling.finishOne(of: op, at: 4)
        #expect(scaling.drainingTEs().isEmpty && scaling.operation(op).readyS == 4)
        #expect(scaling.report().scaleDowns == 1 && scaling.report().scaleUps == 0)
        // Retiring a TE scaling never touched (recovery gives it up) records it as retired.
        scaling.retire(te: 2)
        #expect(scaling.phase(2) == .retired && scaling.lifecycle[2]?.detail == 0)
    }

    @Test func aCancelledStartCompletesAScaleDownAtOnce() {
        let scaling = ScalingController()
        let up = scaling.openOperation(role: .decode, from: 1, to: 2, at: 0)
        scaling.beginStart(te: 4, operation: up, path: nil)
        let down = scaling.openOperation(role: .decode, from: 2, to: 1, at: 0.5)
        #expect(down == 1)
        #expect(scaling.cancelStart(te: 4, at: 0.5) == up)
        #expect(scaling.phase(4) == .retired)
        #expect(scaling.pendingTEs(of: up) == 0)
        // The scale-up reached nothing: it never became ready and is no scale-up (it was
        // reported ready at 0.5 s, 1 → 2).
        #expect(scaling.operation(up) == ScaleDetail(role: "decode", from: 1, to: 1, requestedS: 0, readyS: nil, loadPath: nil, cancelled: 1))
        #expect(scaling.report().scaleUps == 0)
        #expect(scaling.cancelStart(te: 4, at: 0.6) == nil, "a retired TE has no start to cancel")
        scaling.readyIfNothingPending(down, at: 0.5)
        #expect(scaling.operation(down).readyS == 0.5)
    }

    /// A scale-up with one TE in service and one cancelled is ready when its TE came into
    /// service, not when the other's start was cancelled.
    @Test func aPartlyCancelledScaleUpIsReadyWhenItsLastTECameIntoService() {
        let scaling = ScalingController()
        let op = scaling.openOperation(role: .prefill, from: 8, to: 10, at: 1)
        scaling.beginStart(te: 9, operation: op, path: nil)
        scaling.beginStart(te: 10, operation: op, path: .objectStore)
        scaling.beginLoading(te: 9, path: .npuFork, source: 0)
        scaling.beginLoading(te: 10, path: .objectStore, source: nil)
        #expect(scaling.operation(op).loadPath == .objectStore)
        #expect(scaling.finishStart(te: 9, ready: true, at: 4))
        #expect(scaling.cancelStart(te: 10, at: 30) == op)
        // The path is the one the TE it reached used, not the cancelled one's.
        #expect(scaling.operation(op) == ScaleDetail(role: "prefill", from: 8, to: 9, requestedS: 1, readyS: 4,
                                                     loadPath: .npuFork, cancelled: 1))
        #expect(scaling.report().scaleUps == 1)
        #expect(scaling.cancelStart(te: 9, at: 31) == nil, "a TE in service is scaled in, not cancelled")
    }

    @Test func aLostStartWaitsForItsReplacementOrFallsShort() {
        let scaling = ScalingController()
        let op = scaling.openOperation(role: .prefill, from: 8, to: 10, at: 0)
        scaling.beginStart(te: 9, operation: op, path: nil)
        scaling.beginStart(te: 10, operation: op, path: nil)
        // TE 9 loses its hardware; a replacement (TE 11) starts.
        scaling.awaitReplacement(of: op)
        #expect(scaling.finishStart(te: 9, ready: false, at: 1))
        #expect(scaling.pendingTEs(of: op) == 2 && scaling.operation(op).readyS == nil)
        scaling.beginStart(te: 11, operation: op, path: nil)
        scaling.replacementTried(for: op, started: true, at: 1)
        #expect(scaling.pendingTEs(of: op) == 2 && scaling.operation(op).to == 10)
        // TE 10 loses its hardware too, and no spare is left: the operation falls one TE short.
        scaling.awaitReplacement(of: op)
        #expect(scaling.finishStart(te: 10, ready: false, at: 2))
        scaling.replacementTried(for: op, started: false, at: 2)
        #expect(scaling.pendingTEs(of: op) == 1 && scaling.operation(op).to == 9 && scaling.operation(op).readyS == nil)
        // The last start lost with nothing left to wait for: done, two short, and as none of its
        // TEs came into service it never became ready.
        scaling.awaitReplacement(of: op)
        #expect(scaling.finishStart(te: 11, ready: false, at: 3))
        scaling.replacementTried(for: op, started: false, at: 3)
        #expect(scaling.pendingTEs(of: op) == 0 && scaling.operation(op).to == 8 && scaling.operation(op).readyS == nil)
        #expect(scaling.operation(op).cancelled == 0 && scaling.operation(op).lost == 2, "lost, not cancelled")
    }

    /// A start abandoned for lost hardware no longer speaks for its operation's load path: the
    /// replacement's path does (a replacement forked over UB was reported as `dram`, the path
    /// of the start it replaced).
    @Test func anAbandonedStartsPathLeavesItsOperation() {
        let scaling = ScalingController()
        let op = scaling.openOperation(role: .prefill, from: 8, to: 9, at: 0)
        scaling.beginStart(te: 9, operation: op, path: nil)
        scaling.beginLoading(te: 9, path: .dram, source: nil)
        #expect(scaling.operation(op).loadPath == .dram)
        // The engine's order when a starting TE loses hardware: its start ends, it retires, the
        // operation waits for a replacement.
        #expect(scaling.finishStart(te: 9, ready: false, at: 1))
        scaling.retire(te: 9)
        scaling.awaitReplacement(of: op)
        #expect(scaling.operation(op).loadPath == nil)
        scaling.beginStart(te: 10, operation: op, path: nil)
        scaling.replacementTried(for: op, started: true, at: 1)
        scaling.beginLoading(te: 10, path: .npuFork, source: 0)
        #expect(scaling.operation(op).loadPath == .npuFork)
        #expect(scaling.finishStart(te: 10, ready: true, at: 3))
        #expect(scaling.operation(op).readyS == 3 && scaling.operation(op).to == 9)
    }

    @Test func aFailedForkRestartsItsLoad() {
        let scaling = ScalingController()
        let op = scaling.openOperation(role: .prefill, from: 1, to: 2, at: 0)
        scaling.beginStart(te: 1, operation: op, path: nil)
        scaling.beginLoading(te: 1, path: .npuFork, source: 0)
        scaling.restartLoad(te: 1)
        #expect(scaling.phase(1) == .allocating && scaling.lifecycle[1]?.loadPath == nil)
        #expect(scaling.lifecycle[1]?.forkSource == 0, "kept until the next load picks its own")
        #expect(scaling.pendingTEs(of: op) == 1, "still the same start")
    }

    @Test func anOperationWithNoTEBuiltIsWithdrawn() {
        let scaling = ScalingController()
        let first = scaling.openOperation(role: .prefill, from: 8, to: 9, at: 0)
        let second = scaling.openOperation(role: .prefill, from: 9, to: 12, at: 1)
        scaling.setTarget(of: first, to: 8)
        scaling.withdrawOperation(second)
        #expect(scaling.details.count == 1 && scaling.operation(first).to == 8)
        #expect(scaling.openOperation(role: .decode, from: 1, to: 2, at: 2) == 1, "the index is reused")
    }

    @Test func preWarmedSparesAreMarked() {
        let scaling = ScalingController()
        #expect(!scaling.isPrewarmed(288))
        scaling.markPrewarmed([288, 289, 290])
        #expect(scaling.isPrewarmed(288) && scaling.isPrewarmed(290) && !scaling.isPrewarmed(291))
        #expect(scaling.prewarmedNPUs == [288, 289, 290])
    }

    @Test func oneDrainCheckAtATime() {
        let scaling = ScalingController()
        var queue = EngineEventQueue()
        scaling.scheduleDrainCheck(at: 1, queue: &queue)
        scaling.scheduleDrainCheck(at: 1.5, queue: &queue)
        #expect(scaling.drainCheckScheduled)
        #expect(Self.timers(&queue).map(\.0) == [1], "the second is not scheduled")
        scaling.drainCheckFired()
        #expect(!scaling.drainCheckScheduled)
        scaling.scheduleDrainCheck(at: 2, queue: &queue)
        #expect(Self.timers(&queue).map(\.0) == [2])
    }

    @Test func theAutoscalerSlotSchedulesOneTickAtATime() {
        let scaling = ScalingController()
        var queue = EngineEventQueue()
        #expect(scaling.autoscalerName == "off" && !scaling.isAutoscaling && !scaling.needsAutoscaleTick)
        scaling.scheduleAutoscaleTick(now: 0, counters: .init(), inServicePrefill: [], queue: &queue)
        #expect(queue.isEmpty, "off schedules nothing")
        scaling.swapAutoscaler(SLOAutoscaler())
        #expect(scaling.autoscalerName == "slo" && scaling.isAutoscaling && scaling.needsAutoscaleTick)
        scaling.scheduleAutoscaleTick(now: 10, counters: .init(), inServicePrefill: [], queue: &queue)
        scaling.scheduleAutoscaleTick(now: 11, counters: .init(), inServicePrefill: [], queue: &queue)
        #expect(!scaling.needsAutoscaleTick && scaling.lastEvaluation == 10)
        let ticks = Self.timers(&queue)
        #expect(ticks.count == 1 && ticks[0].0 == 15 && ticks[0].1 == .autoscaleTick)
        scaling.autoscaleTickFired()
        #expect(scaling.needsAutoscaleTick)
        scaling.swapAutoscaler(OffAutoscaler())
        #expect(!scaling.needsAutoscaleTick && !scaling.isAutoscaling)
    }

    @Test func busySharesAreTheDeltasOverTheEvaluationInterval() {
        let scaling = ScalingController()
        scaling.swapAutoscaler(SLOAutoscaler())
        var queue = EngineEventQueue()
        // Before the interval: TE 0 worked 4 s (a batch on all its groups).
        scaling.noteBatchFormed(groupShare: 1)
        scaling.recordPrefillStep(te: 0, seconds: 4)
        scaling.scheduleAutoscaleTick(now: 10, counters: .init(prefillComputedTokens: 100, completed: 10, sloMet: 8),
                                      inServicePrefill: [(0, 0), (1, 0)], queue: &queue)
        // In the interval: a 2 s batch on half of TE 0's groups, then 1 s on a quarter, 0.5 s of
        // which is still to run at 14 s.
        scaling.noteBatchFormed(groupShare: 0.5)
        scaling.recordPrefillStep(te: 0, seconds: 2)
        scaling.noteBatchFormed(groupShare: 0.25)
        scaling.recordPrefillStep(te: 0, seconds: 1)
        #expect(scaling.batchGroupShare == 0.25)
        let done = scaling.busyDone(te: 0, stepSecondsLeft: 0.5)
        #expect(done.busy == 6.5 && done.groupBusy == 4 + 1 + 0.25 - 0.125)
        let interval = scaling.evaluationInterval(now: 14)
        #expect(interval == 4)
        let shares = scaling.busyShares(te: 0, stepSecondsLeft: 0.5, interval: interval)
        #expect(shares?.busy == 0.625 && shares?.groupBusy == 0.28125)
        let idle = scaling.busyShares(te: 1, stepSecondsLeft: 0, interval: interval)
        #expect(idle?.busy == 0 && idle?.groupBusy == 0)
        #expect(scaling.busyShares(te: 2, stepSecondsLeft: 0, interval: interval) == nil,
                "not in service when the interval began: measured from the next one")
        // A share never passes 1 (a step started in the interval may run past its end).
        scaling.noteBatchFormed(groupShare: 1)
        scaling.recordPrefillStep(te: 1, seconds: 100)
        #expect(scaling.busyShares(te: 1, stepSecondsLeft: 0, interval: interval)?.busy == 1)
        #expect(scaling.countsSinceEvaluation(.init(prefillComputedTokens: 400, completed: 15, sloMet: 12))
                == .init(prefillComputedTokens: 300, completed: 5, sloMet: 4))
        // The next interval measures from what was done when it began.
        scaling.autoscaleTickFired()
        scaling.scheduleAutoscaleTick(now: 15, counters: .init(prefillComputedTokens: 400, completed: 15, sloMet: 12),
                                      inServicePrefill: [(0, 0)], queue: &queue)
        #expect(scaling.busyShares(te: 0, stepSecondsLeft: 0, interval: scaling.evaluationInterval(now: 16))?.busy == 0)
        #expect(scaling.busyShares(te: 1, stepSecondsLeft: 0, interval: 1) == nil, "TE 1 was not listed this time")
        #expect(scaling.evaluationInterval(now: 15) == 1e-9, "never a zero divisor")
    }

    @Test func aCopySharesNothing() {
        let a = ScalingController()
        a.swapAutoscaler(SLOAutoscaler())
        var queue = EngineEventQueue()
        let op = a.openOperation(role: .prefill, from: 4, to: 5, at: 0)
        a.beginStart(te: 5, operation: op, path: nil)
        a.markPrewarmed([40])
        a.scheduleDrainCheck(at: 1, queue: &queue)
        a.scheduleAutoscaleTick(now: 0, counters: .init(), inServicePrefill: [(0, 0)], queue: &queue)
        a.noteBatchFormed(groupShare: 0.5)
        a.recordPrefillStep(te: 0, seconds: 2)
        // The SLO policy's hysteresis: one evaluation of a short prefill side so far.
        var load = ClusterLoad()
        load.prefill.inService = 4
        load.prefill.npusPerTE = 16
        load.spareNPUs = 64
        load.prefillGroupBusyShare = 0.9
        load.recentTTFTp90Ms = 1_900
        #expect(a.evaluate(load, now: 5).isEmpty, "one evaluation is not enough")

        let b = a.copy()
        #expect(b !== a)
        #expect(b.lifecycle == a.lifecycle && b.report() == a.report() && b.prewarmedNPUs == a.prewarmedNPUs)
        #expect(b.drainCheckScheduled && !b.needsAutoscaleTick && b.autoscalerName == "slo")
        #expect(b.busyShares(te: 0, stepSecondsLeft: 0, interval: 4)?.groupBusy == 0.25)

        // The copy acts alone.
        b.beginLoading(te: 5, path: .pool, source: nil)
        #expect(b.finishStart(te: 5, ready: true, at: 3))
        b.markPrewarmed([41])
        b.drainCheckFired()
        b.recordPrefillStep(te: 0, seconds: 2)
        let decided = b.evaluate(load, now: 10)
        #expect(decided.map(\.role) == [.prefill] && decided.first?.delta == 2)
        #expect(a.phase(5) == .allocating && a.pendingTEs(of: op) == 1 && a.operation(op).readyS == nil)
        #expect(a.operation(op).loadPath == nil && a.prewarmedNPUs == [40] && a.drainCheckScheduled)
        #expect(a.busyShares(te: 0, stepSecondsLeft: 0, interval: 4)?.groupBusy == 0.25)
        // The original's policy kept its own streak and cooldown: it decides the same on its own.
        #expect(a.evaluate(load, now: 10) == decided)
        b.swapAutoscaler(OffAutoscaler())
        #expect(a.autoscalerName == "slo")
    }

    /// The cluster manager owns the controller: its copy copies it, and its hold-off follows the
    /// controller's phases.
    @Test func theClusterManagerCopiesItsControllerAndHoldsOffByPhase() {
        let cluster = ClusterManager(npusPerNode: 8)
        cluster.layOutTE(npus: [0, 1], groups: 2, tp: 1, firstDie: 0)
        let op = cluster.scaling.openOperation(role: .prefill, from: 0, to: 1, at: 0)
        cluster.scaling.beginStart(te: 0, operation: op, path: nil)
        #expect(cluster.holdOffFollowsPhase(te: 0) == [GroupRef(te: 0, group: 0), GroupRef(te: 0, group: 1)])
        #expect(cluster.isHeldOff(te: 0) && !cluster.hasPlaceableGroup(te: 0))
        let copy = cluster.copy()
        #expect(copy.scaling !== cluster.scaling && copy.scaling.phase(0) == .allocating)
        copy.scaling.finishStart(te: 0, ready: true, at: 4)
        #expect(copy.holdOffFollowsPhase(te: 0).count == 2 && copy.hasPlaceableGroup(te: 0))
        #expect(cluster.scaling.phase(0) == .allocating && cluster.isHeldOff(te: 0), "the original is untouched")
        #expect(cluster.holdOffFollowsPhase(te: 0) == [], "nothing changed")
    }

    /// The engine's fork copies the controller with the cluster manager, not the reference.
    @Test func anEngineForkHasItsOwnController() throws {
        let engine = try FaultTests.engine(rate: 5, limit: 20)
        engine.run(until: 1)
        #expect(engine.apply(.scale(role: .prefill, change: .by(1), from: nil)).accepted)
        let fork = try engine.fork()
        #expect(fork.scaling !== engine.scaling)
        #expect(fork.scaling.lifecycle == engine.scaling.lifecycle)
        let te = engine.instances.count - 1
        fork.run(until: 60)
        #expect(fork.scaling.phase(te) == .inService)
        #expect(engine.scaling.phase(te) == .allocating, "the original has not moved")
    }
}

/// "Per die" divides by the devices held over the run, not by the layout at its end: a
/// scale-in a second before the end read twice the per-die rate (the whole run's prefill over
/// half the dies), and TEs still loading at the end counted for the whole run.
@Suite struct DeviceTimeTests {
    static func run(_ command: OperatorCommand?) throws -> RunReport.Throughput {
        let engine = try FaultTests.engine(rate: 20, limit: 1_000)
        engine.run(until: 29)
        if let command { #expect(engine.apply(command).accepted) }
        engine.run(until: 30)
        if case .scale(_, .to(1), _) = command {
            #expect(engine.isRetired(1), "the scaled-in TE gave its NPUs back before the end")
        }
        return engine.report().throughput
    }

    @Test func aLateScaleChangesPerDieRatesByItsShareOfTheRun() throws {
        let base = try Self.run(nil)
        let scaledIn = try Self.run(.scale(role: .prefill, change: .to(1), from: nil))
        let ratio = scaledIn.prefillTokensPerSPerNPU / base.prefillTokensPerSPerNPU
        #expect(ratio > 0.95 && ratio < 1.1, "one prefill TE of two for the last second at most: \(ratio)")
        let scaledOut = try Self.run(.scale(role: .prefill, change: .by(1), from: .objectStore))
        let out = scaledOut.prefillTokensPerSPerNPU / base.prefillTokensPerSPerNPU
        #expect(out > 0.95 && out <= 1.0001, "a TE loading for the last second: \(out)")
        // Decode held still: its per-die figures are the layout's, to the bit.
        #expect(scaledIn.outputTokensPerS / scaledIn.outputTokensPerSPerNPU
                == base.outputTokensPerS / base.outputTokensPerSPerNPU)
    }
}
