/// An intrusive doubly-linked LRU list over small integer ids (block numbers or slots):
/// O(1) append, remove and pop-oldest, deterministic order, no hashing.
///
/// Each id's two links live side by side in one array (membership is a sentinel in
/// `previous`), so a relink touches one array: one uniqueness check and one cache line per id
/// instead of three (the LRU was a fourteenth of a saturated superpod's instructions).
struct BlockLRU {
    private struct Link {
        /// The previous member, -1 at the head, ``BlockLRU/outside`` when not a member.
        var previous: Int32
        var next: Int32
    }
    private static let outside: Int32 = -2
    private var links: [Link]
    private var head: Int32 = -1
    private var tail: Int32 = -1
    private(set) var count = 0

    init(capacity: Int) {
        links = Array(repeating: Link(previous: Self.outside, next: -1), count: capacity)
    }

    func contains(_ id: Int) -> Bool { links[id].previous != Self.outside }
    var capacity: Int { links.count }

    /// Makes room for ids below `capacity` (for tiers that grow on demand).
    mutating func grow(to capacity: Int) {
        guard capacity > links.count else { return }
        links.append(contentsOf: repeatElement(Link(previous: Self.outside, next: -1), count: capacity - links.count))
    }

    /// Appends as most recently used.
    mutating func append(_ id: Int) {
        precondition(links[id].previous == Self.outside)
        let me = Int32(truncatingIfNeeded: id)
        links[id] = Link(previous: tail, next: -1)
        if tail >= 0 { links[Int(tail)].next = me } else { head = me }
        tail = me
        count += 1
    }

    mutating func remove(_ id: Int) {
        let link = links[id]
        precondition(link.previous != Self.outside)
        let p = link.previous
        let n = link.next
        if p >= 0 { links[Int(p)].next = n } else { head = n }
        if n >= 0 { links[Int(n)].previous = p } else { tail = p }
        links[id].previous = Self.outside
        count -= 1
    }

    /// Makes a member the most recently used: `remove` then `append` in one relink, nothing
    /// when it already is (a pooled prefix refreshes every block it matches).
    @inline(__always)
    mutating func touch(_ id: Int) {
        let link = links[id]
        precondition(link.previous != Self.outside)
        let me = Int32(truncatingIfNeeded: id)
        guard tail != me else { return }
        let p = link.previous
        let n = link.next  // not the tail: there is a next
        if p >= 0 { links[Int(p)].next = n } else { head = n }
        links[Int(n)].previous = p
        links[id] = Link(previous: tail, next: -1)
        links[Int(tail)].next = me
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
            cursor = links[Int(cursor)].next
        }
        return result
    }
}
