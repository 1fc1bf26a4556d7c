import SimKit
import Testing

@testable import ServingEngine

/// ``KVCacheStore`` through its own API: the pool's hits beyond a group's own, the probe that
/// changes nothing, blocks conserved through allocate/release/spill, the block budget, and `copy()`.
/// (Its group table: KVCacheStoreGroupTests; its HBM masks: KVCacheStoreMaskTests.)
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
        let kv = kvs.addGroup(blocks: 50)
        // 70 tokens: 4 full blocks keyed; the pool holds all 4 (64 tokens), the group none.
        let allocation1 = kvs.allocatePrefill(1, in: kv, promptTokens: 70, chained: keys, expectedTotalTokens: 0)
        let a = try #require(allocation1)
        #expect(a == .init(groupHitTokens: 0, pooledTokens: 64, computeTokens: 6))
        #expect(a.hitTokens == 64 && kvs.poolHitTokens == 64)
        // A second request on the same group: its own cache now has the prefix (registered at
        // allocation), so the pool adds nothing and no pool hit is counted.
        let allocation2 = kvs.allocatePrefill(2, in: kv, promptTokens: 70, chained: keys, expectedTotalTokens: 0)
        let b = try #require(allocation2)
        #expect(b == .init(groupHitTokens: 64, pooledTokens: 0, computeTokens: 6))
        #expect(kvs.poolHitTokens == 64)
        // The last prompt token is always computed, from the pool too: a 64-token prompt gets 63.
        let other = kvs.addGroup(blocks: 50)
        let allocation3 = kvs.allocatePrefill(3, in: other, promptTokens: 64, chained: keys, expectedTotalTokens: 0)
        let c = try #require(allocation3)
        #expect(c.pooledTokens == 63 && c.computeTokens == 1)
        #expect(kvs.poolHitTokens == 127)
        // The report's hit rate: the groups' counters plus the pool's extra hits.
        var groups = PrefixCacheStats()
        for g in [kv, other] {
            groups.queriedTokens += kvs.prefixStats(g).queriedTokens
            groups.hitTokens += kvs.prefixStats(g).hitTokens
        }
        let stats = kvs.prefixStats(groups: groups)
        #expect(stats.queriedTokens == 70 + 70 + 64 && stats.hitTokens == 64 + 127)
        #expect(kvs.audit(kv) == [] && kvs.audit(other) == [])
    }

    @Test func withoutAPoolNothingIsPooled() throws {
        let kvs = KVCacheStore(blockTokens: 16, kvBytesPerToken: 1, poolCapacityBytes: 0)
        #expect(!kvs.hasPool && kvs.poolCapacityBytes == 0)
        let keys = PrefixHashes.chain([1, 2])
        kvs.spillToPool(chained: keys)
        #expect(kvs.poolResidentBlocks == 0 && kvs.poolUsedBytes == 0)
        let kv = kvs.addGroup(blocks: 10)
        let allocation4 = kvs.allocatePrefill(1, in: kv, promptTokens: 40, chained: keys, expectedTotalTokens: 0)
        let a = try #require(allocation4)
        #expect(a.pooledTokens == 0 && a.computeTokens == 40 && kvs.poolHitTokens == 0)
    }

    @Test func theProbeChangesNothing() throws {
        let kvs = store(poolBlocks: 3)
        let twoBlocks = PrefixHashes.chain([1, 2]), oneBlock = PrefixHashes.chain([5])
        // The group itself holds block [1], allocated while the pool was empty (no pool hit, no LRU move).
        let kv = kvs.addGroup(blocks: 10)
        let allocation5 = kvs.allocatePrefill(1, in: kv, promptTokens: 20, chained: PrefixHashes.chain([1]),
                                              expectedTotalTokens: 0)
        #expect(allocation5?.pooledTokens == 0)
        kvs.spillToPool(chained: twoBlocks)
        kvs.spillToPool(chained: oneBlock)  // full; oldest first: [1], [1 2], [5]
        let before = (kvs.prefixStats(kv), kvs.usedBlocks(kv), kvs.poolHitTokens, kvs.poolResidentBlocks)
        // A 40-token prompt over [1 2]: 16 tokens in the group, 16 more in the pool.
        let probe = kvs.probePrefix(in: kv, promptTokens: 40, chained: twoBlocks)
        #expect(probe.group == 16 && probe.pooled == 16)
        let none = kvs.probePrefix(in: kv, promptTokens: 40, chained: [])
        #expect(none.group == 0 && none.pooled == 0)
        #expect(before == (kvs.prefixStats(kv), kvs.usedBlocks(kv), kvs.poolHitTokens, kvs.poolResidentBlocks),
                "no counters moved")
        // No LRU move either: [1] is still the oldest, so the next insert evicts it (a lookup
        // would have made [1] and [1 2] the newest, and [5] would go).
        kvs.spillToPool(chained: PrefixHashes.chain([9]))
        let fresh = kvs.addGroup(blocks: 10)
        #expect(kvs.probePrefix(in: fresh, promptTokens: 40, chained: twoBlocks).pooled == 0)
        #expect(kvs.probePrefix(in: fresh, promptTokens: 40, chained: oneBlock).pooled == 16)
    }

    @Test func blocksAreConservedThroughAllocateReleaseAndSpill() throws {
        let kvs = store(poolBlocks: 8)
        let kv = kvs.addGroup(blocks: 12)
        var stream = RandomStreams(seed: 3).stream("kv-store-test")
        var live: [Int] = []
        for id in 0..<200 {
            // Prompts over a few shared prefixes, so hits, pool loads and evictions all happen.
            let family = UInt64(stream.next() % 4)
            let keys = PrefixHashes.chain([family, family &+ 10, UInt64(id)])
            let prompt = 20 + Int(stream.next() % 40)
            if kvs.allocatePrefill(id, in: kv, promptTokens: prompt, chained: keys,
                                   expectedTotalTokens: id % 3 == 0 ? prompt + 30 : 0) != nil {
                live.append(id)
                kvs.spillToPool(chained: keys)
            }
            // Release the oldest when more than three are live (and always once full).
            while live.count > 3 || (!live.isEmpty && kvs.freeBlocks(kv) < 4) {
                kvs.release(live.removeFirst(), in: kv)
            }
            #expect(kvs.audit(kv) == [], "after request \(id)")
            #expect(kvs.usedBlocks(kv) + kvs.freeBlocks(kv) == kvs.totalBlocks(kv))
            #expect(kvs.poolResidentBlocks <= 8)
        }
        for id in live { kvs.release(id, in: kv) }
        kvs.release(9_999, in: kv)  // unknown: ignored
        #expect(kvs.usedBlocks(kv) == 0 && kvs.reservedBlocks(kv) == 0 && kvs.freeBlocks(kv) == 12 && kvs.liveRequests(kv) == 0)
        #expect(kvs.audit(kv) == [])
        #expect(kvs.poolHitTokens > 0, "some prompts were loaded from the pool")
    }

    @Test func aPromptThatDoesNotFitChangesNothing() throws {
        let kvs = store(poolBlocks: 10)
        let keys = PrefixHashes.chain([1, 2])
        kvs.spillToPool(chained: keys)
        let kv = kvs.addGroup(blocks: 2)
        let allocation6 = kvs.allocatePrefill(1, in: kv, promptTokens: 33, chained: keys, expectedTotalTokens: 0)
        #expect(allocation6 == nil)
        #expect(kvs.poolHitTokens == 0 && kvs.usedBlocks(kv) == 0 && kvs.prefixStats(kv) == PrefixCacheStats())
        let allocation7 = kvs.allocatePrefill(1, in: kv, promptTokens: 20, chained: keys, expectedTotalTokens: 0)
        _ = try #require(allocation7)
        let hits = kvs.poolHitTokens
        let allocation8 = kvs.allocatePrefill(1, in: kv, promptTokens: 20, chained: keys, expectedTotalTokens: 0)
        #expect(allocation8 == nil, "the same id twice")
        #expect(kvs.poolHitTokens == hits)
    }

    @Test func theBlockBudgetCountsGroupsAndRefusesPastItsLimit() {
        let kvs = KVCacheStore(blockTokens: 16, kvBytesPerToken: 1, poolCapacityBytes: 0, blockLimit: 1_000)
        #expect(kvs.addTE(groups: 4, blocksEach: 200) == 0 && kvs.blocksBuilt == 800)
        #expect(kvs.addTE(groups: 1, blocksEach: 200) == 1 && kvs.blocksBuilt == 1_000, "exactly the limit is fine")
        #expect(kvs.addTE(groups: 1, blocksEach: 1) == nil && kvs.blocksBuilt == 1_001, "kept for the refusal's message")
        #expect(kvs.addTE(groups: 2, blocksEach: .max) == nil, "saturates instead of trapping")
        #expect(kvs.teCount == 2 && kvs.groupTotal == 5, "refused TEs add no groups")
        let g = GroupRef(te: 1, group: 0)
        #expect(kvs.totalBlocks(g) == 200 && kvs[g].blockTokens == 16 && kvs.freeBlocks(g) == 200)
    }

    @Test func aCopyIsIndependent() throws {
        let a = store(poolBlocks: 4)
        let kv = a.addGroup(blocks: 10)
        a.spillToPool(chained: PrefixHashes.chain([1, 2]))
        let allocation9 = a.allocatePrefill(1, in: kv, promptTokens: 40, chained: PrefixHashes.chain([1, 2]),
                                            expectedTotalTokens: 0)
        _ = try #require(allocation9)
        let b = a.copy()
        #expect(b !== a)
        #expect(b.poolHitTokens == a.poolHitTokens && b.poolResidentBlocks == 2 && b.blocksBuilt == 10)
        #expect(b.poolCapacityBytes == a.poolCapacityBytes && b.blockTokens == a.blockTokens)
        // Writes to the copy leave the original alone, and the other way round.
        b.spillToPool(chained: PrefixHashes.chain([7, 8, 9]))
        let other = b.addGroup(blocks: 10)
        _ = b.allocatePrefill(2, in: other, promptTokens: 40, chained: PrefixHashes.chain([1, 2]), expectedTotalTokens: 0)
        b.addTE(groups: 1, blocksEach: 5)
        #expect(a.poolResidentBlocks == 2 && a.poolHitTokens == 32 && a.blocksBuilt == 10)
        #expect(b.poolResidentBlocks == 4 && b.blocksBuilt == 25)
        // b's insert evicted [1] (the pool holds 4): a still has it.
        let fresh = a.addGroup(blocks: 10)
        #expect(a.probePrefix(in: fresh, promptTokens: 40, chained: PrefixHashes.chain([1, 2])).pooled == 32)
        let freshB = b.addGroup(blocks: 10)
        #expect(b.probePrefix(in: freshB, promptTokens: 40, chained: PrefixHashes.chain([1, 2])).pooled == 0)
        a.spillToPool(chained: PrefixHashes.chain([3]))
        #expect(b.poolResidentBlocks == 4 && a.poolResidentBlocks == 3)
    }
}
