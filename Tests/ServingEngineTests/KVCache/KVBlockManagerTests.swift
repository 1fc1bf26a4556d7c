import SimKit
import Testing

@testable import ServingEngine

@Suite struct KVBlockManagerTests {
    @Test func allocateAppendFreeRoundTrip() throws {
        var kv = KVBlockManager(totalBlocks: 10, blockTokens: 16)
        let a = try #require(kv.allocate(requestID: 1, promptTokens: 40, prefixHashes: []) as KVAllocation?)
        #expect(a == KVAllocation(hitTokens: 0, hitBlocks: 0, newBlocks: 3, computeTokens: 40))
        #expect(kv.usedBlocks == 3 && kv.freeBlocks == 7)
        #expect(kv.append(requestID: 1, tokens: 8) == true)  // 48 tokens: still 3 blocks
        #expect(kv.usedBlocks == 3)
        #expect(kv.append(requestID: 1, tokens: 1) == true)  // 49: a 4th block
        #expect(kv.usedBlocks == 4 && kv.tokens(of: 1) == 49)
        #expect(kv.audit() == [])
        kv.free(requestID: 1)
        #expect(kv.usedBlocks == 0 && kv.freeBlocks == 10 && kv.cachedBlocks == 0)
        #expect(kv.audit() == [])
    }

    @Test func outOfBlocksReturnsNilAndChangesNothing() throws {
        var kv = KVBlockManager(totalBlocks: 4, blockTokens: 16)
        _ = try #require(kv.allocate(requestID: 1, promptTokens: 48, prefixHashes: [1, 2, 3]) as KVAllocation?)
        let before = (kv.usedBlocks, kv.freeBlocks, kv.cachedBlocks, kv.stats)
        #expect(kv.allocate(requestID: 2, promptTokens: 33, prefixHashes: []) == nil)
        #expect(!kv.canAllocate(tokens: 33))
        #expect(kv.canAllocate(tokens: 16))
        #expect(kv.allocate(requestID: 1, promptTokens: 1, prefixHashes: []) == nil, "duplicate id")
        #expect(kv.append(requestID: 1, tokens: 17) == false)
        #expect(kv.append(requestID: 99, tokens: 1) == false)
        #expect(kv.tokens(of: 1) == 48)
        #expect(before == (kv.usedBlocks, kv.freeBlocks, kv.cachedBlocks, kv.stats))
        #expect(kv.audit() == [])
    }

    @Test func liveRequestsSharePrefixBlocks() throws {
        var kv = KVBlockManager(totalBlocks: 20, blockTokens: 16)
        _ = try #require(kv.allocate(requestID: 1, promptTokens: 50, prefixHashes: [7, 8, 9]) as KVAllocation?)
        let b = try #require(kv.allocate(requestID: 2, promptTokens: 60, prefixHashes: [7, 8, 5]) as KVAllocation?)
        #expect(b.hitBlocks == 2 && b.hitTokens == 32 && b.computeTokens == 28 && b.newBlocks == 2)
        #expect(kv.usedBlocks == 4 + 2)
        #expect(kv.stats.queriedTokens == 110 && kv.stats.hitTokens == 32)
        kv.free(requestID: 1)
        #expect(kv.usedBlocks == 4, "shared blocks stay owned by request 2")
        #expect(kv.cachedBlocks == 1, "block for key 9 is cached, the partial tail block is free")
        #expect(kv.audit() == [])
        kv.free(requestID: 2)
        #expect(kv.usedBlocks == 0 && kv.cachedBlocks == 4)
        #expect(kv.audit() == [])
    }

    @Test func chainedHashesNeedTheWholePrefix() throws {
        var kv = KVBlockManager(totalBlocks: 20, blockTokens: 16)
        _ = try #require(kv.allocate(requestID: 1, promptTokens: 64, prefixHashes: [1, 2, 3]) as KVAllocation?)
        kv.free(requestID: 1)
        // Same block keys 2, 3 after a different first block: no hit.
        let b = try #require(kv.allocate(requestID: 2, promptTokens: 64, prefixHashes: [9, 2, 3]) as KVAllocation?)
        #expect(b.hitTokens == 0)
        #expect(kv.cachedPrefixTokens(promptTokens: 64, prefixHashes: [1, 2, 3]) == 48)
    }

