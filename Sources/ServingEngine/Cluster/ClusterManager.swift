import PodModel
import SimKit

/// Health and scaling of the pod's hardware (system.md §1.5): the hardware map (which NPUs
/// each TE holds, which NPUs and dies each DP group holds, and whose a die is), which nodes an
/// operator has drained, which of those have been announced empty (serviceable without touching
/// traffic), how much work each drained node still holds, which DP groups may take new work
/// (``PlacementEligibility``: drained node, out of service, held off by scaling), which die is
/// which expert die of a decode TE (what recovery's expert-coverage rule reads) and the spare pool. It owns the
/// scaling lifecycle and the autoscaler slot as a child component, ``scaling`` (``ScalingController``, its own
/// file and tests: a separate API, not more methods here); the engine keeps the hold-off below in step with it.
///
/// It decides nothing about requests: a drain asks the owners (the engine, the schedulers) to
/// move or finish what runs on the node; this component keeps the node states and the map,
/// answers whether hardware may take new work, and counts what is left on a drained node from a
/// read-only ``PlacementView`` given per call. Which dies are dead is the fault system's: queries
/// that need it take the dead dies as a parameter. The map changes only through the calls below
/// (layout at start and on a scale-up, an NPU swapped for a spare, NPUs given away, a TE
/// released), which keep the die index in step.
///
/// ```swift
/// let cluster = ClusterManager(npusPerNode: 8, diesPerNPU: 2)
/// cluster.layOutTE(npus: [8, 9], groups: 2, tp: 2, firstDie: 0)   // TE 0: g0 on NPU 8, g1 on NPU 9
/// cluster.locate(die: 19)                            // (te: 0, group: 1)
/// cluster.replaceNPU(of: 0, dead: 9, with: 40)       // g1 now on NPU 40 (dies 80, 81)
/// cluster.drain(node: 1)                             // [(0, 0)]: g0 (NPU 8) takes no new work
/// cluster.isPlaceable(te: 0, group: 1)               // true: g1 moved to node 5
/// cluster.setOutOfService(te: 0, group: 1, true)     // true: g1 stops taking work too
/// cluster.setOutOfService(te: 0, group: 0, true)     // false: g0 already took none
/// cluster.announceEmpty(1)                           // true once: the engine logs it
/// cluster.undrain(node: 1)                           // []: g0 is still out of service; announcement forgotten
/// cluster.mapExpertDies(of: 2, onto: 20..<24)        // dies 20–23 are TE 2's expert dies 0–3
/// cluster.moveExpertDies(fromNPU: 11, toNPU: 50)     // dies 22, 23 → 100, 101 (still 2, 3)
/// ```
final class ClusterManager {
    let npusPerNode: Int
    let diesPerNPU: Int
    /// Nodes drained by the operator (no new work on their NPUs).
    private(set) var drainedNodes: Set<Int> = []
    /// Drained nodes already announced empty (each is announced once per drain).
    private(set) var announcedEmpty: Set<Int> = []
    /// Expert-die index of each expert die of the decode TEs, by die (kept up to date when an
    /// NPU is replaced or a TE retires).
    private(set) var expertSlots: [Int: ExpertSlot] = [:]
    /// Which NPUs and dies each TE and DP group holds, and the die index.
    private(set) var hardware: HardwareMap
    /// Which DP groups may take new work; changed only through this class's calls, which keep it
    /// in step with the drains, the map and the facts recovery and scaling report.
    private(set) var eligibility = PlacementEligibility()
    /// TE lifecycles, scale operations, pre-warmed spares, the autoscaler (engine-components.md §2
    /// puts them with the cluster manager; system.md §1.5: it handles health and scaling).
    private(set) var scaling = ScalingController()

    init(npusPerNode: Int, diesPerNPU: Int = 1) {
        self.npusPerNode = max(1, npusPerNode)
        self.diesPerNPU = max(1, diesPerNPU)
        hardware = HardwareMap(diesPerNPU: diesPerNPU)
    }

    /// A deep, independent copy (for the engine's `fork()`): every field is a value but
    /// ``scaling``, which is copied in turn.
    func copy() -> ClusterManager {
        let copy = ClusterManager(npusPerNode: npusPerNode, diesPerNPU: diesPerNPU)
        copy.drainedNodes = drainedNodes
        copy.announcedEmpty = announcedEmpty
        copy.expertSlots = expertSlots
        copy.hardware = hardware
        copy.eligibility = eligibility
        copy.scaling = scaling.copy()
        return copy
    }

    // MARK: Drain

