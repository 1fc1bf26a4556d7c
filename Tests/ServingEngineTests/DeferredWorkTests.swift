import Foundation
import PodModel
import SimKit
import Testing
@testable import ServingEngine

/// Issue 12's later speed paths, each checked against the plain computation it stands in for:
/// work deferred to its first read (an expert routing's hottest shares), state mirrored for a
/// cheap read (a controller's wake-up time), and a split written without per-key arrays.
@Suite struct DeferredWorkTests {
    let shape = ModelSpecShape(moeLayers: 58, experts: 256)
    let cost = CostModel(model: .deepSeekR1, hardware: .ascend910C)

    /// Splitting keys into smaller blocks derives piece `i` of each key as `combine(key, i)`, in
    /// key order: the one-buffer split gives exactly that, for several piece counts (one piece:
    /// the same block size, the keys as they are).
    @Test func rebaseSplitDerivesEachPieceOfEachKeyInOrder() {
        var rng = RandomStreams(seed: 4).stream("rebase")
        let same = (0..<9).map { _ in rng.next() }
        #expect(PrefixHashes.rebase(same, fromBlockTokens: 128, toBlockTokens: 128) == same)
        for pieces in [2, 3, 4, 8] {
            let keys = (0..<rng.int(in: 0...40)).map { _ in rng.next() }
            let split = PrefixHashes.rebase(keys, fromBlockTokens: 128 * pieces, toBlockTokens: 128)
            let want = keys.flatMap { key in (0..<pieces).map { StableHash.combine(parent: key, UInt64($0)) } }
            #expect(split == want, "pieces \(pieces)")
        }
        #expect(PrefixHashes.rebase([], fromBlockTokens: 512, toBlockTokens: 128).isEmpty)
    }

    /// The hottest shares are worked out on their first read after a change, not on the change:
    /// whatever is read (expected imbalance, with or without keeping the shares, or a step's load
    /// factor) equals what a routing that started from that state reads, bit for bit.
    @Test func sharesWorkedOutOnReadEqualThoseWorkedOutOnChange() {
        var traffic = ExpertTraffic(shape: shape, seed: 9)
        let first = traffic.popularity
        traffic.advanceDrift(seconds: 300)
        let drifted = traffic.popularity
        let plan = ExpertPlacement.greedy(popularity: drifted, dies: 32, slotsPerDie: 9)

        var changed = ExpertRouting(popularity: first, dies: 32, slotsPerDie: 9, seed: 5)
        _ = changed.stepLoadFactor(tokens: 1_000)
        changed.setPopularity(drifted)
        changed.setPlacement(plan)
        let direct = plan.imbalance(popularity: drifted)
        // A read without keeping the shares, then one that keeps them: both the direct figure.
        #expect(changed.expectedImbalance.bitPattern == direct.bitPattern)
        #expect(changed.settledExpectedImbalance().bitPattern == direct.bitPattern)
        #expect(changed.expectedImbalance.bitPattern == direct.bitPattern)

        // A step right after a change reads the new shares: the same factor as a routing that
        // started there (same stream position: one draw each before).
        var stale = ExpertRouting(popularity: first, dies: 32, slotsPerDie: 9, seed: 5)
        var fresh = ExpertRouting(popularity: drifted, dies: 32, slotsPerDie: 9, seed: 5, placement: plan)
        _ = stale.stepLoadFactor(tokens: 1_000)
        _ = fresh.stepLoadFactor(tokens: 1_000)
        stale.setPopularity(drifted)
        stale.setPlacement(plan)
        for tokens in [500.0, 2_000, 30_000] {
            #expect(stale.stepLoadFactor(tokens: tokens).bitPattern == fresh.stepLoadFactor(tokens: tokens).bitPattern)
        }
    }

    /// `wakesAt` is when `isDue(now:)` turns true, in every phase: idle in automatic mode, idle
    /// otherwise (never), and through a swap's prefetch and load phases.
    @Test func wakeTimeIsWhenTheControllerIsDue() {
        func agrees(_ eplb: EPLBController, _ times: [SimTime]) -> Bool {
            times.allSatisfy { now in eplb.isDue(now: now) == (eplb.wakesAt.map { now >= $0 } ?? false) }
        }
        let off = EPLBController(mode: .off, cost: cost)
        #expect(off.wakesAt == nil && off.swapPhaseEnds == nil && agrees(off, [0, 60, 1e9]))

        var traffic = ExpertTraffic(shape: shape, seed: 3)
        var routing = ExpertRouting(popularity: traffic.popularity, dies: 288, slotsPerDie: 1, seed: 3)
        var eplb = EPLBController(mode: .on, policy: GreedyEPLBPlanner(), cost: cost)
        #expect(eplb.wakesAt == 60 && agrees(eplb, [0, 59.9, 60, 61]))
        _ = routing.stepLoadFactor(tokens: 10_000)
        traffic.advanceDrift(seconds: 600)
        routing.setPopularity(traffic.popularity)
        _ = routing.stepLoadFactor(tokens: 10_000)
        var t = 60.0
        _ = eplb.tick(now: t, routing: &routing)
        var phases = 0
        while eplb.phase != .idle && phases < 10 {
            let end = eplb.swapPhaseEnds
            #expect(end != nil && eplb.wakesAt == end)
            #expect(agrees(eplb, [t, end! - 1e-6, end!, end! + 1]))
            t = end!
            _ = eplb.tick(now: t, routing: &routing)
            phases += 1
        }
        // Back to idle: the next automatic plan is one interval after the tick that planned.
        #expect(phases == 2 && eplb.swapPhaseEnds == nil && eplb.wakesAt == 60 + eplb.intervalSeconds)
    }
}