    @Test func fullHitLeavesOneTokenToCompute() throws {
        var kv = KVBlockManager(totalBlocks: 8, blockTokens: 16)
        _ = try #require(kv.allocate(requestID: 1, promptTokens: 32, prefixHashes: [1, 2]) as KVAllocation?)
        kv.free(requestID: 1)
        let again = try #require(kv.allocate(requestID: 2, promptTokens: 32, prefixHashes: [1, 2]) as KVAllocation?)
        #expect(again.hitBlocks == 1 && again.computeTokens == 16)
        #expect(kv.audit() == [])
    }

    @Test func evictsLeastRecentlyUsedCachedBlocksTailFirst() throws {
        var kv = KVBlockManager(totalBlocks: 6, blockTokens: 16)
        _ = try #require(kv.allocate(requestID: 1, promptTokens: 48, prefixHashes: [1, 2, 3]) as KVAllocation?)
        kv.free(requestID: 1)  // A: 3 cached
        _ = try #require(kv.allocate(requestID: 2, promptTokens: 48, prefixHashes: [4, 5, 6]) as KVAllocation?)
        kv.free(requestID: 2)  // B: 3 cached, more recent
        #expect(kv.cachedBlocks == 6 && kv.freeBlocks == 6)
        // Needs 2 blocks: evicts A's tail blocks (keys 3 then 2), keeps A's first block.
        _ = try #require(kv.allocate(requestID: 3, promptTokens: 32, prefixHashes: []) as KVAllocation?)
        #expect(kv.cachedPrefixTokens(promptTokens: 100, prefixHashes: [1, 2, 3]) == 16)
        #expect(kv.cachedPrefixTokens(promptTokens: 100, prefixHashes: [4, 5, 6]) == 48)
        #expect(kv.audit() == [])
    }

    @Test func hitRefreshesRecency() throws {
        var kv = KVBlockManager(totalBlocks: 4, blockTokens: 16)
        _ = try #require(kv.allocate(requestID: 1, promptTokens: 32, prefixHashes: [1, 2]) as KVAllocation?)
        kv.free(requestID: 1)
        _ = try #require(kv.allocate(requestID: 2, promptTokens: 32, prefixHashes: [3, 4]) as KVAllocation?)
        kv.free(requestID: 2)
        _ = try #require(kv.allocate(requestID: 3, promptTokens: 17, prefixHashes: [1]) as KVAllocation?)  // touches key 1
        kv.free(requestID: 3)
        // Request 3 evicted key 2 for its new block; LRU is now 4, 3, 1 (1 refreshed).
        _ = try #require(kv.allocate(requestID: 4, promptTokens: 32, prefixHashes: []) as KVAllocation?)
        // One free block plus one eviction: key 4 goes, key 1 (older but touched) stays.
        #expect(kv.cachedPrefixTokens(promptTokens: 100, prefixHashes: [1]) == 16)
        #expect(kv.cachedPrefixTokens(promptTokens: 100, prefixHashes: [3, 4]) == 16)
    }

    @Test func cachedHitBlocksDoNotCountAsFreeForTheSameRequest() throws {
        var kv = KVBlockManager(totalBlocks: 3, blockTokens: 16)
        _ = try #require(kv.allocate(requestID: 1, promptTokens: 48, prefixHashes: [1, 2, 3]) as KVAllocation?)
        kv.free(requestID: 1)
        // 2 hits + 2 new blocks = 4 > 3; the hit blocks can't also be evicted for it.
        #expect(kv.allocate(requestID: 2, promptTokens: 64, prefixHashes: [1, 2, 3]) == nil)
        #expect(kv.cachedBlocks == 3 && kv.audit() == [])
    }

