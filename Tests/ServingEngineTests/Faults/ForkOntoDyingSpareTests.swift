import PodModel
import SimKit
import Testing
import XDSTestSupport

@testable import ServingEngine

/// A spare NPU that dies while an NPU-fork copies weights onto it: the copy ended and the TE took
/// the dead NPU ("replacing NPU 170 of decode-0 with spare NPU 288"; `fault npu 288` 0.05 s later
/// was then "recovered: no traffic on it (spare …)"), so decode served on with a dead NPU in it and
/// the experts whose only replica had been on NPU 170 routed to the dead NPU 288. A fork whose
/// spare died takes no dead NPU: it copies again onto a fresh spare, or, with none, the TE restarts.
@Suite struct ForkOntoDyingSpareTests {
    /// faultPod at 20 req/s; the decode NPU holding experts' only replicas dies at 5 s (found at 8 s,
    /// forked onto a spare); the spare dies during the copy.
    static func forkOntoDyingSpare(sparesLeft: Bool) throws -> (ServingEngine, d: Int, spare: Int) {
        let e = try FaultTests.engine(rate: 20, limit: 300)
        let d = try FaultTests.decodeIndex(e)
        let dies = e.topology.diesPerNPU
        let npu = try #require(e.cluster.npus(of: d).first { npu in
            let indices = Set((npu * dies..<(npu + 1) * dies).compactMap { e.cluster.expertSlots[$0]?.index })
            return !(e.experts.unreplicatedExperts(instance: d, deadDies: indices) ?? []).isEmpty
        })
        e.run(until: 5)
        #expect(e.apply(.faultNPU(npu)).accepted)
        e.run(until: 8.001)
        guard case .forking(let until, let spares)? = e.faults.outage(of: d), let spare = spares[npu] else {
            Issue.record("decode forks onto a spare: \(e.faults.outages)")
            throw CancellationError()
        }
        #expect(until > e.now)
        if !sparesLeft { for other in e.spareNPUs() { #expect(e.apply(.faultNPU(other)).accepted) } }
        #expect(e.apply(.faultNPU(spare)).accepted)
        return (e, d, spare)
    }

    @Test(arguments: [true, false]) func aForkWhoseSpareDiedTakesNoDeadNPU(sparesLeft: Bool) throws {
        let (e, d, spare) = try Self.forkOntoDyingSpare(sparesLeft: sparesLeft)
        e.run(until: 30)
        #expect(!e.cluster.npus(of: d).contains(spare), "decode took spare NPU \(spare), dead during the copy")
        #expect(e.knownDeadNPUs(of: d).isEmpty || e.faults.hasOutage(d) || e.experts.routing(of: d)?.lostDies.isEmpty == false,
                "decode serves on with dead NPUs \(e.knownDeadNPUs(of: d)) as if they were whole")
        #expect(e.missingExperts(instance: d).isEmpty, "every expert keeps a live replica")
        let recovery = FaultTests.events(e, .recovery)
        #expect(recovery.contains { $0.contains("died during the NPU-fork copy") }, "\(recovery.suffix(4))")
        #expect(e.runToCompletion(limit: 900))
        FaultTests.expectSound(e)
        FaultTests.expectEmpty(e)
    }

    /// The lost NPU is healed during the copy and the spare dies: the TE keeps its healed NPU and is
    /// back when the copy ends (no new copy, no restart, no dead NPU taken).
    @Test func aLostNPUHealedDuringTheCopyStaysWhenItsSpareDies() throws {
        let (e, d, spare) = try Self.forkOntoDyingSpare(sparesLeft: true)
        let lost = try #require(e.faults.records.first?.id)
        #expect(e.apply(.heal(faultID: lost)).accepted)
        e.run(until: 9)
        #expect(!e.faults.hasOutage(d), "\(e.faults.outages)")
        #expect(!e.cluster.npus(of: d).contains(spare) && e.knownDeadNPUs(of: d).isEmpty)
        #expect(!FaultTests.events(e, .recovery).contains { $0.contains("died during the NPU-fork copy") })
        #expect(e.runToCompletion(limit: 900))
        FaultTests.expectSound(e)
        FaultTests.expectEmpty(e)
    }
}
