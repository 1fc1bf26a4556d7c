import SimKit
import Testing

@testable import ServingEngine

@Suite struct PooledKVTierTests {
    @Test func lookupMatchesLeadingResidentBlocks() {
        var ems = PooledKVTier(capacityBlocks: 10)
        ems.insert(hashes: [1, 2, 3])
        #expect(ems.residentBlocks == 3)
        let full = ems.lookup(prefixHashes: [1, 2, 3, 4])
        let diverged = ems.lookup(prefixHashes: [1, 9, 3])
        let other = ems.lookup(prefixHashes: [2, 3])
        #expect(full == 3 && diverged == 1 && other == 0)
        #expect(ems.stats.queriedTokens == 9 && ems.stats.hitTokens == 4)
    }

    @Test func evictsLeastRecentlyUsed() {
        var ems = PooledKVTier(capacityBlocks: 4)
        ems.insert(hashes: [1, 2])
        ems.insert(hashes: [3, 4])
        _ = ems.lookup(prefixHashes: [1, 2])  // refresh prefix 1-2
        ems.insert(hashes: [5, 6])  // evicts 3-4
        let refreshed = ems.lookup(prefixHashes: [1, 2])
        let evicted = ems.lookup(prefixHashes: [3, 4])
        let newest = ems.lookup(prefixHashes: [5, 6])
        #expect(refreshed == 2 && evicted == 0 && newest == 2)
        #expect(ems.residentBlocks == 4)
    }

    /// Random inserts (with room for every key, and evicting once full) and lookups against a
    /// plain LRU list of chained keys: the same resident prefixes, hits and counts throughout.
    @Test func insertsAndLookupsMatchAnLRUList() {
        var rng = RandomStreams(seed: 8).stream("pool")
        let capacity = 300
        var ems = PooledKVTier(capacityBlocks: capacity)
        var model: [UInt64] = []  // oldest first
        func modelTouch(_ hash: UInt64) -> Bool {
            guard let at = model.firstIndex(of: hash) else { return false }
            model.remove(at: at)
            model.append(hash)
            return true
        }
        for _ in 0..<3_000 {
            // Prompts share a few roots, so later ones find earlier prefixes resident.
            let root = UInt64(rng.uniform() * 6)
            let keys = [root] + (0..<Int(rng.uniform() * 40)).map { _ in UInt64(rng.uniform() * 12) }
            let chained = PrefixHashes.chain(keys)
            if rng.uniform() < 0.5 {
                ems.insert(chainedHashes: chained)
                for hash in chained where !modelTouch(hash) {
                    if model.count == capacity { model.removeFirst() }
                    model.append(hash)
                }
            } else {
                var expected = 0
                for hash in chained {
                    guard modelTouch(hash) else { break }
                    expected += 1
                }
                #expect(ems.lookup(chainedHashes: chained) == expected)
            }
            #expect(ems.residentBlocks == model.count)
            let resident = Set(model)
            #expect(ems.residentPrefix(chainedHashes: chained) == (chained.firstIndex { !resident.contains($0) } ?? chained.count))
        }
        #expect(model.count == capacity, "the pool filled, so both insert paths ran")
    }

    /// The index's batch look-up-or-register answers as a probe and, on a vacancy, an occupy per
    /// hash (repeats within a batch included).
    @Test func lookUpOrRegisterIsProbeThenOccupy() {
        var rng = RandomStreams(seed: 3).stream("index")
        var batchKeys = [UInt64](repeating: 0, count: 4_096), singleKeys = batchKeys
        var batch = PrefixIndex(), single = PrefixIndex()
        var batchNext = 0, singleNext = 0
        for _ in 0..<200 {
            let hashes = (0..<Int(rng.uniform() * 20)).map { _ in UInt64(rng.uniform() * 2_000) }
            var batchSeen: [Int] = [], singleSeen: [Int] = []
            for hash in hashes {
                switch single.probe(for: hash, keys: singleKeys) {
                case .registered(let block): singleSeen.append(block)
                case .vacant(let slot):
                    singleKeys[singleNext] = hash
                    single.occupy(slot, with: singleNext)
                    singleNext += 1
                }
            }
            batch.reserve(adding: hashes.count, keys: batchKeys)
            batchKeys.withUnsafeMutableBufferPointer { keys in
                hashes.withUnsafeBufferPointer { hashes in
                    batch.lookUpOrRegister(hashes: hashes, keys: keys, registered: { batchSeen.append($0) }, fresh: {
                        defer { batchNext += 1 }
                        return batchNext
                    })
                }
            }
            #expect(batchSeen == singleSeen && batchNext == singleNext && batch.count == single.count)
            #expect(batchKeys == singleKeys)
        }
        #expect(batch.count > 1_000)
    }

    @Test func rebaseSplitsAndMergesBlocks() {
        let split = PrefixHashes.rebase([7, 8], fromBlockTokens: 512, toBlockTokens: 128)
        #expect(split.count == 8 && Set(split).count == 8)
        let merged = PrefixHashes.rebase([1, 2, 3], fromBlockTokens: 256, toBlockTokens: 512)
        #expect(merged.count == 1)
        #expect(PrefixHashes.rebase([1, 2], fromBlockTokens: 64, toBlockTokens: 64) == [1, 2])
        #expect(PrefixHashes.chain([1, 2]) == PrefixHashes.chain([1, 2]))
        #expect(PrefixHashes.chain([1, 2])[1] != PrefixHashes.chain([3, 2])[1])
    }
}