    @Test func reservationsCountTowardLoadNotAllocation() throws {
        var kv = KVBlockManager(totalBlocks: 10, blockTokens: 16)
        _ = try #require(kv.allocate(requestID: 1, promptTokens: 32, prefixHashes: []) as KVAllocation?)
        #expect(kv.reserve(requestID: 1, expectedTotalTokens: 32 + 64) == true)
        #expect(kv.reservedBlocks == 4 && kv.usage == 0.2)
        #expect(abs(kv.usageIncludingReserved - 0.6) < 1e-12)
        #expect(kv.canAllocate(tokens: 128), "reservations are soft")
        #expect(kv.append(requestID: 1, tokens: 20) == true)
        #expect(kv.reservedBlocks == 2)
        #expect(kv.reserve(requestID: 42, expectedTotalTokens: 10) == false)
        #expect(kv.audit() == [])
        kv.free(requestID: 1)
        #expect(kv.reservedBlocks == 0)
    }

    @Test func auditCatchesALeakedBlock() throws {
        var kv = KVBlockManager(totalBlocks: 5, blockTokens: 16)
        _ = try #require(kv.allocate(requestID: 1, promptTokens: 10, prefixHashes: [3]) as KVAllocation?)
        #expect(kv.audit() == [])
        kv.leakFreeBlockForTesting()
        let problems = kv.audit()
        #expect(problems.contains { $0.contains("in 0 states") })
        #expect(problems.contains { $0.contains("!= total 5") })
        // A manager that only counts its blocks (no key yet) notices the loss too.
        var counting = KVBlockManager(totalBlocks: 5, blockTokens: 16)
        _ = try #require(counting.allocate(requestID: 1, promptTokens: 10, prefixHashes: []) as KVAllocation?)
        #expect(counting.isCountingOnly && counting.audit() == [])
        counting.leakFreeBlockForTesting()
        let counted = counting.audit()
        #expect(counted.contains { $0.contains("2 blocks in use but 1 owned") })
        #expect(counted.contains { $0.contains("!= total 5") })
    }

    /// Thousands of seeded random operations, auditing after every one.
    @Test(arguments: [UInt64(1), 2, 3])
    func randomOperationsKeepBlocksConserved(seed: UInt64) throws {
        var rng = RandomStreams(seed: seed).stream("kv-property")
        var kv = KVBlockManager(totalBlocks: 64, blockTokens: 16)
        var live: [Int] = []
        var nextID = 0
        let prefixes: [[UInt64]] = [[1, 2, 3, 4], [1, 2, 5], [6, 7], [8]]
        for step in 0..<3_000 {
            let roll = rng.uniform()
            if roll < 0.4 {
                let prompt = rng.int(in: 1...120)
                var keys = prefixes[rng.int(in: 0...3)]
                keys.append(UInt64(1_000 + rng.int(in: 0...20)))
                let freeBefore = kv.freeBlocks
                if kv.allocate(requestID: nextID, promptTokens: prompt, prefixHashes: keys) != nil {
                    live.append(nextID)
                    kv.reserve(requestID: nextID, expectedTotalTokens: prompt + rng.int(in: 0...64))
                } else {
                    #expect(kv.freeBlocks == freeBefore)
                }
                nextID += 1
            } else if roll < 0.8, !live.isEmpty {
                let id = live[rng.int(in: 0...(live.count - 1))]
                let before = try #require(kv.tokens(of: id))
                let grown = kv.append(requestID: id, tokens: rng.int(in: 1...20))
                if !grown { #expect(kv.tokens(of: id) == before) }
            } else if !live.isEmpty {
                let id = live.remove(at: rng.int(in: 0...(live.count - 1)))
                kv.free(requestID: id)
            }
            let problems = kv.audit()
            #expect(problems == [], "step \(step)")
            if !problems.isEmpty { return }
        }
        #expect(kv.stats.hitTokens > 0, "the shared prefixes produced hits")
        for id in live { kv.free(requestID: id) }
        #expect(kv.usedBlocks == 0 && kv.reservedBlocks == 0 && kv.audit() == [])
    }
}

/// Per-block arrays grow on first use, in the order a full free list would hand blocks out.
@Suite struct KVBlockManagerLazyTests {
    @Test func blocksAreHandedOutLowestFirstAndArraysGrowOnUse() throws {
        var kv = KVBlockManager(totalBlocks: 1_000_000, blockTokens: 16)
        #expect(kv.referenceCount.isEmpty && kv.freeBlocks == 1_000_000)
        #expect(kv.allocate(requestID: 1, promptTokens: 48, prefixHashes: []) != nil)
        // Nothing per block is kept without prefix keys (blocksWithoutPrefixKeysKeepNoHashState):
        // blocks are counted, not listed.
        #expect(kv.isCountingOnly && kv.blocks(of: 1) == nil)
        #expect(kv.referenceCount.isEmpty && kv.freeBlocks == 999_997)
        // The first prefix key lists them: the live request's are the lowest.
        #expect(kv.allocate(requestID: 2, promptTokens: 16, prefixHashes: [7]) != nil)
        #expect(!kv.isCountingOnly && kv.blocks(of: 1) == [0, 1, 2] && kv.blocks(of: 2) == [3])
        kv.free(requestID: 1)
        // Freed blocks first (last freed first: the head block, as a full free list gives them)…
        #expect(kv.allocate(requestID: 3, promptTokens: 64, prefixHashes: []) != nil)
        #expect(kv.blocks(of: 3) == [0, 1, 2, 4])
        #expect(kv.blocks(of: 2) == [3])
        #expect(kv.audit() == [])
        kv.leakFreeBlockForTesting()
        #expect(!kv.audit().isEmpty, "a lost block is still noticed")
    }

