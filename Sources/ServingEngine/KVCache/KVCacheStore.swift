import SimKit

/// The engine's KV caches (engine-components.md §2, "the KV/prefix/pool caches"; system.md §4):
/// every DP group's ``KVBlockManager``, the pooled DRAM tier (EMS) behind every prefill DP group's
/// prefix cache with its hit counter, and the pod's KV block budget. It does the KV side of a
/// prefill: probe a prompt's prefix in a group and the pool, allocate for a prefill (group blocks
/// first, then the pool for what the group lacks), release, and spill a finished prompt to the
/// pool; it admits a request to a decode group (``admitDecode(_:in:promptTokens:totalTokens:)``,
/// for a pull or a migration); it masks a faulty HBM region of a group
/// (``mask(_:tokens:fault:)``) and keeps where each mask is held; and it gives the figures a
/// snapshot and the report show.
///
/// It owns the group managers (`private(set)`): a group is named by a ``GroupRef`` (its TE's
/// index, its index in the TE), and every change to a manager is one of the store's methods,
/// called by the group's owning scheduler (a prefill's allocation and release, a decode
/// admission, release or eviction) or by fault handling (HBM masks). Readers get numbers
/// (``usedBlocks(_:)``, ``usageIncludingReserved(_:)``, ``contains(_:_:)``, …) or a TE's managers
/// borrowed read-only for a scan (``withGroups(of:_:)``), never a copy: a manager is a dozen
/// copy-on-write buffers, and a copy retains each. A mask sits in its group's manager as a sequence
/// under an id no request has: only the store knows it, so counts of the requests holding KV
/// in a group come from here (``requestsHoldingKV(_:)``).
///
/// The managers sit in one flat table, TE after TE (`managers[groupStart[te] + group]`), so a
/// call costs an index, not a lookup. TEs are only ever added (a layout, a scale-out:
/// ``addTE(groups:blocksEach:)``), never removed or renumbered: a TE's index here is its index in
/// the engine's `instances`. TEs refused by the block budget are not added.
///
/// A `final class` like the engine's other components: the engine holds one, `fork()` takes a
/// ``copy()`` (the managers and the pool tier are values: copy-on-write), and no other object
/// holds a reference to it; it holds no reference to the engine, a TE or a closure.
///
/// ```swift
/// let store = KVCacheStore(blockTokens: 128, kvBytesPerToken: 70_000, poolCapacityBytes: 1e12)
/// let te = store.addTE(groups: 2, blocksEach: 1_000)!     // TE 0: dp0, dp1
/// let g = GroupRef(te: te, group: 1)
/// if let a = store.allocatePrefill(7, in: g, promptTokens: 1_500, chained: keys, expectedTotalTokens: 0) {
///     print(a.hitTokens, a.computeTokens)       // group hits + pooled tokens; left to prefill
/// }
/// store.spillToPool(chained: keys)                // prefill done: the prompt's KV goes to DRAM
/// store.release(7, in: g)                         // transferred: prefix blocks stay cached
/// store.mask(g, tokens: 300, fault: 4)            // 3 blocks out of use
/// store.unmask(fault: 4)                          // healed: they are free again (returns g)
/// ```
final class KVCacheStore {
    /// Tokens per KV block, the same in every group and in the pool.
    let blockTokens: Int
    /// KV bytes of one token (all layers), for the pool's byte figures.
    let kvBytesPerToken: Double
    /// The pooled DRAM tier, nil when the deployment has none.
    private(set) var pool: PooledKVTier?
    /// DRAM the pool may use, bytes (0 without a pool).
    let poolCapacityBytes: Double
    /// Prompt tokens loaded from the pool beyond the groups' own hits (they count as prefix hits).
    private(set) var poolHitTokens = 0
    /// KV blocks of the DP groups built so far, and the most the engine holds.
    private(set) var blocksBuilt = 0
    let blockLimit: Int
    /// The DP group holding each HBM fault's masked region, by fault id (``mask(_:tokens:fault:)``).
    private(set) var masks: [Int: GroupRef] = [:]
    /// Every DP group's block manager, TE after TE: TE `te`'s groups are
    /// `groupStart[te]..<groupStart[te + 1]`. Mutated only through the methods below; read only
    /// through ``withGroup(_:_:)`` and ``withGroups(of:_:)``, which borrow instead of copying.
    private var managers = ContiguousArray<KVBlockManager>()
    /// Where each TE's groups start in ``managers``, and one past the last TE's.
    private(set) var groupStart = [0]
    /// Prompts' prefix keys chained from the chains of earlier prompts (``chained(_:)``).
    private var chains = PrefixChainMemo()

