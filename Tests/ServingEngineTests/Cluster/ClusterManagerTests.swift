import PodModel
import SimKit
import Testing

@testable import ServingEngine

/// ``ClusterManager`` through its own API, and the engine's drains going through it.
@Suite(.timeLimit(.minutes(10))) struct ClusterManagerTests {
    @Test func drainAndUndrainChangeOnlyWhatTheySay() {
        let cluster = ClusterManager(npusPerNode: 8)
        cluster.layOutTE(npus: [24, 25], groups: 2, tp: 1, firstDie: 0)   // TE 0: g0 on NPU 24, g1 on 25 (node 3)
        #expect(cluster.drain(node: 3) == [GroupRef(te: 0, group: 0), GroupRef(te: 0, group: 1)])
        #expect(cluster.drain(node: 3) == [], "already drained")
        #expect(cluster.isDrained(node: 3) && !cluster.isDrained(node: 2))
        #expect(cluster.isOnDrainedNode(npu: 24) && cluster.isOnDrainedNode(npu: 31))
        #expect(!cluster.isOnDrainedNode(npu: 23) && !cluster.isOnDrainedNode(npu: 32))
        #expect(cluster.undrain(node: 2) == [] && cluster.drainedNodes == [3], "not drained")
        #expect(cluster.undrain(node: 3) == [GroupRef(te: 0, group: 0), GroupRef(te: 0, group: 1)])
        #expect(cluster.drainedNodes.isEmpty)
        #expect(!cluster.isOnDrainedNode(npu: 24))
    }

    @Test func aDrainedNodeIsAnnouncedEmptyOncePerDrain() {
        let cluster = ClusterManager(npusPerNode: 8)
        #expect(!cluster.hasUnannouncedDrains)
        #expect(!cluster.announceEmpty(1), "not drained: nothing to announce")
        cluster.drain(node: 1)
        cluster.drain(node: 4)
        #expect(cluster.hasUnannouncedDrains)
        #expect(cluster.announceEmpty(1))
        #expect(!cluster.announceEmpty(1), "once")
        #expect(cluster.isAnnouncedEmpty(1) && !cluster.isAnnouncedEmpty(4))
        #expect(cluster.hasUnannouncedDrains, "node 4 is still to announce")
        #expect(cluster.announceEmpty(4))
        #expect(!cluster.hasUnannouncedDrains)
        // Undrained, the announcement is forgotten: a new drain is announced again.
        cluster.undrain(node: 1)
        #expect(!cluster.isAnnouncedEmpty(1))
        cluster.drain(node: 1)
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
        for node in [3, 1, 2, 5] { cluster.drain(node: node) }
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
        cluster.drain(node: 2)
        cluster.mapExpertDies(of: 1, onto: [4, 5])
        let copy = cluster.copy()
        #expect(copy !== cluster && copy.npusPerNode == 16 && copy.diesPerNPU == 1)
        copy.drain(node: 5)
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
        for (i, te) in engine.instances.enumerated() {
            for g in te.groups where engine.cluster.npus(of: i, group: g).contains(where: { $0 / perNode == 2 }) {
                #expect(!engine.cluster.isPlaceable(te: i, group: g))
            }
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

    // MARK: Hardware map

    /// What `locate(die:)` must answer, by scanning the map as the engine once did: the lowest
    /// TE whose NPU list holds the die's NPU, and the first of *its* groups listing the die.
    static func scan(_ cluster: ClusterManager, die: Int) -> (te: Int, group: Int?)? {
        let npu = die / cluster.diesPerNPU
        for te in 0..<cluster.teCount where cluster.npus(of: te).contains(npu) {
            let groups = (0..<groupCount(cluster, te)).first { cluster.dies(of: te, group: $0).contains(die) }
            return (te, groups)
        }
        return nil
    }

    /// Groups of a TE as the map has them (dies(of:) is group by group).
    static func groupCount(_ cluster: ClusterManager, _ te: Int) -> Int { cluster.hardware.groupDies[te].count }

    static func expectIndexMatchesScan(_ cluster: ClusterManager, dies: Range<Int>, _ note: String,
                                       sourceLocation: SourceLocation = #_sourceLocation) {
        for die in dies {
            let fast = cluster.locate(die: die), slow = scan(cluster, die: die)
            #expect(fast?.te == slow?.te && fast?.group == slow?.group, "die \(die): \(note)", sourceLocation: sourceLocation)
        }
    }

    /// 2 dies per NPU. TE 0: 2 groups of TP2 on NPUs 8, 9. TE 1 (the MoE–attention shape): NPUs
    /// 10, 11, its one group starting at its die 2, so NPU 10's dies are expert-only. TE 2: TP4
    /// groups spanning two NPUs each. TE 3 outside the pod: groups on nothing. TE 4 scaled onto
    /// NPUs of two nodes.
    static func pod() -> ClusterManager {
        let cluster = ClusterManager(npusPerNode: 8, diesPerNPU: 2)
        #expect(cluster.layOutTE(npus: [8, 9], groups: 2, tp: 2, firstDie: 0) == 0)
        #expect(cluster.layOutTE(npus: [10, 11], groups: 1, tp: 2, firstDie: 2) == 1)
        #expect(cluster.layOutTE(npus: [0, 1, 2, 3], groups: 2, tp: 4, firstDie: 0) == 2)
        #expect(cluster.layOutTE(npus: [], groups: 2, tp: 2, firstDie: 0) == 3)
        #expect(cluster.layOutTE(npus: [7, 40], groups: 2, tp: 2, firstDie: 0) == 4)
        return cluster
    }

    @Test func layoutPlacesEachGroupOnItsTEsNPUs() {
        let cluster = Self.pod()
        #expect(cluster.teCount == 5)
        #expect(cluster.npus(of: 0, group: 1) == [9] && cluster.dies(of: 0, group: 1) == [18, 19])
        #expect(cluster.npus(of: 1, group: 0) == [11] && cluster.dies(of: 1, group: 0) == [22, 23])
        #expect(cluster.npus(of: 2, group: 1) == [2, 3] && cluster.dies(of: 2, group: 1) == [4, 5, 6, 7])
        #expect(cluster.npus(of: 3).isEmpty && !cluster.hasNPUs(3) && cluster.dies(of: 3, group: 1).isEmpty)
        #expect(cluster.dies(of: 4) == [14, 15, 80, 81], "a TE on two nodes: its second NPU is 40, not 8")
        #expect(cluster.holds(4, npu: 40) && !cluster.holds(4, npu: 8))
        #expect(cluster.locate(die: 19)! == (0, 1))
        #expect(cluster.locate(die: 20)! == (1, nil), "NPU 10's dies belong to TE 1 but to none of its groups")
        #expect(cluster.locate(die: 81)! == (4, 1))
        #expect(cluster.locate(die: 24) == nil && cluster.locate(die: 1_000) == nil, "spare and out-of-pod dies")
        cluster.drain(node: 1)
        #expect(cluster.isOnDrainedNode(0, group: 1) && cluster.isOnDrainedNode(1, group: 0))
        #expect(!cluster.isOnDrainedNode(2, group: 0) && !cluster.isOnDrainedNode(3, group: 0))
        Self.expectIndexMatchesScan(cluster, dies: -1..<100, "after layout")
    }

    @Test func aDeadNPUIsSwappedForASpareWithItsDiesAndExpertDies() {
        let cluster = Self.pod()
        cluster.mapExpertDies(of: 0, onto: cluster.dies(of: 0))
        cluster.replaceNPU(of: 0, dead: 9, with: 50)
        #expect(cluster.npus(of: 0) == [8, 50], "the spare takes the dead NPU's place in the TE's order")
        #expect(cluster.npus(of: 0, group: 1) == [50] && cluster.dies(of: 0, group: 1) == [100, 101])
        #expect(cluster.npus(of: 0, group: 0) == [8] && cluster.dies(of: 0, group: 0) == [16, 17])
        #expect(cluster.locate(die: 18) == nil, "the dead NPU left for repair")
        #expect(cluster.locate(die: 101)! == (0, 1))
        #expect(cluster.expertSlots[101] == ExpertSlot(instance: 0, index: 3) && cluster.expertSlots[19] == nil)
        // A TP4 group spanning the dead NPU and a live one keeps the live one.
        cluster.replaceNPU(of: 2, dead: 1, with: 60)
        #expect(cluster.npus(of: 2, group: 0) == [0, 60] && cluster.dies(of: 2, group: 0) == [0, 1, 120, 121])
        #expect(cluster.spareNPUs(podNPUs: 16, reserved: [], isDeadDie: { _ in false }).contains(1))
        Self.expectIndexMatchesScan(cluster, dies: -1..<130, "after two swaps")
    }

    /// Kill prefill to preserve decode: TE 0 gives NPU 9 away, its out-of-service group still
    /// lists it, and TE 1 takes it when its fork ends; the die is TE 1's from then on.
    @Test func givenNPUsBelongToTheirTakerOnly() {
        let cluster = Self.pod()
        cluster.give([9], from: 0)
        #expect(cluster.npus(of: 0) == [8] && cluster.npus(of: 0, group: 1) == [9], "the group keeps its list")
        #expect(cluster.locate(die: 18) == nil, "nobody holds NPU 9 during the fork")
        #expect(cluster.spareNPUs(podNPUs: 16, reserved: [9], isDeadDie: { _ in false }) == [4, 5, 6, 12, 13, 14, 15],
                "promised to the fork: not spare")
        cluster.replaceNPU(of: 1, dead: 11, with: 9)
        #expect(cluster.locate(die: 18)! == (1, 0), "TE 1's group, not TE 0's, though TE 0's number is lower")
        Self.expectIndexMatchesScan(cluster, dies: -1..<100, "after kill prefill and fork")
    }

    @Test func aReleasedTEHoldsNothingAndItsNPUsAreSpareAgain() {
        let cluster = Self.pod()
        cluster.mapExpertDies(of: 4, onto: cluster.dies(of: 4))
        cluster.release(4)
        #expect(cluster.teCount == 5, "a retired TE keeps its number")
        #expect(!cluster.hasNPUs(4) && cluster.dies(of: 4).isEmpty && cluster.npus(of: 4, group: 1).isEmpty)
        #expect(cluster.locate(die: 80) == nil && cluster.expertSlots.isEmpty)
        let spare = cluster.spareNPUs(podNPUs: 48, reserved: [], isDeadDie: { $0 == 28 })
        #expect(spare.contains(7) && spare.contains(40) && !spare.contains(14), "NPU 14 has a dead die")
        cluster.drain(node: 5)
        #expect(!cluster.spareNPUs(podNPUs: 48, reserved: [], isDeadDie: { _ in false }).contains(40), "node 5 drained")
        // Scaling adds a TE on the freed NPUs: the next number, indexed at once.
        #expect(cluster.layOutTE(npus: [7, 40], groups: 1, tp: 4, firstDie: 0) == 5)
        #expect(cluster.locate(die: 81)! == (5, 0) && cluster.dies(of: 5) == [14, 15, 80, 81])
        Self.expectIndexMatchesScan(cluster, dies: -1..<100, "after release and scale-up")
    }

    @Test func aCopySharesNothingWithItsOriginal() {
        let cluster = Self.pod()
        let copy = cluster.copy()
        cluster.replaceNPU(of: 0, dead: 9, with: 50)
        cluster.release(2)
        cluster.drain(node: 1)
        #expect(copy.npus(of: 0) == [8, 9] && copy.locate(die: 18)! == (0, 1) && copy.locate(die: 100) == nil)
        #expect(copy.hasNPUs(2) && copy.locate(die: 0)! == (2, 0) && !copy.isDrained(node: 1))
        copy.layOutTE(npus: [20], groups: 1, tp: 2, firstDie: 0)
        #expect(copy.teCount == 6 && cluster.teCount == 5 && cluster.locate(die: 40) == nil)
        Self.expectIndexMatchesScan(cluster, dies: -1..<130, "original")
        Self.expectIndexMatchesScan(copy, dies: -1..<130, "copy")
    }

    /// The engine's faults go through the map: an NPU-fork onto a spare moves the decode TE,
    /// and the index answers as the scan does on the engine and on a fork of it.
    @Test func theEngineRecoversThroughTheMap() throws {
        let engine = try FaultTests.engine(rate: 30, limit: 150) { $0.eplb = .off }
        let d = try FaultTests.decodeIndex(engine)
        engine.run(until: 2.5)
        let fork = try engine.fork()
        #expect(engine.apply(.faultNPU(21)).accepted)
        engine.run(until: 10)
        #expect(engine.cluster.npus(of: d).contains(40) && !engine.cluster.npus(of: d).contains(21))
        #expect(fork.cluster.npus(of: d).contains(21), "the fork kept its own map")
        let dies = 0..<(engine.topology.npuCount * engine.topology.diesPerNPU)
        Self.expectIndexMatchesScan(engine.cluster, dies: dies, "engine after an NPU-fork")
        Self.expectIndexMatchesScan(fork.cluster, dies: dies, "fork")
        #expect(engine.cluster.teCount == engine.instances.count)
    }

    // MARK: Eligibility

    /// On `pod()` (8 NPUs per node): TE 0's groups and TE 1's group sit on node 1, TE 2's on node
    /// 0, TE 4's g0 on node 0 and g1 on node 5, TE 3 on no node.
    @Test func drainsFaultsAndHoldOffsReturnTheGroupsWhoseEligibilityChanged() {
        let cluster = Self.pod()
        let refs = { (pairs: [(Int, Int)]) in pairs.map { GroupRef(te: $0.0, group: $0.1) } }
        #expect((0..<5).allSatisfy { cluster.hasPlaceableGroup(te: $0) }, "laid out: everything takes work")
        #expect(cluster.drain(node: 1) == refs([(0, 0), (0, 1), (1, 0)]))
        #expect(!cluster.setOutOfService(te: 0, group: 0, true), "already unplaceable")
        #expect(cluster.isOutOfService(te: 0, group: 0) && !cluster.isOutOfService(te: 0, group: 1))
        #expect(cluster.undrain(node: 1) == refs([(0, 1), (1, 0)]), "g0 of TE 0 is still out of service")
        #expect(!cluster.isPlaceable(te: 0, group: 0) && cluster.isPlaceable(te: 0, group: 1))
        #expect(cluster.setOutOfService(te: 0, group: 0, false) && cluster.isPlaceable(te: 0, group: 0))
        #expect(cluster.drain(node: 0) == refs([(2, 0), (2, 1), (4, 0)]))
        #expect(!cluster.hasPlaceableGroup(te: 2) && cluster.hasPlaceableGroup(te: 4), "TE 4's g1 is on node 5")
        #expect(cluster.setHeldOff(te: 4, true) == refs([(4, 1)]) && !cluster.hasPlaceableGroup(te: 4))
        #expect(cluster.isHeldOff(te: 4) && !cluster.isHeldOff(te: 2))
        #expect(cluster.undrain(node: 0) == refs([(2, 0), (2, 1)]), "TE 4 stays held off")
        #expect(cluster.setHeldOff(te: 4, false) == refs([(4, 0), (4, 1)]))
        // A TE outside the pod sits on no node: no drain reaches it.
        for node in 0..<6 { cluster.drain(node: node) }
        #expect(cluster.hasPlaceableGroup(te: 3) && !cluster.hasPlaceableGroup(te: 0) && !cluster.hasPlaceableGroup(te: 4))
        // A TE laid out on a drained node starts unplaceable there.
        #expect(cluster.layOutTE(npus: [44, 60], groups: 2, tp: 2, firstDie: 0) == 5)
        #expect(!cluster.isPlaceable(te: 5, group: 0) && cluster.isPlaceable(te: 5, group: 1), "NPU 60 is on node 7")
    }

    /// Every combination of the three facts on one group: placeable exactly when none holds, the
    /// TE's answer agrees, its version moves whenever a verdict did and not when nothing changed.
    @Test func placeableIsNotOnADrainedNodeNotOutOfServiceNotHeldOff() {
        let cluster = Self.pod()
        for combination in 0..<8 {
            let drained = combination & 1 != 0, out = combination & 2 != 0, held = combination & 4 != 0
            let before = cluster.placeableGroups(of: 0)
            if drained { cluster.drain(node: 1) } else { cluster.undrain(node: 1) }
            cluster.setOutOfService(te: 0, group: 0, out)
            cluster.setHeldOff(te: 0, held)
            let expected = !drained && !out && !held
            let after = cluster.placeableGroups(of: 0)
            #expect(cluster.isPlaceable(te: 0, group: 0) == expected && after[0] == expected, "\(combination)")
            #expect(cluster.isPlaceable(te: 0, group: 1) == (!drained && !held))
            #expect(cluster.hasPlaceableGroup(te: 0) == (!drained && !held), "g1 is never out of service here")
            #expect(after.mask == before.mask || after.version != before.version, "\(combination)")
            cluster.setOutOfService(te: 0, group: 0, out)
            cluster.setHeldOff(te: 0, held)
            #expect(cluster.placeableGroups(of: 0).version == after.version, "the same facts again: no change")
        }
    }

    /// The map moving a group off a drained node (an NPU swapped for a spare elsewhere) makes it
    /// placeable again; a released TE's groups sit on no node (scaling holds it off instead).
    @Test func hardwareChangesReassessTheGroups() {
        let cluster = Self.pod()
        cluster.drain(node: 1)
        #expect(!cluster.isPlaceable(te: 0, group: 1))
        cluster.replaceNPU(of: 0, dead: 9, with: 50)
        #expect(cluster.isPlaceable(te: 0, group: 1) && !cluster.isPlaceable(te: 0, group: 0))
        cluster.release(1)
        #expect(cluster.isPlaceable(te: 1, group: 0), "on no NPU: no drain holds it")
    }

    @Test func aCopysEligibilityIsItsOwn() {
        let cluster = Self.pod()
        cluster.drain(node: 1)
        cluster.setOutOfService(te: 2, group: 1, true)
        let copy = cluster.copy()
        #expect(copy.placeableGroups(of: 0).version == cluster.placeableGroups(of: 0).version)
        cluster.setOutOfService(te: 2, group: 1, false)
        cluster.undrain(node: 1)
        cluster.setHeldOff(te: 4, true)
        #expect(!copy.isPlaceable(te: 0, group: 0) && copy.isOutOfService(te: 2, group: 1) && !copy.isHeldOff(te: 4))
        #expect(copy.hasPlaceableGroup(te: 4) && !cluster.hasPlaceableGroup(te: 4))
        copy.setOutOfService(te: 3, group: 0, true)
        #expect(cluster.isPlaceable(te: 3, group: 0) && !copy.isPlaceable(te: 3, group: 0))
    }

    /// Drained at 2 s: prefill TE 0 (node 0) and a third of the decode TE's groups (node 2). From
    /// then on no request is newly placed on any of those groups, for prefill or decode, while the
    /// rest of the pod keeps taking work.
    @Test func aDrainedNodesGroupsGetNoNewPlacements() throws {
        let engine = try FaultTests.engine(rate: 40, limit: 400)
        let d = try FaultTests.decodeIndex(engine)
        engine.run(until: 2)
        #expect(engine.apply(.drain(node: 0)).accepted && engine.apply(.drain(node: 2)).accepted)
        let perNode = engine.topology.npusPerNode
        func onDrained(_ te: Int, _ g: Int) -> Bool {
            engine.cluster.npus(of: te, group: g).contains { [0, 2].contains($0 / perNode) }
        }
        let drainedDecode = engine.instances[d].groups.filter { onDrained(d, $0) }
        #expect(!drainedDecode.isEmpty && drainedDecode.count < engine.instances[d].groupCount)
        #expect(engine.instances[0].groups.allSatisfy { onDrained(0, $0) && !engine.cluster.isPlaceable(te: 0, group: $0) })
        #expect(drainedDecode.allSatisfy { !engine.cluster.isPlaceable(te: d, group: $0) })
        // What sat there at the drain may stay (or move off); nothing may arrive.
        var prefillThere = Set<Int>(), decodeThere = Set<Int>()
        for (id, r) in engine.requests {
            let p = engine.placement(of: r)
            if r.prefillInstance >= 0, p.prefillGroup >= 0, onDrained(r.prefillInstance, p.prefillGroup) { prefillThere.insert(id) }
            if r.decodeInstance >= 0, p.decodeGroup >= 0, onDrained(r.decodeInstance, p.decodeGroup) { decodeThere.insert(id) }
        }
        var placedElsewhere = Set<Int>()
        while engine.now < 20, engine.step() {
            for (id, r) in engine.requests {
                let p = engine.placement(of: r)
                if r.prefillInstance >= 0, p.prefillGroup >= 0, onDrained(r.prefillInstance, p.prefillGroup) {
                    #expect(prefillThere.contains(id), "request \(id) newly placed for prefill on a drained group")
                }
                if r.decodeInstance >= 0, p.decodeGroup >= 0 {
                    if onDrained(r.decodeInstance, p.decodeGroup) {
                        #expect(decodeThere.contains(id), "request \(id) newly placed for decode on a drained group")
                    } else if !decodeThere.contains(id) { placedElsewhere.insert(id) }
                }
            }
        }
        #expect(placedElsewhere.count > 20, "the other decode groups kept taking work")
        #expect(engine.requests.values.allSatisfy { $0.prefillInstance != 0 || prefillThere.contains($0.spec.id) })
        FaultTests.expectSound(engine)
    }
}