    /// A decode group's KV arrives without prefix keys: it never pays for hashes or the LRU.
    @Test func blocksWithoutPrefixKeysKeepNoHashState() throws {
        var kv = KVBlockManager(totalBlocks: 100_000, blockTokens: 16)
        for id in 0..<50 {
            #expect(kv.allocate(requestID: id, promptTokens: 1_000, prefixHashes: []) != nil)
            let reserved = kv.reserve(requestID: id, expectedTotalTokens: 5_000)
            #expect(reserved)
        }
        for id in stride(from: 0, to: 50, by: 2) { kv.free(requestID: id) }
        // Nor reference counts: without keys no block is ever shared.
        #expect(kv.hashCoverage == 0 && kv.cachedBlocks == 0)
        #expect(!kv.keepsCounts && kv.referenceCount.isEmpty && kv.audit() == [])
        #expect(kv.usedBlocks == 25 * 63 && kv.freeBlocks == 100_000 - 25 * 63 && kv.reservedBlocks == 25 * (313 - 63))
        var leaky = kv
        leaky.leakFreeBlockForTesting()
        #expect(!leaky.audit().isEmpty, "a block lost by a counting manager is noticed")
        // The first prefix key starts the counts (every block of the live requests at one) and
        // grows the hash state to cover its block only (geometrically).
        #expect(kv.allocate(requestID: 100, promptTokens: 64, prefixHashes: [9, 8, 7, 6]) != nil)
        #expect(kv.keepsCounts && kv.referenceCount.count >= 50 * 63 && kv.referenceCount.count <= 2 * 50 * 63)
        #expect(kv.hashCoverage > 0 && kv.hashCoverage <= 2 * kv.referenceCount.count && kv.audit() == [])
        kv.free(requestID: 100)
        #expect(kv.cachedBlocks == 4 && kv.audit() == [])
        #expect(kv.cachedPrefixTokens(promptTokens: 65, prefixHashes: [9, 8, 7, 6]) == 64)
    }