    /// `poolCapacityBytes` of 0 means no pool; otherwise the pool holds at least one block.
    init(blockTokens: Int, kvBytesPerToken: Double, poolCapacityBytes: Double, blockLimit: Int = ServingEngine.maxKVBlocks) {
        precondition(blockTokens > 0)
        self.blockTokens = blockTokens
        self.kvBytesPerToken = kvBytesPerToken
        self.blockLimit = blockLimit
        if poolCapacityBytes > 0 {
            self.poolCapacityBytes = poolCapacityBytes
            let blockBytes = kvBytesPerToken * Double(blockTokens)
            pool = PooledKVTier(capacityBlocks: max(1, Int(saturating: poolCapacityBytes / blockBytes)))
        } else {
            self.poolCapacityBytes = 0
        }
    }

    private init(copying other: KVCacheStore) {
        blockTokens = other.blockTokens
        kvBytesPerToken = other.kvBytesPerToken
        pool = other.pool
        poolCapacityBytes = other.poolCapacityBytes
        poolHitTokens = other.poolHitTokens
        blocksBuilt = other.blocksBuilt
        blockLimit = other.blockLimit
        masks = other.masks
        managers = other.managers
        groupStart = other.groupStart
        chains = other.chains
    }

    /// A deep, independent copy (for the engine's `fork()`): the group managers and the pool
    /// tier (values, each copied on its next write), the pool's counter, the block budget and the
    /// mask table.
    func copy() -> KVCacheStore { KVCacheStore(copying: self) }

    // MARK: Groups and the block budget

    /// Adds a TE of `groups` DP groups, each an empty KV cache of `blocksEach` blocks (its arrays
    /// grow on first use), after the TEs already here, and counts them against the block budget.
    /// Returns the TE's index (the engine's index of the TE being built: the two grow together),
    /// or nil when the total would pass ``blockLimit``: then nothing is added (the count stays, for
    /// the caller's message).
    @discardableResult
    func addTE(groups: Int, blocksEach: Int) -> Int? {
        // Counted before anything is built: a refused layout may name absurd sizes.
        blocksBuilt = Saturating.add(blocksBuilt, Saturating.multiply(blocksEach, groups))
        guard blocksBuilt <= blockLimit else { return nil }
        for _ in 0..<groups { managers.append(KVBlockManager(totalBlocks: blocksEach, blockTokens: blockTokens)) }
        groupStart.append(managers.count)
        return groupStart.count - 2
    }

    /// Adds a TE whose group `g` has `groupBlocks[g]` blocks (the engine's TEs have groups of one
    /// size; tests mix them), as ``addTE(groups:blocksEach:)``.
    @discardableResult
    func addTE(groupBlocks: [Int]) -> Int? {
        for blocks in groupBlocks { blocksBuilt = Saturating.add(blocksBuilt, blocks) }
        guard blocksBuilt <= blockLimit else { return nil }
        for blocks in groupBlocks { managers.append(KVBlockManager(totalBlocks: blocks, blockTokens: blockTokens)) }
        groupStart.append(managers.count)
        return groupStart.count - 2
    }

    /// TEs whose groups are here.
    var teCount: Int { groupStart.count - 1 }
    /// DP groups of TE `te`.
    func groupCount(of te: Int) -> Int { groupStart[te + 1] - groupStart[te] }

    /// DP groups of all TEs.
    var groupTotal: Int { managers.count }

    /// Group `g`'s place in ``managers``.
    @inline(__always)
    func slot(_ g: GroupRef) -> Int {
        let slot = groupStart[g.te] + g.group
        assert(g.group >= 0 && slot < groupStart[g.te + 1], "dp\(g.group) is not a group of TE \(g.te)")
        return slot
    }

