/// The prefix cache's index: chained prefix hash → the block registered under it, for one
/// ``KVBlockManager`` (and the pooled tier's slots, ``PooledKVTier``).
///
/// An open-addressing table (linear probing, backward-shift deletion) of 32-bit block numbers,
/// each beside the top 32 bits of its hash's ``Slotting`` product (its *tag*); the hashes
/// themselves stay in the manager's per-block hash array, passed in as `keys`. The tag holds the
/// entry's home at every table size, so a probe reads a block's key only when the tags agree (a
/// hit, bar one in four billion), and growing or a backward shift reads none. Reading the key of
/// every entry a probe passed was a cache miss each, mostly: with tags, two saturated superpod
/// minutes miss a 512 KB cache on 21% fewer reads (11.8 M → 9.3 M) for 2.6% more instructions. A
/// saturated prefill group registers every prompt block, and a `Dictionary` of 64-bit keys and values
/// cost 21–43 bytes per entry (8-byte key and value, ¾ load, doubling, never shrinking): the
/// largest item of a saturated superpod's heap. This costs 11–21 (at most ¾ full) or 16–32 (at
/// most half full, ``MaxLoad``). A hash's slot is picked by ``Slotting`` from a per-process multiplier,
/// never from the hash's bare bits: the hashes chain ids read from a trace, and ids crafted so
/// that their hashes share low bits would otherwise make every probe walk one long run (a replay
/// that stalls). Nothing iterates the table, so its layout never reaches a report.
struct PrefixIndex: Sendable {
    /// How full the table may get before it doubles.
    enum MaxLoad: Sendable {
        /// A block manager's: a full prefill group keeps its table at its highest load for the
        /// rest of a replay, and taking a block by eviction walks two probe runs (the evicted
        /// hash's to its end, for the backward shift, and the new hash's). At up to ¾ full that
        /// was ~300 instructions a block in the Mooncake hour, ~125 at half; the doubled slots cost
        /// a 24 K-block prefill group 256 KB (16 MB over the superpod's 64 groups).
        case half
        /// The pooled tier's: it rarely evicts, and doubling its millions of slots cost the
        /// saturated hour 25 MB (of 4-byte slots; 50 MB of today's 8-byte ones) of its 400 MB
        /// budget for a few hundredths of a percent.
        case threeQuarters
    }

    /// Entries: a tag in the top 32 bits, the block number in the low 32 (``empty``: none). Empty
    /// or a power of two long, at most 2³² (the tag holds the home of a table that size).
    private var slots: [UInt64] = []
    /// An empty slot: no block is numbered 2³² - 1 (block numbers fit 31 bits).
    static let empty: UInt64 = .max
    /// The tag's bits of an entry.
    static let tagBits: UInt64 = 0xFFFF_FFFF_0000_0000

    @inline(__always) static func block(of entry: UInt64) -> Int { Int(UInt32(truncatingIfNeeded: entry)) }
    @inline(__always) static func entry(tag: UInt64, block: Int) -> UInt64 { tag | UInt64(UInt32(truncatingIfNeeded: block)) }
    private(set) var count = 0
    private let half: Bool
    /// How hashes map to slots at the table's current size.
    private var slotting = Slotting(capacity: 1)

    init(maxLoad: MaxLoad = .threeQuarters) { half = maxLoad == .half }

    /// Tests: an index that picks slots with `multiplier` (made odd), not the process's own, so a
    /// property of the multiplier family can be checked on chosen members.
    init(maxLoad: MaxLoad, multiplier: UInt64) {
        half = maxLoad == .half
        slotting = Slotting(capacity: 1, multiplier: multiplier | 1)
    }

    var isEmpty: Bool { count == 0 }
    /// Slots of the table (tests: the load bound).
    var slotCount: Int { slots.count }

    /// Whether `entries` would fill `slots` past the table's ``MaxLoad``.
    @inline(__always) private func overfull(_ entries: Int, slots: Int) -> Bool {
        half ? entries * 2 > slots : entries * 4 > slots * 3
    }

    @inline(__always) private func home(_ hash: UInt64) -> Int { slotting.home(hash) }

    /// Where a hash's probe run starts in a table of `capacity` slots (a power of two): the top
    /// bits of the hash times an odd multiplier taken from Swift's per-process hashing seed.
    /// Multiply-shift is a universal family (two hashes share a home with probability about
    /// 2/capacity, whatever they are), so no input can be crafted to collide without knowing the
    /// process's seed; `SWIFT_DETERMINISTIC_HASHING=1` fixes the seed, for repeatable profiles.
    struct Slotting {
        let mask: Int
        private let shift: UInt64
        /// Odd; the process's (``seededMultiplier``) but in tests that pick their own.
        let multiplier: UInt64

