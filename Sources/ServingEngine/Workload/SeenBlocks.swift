import SimKit

/// The Mooncake `hash_id`s a trace check has seen (``TraceWorkload/check(path:maxContextTokens:clipToContext:)``'s
/// ideal prefix reuse): membership only, never iterated.
///
/// An open-addressing set (linear probing, no deletion) of 64-bit ids slotted by
/// ``StableHash/mix(_:)``. A `Set<UInt64>` seeds `Hasher` (SipHash) for every probe and rehashes
/// every element at each doubling: the hour-long Mooncake check probes 118 K times and inserts
/// 288 K ids (a fiftieth of the whole replay). One id value (`UInt64.max`) marks an empty slot; that
/// id itself is kept by a flag.
///
/// The ids come from a file, so a slot is picked from the id salted with Swift's per-process
/// hashing seed (the one the `Set` it replaces used): ids crafted to share a slot under the bare
/// mixer would make every probe walk one long run. Only membership is ever read, so the salt
/// changes the layout, never a result.
///
/// ```swift
/// var seen = SeenBlocks()
/// seen.insert(7)
/// seen.contains(7)   // true
/// ```
struct SeenBlocks {
    private static let empty = UInt64.max
    /// Ids, `empty` where vacant. Empty or a power of two long, at most ¾ full.
    private var slots: [UInt64] = []
    /// Ids held in `slots` (the `empty` id not included).
    private(set) var slotted = 0
    private var holdsEmptyID = false
    /// XORed into an id before it is mixed: from `Hasher`'s per-process seed.
    private let salt: UInt64 = {
        var hasher = Hasher()
        hasher.combine(0 as UInt64)
        return UInt64(truncatingIfNeeded: hasher.finalize())
    }()

    /// Ids held.
    var count: Int { slotted + (holdsEmptyID ? 1 : 0) }

    func contains(_ id: UInt64) -> Bool {
        if id == Self.empty { return holdsEmptyID }
        guard !slots.isEmpty else { return false }
        return slots.withUnsafeBufferPointer { slots in
            let mask = slots.count - 1
            var i = Self.home(id, salt: salt, mask: mask)
            while true {
                let held = slots[i]
                if held == id { return true }
                if held == Self.empty { return false }
                i = (i + 1) & mask
            }
        }
    }

    /// How many of `ids`, from the first, are held: the leading run a prefix cache could reuse.
    /// As ``contains(_:)`` id by id, through one buffer access.
    func leadingRunHeld(_ ids: [UInt64]) -> Int {
        guard !slots.isEmpty else {
            // Only the `empty` id can be held.
            return holdsEmptyID ? ids.prefix(while: { $0 == Self.empty }).count : 0
        }
        let salt = self.salt
        let holdsEmptyID = self.holdsEmptyID
        return slots.withUnsafeBufferPointer { slots in
            ids.withUnsafeBufferPointer { ids in
                let mask = slots.count - 1
                var run = 0
                scan: while run < ids.count {
                    let id = ids[run]
                    if id == Self.empty {
                        guard holdsEmptyID else { break scan }
                    } else {
                        var i = Self.home(id, salt: salt, mask: mask)
                        while true {
                            let held = slots[i]
                            if held == id { break }
                            if held == Self.empty { break scan }
                            i = (i + 1) & mask
                        }
                    }
                    run += 1
                }
                return run
            }
        }
    }

    /// Adds `id` (nothing when held already).
    mutating func insert(_ id: UInt64) {
        if id == Self.empty {
            holdsEmptyID = true
            return
        }
        if (slotted + 1) * 4 > slots.count * 3 { grow() }
        let added = slots.withUnsafeMutableBufferPointer { slots in Self.place(id, in: slots, salt: salt) }
        if added { slotted += 1 }
    }

    /// Adds every id of `ids`: as ``insert(_:)`` one by one, the same growth at the same id, but
    /// each run of ids that cannot reach the growth threshold placed through one buffer access
    /// (a uniqueness check and a closure per id were a third of the Mooncake check's set work).
    /// Ids before `start` are left out (the caller knows they are held).
    mutating func formUnion(_ ids: [UInt64], from start: Int = 0) {
        var next = start
        while next < ids.count {
            // Each id adds at most one: this many fit before ``insert(_:)`` would grow.
            let room = slots.count * 3 / 4 - slotted
            guard room > 0 else {
                insert(ids[next])
                next += 1
                continue
            }
            let end = min(ids.count, next + room)
            let salt = self.salt
            var added = 0
            var sawEmptyID = false
            slots.withUnsafeMutableBufferPointer { slots in
                ids.withUnsafeBufferPointer { ids in
                    for i in next..<end {
                        let id = ids[i]
                        if id == Self.empty {
                            sawEmptyID = true
                        } else if Self.place(id, in: slots, salt: salt) {
                            added += 1
                        }
                    }
                }
            }
            slotted += added
            if sawEmptyID { holdsEmptyID = true }
            next = end
        }
    }

    /// Puts `id` in its probe run's first vacant slot unless the run holds it; whether it was added.
    @inline(__always)
    private static func place(_ id: UInt64, in slots: UnsafeMutableBufferPointer<UInt64>, salt: UInt64) -> Bool {
        let mask = slots.count - 1
        var i = home(id, salt: salt, mask: mask)
        while true {
            let held = slots[i]
            if held == id { return false }
            if held == Self.empty {
                slots[i] = id
                return true
            }
            i = (i + 1) & mask
        }
    }

    /// The slot `id`'s probe run starts at.
    @inline(__always)
    private static func home(_ id: UInt64, salt: UInt64, mask: Int) -> Int {
        Int(truncatingIfNeeded: StableHash.mix(id ^ salt)) & mask
    }

    private mutating func grow() {
        let old = slots
        slots = Array(repeating: Self.empty, count: max(1_024, old.count * 2))
        slots.withUnsafeMutableBufferPointer { slots in
            for id in old where id != Self.empty { _ = Self.place(id, in: slots, salt: salt) }
        }
    }
}