    /// Group `g`'s manager, borrowed for `body` (read in place through the table's buffer).
    @inline(__always)
    func withGroup<R>(_ g: GroupRef, _ body: (borrowing KVBlockManager) throws -> R) rethrows -> R {
        let slot = slot(g)
        return try managers.withUnsafeBufferPointer { try body($0[slot]) }
    }

    /// TE `te`'s managers, borrowed for `body`, indexed by group (a scan: routing probes, the
    /// decode TE pick, snapshots, audits). `body` must not change the store (debug builds trap).
    @inline(__always)
    func withGroups<R>(of te: Int, _ body: (UnsafeBufferPointer<KVBlockManager>) throws -> R) rethrows -> R {
        let range = groupStart[te]..<groupStart[te + 1]
        return try managers.withUnsafeBufferPointer { try body(UnsafeBufferPointer(rebasing: $0[range])) }
    }

    // MARK: Prefix keys

    /// A prompt's prefix keys chained (``PrefixHashes/chain(_:)``), the leading keys it shares
    /// with a recent prompt taken from that prompt's chain (``PrefixChainMemo``).
    func chained(_ keys: [UInt64]) -> [UInt64] { chains.chain(keys) }

    // MARK: Prefix probe

    /// Prompt tokens whose KV a prefill would find without computing them: the group's own
    /// cached prefix, and beyond it what the pool holds (one prompt token is always computed).
    /// Changes nothing: no LRU moves, no counters.
    func probePrefix(in g: GroupRef, promptTokens: Int, chained: [UInt64]) -> (group: Int, pooled: Int) {
        guard !chained.isEmpty else { return (0, 0) }
        let local = cachedPrefixTokens(g, promptTokens: promptTokens, chained: chained)
        guard let pool else { return (local, 0) }
        let tokens = min(pool.residentPrefix(chainedHashes: chained) * blockTokens, promptTokens - 1)
        return (local, max(0, tokens - local))
    }

    // MARK: Prefill allocation

    /// What ``allocatePrefill(_:in:promptTokens:chained:expectedTotalTokens:)`` gave a request.
    struct PrefillAllocation: Equatable {
        /// Prompt tokens found in the group's prefix cache (blocks shared, no compute).
        var groupHitTokens: Int
        /// Prompt tokens beyond those found in the pool: loaded over UB, not computed.
        var pooledTokens: Int
        /// Prompt tokens left to prefill.
        var computeTokens: Int
        /// Group hits plus pooled tokens.
        var hitTokens: Int { groupHitTokens + pooledTokens }
    }

    /// Allocates a request's prompt blocks in its group (sharing cached prefix blocks; with
    /// `expectedTotalTokens` > 0 reserving its expected length in the same call) and looks up in
    /// the pool what the group lacks, refreshing the pool's matched blocks and counting its hits.
    /// Nil, and nothing changed, when the request is already there or the prompt does not fit.
    func allocatePrefill(_ id: Int, in g: GroupRef, promptTokens: Int, chained: [UInt64],
                         expectedTotalTokens: Int) -> PrefillAllocation? {
        guard let allocation = managers[slot(g)].allocate(requestID: id, promptTokens: promptTokens, chainedHashes: chained,
                                                          expectedTotalTokens: expectedTotalTokens)
        else { return nil }
        let pooled = poolHit(promptTokens: promptTokens, chained: chained, groupHitTokens: allocation.hitTokens)
        return PrefillAllocation(groupHitTokens: allocation.hitTokens, pooledTokens: pooled,
                                 computeTokens: allocation.computeTokens - pooled)
    }

    /// Tokens of a prompt found in the pool beyond the group's own hits, leaving one token to compute.
    private func poolHit(promptTokens: Int, chained: [UInt64], groupHitTokens: Int) -> Int {
        guard pool != nil, !chained.isEmpty else { return 0 }
        let blocks = pool!.lookup(chainedHashes: chained)
        let tokens = min(blocks * blockTokens, promptTokens - 1)
        let extra = max(0, tokens - groupHitTokens)
        poolHitTokens += extra
        return extra
    }

    /// Releases a request's blocks in its group: registered prefix blocks stay cached
    /// (evictable), the rest are free again. Unknown ids are ignored.
    func release(_ id: Int, in g: GroupRef) {
        managers[slot(g)].free(requestID: id)
    }

    // MARK: Decode admission

