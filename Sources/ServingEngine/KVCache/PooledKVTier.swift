/// The pooled DRAM context cache (EMS, system.md §4): prefix blocks resident in host
/// memory reachable from every NPU over UB, LRU-evicted. It tracks only *which* blocks are
/// resident; the caller turns matched blocks into load time from UB bandwidth.
///
/// Keys are flat prefix keys as in ``KVBlockManager``; they are chained internally so a
/// block counts only if the whole prefix before it is resident too.
///
/// Each resident block has a slot: two words side by side in ``records``, its chained hash and
/// its recency. Until the pool first fills, nothing is ever evicted, so the least recently used
/// order is not needed yet: the recency word holds the block's last use on a counter (one write
/// to the line its hash was read from). The first eviction sorts the slots by that counter into
/// an LRU list, and from then on the word holds the slot's two links in it. A use refreshed a
/// linked list before (the block's links and both neighbours', apart from its hash): four
/// scattered cache lines per block for a pool far larger than any cache, where the saturated
/// superpod's five minutes never fill it.
///
/// ```swift
/// var ems = PooledKVTier(capacityBlocks: 100_000)
/// ems.insert(hashes: keys)
/// let resident = ems.lookup(prefixHashes: keys)   // leading blocks found
/// ```
public struct PooledKVTier: Sendable {
    public let capacityBlocks: Int
    /// Slot of each resident chained hash. Its "block" numbers are twice the slots: the hash of
    /// entry `2 * slot` is `records[2 * slot]`, so the index reads keys straight from the records.
    private var slotOf = PrefixIndex()
    /// Per slot `s`: `records[2 * s]` its chained hash, `records[2 * s + 1]` its recency: the
    /// ``clock`` at its last use while ``ordered`` is false, else its LRU links (previous in the
    /// high 32 bits, next in the low, -1 for none). Covers at least the slots in use (zero past
    /// them); its capacity grows by doubling.
    private var records: [UInt64] = []
    /// Slots are handed out on demand, so a pool sized for the whole pod's DRAM costs memory
    /// only for what is resident; every slot handed out stays resident (evictions reuse theirs).
    private var usedSlots = 0
    /// Whether the slots are linked in LRU order (since the pool first filled).
    private var ordered = false
    /// Uses so far (inserts and refreshes of a block), the recency stamp of the latest.
    private var clock: UInt64 = 0
    /// The least and most recently used slots once ``ordered`` (-1: none).
    private var head: Int32 = -1
    private var tail: Int32 = -1
    public private(set) var stats = PrefixCacheStats()

    public init(capacityBlocks: Int) {
        precondition(capacityBlocks > 0)
        self.capacityBlocks = capacityBlocks
    }

    /// Resident blocks.
    public var residentBlocks: Int { usedSlots }

    /// Number of leading blocks of the prefix that are resident; refreshes them as recently
    /// used. Counts queried/hit blocks in ``stats`` (in blocks, not tokens).
    public mutating func lookup(prefixHashes: [UInt64]) -> Int {
        lookup(chainedHashes: PrefixHashes.chain(prefixHashes))
    }

    /// ``lookup(prefixHashes:)`` for keys already chained (``PrefixHashes/chain(_:)``).
    public mutating func lookup(chainedHashes: [UInt64]) -> Int {
        // Each block of the resident run is refreshed as it is found: finding reads only the hashes
        // and the index, refreshing writes only recency words, so this is the order of finding the
        // run first and then refreshing it.
        var records: [UInt64] = []
        swap(&records, &self.records)
        let matched = records.withUnsafeMutableBufferPointer { records in
            let (matched, recency) = chainedHashes.withUnsafeBufferPointer { chained in
                // The closure's own recency, not captured from outside it: its clock stays in a
                // register instead of being read and written in memory per block (issue 12).
                var recency = self.recency(on: records)
                var matched = 0
                var previous = -1
                while matched < chained.count,
                      let slot = resident(chained[matched], after: previous, UnsafeBufferPointer(records)) {
                    recency.use(slot)
                    previous = slot
                    matched += 1
                }
                return (matched, recency)
            }
            keep(recency)
            return matched
        }
        swap(&records, &self.records)
        stats.queriedTokens += chainedHashes.count
        stats.hitTokens += matched
        return matched
    }

    /// Leading blocks of the prefix that are resident, changing nothing (no LRU move, no
    /// counters): for a probe that may not be followed by a load.
    public func residentPrefix(chainedHashes: [UInt64]) -> Int {
        records.withUnsafeBufferPointer { records in
            var matched = 0
            var previous = -1
            while matched < chainedHashes.count, let slot = resident(chainedHashes[matched], after: previous, records) {
                previous = slot
                matched += 1
            }
            return matched
        }
    }

