/// Read-only figures of the DP groups' KV block managers (``KVCacheStore``), by group, through
/// the store's borrowing reads (``KVCacheStore/withGroup(_:_:)``, ``KVCacheStore/withGroups(of:_:)``).
/// Nothing here copies a manager (a copy retains a dozen buffers) or changes one: writes are the
/// store's own methods (KVCacheStore.swift).
extension KVCacheStore {
    /// Blocks group `g` has (fixed).
    func totalBlocks(_ g: GroupRef) -> Int { withGroup(g) { $0.totalBlocks } }
    /// Blocks owned by requests (and masks) in group `g`.
    func usedBlocks(_ g: GroupRef) -> Int { withGroup(g) { $0.usedBlocks } }
    /// Blocks reserved for expected outputs in group `g` (held by none yet).
    func reservedBlocks(_ g: GroupRef) -> Int { withGroup(g) { $0.reservedBlocks } }
    /// Blocks group `g` can hand out (free, never used, or cached and evictable).
    func freeBlocks(_ g: GroupRef) -> Int { withGroup(g) { $0.freeBlocks } }
    /// Owned plus reserved blocks: the decode load kv-aware balancing orders groups by
    /// (``DecodeLoadIndex``).
    func decodeLoad(_ g: GroupRef) -> Int { withGroup(g) { $0.usedBlocks + $0.reservedBlocks } }
    /// Free blocks less reservations: what a request's whole expected length must fit in.
    func roomForDecode(_ g: GroupRef) -> Int { withGroup(g) { $0.freeBlocks - $0.reservedBlocks } }
    /// Owned share of group `g`'s blocks.
    func usage(_ g: GroupRef) -> Double { withGroup(g) { $0.usage } }
    /// Owned plus reserved share of group `g`'s blocks (kv-aware balancing's measure).
    func usageIncludingReserved(_ g: GroupRef) -> Double { withGroup(g) { $0.usageIncludingReserved } }
    /// KV sequences in group `g`: its requests and its masks (``requestsHoldingKV(_:)`` leaves masks out).
    func liveRequests(_ g: GroupRef) -> Int { withGroup(g) { $0.liveRequests } }
    /// Whether request `id` holds KV in group `g`.
    func contains(_ g: GroupRef, _ id: Int) -> Bool { withGroup(g) { $0.contains(requestID: id) } }
    /// Tokens request `id` holds in group `g` (nil: none).
    func tokens(of id: Int, in g: GroupRef) -> Int? { withGroup(g) { $0.tokens(of: id) } }
    /// Group `g`'s prefix-cache counters.
    func prefixStats(_ g: GroupRef) -> PrefixCacheStats { withGroup(g) { $0.stats } }
    /// Prompt tokens of a prompt group `g`'s prefix cache holds (changes nothing).
    func cachedPrefixTokens(_ g: GroupRef, promptTokens: Int, chained: [UInt64]) -> Int {
        withGroup(g) { $0.cachedPrefixTokens(promptTokens: promptTokens, chainedHashes: chained) }
    }
    /// Broken invariants of group `g`'s manager (empty when sound).
    func audit(_ g: GroupRef) -> [String] { withGroup(g) { $0.audit() } }
    /// The smallest group of TE `te`, in blocks (0 for a TE of no groups).
    func smallestGroupBlocks(of te: Int) -> Int {
        withGroups(of: te) { groups in
            var smallest: Int?
            for g in groups.indices { smallest = min(smallest ?? .max, groups[g].totalBlocks) }
            return smallest ?? 0
        }
    }
}
