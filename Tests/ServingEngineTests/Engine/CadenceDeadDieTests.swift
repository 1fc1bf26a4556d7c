import PodModel
import SimKit
import Testing
import XDSTestSupport
@testable import ServingEngine

/// The automatic EPLB cadence on a decode TE holding a dead die planned over every die, the dead
/// one included, as the operator's `rebalance` no longer does (``ServingEngine/rebalanceBlocker(_:)``):
/// on a TE back from a restart without a spare it swapped experts onto the dead die ("decode-0:
/// rebalance started … 288 dies get new experts", then "done"); on a TE stalled by an undetected
/// fault it started a swap that served nothing. The cadence now skips such a TE and logs why.
@Suite struct CadenceDeadDieTests {
    /// The experts each layer puts on routed die `index` of `routing`'s placement.
    static func experts(on index: Int, _ routing: ExpertRouting) -> [[Int]] {
        (0..<routing.placement.layerCount).map { l in
            let row = routing.placement.layer(l)
            return row.indices.filter { row[$0].contains(index) }
        }
    }

    static func superpod() throws -> ServingEngine {
        try FaultTests.engine(rate: 20, limit: 40_000, deployment: try Deployment.resolve("superpod")) { $0.expertSkew = true }
    }

    /// No spare NPU (nodes 36–47 drained): decode-0 restarts after die 340 (its routed die 84)
    /// dies, and comes back without it, holding it until healed. The cadence is every 60 s.
    @Test func theCadenceSkipsADecodeTEBackWithItsDeadDie() throws {
        let e = try Self.superpod()
        e.run(until: 1)
        for node in 36...47 { #expect(e.apply(.drain(node: node)).accepted) }
        e.run(until: 20)
        let d = try FaultTests.decodeIndex(e)
        let before = Self.experts(on: 84, try #require(e.experts.routing(of: d)))
        #expect(e.apply(.faultDie(340)).accepted)
        e.run(until: 130)
        #expect(e.cluster.dies(of: d).contains(340) && !e.faults.hasOutage(d), "decode-0 is back holding die 340")
        let lines = e.recentEvents().filter { $0.kind == .rebalance && $0.time > 20 }.map { "\($0.time) \($0.message)" }
        #expect(!lines.contains { $0.contains("decode-0: rebalance started") }, "\(lines)")
        let after = Self.experts(on: 84, try #require(e.experts.routing(of: d)))
        // The restart laid the experts out over the live dies: none on the dead one (they stayed,
        // their tokens routed there, when nothing re-planned), and the cadence moved none there.
        #expect(before.contains { !$0.isEmpty } && after.allSatisfy(\.isEmpty), "experts on dead die 340 (routed die 84): \(after)")
        let skips = e.recentEvents().filter { $0.message.hasPrefix("decode-0: automatic rebalance skipped: decode-0 holds dead die 340") }
        #expect(skips.count == 2 && skips.allSatisfy { $0.severity == .warning }, "\(lines)")
    }

    /// Die 340 dies 0.1 s before the 60 s cadence: decode-0 is stalled (the fault undetected) when it is due.
    @Test func theCadenceSkipsADecodeTEStalledByAnUndetectedDeadDie() throws {
        let e = try Self.superpod()
        e.run(until: 59.9)
        #expect(e.apply(.faultDie(340)).accepted)
        e.run(until: 60.5)
        let d = try FaultTests.decodeIndex(e)
        #expect(e.faults.isSilent(d), "decode-0 is stalled, the fault not yet detected")
        let lines = e.recentEvents().filter { $0.kind == .rebalance && $0.time > 59.9 }.map { "\($0.time) \($0.message)" }
        #expect(!lines.contains { $0.contains("decode-0: rebalance started") }, "\(lines)")
        #expect(lines.contains { $0.contains("decode-0: automatic rebalance skipped: decode-0 is stalled by a fault on die 340 not yet detected") },
                "\(lines)")
    }
}
