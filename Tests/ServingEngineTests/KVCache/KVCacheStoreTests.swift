import SimKit
import Testing

@testable import ServingEngine

/// ``KVCacheStore`` through its own API: the pool's hits beyond a group's own, the probe that
/// changes nothing, blocks conserved through allocate/release/spill, the block budget, and `copy()`.
@Suite(.timeLimit(.minutes(10))) struct KVCacheStoreTests {
    /// 16-token blocks; 1 byte per token so the pool holds `poolBlocks` blocks.
    private func store(poolBlocks: Int) -> KVCacheStore {
        KVCacheStore(blockTokens: 16, kvBytesPerToken: 1, poolCapacityBytes: Double(poolBlocks * 16))
    }

    @Test func poolHitsAreCountedOnlyBeyondTheGroupsOwn() throws {
        let kvs = store(poolBlocks: 100)
        let keys = PrefixHashes.chain([1, 2, 3, 4])
        kvs.spillToPool(chained: keys)  // an earlier turn's prompt, prefilled elsewhere
        #expect(kvs.poolResidentBlocks == 4 && kvs.poolUsedBytes == 64)
        var kv = kvs.makeGroupCache(blocks: 50)
        // 70 tokens: 4 full blocks keyed; the pool holds all 4 (64 tokens), the group none.
        let allocation1 = kvs.allocatePrefill(1, in: &kv, promptTokens: 70, chained: keys, expectedTotalTokens: 0)
        let a = try #require(allocation1)
        #expect(a == .init(groupHitTokens: 0, pooledTokens: 64, computeTokens: 6))
        #expect(a.hitTokens == 64 && kvs.poolHitTokens == 64)
        // A second request on the same group: its own cache now has the prefix (registered at
        // allocation), so the pool adds nothing and no pool hit is counted.
        let allocation2 = kvs.allocatePrefill(2, in: &kv, promptTokens: 70, chained: keys, expectedTotalTokens: 0)
        let b = try #require(allocation2)
        #expect(b == .init(groupHitTokens: 64, pooledTokens: 0, computeTokens: 6))
        #expect(kvs.poolHitTokens == 64)
        // The last prompt token is always computed, from the pool too: a 64-token prompt gets 63.
        var other = kvs.makeGroupCache(blocks: 50)
        let allocation3 = kvs.allocatePrefill(3, in: &other, promptTokens: 64, chained: keys, expectedTotalTokens: 0)
        let c = try #require(allocation3)
        #expect(c.pooledTokens == 63 && c.computeTokens == 1)
        #expect(kvs.poolHitTokens == 127)
        // The report's hit rate: the groups' counters plus the pool's extra hits.
        var groups = PrefixCacheStats()
        for m in [kv, other] {
            groups.queriedTokens += m.stats.queriedTokens
            groups.hitTokens += m.stats.hitTokens
        }
        let stats = kvs.prefixStats(groups: groups)
        #expect(stats.queriedTokens == 70 + 70 + 64 && stats.hitTokens == 64 + 127)
        #expect(kv.audit() == [] && other.audit() == [])
    }

    @Test func withoutAPoolNothingIsPooled() throws {
        let kvs = KVCacheStore(blockTokens: 16, kvBytesPerToken: 1, poolCapacityBytes: 0)
        #expect(!kvs.hasPool && kvs.poolCapacityBytes == 0)
        let keys = PrefixHashes.chain([1, 2])
        kvs.spillToPool(chained: keys)
        #expect(kvs.poolResidentBlocks == 0 && kvs.poolUsedBytes == 0)
        var kv = kvs.makeGroupCache(blocks: 10)
        let allocation4 = kvs.allocatePrefill(1, in: &kv, promptTokens: 40, chained: keys, expectedTotalTokens: 0)
        let a = try #require(allocation4)
        #expect(a.pooledTokens == 0 && a.computeTokens == 40 && kvs.poolHitTokens == 0)
    }

    @Test func theProbeChangesNothing() throws {
        let kvs = store(poolBlocks: 3)
        let twoBlocks = PrefixHashes.chain([1, 2]), oneBlock = PrefixHashes.chain([5])
        kvs.spillToPool(chained: twoBlocks)
        kvs.spillToPool(chained: oneBlock)  // full; oldest first: [1], [1 2], [5]
        var kv = kvs.makeGroupCache(blocks: 10)
        // The group itself holds block [1] (through its manager: the store's pool is not touched).
        let allocation5 = kv.allocate(requestID: 1, promptTokens: 20, chainedHashes: PrefixHashes.chain([1]))
        _ = try #require(allocation5)
        let before = (kv.stats, kv.usedBlocks, kvs.poolHitTokens, kvs.poolResidentBlocks)
        // A 40-token prompt over [1 2]: 16 tokens in the group, 16 more in the pool.
        let probe = kvs.probePrefix(in: kv, promptTokens: 40, chained: twoBlocks)
        #expect(probe.group == 16 && probe.pooled == 16)
        let none = kvs.probePrefix(in: kv, promptTokens: 40, chained: [])
        #expect(none.group == 0 && none.pooled == 0)
        #expect(before == (kv.stats, kv.usedBlocks, kvs.poolHitTokens, kvs.poolResidentBlocks), "no counters moved")
        // No LRU move either: [1] is still the oldest, so the next insert evicts it (a lookup
        // would have made [1] and [1 2] the newest, and [5] would go).
        kvs.spillToPool(chained: PrefixHashes.chain([9]))
        let fresh = kvs.makeGroupCache(blocks: 10)
        #expect(kvs.probePrefix(in: fresh, promptTokens: 40, chained: twoBlocks).pooled == 0)
        #expect(kvs.probePrefix(in: fresh, promptTokens: 40, chained: oneBlock).pooled == 16)
    }

    @Test func blocksAreConservedThroughAllocateReleaseAndSpill() throws {
        let kvs = store(poolBlocks: 8)
        var kv = kvs.makeGroupCache(blocks: 12)
        var stream = RandomStreams(seed: 3).stream("kv-store-test")
        var live: [Int] = []
        for id in 0..<200 {
            // Prompts over a few shared prefixes, so hits, pool loads and evictions all happen.
            let family = UInt64(stream.next() % 4)
            let keys = PrefixHashes.chain([family, family &+ 10, UInt64(id)])
            let prompt = 20 + Int(stream.next() % 40)
            if kvs.allocatePrefill(id, in: &kv, promptTokens: prompt, chained: keys,
                                   expectedTotalTokens: id % 3 == 0 ? prompt + 30 : 0) != nil {
                live.append(id)
                kvs.spillToPool(chained: keys)
            }
            // Release the oldest when more than three are live (and always once full).
            while live.count > 3 || (!live.isEmpty && kv.freeBlocks < 4) {
                kvs.release(live.removeFirst(), in: &kv)
            }
            #expect(kv.audit() == [], "after request \(id)")
            #expect(kv.usedBlocks + kv.freeBlocks == kv.totalBlocks)
            #expect(kvs.poolResidentBlocks <= 8)
        }
        for id in live { kvs.release(id, in: &kv) }
        kvs.release(9_999, in: &kv)  // unknown: ignored
        #expect(kv.usedBlocks == 0 && kv.reservedBlocks == 0 && kv.freeBlocks == 12 && kv.liveRequests == 0)
        #expect(kv.audit() == [])
        #expect(kvs.poolHitTokens > 0, "some prompts were loaded from the pool")
    }

    @Test func aPromptThatDoesNotFitChangesNothing() throws {
        let kvs = store(poolBlocks: 10)
        let keys = PrefixHashes.chain([1, 2])
        kvs.spillToPool(chained: keys)
        var kv = kvs.makeGroupCache(blocks: 2)
        let allocation6 = kvs.allocatePrefill(1, in: &kv, promptTokens: 33, chained: keys, expectedTotalTokens: 0)
        #expect(allocation6 == nil)
        #expect(kvs.poolHitTokens == 0 && kv.usedBlocks == 0 && kv.stats == PrefixCacheStats())
        let allocation7 = kvs.allocatePrefill(1, in: &kv, promptTokens: 20, chained: keys, expectedTotalTokens: 0)
        _ = try #require(allocation7)
        let hits = kvs.poolHitTokens
        let allocation8 = kvs.allocatePrefill(1, in: &kv, promptTokens: 20, chained: keys, expectedTotalTokens: 0)
        #expect(allocation8 == nil,
                "the same id twice")
        #expect(kvs.poolHitTokens == hits)
    }

    @Test func theBlockBudgetCountsGroupsAndRefusesPastItsLimit() {
        let kvs = KVCacheStore(blockTokens: 16, kvBytesPerToken: 1, poolCapacityBytes: 0, blockLimit: 1_000)
        #expect(kvs.addGroups(4, blocksEach: 200) && kvs.blocksBuilt == 800)
        #expect(kvs.addGroups(1, blocksEach: 200) && kvs.blocksBuilt == 1_000, "exactly the limit is fine")
        #expect(!kvs.addGroups(1, blocksEach: 1) && kvs.blocksBuilt == 1_001, "kept for the refusal's message")
        #expect(!kvs.addGroups(2, blocksEach: .max), "saturates instead of trapping")
        #expect(kvs.makeGroupCache(blocks: 5).totalBlocks == 5 && kvs.makeGroupCache(blocks: 5).blockTokens == 16)
    }

    @Test func aCopyIsIndependent() throws {
        let a = store(poolBlocks: 4)
        _ = a.addGroups(1, blocksEach: 10)
        a.spillToPool(chained: PrefixHashes.chain([1, 2]))
        var kv = a.makeGroupCache(blocks: 10)
        let allocation9 = a.allocatePrefill(1, in: &kv, promptTokens: 40, chained: PrefixHashes.chain([1, 2]),
                                           expectedTotalTokens: 0)
        _ = try #require(allocation9)
        let b = a.copy()
        #expect(b !== a)
        #expect(b.poolHitTokens == a.poolHitTokens && b.poolResidentBlocks == 2 && b.blocksBuilt == 10)
        #expect(b.poolCapacityBytes == a.poolCapacityBytes && b.blockTokens == a.blockTokens)
        // Writes to the copy leave the original alone, and the other way round.
        b.spillToPool(chained: PrefixHashes.chain([7, 8, 9]))
        var other = b.makeGroupCache(blocks: 10)
        _ = b.allocatePrefill(2, in: &other, promptTokens: 40, chained: PrefixHashes.chain([1, 2]), expectedTotalTokens: 0)
        _ = b.addGroups(1, blocksEach: 5)
        #expect(a.poolResidentBlocks == 2 && a.poolHitTokens == 32 && a.blocksBuilt == 10)
        #expect(b.poolResidentBlocks == 4 && b.blocksBuilt == 15)
        // b's insert evicted [1] (the pool holds 4): a still has it.
        let fresh = a.makeGroupCache(blocks: 10)
        #expect(a.probePrefix(in: fresh, promptTokens: 40, chained: PrefixHashes.chain([1, 2])).pooled == 32)
        #expect(b.probePrefix(in: fresh, promptTokens: 40, chained: PrefixHashes.chain([1, 2])).pooled == 0)
        a.spillToPool(chained: PrefixHashes.chain([3]))
        #expect(b.poolResidentBlocks == 4 && a.poolResidentBlocks == 3)
    }
}
