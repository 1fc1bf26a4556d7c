import PodModel
import SimKit

/// Health and scaling of the pod's hardware (system.md §1.5): the hardware map (which NPUs
/// each TE holds, which NPUs and dies each DP group holds, and whose a die is), which nodes an
/// operator has drained, which of those have been announced empty (serviceable without touching
/// traffic), how much work each drained node still holds, which die is which expert die of a
/// decode TE (what recovery's expert-coverage rule reads) and the spare pool. The scaling
/// lifecycle and the autoscaler slot of engine-components.md's `ClusterManager` move here next.
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
/// cluster.drain(3)                                   // true; again: false
/// cluster.isOnDrainedNode(npu: 27)                   // true (node 3)
/// cluster.announceEmpty(3)                           // true once: the engine logs it
/// cluster.undrain(3)                                 // true; the announcement is forgotten
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

    init(npusPerNode: Int, diesPerNPU: Int = 1) {
        self.npusPerNode = max(1, npusPerNode)
        self.diesPerNPU = max(1, diesPerNPU)
        hardware = HardwareMap(diesPerNPU: diesPerNPU)
    }

    /// A deep, independent copy (for the engine's `fork()`): every field is a value.
    func copy() -> ClusterManager {
        let copy = ClusterManager(npusPerNode: npusPerNode, diesPerNPU: diesPerNPU)
        copy.drainedNodes = drainedNodes
        copy.announcedEmpty = announcedEmpty
        copy.expertSlots = expertSlots
        copy.hardware = hardware
        return copy
    }

    // MARK: Drain

    /// Marks `node` drained; false (nothing changes) when it already is.
    @discardableResult
    func drain(_ node: Int) -> Bool {
        drainedNodes.insert(node).inserted
    }

    /// Returns `node` to service and forgets its announcement (a later drain announces again);
    /// false (nothing changes) when it was not drained.
    @discardableResult
    func undrain(_ node: Int) -> Bool {
        guard drainedNodes.remove(node) != nil else { return false }
        announcedEmpty.remove(node)
        return true
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

// MARK: Hardware map

extension ClusterManager {
    /// Lays out the next TE (numbered as the engine's next `instances` index) on `npus`:
    /// `groups` DP groups of `tp` dies from the TE's die `firstDie` on (``HardwareMap/layOut(npus:groups:tp:firstDie:hardwareDiesPerNPU:)``);
    /// `hardwareDiesPerNPU` nil: the pod's. Returns the TE's number.
    @discardableResult
    func layOutTE(npus: [Int], groups: Int, tp: Int, firstDie: Int, hardwareDiesPerNPU: Int? = nil) -> Int {
        hardware.layOut(npus: npus, groups: groups, tp: tp, firstDie: firstDie,
                        hardwareDiesPerNPU: hardwareDiesPerNPU ?? diesPerNPU)
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
    }

    /// TE `te` gives `npus` away (kill prefill to preserve decode; the decode TE takes them when
    /// its NPU-fork ends).
    func give(_ npus: [Int], from te: Int) { hardware.remove(npus, from: te) }

    /// TE `te` gives up all its hardware (retired): no NPUs, no dies, no expert dies.
    func release(_ te: Int) {
        hardware.release(te)
        releaseExpertDies(of: te)
    }

    /// The spare pool: NPUs `0..<podNPUs` no TE holds, not `reserved` (promised to a TE, e.g. an
    /// NPU-fork in progress), not on a drained node and with no dead die, in id order.
    func spareNPUs(podNPUs: Int, reserved: Set<Int>, isDeadDie: (Int) -> Bool) -> [Int] {
        (0..<podNPUs).filter { npu in
            !hardware.isInUse(npu: npu) && !reserved.contains(npu) && !isOnDrainedNode(npu: npu)
                && !(0..<diesPerNPU).contains { isDeadDie(npu * diesPerNPU + $0) }
        }
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
