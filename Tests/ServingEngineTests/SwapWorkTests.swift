import PodModel
import SimKit
import Testing
@testable import ServingEngine

/// A swap's two walks of the old and target placements (the layers each die gains, at plan time;
/// the placement serving while weights load, at the prefetch's end) are done as one at plan time
/// (issue 12). The fused walk must give what the two functions give, and the controller must use
/// its serving placement only while the routing's placement is still the one it planned from.
@Suite struct SwapWorkTests {
    static let cost = CostModel(model: .deepSeekR1, hardware: .ascend910C)

    static func expectSameAsTheTwoWalks(_ old: ExpertPlacement, _ target: ExpertPlacement,
                                        _ note: String) {
        let work = EPLBController.swapWork(from: old, to: target)
        #expect(work.gained == EPLBController.layersGained(from: old, to: target), "\(note)")
        let (serving, disabled) = EPLBController.servingDuringSwap(from: old, to: target)
        #expect(work.serving?.placement == serving, "\(note)")
        #expect(work.serving?.disabled == disabled, "\(note)")
        // The written per-slot arrays are the derived ones: the same shares, bit for bit.
        let pop = ExpertTraffic(shape: ModelSpecShape(moeLayers: old.layerCount, experts: old.experts), seed: 3)
            .popularity
        #expect(work.serving?.placement.hottestShares(popularity: pop).map(\.bitPattern)
                == serving.hottestShares(popularity: pop).map(\.bitPattern), "\(note)")
    }

    @Test func oneWalkGivesTheGainedLayersAndTheServingPlacement() {
        let shape = ModelSpecShape(moeLayers: 6, experts: 64)
        var traffic = ExpertTraffic(shape: shape, seed: 17)
        for (dies, slots) in [(72, 1), (8, 9), (5, 20), (64, 1), (3, 30)] {
            let roundRobin = ExpertPlacement.roundRobin(experts: 64, layers: 6, dies: dies, slotsPerDie: slots)
            let old = ExpertPlacement.greedy(popularity: traffic.popularity, dies: dies, slotsPerDie: slots)
            traffic.advanceDrift(seconds: 900)
            let target = ExpertPlacement.greedy(popularity: traffic.popularity, dies: dies, slotsPerDie: slots)
            Self.expectSameAsTheTwoWalks(old, target, "\(dies) × \(slots)")
            Self.expectSameAsTheTwoWalks(roundRobin, target, "round robin \(dies) × \(slots)")
            Self.expectSameAsTheTwoWalks(target, target, "no change \(dies) × \(slots)")
        }
        // Hand-made rows: experts with no host, several hosts on one die, every kind of change.
        let old = ExpertPlacement(dies: 4, slotsPerDie: 3, layers: [
            [[0, 1], [2], [3], [1, 2], [], [0, 0]],
            [[3], [0, 1, 2], [1], [2], [0], [3]],
        ])
        let target = ExpertPlacement(dies: 4, slotsPerDie: 3, layers: [
            [[0, 3], [1], [3], [2, 0], [1], [0]],
            [[3], [2], [1, 0], [], [0, 3], [2, 2]],
        ])
        Self.expectSameAsTheTwoWalks(old, target, "hand-made")
        Self.expectSameAsTheTwoWalks(target, old, "hand-made, reversed")
    }

    @Test func placementsOfAnotherShapeGetTheGainedLayersOnly() {
        let old = ExpertPlacement(dies: 4, slotsPerDie: 2, layers: [[[0, 1], [2], [3], [1, 2]]])
        let wider = ExpertPlacement(dies: 5, slotsPerDie: 2, layers: [[[0, 4], [1], [3], [2, 0]]])
        let work = EPLBController.swapWork(from: old, to: wider)
        #expect(work.gained == EPLBController.layersGained(from: old, to: wider))
        #expect(work.serving == nil)
    }

    /// Runs `eplb` from a started swap to its end; `atLoad` may replace the routing the prefetch's
    /// end sees. Returns the placement served and the dies disabled while loading, and the target.
    static func runSwap(_ eplb: inout EPLBController, _ routing: inout ExpertRouting, from start: SimTime,
                        atLoad: ((inout ExpertRouting) -> Void)? = nil)
        -> (serving: ExpertPlacement, disabled: [Int], loadingFrom: ExpertPlacement, target: ExpertPlacement) {
        var t = start
        while case .prefetch = eplb.phase {
            t += 0.01
            if let atLoad, eplb.swapPhaseEnds.map({ t >= $0 }) == true { atLoad(&routing) }
            _ = eplb.tick(now: t, routing: &routing)
        }
        let loadingFrom = routing.placement
        let serving = routing.servingPlacement
        let disabled = eplb.loadingDies
        while eplb.phase != .idle {
            t += 0.01
            _ = eplb.tick(now: t, routing: &routing)
        }
        return (serving, disabled, loadingFrom, routing.placement)
    }

    @Test func theControllerServesThePlannedLoadPhase() {
        let shape = ModelSpecShape(moeLayers: 8, experts: 64)
        let traffic = ExpertTraffic(shape: shape, seed: 5)
        var routing = ExpertRouting(popularity: traffic.popularity, dies: 8, slotsPerDie: 9, seed: 5)
        var eplb = EPLBController(mode: .on, policy: GreedyEPLBPlanner(), cost: Self.cost)
        _ = routing.stepLoadFactor(tokens: 10_000)
        #expect(eplb.requestRebalance(now: 1, routing: &routing).started)
        let swap = Self.runSwap(&eplb, &routing, from: 1)
        #expect(swap.target != swap.loadingFrom)
        let (serving, disabled) = EPLBController.servingDuringSwap(from: swap.loadingFrom, to: swap.target)
        #expect(swap.serving == serving && swap.disabled == disabled)
    }

    /// A routing whose placement is not the one the plan was made from (a caller that hands the
    /// controller another routing) gets the serving placement worked out from its own.
    @Test func aPlacementChangedSinceThePlanIsServedFromItself() {
        let shape = ModelSpecShape(moeLayers: 8, experts: 64)
        var traffic = ExpertTraffic(shape: shape, seed: 9)
        var routing = ExpertRouting(popularity: traffic.popularity, dies: 8, slotsPerDie: 9, seed: 9)
        var eplb = EPLBController(mode: .on, policy: GreedyEPLBPlanner(), cost: Self.cost)
        _ = routing.stepLoadFactor(tokens: 10_000)
        #expect(eplb.requestRebalance(now: 1, routing: &routing).started)
        traffic.advanceDrift(seconds: 3_600)
        let other = ExpertPlacement.greedy(popularity: traffic.popularity, dies: 8, slotsPerDie: 9)
        let swap = Self.runSwap(&eplb, &routing, from: 1) { routing in
            if routing.placement != other { routing.setPlacement(other) }
        }
        #expect(swap.loadingFrom == other)
        let (serving, disabled) = EPLBController.servingDuringSwap(from: other, to: swap.target)
        #expect(swap.serving == serving && swap.disabled == disabled)
        let planned = EPLBController.servingDuringSwap(from: .roundRobin(experts: 64, layers: 8, dies: 8, slotsPerDie: 9),
                                                       to: swap.target)
        #expect(planned.0 != serving)
    }

    /// The serving placement is `old` itself when no expert keeps only some of its hosts, and
    /// otherwise `old` copied in runs with those experts cut down: both must give what the host
    /// by host walk gives, on random rows with empty experts, repeated dies and every mix of
    /// kept, moved and cut hosts (cuts at the first and the last expert included).
    @Test func randomPlacementsGiveWhatTheTwoWalksGive() {
        var rng = RandomStreams(seed: 41).stream("swap-rows")
        var sawShared = false, sawCut = false
        for trial in 0..<300 {
            let dies = rng.int(in: 1...9), layers = rng.int(in: 1...4), experts = rng.int(in: 3...12)
            func row(_ most: Int) -> [[Int]] {
                (0..<experts).map { _ in (0..<rng.int(in: 0...most)).map { _ in rng.int(in: 0...(dies - 1)) } }
            }
            let old = ExpertPlacement(dies: dies, slotsPerDie: 4, layers: (0..<layers).map { _ in row(3) })
            // A target that keeps most experts, so that some swaps cut nothing.
            let changes = trial % 4 == 0 ? 0 : rng.int(in: 1...(layers * experts))
            var rows = old.layers
            for _ in 0..<changes {
                let l = rng.int(in: 0...(layers - 1)), e = rng.int(in: 0...(experts - 1))
                rows[l][e] = (0..<rng.int(in: 0...3)).map { _ in rng.int(in: 0...(dies - 1)) }
            }
            let target = ExpertPlacement(dies: dies, slotsPerDie: 4, layers: rows)
            Self.expectSameAsTheTwoWalks(old, target, "trial \(trial)")
            if let serving = EPLBController.swapWork(from: old, to: target).serving {
                if serving.disabled.isEmpty { sawShared = true } else { sawCut = true }
            }
        }
        #expect(sawShared && sawCut)
    }
}