    /// Marks `node` drained: its groups take no new work. Returns the groups that stopped being
    /// placeable, in TE then group order (none when the node already was drained, or its groups
    /// already took no work).
    @discardableResult
    func drain(node: Int) -> [GroupRef] {
        guard drainedNodes.insert(node).inserted else { return [] }
        return reassess(node: node)
    }

    /// Returns `node` to service and forgets its announcement (a later drain announces again).
    /// Returns the groups placeable again (none when it was not drained; a group also out of
    /// service or held off stays unplaceable).
    @discardableResult
    func undrain(node: Int) -> [GroupRef] {
        guard drainedNodes.remove(node) != nil else { return [] }
        announcedEmpty.remove(node)
        return reassess(node: node)
    }

    func isDrained(node: Int) -> Bool { drainedNodes.contains(node) }

    /// Whether NPU `npu` sits on a drained node.
    func isOnDrainedNode(npu: Int) -> Bool { drainedNodes.contains(npu / npusPerNode) }

    // MARK: Announcements

    /// Some drained node has not been announced empty yet (cheap: the engine checks it after
    /// every event before counting what is left on the nodes).
    var hasUnannouncedDrains: Bool { drainedNodes.count > announcedEmpty.count }

    /// Whether drained `node` was announced empty.
    func isAnnouncedEmpty(_ node: Int) -> Bool { announcedEmpty.contains(node) }

    /// Records that drained `node` is empty: true the first time (the engine logs it then),
    /// false when already announced or not drained.
    @discardableResult
    func announceEmpty(_ node: Int) -> Bool {
        guard drainedNodes.contains(node) else { return false }
        return announcedEmpty.insert(node).inserted
    }
}

// MARK: Eligibility

extension ClusterManager {
    /// Whether group `g` of TE `te` may take new work: not on a drained node, not out of service,
    /// its TE not held off by scaling.
    func isPlaceable(te: Int, group g: Int) -> Bool { eligibility.isPlaceable(te, g) }
    /// Whether TE `te` accepts work (some group placeable).
    func hasPlaceableGroup(te: Int) -> Bool { eligibility.hasPlaceableGroup(te) }
    /// TE `te`'s placeable groups, for one scheduling call.
    func placeableGroups(of te: Int) -> PlaceableGroups { eligibility.groups(of: te) }
    /// Whether any group of any TE is not placeable.
    var hasUnplaceableGroups: Bool { eligibility.unplaceableCount > 0 }
    /// Whether scaling holds any TE off.
    var hasHeldOffTEs: Bool { eligibility.heldOffCount > 0 }
    /// TE `te`'s placeable groups when some group is not; nil when every group is (the usual
    /// case: a placement loop then reads no verdict per group, as before the verdicts moved here).
    @inline(__always)
    func placeableGroupsIfRestricted(of te: Int) -> PlaceableGroups? {
        eligibility.isRestricted(te) ? eligibility.groups(of: te) : nil
    }
    func isOutOfService(te: Int, group g: Int) -> Bool { eligibility.isOutOfService(te, g) }
    /// Whether scaling holds TE `te` off (starting, scaled in, retired): no new work, outside the JE's pool.
    func isHeldOff(te: Int) -> Bool { eligibility.isHeldOff(te) }

    /// Fault recovery takes group `g` of TE `te` out of service (true) or back; returns whether
    /// the group's placeability changed.
    @discardableResult
    func setOutOfService(te: Int, group g: Int, _ out: Bool) -> Bool {
        eligibility.setOutOfService(te, g, out)
        return reassess(te, g)
    }

    /// The scaling lifecycle holds TE `te` off (true) or puts it in service; returns the groups
    /// whose placeability changed.
    @discardableResult
    func setHeldOff(te: Int, _ held: Bool) -> [GroupRef] {
        eligibility.setHeldOff(te, held)
        return reassess(te: te)
    }

    /// Holds TE `te` off exactly while its scaling phase (``scaling``) is not in service: the
    /// engine calls it wherever a phase enters or leaves `inService`. Returns the groups whose
    /// placeability changed.
    @discardableResult
    func holdOffFollowsPhase(te: Int) -> [GroupRef] {
        setHeldOff(te: te, scaling.phase(te) != .inService)
    }

    /// Re-derives the verdict of group `g` of TE `te` from the facts; true when it changed.
    func reassess(_ te: Int, _ g: Int) -> Bool {
        eligibility.reassess(te, g, onDrainedNode: isOnDrainedNode(te, group: g))
    }

