import PodModel
import Testing
import XDSTestSupport
@testable import ServingEngine

/// An operator's `rebalance` on a decode TE that holds a dead die: while the fault is undetected
/// the TE's barrier is stalled and it serves nothing, yet the swap started and logged
/// "decode-0: rebalance done in 0.02 s: served imbalance 1.26 → 1.16" with experts planned onto
/// every die, the dead one included (repro: `xds run --scenario S --speed max --duration 120s`,
/// S = `fault die 340` at 70 s, `rebalance` at 70.1 s). The TE is left out, and the reply and
/// the log say why.
@Suite struct RebalanceDeadDieTests {
    @Test func aDecodeTEStalledByAnUndetectedDeadDieIsLeftOutWithTheReason() async throws {
        let (reply, events, swapping) = try await offPool { () throws -> (CommandReply, [EngineEvent], Bool) in
            let e = try FaultTests.engine(rate: 20, limit: 400)
            e.run(until: 20)
            // Die 40 is NPU 20's, in decode-0 (NPUs 16–39).
            #expect(e.apply(.faultDie(40)).accepted)
            e.run(until: 20.1)
            #expect(e.faults.isSilent(2), "decode-0 is stalled, the fault not yet detected")
            let reply = e.apply(.rebalance)
            let swapping = e.experts.summary().rebalanceInProgress
            e.run(until: 21)
            return (reply, e.snapshot().events, swapping)
        }
        #expect(!swapping, "no swap on the stalled decode TE")
        #expect(reply.message.contains("decode-0 is stalled by a fault on die 40 not yet detected"), "\(reply.message)")
        #expect(!events.contains { $0.message.hasPrefix("decode-0: rebalance done") },
                "\(events.filter { $0.kind == .rebalance }.map(\.message))")
        #expect(events.contains { $0.message.contains("decode-0 is stalled by a fault on die 40") })
    }

    @Test func aDecodeTEBackWithoutItsDeadDieIsLeftOutUntilHealed() throws {
        // No spare NPU (the pod is its six nodes' 48 NPUs less two nodes): the decode TE restarts
        // and comes back without the lost die, which it still holds until healed.
        var pod = TestDeployments.faultPod
        pod.nodes = 5
        let e = try FaultTests.engine(rate: 20, limit: 400, deployment: pod)
        e.run(until: 20)
        #expect(e.apply(.faultDie(40)).accepted)
        e.run(until: 40)
        #expect(!e.faults.hasOutage(2) && !e.faults.isSilent(2), "decode-0 is back in service")
        #expect(e.cluster.dies(of: 2).contains(40))
        let reply = e.apply(.rebalance)
        #expect(reply.message.contains("decode-0 holds dead die 40"), "\(reply.message)")
        #expect(!e.experts.summary().rebalanceInProgress)
        #expect(e.apply(.healAll).accepted)
        e.run(until: 41)
        #expect(!e.apply(.rebalance).message.contains("holds dead"))
    }

    @Test func aDecodeTEShrunkAroundADeadSharedExpertDieIsRebalancedAsUsual() throws {
        // Before, `rebalance` refused decode-0 once it had shrunk around a shared-expert die:
        // "decode-0 holds dead die 560 …; a plan now would place experts on them" (npu-loss:
        // `fault npu 280`, then `rebalance`).
        let e = try ShrinkRoutingTests.shrunkAroundASharedExpertDie()
        let reply = e.apply(.rebalance)
        #expect(reply.accepted, "\(reply.message)")
        #expect(!reply.message.contains("decode-0 holds dead"), "\(reply.message)")
        FaultTests.expectSound(e)
    }
}
