/// The last `capacity` values appended, oldest first: a fixed array overwritten in turn once
/// full. The telemetry rings of requests that left (``RecentRequests``, ``FinishedRequestRing``)
/// take one value per completion; as a `Deque`, each append copied the value into the storage
/// (retaining its strings and arrays) for the caller to destroy its own, and went through the
/// deque's generic append (~10 M instructions of a saturated superpod's 120 s). Here a value
/// handed over is moved in, and the one it replaces is the only one destroyed.
///
/// ```swift
/// var last = LastValues<Int>(capacity: 3)
/// for i in 1...5 { last.append(i) }
/// Array(last)                  // [3, 4, 5]
/// last.last { $0 % 2 == 0 }    // 4
/// ```
struct LastValues<Element>: Sequence {
    let capacity: Int
    /// Up to `capacity` values; once full, the oldest at `oldest`, then in order round the end.
    private var values: [Element] = []
    private var oldest = 0

    init(capacity: Int) {
        precondition(capacity > 0, "a ring keeps at least one value")
        self.capacity = capacity
    }

    var count: Int { values.count }

    /// Keeps `value` as the newest, dropping the oldest when full.
    mutating func append(_ value: consuming Element) {
        guard values.count == capacity else {
            values.append(value)
            return
        }
        values[oldest] = value
        oldest = oldest + 1 == capacity ? 0 : oldest + 1
    }

    /// The newest value matching `predicate`.
    func last(where predicate: (Element) throws -> Bool) rethrows -> Element? {
        var i = values.count
        while i > 0 {
            i -= 1
            let value = values[(oldest + i) % values.count]
            if try predicate(value) { return value }
        }
        return nil
    }

    func makeIterator() -> Iterator { Iterator(values: values, oldest: oldest) }

    /// Oldest first.
    struct Iterator: IteratorProtocol {
        fileprivate let values: [Element]
        fileprivate let oldest: Int
        private var taken = 0

        fileprivate init(values: [Element], oldest: Int) {
            self.values = values
            self.oldest = oldest
        }

        mutating func next() -> Element? {
            guard taken < values.count else { return nil }
            defer { taken += 1 }
            return values[(oldest + taken) % values.count]
        }
    }
}
