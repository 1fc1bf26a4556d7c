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
    /// Each node's key: the least of its two children's, `tree[1]` the root. A leaf's key is its
    /// group's load and index packed (``key(group:load:flags:)``), so comparing two keys as
    /// integers orders the groups by load, then index; an ineligible group's key has its top bit
    /// set (and the next one too when unplaceable), so it loses to every eligible one. Issue 12:
    /// the update walks up with one sibling read per level instead of reading both children and
    /// their loads through a second array (~220 → ~100 instructions per pull or completion; the
    /// walk runs 9 levels on a 320-group TE). The answer the index was built from lives in its
    /// leaves, no array beside them (the index is copied into every pick's view).
    private var tree: [UInt64]
    /// The version of the placeable answer the index was built from (a newer one rebuilds it).
    private let placeableVersion: Int

    /// Key bits: the group index in the low 32 bits, the load in the next 30, then the flags.
    private static let ineligibleFlag: UInt64 = 1 << 63
    private static let unplaceableFlags: UInt64 = 3 << 62
    private static let maxLoad = (1 << 30) - 1
    /// A padding leaf past the last group: never the least.
    private static let padding = UInt64.max

    /// An index over `groups` with `slots` taken in each, or nil when their KV sizes differ (the
    /// block count would not order them as usage does), there are none, or they are too large
    /// for a key's load bits (then the policies scan).
    init?(groups: UnsafeBufferPointer<KVBlockManager>, placeable: PlaceableGroups, slots: [Int], batchLimit: Int) {
        guard !groups.isEmpty, groups.count < Int(Int32.max), slots.count == groups.count,
              placeable.count == groups.count else { return nil }
        let blocks = groups[0].totalBlocks
        // A group's owned blocks stay within its blocks; its reserved ones may overcommit, by at most
        // each live request's expected length, which a million requests of a 1,000-block context
        // could not take past the key's 2³⁰ (a load beyond it would be clamped, ordered by index).
        guard blocks >= 0, blocks <= Self.maxLoad / 4 else { return nil }
        for g in groups.indices where groups[g].totalBlocks != blocks { return nil }
        self.batchLimit = batchLimit
        groupCount = groups.count
        groupBlocks = blocks
        placeableVersion = placeable.version
        var leaves = 1
        while leaves < groups.count { leaves *= 2 }
        firstLeaf = leaves
        tree = Array(repeating: Self.padding, count: 2 * leaves)
        for g in groups.indices {
            let flags = !placeable[g] ? Self.unplaceableFlags : slots[g] < batchLimit ? 0 : Self.ineligibleFlag
            tree[leaves + g] = Self.key(group: g, load: Self.load(of: groups[g]), flags: flags)
        }
        var node = leaves - 1
        while node >= 1 {
            tree[node] = Swift.min(tree[2 * node], tree[2 * node + 1])
            node -= 1
        }
    }

    /// The eligible group with the least owned + reserved KV, lowest index on ties; nil if none.
    var best: Int? {
        let root = tree[1]   // with one group, its leaf is the root
        return root >= Self.ineligibleFlag ? nil : Int(truncatingIfNeeded: root & 0xFFFF_FFFF)
    }

    /// Group `g` changed (KV or slots): its leaf and the path to the root are redone, up to the
    /// first node whose key does not change (the nodes above it are the least of the same keys).
    /// An unplaceable group stays unplaceable whatever its slots. Takes the group's numbers, not
    /// the group (a copy would retain its KV buffers).
    mutating func update(_ g: Int, load blocks: Int, slots: Int) {
        guard g >= 0, g < groupCount else { return }
        let eligible = slots < batchLimit
        tree.withUnsafeMutableBufferPointer { tree in
            var node = firstLeaf &+ g
            let leaf = tree[node]
            let flags = leaf & Self.unplaceableFlags == Self.unplaceableFlags ? Self.unplaceableFlags
                : eligible ? 0 : Self.ineligibleFlag
            var key = Self.key(group: g, load: blocks, flags: flags)
            if key == leaf { return }
            tree[node] = key
            while node > 1 {
                key = Swift.min(key, tree[node ^ 1])
                node &>>= 1
                if tree[node] == key { return }
                tree[node] = key
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
            let leaf = tree[firstLeaf + g]
            if Int((leaf >> 32) & UInt64(Self.maxLoad)) != Swift.min(Self.load(of: groups[g]), Self.maxLoad)
                || (leaf < Self.ineligibleFlag) != eligible {
                found.append("decode load index is stale for dp\(g)")
            }
        }
        return found
    }

    // MARK: Internals

    static func load(of group: borrowing KVBlockManager) -> Int { group.usedBlocks + group.reservedBlocks }

    /// Group `g`'s key: its flags, its load (clamped to the key's bits, which a group's load never
    /// exceeds: see `init`), its index.
    @inline(__always)
    private static func key(group g: Int, load: Int, flags: UInt64) -> UInt64 {
        let clamped = UInt64(truncatingIfNeeded: Swift.max(0, Swift.min(load, maxLoad)))
        return flags | clamped << 32 | UInt64(truncatingIfNeeded: g)
    }
}
