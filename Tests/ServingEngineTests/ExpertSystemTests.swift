import PodModel
import SimKit
import Testing

@testable import ServingEngine

/// ``ExpertSystem`` through its own API (no engine): a plan that cuts imbalance and its swap
/// phases, a skipped plan when the collected counts did not change, the report's sums, coverage
/// after dies are lost, quiet stretches, and its copy.
@Suite(.timeLimit(.minutes(10))) struct ExpertSystemTests {
    static let shape = ModelSpecShape(moeLayers: 58, experts: 256)
    static let cost = CostModel(model: .deepSeekR1, hardware: .ascend910C)
    /// A decode TE like superpod's (288 routed dies, one slot each) and a prefill TE.
    static let decode = ExpertSystem.Host(dies: 288, slotsPerDie: 1, cost: cost, decodes: true)
    static let prefill = ExpertSystem.Host(dies: 32, slotsPerDie: 9, cost: cost, decodes: false)

    static func system(_ mode: EPLBMode, hosts: [ExpertSystem.Host] = [prefill, decode], seed: UInt64 = 1) -> ExpertSystem {
        let experts = ExpertSystem(mode: mode, intervalSeconds: 60, topK: 8)
        experts.start(shape: shape, seed: seed, skewed: true, hosts: hosts)
        return experts
    }

    /// Pops the queue's `.expertSwap` events in time order, advancing each, until TE `te` is idle.
    /// Returns the phases seen and the log lines.
    static func runSwap(_ experts: ExpertSystem, _ te: Int, queue: inout EngineEventQueue)
        -> (phases: [String], lines: [ExpertSystem.Rebalance], end: SimTime) {
        var phases: [String] = []
        var lines: [ExpertSystem.Rebalance] = []
        var end: SimTime = 0
        while experts.controller(of: te)?.phase != .idle, let (time, event) = queue.popNext() {
            guard case .expertSwap(let i) = event else { continue }
            lines += experts.advanceSwap(i, now: time, queue: &queue)
            end = time
            switch experts.controller(of: te)?.phase {
            case .prefetch?: phases.append("prefetch")
            case .load?: phases.append("load")
            case .idle?: phases.append("idle")
            case nil: phases.append("none")
            }
        }
        return (phases, lines, end)
    }

    @Test func rebalanceCutsImbalanceThroughItsSwapPhases() {
        let experts = Self.system(.off)
        let before = experts.decodeExpectedImbalance
        #expect(before >= 2, "the static placement under skewed traffic: \(before)")
        for _ in 0..<20 { _ = experts.loadFactor(1, tokens: 3_840) }
        var queue = EngineEventQueue()
        let reply = experts.rebalanceNow(now: 10, queue: &queue)
        #expect(reply.started == 2 && reply.refusals.isEmpty)
        #expect(reply.lines.map(\.instance) == [0, 1] && reply.lines.allSatisfy { $0.message.hasPrefix("rebalance started") })
        // The swap is under way: a wake-up per TE for the end of its prefetch, nothing served yet.
        #expect(queue.count == 2)
        #expect(experts.summary().rebalanceInProgress && experts.hasPendingWork)
        #expect(experts.decodeExpectedImbalance == before)
        let swap = Self.runSwap(experts, 1, queue: &queue)
        // Prefetch → load (the slots that change are disabled) → idle, in order, once each.
        #expect(swap.phases.filter { $0 != "prefetch" } == ["load", "idle"], "\(swap.phases)")
        #expect(swap.end > 10)
        let done = swap.lines.filter { $0.instance == 1 }
        #expect(done.count == 1 && done[0].message.hasPrefix("rebalance done"), "\(swap.lines)")
        // The two lines quote imbalances of different scopes (the plan's on the collected counts,
        // the done line's on the traffic served), so each names its own: side by side, two
        // unnamed "before" figures that differ read as a contradiction.
        #expect(reply.lines.allSatisfy { $0.message.contains(": collected-load imbalance ") }, "\(reply.lines)")
        #expect(done[0].message.contains(": served imbalance "), "\(done[0].message)")
        let after = experts.decodeExpectedImbalance
        #expect(after <= before * 0.6, "\(before) → \(after)")
        #expect(experts.decodeRebalances == 1, "only the decode TE's rebalance counts in the report")
        #expect(!experts.summary().rebalanceInProgress && experts.summary().imbalance == after)
        // Asked again on the same counts: the placement is already their plan; nothing to gain.
        var again = EngineEventQueue()
        let second = experts.rebalanceNow(now: swap.end + 1, queue: &again)
        #expect(second.started == 0 && second.refusals.isEmpty
                && second.nothingToGain.first?.hasPrefix("rebalance skipped: collected-load imbalance ") == true,
                "\(second)")
        // An operator asks for any gain: the refusal says there is none, not "gain under 0%".
        #expect(second.nothingToGain.first?.hasSuffix("(the current placement is already as good)") == true, "\(second)")
    }

    @Test func swapPhasesDisableOnlyTheSlotsThatMove() {
        let experts = Self.system(.off, hosts: [Self.decode])
        var queue = EngineEventQueue()
        #expect(experts.rebalanceNow(now: 5, queue: &queue).started == 1)
        guard case .prefetch(let until, let started, _)? = experts.controller(of: 0)?.phase else {
            Issue.record("expected the prefetch phase")
            return
        }
        #expect(started == 5 && until > 5)
        // Too early: the phase has not ended, nothing changes (but a wake-up is asked for again).
        _ = experts.advanceSwap(0, now: 5, queue: &queue)
        #expect(experts.controller(of: 0)?.phase == .prefetch(until: until, started: 5,
                                                              before: experts.decodeExpectedImbalance))
        _ = experts.advanceSwap(0, now: until, queue: &queue)
        let loading = experts.controller(of: 0)?.loadingDies ?? []
        #expect(!loading.isEmpty && loading.count < 288, "\(loading.count) dies loading")
        #expect(experts.summary().loadingDies == loading)
        // While loading, the serving placement drops the disabled hosts; the placement is the old one.
        let routing = experts.routing(of: 0)!
        #expect(routing.servingPlacement != routing.placement)
    }

    @Test func automaticTickSkipsAPlanWhenTheCountsDidNotChange() {
        // Mode on: the start placement is planned on the profiled popularity.
        let experts = Self.system(.on, hosts: [Self.decode])
        let start = experts.routing(of: 0)!.placement
        var queue = EngineEventQueue()
        #expect(experts.tick(now: 20, queue: &queue).isEmpty, "before the cadence and the first drift")
        for _ in 0..<10 { _ = experts.loadFactor(0, tokens: 3_840) }
        // At 60 the window closes: it counted the profiled popularity, which the placement was
        // planned for: no plan, no log line, no swap.
        #expect(experts.tick(now: 60, queue: &queue).isEmpty)
        #expect(queue.isEmpty && experts.routing(of: 0)!.placement == start && !experts.hasPendingWork)
        // A traffic mix of chat only moves the hot set: the next window's counts differ enough.
        for _ in 0..<50 { experts.noteArrival(tag: "chat") }
        #expect(experts.tick(now: 90, queue: &queue).isEmpty, "the mix changes at the drift; no window closed")
        for _ in 0..<10 { _ = experts.loadFactor(0, tokens: 3_840) }
        let lines = experts.tick(now: 120, queue: &queue)
        #expect(lines.count == 1 && lines[0].message.hasPrefix("rebalance started"), "\(lines)")
        #expect(queue.count == 1)
    }

    @Test func stepSumsFeedTheReportFromDecodeStepsOnly() {
        let experts = Self.system(.off)
        #expect(experts.meanStepImbalance == 1 && experts.moeMsPerStep == nil && experts.moeShareOfStep == nil)
        let p = experts.loadFactor(0, tokens: 8_192)
        #expect(p >= 1 && experts.intervalSteps == 0, "a prefill step draws but does not count")
        let a = experts.loadFactor(1, tokens: 3_840), b = experts.loadFactor(1, tokens: 3_840)
        #expect(experts.intervalSteps == 2 && experts.meanStepImbalance == (a + b) / 2)
        #expect(experts.takeIntervalImbalance() == (a + b) / 2)
        #expect(experts.takeIntervalImbalance() == nil && experts.intervalSteps == 0)
        experts.noteDecodeMoE(moeSeconds: 0.5, stepSeconds: 1)
        experts.noteDecodeMoE(moeSeconds: 0.25, stepSeconds: 2)
        #expect(experts.moeMsPerStep == 375 && experts.moeShareOfStep == 0.25)
        // --eplb perfect: ideal balance, no draw, nothing summed.
        let perfect = Self.system(.perfect)
        #expect(perfect.loadFactor(1, tokens: 3_840) == 1 && perfect.intervalSteps == 0 && perfect.meanStepImbalance == 1)
        // A dense model: nothing started, every call a no-op.
        let dense = ExpertSystem(mode: .on, intervalSeconds: 60, topK: 8)
        var queue = EngineEventQueue()
        #expect(!dense.hasExperts && dense.loadFactor(0, tokens: 100) == 1 && dense.tick(now: 60, queue: &queue).isEmpty)
        #expect(dense.rebalanceNow(now: 1, queue: &queue).started == 0 && dense.summary() == ExpertSummary())
    }

    @Test func coverageAfterLostDiesFollowsTheLivePlacement() {
        // 8 experts on 10 one-slot dies, round robin: expert e on die e, dies 8 and 9 hold second
        // replicas of experts 0 and 1.
        let experts = ExpertSystem(mode: .off, intervalSeconds: 60, topK: 2)
        experts.start(shape: ModelSpecShape(moeLayers: 3, experts: 8), seed: 1, skewed: true,
                      hosts: [ExpertSystem.Host(dies: 10, slotsPerDie: 1, cost: Self.cost, decodes: true)])
        #expect(experts.unreplicatedExperts(instance: 0, deadDies: []) == [])
        #expect(experts.unreplicatedExperts(instance: 0, deadDies: [0]) == [], "die 8 still holds expert 0")
        #expect(experts.unreplicatedExperts(instance: 0, deadDies: [0, 8, 3]) == [0, 3])
        #expect(experts.unreplicatedExperts(instance: 1, deadDies: [0]) == nil, "no such TE")
    }

    @Test func quietTicksMoveTheDriftClockWithoutDrawing() {
        let a = Self.system(.off, hosts: [Self.decode]), b = a.copy()
        var queue = EngineEventQueue()
        // 40 quiet ticks of 0.5 s at once equal 40 one by one (no tokens: nothing collected).
        a.skipQuietTicks(count: 40, first: 0.5, interval: 0.5)
        for k in 1...40 { _ = b.tick(now: Double(k) * 0.5, queue: &queue) }
        // The same next drift: a tick at 35 s has not drifted since 30 s on either.
        _ = a.tick(now: 35, queue: &queue)
        _ = b.tick(now: 35, queue: &queue)
        #expect(a.routing(of: 0)!.popularity == b.routing(of: 0)!.popularity)
        _ = a.tick(now: 60, queue: &queue)
        _ = b.tick(now: 60, queue: &queue)
        #expect(a.routing(of: 0)!.popularity == b.routing(of: 0)!.popularity)
    }

    @Test func copyIsIndependentAndDrawsTheSameNumbers() {
        let original = Self.system(.off)
        for _ in 0..<5 { _ = original.loadFactor(1, tokens: 3_840) }
        original.use(DeepSeekEPLBPlanner())
        let fork = original.copy()
        #expect(fork !== original && fork.planner.name == "deepseek")
        // The routing streams are copied where they stand: both draw the same next factors.
        let next = (0..<5).map { _ in original.loadFactor(1, tokens: 3_840) }
        #expect((0..<5).map { _ in fork.loadFactor(1, tokens: 3_840) } == next)
        #expect(fork.meanStepImbalance == original.meanStepImbalance)
        // A rebalance and a planner change on the fork leave the original alone.
        var queue = EngineEventQueue()
        #expect(fork.rebalanceNow(now: 1, queue: &queue).started == 2)
        _ = Self.runSwap(fork, 1, queue: &queue)
        fork.use(GreedyEPLBPlanner())
        #expect(fork.decodeRebalances == 1 && original.decodeRebalances == 0)
        #expect(original.controller(of: 1)?.phase == .idle && original.planner.name == "deepseek")
        #expect(original.controllers.allSatisfy { $0?.policy.name == "deepseek" })
        #expect(fork.decodeExpectedImbalance < original.decodeExpectedImbalance)
        #expect(original.routing(of: 1)!.placement != fork.routing(of: 1)!.placement)
    }

    @Test func addedTEsPlanFromTheCurrentTraffic() {
        let experts = Self.system(.on, hosts: [Self.decode])
        experts.add(2, host: Self.decode, seed: 9, now: 100)
        #expect(experts.routings.count == 3 && experts.routing(of: 1) == nil)
        // The same shape and popularity: the same plan as the start placement.
        #expect(experts.routing(of: 2)!.placement == experts.routing(of: 0)!.placement)
        // Its steps count as decode steps.
        _ = experts.loadFactor(2, tokens: 1_000)
        #expect(experts.intervalSteps == 1)
    }

    /// Popularity moves at 30, 90, 150 s…: midway through the 60 s EPLB windows, once per
    /// window; the first update is one 30 s step of the walk, later ones two steps at once.
    @Test func popularityUpdatesMidwayThroughEachWindow() {
        let experts = Self.system(.off)
        var queue = EngineEventQueue()
        var changes: [SimTime] = []
        var last = experts.traffic?.popularity
        for second in 1...200 {
            _ = experts.tick(now: SimTime(second), queue: &queue)
            let now = experts.traffic?.popularity
            if now != last { changes.append(SimTime(second)) }
            last = now
        }
        #expect(changes == [30, 90, 150], "\(changes)")
        // The same walk as the traffic alone stepped 30 s, then two 30 s steps in closed form.
        var traffic = ExpertTraffic(shape: Self.shape, seed: 1, skewed: true)
        traffic.advanceDrift(seconds: 30)
        traffic.advanceDrift(steps: 2, firstSeconds: 30, seconds: 30)
        traffic.advanceDrift(steps: 2, firstSeconds: 30, seconds: 30)
        #expect(traffic.popularity == experts.traffic?.popularity)
    }
}