        init(capacity: Int, multiplier: UInt64 = Self.seededMultiplier) {
            mask = capacity - 1
            shift = UInt64(64 - capacity.trailingZeroBitCount)
            self.multiplier = multiplier
        }

        @inline(__always) func home(_ hash: UInt64) -> Int {
            Int(truncatingIfNeeded: (hash &* multiplier) &>> shift)
        }

        /// `hash`'s home and its tag (the product's top 32 bits, in place): the home is the top
        /// bits of the tag for any table of up to 2³² slots.
        @inline(__always) func place(_ hash: UInt64) -> (home: Int, tag: UInt64) {
            let product = hash &* multiplier
            return (Int(truncatingIfNeeded: product &>> shift), product & PrefixIndex.tagBits)
        }

        /// An entry's home, from its tag: ``home(_:)`` of its hash, with no key read.
        @inline(__always) func home(ofEntry entry: UInt64) -> Int {
            Int(truncatingIfNeeded: entry &>> shift)
        }

        static let seededMultiplier: UInt64 = {
            var hasher = Hasher()
            hasher.combine(0x5EED as UInt64)
            return UInt64(truncatingIfNeeded: hasher.finalize()) | 1
        }()
    }

    /// The block registered under `hash`; `keys[block]` is each registered block's hash.
    @inline(__always)
    func block(for hash: UInt64, keys: [UInt64]) -> Int? {
        guard count > 0 else { return nil }
        // Through the buffers: routing looks up one key per prefill group per arrival, and the
        // arrays' subscripts re-read their headers and bounds on every slot.
        return keys.withUnsafeBufferPointer { block(for: hash, keys: $0) }
    }

    /// ``block(for:keys:)`` with the keys' buffer.
    @inline(__always)
    func block(for hash: UInt64, keys: UnsafeBufferPointer<UInt64>) -> Int? {
        guard count > 0 else { return nil }
        return slots.withUnsafeBufferPointer { slots in
            let slotting = self.slotting
            let mask = slotting.mask
            let (first, tag) = slotting.place(hash)
            var i = first
            while true {
                let entry = slots[i]
                if entry == Self.empty { return nil }
                if entry & Self.tagBits == tag && keys[Self.block(of: entry)] == hash { return Self.block(of: entry) }
                i = (i &+ 1) & mask
            }
        }
    }

    /// How many of `hashes[start..<end]`, from `start` on, are registered before the first that is
    /// not (`start` when `hashes[start]` is not): a prefix walk with the table's buffers and
    /// slotting read once, not per hash (routing and placement walk a prompt's keys per group).
    @inline(__always)
    func registeredRun(_ hashes: UnsafeBufferPointer<UInt64>, from start: Int, to end: Int,
                       keys: UnsafeBufferPointer<UInt64>) -> Int {
        walk(hashes, from: start, to: end, keys: keys, into: nil)
    }

    /// ``registeredRun(_:from:to:keys:)`` from 0, writing the registered blocks to `blocks` (at
    /// least `end` long) in order: an allocation's prefix hits.
    @inline(__always)
    func registeredBlocks(_ hashes: UnsafeBufferPointer<UInt64>, to end: Int, keys: UnsafeBufferPointer<UInt64>,
                          into blocks: UnsafeMutableBufferPointer<Int32>) -> Int {
        walk(hashes, from: 0, to: end, keys: keys, into: blocks)
    }

    /// The walk of both: `blocks[position]` gets each registered hash's block when given.
    @inline(__always)
    private func walk(_ hashes: UnsafeBufferPointer<UInt64>, from start: Int, to end: Int,
                      keys: UnsafeBufferPointer<UInt64>, into blocks: UnsafeMutableBufferPointer<Int32>?) -> Int {
        guard count > 0, start < end else { return start }
        return slots.withUnsafeBufferPointer { slots in
            let slotting = self.slotting
            let mask = slotting.mask
            var position = start
            walk: while position < end {
                let hash = hashes[position]
                let (first, tag) = slotting.place(hash)
                var i = first
                while true {
                    let entry = slots[i]
                    if entry == Self.empty { break walk }
                    if entry & Self.tagBits == tag && keys[Self.block(of: entry)] == hash {
                        blocks?[position] = Int32(truncatingIfNeeded: entry)
                        break
                    }
                    i = (i &+ 1) & mask
                }
                position += 1
            }
            return position
        }
    }

    /// Slots a lookup of `hash` reads (tests: probe runs stay short whatever the hashes).
    func probes(for hash: UInt64, keys: [UInt64]) -> Int {
        guard !slots.isEmpty else { return 0 }
        var i = home(hash), read = 1
        while slots[i] != Self.empty && keys[Self.block(of: slots[i])] != hash {
            i = (i + 1) & slotting.mask
            read += 1
        }
        return read
    }

