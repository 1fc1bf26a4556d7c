import PodModel
import SimKit
import Testing

@testable import ServingEngine

/// What a snapshot keeps between calls (issue 12: a snapshot under 1 ms on a saturated
/// superpod) must equal what it would work out afresh: the oldest requests in flight, each
/// expert die's hosted experts, and the Experts view's relative heat and hottest experts.
@Suite struct SnapshotCacheTests {
    /// A fixed pseudo-random sequence (64-bit LCG), so a failure names its case.
    struct Draws {
        var state: UInt64
        mutating func next(below n: Int) -> Int {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int((state >> 33) % UInt64(n))
        }
    }

    @Test(arguments: [0, 1, 5, 200, 1_000])
    func lowestKeysAreTheSmallestIdsAscending(limit: Int) {
        var draws = Draws(state: UInt64(limit) + 7)
        for size in [0, 1, 3, 199, 200, 201, 5_000] {
            var table = IDTable<Int>()
            var ids: Set<Int> = []
            while ids.count < size {
                // Ids from both sides of zero and a far base, as external requests take.
                let id = draws.next(below: 3) == 0 ? (1 << 40) + draws.next(below: 100_000) : draws.next(below: 200_000) - 50_000
                ids.insert(id)
                table[id] = id
            }
            #expect(table.lowestKeys(limit) == Array(ids.sorted().prefix(limit)), "size \(size), limit \(limit)")
        }
    }

    /// A walk in place (the report's tokens-so-far and census) visits every value once and
    /// changes what it writes in the slot it reads, whatever the table's size.
    @Test func forEachInPlaceVisitsEveryValueOnce() {
        for size in [0, 1, 2, 97, 4_000] {
            var table = IDTable<[Int]>()
            for id in 0..<size { table[id * 7 - 300] = [id] }
            var visited: [Int] = []
            table.forEachInPlace { value in
                visited.append(value[0])
                value.append(-value[0])
            }
            #expect(visited.sorted() == Array(0..<size), "size \(size)")
            for id in 0..<size { #expect(table[id * 7 - 300] == [id, -id]) }
        }
    }

    @Test func snapshotsInFlightListTheOldestRequests() throws {
        let engine = try FaultTests.engine(rate: 60, limit: 400)
        engine.run(until: 4)
        let inFlight = engine.snapshot().inFlight.map(\.id)
        let all = engine.requests.keys.sorted()
        #expect(all.count > 20, "the engine has requests in flight")
        #expect(inFlight == Array(all.prefix(200)))
    }

    /// Across heat windows and rebalances, every snapshot's expert dies and heat equal a fresh
    /// computation: the dies' experts from the serving placement's first layer, the heat from a
    /// fork (whose expert system starts with no cached view).
    @Test func cachedExpertViewsEqualAFreshComputation() throws {
        let engine = try FaultTests.engine(rate: 40, limit: 1_200) {
            // Static placement (EPLB off) so that the operator's rebalances below move experts.
            $0.expertSkew = true
            $0.eplb = .off
        }
        var placements = 0, heats = 0
        var lastPlacement: ExpertPlacement?
        var lastHeat: [[Double]]?
        for t in stride(from: 2.0, through: 32.0, by: 2.0) {
            engine.run(until: t)
            if t == 12 || t == 22 {
                guard case .success(let rebalance) = OperatorCommand.parse("rebalance") else { Issue.record("parse"); return }
                #expect(engine.apply(rebalance).accepted || t == 22, "rebalance at \(t) s")
            }
            _ = engine.snapshot()  // fills the caches
            let snapshot = engine.snapshot()
            let fresh = try engine.fork().snapshot()
            #expect(snapshot.experts.heat == fresh.experts.heat, "heat at \(t) s")
            #expect(snapshot.experts.hottest == fresh.experts.hottest, "hottest at \(t) s")

            let decode = try #require(engine.instances.firstIndex(where: { $0.hasDecode }))
            let routing = try #require(engine.experts.routing(of: decode))
            let diesPerNPU = engine.instances[decode].cost.hardware.diesPerDevice
            let first = try #require(engine.cluster.npus(of: decode).first)
            var expected: [Int: [Int]] = [:]
            for (expert, hosts) in routing.servingPlacement.layer(0).enumerated() {
                for d in hosts { expected[first + d / diesPerNPU, default: []].append(expert) }
            }
            #expect(expected.count > 10, "expert dies at \(t) s")
            for (npu, experts) in expected {
                #expect(snapshot.npus[npu].experts.sorted() == experts.sorted(), "NPU \(npu) at \(t) s")
            }
            if routing.servingPlacement != lastPlacement { placements += 1 }
            if snapshot.experts.heat != lastHeat { heats += 1 }
            lastPlacement = routing.servingPlacement
            lastHeat = snapshot.experts.heat
        }
        // Not vacuous: the placement and the heat each changed after the first snapshot.
        #expect(placements >= 2, "the placement changed (\(placements) distinct)")
        #expect(heats >= 3, "the heat changed (\(heats) distinct)")
    }
}
