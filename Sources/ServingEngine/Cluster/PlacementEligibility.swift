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
/// The facts are kept here and the verdict with them, updated when a fact changes, so a
/// scheduler or policy deciding where a request goes reads one flag per group instead of
/// recomputing it: the JE's routing, the prefill leader and the decode balancing read it for
/// every group on every decision. Flat, by a global group number (a TE's groups are numbered
/// from its `groupBase` on, in layout order), so a read is two array loads and handing a TE's
/// groups out (``PlaceableGroups``) copies one array reference, not an array per TE: the
/// per-arrival reads retained and released nested arrays enough to cost 5% of a saturated
/// superpod's instructions.
struct PlacementEligibility {
    /// By TE: its first group's global number.
    private(set) var groupBase: [Int] = []
    /// By TE: its number of groups.
    private(set) var groupCount: [Int] = []
    /// By global group: fault recovery took the group out (lost die, TE down).
    private(set) var outOfService: [Bool] = []
    /// By TE: the scaling lifecycle holds it off (not in service).
    private(set) var heldOff: [Bool] = []
    /// TEs held off (none, the usual case: the per-TE flag is not read).
    private(set) var heldOffCount = 0
    /// By global group: may take new work (the verdict).
    private(set) var placeable: [Bool] = []
    /// By TE: how many of its groups are placeable (the TE accepts work when any is).
    private(set) var placeableCount: [Int] = []
    /// Groups not placeable, over all TEs (none, the usual case: no verdict is read per group).
    private(set) var unplaceableCount = 0
    /// By TE: changes whenever a group of the TE changes verdict, so an order a scheduler keeps
    /// over the TE's placeable groups knows when it must be rebuilt (``PlaceableGroups/version``).
    private(set) var version: [Int] = []
    private var nextVersion = 1

    /// A new TE of `groups` groups, all in service and not held off; `onDrainedNode(g)` tells
    /// which sit on a drained node.
    mutating func add(groups: Int, onDrainedNode: (Int) -> Bool) {
        groupBase.append(placeable.count)
        groupCount.append(groups)
        outOfService.append(contentsOf: repeatElement(false, count: groups))
        heldOff.append(false)
        var count = 0
        for g in 0..<groups {
            let ok = !onDrainedNode(g)
            placeable.append(ok)
            if ok { count += 1 }
        }
        placeableCount.append(count)
        unplaceableCount += groups - count
        version.append(bump())
    }

    mutating func setOutOfService(_ te: Int, _ g: Int, _ out: Bool) { outOfService[groupBase[te] + g] = out }
    mutating func setHeldOff(_ te: Int, _ held: Bool) {
        guard heldOff[te] != held else { return }
        heldOff[te] = held
        heldOffCount += held ? 1 : -1
    }

    /// Re-derives group `g` of TE `te` given whether it sits on a drained node; true when its
    /// verdict changed.
    mutating func reassess(_ te: Int, _ g: Int, onDrainedNode: Bool) -> Bool {
        let cell = groupBase[te] + g
        let now = !onDrainedNode && !outOfService[cell] && !heldOff[te]
        guard placeable[cell] != now else { return false }
        placeable[cell] = now
        placeableCount[te] += now ? 1 : -1
        unplaceableCount += now ? -1 : 1
        version[te] = bump()
        return true
    }

    private mutating func bump() -> Int {
        defer { nextVersion += 1 }
        return nextVersion
    }

    // MARK: Reads

    func isPlaceable(_ te: Int, _ g: Int) -> Bool { placeable[groupBase[te] + g] }
    func isOutOfService(_ te: Int, _ g: Int) -> Bool { outOfService[groupBase[te] + g] }
    /// Whether TE `te` accepts work at all (some group is placeable).
    func hasPlaceableGroup(_ te: Int) -> Bool { placeableCount[te] > 0 }
    func isHeldOff(_ te: Int) -> Bool { heldOffCount > 0 && heldOff[te] }
    /// Whether some group of TE `te` is not placeable.
    @inline(__always)
    func isRestricted(_ te: Int) -> Bool { unplaceableCount > 0 && placeableCount[te] != groupCount[te] }
    /// TE `te`'s groups, for one scheduling call (without the verdicts when all are placeable:
    /// nothing to retain on a decode pull).
    func groups(of te: Int) -> PlaceableGroups {
        PlaceableGroups(cells: isRestricted(te) ? placeable : nil, base: groupBase[te], count: groupCount[te],
                        version: version[te])
    }
}

/// Which DP groups of one TE may take new work, as ``ClusterManager`` answers for one call (a
/// drain or a fault may change it before the next). A window on the cluster's flat verdicts:
/// handing it out copies one array reference.
struct PlaceableGroups {
    /// Verdicts by global group; the TE's are `base ..< base + count`. Nil: all placeable.
    private let cells: [Bool]?
    private let base: Int
    /// The TE's number of groups.
    let count: Int
    /// Changes whenever the TE's verdicts do: a decode scheduler's load index built from an older
    /// answer is rebuilt (``DecodeScheduler/currentLoadIndex(te:kv:placeable:batchLimit:)``).
    let version: Int

    init(cells: [Bool]?, base: Int, count: Int, version: Int) {
        self.cells = cells
        self.base = base
        self.count = count
        self.version = version
    }

    /// A TE's own verdicts, by group (tests and TEs built outside the cluster manager).
    init(mask: [Bool], version: Int) {
        self.init(cells: mask, base: 0, count: mask.count, version: version)
    }

    subscript(g: Int) -> Bool { cells?[base + g] ?? true }

    /// The TE's verdicts, by group.
    var mask: [Bool] { (0..<count).map { self[$0] } }

    /// All of `count` groups placeable.
    static func all(_ count: Int) -> PlaceableGroups { PlaceableGroups(mask: Array(repeating: true, count: count), version: 0) }
}