    /// A counting manager's live requests get the lowest blocks, in increasing id order, when the
    /// first prefix key arrives; appends before it are counted, and blocks freed before it leave
    /// no gap.
    @Test func theFirstKeyListsTheCountedBlocksLowestFirstByRequestID() {
        var kv = KVBlockManager(totalBlocks: 64, blockTokens: 16)
        for (id, tokens) in [(9, 40), (2, 16), (5, 33), (7, 17)] {
            #expect(kv.allocate(requestID: id, promptTokens: tokens, prefixHashes: []) != nil)
        }
        let appended = kv.append(requestID: 2, tokens: 1)
        #expect(appended)
        kv.free(requestID: 7)
        #expect(kv.isCountingOnly && kv.usedBlocks == 3 + 2 + 3 && kv.freeBlocks == 64 - 8 && kv.audit() == [])
        #expect(kv.allocate(requestID: 1, promptTokens: 64, prefixHashes: []) != nil)
        #expect(kv.allocate(requestID: 100, promptTokens: 1_000, prefixHashes: []) == nil, "counted blocks are not free")
        #expect(kv.allocate(requestID: 3, promptTokens: 32, prefixHashes: [11, 12]) != nil)
        #expect(kv.blocks(of: 1) == [0, 1, 2, 3])
        #expect(kv.blocks(of: 2) == [4, 5])
        #expect(kv.blocks(of: 5) == [6, 7, 8])
        #expect(kv.blocks(of: 9) == [9, 10, 11])
        #expect(kv.blocks(of: 3) == [12, 13])
        #expect(kv.audit() == [])
        for id in [1, 2, 3, 5, 9] { kv.free(requestID: id) }
        #expect(kv.usedBlocks == 0 && kv.cachedBlocks == 2 && kv.freeBlocks == 64 && kv.audit() == [])
    }

