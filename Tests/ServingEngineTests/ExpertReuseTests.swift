import PodModel
import SimKit
import Testing

@testable import ServingEngine

/// Work the expert system reuses instead of redoing (issue 12), each checked against the plain
/// computation it stands for: hottest-die shares taken from another TE holding the same serving
/// placement and popularity, rankings and planner sorts started from the last one's order.
@Suite struct ExpertReuseTests {
    static let shape = ModelSpecShape(moeLayers: 6, experts: 64)

    /// Expected imbalance from the shares worked out afresh, as ``ExpertRouting`` defines it.
    static func freshImbalance(_ routing: ExpertRouting) -> Double {
        routing.servingPlacement.imbalance(popularity: routing.popularity)
    }

    /// Shares adopted from a routing with a copy of the same placement and popularity are the
    /// ones the routing would work out, bit for bit, and its steps draw the same factors.
    @Test func adoptedSharesAreTheSharesWorkedOutHere() {
        let traffic = ExpertTraffic(shape: Self.shape, seed: 3)
        let placement = ExpertPlacement.greedy(popularity: traffic.popularity, dies: 8, slotsPerDie: 9)
        var lender = ExpertRouting(popularity: traffic.popularity, dies: 8, slotsPerDie: 9, seed: 1, placement: placement)
        var borrower = ExpertRouting(popularity: traffic.popularity, dies: 8, slotsPerDie: 9, seed: 2, placement: placement)
        var alone = borrower
        // Not worked out yet: nothing to lend.
        #expect(lender.needsShares && lender.shares(for: borrower.sharesKey) == nil)
        _ = lender.stepLoadFactor(tokens: 100)
        let key = borrower.sharesKey
        guard let shares = lender.shares(for: key) else {
            Issue.record("the lender's shares are worked out for the borrower's key")
            return
        }
        borrower.adoptShares(shares, for: key)
        #expect(!borrower.needsShares)
        #expect(borrower.settledExpectedImbalance().bitPattern == Self.freshImbalance(borrower).bitPattern)
        for tokens in [1.0, 64, 3_840] {
            #expect(borrower.stepLoadFactor(tokens: tokens).bitPattern == alone.stepLoadFactor(tokens: tokens).bitPattern)
        }
    }

    /// A changed placement or popularity invalidates the lent shares: a routing holding another
    /// placement, or an equal popularity built apart (copies only: the check is O(1)), neither
    /// lends nor takes them.
    @Test func aChangedPlacementOrPopularityIsNotLentTo() {
        var traffic = ExpertTraffic(shape: Self.shape, seed: 4)
        let placement = ExpertPlacement.greedy(popularity: traffic.popularity, dies: 8, slotsPerDie: 9)
        var lender = ExpertRouting(popularity: traffic.popularity, dies: 8, slotsPerDie: 9, seed: 1, placement: placement)
        _ = lender.stepLoadFactor(tokens: 100)

        var moved = ExpertRouting(popularity: traffic.popularity, dies: 8, slotsPerDie: 9, seed: 2, placement: placement)
        moved.setPlacement(.roundRobin(experts: 64, layers: 6, dies: 8, slotsPerDie: 9))
        #expect(lender.shares(for: moved.sharesKey) == nil)
        moved.adoptShares(lender.shares(for: lender.sharesKey)!, for: lender.sharesKey)
        #expect(moved.needsShares, "shares for another key are not taken")
        #expect(moved.settledExpectedImbalance().bitPattern == Self.freshImbalance(moved).bitPattern)

        let apart = ExpertPopularity(layers: traffic.popularity.layers.map { Array($0) + [] })
        let rebuilt = ExpertRouting(popularity: apart, dies: 8, slotsPerDie: 9, seed: 2, placement: placement)
        #expect(apart == traffic.popularity && lender.shares(for: rebuilt.sharesKey) == nil)

        // After a drift the lender's shares are stale: it lends nothing until it works them out.
        traffic.advanceDrift(seconds: 30)
        lender.setPopularity(traffic.popularity)
        var drifted = ExpertRouting(popularity: traffic.popularity, dies: 8, slotsPerDie: 9, seed: 3, placement: placement)
        #expect(lender.shares(for: drifted.sharesKey) == nil)
        _ = lender.stepLoadFactor(tokens: 10)
        let key = drifted.sharesKey
        drifted.adoptShares(lender.shares(for: key)!, for: key)
        #expect(!drifted.needsShares && drifted.settledExpectedImbalance().bitPattern == Self.freshImbalance(drifted).bitPattern)
    }