    /// The slot holding `hash`, nil when it is not resident. The slot after `previous` (the
    /// previous block of the prefix) is tried first: blocks made resident by one insert take
    /// consecutive slots, so a prefix's next block is mostly there, a word or two from the last
    /// one read, where the index is a scattered read per block (most of the pool's cache misses).
    /// A hash in a slot in use is resident in that slot, so the guess is exact when it matches.
    @inline(__always)
    private func resident(_ hash: UInt64, after previous: Int, _ records: UnsafeBufferPointer<UInt64>) -> Int? {
        let guess = previous &+ 1
        if previous >= 0 && guess < usedSlots && records[2 &* guess] == hash { return guess }
        return slotOf.block(for: hash, keys: records).map(Self.slot(ofEntry:))
    }

    /// Makes the prefix resident (most recently used), evicting the oldest blocks if full.
    public mutating func insert(hashes: [UInt64]) { insert(chainedHashes: PrefixHashes.chain(hashes)) }

    /// ``insert(hashes:)`` for keys already chained.
    public mutating func insert(chainedHashes: [UInt64]) {
        guard !chainedHashes.isEmpty else { return }
        // Room first for every slot this insert could take (neither the records nor the index can
        // grow while edited in place): growth is in the same steps as one slot at a time, at most
        // one step sooner, which changes memory (and the index's layout, which nothing reads), not
        // which blocks are resident.
        // The records cover just the slots this insert could take: the array's own doubling of its
        // capacity leaves the room past them untouched (zero-filling doubled records ahead of use
        // wrote, and faulted in, up to twice the pool's memory: a third of a saturated superpod's
        // page faults).
        let mostSlots = min(capacityBlocks, usedSlots + chainedHashes.count)
        if 2 * mostSlots > records.count {
            records.append(contentsOf: repeatElement(0, count: 2 * mostSlots - records.count))
        }
        // Moved out while edited through their buffers: one uniqueness check per array per insert,
        // not two per new block (half of a saturated superpod's finished-prompt keys are new).
        var records: [UInt64] = [], index = PrefixIndex()
        swap(&records, &self.records)
        swap(&index, &slotOf)
        records.withUnsafeMutableBufferPointer { records in
            index.reserve(entries: mostSlots)
            var recency = recency(on: records)
            index.edit(keys: UnsafeBufferPointer(records)) { index in
                // The slot of the previous hash: the next one is tried first (``resident(_:after:_:)``).
                var previous = -1
                for hash in chainedHashes {
                    let guess = previous &+ 1
                    if previous >= 0 && guess < usedSlots && records[2 &* guess] == hash {
                        recency.use(guess)
                        previous = guess
                        continue
                    }
                    let (vacancy, registered) = index.find(hash)
                    if registered {
                        previous = Self.slot(ofEntry: index.block(at: vacancy))
                        recency.use(previous)
                        continue
                    }
                    if usedSlots < capacityBlocks {
                        let slot = usedSlots
                        usedSlots &+= 1  // below capacityBlocks
                        records[2 &* slot] = hash
                        index.occupy(vacancy, with: 2 &* slot)
                        recency.use(slot)
                        previous = slot
                        continue
                    }
                    // Full: the oldest block gives its slot to this one.
                    let slot = recency.popOldest(slotsInUse: usedSlots)
                    index.remove(records[2 &* slot])
                    records[2 &* slot] = hash
                    index.occupy(index.find(hash).slot, with: 2 &* slot)
                    recency.use(slot)
                    previous = slot
                }
            }
            keep(recency)
        }
        swap(&records, &self.records)
        swap(&index, &slotOf)
    }

    // MARK: Recency

    /// A slot from an index entry's "block" number (twice the slot).
    @inline(__always) private static func slot(ofEntry block: Int) -> Int { block &>> 1 }

    /// A ``Recency`` over the records' buffer (moved out of ``records`` meanwhile); ``keep(_:)``
    /// takes back its clock and list ends.
    @inline(__always)
    private func recency(on records: UnsafeMutableBufferPointer<UInt64>) -> Recency {
        Recency(records: records, ordered: ordered, clock: clock, head: head, tail: tail)
    }

    @inline(__always)
    private mutating func keep(_ recency: Recency) {
        ordered = recency.ordered
        clock = recency.clock
        head = recency.head
        tail = recency.tail
    }

