import PodModel
import SimKit

/// Health and scaling of the pod's hardware (system.md §1.5): which nodes an operator has
/// drained, and which of those have been announced empty (serviceable without touching
/// traffic). The first slice of engine-components.md's `ClusterManager`: the hardware map, the
/// scaling lifecycle and the autoscaler slot move here next.
///
/// It decides nothing about requests: a drain asks the owners (the engine, the schedulers) to
/// move or finish what runs on the node; this component only keeps the node states and answers
/// whether hardware may take new work.
///
/// ```swift
/// let cluster = ClusterManager(npusPerNode: 8)
/// cluster.drain(3)                                   // true; again: false
/// cluster.isOnDrainedNode(npu: 27)                   // true (node 3)
/// cluster.announceEmpty(3)                           // true once: the engine logs it
/// cluster.undrain(3)                                 // true; the announcement is forgotten
/// ```
final class ClusterManager {
    let npusPerNode: Int
    /// Nodes drained by the operator (no new work on their NPUs).
    private(set) var drainedNodes: Set<Int> = []
    /// Drained nodes already announced empty (each is announced once per drain).
    private(set) var announcedEmpty: Set<Int> = []

    init(npusPerNode: Int) { self.npusPerNode = max(1, npusPerNode) }

    /// A deep, independent copy (for the engine's `fork()`).
    func copy() -> ClusterManager {
        let copy = ClusterManager(npusPerNode: npusPerNode)
        copy.drainedNodes = drainedNodes
        copy.announcedEmpty = announcedEmpty
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
