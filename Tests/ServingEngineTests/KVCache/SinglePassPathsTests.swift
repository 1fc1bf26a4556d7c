import SimKit
import Testing
@testable import ServingEngine

/// The saturated-superpod speed work replaced two-step paths with one-step ones: a prefix-index
/// lookup then insert by one probe, and allocate then reserve by one allocate. Each must leave
/// exactly the state the two steps did.
@Suite(.timeLimit(.minutes(10))) struct SinglePassPathsTests {
    /// `probe` + `occupy` against `block(for:)` + `insert` on random registrations and removals:
    /// the same answers, the same count, and the same slot layout (so later probes and growth
    /// match too).
    @Test func probeThenOccupyIsLookupThenInsert() {
        var rng = RandomStreams(seed: 5).stream("index")
        var keys = [UInt64](repeating: 0, count: 512)
        var single = PrefixIndex()
        var twoStep = PrefixIndex()
        var registered: [Int] = []
        var free = Array(0..<512)
        for step in 0..<5_000 {
            if rng.uniform() < 0.3, !registered.isEmpty {
                let block = registered.remove(at: rng.int(in: 0...(registered.count - 1)))
                single.remove(keys[block], keys: keys)
                twoStep.remove(keys[block], keys: keys)
                free.append(block)
                continue
            }
            // Mostly fresh hashes, some already registered (the prefix of another request).
            let hash: UInt64 = registered.isEmpty || rng.uniform() < 0.7
                ? StableHash.mix(UInt64(step)) : keys[registered[rng.int(in: 0...(registered.count - 1))]]
            let expected = twoStep.block(for: hash, keys: keys)
            // A probe is always followed by its registration (it may grow the table first).
            guard !free.isEmpty else {
                #expect(single.block(for: hash, keys: keys) == expected, "step \(step)")
                continue
            }
            switch single.probe(for: hash, keys: keys) {
            case .registered(let block):
                #expect(block == expected, "step \(step)")
            case .vacant(let slot):
                #expect(expected == nil, "step \(step)")
                let block = free.removeLast()
                keys[block] = hash
                single.occupy(slot, with: block)
                twoStep.insert(block, hash: hash, keys: keys)
                registered.append(block)
            }
            #expect(single.count == twoStep.count)
        }
        for block in registered { #expect(single.block(for: keys[block], keys: keys) == block) }
        #expect(String(describing: single) == String(describing: twoStep), "slot layouts differ")
    }

    /// Allocating with an expected total is allocate followed by reserve: same blocks, same
    /// reservation, same usage.
    @Test func allocateWithExpectedTotalIsAllocateThenReserve() {
        var oneCall = KVBlockManager(totalBlocks: 200, blockTokens: 16)
        var twoCalls = KVBlockManager(totalBlocks: 200, blockTokens: 16)
        var rng = RandomStreams(seed: 9).stream("kv")
        var live: [Int] = []
        for id in 0..<400 {
            if rng.uniform() < 0.4, !live.isEmpty {
                let gone = live.remove(at: rng.int(in: 0...(live.count - 1)))
                oneCall.free(requestID: gone)
                twoCalls.free(requestID: gone)
                continue
            }
            let prompt = rng.int(in: 1...300)
            let total = prompt + rng.int(in: 0...400)
            let keys = (0..<(prompt / 16)).map { UInt64($0 % 7) }
            let chained = PrefixHashes.chain(keys)
            let a = oneCall.allocate(requestID: id, promptTokens: prompt, chainedHashes: chained, expectedTotalTokens: total)
            let b = twoCalls.allocate(requestID: id, promptTokens: prompt, chainedHashes: chained)
            if b != nil { twoCalls.reserve(requestID: id, expectedTotalTokens: total) }
            #expect(a == b)
            if a != nil { live.append(id) }
            #expect(oneCall.reservedBlocks == twoCalls.reservedBlocks)
            #expect(oneCall.usedBlocks == twoCalls.usedBlocks && oneCall.freeBlocks == twoCalls.freeBlocks)
            #expect(oneCall.audit().isEmpty && twoCalls.audit().isEmpty)
        }
        for id in live { #expect(oneCall.tokens(of: id) == twoCalls.tokens(of: id)) }
    }
}