    /// Re-derives every group of TE `te` (its hardware or hold-off changed); the changed ones.
    @discardableResult
    func reassess(te: Int) -> [GroupRef] {
        var changed: [GroupRef] = []
        for g in 0..<eligibility.groupCount[te] where reassess(te, g) { changed.append(GroupRef(te: te, group: g)) }
        return changed
    }

    /// Re-derives the groups with an NPU on `node` (drained or undrained); the changed ones, in
    /// TE then group order.
    func reassess(node: Int) -> [GroupRef] {
        var changed: [GroupRef] = []
        for te in eligibility.groupCount.indices {
            for g in 0..<eligibility.groupCount[te]
            where npus(of: te, group: g).contains(where: { $0 / npusPerNode == node }) && reassess(te, g) {
                changed.append(GroupRef(te: te, group: g))
            }
        }
        return changed
    }
}

// MARK: Hardware map

extension ClusterManager {
    /// Lays out the next TE (numbered as the engine's next `instances` index) on `npus`:
    /// `groups` DP groups of `tp` dies from the TE's die `firstDie` on (``HardwareMap/layOut(npus:groups:tp:firstDie:hardwareDiesPerNPU:)``);
    /// `hardwareDiesPerNPU` nil: the pod's. Returns the TE's number.
    @discardableResult
    func layOutTE(npus: [Int], groups: Int, tp: Int, firstDie: Int, hardwareDiesPerNPU: Int? = nil) -> Int {
        let te = hardware.layOut(npus: npus, groups: groups, tp: tp, firstDie: firstDie,
                                 hardwareDiesPerNPU: hardwareDiesPerNPU ?? diesPerNPU)
        eligibility.add(groups: max(0, groups)) { isOnDrainedNode(te, group: $0) }
        return te
    }

    /// TEs laid out so far (retired ones included).
    var teCount: Int { hardware.teCount }
    /// TE `te`'s NPUs, in its order (empty: outside the pod or retired).
    func npus(of te: Int) -> [Int] { hardware.teNPUs[te] }
    /// Whether TE `te` holds any NPU (not outside the pod, not retired).
    func hasNPUs(_ te: Int) -> Bool { !hardware.teNPUs[te].isEmpty }
    /// Whether TE `te`'s NPU list holds `npu`.
    func holds(_ te: Int, npu: Int) -> Bool { hardware.teNPUs[te].contains(npu) }
    /// Group `g` of TE `te`: its NPUs and its global die ids.
    func npus(of te: Int, group g: Int) -> [Int] { hardware.groupNPUs[te][g] }
    func dies(of te: Int, group g: Int) -> [Int] { hardware.groupDies[te][g] }
    /// Every die of TE `te`'s groups, group by group.
    func dies(of te: Int) -> [Int] { hardware.groupDies[te].flatMap { $0 } }
    /// Whether group `g` of TE `te` has an NPU on a drained node.
    func isOnDrainedNode(_ te: Int, group g: Int) -> Bool {
        hardware.groupNPUs[te][g].contains(where: isOnDrainedNode)
    }

    /// The TE and DP group (nil: a die of the TE no group uses, e.g. an expert-only die) that
    /// own `die`, if any. O(1).
    func locate(die: Int) -> (te: Int, group: Int?)? { hardware.locate(die: die) }

    /// TE `te` moves off NPU `dead` onto `spare` (recovery; the dead NPU leaves for repair): its
    /// groups' dies and its expert dies follow.
    func replaceNPU(of te: Int, dead: Int, with spare: Int) {
        hardware.replace(dead, with: spare, in: te)
        moveExpertDies(fromNPU: dead, toNPU: spare)
        reassess(te: te)   // a group may have left a drained node
    }

    /// TE `te` gives `npus` away (kill prefill to preserve decode; the decode TE takes them when
    /// its NPU-fork ends).
    func give(_ npus: [Int], from te: Int) { hardware.remove(npus, from: te) }

    /// TE `te` gives up all its hardware (retired): no NPUs, no dies, no expert dies.
    func release(_ te: Int) {
        hardware.release(te)
        releaseExpertDies(of: te)
        reassess(te: te)   // its groups sit on no node now (held off all the same)
    }

    /// The spare pool: NPUs `0..<podNPUs` no TE holds, not `reserved` (promised to a TE, e.g. an
    /// NPU-fork in progress), not on a drained node and with no dead die, in id order.
    func spareNPUs(podNPUs: Int, reserved: Set<Int>, isDeadDie: (Int) -> Bool) -> [Int] {
        (0..<podNPUs).filter { npu in
            !hardware.isInUse(npu: npu) && !reserved.contains(npu) && !isOnDrainedNode(npu: npu)
                && !(0..<diesPerNPU).contains { isDeadDie(npu * diesPerNPU + $0) }
        }
    }