/// ``ExpertPlacement``'s flat storage: nested rows in and out, and the swap's serving placement.
@Suite(.timeLimit(.minutes(10))) struct ExpertPlacementStorageTests {
    @Test func nestedRowsRoundTripThroughTheFlatBuffers() {
        let rows: [[[Int]]] = [[[0], [1, 3], [], [2]], [[3], [0], [1, 2], [3, 0]]]
        let p = ExpertPlacement(dies: 4, slotsPerDie: 2, layers: rows)
        #expect(p.layers == rows && p.layerCount == 2 && p.experts == 4)
        #expect(p.hosts(layer: 1, expert: 3) == [3, 0] && p.hosts(layer: 0, expert: 2) == [] && p.layer(0) == rows[0])
        #expect(p == ExpertPlacement(dies: 4, slotsPerDie: 2, layers: rows))
        #expect(p != ExpertPlacement(dies: 4, slotsPerDie: 2, layers: [rows[0], rows[0]]))
        // Per-die loads of layer 1 under uniform popularity: replicas split their expert's load.
        let uniform = ExpertPopularity.uniform(layers: 2, experts: 4)
        #expect(p.dieLoads(layer: 1, popularity: uniform) == [1.5, 0.5, 0.5, 1.5])
        let empty = ExpertPlacement(dies: 3, slotsPerDie: 1, layers: [])
        #expect(empty.layers.isEmpty && empty.imbalance(popularity: uniform) == 1)
    }

    @Test func aSwapServesFromTheHostsItKeepsAndNeverDropsTheLastReplica() {
        let old = ExpertPlacement(dies: 4, slotsPerDie: 2, layers: [[[0, 1], [2], [3], [1, 2]]])
        let new = ExpertPlacement(dies: 4, slotsPerDie: 2, layers: [[[0, 3], [1], [3], [2, 0]]])
        let (serving, disabled) = EPLBController.servingDuringSwap(from: old, to: new)
        // Expert 0 keeps die 0 (die 1 disabled); expert 1 would keep nothing: it keeps die 2;
        // expert 2 is unchanged; expert 3 keeps die 2 (die 1 disabled).
        #expect(serving.layers == [[[0], [2], [3], [2]]] && disabled == [1])
        // Dies that gain an expert: die 3 (expert 0), die 1 (expert 1), die 0 (expert 3).
        #expect(EPLBController.layersGained(from: old, to: new) == [1, 1, 0, 1])
    }}
