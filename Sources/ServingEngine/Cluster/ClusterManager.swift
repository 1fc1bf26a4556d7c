import PodModel
import SimKit

/// Health and scaling of the pod's hardware (system.md §1.5): which nodes an operator has
/// drained, which of those have been announced empty (serviceable without touching traffic),
/// how much work each drained node still holds, and which die is which expert die of a decode
/// TE (the part of the hardware map recovery's expert-coverage rule reads). The TEs' and
/// groups' NPUs and dies, the scaling lifecycle and the autoscaler slot of
/// engine-components.md's `ClusterManager` move here next.
///
/// It decides nothing about requests: a drain asks the owners (the engine, the schedulers) to
/// move or finish what runs on the node; this component keeps the node states, answers whether
/// hardware may take new work, and counts what is left on a drained node from a read-only
/// ``PlacementView`` given per call. Which dies are dead is the fault system's: queries that
/// need it take the dead dies as a parameter.
///
/// ```swift
/// let cluster = ClusterManager(npusPerNode: 8, diesPerNPU: 2)
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

    init(npusPerNode: Int, diesPerNPU: Int = 1) {
        self.npusPerNode = max(1, npusPerNode)
        self.diesPerNPU = max(1, diesPerNPU)
    }

    /// A deep, independent copy (for the engine's `fork()`): every field is a value.
    func copy() -> ClusterManager {
        let copy = ClusterManager(npusPerNode: npusPerNode, diesPerNPU: diesPerNPU)
        copy.drainedNodes = drainedNodes
        copy.announcedEmpty = announcedEmpty
        copy.expertSlots = expertSlots
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
