import Testing

@testable import ServingEngine

/// The block manager's sequence table against a dictionary: ids that differ only in their high
/// bits (which must not make them share slots), the HBM masks' holders down at `Int.min`, and
/// enough churn that probe runs wrap and removals shift entries back.
@Suite struct SequenceTableTests {
    private static func sequence(_ n: Int) -> KVBlockManager.Sequence {
        KVBlockManager.Sequence(start: n * 8, count: n % 7, sizeClass: 3 + n % 5, tokens: n * 3, expectedTotalTokens: n * 5)
    }

    @Test func matchesADictionaryUnderChurn() {
        var rng: UInt64 = 0x5EED
        func next() -> UInt64 {
            rng = rng &+ 0x9E37_79B9_7F4A_7C15
            var z = rng
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            return z ^ (z >> 31)
        }
        // 300 ids: high-bit strides, small counters and mask holders.
        let ids = (0..<100).map { $0 << 40 } + (0..<100).map { $0 + 1 } + (0..<100).map { Int.min + $0 }
        var table = SequenceTable()
        var model: [Int: KVBlockManager.Sequence] = [:]
        for step in 0..<30_000 {
            let id = ids[Int(next() % UInt64(ids.count))]
            switch next() % 3 {
            case 0:
                #expect(table.removeValue(forKey: id)?.start == model.removeValue(forKey: id)?.start)
            default:
                let value = Self.sequence(step)
                table[id] = value
                model[id] = value
            }
            #expect(table.count == model.count)
        }
        for id in ids {
            let held = table[id]
            #expect(held?.start == model[id]?.start && held?.tokens == model[id]?.tokens
                && held?.expectedTotalTokens == model[id]?.expectedTotalTokens && held?.sizeClass == model[id]?.sizeClass)
        }
        let walked = Dictionary(uniqueKeysWithValues: table.map { ($0.key, $0.value.start) })
        #expect(walked == model.mapValues(\.start))
        for id in ids { table[id] = nil }
        var walk = table.makeIterator()
        #expect(table.isEmpty && walk.next() == nil)
    }

    /// ``SequenceTable/vacancy(for:)`` then ``SequenceTable/insert(_:_:at:)`` stores a new id as
    /// the subscript does (through growth and wrapped probe runs), and finds no vacancy for a held id.
    @Test func vacancyThenInsertMatchesADictionary() {
        let ids = (0..<200).map { $0 << 40 } + (0..<200).map { $0 + 1 } + (0..<100).map { Int.min + $0 }
        var table = SequenceTable()
        var model: [Int: KVBlockManager.Sequence] = [:]
        for (n, id) in ids.enumerated() {
            guard let slot = table.vacancy(for: id) else {
                Issue.record("no vacancy for the new id \(id)")
                continue
            }
            table.insert(id, Self.sequence(n), at: slot)
            model[id] = Self.sequence(n)
            #expect(table.vacancy(for: id) == nil)
            #expect(table.count == model.count)
            // Every third step removes the id before it: later inserts probe past and into the holes.
            if n % 3 == 2 {
                let gone = ids[n - 1]
                #expect(table.removeValue(forKey: gone)?.start == model.removeValue(forKey: gone)?.start)
            }
        }
        for id in ids {
            #expect(table[id]?.start == model[id]?.start && table[id]?.tokens == model[id]?.tokens)
        }
        let walked = Dictionary(uniqueKeysWithValues: table.map { ($0.key, $0.value.start) })
        #expect(walked == model.mapValues(\.start))
    }
}
