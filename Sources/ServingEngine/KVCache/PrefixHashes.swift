import SimKit

/// Prefix-block keys: one `UInt64` per full KV block of a prompt's shared prefix.
///
/// Keys arrive "flat" (block i's own content key, e.g. a Mooncake `hash_id`) and are
/// *chained* before lookup, so a block matches only if every block before it matched too
/// — the same rule as vLLM's block hashes. All hashing is ``StableHash`` (never `Hasher`).
///
/// ```swift
/// let keys = PrefixHashes.rebase([7, 8], fromBlockTokens: 512, toBlockTokens: 128)  // 8 keys
/// let chained = PrefixHashes.chain(keys)
/// ```
public enum PrefixHashes {
    /// The parent of a prompt's first block.
    static let root: UInt64 = 0x5eed_0f_b10c_4a5b

    /// Chained hashes: element i identifies blocks 0…i together.
    public static func chain(_ keys: [UInt64]) -> [UInt64] {
        chain(keys, sharing: 0, with: UnsafeBufferPointer(start: nil, count: 0))
    }

    /// ``chain(_:)`` of `keys` whose first `shared` keys are those of a prompt already chained to
    /// `earlier` (``PrefixChainMemo``): a chained key depends only on the keys up to it, so those
    /// are copied and the rest chained from the last of them.
    /// The result is a copy of `keys` (as many), overwritten: the copy-on-write allocates through
    /// the path specialised for the element type, where `init(unsafeUninitializedCapacity:)`
    /// allocates through the standard library's unspecialised generic one, ~630 instructions an
    /// array against ~280 with the copy, most of the difference looking up the storage class's
    /// metadata (issue 12: 5 M of a saturated superpod's two minutes).
    /// Inlined into its two callers (the memo's call per arrival cost a call's spills).
    @inline(__always)
    static func chain(_ keys: [UInt64], sharing shared: Int, with earlier: UnsafeBufferPointer<UInt64>) -> [UInt64] {
        precondition(shared >= 0 && shared <= min(keys.count, earlier.count), "shared keys are chained already")
        var chained = keys
        chained.withUnsafeMutableBufferPointer { out in
            keys.withUnsafeBufferPointer { keys in
                var parent = root
                if shared > 0 {
                    out.baseAddress!.update(from: earlier.baseAddress!, count: shared)
                    parent = out[shared - 1]
                }
                for i in shared..<keys.count {
                    parent = StableHash.combine(parent: parent, keys[i])
                    out[i] = parent
                }
            }
        }
        return chained
    }

    /// Re-expresses keys of `fromBlockTokens`-token blocks as keys of `toBlockTokens`-token
    /// blocks. Splitting derives one sub-key per piece; merging combines consecutive keys and
    /// drops a trailing partial group (only full blocks are cacheable). Sizes that do not divide
    /// each other key each target block by the source blocks it overlaps and its offset in the
    /// first; a size of 0 or less gives no keys (no prefix caching rather than a trap).
    /// Inlined: its callers' keys come back as they are when the sizes agree (every synthetic
    /// request's) without a call per arrival (issue 12).
    @inline(__always)
    public static func rebase(_ keys: [UInt64], fromBlockTokens: Int, toBlockTokens: Int) -> [UInt64] {
        guard fromBlockTokens > 0 && toBlockTokens > 0 else { return [] }
        if fromBlockTokens == toBlockTokens { return keys }
        return resized(keys, fromBlockTokens: fromBlockTokens, toBlockTokens: toBlockTokens)
    }

    /// ``rebase(_:fromBlockTokens:toBlockTokens:)`` between two positive sizes that differ.
    @inline(never)
    static func resized(_ keys: [UInt64], fromBlockTokens: Int, toBlockTokens: Int) -> [UInt64] {
        guard fromBlockTokens % toBlockTokens == 0 || toBlockTokens % fromBlockTokens == 0 else {
            return overlapping(keys, fromBlockTokens: fromBlockTokens, toBlockTokens: toBlockTokens)
        }
        if fromBlockTokens > toBlockTokens {
            // Written straight into one array: a Mooncake arrival splits each 512-token key into
            // four 128-token ones, and a small array per key (flatMap of maps) made this 4% of a
            // replay in allocation alone (issue 12). The same keys, in the same order.
            let pieces = fromBlockTokens / toBlockTokens
            let (count, overflow) = keys.count.multipliedReportingOverflow(by: pieces)
            precondition(!overflow, "too many prefix keys")
            // Each piece number is the child of every key: mixed once per arrival, not once per
            // key (issue 12), on the stack; combining with it gives the same bits.
            return withUnsafeTemporaryAllocation(of: UInt64.self, capacity: pieces) { children in
                for piece in 0..<pieces { children[piece] = StableHash.mixedChild(UInt64(piece)) }
                return [UInt64](unsafeUninitializedCapacity: count) { out, initialized in
                    // Piece by piece, each over every key (key `i`'s piece `p` lands at
                    // `i * pieces + p`, as key by key): the compiler vectorised the key-by-key
                    // loop two pieces at a time, and SSE2 has no 64-bit multiply, so each mix cost
                    // twice its scalar instructions (rebase was 1.5% of the Mooncake hour).
                    keys.withUnsafeBufferPointer { keys in
                        for piece in 0..<pieces {
                            let child = children[piece]
                            var k = piece
                            for key in keys {
                                out[k] = StableHash.combine(parent: key, mixedChild: child)
                                k &+= pieces
                            }
                        }
                    }
                    initialized = count
                }
            }
        }
        let group = toBlockTokens / fromBlockTokens
        return stride(from: 0, to: keys.count - group + 1, by: group).map { start in
            StableHash.fnv1a(words: Array(keys[start..<start + group]))
        }
    }

    /// ``rebase(_:fromBlockTokens:toBlockTokens:)`` for sizes that do not divide: target block j
    /// spans tokens j·to…(j+1)·to−1; it is keyed while every source block it overlaps is known.
    static func overlapping(_ keys: [UInt64], fromBlockTokens from: Int, toBlockTokens to: Int) -> [UInt64] {
        var result: [UInt64] = []
        var j = 0
        while true {
            let (start, o1) = j.multipliedReportingOverflow(by: to)
            let (end, o2) = start.addingReportingOverflow(to - 1)
            guard !o1, !o2, end / from < keys.count else { return result }
            let first = start / from
            result.append(StableHash.fnv1a(words: Array(keys[first...(end / from)]) + [UInt64(start - first * from)]))
            j += 1
        }
    }
}

/// Prefix-cache counters with vLLM's semantics: queried and hit *tokens*
/// (`vllm:prefix_cache_queries_total`, `vllm:prefix_cache_hits_total`).
public struct PrefixCacheStats: Sendable, Equatable {
    public var queriedTokens = 0
    public var hitTokens = 0
    public init() {}
    /// Hit tokens over queried tokens, 0 before any query.
    public var hitRate: Double { queriedTokens == 0 ? 0 : Double(hitTokens) / Double(queriedTokens) }
}
