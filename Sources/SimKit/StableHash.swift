/// Hashes that are the same in every process and on every machine.
///
/// Swift's `Hasher` is randomly seeded per process, so anything that affects simulation
/// results (stream seeds, prefix-block keys) uses these instead.
///
/// ```swift
/// let h = StableHash.fnv1a("arrivals")
/// let block = StableHash.combine(parent: h, StableHash.mix(42))
/// ```
public enum StableHash {
    static let fnvOffset: UInt64 = 0xcbf2_9ce4_8422_2325
    static let fnvPrime: UInt64 = 0x0000_0100_0000_01b3

    /// 64-bit FNV-1a of the UTF-8 bytes of `text`.
    public static func fnv1a(_ text: String) -> UInt64 {
        var hash = fnvOffset
        for byte in text.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* fnvPrime
        }
        return hash
    }

    /// 64-bit FNV-1a of the little-endian bytes of `values`.
    public static func fnv1a(words values: [UInt64]) -> UInt64 {
        var hash = fnvOffset
        for value in values {
            var v = value
            for _ in 0..<8 {
                hash ^= v & 0xff
                hash = hash &* fnvPrime
                v >>= 8
            }
        }
        return hash
    }

    /// SplitMix64's finaliser: a strong bijective mix of one 64-bit word.
    @inlinable public static func mix(_ value: UInt64) -> UInt64 {
        var z = value &+ 0x9e37_79b9_7f4a_7c15
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }

    /// Chains a child key onto a parent hash (order-sensitive), as prefix-block hashes need.
    @inlinable public static func combine(parent: UInt64, _ key: UInt64) -> UInt64 {
        combine(parent: parent, mixedChild: mixedChild(key))
    }

    /// The child's half of ``combine(parent:_:)``: a caller chaining one child onto many parents
    /// mixes it once.
    @inlinable public static func mixedChild(_ key: UInt64) -> UInt64 {
        mix(key &+ 0x632b_e59b_d9b4_e019)
    }

    /// ``combine(parent:_:)`` with the child already mixed by ``mixedChild(_:)`` (the same bits).
    @inlinable public static func combine(parent: UInt64, mixedChild: UInt64) -> UInt64 {
        mix(parent ^ mixedChild)
    }
}
