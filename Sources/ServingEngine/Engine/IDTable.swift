import HeapModule

/// The engine's in-flight requests by id (``RequestTable``), and a block manager's sequences.
typealias RequestTable = IDTable<RequestState>

/// A table of values by id (request ids, step numbers, prefix keys): the values sit densely in a
/// slab, each entry with its id, and an open-addressing index (linear probing, backward-shift
/// deletion, at most half full) maps an id to its entry's *slot*. A slot stays the entry's until
/// it is removed; freed slots are reused last-freed first, so a table of requests coming and going
/// keeps to about the most ever held at once, its recently used slots warm.
///
/// It replaces a `Dictionary` keyed by id with a cheap hash. A lookup there read the bucket's
/// occupancy word, its key and its value: three scattered cache lines, in arrays sized for the
/// buckets (the in-flight table's values array was mostly empty buckets of a 200-byte request,
/// 27 MB for 50 thousand requests in flight). Here it reads one index word, whose tag (the top
/// 32 bits of the id's ``PrefixIndex/Slotting`` product) agrees with only the id's own entry but
/// once in four billion, then the entry itself, next to the value the caller came for. Ids are
/// placed by a per-process multiplier, never by their bare bits (ids come from traces and
/// clients), and the layout never reaches a report: iteration follows the slab, the order in
/// which entries took their slots.
///
/// A free slot keeps its value type's ``IDTableValue/vacant`` placeholder (nothing is held for a
/// removed entry), beside a flag: an optional value cost an out-of-line tag check per access.
///
/// Reads and writes like the `[Int: Value]` it replaces (subscript, ``index(forKey:)`` and
/// in-place ``subscript(slot:)``, ``removeValue(forKey:)``, iteration as `(key, value)` pairs).
/// Iteration order is unspecified (callers that need an order sort), but deterministic.
///
/// ```swift
/// var table = RequestTable()   // IDTable<RequestState>
/// table[7] = request
/// if let slot = table.index(forKey: 7) { table[slot: slot].stage = .prefill }   // in place
/// ```
struct IDTable<Value: IDTableValue>: Sequence {
    /// A slot of the slab: an id and its value, or (not `occupied`) free and holding ``IDTableValue/vacant``.
    struct Entry {
        var id: Int
        var value: Value
        var occupied: Bool
    }

    private var entries: [Entry] = []
    /// Free slots of ``entries``, the last freed on top.
    private var freeSlots: [Int32] = []
    /// The index: the id's tag in the top 32 bits, its slot in the low 32 (``PrefixIndex/empty``:
    /// none). Empty or a power of two long, at most half full.
    private var slotsByID: [UInt64] = []
    private var slotting = PrefixIndex.Slotting(capacity: 1)
    private(set) var count = 0

    init() {}

    var isEmpty: Bool { count == 0 }

    /// Slots of the slab, in use or free: every ``index(forKey:)`` is below it (a walk over the
    /// entries keeps a per-slot array of this length instead of a second table by id).
    var slotCapacity: Int { entries.count }

    /// Whether slot `slot` (below ``slotCapacity``) holds an entry, and its id.
    func occupant(ofSlot slot: Int) -> Int? { entries[slot].occupied ? entries[slot].id : nil }

    @inline(__always) private static func tag(of entry: UInt64) -> UInt64 { entry & PrefixIndex.tagBits }
    @inline(__always) private static func slot(of entry: UInt64) -> Int { Int(UInt32(truncatingIfNeeded: entry)) }
    @inline(__always) private static func key(_ id: Int) -> UInt64 { UInt64(bitPattern: Int64(id)) }

    /// The slot holding `id` (read in place with ``subscript(slot:)``), nil when absent.
    @inline(__always)
    func index(forKey id: Int) -> Int? {
        guard count > 0 else { return nil }
        return slotsByID.withUnsafeBufferPointer { index in
            entries.withUnsafeBufferPointer { entries in
                let mask = slotting.mask
                let (first, tag) = slotting.place(Self.key(id))
                var i = first
                while true {
                    let entry = index[i]
                    if entry == PrefixIndex.empty { return nil }
                    if Self.tag(of: entry) == tag && entries[Self.slot(of: entry)].id == id { return Self.slot(of: entry) }
                    i = (i &+ 1) & mask
                }
            }
        }
    }

