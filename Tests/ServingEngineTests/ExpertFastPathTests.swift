import Foundation
import SimKit
import Testing
@testable import ServingEngine

/// Issue 12's fast paths of the expert system, each checked bit for bit against the plain
/// computation it replaces, on random walks: reports must not move by one bit.
@Suite struct ExpertFastPathTests {
    /// The planner's most-load-per-replica queue (fresh experts in hottest-first order, replicated
    /// ones in a heap made with room up front) pops exactly what a max-queue of every placed
    /// expert's share pops, under random interleavings of pops and re-inserts, on rows with ties,
    /// zeros and negative zeros.
    @Test func mostLoadPerReplicaPopsWhatAMaxQueueOfEveryShareWould() {
        var rng = RandomStreams(seed: 12).stream("queue-walk")
        for trial in 0..<200 {
            let n = rng.int(in: 1...300)
            let ties = trial % 3 == 0
            let load: [Double] = (0..<n).map { e in
                if ties { return Double(rng.int(in: 0...3)) }
                if e % 17 == 0 { return e % 2 == 0 ? 0 : -0.0 }
                return rng.uniform() * 30
            }
            var order: [Int32] = []
            load.withUnsafeBufferPointer { _ = ExpertPlacement.hottestFirst(load: $0, into: &order) }
            let placed = rng.int(in: 0...n)
            // The reference: every placed expert's share in one array, the greatest popped.
            var reference = order.prefix(placed).map { ExpertShare(share: load[Int($0)], expert: Int($0)) }
            var replicas = [Int](repeating: 1, count: n)
            load.withUnsafeBufferPointer { buffer in
                var queue = MostLoadPerReplica(load: buffer, order: order, placedPrefix: placed)
                for _ in 0..<(2 * placed + 5) {
                    let got = queue.popMax()
                    let want = reference.indices.max { reference[$0] < reference[$1] }.map { reference.remove(at: $0) }
                    #expect(got?.expert == want?.expert, "trial \(trial)")
                    #expect(got?.share.bitPattern == want?.share.bitPattern, "trial \(trial)")
                    guard let top = got, rng.int(in: 0...3) > 0 else { continue }
                    // Back with one more replica's share, as the planner re-inserts it.
                    replicas[top.expert] += 1
                    let again = ExpertShare(share: load[top.expert] / Double(replicas[top.expert]), expert: top.expert)
                    queue.insert(again)
                    reference.append(again)
                }
            }
        }
    }

