import SimKit
import Testing
@testable import ServingEngine

/// The planners were rewritten for speed (issue 12: a tournament tree of dies instead of a lazy
/// heap, reused buffers, an index sort): the placements must be exactly the ones the first
/// implementation made, or reports would change. The first implementation is kept here as the
/// reference and both are run on skewed, drifted, uniform (all ties) and zero-load rows, on the
/// superpod's shapes and on odd ones (fewer slots than experts, more dies than slots need).
@Suite(.timeLimit(.minutes(10)), .cpuBound) struct EPLBPlannerEquivalenceTests {
    /// (600, 1): a one-slot-per-die layer with more redundant replicas than experts (its
    /// waiting heap grows deep, and experts come back for a third and fourth replica).
    static let shapes = [(288, 1), (32, 9), (7, 3), (10, 20), (300, 2), (1, 300), (40, 0), (600, 1)]

    static func populations() -> [ExpertPopularity] {
        let shape = ModelSpecShape(moeLayers: 6, experts: 256)
        var pops: [ExpertPopularity] = [.uniform(layers: 3, experts: 256)]
        for seed: UInt64 in [1, 2, 3] {
            var traffic = ExpertTraffic(shape: shape, seed: seed)
            pops.append(traffic.popularity)
            traffic.setMix(["reasoning": 0.8, "chat": 0.2])
            traffic.advanceDrift(seconds: 30)
            pops.append(traffic.popularity)
        }
        // Ties between hot experts, zeros, and a row where every expert but one is idle.
        var rng = RandomStreams(seed: 9).stream("ties")
        var rows: [[Double]] = []
        for _ in 0..<4 { rows.append((0..<256).map { _ in Double(rng.int(in: 0...4)) }) }
        rows.append((0..<256).map { $0 == 17 ? 256 : 0 })
        // Signs the radix sort does not take (it falls back to comparing): −0 ties with +0.
        var signed = [Double](repeating: 0, count: 256)
        for e in 0..<256 where e % 3 != 1 { signed[e] = e % 3 == 0 ? -0.0 : -Double(e % 7) }
        rows.append(signed)
        pops.append(ExpertPopularity(layers: rows))
        return pops
    }

    @Test func greedyPlansAreTheReferencePlans() {
        for pop in Self.populations() {
            for (dies, slots) in Self.shapes {
                let plan = ExpertPlacement.greedy(popularity: pop, dies: dies, slotsPerDie: slots)
                let reference = pop.layers.map { ReferencePlanners.greedyLayer(load: $0, dies: dies, slotsPerDie: slots) }
                #expect(plan.layers == reference, "greedy differs on \(dies) dies × \(slots) slots")
            }
        }
    }

    /// The greedy planner's sorts may start from the last plan's orders (issue 12): whatever those
    /// hold (nothing, a similar load's, another load's, garbage), the plan is the reference plan.
    @Test func greedyPlansStartedFromAnyOrderAreTheReferencePlans() {
        let pops = Self.populations()
        var carried = PlanningOrders()
        for (i, pop) in pops.enumerated() {
            for (dies, slots) in Self.shapes {
                let reference = pop.layers.map { ReferencePlanners.greedyLayer(load: $0, dies: dies, slotsPerDie: slots) }
                // Carried over from every plan before (similar and unrelated loads, other shapes).
                let plan = ExpertPlacement.greedy(popularity: pop, dies: dies, slotsPerDie: slots, orders: &carried)
                #expect(plan.layers == reference, "carried orders: greedy differs on \(dies) × \(slots), population \(i)")
                // The same plan again: the orders are now exactly sorted.
                let again = ExpertPlacement.greedy(popularity: pop, dies: dies, slotsPerDie: slots, orders: &carried)
                #expect(again.layers == reference)
            }
            // Reversed, not a permutation, and the wrong length.
            for bad in [pop.layers.map { Array((0..<Int32($0.count)).reversed()) },
                        pop.layers.map { Array(repeating: Int32(3), count: $0.count) },
                        pop.layers.map { _ in [Int32(0), 1] }] {
                var orders = PlanningOrders()
                orders.layers = bad
                let plan = ExpertPlacement.greedy(popularity: pop, dies: 32, slotsPerDie: 9, orders: &orders)
                let reference = pop.layers.map { ReferencePlanners.greedyLayer(load: $0, dies: 32, slotsPerDie: 9) }
                #expect(plan.layers == reference, "bad orders: greedy differs on population \(i)")
            }
        }
    }

    @Test func deepSeekPlansAreTheReferencePlans() {
        for pop in Self.populations() {
            for (dies, slots) in Self.shapes {
                let plan = DeepSeekEPLBPlanner().plan(popularity: pop, dies: dies, slotsPerDie: slots)
                let reference = pop.layers.map { ReferencePlanners.replicateThenPack(load: $0, dies: dies, slotsPerDie: slots) }
                #expect(plan.layers == reference, "deepseek differs on \(dies) dies × \(slots) slots")
            }
        }
    }

    @Test func theDiePoolPicksTheLeastLoadedFreeDieOutsideTheExcluded() {
        var pool = DiePool(dies: 5, slotsPerDie: 2)
        #expect(pool.leastLoaded(excluding: []) == 0)
        pool.place(3, on: 0)
        pool.place(1, on: 1)
        #expect(pool.leastLoaded(excluding: []) == 2)          // 2, 3, 4 are empty: lowest id
        #expect(pool.leastLoaded(excluding: [2, 3]) == 4)
        pool.place(1, on: 2); pool.place(1, on: 3); pool.place(1, on: 4)
        #expect(pool.leastLoaded(excluding: [1]) == 2)         // ties at 1: lowest id not excluded
        pool.place(1, on: 1)                                    // die 1 is full now
        #expect(pool.leastLoaded(excluding: []) == 2)
        pool.adjust(-5, on: 0)                                  // the excluded-then-restored die wins
        #expect(pool.leastLoaded(excluding: [0]) == 2)
        #expect(pool.leastLoaded(excluding: []) == 0)
        for d in [0, 2, 3, 4] { pool.place(1, on: d) }
        #expect(!pool.hasFreeSlot)
        #expect(pool.leastLoaded(excluding: []) == nil)
    }
}

