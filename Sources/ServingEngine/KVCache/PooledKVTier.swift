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
        // The LRU moved out while its links are edited in place (``BlockLRU/edit(_:)``).
        var lru = BlockLRU(capacity: 0)
        swap(&lru, &self.lru)
        let matched = lru.edit { lru in
            var matched = 0
            for hash in chainedHashes {
                guard let slot = slotOf.block(for: hash, keys: hashOf) else { break }
                lru.touch(slot)
                matched += 1
            }
            return matched
        }
        swap(&lru, &self.lru)
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
        // Room first for every slot this insert could take (the LRU cannot grow while its links
        // are edited in place): growth is in the same steps as one slot at a time, at most one
        // step sooner, which changes memory, not which blocks are resident.
        let mostSlots = min(capacityBlocks, usedSlots + chainedHashes.count)
        while mostSlots > lru.capacity {
            let grown = min(capacityBlocks, max(1024, lru.capacity * 2))
            lru.grow(to: grown)
            hashOf.append(contentsOf: repeatElement(0, count: grown - hashOf.count))
        }
        if usedSlots + chainedHashes.count <= capacityBlocks {
            insertWithRoom(chainedHashes)
            return
        }
        var lru = BlockLRU(capacity: 0)
        swap(&lru, &self.lru)
        lru.edit { lru in
            for hash in chainedHashes {
                if usedSlots < capacityBlocks {
                    // Room left: one probe finds the block or where it goes (no eviction moves
                    // entries in between).
                    switch slotOf.probe(for: hash, keys: hashOf) {
                    case .registered(let slot):
                        lru.touch(slot)
                    case .vacant(let vacancy):
                        let slot = usedSlots
                        usedSlots += 1
                        hashOf[slot] = hash
                        slotOf.occupy(vacancy, with: slot)
                        lru.append(slot)
                    }
                    continue
                }
                if let slot = slotOf.block(for: hash, keys: hashOf) {
                    lru.touch(slot)
                    continue
                }
                let slot = lru.popOldest()!
                slotOf.remove(hashOf[slot], keys: hashOf)
                hashOf[slot] = hash
                slotOf.insert(slot, hash: hash, keys: hashOf)
                lru.append(slot)
            }
        }
        swap(&lru, &self.lru)
    }

    /// ``insert(chainedHashes:)`` when every key could take a new slot (no eviction: the pool has
    /// not filled, as through the Mooncake hour): each resident key refreshed, each other one given
    /// the next slot, in order, in one pass through the index, the keys and the LRU's links (a
    /// probe, a key write and a relink per key each checked their array's uniqueness).
    private mutating func insertWithRoom(_ chainedHashes: [UInt64]) {
        guard !chainedHashes.isEmpty else { return }
        slotOf.reserve(adding: chainedHashes.count, keys: hashOf)
        // Moved out while edited through their buffers (room for every new slot was made above).
        var lru = BlockLRU(capacity: 0), keys: [UInt64] = []
        swap(&lru, &self.lru)
        swap(&keys, &hashOf)
        var next = usedSlots
        lru.edit { lru in
            keys.withUnsafeMutableBufferPointer { keys in
                chainedHashes.withUnsafeBufferPointer { hashes in
                    slotOf.lookUpOrRegister(hashes: hashes, keys: keys, registered: { lru.touch($0) }, fresh: {
                        let slot = next
                        next += 1
                        lru.append(slot)
                        return slot
                    })
                }
            }
        }
        usedSlots = next
        swap(&lru, &self.lru)
        swap(&keys, &hashOf)
    }
}
