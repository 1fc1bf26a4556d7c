import PodModel
import SimKit
import Testing
import XDSTestSupport

@testable import ServingEngine

/// A decode TE that lost an NPU holding experts' last replicas cannot shrink (system.md §4: the
/// decode-shrink failover must keep at least one replica of every expert); with no spare it
/// restarts, and came back "without its lost dies" while its routing still sent those experts'
/// tokens to the dead dies (``ExpertPlacement/dropping(dies:)`` keeps an expert's last hosts). The
/// restart loads the weights afresh, so it lays the experts out over the live dies; when they
/// cannot hold every expert the TE stays out until repaired instead of serving without some.
@Suite struct RestartWithoutSparesReplanTests {
    /// faultPod at 20 req/s with every spare NPU dead: a decode NPU whose loss leaves experts
    /// without a replica, and the engine.
    static func decodeNPUHoldingLastReplicas() throws -> (ServingEngine, d: Int, npu: Int) {
        let e = try FaultTests.engine(rate: 20, limit: 300)
        let d = try FaultTests.decodeIndex(e)
        for npu in e.spareNPUs() { #expect(e.apply(.faultNPU(npu)).accepted) }
        let dies = e.topology.diesPerNPU
        let npu = try #require(e.cluster.npus(of: d).first { npu in
            let indices = Set((npu * dies..<(npu + 1) * dies).compactMap { e.cluster.expertSlots[$0]?.index })
            return !(e.experts.unreplicatedExperts(instance: d, deadDies: indices) ?? []).isEmpty
        }, "some decode NPU holds experts' only replicas")
        return (e, d, npu)
    }

    /// The routed-expert dies TE `d` serves from that are lost, per (layer, expert) still routed there.
    static func routedToLostDies(_ e: ServingEngine, _ d: Int) -> [String] {
        guard let routing = e.experts.routing(of: d) else { return ["no routing"] }
        let lost = Set(routing.lostDies)
        let serving = routing.servingPlacement
        var found: [String] = []
        for l in 0..<serving.layerCount {
            for x in 0..<serving.experts where serving.hosts(layer: l, expert: x).contains(where: lost.contains) {
                found.append("layer \(l) expert \(x) → \(serving.hosts(layer: l, expert: x))")
            }
        }
        return found
    }

    @Test func aDecodeTEBackFromARestartWithoutSparesRoutesNoTokenToItsDeadDies() throws {
        let (e, d, npu) = try Self.decodeNPUHoldingLastReplicas()
        e.run(until: 5)
        #expect(e.apply(.faultNPU(npu)).accepted)
        // Detected within 3 s, restarted for 5 s (FaultTests' restart time).
        e.run(until: 20)
        let recovery = FaultTests.events(e, .recovery)
        #expect(recovery.contains { $0.contains("vertical shrink impossible") }, "\(recovery)")
        #expect(recovery.contains { $0.contains("fell back to a restart") }, "\(recovery)")
        #expect(!e.faults.hasOutage(d), "decode is back in service: \(e.faults.outages)")
        #expect(e.experts.routing(of: d)?.lostDies.isEmpty == false, "it runs without its dead dies")
        let stray = Self.routedToLostDies(e, d)
        #expect(stray.isEmpty, "\(stray.count) experts still routed to dead dies, e.g. \(stray.prefix(3))")
        #expect(e.missingExperts(instance: d).isEmpty, "every expert has a live replica")
        #expect(e.runToCompletion(limit: 900))
        FaultTests.expectSound(e)
        FaultTests.expectEmpty(e)
    }

    /// A node's loss leaves 16 of decode's 32 routed-expert dies: 144 slots for 256 experts. The
    /// restart cannot lay every expert out, so the TE stays out until repaired (it came back in
    /// service serving without them); `heal all` brings it back and the run drains.
    @Test func aDecodeTEWhoseLiveDiesCannotHoldEveryExpertWaitsForRepair() throws {
        let e = try FaultTests.engine(rate: 20, limit: 200)
        let d = try FaultTests.decodeIndex(e)
        for npu in e.spareNPUs() { #expect(e.apply(.faultNPU(npu)).accepted) }
        e.run(until: 5)
        let first = try #require(e.cluster.npus(of: d).first)
        #expect(e.apply(.faultNode(first / 8)).accepted)
        e.run(until: 20)
        #expect(e.faults.outage(of: d) == .awaitingRepair, "\(e.faults.outages)")
        let recovery = FaultTests.events(e, .recovery)
        #expect(recovery.contains { $0.contains("cannot hold every expert") }, "\(recovery.suffix(3))")
        FaultTests.expectSound(e)
        _ = e.apply(.healAll)
        e.run(until: e.now + 1)
        #expect(!e.faults.hasOutage(d), "back once repaired: \(e.faults.outages)")
        #expect(e.runToCompletion(limit: 900))
        FaultTests.expectSound(e)
        FaultTests.expectEmpty(e)
    }
}