    /// Popularity is the layer shapes handed out by the mix's blended preferences plus the drift
    /// (the blend kept between mix changes, each ranking started from the last): the same bits as
    /// blending and sorting afresh on every step, along a walk of drift steps, closed-form
    /// stretches and mix changes.
    @Test func popularityIsTheShapesRankedByBlendPlusDriftBitForBit() {
        let shape = ModelSpecShape(moeLayers: 5, experts: 64)
        var traffic = ExpertTraffic(shape: shape, seed: 4)
        var rng = RandomStreams(seed: 5).stream("traffic-walk")
        for step in 0..<40 {
            switch rng.int(in: 0...3) {
            case 0: traffic.setMix(["chat": rng.uniform(), "reasoning": rng.uniform()])
            case 1: traffic.advanceDrift(steps: Double(rng.int(in: 1...5)), firstSeconds: 10, seconds: 30)
            default: traffic.advanceDrift(seconds: 30 * rng.uniform())
            }
            let want = Self.referencePopularity(traffic)
            #expect(traffic.popularity.layers.map { $0.map(\.bitPattern) } == want.map { $0.map(\.bitPattern) },
                    "step \(step)")
        }
    }

    /// The skew's layer shapes taken from the rows as made (before their shuffle) are the
    /// shuffled rows of ``ExpertPopularity/skewed(model:shape:using:)`` sorted by `>`, bit for bit,
    /// over seeds and shapes (mild and capped layers, small and large expert counts).
    @Test func skewLayerShapesAreTheShuffledRowsSortedBitForBit() {
        for seed in 0..<6 as Range<UInt64> {
            for (layers, experts) in [(58, 256), (7, 16), (3, 3)] {
                let model = ModelSpecShape(moeLayers: layers, experts: experts)
                var a = RandomStreams(seed: seed).stream("expert-popularity"), b = a
                let plain = ExpertPopularity.skewed(model: model, using: &b)
                #expect(ExpertPopularity.skewedLayerShapes(model: model, using: &a).map { $0.map(\.bitPattern) }
                        == plain.layers.map { $0.sorted(by: >).map(\.bitPattern) })
            }
        }
        #expect(!ExpertPopularity.isStrictlyOrderedHottestFirst([2, 1, 0]))
        #expect(!ExpertPopularity.isStrictlyOrderedHottestFirst([1, 2]))
        #expect(!ExpertPopularity.isStrictlyOrderedHottestFirst([2, .nan]))
        #expect(ExpertPopularity.isStrictlyOrderedHottestFirst([3, 1, 1, 0.5]))
    }

    /// The traffic's ranking as a planning hint (what the expert system's start plans begin
    /// from) is a permutation of every layer's experts, and the greedy plan from it is the plan
    /// from no hint, for one-slot and multi-slot dies.
    @Test func rankingHintIsAPermutationAndPlansTheSamePlacement() {
        let shape = ModelSpecShape(moeLayers: 6, experts: 64)
        var traffic = ExpertTraffic(shape: shape, seed: 9)
        for round in 0..<2 {
            let hint = traffic.rankingHint
            #expect(hint.count == shape.moeLayers)
            for row in hint { #expect(row.sorted() == (0..<Int32(shape.experts)).map { $0 }, "round \(round)") }
            for (dies, slots) in [(64, 1), (80, 1), (16, 5), (8, 9)] {
                var orders = PlanningOrders()
                orders.layers = hint
                let hinted = ExpertPlacement.greedy(popularity: traffic.popularity, dies: dies, slotsPerDie: slots, orders: &orders)
                let plain = ExpertPlacement.greedy(popularity: traffic.popularity, dies: dies, slotsPerDie: slots)
                #expect(hinted == plain, "round \(round), \(dies) dies × \(slots)")
            }
            traffic.advanceDrift(seconds: 30)
        }
    }

    /// A mix change followed by a drift stretch, ranked once (the expert system's drift update):
    /// the same mix, drift and popularity bits as ``ExpertTraffic/setMix(arrivals:)`` then
    /// ``ExpertTraffic/advanceDrift(steps:firstSeconds:seconds:)``, with and without a step
    /// (no drift, no stretch) and with weights that leave the mix as it was.
    @Test func mixThenDriftRankedOnceEqualsSetMixThenAdvanceDrift() {
        let shape = ModelSpecShape(moeLayers: 5, experts: 64)
        var rng = RandomStreams(seed: 6).stream("mix-drift-walk")
        for skewed in [true, false] {
            var once = ExpertTraffic(shape: shape, seed: 7, skewed: skewed)
            var twice = once
            for step in 0..<30 {
                let arrivals = rng.int(in: 0...4) == 0 ? [0.0, 0.0] : [Double(rng.int(in: 0...9)), Double(rng.int(in: 0...9))]
                let steps = Double(rng.int(in: 0...3)), first = step % 5 == 0 ? 0 : 30 * rng.uniform()
                once.setMix(arrivals: arrivals, thenAdvanceDrift: steps, firstSeconds: first, seconds: 30)
                twice.setMix(arrivals: arrivals)
                twice.advanceDrift(steps: steps, firstSeconds: first, seconds: 30)
                #expect(once.mix == twice.mix, "step \(step)")
                #expect(once.drift.map(\.bitPattern) == twice.drift.map(\.bitPattern), "step \(step)")
                #expect(once.popularity.layers.map { $0.map(\.bitPattern) } == twice.popularity.layers.map { $0.map(\.bitPattern) },
                        "step \(step)")
                #expect(once.popularity.layers.map { $0.map(\.bitPattern) } == Self.referencePopularity(once).map { $0.map(\.bitPattern) },
                        "step \(step)")
            }
        }
    }

    /// The popularity from its definition: per layer, each class's preferences (the profile's
    /// ranking, since a class alone ranks by them) blended over the weights' norm plus the drift,
    /// the experts sorted by that score with the standard library, the layer's loads given out
    /// in that order.
    static func referencePopularity(_ traffic: ExpertTraffic) -> [[Double]] {
        let experts = traffic.shape.experts
        let weighted = traffic.mix.sorted { $0.key < $1.key }
        let norm = weighted.reduce(0) { $0 + $1.value * $1.value }.squareRoot()
        let preferences = traffic.preferencesForTesting
        return (0..<traffic.shape.moeLayers).map { l in
            var score = [Double](repeating: 0, count: experts)
            for (name, weight) in weighted {
                for e in 0..<experts { score[e] += weight / norm * preferences[name]![l * experts + e] }
            }
            for e in 0..<experts { score[e] += traffic.drift[l * experts + e] }
            let order = (0..<experts).sorted { score[$0] > score[$1] || (score[$0] == score[$1] && $0 < $1) }
            var row = [Double](repeating: 0, count: experts)
            for (rank, e) in order.enumerated() { row[e] = traffic.layerShapes[l][rank] }
            return row
        }
    }

    /// The front of a partial sort is the front of the full sort, the rest the other keys, for
    /// every size and count, with many equal loads (ties go by id).
    @Test func sortSmallestGivesTheFullSortsFront() {
        var rng = RandomStreams(seed: 23).stream("partial-sort")
        for trial in 0..<400 {
            let n = rng.int(in: 0...300), k = rng.int(in: 0...(n + 2))
            let distinct = trial % 3 == 0 ? 3 : 1_000
            let keys = (0..<n).map { HotterFirst(key: UInt64(rng.int(in: 0...distinct)), id: UInt32($0)) }
            var full = keys, partial = keys
            full.withUnsafeMutableBufferPointer { HotterFirst.sort($0) }
            partial.withUnsafeMutableBufferPointer { HotterFirst.sortSmallest($0, count: k) }
            let front = min(k, n)
            #expect(partial.prefix(front).map(\.id) == full.prefix(front).map(\.id), "trial \(trial): n \(n), k \(k)")
            #expect(Set(partial.dropFirst(front).map(\.id)) == Set(full.dropFirst(front).map(\.id)), "trial \(trial)")
        }
    }

    /// The nearly-sorted partial sort (an insertion pass within a budget, else the partial sort)
    /// leaves the full sort's front, from nearly sorted and from shuffled starts, whatever the
    /// budget (zero, small, unbounded).
    @Test func sortSmallestNearlySortedGivesTheFullSortsFront() {
        var rng = RandomStreams(seed: 29).stream("nearly-partial-sort")
        for trial in 0..<300 {
            let n = rng.int(in: 0...200), k = rng.int(in: 0...n)
            var keys = (0..<n).map { HotterFirst(key: UInt64(rng.int(in: 0...(trial % 2 == 0 ? 4 : 1_000))), id: UInt32($0)) }
            var full = keys
            full.withUnsafeMutableBufferPointer { HotterFirst.sort($0) }
            if trial % 3 == 0 {
                keys = full
                for _ in 0..<rng.int(in: 0...5) where n > 1 { keys.swapAt(rng.int(in: 0...(n - 1)), rng.int(in: 0...(n - 1))) }
            }
            let budget = [0, 3, n, .max][trial % 4]
            keys.withUnsafeMutableBufferPointer { HotterFirst.sortSmallestNearlySorted($0, count: k, movesBudget: budget) }
            #expect(keys.prefix(k).map(\.id) == full.prefix(k).map(\.id), "trial \(trial): n \(n), k \(k), budget \(budget)")
            #expect(Set(keys.map(\.id)) == Set(full.map(\.id)), "trial \(trial)")
        }
    }

    /// The die pool answers an exclusion from its root when the root hosts none of the excluded
    /// expert's replicas (loads ordered): the same die as taking the hosts out of the tournament,
    /// along random walks of placements and load changes with ties and full dies.
    @Test func orderedExclusionPicksTheDieTheWalkPicks() {
        var rng = RandomStreams(seed: 13).stream("pool-walk")
        for trial in 0..<300 {
            let dies = rng.int(in: 1...40), slots = rng.int(in: 1...4), experts = rng.int(in: 1...20)
            var pool = DiePool(dies: dies, slotsPerDie: slots)
            let hosts = LayerHosts(experts: experts, capacity: dies * slots)
            let ties = trial % 2 == 0
            while pool.hasFreeSlot {
                let e = rng.int(in: 0...(experts - 1))
                let fast = pool.leastLoaded(excludingHostsOf: e, in: hosts, ordered: true)
                let walked = pool.leastLoaded(excludingHostsOf: e, in: hosts, ordered: false)
                #expect(fast == walked, "trial \(trial)")
                guard let d = walked else {
                    // Every free die hosts e already: give another expert the least-loaded one.
                    guard let free = pool.leastLoaded() else { break }
                    pool.place(1, on: free)
                    continue
                }
                // A host's load falls or rises as it would when the expert gains a replica.
                var node = hosts.first(e)
                while node >= 0 {
                    pool.adjust(ties ? -1 : -rng.uniform(), on: hosts.die(node))
                    node = hosts.next(node)
                }
                hosts.append(d, to: e)
                pool.place(ties ? Double(rng.int(in: 0...2)) : rng.uniform() * 5, on: d)
            }
        }
    }

    /// The layer writer's one-host fast path and a swap's serving placement write the per-slot
    /// arrays as a placement derives them from its hosts: their hottest shares equal, bit for bit,
    /// those of the same hosts given as nested rows.
    @Test func writtenSlotArraysAreTheDerivedOnes() {
        let shape = ModelSpecShape(moeLayers: 4, experts: 64)
        var traffic = ExpertTraffic(shape: shape, seed: 21)
        for (dies, slots) in [(72, 1), (8, 9), (5, 20)] {
            let old = ExpertPlacement.greedy(popularity: traffic.popularity, dies: dies, slotsPerDie: slots)
            traffic.advanceDrift(seconds: 600)
            let target = ExpertPlacement.greedy(popularity: traffic.popularity, dies: dies, slotsPerDie: slots)
            let (serving, _) = EPLBController.servingDuringSwap(from: old, to: target)
            for placement in [old, target, serving] {
                let nested = ExpertPlacement(dies: dies, slotsPerDie: slots, layers: placement.layers)
                #expect(nested == placement)
                #expect(placement.hottestShares(popularity: traffic.popularity).map(\.bitPattern)
                        == nested.hottestShares(popularity: traffic.popularity).map(\.bitPattern), "\(dies) × \(slots)")
            }
        }
    }

    /// The planner's insertion sort (elements already in place passed over with one comparison,
    /// the full sort taking over past its budget) sorts like the standard library, from sorted,
    /// nearly sorted, reversed and shuffled starts, with ties on the load key broken by id.
    @Test func nearlySortedSortOrdersLikeTheStandardSort() {
        var rng = RandomStreams(seed: 23).stream("sort-walk")
        for trial in 0..<300 {
            let n = rng.int(in: 0...300)
            var keys = (0..<n).map { HotterFirst(key: UInt64(rng.int(in: 0...(trial % 2 == 0 ? 20 : 1_000_000))),
                                                 id: UInt32($0)) }
            let want = keys.sorted { $0 < $1 }
            switch trial % 4 {
            case 0: keys = want
            case 1:
                keys = want
                for _ in 0..<rng.int(in: 0...20) where n > 1 { keys.swapAt(rng.int(in: 0...(n - 1)), rng.int(in: 0...(n - 1))) }
            case 2: keys = want.reversed()
            default: for i in stride(from: n - 1, to: 0, by: -1) { keys.swapAt(i, rng.int(in: 0...i)) }
            }
            let budget = [0, n, 3 * n, .max][rng.int(in: 0...3)]
            keys.withUnsafeMutableBufferPointer { HotterFirst.sortNearlySorted($0, movesBudget: budget) }
            #expect(keys.map(\.id) == want.map(\.id), "trial \(trial)")
        }
    }
}