    /// The value in slot `slot` (from ``index(forKey:)``), read and written in place.
    subscript(slot slot: Int) -> Value {
        // Borrowed, not returned: `table[slot: s].field` reads the field in place (a getter
        // returned a copy of the whole value, retaining what it holds, for one field).
        _read { yield entries[slot].value }
        _modify { yield &entries[slot].value }
    }

    subscript(id: Int) -> Value? {
        get { index(forKey: id).map { entries[$0].value } }
        set {
            if let newValue {
                if let slot = index(forKey: id) { entries[slot].value = newValue } else { insert(id, newValue) }
            } else {
                removeValue(forKey: id)
            }
        }
        _modify {
            // Taken out and put back (the in-place path is `subscript(slot:)`).
            var value = removeValue(forKey: id)
            yield &value
            if let value { insert(id, value) }
        }
    }

    /// Removes and returns `id`'s value (nil: none).
    @discardableResult
    mutating func removeValue(forKey id: Int) -> Value? {
        guard let slot = index(forKey: id) else { return nil }
        var value = Value.vacant
        swap(&value, &entries[slot].value)
        remove(id, at: slot)
        return value
    }

    /// Adds `value` under `id`, which the table does not hold (one lookup less than the
    /// subscript's, for a caller that just checked).
    mutating func insertNew(_ value: consuming Value, forKey id: Int) {
        assert(index(forKey: id) == nil, "id \(id) is already in the table")
        insert(id, consume value)
    }

    /// Adds `id` (absent) with `value`, in the last freed slot or a new one.
    private mutating func insert(_ id: Int, _ value: consuming Value) {
        if (count + 1) * 2 > slotsByID.count { grow() }
        let slot: Int
        // The value moves in (no copy of what it holds).
        if !freeSlots.isEmpty {
            slot = Int(freeSlots.removeLast())
            // Field by field, in place: a whole new entry was built aside and the vacant one moved
            // out to be destroyed (two copies of the value per reuse).
            entries[slot].id = id
            entries[slot].value = consume value
            entries[slot].occupied = true
        } else {
            precondition(entries.count < Int(UInt32.max), "an id table holds fewer than 2³² entries")
            slot = entries.count
            entries.append(Entry(id: id, value: consume value, occupied: true))
        }
        let mask = slotting.mask
        let (first, tag) = slotting.place(Self.key(id))
        slotsByID.withUnsafeMutableBufferPointer { index in
            var i = first
            while index[i] != PrefixIndex.empty { i = (i &+ 1) & mask }
            index[i] = tag | UInt64(slot)
        }
        count += 1
    }

    /// Takes `id`'s entry (in `slot`, its value already taken: the placeholder) out of the index
    /// and frees the slot.
    private mutating func remove(_ id: Int, at slot: Int) {
        let mask = slotting.mask
        let slotting = self.slotting
        let (first, tag) = slotting.place(Self.key(id))
        let wanted = tag | UInt64(slot)
        slotsByID.withUnsafeMutableBufferPointer { index in
            var hole = first
            while index[hole] != wanted { hole = (hole &+ 1) & mask }
            // Backward shift: later entries of the probe run move into the hole unless their home
            // (from their tags: no entry is read) lies cyclically in (hole, j].
            var j = hole
            while true {
                j = (j &+ 1) & mask
                let entry = index[j]
                if entry == PrefixIndex.empty { break }
                let k = slotting.home(ofEntry: entry)
                let stays = hole <= j ? (hole < k && k <= j) : (hole < k || k <= j)
                if !stays {
                    index[hole] = entry
                    hole = j
                }
            }
            index[hole] = PrefixIndex.empty
        }
        entries[slot].occupied = false
        freeSlots.append(Int32(truncatingIfNeeded: slot))
        count -= 1
    }

