/// A DP group by its TE's index and its index in the TE (engine-components.md's `GroupID`).
struct GroupRef: Hashable, Comparable {
    var te: Int
    var group: Int

    static func < (a: GroupRef, b: GroupRef) -> Bool { (a.te, a.group) < (b.te, b.group) }
}

/// Which DP groups may take new work, and why not, owned by ``ClusterManager``: a group is
/// placeable when no NPU of it sits on a drained node, it is not out of service (fault
/// recovery took it out) and scaling does not hold its TE off (starting, scaled in, retired).
///
/// The three facts are kept here and the verdict with them, updated when a fact changes, so a
/// scheduler or policy deciding where a request goes reads one flag per group (`placeable[te][g]`)
/// instead of recomputing it: the JE's routing, the prefill leader and the decode balancing
/// read it for every group on every decision. Readers get this struct (or one TE's
/// ``PlaceableGroups``) per call and keep nothing of it.
struct PlacementEligibility {
    /// By TE, by group: fault recovery took the group out (lost die, TE down).
    private(set) var outOfService: [[Bool]] = []
    /// By TE: the scaling lifecycle holds it off (not in service).
    private(set) var heldOff: [Bool] = []
    /// By TE, by group: may take new work (the verdict).
    private(set) var placeable: [[Bool]] = []
    /// By TE: how many of its groups are placeable (the TE accepts work when any is).
    private(set) var placeableCount: [Int] = []
    /// By TE: changes whenever a group of the TE changes verdict, so an order a scheduler keeps
    /// over the TE's placeable groups knows when it must be rebuilt (``PlaceableGroups/version``).
    private(set) var version: [Int] = []
    private var nextVersion = 1

    /// A new TE of `groups` groups, all in service and not held off; `onDrainedNode(g)` tells
    /// which sit on a drained node.
    mutating func add(groups: Int, onDrainedNode: (Int) -> Bool) {
        outOfService.append(Array(repeating: false, count: groups))
        heldOff.append(false)
        let mask = (0..<groups).map { !onDrainedNode($0) }
        placeable.append(mask)
        placeableCount.append(mask.reduce(0) { $0 + ($1 ? 1 : 0) })
        version.append(bump())
    }

    mutating func setOutOfService(_ te: Int, _ g: Int, _ out: Bool) { outOfService[te][g] = out }
    mutating func setHeldOff(_ te: Int, _ held: Bool) { heldOff[te] = held }

    /// Re-derives group `g` of TE `te` given whether it sits on a drained node; true when its
    /// verdict changed.
    mutating func reassess(_ te: Int, _ g: Int, onDrainedNode: Bool) -> Bool {
        let now = !onDrainedNode && !outOfService[te][g] && !heldOff[te]
        guard placeable[te][g] != now else { return false }
        placeable[te][g] = now
        placeableCount[te] += now ? 1 : -1
        version[te] = bump()
        return true
    }

    private mutating func bump() -> Int {
        defer { nextVersion += 1 }
        return nextVersion
    }

    // MARK: Reads

    func isPlaceable(_ te: Int, _ g: Int) -> Bool { placeable[te][g] }
    /// Whether TE `te` accepts work at all (some group is placeable).
    func hasPlaceableGroup(_ te: Int) -> Bool { placeableCount[te] > 0 }
    /// TE `te`'s groups, for one scheduling call.
    func groups(of te: Int) -> PlaceableGroups { PlaceableGroups(mask: placeable[te], version: version[te]) }
}

/// Which DP groups of one TE may take new work, as ``ClusterManager`` answers for one call (a
/// drain or a fault may change it before the next).
struct PlaceableGroups {
    /// By group.
    let mask: [Bool]
    /// Changes whenever `mask` does: a decode scheduler's load index built from an older mask is
    /// rebuilt (``DecodeScheduler/currentLoadIndex(groups:placeable:batchLimit:)``).
    let version: Int

    subscript(g: Int) -> Bool { mask[g] }

    /// All of `count` groups placeable (tests and TEs built outside the cluster manager).
    static func all(_ count: Int) -> PlaceableGroups { PlaceableGroups(mask: Array(repeating: true, count: count), version: 0) }
}
