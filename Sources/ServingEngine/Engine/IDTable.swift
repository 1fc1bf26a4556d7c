import HeapModule

/// The engine's in-flight requests by id (``RequestTable``), and a block manager's sequences.
typealias RequestTable = IDTable<RequestState>

/// A dictionary by request id whose keys hash with one multiply–xorshift round instead of
/// SipHash. Request ids are already spread (a counter, trace ids, external ids from a high
/// base), and hashing them for the in-flight table's dozen lookups per request and the block
/// managers' few was a twentieth of a saturated superpod's instructions.
///
/// Reads and writes like the `[Int: Value]` it replaces (subscript, `index(forKey:)` and
/// in-place `values[slot]`, `removeValue(forKey:)`, iteration as `(key, value)` pairs). Iteration
/// order is unspecified, as a dictionary's (it already differed from process to process): callers
/// that need an order sort.
///
/// ```swift
/// var table = RequestTable()   // IDTable<RequestState>
/// table[7] = request
/// if let slot = table.index(forKey: 7) { table.values[slot].stage = .prefill }   // in place
/// ```
struct IDTable<Value>: Sequence {
    typealias Storage = [RequestKey: Value]
    private var storage: Storage = [:]

    init() {}

    subscript(id: Int) -> Value? {
        get { storage[RequestKey(id)] }
        set { storage[RequestKey(id)] = newValue }
        _modify { yield &storage[RequestKey(id)] }
    }

    /// The requests, writable in place through an index from ``index(forKey:)``.
    var values: Storage.Values {
        get { storage.values }
        _modify { yield &storage.values }
    }

    /// The ids, in the table's (unspecified) order.
    var keys: LazyMapSequence<Storage.Keys, Int> { storage.keys.lazy.map(\.id) }

    var count: Int { storage.count }
    var isEmpty: Bool { storage.isEmpty }

    func index(forKey id: Int) -> Storage.Index? { storage.index(forKey: RequestKey(id)) }

    /// The `limit` smallest ids, ascending. One pass over the keys with a bounded max-heap, and a
    /// bar (the heap's largest once it is full) that turns away almost every key with one
    /// comparison: a snapshot asks for the oldest 200 of tens of thousands in flight (the
    /// generic walk through the lazy `keys` and `Heap.max` cost 35 instructions a key, 1.3 M of
    /// a saturated superpod's 3.4 M per snapshot; issue 12's snapshot under 1 ms).
    func lowestKeys(_ limit: Int) -> [Int] {
        guard limit > 0 else { return [] }
        var heap = Heap<Int>()
        heap.reserveCapacity(limit)
        var bar = Int.max  // the heap's largest once full: only a smaller id gets in
        for key in storage.keys {
            let id = key.id
            if heap.count < limit {
                heap.insert(id)
                if heap.count == limit { bar = heap.max! }
            } else if id < bar {
                _ = heap.replaceMax(with: id)
                bar = heap.max!
            }
        }
        return heap.unordered.sorted()
    }

    /// Calls `body` on each value in its slot, in the table's (unspecified) order, for walks that
    /// read a few fields of every value: iterating `(key, value)` pairs copies each value out (a
    /// RequestState's arrays retained and released).
    mutating func forEachInPlace(_ body: (inout Value) -> Void) {
        var slot = storage.values.startIndex
        while slot != storage.values.endIndex {
            body(&storage.values[slot])
            storage.values.formIndex(after: &slot)
        }
    }

    @discardableResult
    mutating func removeValue(forKey id: Int) -> Value? { storage.removeValue(forKey: RequestKey(id)) }

    func makeIterator() -> Iterator { Iterator(inner: storage.makeIterator()) }

    struct Iterator: IteratorProtocol {
        var inner: Storage.Iterator
        mutating func next() -> (key: Int, value: Value)? {
            guard let (key, value) = inner.next() else { return nil }
            return (key.id, value)
        }
    }
}

extension IDTable: Sendable where Value: Sendable {}

/// A request id as a dictionary key, hashed cheaply (``IDTable``).
struct RequestKey: Hashable, Sendable {
    let id: Int
    init(_ id: Int) { self.id = id }

    static func == (a: RequestKey, b: RequestKey) -> Bool { a.id == b.id }

    func hash(into hasher: inout Hasher) { hasher.combine(id) }

    /// What the dictionary uses: the id mixed with the table's seed (so two tables do not share
    /// a probe order) by a 64-bit multiply and xorshift (MurmurHash3's finaliser, one round).
    func _rawHashValue(seed: Int) -> Int {
        var x = UInt64(bitPattern: Int64(id)) ^ UInt64(bitPattern: Int64(seed))
        x = (x ^ (x >> 33)) &* 0xff51_afd7_ed55_8ccd
        x ^= x >> 33
        return Int(bitPattern: UInt(x))
    }
}
