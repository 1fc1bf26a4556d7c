import SimKit

/// The engine's KV caches (engine-components.md §2, "the KV/prefix/pool caches"; system.md §4):
/// the pooled DRAM tier (EMS) behind every prefill DP group's prefix cache with its hit counter,
/// and the pod's KV block budget. It does the KV side of a prefill: probe a prompt's prefix in
/// a group and the pool, allocate for a prefill (group blocks first, then the pool for what the
/// group lacks), release, and spill a finished prompt to the pool; it masks a faulty HBM region
/// of a group (``mask(_:tokens:fault:in:)``) and keeps where each mask is held; and it gives the
/// figures a snapshot and the report show.
///
/// The per-DP-group ``KVBlockManager``s stay in their TEs (``DPGroupState/kv``) and come in per
/// call (`inout`); the schedulers change them through this store (a prefill's allocation and
/// release, a decode admission ``admitDecode(_:in:promptTokens:totalTokens:)`` for a pull or a
/// migration, a decode release or eviction), and so does fault handling (HBM masks). A mask sits
/// in its group's manager as a sequence under an id no request has: only the store knows it, so
/// counts of the requests holding KV in a group come from here (``requestsHoldingKV(_:in:)``).
/// The store holds no reference to a group, the engine or a closure, so ``copy()`` is a field copy.
///
/// A `final class` like the engine's other components: the engine holds one, `fork()` takes a
/// ``copy()`` (the pool tier is a value: copy-on-write), and no other object holds a reference to it.
///
/// ```swift
/// let store = KVCacheStore(blockTokens: 128, kvBytesPerToken: 70_000, poolCapacityBytes: 1e12)
/// var kv = store.makeGroupCache(blocks: 1_000)
/// if let a = store.allocatePrefill(7, in: &kv, promptTokens: 1_500, chained: keys, expectedTotalTokens: 0) {
///     print(a.hitTokens, a.computeTokens)       // group hits + pooled tokens; left to prefill
/// }
/// store.spillToPool(chained: keys)                // prefill done: the prompt's KV goes to DRAM
/// store.release(7, in: &kv)                       // transferred: prefix blocks stay cached
/// store.mask(GroupRef(te: 0, group: 0), tokens: 300, fault: 4, in: &kv)   // 3 blocks out of use
/// store.unmask(fault: 4, in: &kv)                 // healed: they are free again
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
    /// The DP group holding each HBM fault's masked region, by fault id (``mask(_:tokens:fault:in:)``).
    private(set) var masks: [Int: GroupRef] = [:]

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
    }

    /// A deep, independent copy (for the engine's `fork()`): the pool tier (a value, copied on
    /// its next write), its counter, the block budget and the mask table.
    func copy() -> KVCacheStore { KVCacheStore(copying: self) }

    // MARK: Block budget

    /// Counts `groups` DP groups of `blocksEach` blocks against the budget; false when the total
    /// now passes ``blockLimit`` (the caller refuses the layout; the count stays, for its message).
    func addGroups(_ groups: Int, blocksEach: Int) -> Bool {
        blocksBuilt = Saturating.add(blocksBuilt, Saturating.multiply(blocksEach, groups))
        return blocksBuilt <= blockLimit
    }

    /// A DP group's empty KV cache of `blocks` blocks (its arrays grow on first use).
    func makeGroupCache(blocks: Int) -> KVBlockManager {
        KVBlockManager(totalBlocks: blocks, blockTokens: blockTokens)
    }

    // MARK: Prefix probe

    /// Prompt tokens whose KV a prefill would find without computing them: the group's own
    /// cached prefix, and beyond it what the pool holds (one prompt token is always computed).
    /// Changes nothing: no LRU moves, no counters.
    func probePrefix(in kv: KVBlockManager, promptTokens: Int, chained: [UInt64]) -> (group: Int, pooled: Int) {
        guard !chained.isEmpty else { return (0, 0) }
        let local = kv.cachedPrefixTokens(promptTokens: promptTokens, chainedHashes: chained)
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
    func allocatePrefill(_ id: Int, in kv: inout KVBlockManager, promptTokens: Int, chained: [UInt64],
                         expectedTotalTokens: Int) -> PrefillAllocation? {
        guard let allocation = kv.allocate(requestID: id, promptTokens: promptTokens, chainedHashes: chained,
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
    func release(_ id: Int, in kv: inout KVBlockManager) {
        kv.free(requestID: id)
    }

    // MARK: Decode admission

    /// Admits request `id` to a decode group, whose manager is `kv`, if the group has room for
    /// its whole expected length: blocks for `promptTokens` now (transferred or copied KV: no
    /// prefix keys) and a reservation up to `totalTokens`, in one call. False, and nothing
    /// changed, when it does not fit or the request is already there.
    func admitDecode(_ id: Int, in kv: inout KVBlockManager, promptTokens: Int, totalTokens: Int) -> Bool {
        // Read in place: copying the manager retains each of its buffers.
        guard Saturating.ceilDiv(totalTokens, blockTokens) <= kv.freeBlocks - kv.reservedBlocks else { return false }
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
    /// held in the group's manager `kv` so the allocator never hands them out. Returns the blocks
    /// masked (0: nothing free, or the fault already holds a mask; nothing changed).
    @discardableResult
    func mask(_ g: GroupRef, tokens: Int, fault id: Int, in kv: inout KVBlockManager) -> Int {
        let blocks = min(max(1, Saturating.ceilDiv(tokens, blockTokens)), kv.freeBlocks)
        guard blocks > 0, masks[id] == nil,
              kv.allocate(requestID: Self.maskHolder(fault: id), promptTokens: blocks * blockTokens, prefixHashes: []) != nil
        else { return 0 }
        masks[id] = g
        return blocks
    }

    /// The group holding fault `id`'s mask (nil: none), whose manager ``unmask(fault:in:)`` takes.
    func maskedGroup(fault id: Int) -> GroupRef? { masks[id] }

    /// Fault `id` is healed: its masked blocks in `kv` (the manager of ``maskedGroup(fault:)``)
    /// return to the allocator. Nothing for a fault with no mask.
    func unmask(fault id: Int, in kv: inout KVBlockManager) {
        guard masks.removeValue(forKey: id) != nil else { return }
        kv.free(requestID: Self.maskHolder(fault: id))
    }

    /// Masks held in group `g`.
    func maskCount(_ g: GroupRef) -> Int {
        var count = 0
        for held in masks.values where held == g { count += 1 }
        return count
    }

    /// Requests holding KV in group `g`, whose manager is `kv`: its sequences less the masks.
    func requestsHoldingKV(_ g: GroupRef, in kv: KVBlockManager) -> Int { kv.liveRequests - maskCount(g) }

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
