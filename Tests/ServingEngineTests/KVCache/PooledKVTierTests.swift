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

    /// Until the pool fills, a use only stamps the block; the first eviction, here in the middle
    /// of an insert, orders the blocks by their last use (a lookup's refresh and an insert's alike).
    @Test func theFirstEvictionTakesTheBlockLeastRecentlyUsedBeforeTheLRUWasBuilt() {
        var ems = PooledKVTier(capacityBlocks: 5)
        let a = PrefixHashes.chain([1, 2, 3]), b = PrefixHashes.chain([7, 8])
        ems.insert(chainedHashes: a)
        ems.insert(chainedHashes: b)
        #expect(ems.lookup(chainedHashes: [a[0]]) == 1)  // a[0] is now the newest; a[1] the oldest
        ems.insert(chainedHashes: [b[0], 40, 41])  // b[0] refreshed, then two evictions: a[1], a[2]
        #expect(ems.residentBlocks == 5)
        #expect(ems.residentPrefix(chainedHashes: a) == 1)
        #expect(ems.residentPrefix(chainedHashes: b) == 2)
        #expect(ems.residentPrefix(chainedHashes: [40, 41]) == 2)
        ems.insert(chainedHashes: [50])  // then b[1], untouched since its insert
        #expect(ems.residentPrefix(chainedHashes: b) == 1 && ems.residentPrefix(chainedHashes: [a[0], 50]) == 2)
    }

    /// Inserts and lookups of prompts drawn from a few sessions, in a pool small enough that most
    /// inserts evict, against a pool kept as a plain least-recently-used list of hashes.
    @Test(arguments: [UInt64(2), 7]) func insertsAndLookupsFollowAPlainLRU(seed: UInt64) {
        var rng = RandomStreams(seed: seed).stream("pool-walk")
        let capacity = 40
        var ems = PooledKVTier(capacityBlocks: capacity)
        var plain: [UInt64] = []  // oldest first
        func touchOrAdd(_ hash: UInt64) {
            if let at = plain.firstIndex(of: hash) { plain.remove(at: at) } else if plain.count == capacity {
                plain.removeFirst()
            }
            plain.append(hash)
        }
        for step in 0..<400 {
            let session = UInt64(rng.int(in: 0...5))
            let keys = (0..<rng.int(in: 1...20)).map { session &* 1_000 &+ UInt64($0 < 6 ? $0 : rng.int(in: 6...60)) }
            let chained = PrefixHashes.chain(keys)
            if rng.int(in: 0...2) == 0 {
                var matched = 0
                while matched < chained.count, plain.contains(chained[matched]) { matched += 1 }
                #expect(ems.lookup(chainedHashes: chained) == matched, "lookup at step \(step)")
                for hash in chained.prefix(matched) { touchOrAdd(hash) }
            } else {
                ems.insert(chainedHashes: chained)
                for hash in chained { touchOrAdd(hash) }
            }
            #expect(ems.residentBlocks == plain.count, "resident at step \(step)")
            // Every resident hash is found, alone or as the first of a prefix; evicted ones are not.
            for hash in plain { #expect(ems.residentPrefix(chainedHashes: [hash]) == 1) }
        }
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

    /// Prompts of hundreds of blocks are resident whole as the pool's records and index grow up
    /// to its capacity, and the eviction after is the LRU's.
    @Test func longPromptsAreResidentAcrossTheRecordsGrowth() {
        var ems = PooledKVTier(capacityBlocks: 1_000)
        let first = (0..<300).map { UInt64(10_000 + $0) }
        ems.insert(hashes: first)
        #expect(ems.residentBlocks == 300)
        #expect(ems.lookup(prefixHashes: first) == 300)
        let second = (0..<700).map { UInt64(20_000 + $0) }
        ems.insert(hashes: second)
        #expect(ems.residentBlocks == 1_000)
        #expect(ems.lookup(prefixHashes: second) == 700)
        // Full: a new prompt's blocks take the oldest slots, the first prompt's from its start.
        ems.insert(hashes: [1, 2, 3])
        #expect(ems.residentBlocks == 1_000)
        #expect(ems.lookup(prefixHashes: first) == 0)
        #expect(ems.lookup(prefixHashes: [1, 2, 3]) == 3)
        #expect(ems.lookup(prefixHashes: second) == 700)
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