    /// A swap whose load phase disables no slot serves from the old placement itself: handing the
    /// routing a copy of the placement already serving keeps its worked-out shares (they are a
    /// function of the serving placement and popularity alone); any other serving placement
    /// leaves them to be worked out afresh.
    @Test func theSameServingPlacementKeepsItsShares() {
        let traffic = ExpertTraffic(shape: Self.shape, seed: 5)
        let old = ExpertPlacement.greedy(popularity: traffic.popularity, dies: 8, slotsPerDie: 9)
        let target = ExpertPlacement.roundRobin(experts: 64, layers: 6, dies: 8, slotsPerDie: 9)
        var routing = ExpertRouting(popularity: traffic.popularity, dies: 8, slotsPerDie: 9, seed: 1, placement: old)
        _ = routing.stepLoadFactor(tokens: 100)
        // The prefetch ends: the target placement, still served from the old one.
        routing.setPlacement(target, serving: old)
        #expect(!routing.needsShares)
        #expect(routing.expectedImbalance.bitPattern == Self.freshImbalance(routing).bitPattern)
        // An equal placement built apart is not known to be the same: worked out afresh.
        routing.setPlacement(target, serving: ExpertPlacement(dies: 8, slotsPerDie: 9, layers: old.layers))
        #expect(routing.needsShares)
        #expect(routing.settledExpectedImbalance().bitPattern == Self.freshImbalance(routing).bitPattern)
        // The load ends: the target serves.
        routing.setPlacement(target)
        #expect(routing.needsShares)
        #expect(routing.settledExpectedImbalance().bitPattern == Self.freshImbalance(routing).bitPattern)
    }

    /// Through the expert system: after each drift the prefill TEs holding one placement (the
    /// static one they start from) lend one another their shares, TEs that re-planned on their own
    /// counts hold their own placements, and every TE's expected imbalance is the one worked
    /// out afresh for its serving placement (swaps included) and popularity.
    @Test func expertSystemSharesAreTheFreshOnesAcrossDriftsAndSwaps() {
        let cost = CostModel(model: .deepSeekR1, hardware: .ascend910C)
        let prefill = ExpertSystem.Host(dies: 32, slotsPerDie: 9, cost: cost, decodes: false)
        let decode = ExpertSystem.Host(dies: 288, slotsPerDie: 1, cost: cost, decodes: true)
        // Off: the operator's rebalance is the only plan (each TE's on its own counts).
        let experts = ExpertSystem(mode: .off, intervalSeconds: 60, topK: 8)
        experts.start(shape: ModelSpecShape(moeLayers: 58, experts: 256), seed: 1, skewed: true,
                      hosts: [prefill, prefill, prefill, decode])
        func sharePlacement(_ a: Int, _ b: Int) -> Bool {
            experts.routing(of: a)!.placement.isCopy(of: experts.routing(of: b)!.placement)
        }
        #expect(sharePlacement(0, 2))
        var queue = EngineEventQueue()
        func checkFresh(_ when: String) {
            for i in 0..<4 {
                let routing = experts.routing(of: i)!
                #expect(!routing.needsShares, "TE \(i) \(when)")
                #expect(routing.expectedImbalance.bitPattern == Self.freshImbalance(routing).bitPattern, "TE \(i) \(when)")
            }
        }
        var now: SimTime = 0
        for t in 1...12 {
            now = 15 * Double(t)
            _ = experts.tick(now: now, queue: &queue)
            if t == 4 {
                // Every TE plans on its own counts (tokens differ per TE, so do the counts).
                #expect(experts.rebalanceNow(now: now, queue: &queue).started == 4)
            }
            while let time = queue.peekTime(), time <= now, let (_, event) = queue.popNext() {
                if case .expertSwap(let i) = event { _ = experts.advanceSwap(i, now: time, queue: &queue) }
            }
            // Tokens in proportions that differ per TE and tick, so do the TEs' collected counts.
            for i in 0..<4 { _ = experts.loadFactor(i, tokens: Double(500 * (i + 1) * (t % (i + 2) + 1))) }
            checkFresh("at \(now)")
        }
        #expect(!sharePlacement(0, 2))
    }