    /// Doubles the index (16 slots at first), re-placing its entries by their tags.
    private mutating func grow() {
        let capacity = Swift.max(16, slotsByID.count * 2)
        precondition(capacity <= 1 << 32, "a tag holds the home of up to 2³² slots")
        let slotting = PrefixIndex.Slotting(capacity: capacity)
        let mask = slotting.mask
        let old = slotsByID
        slotsByID = [UInt64](unsafeUninitializedCapacity: capacity) { grown, initialized in
            grown.initialize(repeating: PrefixIndex.empty)
            for entry in old where entry != PrefixIndex.empty {
                var i = slotting.home(ofEntry: entry)
                while grown[i] != PrefixIndex.empty { i = (i &+ 1) & mask }
                grown[i] = entry
            }
            initialized = capacity
        }
        self.slotting = slotting
    }

    /// The values, in the table's (unspecified) order.
    var values: LazyMapSequence<LazyFilterSequence<[Entry]>, Value> {
        entries.lazy.filter(\.occupied).map(\.value)
    }

    /// The ids, in the table's (unspecified) order.
    var keys: LazyMapSequence<LazyFilterSequence<[Entry]>, Int> {
        entries.lazy.filter(\.occupied).map(\.id)
    }

    /// The `limit` smallest ids, ascending. One pass over the ids with a bounded max-heap, and a
    /// bar (the heap's largest once it is full) that turns away almost every id with one
    /// comparison: a snapshot asks for the oldest 200 of tens of thousands in flight (issue 12's
    /// snapshot under 1 ms).
    func lowestKeys(_ limit: Int) -> [Int] {
        guard limit > 0 else { return [] }
        var heap = Heap<Int>()
        heap.reserveCapacity(limit)
        var bar = Int.max  // the heap's largest once full: only a smaller id gets in
        entries.withUnsafeBufferPointer { entries in
            for entry in entries where entry.occupied {
                let id = entry.id
                if heap.count < limit {
                    heap.insert(id)
                    if heap.count == limit { bar = heap.max! }
                } else if id < bar {
                    _ = heap.replaceMax(with: id)
                    bar = heap.max!
                }
            }
        }
        return heap.unordered.sorted()
    }

    /// Calls `body` on each value in its slot, in the table's (unspecified) order, for walks that
    /// read a few fields of every value: iterating `(key, value)` pairs copies each value out (a
    /// RequestState's arrays retained and released).
    mutating func forEachInPlace(_ body: (inout Value) -> Void) {
        for slot in entries.indices where entries[slot].occupied { body(&entries[slot].value) }
    }

    func makeIterator() -> Iterator { Iterator(entries: entries) }

    struct Iterator: IteratorProtocol {
        fileprivate let entries: [Entry]
        fileprivate var position = 0

        mutating func next() -> (key: Int, value: Value)? {
            while position < entries.count {
                let entry = entries[position]
                position += 1
                if entry.occupied { return (entry.id, entry.value) }
            }
            return nil
        }
    }
}

extension IDTable: Sendable where Value: Sendable {}
extension IDTable.Entry: Sendable where Value: Sendable {}


/// A value an ``IDTable`` can hold: a free slot keeps ``vacant`` (holding nothing).
protocol IDTableValue {
    static var vacant: Self { get }
}

extension Bool: IDTableValue { static var vacant: Bool { false } }
extension Int: IDTableValue { static var vacant: Int { 0 } }
extension UInt64: IDTableValue { static var vacant: UInt64 { 0 } }
extension Array: IDTableValue { static var vacant: Array { [] } }

extension RequestState: IDTableValue {
    /// A request of no prompt and no keys, never in flight (built once).
    static var vacant: RequestState { vacantRequest }
    private static let vacantRequest = RequestState(spec: RequestSpec(id: 0, arrival: 0, promptTokens: 0, outputTokens: 0),
                                                    chainedKeys: [])
}
