/// The pooled DRAM context cache (EMS, system.md §4): prefix blocks resident in host
/// memory reachable from every NPU over UB, LRU-evicted. It tracks only *which* blocks are
/// resident; the caller turns matched blocks into load time from UB bandwidth.
///
/// Keys are flat prefix keys as in ``KVBlockManager``; they are chained internally so a
/// block counts only if the whole prefix before it is resident too.
///
/// ```swift
/// var ems = PooledKVTier(capacityBlocks: 100_000)
/// ems.insert(hashes: keys)
/// let resident = ems.lookup(prefixHashes: keys)   // leading blocks found
/// ```
public struct PooledKVTier: Sendable {
    public let capacityBlocks: Int
    private var slotOf: [UInt64: Int] = [:]
    private var hashOf: [UInt64]
    private var lru: BlockLRU
    private var freeSlots: [Int]
    public private(set) var stats = PrefixCacheStats()

    public init(capacityBlocks: Int) {
        precondition(capacityBlocks > 0)
        self.capacityBlocks = capacityBlocks
        hashOf = Array(repeating: 0, count: capacityBlocks)
        lru = BlockLRU(capacity: capacityBlocks)
        freeSlots = Array((0..<capacityBlocks).reversed())
    }

    /// Resident blocks.
    public var residentBlocks: Int { lru.count }

    /// Number of leading blocks of the prefix that are resident; refreshes them as recently
    /// used. Counts queried/hit blocks in ``stats`` (in blocks, not tokens).
    public mutating func lookup(prefixHashes: [UInt64]) -> Int {
        var matched = 0
        for hash in PrefixHashes.chain(prefixHashes) {
            guard let slot = slotOf[hash] else { break }
            lru.remove(slot)
            lru.append(slot)
            matched += 1
        }
        stats.queriedTokens += prefixHashes.count
        stats.hitTokens += matched
        return matched
    }

    /// Makes the prefix resident (most recently used), evicting the oldest blocks if full.
    public mutating func insert(hashes: [UInt64]) {
        for hash in PrefixHashes.chain(hashes) {
            if let slot = slotOf[hash] {
                lru.remove(slot)
                lru.append(slot)
                continue
            }
            let slot: Int
            if let free = freeSlots.popLast() {
                slot = free
            } else {
                slot = lru.popOldest()!
                slotOf[hashOf[slot]] = nil
            }
            hashOf[slot] = hash
            slotOf[hash] = slot
            lru.append(slot)
        }
    }
}
