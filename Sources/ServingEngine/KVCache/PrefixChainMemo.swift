import SimKit

/// Chains prompts' prefix keys (``PrefixHashes/chain(_:)``) starting from the chained keys of an
/// earlier prompt with the same leading keys: a conversation's next turn repeats the previous
/// turn's keys and adds its own, and chaining costs two hash mixes per key where comparing the
/// leading keys costs one comparison (chaining was most of admitting a request: 80 M of a
/// saturated superpod's five minutes). A chained key depends only on the keys up to it, so a
/// shared leading run chains to the same values: the result is ``PrefixHashes/chain(_:)``'s.
///
/// The last prompt seen per slot is kept (flat and chained keys, shared with the request, not
/// copied), in a fixed number of slots picked by the first key: memory stays bounded whatever
/// the workload (a few megabytes of keys at most).
///
/// ```swift
/// var memo = PrefixChainMemo()
/// let first = memo.chain([7, 8])        // chained, remembered
/// let next = memo.chain([7, 8, 9])      // the first two reused, the third chained
/// ```
struct PrefixChainMemo: Sendable {
    private static let slotBits = 10
    /// The last prompt per slot: its keys and their chain (empty: none). Two arrays of arrays,
    /// read in place (an optional pair per slot was copied out, its arrays retained, per prompt).
    private var keysBySlot = [[UInt64]](repeating: [], count: 1 << PrefixChainMemo.slotBits)
    private var chainsBySlot = [[UInt64]](repeating: [], count: 1 << PrefixChainMemo.slotBits)

    /// Reuses (leading keys chained earlier) and computes, counted for tests.
    private(set) var reusedKeys = 0
    private(set) var chainedKeys = 0

    init() {}

    /// ``PrefixHashes/chain(_:)`` of `keys`.
    mutating func chain(_ keys: [UInt64]) -> [UInt64] {
        guard let first = keys.first else { return [] }
        let slot = Int(truncatingIfNeeded: (first &* 0x9E37_79B9_7F4A_7C15) >> UInt64(64 - Self.slotBits))
        // Leading keys equal to the remembered prompt's (its chain is as long as its keys).
        let shared = keys.withUnsafeBufferPointer { keys in
            keysBySlot[slot].withUnsafeBufferPointer { earlier in
                let limit = min(keys.count, earlier.count)
                var n = 0
                while n < limit && keys[n] == earlier[n] { n &+= 1 }
                return n
            }
        }
        let chained: [UInt64]
        if shared == keys.count && chainsBySlot[slot].count == keys.count {
            chained = chainsBySlot[slot]  // the same prompt prefix again
        } else {
            // The remembered chain read through its buffer (not passed as an array: a retain).
            chained = chainsBySlot[slot].withUnsafeBufferPointer { PrefixHashes.chain(keys, sharing: shared, with: $0) }
        }
        reusedKeys &+= shared
        chainedKeys &+= keys.count - shared
        keysBySlot[slot] = keys
        chainsBySlot[slot] = chained
        return chained
    }
}

