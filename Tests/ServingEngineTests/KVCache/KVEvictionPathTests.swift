import SimKit
import Testing

@testable import ServingEngine

/// ``KVBlockManager``'s fast paths (bulk takes, batch registration, evictions interleaved with
/// registrations in one pass) against the block manager written one block at a time, as vLLM
/// describes it: on a random walk of allocations, appends and frees under heavy eviction, every
/// request's block ids, the free list, the LRU order and every block's prefix hash match.
@Suite(.timeLimit(.minutes(10))) struct KVEvictionPathTests {
    /// The one-block-at-a-time manager: take from the free list's end, then never-used blocks in
    /// increasing order, then evict the least recently used cached block; register each new
    /// cacheable block unless its hash is held; free tail first, hashed blocks to the LRU.
    struct OneAtATimeManager {
        let totalBlocks: Int
        let blockTokens: Int
        var references: [Int]
        var hashOf: [UInt64?]
        var blockOf: [UInt64: Int] = [:]
        var freeList: [Int] = []
        var touched = 0
        /// Oldest first.
        var lru: [Int] = []
        var sequences: [Int: (blocks: [Int], tokens: Int)] = [:]
        /// Whether blocks are listed: from the first allocation with keys on. Before it a request's
        /// blocks are only counted (-1 each), as in ``KVBlockManager/isCountingOnly``, and the
        /// blocks in use are the lowest `touched`; that allocation first gives the live requests,
        /// in increasing id order, the lowest blocks in order.
        var listing = false

        init(totalBlocks: Int, blockTokens: Int) {
            self.totalBlocks = totalBlocks
            self.blockTokens = blockTokens
            references = Array(repeating: 0, count: totalBlocks)
            hashOf = Array(repeating: nil, count: totalBlocks)
        }

        var freeBlocks: Int { freeList.count + totalBlocks - touched + lru.count }

        mutating func take() -> Int {
            if let block = freeList.popLast() { return block }
            if touched < totalBlocks {
                touched += 1
                return touched - 1
            }
            let block = lru.removeFirst()
            blockOf[hashOf[block]!] = nil
            hashOf[block] = nil
            return block
        }

        mutating func retain(_ block: Int) {
            if references[block] == 0 { lru.removeAll { $0 == block } }
            references[block] += 1
        }

        /// Leading blocks of `chained` in the cache, leaving one prompt token to compute.
        func leadingHits(promptTokens: Int, chained: [UInt64]) -> Int {
            var hits = 0
            while hits < min(chained.count, (promptTokens - 1) / blockTokens), blockOf[chained[hits]] != nil { hits += 1 }
            return hits
        }

        mutating func allocate(requestID: Int, promptTokens: Int, chained: [UInt64]) -> KVAllocation? {
            guard sequences[requestID] == nil else { return nil }
            let totalNeeded = (promptTokens + blockTokens - 1) / blockTokens
            guard totalNeeded <= totalBlocks else { return nil }
            if !listing && chained.isEmpty {
                guard totalNeeded <= freeBlocks else { return nil }
                touched += totalNeeded
                sequences[requestID] = (Array(repeating: -1, count: totalNeeded), promptTokens)
                return KVAllocation(hitTokens: 0, hitBlocks: 0, newBlocks: totalNeeded, computeTokens: promptTokens)
            }
            if !listing {
                listing = true
                var next = 0
                for id in sequences.keys.sorted() {
                    let count = sequences[id]!.blocks.count
                    sequences[id]!.blocks = Array(next..<(next + count))
                    for block in next..<(next + count) { references[block] = 1 }
                    next += count
                }
                precondition(next == touched)
            }
            var blocks: [Int] = []
            for index in 0..<max(0, min(chained.count, (promptTokens - 1) / blockTokens)) {
                guard let block = blockOf[chained[index]] else { break }
                blocks.append(block)
            }
            let hits = blocks.count
            let needed = totalNeeded - hits
            guard needed <= freeBlocks - blocks.filter({ references[$0] == 0 }).count else { return nil }
            for block in blocks { retain(block) }
            let cacheable = min(chained.count, promptTokens / blockTokens)
            for index in hits..<totalNeeded {
                let block = take()
                retain(block)
                if index < cacheable, blockOf[chained[index]] == nil {
                    blockOf[chained[index]] = block
                    hashOf[block] = chained[index]
                }
                blocks.append(block)
            }
            sequences[requestID] = (blocks, promptTokens)
            return KVAllocation(hitTokens: hits * blockTokens, hitBlocks: hits, newBlocks: needed,
                                computeTokens: promptTokens - hits * blockTokens)
        }

        mutating func append(requestID: Int, tokens: Int) -> Bool {
            guard var sequence = sequences[requestID] else { return false }
            let needed = (sequence.tokens + tokens + blockTokens - 1) / blockTokens - sequence.blocks.count
            guard needed <= freeBlocks else { return false }
            if !listing {
                touched += max(0, needed)
                sequence.blocks += Array(repeating: -1, count: max(0, needed))
                sequence.tokens += tokens
                sequences[requestID] = sequence
                return true
            }
            for _ in 0..<max(0, needed) {
                let block = take()
                retain(block)
                sequence.blocks.append(block)
            }
            sequence.tokens += tokens
            sequences[requestID] = sequence
            return true
        }

        mutating func free(requestID: Int) {
            guard let sequence = sequences.removeValue(forKey: requestID) else { return }
            guard listing else {
                touched -= sequence.blocks.count
                return
            }
            for block in sequence.blocks.reversed() {
                references[block] -= 1
                guard references[block] == 0 else { continue }
                if hashOf[block] != nil { lru.append(block) } else { freeList.append(block) }
            }
        }
    }

    /// Prompts drawn from a few shared prefixes (so hits, partial hits and prompts whose last full
    /// block is held by another request all occur), a pool small enough that most new blocks are
    /// evictions, and a mix of long- and short-lived requests.
    @Test(arguments: [3, 11, 29]) func theFastPathsTakeRegisterAndEvictAsOneBlockAtATime(seed: UInt64) {
        var rng = RandomStreams(seed: seed).stream("kv-eviction-walk")
        let blockTokens = 4
        var kv = KVBlockManager(totalBlocks: 48, blockTokens: blockTokens)
        var model = OneAtATimeManager(totalBlocks: 48, blockTokens: blockTokens)
        var live: [Int] = []
        var evictingAllocations = 0
        for step in 0..<3_000 {
            let action = rng.int(in: 0...9)
            if action < 5 {
                // Whole blocks half the time: the last full block is cacheable but never matched.
                let blocks = rng.int(in: 1...14)
                let promptTokens = rng.int(in: 0...1) == 0 ? blocks * blockTokens : blocks * blockTokens - rng.int(in: 1...3)
                let family = UInt64(rng.int(in: 0...5))
                let divergeAt = rng.int(in: 0...blocks)
                let keys = (0..<blocks).map { $0 < divergeAt ? family &* 1_000 &+ UInt64($0) : UInt64(step) &* 7_919 &+ UInt64($0) }
                // Some without keys, as transferred KV on a decode group.
                let chained = rng.int(in: 0...5) == 0 ? [] : PrefixHashes.chain(keys)
                let mustEvict = kv.freeBlocks - kv.cachedBlocks == 0 && kv.cachedBlocks > 0
                // A prober's view first (routing, placement): the exact hit, and whether it beats a bar.
                let cached = model.leadingHits(promptTokens: promptTokens, chained: chained) * blockTokens
                #expect(kv.cachedPrefixTokens(promptTokens: promptTokens, chainedHashes: chained) == cached)
                for beating in [-1, 0, blockTokens - 1, blockTokens, cached - 1, cached, cached + blockTokens] {
                    let probed = kv.cachedPrefixTokens(promptTokens: promptTokens, chainedHashes: chained, beating: beating)
                    if cached > beating {
                        #expect(probed == cached, "a hit of \(cached) beating \(beating) at step \(step)")
                    } else {
                        #expect(probed <= max(0, beating), "a hit of \(cached) not beating \(beating) at step \(step)")
                    }
                }
                let got = kv.allocate(requestID: step, promptTokens: promptTokens, chainedHashes: chained)
                let expected = model.allocate(requestID: step, promptTokens: promptTokens, chained: chained)
                #expect(got == expected, "allocate at step \(step)")
                if got != nil {
                    live.append(step)
                    if mustEvict && got!.newBlocks > 0 { evictingAllocations += 1 }
                }
            } else if action < 7, !live.isEmpty {
                let id = live[rng.int(in: 0...(live.count - 1))]
                let tokens = rng.int(in: 0...9)
                #expect(kv.append(requestID: id, tokens: tokens) == model.append(requestID: id, tokens: tokens))
            } else if !live.isEmpty {
                let id = live.remove(at: rng.int(in: 0...(live.count - 1)))
                kv.free(requestID: id)
                model.free(requestID: id)
            }
            for id in live {
                #expect(kv.blocks(of: id)?.map(Int.init) == (model.listing ? model.sequences[id]?.blocks : nil), "blocks of \(id) at \(step)")
            }
            #expect(kv.freeList.map(Int.init) == model.freeList, "free list at \(step)")
            #expect(kv.cachedOldestFirst == model.lru, "LRU order at \(step)")
            #expect((0..<model.totalBlocks).map { kv.hash(of: $0) } == model.hashOf, "prefix hashes at \(step)")
            #expect(kv.audit() == [], "audit at \(step)")
        }
        #expect(evictingAllocations > 100, "the walk exercises the eviction path")
        #expect(model.listing, "the walk reaches keyed allocations")
    }
}