    /// The recency words of the slots (``records``), on their buffer: stamps until the first
    /// eviction, then an LRU list.
    private struct Recency {
        let records: UnsafeMutableBufferPointer<UInt64>
        var ordered: Bool
        var clock: UInt64
        var head: Int32
        var tail: Int32

        /// Makes `slot` the most recently used: a resident block used again, or a new one (its
        /// recency word not yet set).
        @inline(__always)
        mutating func use(_ slot: Int) {
            clock &+= 1  // one per use: never wraps
            guard ordered else {
                records[2 &* slot &+ 1] = clock
                return
            }
            let me = Int32(truncatingIfNeeded: slot)
            guard tail != me else { return }
            // A block new to the pool is not linked yet: its word is whatever the slot held.
            if isLinked(slot) {
                let (p, n) = links(slot)
                if p >= 0 { setNext(Int(p), n) } else { head = n }
                setPrevious(Int(n), p)  // not the tail, so it has a next
            }
            setLinks(slot, previous: tail, next: -1)
            if tail >= 0 { setNext(Int(tail), me) } else { head = me }
            tail = me
        }

        /// Whether `slot` is in the list (a slot just popped, or handed out for the first time
        /// since the list was built, is not).
        @inline(__always) private func isLinked(_ slot: Int) -> Bool { records[2 &* slot &+ 1] != Self.unlinked }

        /// The recency word of a slot that is out of the list (no previous can be -2).
        private static let unlinked = UInt64(UInt32(bitPattern: -2)) << 32

        /// Removes and returns the least recently used slot (the pool is full, so there is one).
        /// The first eviction orders the `slotsInUse` slots (all stamped) by their stamps first.
        mutating func popOldest(slotsInUse: Int) -> Int {
            if !ordered { orderByStamps(slotsInUse) }
            precondition(head >= 0, "a full pool has a least recently used block")
            let slot = Int(head)
            let n = links(slot).next
            head = n
            if n >= 0 { setPrevious(Int(n), -1) } else { tail = -1 }
            records[2 &* slot &+ 1] = Self.unlinked
            return slot
        }

        /// Links every slot in use from the oldest stamp to the newest: the order in which an LRU
        /// list kept from the start would hold them (each use moved its block to the end).
        private mutating func orderByStamps(_ count: Int) {
            let slotBits = max(1, Int.bitWidth - (count - 1).leadingZeroBitCount)
            var order = [Int32](repeating: 0, count: count)
            if clock < UInt64(1) << UInt64(64 - slotBits) {
                // Stamps are distinct, so sorting stamp and slot packed in one word sorts by stamp.
                var packed = [UInt64](unsafeUninitializedCapacity: count) { packed, initialized in
                    for s in 0..<count { packed[s] = records[2 &* s &+ 1] << UInt64(slotBits) | UInt64(s) }
                    initialized = count
                }
                packed.sort()
                let mask = UInt64(1) << UInt64(slotBits) - 1
                for i in 0..<count { order[i] = Int32(truncatingIfNeeded: packed[i] & mask) }
            } else {
                var pairs = (0..<count).map { (stamp: records[2 &* $0 &+ 1], slot: Int32(truncatingIfNeeded: $0)) }
                pairs.sort { $0.stamp < $1.stamp }
                for i in 0..<count { order[i] = pairs[i].slot }
            }
            for i in 0..<count {
                setLinks(Int(order[i]), previous: i > 0 ? order[i - 1] : -1, next: i + 1 < count ? order[i + 1] : -1)
            }
            head = count > 0 ? order[0] : -1
            tail = count > 0 ? order[count - 1] : -1
            ordered = true
        }

        @inline(__always)
        private func links(_ slot: Int) -> (previous: Int32, next: Int32) {
            let word = records[2 &* slot &+ 1]
            return (Int32(truncatingIfNeeded: word >> 32), Int32(truncatingIfNeeded: word))
        }

        @inline(__always)
        private func setLinks(_ slot: Int, previous: Int32, next: Int32) {
            records[2 &* slot &+ 1] = UInt64(UInt32(bitPattern: previous)) << 32 | UInt64(UInt32(bitPattern: next))
        }

        @inline(__always)
        private func setNext(_ slot: Int, _ next: Int32) {
            let i = 2 &* slot &+ 1
            records[i] = records[i] & 0xFFFF_FFFF_0000_0000 | UInt64(UInt32(bitPattern: next))
        }

        @inline(__always)
        private func setPrevious(_ slot: Int, _ previous: Int32) {
            let i = 2 &* slot &+ 1
            records[i] = UInt64(UInt32(bitPattern: previous)) << 32 | records[i] & 0xFFFF_FFFF
        }
    }
}
