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
    /// Slot of each resident chained hash (keys in `hashOf`).
    private var slotOf = PrefixIndex()
    private var hashOf: [UInt64]
    private var lru: BlockLRU
    /// Slots are handed out on demand, so a pool sized for the whole pod's DRAM costs memory
    /// only for what is resident.
    private var usedSlots = 0
    public private(set) var stats = PrefixCacheStats()

    public init(capacityBlocks: Int) {
        precondition(capacityBlocks > 0)
        self.capacityBlocks = capacityBlocks
        hashOf = []
        lru = BlockLRU(capacity: 0)
    }

    /// Resident blocks.
    public var residentBlocks: Int { lru.count }

    /// Number of leading blocks of the prefix that are resident; refreshes them as recently
    /// used. Counts queried/hit blocks in ``stats`` (in blocks, not tokens).
    public mutating func lookup(prefixHashes: [UInt64]) -> Int {
        lookup(chainedHashes: PrefixHashes.chain(prefixHashes))
    }

    /// ``lookup(prefixHashes:)`` for keys already chained (``PrefixHashes/chain(_:)``).
    public mutating func lookup(chainedHashes: [UInt64]) -> Int {
        // The resident run is found first (the index's buffers read once), then refreshed in order
        // in one edit of the LRU's links: finding changes nothing, so this is the order of finding
        // and refreshing block by block.
        let matched = withUnsafeTemporaryAllocation(of: Int32.self, capacity: chainedHashes.count) { found in
            let matched = chainedHashes.withUnsafeBufferPointer { chained in
                hashOf.withUnsafeBufferPointer { keys in
                    slotOf.registeredBlocks(chained, to: chained.count, keys: keys, into: found)
                }
            }
            if matched > 0 {
                lru.edit { lru in
                    for k in 0..<matched { lru.touch(Int(found[k])) }
                }
            }
            return matched
        }
        stats.queriedTokens += chainedHashes.count
        stats.hitTokens += matched
        return matched
    }

    /// Leading blocks of the prefix that are resident, changing nothing (no LRU move, no
    /// counters): for a probe that may not be followed by a load.
    public func residentPrefix(chainedHashes: [UInt64]) -> Int {
        var matched = 0
        for hash in chainedHashes {
            guard slotOf.block(for: hash, keys: hashOf) != nil else { break }
            matched += 1
        }
        return matched
    }

    /// Makes the prefix resident (most recently used), evicting the oldest blocks if full.
    public mutating func insert(hashes: [UInt64]) { insert(chainedHashes: PrefixHashes.chain(hashes)) }

    /// ``insert(hashes:)`` for keys already chained.
    public mutating func insert(chainedHashes: [UInt64]) {
        guard !chainedHashes.isEmpty else { return }
        // Room first for every slot this insert could take (neither the LRU nor the index can grow
        // while edited in place): growth is in the same steps as one slot at a time, at most one
        // step sooner, which changes memory (and the index's layout, which nothing reads), not
        // which blocks are resident.
        let mostSlots = min(capacityBlocks, usedSlots + chainedHashes.count)
        while mostSlots > lru.capacity {
            let grown = min(capacityBlocks, max(1024, lru.capacity * 2))
            lru.grow(to: grown)
            hashOf.append(contentsOf: repeatElement(0, count: grown - hashOf.count))
        }
        // Moved out while edited through their buffers: one uniqueness check per array per insert,
        // not two per new block (half of a saturated superpod's finished-prompt keys are new).
        var lru = BlockLRU(capacity: 0), keys: [UInt64] = [], index = PrefixIndex()
        swap(&lru, &self.lru)
        swap(&keys, &hashOf)
        swap(&index, &slotOf)
        keys.withUnsafeMutableBufferPointer { keys in
            index.reserve(entries: mostSlots)
            index.edit(keys: UnsafeBufferPointer(keys)) { index in
                lru.edit { lru in
                    for hash in chainedHashes {
                        let (vacancy, registered) = index.find(hash)
                        if registered {
                            lru.touch(index.block(at: vacancy))
                            continue
                        }
                        if usedSlots < capacityBlocks {
                            let slot = usedSlots
                            usedSlots &+= 1  // below capacityBlocks
                            keys[slot] = hash
                            index.occupy(vacancy, with: slot)
                            lru.append(slot)
                            continue
                        }
                        // Full: the oldest block gives its slot to this one.
                        let slot = lru.popOldest()!
                        index.remove(keys[slot])
                        keys[slot] = hash
                        index.occupy(index.find(hash).slot, with: slot)
                        lru.append(slot)
                    }
                }
            }
        }
        swap(&lru, &self.lru)
        swap(&keys, &hashOf)
        swap(&index, &slotOf)
    }
}
