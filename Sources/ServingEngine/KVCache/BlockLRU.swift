/// An intrusive doubly-linked LRU list over small integer ids (block numbers or slots):
/// O(1) append, remove and pop-oldest, deterministic order, no hashing.
struct BlockLRU {
    private var previous: [Int32]
    private var next: [Int32]
    private var member: [Bool]
    private var head: Int32 = -1
    private var tail: Int32 = -1
    private(set) var count = 0

    init(capacity: Int) {
        previous = Array(repeating: -1, count: capacity)
        next = Array(repeating: -1, count: capacity)
        member = Array(repeating: false, count: capacity)
    }

    func contains(_ id: Int) -> Bool { member[id] }
    var capacity: Int { member.count }

    /// Makes room for ids below `capacity` (for tiers that grow on demand).
    mutating func grow(to capacity: Int) {
        guard capacity > member.count else { return }
        let extra = capacity - member.count
        previous.append(contentsOf: repeatElement(-1, count: extra))
        next.append(contentsOf: repeatElement(-1, count: extra))
        member.append(contentsOf: repeatElement(false, count: extra))
    }

    /// Appends as most recently used.
    mutating func append(_ id: Int) {
        precondition(!member[id])
        member[id] = true
        previous[id] = tail
        next[id] = -1
        if tail >= 0 { next[Int(tail)] = Int32(id) } else { head = Int32(id) }
        tail = Int32(id)
        count += 1
    }

    mutating func remove(_ id: Int) {
        precondition(member[id])
        let p = previous[id]
        let n = next[id]
        if p >= 0 { next[Int(p)] = n } else { head = n }
        if n >= 0 { previous[Int(n)] = p } else { tail = p }
        member[id] = false
        count -= 1
    }

    /// Makes a member the most recently used: `remove` then `append` in one relink, nothing
    /// when it already is (a pooled prefix refreshes every block it matches).
    mutating func touch(_ id: Int) {
        precondition(member[id])
        let me = Int32(truncatingIfNeeded: id)
        guard tail != me else { return }
        let p = previous[id]
        let n = next[id]  // not the tail: there is a next
        if p >= 0 { next[Int(p)] = n } else { head = n }
        previous[Int(n)] = p
        previous[id] = tail
        next[id] = -1
        next[Int(tail)] = me
        tail = me
    }

    /// Removes and returns the least recently used id.
    mutating func popOldest() -> Int? {
        guard head >= 0 else { return nil }
        let id = Int(head)
        remove(id)
        return id
    }

    /// Ids from least to most recently used.
    var oldestFirst: [Int] {
        var result: [Int] = []
        var cursor = head
        while cursor >= 0 {
            result.append(Int(cursor))
            cursor = next[Int(cursor)]
        }
        return result
    }
}