    /// A ranking started from any hint (the last ranking's, another layer's, garbage, none) gives
    /// out the loads as the ranking from scratch does, and leaves its own order as the next hint.
    @Test func rankingFromAnyHintIsTheRankingFromScratch() {
        let traffic = ExpertTraffic(shape: Self.shape, seed: 6)
        let shapes = traffic.layerShapes
        let counts = shapes.map { loads in (loads.lastIndex { $0 != loads.last! } ?? -1) + 1 }
        var rng = RandomStreams(seed: 7).stream("ranking-hints")
        var scores = (0..<(6 * 64)).map { _ in Normal.standard(using: &rng) }
        var carried: [Int32] = []
        for step in 0..<30 {
            // Small drift steps, then a jump (a mix change), then ties.
            for i in scores.indices { scores[i] += (step == 10 ? 2 : 0.1) * Normal.standard(using: &rng) }
            if step == 20 { for i in scores.indices where i % 5 == 0 { scores[i] = 0.5 } }
            let want = ExpertTraffic.ranked(shapes, counts: counts, scores: scores, experts: 64)
            let got = ExpertTraffic.ranked(shapes, counts: counts, scores: scores, experts: 64, orders: &carried)
            #expect(got.layers.map { $0.map(\.bitPattern) } == want.layers.map { $0.map(\.bitPattern) }, "step \(step)")
            #expect(carried.count == 6 * 64)
            // Repeated experts and ids past the layer's.
            var garbage: [Int32] = (0..<(6 * 64)).map { (i: Int) -> Int32 in Int32(i % 7 == 0 ? 3 : (i * 13) % 80) }
            let fromGarbage = ExpertTraffic.ranked(shapes, counts: counts, scores: scores, experts: 64, orders: &garbage)
            #expect(fromGarbage == want, "step \(step): garbage hint")
        }
    }

    /// The planner's sort from a hint puts the experts tied on the coldest load last, by id, and
    /// the others hottest first: the order of the plain sort, whatever the hint.
    @Test func hottestFirstFromAHintIsThePlainOrder() {
        var rng = RandomStreams(seed: 8).stream("coldest-ties")
        for trial in 0..<300 {
            let n = rng.int(in: 2...300)
            let body = [0.25, 0, -0.0, 1][trial % 4]
            let load: [Double] = (0..<n).map { _ in rng.int(in: 0...4) == 0 ? body + rng.uniform() * 10 : body }
            var want: [Int32] = []
            load.withUnsafeBufferPointer { _ = ExpertPlacement.hottestFirst(load: $0, into: &want) }
            var hint = (0..<Int32(n)).map { $0 }
            switch trial % 3 {
            case 0: hint = want
            case 1: for i in stride(from: n - 1, to: 0, by: -1) { hint.swapAt(i, rng.int(in: 0...i)) }
            default: hint[0] = hint[n - 1]  // not a permutation
            }
            var got: [Int32] = []
            let strict = load.withUnsafeBufferPointer {
                ExpertPlacement.hottestFirst(load: $0, into: &got, from: hint, permutation: trial % 3 != 2)
            }
            #expect(strict && got == want, "trial \(trial)")
        }
    }

    /// The coldest load is found four lanes at a time: with +0 and −0 both in a layer's body (they
    /// compare equal, so either is the coldest) and with a NaN anywhere (the plain sort's order
    /// then, not a strict one), the order is still the plain sort's.
    @Test func hottestFirstFromAHintTakesEitherZeroAsTheColdest() {
        var rng = RandomStreams(seed: 9).stream("signed-zeros")
        for trial in 0..<200 {
            let n = rng.int(in: 2...70)
            var load: [Double] = (0..<n).map { _ in
                switch rng.int(in: 0...5) {
                case 0: rng.uniform() * 3
                case 1, 2: -0.0
                default: 0.0
                }
            }
            if trial % 5 == 4 { load[rng.int(in: 0...(n - 1))] = .nan }
            var want: [Int32] = []
            let plainStrict = load.withUnsafeBufferPointer { ExpertPlacement.hottestFirst(load: $0, into: &want) }
            var hint = (0..<Int32(n)).map { $0 }
            for i in stride(from: n - 1, to: 0, by: -1) { hint.swapAt(i, rng.int(in: 0...i)) }
            var got: [Int32] = []
            let strict = load.withUnsafeBufferPointer {
                ExpertPlacement.hottestFirst(load: $0, into: &got, from: hint, permutation: true)
            }
            #expect(got == want && strict == plainStrict && strict == !load.contains(where: \.isNaN), "trial \(trial)")
        }
    }
}
