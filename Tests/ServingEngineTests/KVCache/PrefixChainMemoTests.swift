import SimKit
import Testing

@testable import ServingEngine

/// ``PrefixChainMemo`` chains exactly as ``PrefixHashes/chain(_:)`` does, whatever the earlier
/// prompts in its slots, and reuses the leading keys a prompt shares with the last one that
/// started like it.
@Suite struct PrefixChainMemoTests {
    @Test func aConversationsNextTurnReusesItsPreviousTurnsChain() {
        var memo = PrefixChainMemo()
        #expect(memo.chain([]) == [])
        #expect(memo.chain([7, 8]) == PrefixHashes.chain([7, 8]))
        #expect(memo.chain([7, 8, 9, 10]) == PrefixHashes.chain([7, 8, 9, 10]))
        #expect(memo.reusedKeys == 2 && memo.chainedKeys == 4)
        // A shorter prompt of the same start, then one that diverges after the first key.
        #expect(memo.chain([7, 8, 9]) == PrefixHashes.chain([7, 8, 9]))
        #expect(memo.chain([7, 5]) == PrefixHashes.chain([7, 5]))
        #expect(memo.reusedKeys == 2 + 3 + 1 && memo.chainedKeys == 4 + 1)
        // The same prompt again: all reused.
        #expect(memo.chain([7, 5]) == PrefixHashes.chain([7, 5]))
        #expect(memo.reusedKeys == 8)
    }

    @Test(arguments: [UInt64(1), 4]) func randomSessionsChainAsTheirKeys(seed: UInt64) {
        var rng = RandomStreams(seed: seed).stream("chain-memo")
        var memo = PrefixChainMemo()
        // Sessions whose turns grow (and some that start alike: a shared first key).
        var sessions: [[UInt64]] = (0..<40).map { [UInt64($0 % 25)] }
        for _ in 0..<2_000 {
            let s = rng.int(in: 0...(sessions.count - 1))
            var keys = sessions[s]
            for _ in 0..<rng.int(in: 0...6) { keys.append(UInt64(rng.int(in: 0...1_000))) }
            if rng.int(in: 0...4) == 0 { keys = Array(keys.prefix(rng.int(in: 0...keys.count))) }
            sessions[s] = keys
            #expect(memo.chain(keys) == PrefixHashes.chain(keys))
        }
        #expect(memo.reusedKeys > memo.chainedKeys, "turns repeat their session's keys")
    }
}