    /// Healthy NPUs no TE uses that sit on drained nodes: spares an undrain would give back
    /// (a refused scale-up says so rather than only "0 are spare").
    func idleNPUsOnDrainedNodes(podNPUs: Int, isDeadDie: (Int) -> Bool) -> Int {
        guard !drainedNodes.isEmpty else { return 0 }
        return (0..<podNPUs).count(where: { npu in
            isOnDrainedNode(npu: npu) && !hardware.isInUse(npu: npu)
                && !(0..<diesPerNPU).contains { isDeadDie(npu * diesPerNPU + $0) }
        })
    }
}

// MARK: Drain progress

extension ClusterManager {
    /// Requests still holding something on each drained node, in node order: queued, prefilling
    /// or waiting to hand over KV on a group with an NPU there, or decoding there (a colocated
    /// TE's request counts once, on its prefill group, at every stage). A request counts once per
    /// group and node it touches.
    func drainProgress(pod: some PlacementView) -> [DrainProgress] {
        guard !drainedNodes.isEmpty else { return [] }
        var left: [Int: Int] = [:]
        let perNode = npusPerNode
        func count(_ npus: [Int]) {
            for node in Set(npus.map { $0 / perNode }) where drainedNodes.contains(node) { left[node, default: 0] += 1 }
        }
        pod.forEachPlacedRequest { r in
            if r.prefillTE >= 0, r.prefillGroup >= 0, r.stage != .decode || pod.role(of: r.prefillTE) == .colocated {
                count(pod.npus(of: r.prefillTE, group: r.prefillGroup))
            }
            if r.decodeTE >= 0, r.decodeGroup >= 0, pod.role(of: r.decodeTE) != .colocated {
                count(pod.npus(of: r.decodeTE, group: r.decodeGroup))
            }
        }
        return drainedNodes.sorted().map { DrainProgress(node: $0, requestsLeft: left[$0] ?? 0) }
    }

    /// Announces the drained nodes that hold nothing any more and were not announced yet;
    /// returns them in node order (the engine logs each).
    func announceEmptyNodes(pod: some PlacementView) -> [Int] {
        guard hasUnannouncedDrains else { return [] }
        var announced: [Int] = []
        for progress in drainProgress(pod: pod) where progress.requestsLeft == 0 && announceEmpty(progress.node) {
            announced.append(progress.node)
        }
        return announced
    }
}

// MARK: Expert dies

/// Which expert die of a decode TE a die is: the TE (by index) and the die's index among the
/// TE's `ep` expert dies (ServingEngine+ExpertCoverage.swift reads what each index holds).
struct ExpertSlot: Equatable {
    var instance: Int
    var index: Int
}

extension ClusterManager {
    /// Decode TE `te`'s expert dies are `dies`, in index order (expert die k is the k-th).
    func mapExpertDies(of te: Int, onto dies: some Sequence<Int>) {
        for (k, die) in dies.enumerated() { expertSlots[die] = ExpertSlot(instance: te, index: k) }
    }

    /// NPU `dead` was replaced by `spare`: the expert dies on it move to the spare's dies at
    /// the same position, keeping their TE and index.
    func moveExpertDies(fromNPU dead: Int, toNPU spare: Int) {
        for die in dead * diesPerNPU..<(dead + 1) * diesPerNPU {
            if let slot = expertSlots.removeValue(forKey: die) { expertSlots[spare * diesPerNPU + die % diesPerNPU] = slot }
        }
    }

    /// TE `te` gave up its hardware (retired): it has no expert dies any more.
    func releaseExpertDies(of te: Int) {
        expertSlots = expertSlots.filter { $0.value.instance != te }
    }

    /// Expert-die indices of decode TE `te` that sit on `dead` dies.
    func deadExpertIndices(of te: Int, dead: Set<Int>) -> Set<Int> {
        var indices = Set<Int>()
        for (die, slot) in expertSlots where slot.instance == te && dead.contains(die) { indices.insert(slot.index) }
        return indices
    }

    /// How many expert dies of decode TE `te` sit on `dead` dies.
    func expertDiesLost(of te: Int, dead: Set<Int>) -> Int {
        expertSlots.reduce(0) { $0 + ($1.value.instance == te && dead.contains($1.key) ? 1 : 0) }
    }
}
