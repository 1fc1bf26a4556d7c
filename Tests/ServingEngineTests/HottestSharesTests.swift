import SimKit
import Testing
@testable import ServingEngine

/// ``ExpertPlacement/hottestShares(popularity:)`` walks per-slot arrays derived once per placement
/// (issue 12). Its figures feed the step's load factor and EPLB's decisions, so they must be the
/// very bits of the plain walk: expert by expert, host by host, each replica's share
/// `load / replicas` added to its die and to the layer's total. The plain walk is written here
/// over the nested rows and compared bit for bit on greedy, round-robin, swap-time (some experts
/// with no host) and hand-made placements.
@Suite struct HottestSharesTests {
    static func reference(_ placement: ExpertPlacement, _ popularity: ExpertPopularity) -> [Double] {
        placement.layers.enumerated().map { l, row in
            var loads = [Double](repeating: 0, count: placement.dies)
            var total = 0.0
            for (e, hosts) in row.enumerated() where e < popularity.layers[l].count {
                for d in hosts {
                    let share = popularity.layers[l][e] / Double(hosts.count)
                    loads[d] += share
                    total += share
                }
            }
            return total > 0 ? loads.max()! / total : 1 / Double(placement.dies)
        }
    }

    static func placements(_ pop: ExpertPopularity) -> [ExpertPlacement] {
        var out: [ExpertPlacement] = []
        for (dies, slots) in [(288, 1), (32, 9), (7, 3), (10, 20), (300, 2)] {
            out.append(.greedy(popularity: pop, dies: dies, slotsPerDie: slots))
            out.append(.roundRobin(experts: pop.experts, layers: pop.layers.count, dies: dies, slotsPerDie: slots))
        }
        return out
    }

    @Test func slotWalkGivesTheBitsOfThePlainWalk() {
        for pop in EPLBPlannerEquivalenceTests.populations() {
            var checked = 0
            for placement in Self.placements(pop) {
                // Under its own popularity and under another one (a plan is weighed on new counts).
                for counts in [pop, .uniform(layers: pop.layers.count, experts: pop.experts)] {
                    let fast = placement.hottestShares(popularity: counts)
                    let slow = Self.reference(placement, counts)
                    #expect(fast.map(\.bitPattern) == slow.map(\.bitPattern))
                    checked += 1
                }
            }
            #expect(checked == 20)
        }
    }

