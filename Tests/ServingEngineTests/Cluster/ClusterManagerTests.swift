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

    @Test func aCopyIsIndependent() {
        let cluster = ClusterManager(npusPerNode: 16)
        cluster.drain(2)
        let copy = cluster.copy()
        #expect(copy !== cluster && copy.npusPerNode == 16)
        copy.drain(5)
        copy.announceEmpty(2)
        #expect(cluster.drainedNodes == [2] && !cluster.isAnnouncedEmpty(2))
        #expect(copy.drainedNodes == [2, 5])
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