    /// Requests that held blocks before the counts started keep them counted once, and blocks
    /// shared after are counted per holder: freeing everything leaves a consistent manager.
    @Test func countsStartedMidwayCountEveryHolder() {
        var kv = KVBlockManager(totalBlocks: 64, blockTokens: 16)
        for id in 0..<3 { #expect(kv.allocate(requestID: id, promptTokens: 40, prefixHashes: []) != nil) }
        kv.free(requestID: 1)
        #expect(!kv.keepsCounts && kv.usedBlocks == 6 && kv.audit() == [])
        let keys: [UInt64] = [4, 5, 6]
        #expect(kv.allocate(requestID: 10, promptTokens: 60, prefixHashes: keys) != nil)
        let shared = kv.allocate(requestID: 11, promptTokens: 60, prefixHashes: keys)
        #expect(kv.keepsCounts && shared?.hitBlocks == 3 && kv.audit() == [])
        #expect(kv.blocks(of: 0).map { $0.map { kv.referenceCount[Int($0)] } } == [1, 1, 1])
        #expect(kv.referenceCount[Int(kv.blocks(of: 10)![0])] == 2)
        for id in [0, 2, 10, 11] { kv.free(requestID: id) }
        #expect(kv.usedBlocks == 0 && kv.cachedBlocks == 3 && kv.audit() == [])
    }

    @Test func fillsToCapacityThenEvictsCachedBlocks() throws {
        var kv = KVBlockManager(totalBlocks: 8, blockTokens: 16)
        #expect(kv.allocate(requestID: 1, promptTokens: 64, prefixHashes: [1, 2, 3, 4]) != nil)
        kv.free(requestID: 1)
        #expect(kv.cachedBlocks == 4 && kv.freeBlocks == 8)
        // Untouched blocks go before evicting cached prefixes.
        #expect(kv.allocate(requestID: 2, promptTokens: 64, prefixHashes: []) != nil)
        #expect(kv.cachedBlocks == 4 && kv.blocks(of: 2) == [4, 5, 6, 7])
        #expect(kv.allocate(requestID: 3, promptTokens: 32, prefixHashes: []) != nil)
        #expect(kv.cachedBlocks == 2)
        let refused = kv.allocate(requestID: 4, promptTokens: 64, prefixHashes: [])
        #expect(refused == nil)
        #expect(kv.audit() == [])
    }
}

/// The prefix index against a dictionary, with hashes that share their low bits (which must not
/// make them share slots) in a table up to its full load, so probe runs wrap and deletions shift
/// entries back.
@Suite struct PrefixIndexTests {
    @Test(arguments: [UInt64(1), 2], [PrefixIndex.MaxLoad.half, .threeQuarters])
    func matchesADictionaryUnderInsertAndRemove(seed: UInt64, maxLoad: PrefixIndex.MaxLoad) throws {
        var rng = seed &* 0x9E37_79B9_7F4A_7C15
        func next() -> UInt64 {
            rng = rng &+ 0x9E37_79B9_7F4A_7C15
            var z = rng
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            return z ^ (z >> 31)
        }
        let blocks = 500
        // Few distinct low bits: many hashes share a home slot.
        var keys = (0..<blocks).map { _ in (next() & ~0xFFF) | (next() & 0x7) }
        var index = PrefixIndex(maxLoad: maxLoad)
        var model: [UInt64: Int] = [:]
        var peak = 0
        for _ in 0..<20_000 {
            let block = Int(next() % UInt64(blocks))
            if let old = model.first(where: { $0.value == block })?.key {
                index.remove(old, keys: keys)
                model[old] = nil
            } else {
                keys[block] = (next() & ~0xFFF) | (next() & 0x7)
                guard model[keys[block]] == nil else { continue }
                index.insert(block, hash: keys[block], keys: keys)
                model[keys[block]] = block
            }
            #expect(index.count == model.count)
            peak = max(peak, model.count)
        }
        // Never fuller than its bound (the table only grows, so its peak load bounds it).
        #expect(maxLoad == .half ? peak * 2 <= index.slotCount : peak * 4 <= index.slotCount * 3)
        #expect(maxLoad == .half ? peak * 4 > index.slotCount : peak * 8 > index.slotCount * 3, "doubled no more than needed")
        for (hash, block) in model { #expect(index.block(for: hash, keys: keys) == block) }
        #expect(index.block(for: 0xDEAD_0000_0000_0003, keys: keys) == nil)
        for (hash, _) in model { index.remove(hash, keys: keys) }
        #expect(index.isEmpty)
    }

    /// Hashes that agree in their low 24 bits (a trace's ids can be searched for ones whose chained
    /// hashes do) still spread over the table: probe runs stay short, as for random hashes, where
    /// taking slots from the low bits put all 50,000 in one run.
    ///
    /// The engine's multiplier is drawn per process (Hasher's seed), and for these keys, an
    /// arithmetic progression, how short the runs are depends on it: a few multipliers in a hundred
    /// spread a progression poorly (one close to a fraction of small denominator). Checked with the
    /// process's own, the test failed on such draws (a mean of 4.08 probes against a bound of 4 in
    /// one CI run). So it checks the family on multipliers from a fixed stream: the typical one
    /// keeps runs as short as random hashes do, and the worst stays far from one long run.
    @Test(arguments: [PrefixIndex.MaxLoad.half, .threeQuarters])
    func craftedLowBitCollisionsKeepProbesShort(maxLoad: PrefixIndex.MaxLoad) {
        let keys = (0..<50_000).map { UInt64($0 + 1) << 24 }
        var rng: UInt64 = 0x5EED
        var means: [Double] = []
        for _ in 0..<16 {
            rng = rng &+ 0x9E37_79B9_7F4A_7C15
            var z = rng
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            var index = PrefixIndex(maxLoad: maxLoad, multiplier: z ^ (z >> 31))
            for (block, hash) in keys.enumerated() { index.insert(block, hash: hash, keys: keys) }
            let probes = keys.map { index.probes(for: $0, keys: keys) }
            means.append(Double(probes.reduce(0, +)) / Double(keys.count))
            for (block, hash) in keys.enumerated().prefix(1_000) { #expect(index.block(for: hash, keys: keys) == block) }
        }
        means.sort()
        #expect(means[means.count / 2] < 2, "median mean probes: \(means)")
        #expect(means.last! < 50, "worst mean probes: \(means)")
    }
}
