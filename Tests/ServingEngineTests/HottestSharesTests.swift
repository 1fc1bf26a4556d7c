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

    /// The hottest die is looked for four dies at a time when there are eight or more: whichever
    /// die is hottest (in the first four, in a later group of four, in the dies left over), tied
    /// or not, the share is the plain walk's.
    @Test func hottestDieIsFoundWhereverItSits() {
        for dies in [7, 8, 9, 12, 13] {
            // Two slots per die: expert e on dies e and (e + 1) mod dies, so each die sums two shares.
            let row = (0..<dies).map { [$0, ($0 + 1) % dies] }
            let placement = ExpertPlacement(dies: dies, slotsPerDie: 2, layers: [row, row])
            #expect(!placement.oneSlotPerDie)
            for hot in 0..<dies {
                var alone = [Double](repeating: 1, count: dies)
                alone[hot] = 5
                var tied = [Double](repeating: 0.5, count: dies)
                tied[hot] = 3
                tied[(hot + 3) % dies] = 3
                let counts = ExpertPopularity(layers: [alone, tied])
                #expect(placement.hottestShares(popularity: counts).map(\.bitPattern)
                        == Self.reference(placement, counts).map(\.bitPattern), "\(dies) dies, hottest \(hot)")
            }
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

    /// A greedy plan of one slot per die is taken at its planner's word (no walk of its hosts):
    /// the word must be what the walk finds, on every population and with fewer, as many and more
    /// dies than experts.
    @Test func greedyOneSlotPlansCoverEveryDieOnceAsTheWalkFinds() {
        for pop in EPLBPlannerEquivalenceTests.populations() {
            for dies in [1, 7, 255, 256, 257, 288, 300] {
                let plan = ExpertPlacement.greedy(popularity: pop, dies: dies, slotsPerDie: 1)
                #expect(plan.oneSlotPerDie)
                #expect(plan.slotsCoverDiesOnce(), "\(dies) dies")
            }
        }
        // A ragged popularity (rows of other lengths) is checked by the walk as before.
        let ragged = ExpertPopularity(layers: [[3, 1, 2], [1, 1]])
        let plan = ExpertPlacement.greedy(popularity: ragged, dies: 3, slotsPerDie: 1)
        #expect(plan.oneSlotPerDie == plan.slotsCoverDiesOnce())
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

    /// ``DiePool/placeInTurn(_:from:load:hosts:)`` (a sorted queue of dies) places the primaries
    /// where one ``DiePool/leastLoaded()`` and ``DiePool/place(_:on:)`` per primary puts them:
    /// the same hosts in the same order, the same loads, free slots and tree afterwards. Loads
    /// with many ties (small integers, zeros, one equal body) and plain random ones.
    @Test func primariesPlacedInTurnGoWhereTheWalkPutsThem() {
        var rng = RandomStreams(seed: 14).stream("die-pool-turn")
        for trial in 0..<300 {
            let dies = rng.int(in: 1...40), slots = rng.int(in: 1...6), experts = rng.int(in: 1...80)
            let load: [Double] = (0..<experts).map { e in
                switch trial % 3 {
                case 0: Double(rng.int(in: 0...3))
                case 1: e < experts / 5 ? 1 + rng.uniform() * 9 : 0.75
                default: rng.uniform()
                }
            }
            let order = load.indices.sorted { load[$0] > load[$1] || (load[$0] == load[$1] && $0 < $1) }
                .map { Int32($0) }
            let start = rng.int(in: 0...min(dies, experts))
            var walked = DiePool(dies: dies, slotsPerDie: slots)
            var queued = DiePool(dies: dies, slotsPerDie: slots)
            let walkedHosts = LayerHosts(experts: experts, capacity: dies * slots)
            let queuedHosts = LayerHosts(experts: experts, capacity: dies * slots)
            load.withUnsafeBufferPointer { share in
                // The same start for both: the first `start` primaries on their own dies.
                for k in 0..<start {
                    let e = Int(order[k])
                    walkedHosts.append(k, to: e)
                    queuedHosts.append(k, to: e)
                    walked.place(share[e], on: k)
                    queued.place(share[e], on: k)
                }
                var placed = start
                while placed < order.count, let d = walked.leastLoaded() {
                    let e = Int(order[placed])
                    walkedHosts.append(d, to: e)
                    walked.place(share[e], on: d)
                    placed += 1
                }
                #expect(queued.placeInTurn(order, from: start, load: share, hosts: queuedHosts) == placed,
                        "trial \(trial)")
            }
            for e in 0..<experts {
                var a: [Int] = [], b: [Int] = []
                var node = walkedHosts.first(e)
                while node >= 0 { a.append(walkedHosts.die(node)); node = walkedHosts.next(node) }
                node = queuedHosts.first(e)
                while node >= 0 { b.append(queuedHosts.die(node)); node = queuedHosts.next(node) }
                #expect(a == b, "trial \(trial), expert \(e)")
            }
            #expect(walked.load.map(\.bitPattern) == queued.load.map(\.bitPattern))
            #expect(walked.hasFreeSlot == queued.hasFreeSlot)
            #expect(walked.leastLoaded() == queued.leastLoaded())
            #expect(walked.leastLoaded(excluding: [0]) == queued.leastLoaded(excluding: [0]))
        }
    }
}
