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
