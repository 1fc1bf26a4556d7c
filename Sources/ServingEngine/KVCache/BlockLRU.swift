/// An intrusive doubly-linked LRU list over small integer ids (block numbers or slots):
/// O(1) append, remove and pop-oldest, deterministic order, no hashing.
///
/// Each id's two links live side by side in one array (membership is a sentinel in
/// `previous`), so a relink touches one array: one uniqueness check and one cache line per id
/// instead of three (the LRU was a fourteenth of a saturated superpod's instructions).
struct BlockLRU {
    fileprivate struct Link {
        /// The previous member, -1 at the head, ``BlockLRU/outside`` when not a member.
        var previous: Int32
        var next: Int32
    }
    fileprivate static let outside: Int32 = -2
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
    mutating func append(_ id: Int) { edit { $0.append(id) } }

    /// Appends the non-negative ids of `ids`, last first, as `append` one at a time would,
    /// through one access to the links (``KVBlockManager/free(requestID:)`` releases a request's
    /// blocks in a batch; its other entries are bit-inverted ids bound elsewhere).
    mutating func append(reversedNonNegativeOf ids: UnsafeBufferPointer<Int32>) {
        edit { editor in
            var position = ids.count
            while position > 0 {
                position -= 1
                if ids[position] >= 0 { editor.append(Int(ids[position])) }
            }
        }
    }

    mutating func remove(_ id: Int) { edit { $0.remove(id) } }

    /// Makes a member the most recently used: `remove` then `append` in one relink, nothing
    /// when it already is (a pooled prefix refreshes every block it matches).
    @inline(__always)
    mutating func touch(_ id: Int) { edit { $0.touch(id) } }

    /// Removes and returns the least recently used id.
    mutating func popOldest() -> Int? { edit { $0.popOldest() } }

    /// Runs `body` with an ``Editor`` over the links' buffer: a batch of relinks (the pooled tier
    /// touches or appends every key of a finished prompt) checks the array's uniqueness once
    /// instead of once per relink. The LRU cannot grow meanwhile.
    @inline(__always)
    mutating func edit<R>(_ body: (inout Editor) -> R) -> R {
        let (result, head, tail, count) = links.withUnsafeMutableBufferPointer { buffer in
            var editor = Editor(links: buffer, head: self.head, tail: self.tail, count: self.count)
            let result = body(&editor)
            return (result, editor.head, editor.tail, editor.count)
        }
        self.head = head
        self.tail = tail
        self.count = count
        return result
    }

    /// The LRU's relinks on its links' buffer (``BlockLRU``'s own methods are one-relink edits).
    struct Editor {
        fileprivate let links: UnsafeMutableBufferPointer<Link>
        fileprivate var head: Int32
        fileprivate var tail: Int32
        fileprivate var count: Int

        /// Ids below this may be members.
        @inline(__always) var capacity: Int { links.count }

        @inline(__always) func contains(_ id: Int) -> Bool { links[id].previous != BlockLRU.outside }

        @inline(__always)
        mutating func append(_ id: Int) {
            precondition(links[id].previous == BlockLRU.outside)
            let me = Int32(truncatingIfNeeded: id)
            links[id] = Link(previous: tail, next: -1)
            if tail >= 0 { links[Int(tail)].next = me } else { head = me }
            tail = me
            count &+= 1  // at most the LRU's capacity
        }

        @inline(__always)
        mutating func touch(_ id: Int) {
            let link = links[id]
            precondition(link.previous != BlockLRU.outside)
            let me = Int32(truncatingIfNeeded: id)
            guard tail != me else { return }
            let p = link.previous
            let n = link.next
            if p >= 0 { links[Int(p)].next = n } else { head = n }
            links[Int(n)].previous = p
            links[id] = Link(previous: tail, next: -1)
            links[Int(tail)].next = me
            tail = me
        }

        @inline(__always)
        mutating func remove(_ id: Int) {
            let link = links[id]
            precondition(link.previous != BlockLRU.outside)
            let p = link.previous
            let n = link.next
            if p >= 0 { links[Int(p)].next = n } else { head = n }
            if n >= 0 { links[Int(n)].previous = p } else { tail = p }
            links[id].previous = BlockLRU.outside
            count &-= 1  // a member was removed
        }

        /// Removes the `run.count` least recently used ids into `run`, oldest first: what
        /// `popOldest()` per id does, walking the list from its head and relinking once at the
        /// end (a full prefill group evicts a prompt's worth of blocks per allocation).
        @inline(__always)
        mutating func popOldest(into run: UnsafeMutableBufferPointer<Int32>) {
            guard !run.isEmpty else { return }
            precondition(run.count <= count, "only members are popped")
            var cursor = head
            for k in run.indices {
                precondition(cursor >= 0, "the list holds `count` members")
                let id = Int(cursor)
                run[k] = cursor
                cursor = links[id].next
                links[id].previous = BlockLRU.outside
            }
            head = cursor
            if cursor >= 0 { links[Int(cursor)].previous = -1 } else { tail = -1 }
            count -= run.count
        }

        @inline(__always)
        mutating func popOldest() -> Int? {
            guard head >= 0 else { return nil }
            let id = Int(head)
            remove(id)
            return id
        }
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