/// The planners as specified, written the plainest way (linear scans instead of the lazy heaps
/// the first implementation used, which pick the same dies and experts): the least-loaded die
/// with a free slot, lowest id on ties; the expert with the most load per replica, lowest id on
/// ties; the same floating-point operations in the same order.
enum ReferencePlanners {
    struct Pool {
        var load: [Double]
        var free: [Int]
        init(dies: Int, slotsPerDie: Int) {
            load = Array(repeating: 0, count: dies)
            free = Array(repeating: slotsPerDie, count: dies)
        }
        var hasFreeSlot: Bool { free.contains { $0 > 0 } }
        func leastLoaded(excluding excluded: [Int]) -> Int? {
            var best: Int?
            for d in load.indices where free[d] > 0 && !excluded.contains(d) {
                if best == nil || load[d] < load[best!] { best = d }
            }
            return best
        }
        mutating func place(_ share: Double, on die: Int) {
            load[die] += share
            free[die] -= 1
        }
        mutating func adjust(_ delta: Double, on die: Int) { load[die] += delta }
    }

    /// The active expert with the largest share (lowest id on ties).
    static func hottest(_ share: [Double?]) -> Int? {
        var best: Int?
        for e in share.indices {
            guard let s = share[e] else { continue }
            if best == nil || s > share[best!]! { best = e }
        }
        return best
    }

    static func greedyLayer(load: [Double], dies: Int, slotsPerDie: Int) -> [[Int]] {
        let experts = load.count
        var replicas = Array(repeating: [Int](), count: experts)
        var dies = Pool(dies: dies, slotsPerDie: slotsPerDie)
        for e in (0..<experts).sorted(by: { (load[$0], $1) > (load[$1], $0) }) {
            guard let d = dies.leastLoaded(excluding: []) else { break }
            replicas[e] = [d]
            dies.place(load[e], on: d)
        }
        var share: [Double?] = (0..<experts).map { replicas[$0].isEmpty ? nil : load[$0] }
        while dies.hasFreeSlot, let e = hottest(share) {
            share[e] = nil
            guard let d = dies.leastLoaded(excluding: replicas[e]) else { continue }
            let before = load[e] / Double(replicas[e].count)
            let after = load[e] / Double(replicas[e].count + 1)
            for host in replicas[e] { dies.adjust(after - before, on: host) }
            replicas[e].append(d)
            dies.place(after, on: d)
            share[e] = after
        }
        return replicas
    }

    static func replicateThenPack(load: [Double], dies: Int, slotsPerDie: Int) -> [[Int]] {
        let experts = load.count
        var count = Array(repeating: 1, count: experts)
        var share: [Double?] = load.map { $0 }
        var spare = max(0, dies * slotsPerDie - experts)
        while spare > 0, let e = hottest(share) {
            share[e] = nil
            guard count[e] < dies else { continue }
            count[e] += 1
            spare -= 1
            share[e] = load[e] / Double(count[e])
        }
        var replicas: [(expert: Int, load: Double)] = []
        for e in 0..<experts { for _ in 0..<count[e] { replicas.append((e, load[e] / Double(count[e]))) } }
        replicas.sort { ($0.load, $1.expert) > ($1.load, $0.expert) }
        var hosts = Array(repeating: [Int](), count: experts)
        var pool = Pool(dies: dies, slotsPerDie: slotsPerDie)
        for r in replicas {
            guard let d = pool.leastLoaded(excluding: hosts[r.expert]) else { continue }
            hosts[r.expert].append(d)
            pool.place(r.load, on: d)
        }
        return hosts
    }
}
