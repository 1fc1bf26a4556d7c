/// The `kv-aware` decode DP balancing choice of one decode TE, kept up to date as its groups
/// change instead of found by a scan of every group per pull (the scan was 8% of a saturated
/// superpod's instructions: 320 groups per finished prefill).
///
/// A tournament tree over the TE's DP groups: each leaf is a group, eligible (placeable, under
/// the batch limit) or not; each inner node holds the better of its two children, better meaning
/// fewer owned + reserved KV blocks, then the lower group index. The root is the group the scan
/// picks: the groups of a TE share `totalBlocks` (``init?(groups:placeable:slots:batchLimit:)`` refuses others),
/// so ordering by the integer block count is exactly the scan's order by
/// `usageIncludingReserved` (a correctly rounded division by the same positive number is
/// monotone, and distinct counts below 2⁵³ stay distinct), ties included.
///
/// The TE's ``DecodeScheduler`` calls ``update(_:load:slots:)`` after a group's KV or slots change
/// (``DecodeScheduler/noteLoadChanged(_:te:kv:)``). Which groups are placeable is taken from the
/// cluster manager's answer at build and kept with its version: a TE whose placeable groups,
/// groups or batch limit change gets a fresh index (``fits(groupCount:placeable:batchLimit:)``), so a
/// KV change between two picks needs no eligibility read. ``problems(against:placeable:slots:)``
/// compares it with a scan (audits).
///
/// ```swift
/// var index = store.withGroups(of: d) {   // the TE's KV managers, borrowed from the KV store
///     DecodeLoadIndex(groups: $0, placeable: cluster.placeableGroups(of: d), slots: scheduler.slots, batchLimit: 64)!
/// }
/// index.best                        // the group kv-aware picks, or nil when none is eligible
/// index.update(3, load: store.decodeLoad(GroupRef(te: d, group: 3)), slots: 1)
/// ```
struct DecodeLoadIndex {
    let batchLimit: Int
    let groupCount: Int
    /// KV blocks of every group (the index's validity condition).
    let groupBlocks: Int
    /// Leaves start here (a power of two ≥ `groupCount`); node `n`'s children are `2n`, `2n + 1`.
    private let firstLeaf: Int
    /// Owned + reserved blocks by group.
    private var load: [Int]
    /// Winning group below each node (negative: none eligible); `winner[1]` is the root. A leaf
    /// is its group, `-1` (placeable, at the batch limit) or ``unplaceable``: the answer the
    /// index was built from lives in its leaves, no array beside them (the index is copied into
    /// every pick's view).
    private var winner: [Int32]
    /// The version of the placeable answer the index was built from (a newer one rebuilds it).
    private let placeableVersion: Int
    private static let unplaceable: Int32 = -2

    /// An index over `groups` with `slots` taken in each, or nil when their KV sizes differ (the
    /// block count would not order them as usage does) or there are none.
    init?(groups: UnsafeBufferPointer<KVBlockManager>, placeable: PlaceableGroups, slots: [Int], batchLimit: Int) {
        guard !groups.isEmpty, groups.count < Int(Int32.max), slots.count == groups.count,
              placeable.count == groups.count else { return nil }
        let blocks = groups[0].totalBlocks
        for g in groups.indices where groups[g].totalBlocks != blocks { return nil }
        self.batchLimit = batchLimit
        groupCount = groups.count
        groupBlocks = blocks
        placeableVersion = placeable.version
        var leaves = 1
        while leaves < groups.count { leaves *= 2 }
        firstLeaf = leaves
        load = Array(repeating: 0, count: groups.count)
        winner = Array(repeating: -1, count: 2 * leaves)
        for g in groups.indices {
            load[g] = Self.load(of: groups[g])
            winner[leaves + g] = !placeable[g] ? Self.unplaceable : slots[g] < batchLimit ? Int32(g) : -1
        }
        var node = leaves - 1
        while node >= 1 {
            winner[node] = better(winner[2 * node], winner[2 * node + 1])
            node -= 1
        }
    }

    /// The eligible group with the least owned + reserved KV, lowest index on ties; nil if none.
    var best: Int? {
        let root = winner[1]   // with one group, its leaf is the root
        return root < 0 ? nil : Int(root)
    }

    /// Group `g` changed (KV or slots): its leaf and the path to the root are redone, up to the
    /// first node whose winner is another group both before and after (nothing above it changes:
    /// the nodes above see the same winner with the same load). Takes the group's numbers, not the
    /// group (a copy would retain its KV buffers).
    mutating func update(_ g: Int, load blocks: Int, slots: Int) {
        guard g >= 0, g < groupCount else { return }
        let leaf = firstLeaf + g
        let me = Int32(truncatingIfNeeded: g)
        let eligible = slots < batchLimit
        load.withUnsafeMutableBufferPointer { load in
            load[g] = blocks
            winner.withUnsafeMutableBufferPointer { winner in
                if winner[leaf] == Self.unplaceable { return }   // not a candidate whatever its load (kept above)
                winner[leaf] = eligible ? me : -1
                var node = leaf &>> 1
                while node >= 1 {
                    let before = winner[node]
                    let after = Self.better(winner[2 &* node], winner[2 &* node &+ 1], load)
                    if after == before && before != me { return }
                    winner[node] = after
                    node &>>= 1
                }
            }
        }
    }

    /// Whether this index still describes groups of this shape and these placeable groups.
    func fits(groupCount: Int, placeable: PlaceableGroups, batchLimit: Int) -> Bool {
        self.batchLimit == batchLimit && self.groupCount == groupCount && placeableVersion == placeable.version
    }

    /// Differences from a fresh scan of `groups` with `slots` taken and `placeable` (empty when the
    /// index is current).
    func problems(against groups: UnsafeBufferPointer<KVBlockManager>, placeable: PlaceableGroups, slots: [Int]) -> [String] {
        // Built for an older answer: never read again, the next pick rebuilds it.
        guard placeable.version == placeableVersion else { return [] }
        guard groups.count == groupCount, slots.count == groupCount, placeable.count == groupCount else {
            return ["decode load index covers \(groupCount) groups of \(groups.count)"]
        }
        var found: [String] = []
        for g in groups.indices {
            let eligible = placeable[g] && slots[g] < batchLimit
            if load[g] != Self.load(of: groups[g]) || (winner[firstLeaf + g] >= 0) != eligible {
                found.append("decode load index is stale for dp\(g)")
            }
        }
        return found
    }

    // MARK: Internals

    static func load(of group: borrowing KVBlockManager) -> Int { group.usedBlocks + group.reservedBlocks }

    private func better(_ a: Int32, _ b: Int32) -> Int32 {
        load.withUnsafeBufferPointer { Self.better(a, b, UnsafeMutableBufferPointer(mutating: $0)) }
    }

    @inline(__always)
    private static func better(_ a: Int32, _ b: Int32, _ load: UnsafeMutableBufferPointer<Int>) -> Int32 {
        if a < 0 { return b }
        if b < 0 { return a }
        let la = load[Int(a)], lb = load[Int(b)]
        return la < lb || (la == lb && a < b) ? a : b
    }
}