    /// The one-slot-per-die walk (a decode TE's placement: no per-die sums) is taken exactly when
    /// every layer puts one slot on each die; the comparison above then covers it bit for bit.
    @Test func oneSlotPerDieWalkIsTakenOnlyWhenEveryDieHoldsOneSlot() {
        let pop = EPLBPlannerEquivalenceTests.populations()[0]
        #expect(ExpertPlacement.greedy(popularity: pop, dies: 288, slotsPerDie: 1).oneSlotPerDie)
        #expect(ExpertPlacement.roundRobin(experts: pop.experts, layers: pop.layers.count, dies: 288,
                                           slotsPerDie: 1).oneSlotPerDie)
        #expect(!ExpertPlacement.greedy(popularity: pop, dies: 32, slotsPerDie: 9).oneSlotPerDie)
        // Three dies, three slots per layer, but die 0 twice in the second layer; and a layer with
        // a die left empty.
        let twice = ExpertPlacement(dies: 3, slotsPerDie: 1, layers: [[[0], [1], [2]], [[0], [0], [2]]])
        #expect(!twice.oneSlotPerDie)
        let empty = ExpertPlacement(dies: 3, slotsPerDie: 1, layers: [[[0], [1], []]])
        #expect(!empty.oneSlotPerDie)
        let exact = ExpertPlacement(dies: 3, slotsPerDie: 1, layers: [[[2], [0], [1]], [[1], [2], [0]]])
        #expect(exact.oneSlotPerDie)
        let counts = ExpertPopularity(layers: [[3, 1, 2], [0.5, 0.25, 4]])
        #expect(exact.hottestShares(popularity: counts).map(\.bitPattern)
                == Self.reference(exact, counts).map(\.bitPattern))
    }

    /// Experts with no host (a swap's serving placement), with several hosts on one die, and a
    /// popularity row longer than the placement's experts; and the same placement rebuilt from its
    /// rows compares equal and gives the same figures.
    @Test func unevenPlacementsAndRebuiltOnes() {
        let rows: [[[Int]]] = [
            [[0], [], [1, 2, 0], [2, 2], [1]],
            [[], [], [], [], []],
            [[3], [0, 1, 2, 3], [1], [], [0, 0, 0]],
        ]
        let placement = ExpertPlacement(dies: 4, slotsPerDie: 3, layers: rows)
        let pop = ExpertPopularity(layers: [[5, 1, 3, 0.5, 2, 9], [1, 1, 1, 1, 1, 1], [0.25, 7, 3, 2, 1, 4]])
        let fast = placement.hottestShares(popularity: pop)
        #expect(fast.map(\.bitPattern) == Self.reference(placement, pop).map(\.bitPattern))
        #expect(fast[1] == 0.25)                               // no load placed: 1 / dies
        let rebuilt = ExpertPlacement(dies: 4, slotsPerDie: 3, layers: placement.layers)
        #expect(rebuilt == placement)
        #expect(rebuilt.hottestShares(popularity: pop) == fast)
        #expect(ExpertPlacement(dies: 4, slotsPerDie: 3, layers: [rows[0], rows[2], rows[1]]) != placement)
    }

    /// A swap's serving placement (fewer hosts for the experts that move) derives its own slots.
    @Test func servingDuringASwap() {
        let pops = EPLBPlannerEquivalenceTests.populations()
        let old = ExpertPlacement.greedy(popularity: pops[1], dies: 32, slotsPerDie: 9)
        let target = ExpertPlacement.greedy(popularity: pops[3], dies: 32, slotsPerDie: 9)
        let (serving, disabled) = EPLBController.servingDuringSwap(from: old, to: target)
        #expect(!disabled.isEmpty)
        for counts in [pops[1], pops[3]] {
            #expect(serving.hottestShares(popularity: counts).map(\.bitPattern)
                    == Self.reference(serving, counts).map(\.bitPattern))
        }
    }
}

/// ``DiePool``'s tournament walk carries the winner's load up from the changed leaf (issue 12):
/// random places, load changes (up and down, ties included) and exclusions, checked after every
/// step against the plain scan of ``ReferencePlanners/Pool``.
@Suite struct DiePoolWalkTests {
    @Test func randomEditsPickTheLeastLoadedFreeDieAsTheScanDoes() {
        var rng = RandomStreams(seed: 12).stream("die-pool")
        for (dies, slots) in [(1, 3), (2, 2), (5, 2), (32, 9), (33, 1), (7, 4)] {
            var pool = DiePool(dies: dies, slotsPerDie: slots)
            var scan = ReferencePlanners.Pool(dies: dies, slotsPerDie: slots)
            for _ in 0..<400 {
                let excluded = (0..<rng.int(in: 0...2)).map { _ in rng.int(in: 0...(dies - 1)) }
                #expect(pool.leastLoaded(excluding: excluded) == scan.leastLoaded(excluding: excluded))
                #expect(pool.leastLoaded() == scan.leastLoaded(excluding: []))
                let d = rng.int(in: 0...(dies - 1))
                // Small integer loads, so that ties are common.
                let amount = Double(rng.int(in: 0...3))
                if rng.int(in: 0...2) == 0 {
                    pool.adjust(-amount, on: d)
                    scan.adjust(-amount, on: d)
                } else if let free = scan.leastLoaded(excluding: []) {
                    pool.place(amount, on: free)
                    scan.place(amount, on: free)
                }
                #expect(pool.hasFreeSlot == scan.hasFreeSlot)
            }
            #expect(pool.load == scan.load)
        }
    }
}