    /// Admits request `id` to decode group `g` if the group has room for its whole expected
    /// length: blocks for `promptTokens` now (transferred or copied KV: no prefix keys) and a
    /// reservation up to `totalTokens`, in one call. False, and nothing changed, when it does not
    /// fit or the request is already there.
    func admitDecode(_ id: Int, in g: GroupRef, promptTokens: Int, totalTokens: Int) -> Bool {
        Self.admitDecode(id, in: &managers[slot(g)], promptTokens: promptTokens, totalTokens: totalTokens)
    }

    /// In place: copying the manager retains each of its buffers.
    private static func admitDecode(_ id: Int, in kv: inout KVBlockManager, promptTokens: Int, totalTokens: Int) -> Bool {
        guard Saturating.ceilDiv(totalTokens, kv.blockTokens) <= kv.freeBlocks - kv.reservedBlocks else { return false }
        return kv.allocate(requestID: id, promptTokens: promptTokens, chainedHashes: [], expectedTotalTokens: totalTokens) != nil
    }

    /// Writes a prefilled prompt's KV back to the pool for later turns (most recently used,
    /// evicting the oldest blocks when full). Nothing without a pool or keys.
    func spillToPool(chained: [UInt64]) {
        guard pool != nil, !chained.isEmpty else { return }
        pool!.insert(chainedHashes: chained)
    }

    // MARK: HBM masks

    /// Takes a faulty HBM region of group `g` out of use until fault `id` is healed: blocks for
    /// `tokens` (the KV of the requests that lived there), at least one and at most what is free,
    /// held in the group's manager so the allocator never hands them out. Returns the blocks
    /// masked (0: nothing free, or the fault already holds a mask; nothing changed).
    @discardableResult
    func mask(_ g: GroupRef, tokens: Int, fault id: Int) -> Int {
        guard masks[id] == nil else { return 0 }
        let blocks = Self.mask(tokens: tokens, holder: Self.maskHolder(fault: id), in: &managers[slot(g)])
        if blocks > 0 { masks[id] = g }
        return blocks
    }

    private static func mask(tokens: Int, holder: Int, in kv: inout KVBlockManager) -> Int {
        let blocks = min(max(1, Saturating.ceilDiv(tokens, kv.blockTokens)), kv.freeBlocks)
        guard blocks > 0, kv.allocate(requestID: holder, promptTokens: blocks * kv.blockTokens, prefixHashes: []) != nil
        else { return 0 }
        return blocks
    }

    /// The group holding fault `id`'s mask (nil: none).
    func maskedGroup(fault id: Int) -> GroupRef? { masks[id] }

    /// Fault `id` is healed: its masked blocks return to the allocator. Returns the group they
    /// were in (nil: the fault had no mask; nothing changed).
    @discardableResult
    func unmask(fault id: Int) -> GroupRef? {
        guard let g = masks.removeValue(forKey: id) else { return nil }
        managers[slot(g)].free(requestID: Self.maskHolder(fault: id))
        return g
    }

    /// Masks held in group `g`.
    func maskCount(_ g: GroupRef) -> Int {
        var count = 0
        for held in masks.values where held == g { count += 1 }
        return count
    }

    /// Requests holding KV in group `g`: its sequences less the masks.
    func requestsHoldingKV(_ g: GroupRef) -> Int { liveRequests(g) - maskCount(g) }

    /// A mask sits in the group's manager as a sequence of its own, under an id no request has
    /// (request ids are non-negative), one per fault.
    private static func maskHolder(fault id: Int) -> Int { Int.min + id }

    // MARK: Figures

    var hasPool: Bool { pool != nil }
    /// Blocks resident in the pool.
    var poolResidentBlocks: Int { pool?.residentBlocks ?? 0 }
    /// DRAM the pool's resident blocks use, bytes.
    var poolUsedBytes: Double { Double(poolResidentBlocks * blockTokens) * kvBytesPerToken }

    /// The prefill side's prefix-cache counters (snapshots, the report): the groups' own,
    /// summed by the caller, plus the pool's hits beyond them.
    func prefixStats(groups: PrefixCacheStats) -> PrefixCacheStats {
        var stats = groups
        stats.hitTokens += poolHitTokens
        return stats
    }
}
