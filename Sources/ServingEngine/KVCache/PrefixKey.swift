/// A chained prefix-block hash as a dictionary key. The hashes are already SplitMix-mixed
/// 64-bit values (``PrefixHashes/chain(_:)``, `StableHash`), so the dictionary uses their bits
/// as the hash instead of running SipHash over them: the prefix caches are probed for every
/// prefill DP group on every arrival, and SipHash was 8% of a superpod run's instructions.
/// Dictionary order never reaches a report (Swift seeds its hashing per process anyway).
struct PrefixKey: Hashable, Sendable {
    var bits: UInt64

    @inline(__always) init(_ bits: UInt64) { self.bits = bits }

    @inline(__always) static func == (a: PrefixKey, b: PrefixKey) -> Bool { a.bits == b.bits }

    func hash(into hasher: inout Hasher) { hasher.combine(bits) }

    /// What `Dictionary` and `Set` call: the mixed bits, xored with the table's seed.
    @inline(__always) func _rawHashValue(seed: Int) -> Int {
        Int(truncatingIfNeeded: bits ^ UInt64(truncatingIfNeeded: seed))
    }
}