    /// Registers `block` under `hash` (not registered yet; `keys[block] == hash` already).
    mutating func insert(_ block: Int, hash: UInt64, keys: [UInt64]) {
        if overfull(count + 1, slots: slots.count) { grow() }
        let mask = slots.count - 1
        let (first, tag) = slotting.place(hash)
        var i = first
        while slots[i] != Self.empty { i = (i &+ 1) & mask }
        slots[i] = Self.entry(tag: tag, block: block)
        count += 1
    }

    /// What one probe for `hash` found: the block registered under it, or the empty slot where
    /// it would go.
    enum Probe {
        case registered(Int)
        /// A vacancy (``vacancy(_:tag:)``): pass to ``occupy(_:with:)`` before any other change to the index.
        case vacant(Int)
    }

    /// An empty slot and the tag of the hash that may take it, in one `Int`: the slot in the low
    /// 32 bits, the tag above (what ``occupy(_:with:)`` writes there).
    @inline(__always) static func vacancy(_ slot: Int, tag: UInt64) -> Int { Int(bitPattern: UInt(tag | UInt64(slot))) }
    @inline(__always) static func slot(of vacancy: Int) -> Int { Int(UInt32(truncatingIfNeeded: vacancy)) }
    @inline(__always) static func tag(of vacancy: Int) -> UInt64 { UInt64(UInt(bitPattern: vacancy)) & tagBits }

    /// A lookup that, on a miss, also finds the slot to register in: one probe for a
    /// lookup-then-insert (a prefill registers most of its prompt blocks, nearly all new, and
    /// each probe reads a block's key). On a miss that would take the table past its ``MaxLoad``
    /// it grows first, exactly when ``insert(_:hash:keys:)`` would. Inlined: the
    /// pooled tier probes every key of every finished prompt, most of them hits.
    @inline(__always)
    mutating func probe(for hash: UInt64, keys: [UInt64]) -> Probe {
        if !slots.isEmpty {
            let mask = slots.count - 1
            let (first, tag) = slotting.place(hash)
            var i = first
            while true {
                let entry = slots[i]
                if entry == Self.empty { break }
                if entry & Self.tagBits == tag && keys[Self.block(of: entry)] == hash { return .registered(Self.block(of: entry)) }
                i = (i &+ 1) & mask
            }
            if !overfull(count + 1, slots: slots.count) { return .vacant(Self.vacancy(i, tag: tag)) }
        }
        grow()
        let mask = slots.count - 1
        let (first, tag) = slotting.place(hash)
        var i = first
        while slots[i] != Self.empty { i = (i &+ 1) & mask }
        return .vacant(Self.vacancy(i, tag: tag))
    }

    /// Registers `block` in the vacancy ``probe(for:keys:)`` found (its hash already in `keys`).
    mutating func occupy(_ vacancy: Int, with block: Int) {
        slots[Self.slot(of: vacancy)] = Self.entry(tag: Self.tag(of: vacancy), block: block)
        count += 1
    }

    /// Grows the table, if needed, to hold `entries` entries without growing again: to the size
    /// registering up to that many one at a time would reach (a batch edit cannot grow it).
    mutating func reserve(entries: Int) {
        guard slots.isEmpty || overfull(entries, slots: slots.count) else { return }
        // Straight to the size doubling would reach: one table built, not one per doubling (a
        // block manager reserves its whole group at once, ``KVBlockManager``'s first keyed allocation).
        var capacity = max(64, slots.count * 2)
        while overfull(entries, slots: capacity) { capacity *= 2 }
        grow(to: capacity)
    }

    /// Runs `body` with an ``Editor`` over the slots' buffer: a batch of lookups, registrations
    /// and removals (the pooled tier's insert of a finished prompt's keys) checks the array's
    /// uniqueness once instead of once per change. `keys` is every registered block's hash, as for
    /// the other methods; the caller may write it between the editor's calls. The table cannot
    /// grow meanwhile: ``reserve(entries:)`` first.
    mutating func edit<R>(keys: UnsafeBufferPointer<UInt64>, _ body: (inout Editor) -> R) -> R {
        precondition(!slots.isEmpty, "reserve before editing")
        let (result, count) = slots.withUnsafeMutableBufferPointer { slots in
            var editor = Editor(slots: slots, keys: keys, slotting: slotting, count: self.count)
            let result = body(&editor)
            return (result, editor.count)
        }
        self.count = count
        return result
    }

    /// The index's operations on its slots' buffer (``edit(keys:_:)``), with the same results as
    /// ``probe(for:keys:)``, ``occupy(_:with:)`` and ``remove(_:keys:)``.
    struct Editor {
        fileprivate let slots: UnsafeMutableBufferPointer<UInt64>
        fileprivate let keys: UnsafeBufferPointer<UInt64>
        fileprivate let slotting: Slotting
        fileprivate(set) var count: Int

