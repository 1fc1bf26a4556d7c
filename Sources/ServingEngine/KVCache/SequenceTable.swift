/// A block manager's live sequences by request id (``KVBlockManager/Sequence``): an
/// open-addressing table (linear probing, backward-shift deletion, at most half full) whose
/// entries hold the id and the sequence side by side.
///
/// It replaces an ``IDTable`` (a `Dictionary` with a cheap key hash): a sequence holds no
/// reference, so storing, reading and removing one is a probe and a copy of six words, with no
/// generic dictionary machinery (its find, insert and delete cost 28 M instructions in a
/// saturated superpod's two minutes, a few hundred per request). Ids are placed by
/// ``PrefixIndex/Slotting`` (a per-process multiplier), never by their bare bits: ids come from
/// traces and clients, and crafted ones must not make every probe walk one long run. Iteration
/// order is unspecified (the audit, its only reader, sorts what it reports).
///
/// ```swift
/// var table = SequenceTable()
/// table[7] = sequence
/// let held = table.removeValue(forKey: 7)
/// ```
struct SequenceTable: Swift.Sequence, Sendable {
    typealias Value = KVBlockManager.Sequence

    /// An entry; `sequence.sizeClass < 0` marks a vacant one (every id is a valid key, the HBM
    /// masks' holders reach down to `Int.min`).
    fileprivate struct Entry: Sendable {
        var id: Int
        var sequence: Value
    }
    private static let vacant = Entry(id: 0, sequence: Value(start: 0, count: 0, sizeClass: -1, tokens: 0, expectedTotalTokens: 0))

    /// Empty or a power of two long.
    private var entries: [Entry] = []
    private(set) var count = 0
    private var slotting = PrefixIndex.Slotting(capacity: 1)

    init() {}

    var isEmpty: Bool { count == 0 }

    @inline(__always) private func home(_ id: Int) -> Int { slotting.home(UInt64(bitPattern: Int64(id))) }

    /// The slot holding `id`, or nil.
    @inline(__always)
    private func slot(of id: Int) -> Int? {
        guard count > 0 else { return nil }
        return entries.withUnsafeBufferPointer { entries in
            let mask = slotting.mask
            var i = home(id)
            while true {
                let entry = entries[i]
                if entry.sequence.sizeClass < 0 { return nil }
                if entry.id == id { return i }
                i = (i &+ 1) & mask
            }
        }
    }

    subscript(id: Int) -> Value? {
        get { slot(of: id).map { entries[$0].sequence } }
        set {
            if let newValue { update(id, to: newValue) } else { removeValue(forKey: id) }
        }
    }

    /// Stores `sequence` under `id`, replacing what it held.
    private mutating func update(_ id: Int, to sequence: Value) {
        precondition(sequence.sizeClass >= 0, "a sequence's chunk has a size class")
        if (count + 1) * 2 > entries.count { grow() }
        let slotting = self.slotting
        let added = entries.withUnsafeMutableBufferPointer { entries in
            let mask = slotting.mask
            var i = slotting.home(UInt64(bitPattern: Int64(id)))
            while true {
                if entries[i].sequence.sizeClass < 0 {
                    entries[i] = Entry(id: id, sequence: sequence)
                    return true
                }
                if entries[i].id == id {
                    entries[i].sequence = sequence
                    return false
                }
                i = (i &+ 1) & mask
            }
        }
        if added { count += 1 }
    }

    /// The vacant slot a new `id` would take, nil when `id` is held: a lookup that
    /// ``insert(_:_:at:)`` completes without a second probe, given no other change to the table in
    /// between (an allocation checks that its request is new first and stores it last: two probes
    /// and the checks of an update were 70 instructions an allocation; issue 12). Grows the table
    /// first when one more entry would (so it may grow for an insert that does not follow).
    @inline(__always)
    mutating func vacancy(for id: Int) -> Int? {
        if (count + 1) * 2 > entries.count { grow() }
        let slotting = self.slotting
        return entries.withUnsafeBufferPointer { entries in
            let mask = slotting.mask
            var i = slotting.home(UInt64(bitPattern: Int64(id)))
            while true {
                if entries[i].sequence.sizeClass < 0 { return i }
                if entries[i].id == id { return nil }
                i = (i &+ 1) & mask
            }
        }
    }

    /// Stores `sequence` under the new `id` in the `slot` ``vacancy(for:)`` gave for it.
    @inline(__always)
    mutating func insert(_ id: Int, _ sequence: Value, at slot: Int) {
        precondition(sequence.sizeClass >= 0, "a sequence's chunk has a size class")
        entries.withUnsafeMutableBufferPointer { entries in
            precondition(slot >= 0 && slot < entries.count && entries[slot].sequence.sizeClass < 0, "a vacant slot")
            entries[slot] = Entry(id: id, sequence: sequence)
        }
        count += 1
    }

    /// Removes and returns `id`'s sequence (nil: none).
    @discardableResult
    mutating func removeValue(forKey id: Int) -> Value? {
        guard let found = slot(of: id) else { return nil }
        let slotting = self.slotting
        let removed = entries.withUnsafeMutableBufferPointer { entries in
            let removed = entries[found].sequence
            let mask = slotting.mask
            // Backward shift: later entries of the probe run move into the hole unless their
            // home lies cyclically in (hole, j].
            var hole = found
            var j = found
            while true {
                j = (j &+ 1) & mask
                let entry = entries[j]
                if entry.sequence.sizeClass < 0 { break }
                let k = slotting.home(UInt64(bitPattern: Int64(entry.id)))
                let stays = hole <= j ? (hole < k && k <= j) : (hole < k || k <= j)
                if !stays {
                    entries[hole] = entry
                    hole = j
                }
            }
            entries[hole] = Self.vacant
            return removed
        }
        count -= 1
        return removed
    }

    /// Doubles the table (16 slots at first), re-placing the entries.
    private mutating func grow() {
        let capacity = Swift.max(16, entries.count * 2)
        let slotting = PrefixIndex.Slotting(capacity: capacity)
        let mask = slotting.mask
        var grown = [Entry](repeating: Self.vacant, count: capacity)
        grown.withUnsafeMutableBufferPointer { grown in
            for entry in entries where entry.sequence.sizeClass >= 0 {
                var i = slotting.home(UInt64(bitPattern: Int64(entry.id)))
                while grown[i].sequence.sizeClass >= 0 { i = (i &+ 1) & mask }
                grown[i] = entry
            }
        }
        entries = grown
        self.slotting = slotting
    }

    /// The `(key, value)` pairs, in the table's (unspecified) order.
    func makeIterator() -> Iterator { Iterator(entries: entries) }

    struct Iterator: IteratorProtocol {
        fileprivate let entries: [Entry]
        fileprivate var position = 0
        fileprivate init(entries: [Entry]) { self.entries = entries }

        mutating func next() -> (key: Int, value: Value)? {
            while position < entries.count {
                let entry = entries[position]
                position += 1
                if entry.sequence.sizeClass >= 0 { return (entry.id, entry.sequence) }
            }
            return nil
        }
    }
}
