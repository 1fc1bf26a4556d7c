import PodModel
import SimKit
import Testing

@testable import ServingEngine

/// ``ClusterManager`` through its own API, and the engine's drains going through it.
@Suite(.timeLimit(.minutes(10))) struct ClusterManagerTests {
    @Test func drainAndUndrainChangeOnlyWhatTheySay() {
        let cluster = ClusterManager(npusPerNode: 8)
        #expect(cluster.drain(3))
        #expect(!cluster.drain(3), "already drained")
        #expect(cluster.isDrained(node: 3) && !cluster.isDrained(node: 2))
        #expect(cluster.isOnDrainedNode(npu: 24) && cluster.isOnDrainedNode(npu: 31))
        #expect(!cluster.isOnDrainedNode(npu: 23) && !cluster.isOnDrainedNode(npu: 32))
        #expect(!cluster.undrain(2), "not drained")
        #expect(cluster.undrain(3))
        #expect(cluster.drainedNodes.isEmpty)
        #expect(!cluster.isOnDrainedNode(npu: 24))
    }

    @Test func aDrainedNodeIsAnnouncedEmptyOncePerDrain() {
        let cluster = ClusterManager(npusPerNode: 8)
        #expect(!cluster.hasUnannouncedDrains)
        #expect(!cluster.announceEmpty(1), "not drained: nothing to announce")
        cluster.drain(1)
        cluster.drain(4)
        #expect(cluster.hasUnannouncedDrains)
        #expect(cluster.announceEmpty(1))
        #expect(!cluster.announceEmpty(1), "once")
        #expect(cluster.isAnnouncedEmpty(1) && !cluster.isAnnouncedEmpty(4))
        #expect(cluster.hasUnannouncedDrains, "node 4 is still to announce")
        #expect(cluster.announceEmpty(4))
        #expect(!cluster.hasUnannouncedDrains)
        // Undrained, the announcement is forgotten: a new drain is announced again.
        cluster.undrain(1)
        #expect(!cluster.isAnnouncedEmpty(1))
        cluster.drain(1)
        #expect(cluster.hasUnannouncedDrains)
        #expect(cluster.announceEmpty(1))
    }

    /// TE 2's expert dies 0–3 on NPUs 10–11 (2 dies per NPU), TE 3's die 0 on die 40. NPU 11
    /// (dies 22, 23) dies and is replaced by NPU 50: its expert dies become dies 100, 101.
    @Test func expertDiesFollowReplacedNPUsAndLeaveWithTheirTE() {
        let cluster = ClusterManager(npusPerNode: 8, diesPerNPU: 2)
        cluster.mapExpertDies(of: 2, onto: 20..<24)
        cluster.mapExpertDies(of: 3, onto: [40])
        #expect(cluster.expertSlots[21] == ExpertSlot(instance: 2, index: 1) && cluster.expertSlots.count == 5)
        #expect(cluster.deadExpertIndices(of: 2, dead: [22, 23, 40]) == [2, 3])
        #expect(cluster.expertDiesLost(of: 2, dead: [22, 23, 40]) == 2 && cluster.expertDiesLost(of: 3, dead: [22, 23, 40]) == 1)
        #expect(cluster.deadExpertIndices(of: 2, dead: []).isEmpty)
        cluster.moveExpertDies(fromNPU: 11, toNPU: 50)
        #expect(cluster.expertSlots[100] == ExpertSlot(instance: 2, index: 2))
        #expect(cluster.expertSlots[101] == ExpertSlot(instance: 2, index: 3) && cluster.expertSlots[22] == nil)
        #expect(cluster.expertDiesLost(of: 2, dead: [22, 23]) == 0, "the dead NPU holds no expert die any more")
        cluster.moveExpertDies(fromNPU: 30, toNPU: 51)
        #expect(cluster.expertSlots.count == 5, "an NPU without expert dies moves nothing")
        // A scaled TE's dies are mapped from its groups' dies (more dies than EP: the first `ep`).
        cluster.mapExpertDies(of: 4, onto: [60, 61, 62].prefix(2))
        #expect(cluster.expertSlots[61] == ExpertSlot(instance: 4, index: 1) && cluster.expertSlots[62] == nil)
        cluster.releaseExpertDies(of: 2)
        cluster.releaseExpertDies(of: 4)
        #expect(cluster.expertSlots == [40: ExpertSlot(instance: 3, index: 0)])
    }

    /// 8 NPUs per node. TE 0 prefill: g0 on NPUs 8, 9 (node 1), g1 on NPU 0 (node 0). TE 1
    /// decode: g0 on NPU 16 (node 2), g1 on NPUs 15, 16 (nodes 1 and 2). TE 2 colocated: g0 on NPU 24 (node 3).
    struct Placements: PlacementView {
        var roles: [InstanceRole] = [.prefill, .decode, .colocated]
        var groupNPUs: [[[Int]]] = [[[8, 9], [0]], [[16], [15, 16]], [[24]]]
        var requests: [PlacedRequest] = []
        func role(of te: Int) -> InstanceRole { roles[te] }
        func npus(of te: Int, group g: Int) -> [Int] { groupNPUs[te][g] }
        func forEachPlacedRequest(_ body: (PlacedRequest) -> Void) { requests.forEach(body) }

        mutating func add(_ id: Int, _ stage: RequestStage, prefill: (Int, Int), decode: (Int, Int) = (-1, -1)) {
            requests.append(PlacedRequest(id: id, stage: stage, prefillTE: prefill.0, prefillGroup: prefill.1,
                                          decodeTE: decode.0, decodeGroup: decode.1))
        }
    }

    @Test func drainProgressCountsWhatEachDrainedNodeStillHolds() {
        let cluster = ClusterManager(npusPerNode: 8)
        var pod = Placements()
        pod.add(1, .queued, prefill: (0, 0))                     // node 1 (two NPUs there: once)
        pod.add(2, .transfer, prefill: (0, 0), decode: (1, 1))   // node 1 twice (both sides), node 2
        pod.add(3, .decode, prefill: (0, 0), decode: (1, 0))     // handed over: node 2 only
        pod.add(4, .decode, prefill: (2, 0), decode: (2, 0))     // colocated: its group, once (node 3)
        pod.add(5, .queued, prefill: (0, 1))                     // node 0: not drained
        pod.add(6, .queued, prefill: (-1, -1))                   // not placed yet
        #expect(cluster.drainProgress(pod: pod).isEmpty, "nothing drained")
        #expect(cluster.announceEmptyNodes(pod: pod).isEmpty)
        for node in [3, 1, 2, 5] { cluster.drain(node) }
        #expect(cluster.drainProgress(pod: pod) == [DrainProgress(node: 1, requestsLeft: 3), DrainProgress(node: 2, requestsLeft: 2),
                                                    DrainProgress(node: 3, requestsLeft: 1), DrainProgress(node: 5, requestsLeft: 0)])
        #expect(cluster.announceEmptyNodes(pod: pod) == [5])
        #expect(cluster.announceEmptyNodes(pod: pod).isEmpty, "announced once")
        pod.requests.removeAll { $0.id == 4 || $0.id == 3 }
        #expect(cluster.announceEmptyNodes(pod: pod) == [3])
        #expect(cluster.isAnnouncedEmpty(3) && !cluster.isAnnouncedEmpty(2) && cluster.hasUnannouncedDrains)
    }

    @Test func aCopyIsIndependent() {
        let cluster = ClusterManager(npusPerNode: 16)
        cluster.drain(2)
        cluster.mapExpertDies(of: 1, onto: [4, 5])
        let copy = cluster.copy()
        #expect(copy !== cluster && copy.npusPerNode == 16 && copy.diesPerNPU == 1)
        copy.drain(5)
        copy.announceEmpty(2)
        copy.moveExpertDies(fromNPU: 4, toNPU: 9)
        #expect(cluster.drainedNodes == [2] && !cluster.isAnnouncedEmpty(2))
        #expect(copy.drainedNodes == [2, 5])
        #expect(cluster.expertSlots[4] == ExpertSlot(instance: 1, index: 0) && copy.expertSlots[9] == ExpertSlot(instance: 1, index: 0))
    }
    /// The engine's drain goes through the cluster manager: the node's groups take no new
    /// work, the empty node is announced once, undrain returns it; a fork keeps its own.
    @Test func theEngineDrainsThroughIt() throws {
        let engine = try FaultTests.engine(rate: 30, limit: 300)
        engine.run(until: 2)
        #expect(engine.apply(.drain(node: 2)).accepted)
        #expect(engine.cluster.isDrained(node: 2))
        let perNode = engine.topology.npusPerNode
        for te in engine.instances {
            for group in te.dp where group.npus.contains(where: { $0 / perNode == 2 }) { #expect(group.drained) }
        }
        let fork = try engine.fork()
        #expect(fork.cluster !== engine.cluster)
        engine.run(until: 60)
        #expect(engine.cluster.isAnnouncedEmpty(2), "the drained node emptied and was announced")
        #expect(engine.recentEvents().filter { $0.message.hasPrefix("node 2 drained: no requests left") }.count == 1)
        #expect(engine.apply(.undrain(node: 2)).accepted)
        #expect(!engine.cluster.isDrained(node: 2) && !engine.cluster.isAnnouncedEmpty(2))
        #expect(fork.cluster.isDrained(node: 2), "the fork's drain is its own")
        #expect(engine.audit() == [] && engine.inFlightProblems() == [])
    }
}