        /// The slot holding `hash`'s block (`registered`), else the ``PrefixIndex/vacancy(_:tag:)``
        /// it would take.
        @inline(__always)
        func find(_ hash: UInt64) -> (slot: Int, registered: Bool) {
            let (slot, tag, registered) = PrefixIndex.find(hash, keys: keys, slots: slots, slotting: slotting)
            return (registered ? slot : PrefixIndex.vacancy(slot, tag: tag), registered)
        }

        /// The block in a slot ``find(_:)`` reported registered.
        @inline(__always)
        func block(at slot: Int) -> Int { PrefixIndex.block(of: slots[slot]) }

        /// Registers `block` (its hash already in the keys) in the vacancy ``find(_:)`` found,
        /// with no change to the index in between.
        @inline(__always)
        mutating func occupy(_ vacancy: Int, with block: Int) {
            slots[PrefixIndex.slot(of: vacancy)] = PrefixIndex.entry(tag: PrefixIndex.tag(of: vacancy), block: block)
            count &+= 1  // at most the slots
        }

        /// Unregisters `hash` (its block's key still in the keys).
        @inline(__always)
        mutating func remove(_ hash: UInt64) {
            if PrefixIndex.remove(hash, keys: keys, slots: slots, slotting: slotting) { count -= 1 }
        }
    }

    /// Unregisters `hash` (its block's key still in `keys`, as are all others').
    mutating func remove(_ hash: UInt64, keys: [UInt64]) {
        guard count > 0 else { return }
        let removed = keys.withUnsafeBufferPointer { keys in
            slots.withUnsafeMutableBufferPointer { Self.remove(hash, keys: keys, slots: $0, slotting: slotting) }
        }
        if removed { count -= 1 }
    }

    /// On the slots' buffer: the slot holding `hash`'s block (`registered`), else the vacant slot
    /// that ends its probe path (the table always has one: it is at most ¾ full); and `hash`'s tag.
    @inline(__always)
    private static func find(_ hash: UInt64, keys: UnsafeBufferPointer<UInt64>, slots: UnsafeMutableBufferPointer<UInt64>,
                             slotting: Slotting) -> (slot: Int, tag: UInt64, registered: Bool) {
        let mask = slotting.mask
        let (first, tag) = slotting.place(hash)
        var s = first
        while true {
            let entry = slots[s]
            if entry == empty { return (s, tag, false) }
            if entry & tagBits == tag && keys[block(of: entry)] == hash { return (s, tag, true) }
            s = (s &+ 1) & mask
        }
    }

    /// ``remove(_:keys:)`` on the slots' buffer, leaving `count` to the caller: whether `hash` was there.
    @inline(__always)
    private static func remove(_ hash: UInt64, keys: UnsafeBufferPointer<UInt64>,
                               slots: UnsafeMutableBufferPointer<UInt64>, slotting: Slotting) -> Bool {
        let mask = slotting.mask
        let (first, tag) = slotting.place(hash)
        var hole = first
        while true {
            let entry = slots[hole]
            if entry == empty { return false }
            if entry & tagBits == tag && keys[block(of: entry)] == hash { break }
            hole = (hole &+ 1) & mask
        }
        // Backward shift: pull later entries of the probe run into the hole when their home slot
        // (from their tags: no key is read) does not lie cyclically in (hole, j].
        var j = hole
        while true {
            j = (j &+ 1) & mask
            let entry = slots[j]
            if entry == empty { break }
            let k = slotting.home(ofEntry: entry)
            let stays = hole <= j ? (hole < k && k <= j) : (hole < k || k <= j)
            if !stays {
                slots[hole] = entry
                hole = j
            }
        }
        slots[hole] = empty
        return true
    }

    /// Doubles the table, re-placing the entries in their old slot order, each at the home its
    /// tag gives (no key is read). Written straight into the new buffer (a saturated superpod's
    /// pool and group indexes grow hundreds of times).
    private mutating func grow() { grow(to: max(64, slots.count * 2)) }

    /// ``grow()`` to `capacity` slots (a power of two above the current count).
    private mutating func grow(to capacity: Int) {
        let old = slots
        precondition(capacity <= 1 << 32, "a tag holds the home of up to 2³² slots")
        // The same multiplier: entries' tags hold their homes under it.
        let slotting = Slotting(capacity: capacity, multiplier: self.slotting.multiplier)
        let mask = slotting.mask
        self.slotting = slotting
        slots = [UInt64](unsafeUninitializedCapacity: capacity) { new, initialized in
            new.initialize(repeating: Self.empty)
            old.withUnsafeBufferPointer { old in
                for entry in old where entry != Self.empty {
                    var i = slotting.home(ofEntry: entry)
                    while new[i] != Self.empty { i = (i &+ 1) & mask }
                    new[i] = entry
                }
            }
            initialized = capacity
        }
    }
}
