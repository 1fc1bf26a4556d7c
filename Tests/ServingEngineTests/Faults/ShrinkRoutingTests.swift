import PodModel
import SimKit
import Testing
import XDSTestSupport

@testable import ServingEngine

/// A vertical shrink drops the decode TE's lost dies and "excess replicas on the lost dies"
/// (system.md §4), but the expert routing kept the pre-shrink layout: the replicas on the lost
/// die still took their share of their experts' tokens, and the step's mean was over every die.
/// The routing now serves from the dies the TE has left, and every die again once healed.
@Suite struct ShrinkRoutingTests {
    /// Superpod under the static placement (`--eplb off`): routed die 256 of decode-0 (die 512,
    /// decode-0's dies start at 256) holds only the second replica of expert 0 in every layer,
    /// so decode-0 can shrink around it (faultPod's 32 routed dies each hold experts no other
    /// die does). Skewed traffic, so that which die takes expert 0's tokens matters.
    static let lost = 256

    static func shrunk() throws -> (engine: ServingEngine, decode: Int) {
        let e = try FaultTests.engine(rate: 20, limit: 400, deployment: try Deployment.resolve("superpod")) {
            $0.eplb = .off
            $0.expertSkew = true
        }
        e.run(until: 2)
        #expect(e.apply(.faultDie(256 + lost)).accepted)
        e.run(until: 8)
        let d = try FaultTests.decodeIndex(e)
        let recovery = try #require(e.faults.record(1)?.recovery)
        #expect(recovery.contains("vertical shrink of decode-0: DP 320 → 319, EP 320 → 319"), "\(recovery)")
        return (e, d)
    }

    /// Max over mean of the per-die load of `placement` under `popularity` without die `lost`'s
    /// slots (their experts' tokens split over the other replicas), over the dies left, averaged
    /// over layers: worked out here from the placement's rows, not by the routing's code.
    static func imbalance(_ placement: ExpertPlacement, _ popularity: ExpertPopularity, without lost: Int) -> Double {
        var sum = 0.0
        for (l, row) in placement.layers.enumerated() {
            var loads = [Double](repeating: 0, count: placement.dies)
            for (e, hosts) in row.enumerated() {
                let kept = hosts.filter { $0 != lost }
                for d in kept { loads[d] += popularity.layers[l][e] / Double(kept.count) }
            }
            let mean = loads.reduce(0, +) / Double(placement.dies - 1)
            sum += loads.max()! / mean
        }
        return sum / Double(placement.layerCount)
    }

    @Test func aShrunkDecodeTEsRoutingServesOnlyFromTheDiesItHasLeft() throws {
        let (e, d) = try Self.shrunk()
        let routing = try #require(e.experts.routing(of: d))
        let onLost = (0..<routing.servingPlacement.layerCount).filter { l in
            routing.servingPlacement.layer(l).contains { $0.contains(Self.lost) }
        }
        #expect(onLost.isEmpty, "routed die \(Self.lost) left decode-0, yet \(onLost.count) layers still route tokens to it")
        let expected = Self.imbalance(routing.placement, routing.popularity, without: Self.lost)
        #expect(abs(routing.expectedImbalance - expected) < 1e-9,
                "expected imbalance \(routing.expectedImbalance), over the 287 dies left \(expected)")
        FaultTests.expectSound(e)
    }

    @Test func aHealedDieServesAgain() throws {
        let (e, d) = try Self.shrunk()
        #expect(e.apply(.healAll).accepted)
        e.run(until: e.now + 1)
        let routing = try #require(e.experts.routing(of: d))
        #expect(routing.servingPlacement == routing.placement, "every die serves again after the heal")
        #expect(routing.servingPlacement.layer(0).contains { $0.contains(Self.lost) })
    }

    /// Superpod's decode-0 (dies 256–575) shrunk around its shared-expert die index 304 (die 560,
    /// NPU 280, as npu-loss's `fault npu 280` does), where the planner places no routed expert.
    static func shrunkAroundASharedExpertDie() throws -> ServingEngine {
        let e = try FaultTests.engine(rate: 20, limit: 400, deployment: try Deployment.resolve("superpod"))
        e.run(until: 2)
        #expect(e.apply(.faultDie(560)).accepted)
        e.run(until: 8)
        let recovery = try #require(e.faults.record(1)?.recovery)
        #expect(recovery.contains("vertical shrink of decode-0"), "\(recovery)")
        return e
    }

    /// A shrink around a shared-expert die (superpod's decode-0 index 304 = die 560, NPU 280 as in
    /// npu-loss): the step was priced on all 32 shared-expert copies, though the 31 left each
    /// serve more ranks. It is priced on the copies left, and on all of them again once healed.
    @Test func aShrunkDecodeTEIsPricedOnTheSharedExpertCopiesItHasLeft() throws {
        let e = try Self.shrunkAroundASharedExpertDie()
        let d = try FaultTests.decodeIndex(e)
        let shape = e.expertShapeLeft(e.instances[d])
        #expect(shape.sharedExpertDies == 31 && shape.ep == 319 && shape.routedSlots == 288, "\(shape)")
        #expect(e.experts.routing(of: d)?.lostDies == [], "a shared-expert die holds no routed slot")
        #expect(e.apply(.healAll).accepted)
        e.run(until: e.now + 1)
        let healed = e.expertShapeLeft(e.instances[d])
        #expect(healed.sharedExpertDies == 32 && healed.ep == 320, "\(healed)")
        FaultTests.expectSound(e)
    }
}
