import SimKit
import Testing

@testable import ServingEngine

/// ``KVCacheStore``'s group table through its own API: every DP group's manager addressed by
/// (TE, group), changed only by the store's calls (prefill allocation, decode admission,
/// release), TEs added later (a scale-out) with groups of their own, reads that change nothing,
/// and a copy whose managers are its own.
@Suite(.timeLimit(.minutes(10))) struct KVCacheStoreGroupTests {
    /// 16-token blocks, no pool: TE 0 of 2 groups of 10 blocks, TE 1 of 3 groups of 20.
    private func store() -> KVCacheStore {
        let kvs = KVCacheStore(blockTokens: 16, kvBytesPerToken: 1, poolCapacityBytes: 0)
        #expect(kvs.addTE(groups: 2, blocksEach: 10) == 0)
        #expect(kvs.addTE(groups: 3, blocksEach: 20) == 1)
        return kvs
    }

    /// Every group's (used, reserved, live) figures, TE by TE.
    private func figures(_ kvs: KVCacheStore) -> [[[Int]]] {
        (0..<kvs.teCount).map { te in
            (0..<kvs.groupCount(of: te)).map { g in
                let ref = GroupRef(te: te, group: g)
                return [kvs.usedBlocks(ref), kvs.reservedBlocks(ref), kvs.liveRequests(ref)]
            }
        }
    }

    @Test func eachGroupIsAddressedByItsTEAndIndex() throws {
        let kvs = store()
        #expect(kvs.teCount == 2 && kvs.groupCount(of: 0) == 2 && kvs.groupCount(of: 1) == 3)
        #expect(kvs.totalBlocks(GroupRef(te: 0, group: 1)) == 10 && kvs.totalBlocks(GroupRef(te: 1, group: 0)) == 20)
        // One request in each group, of as many blocks as 1 + the group's place in the table.
        var id = 0
        for te in 0..<2 {
            for g in 0..<kvs.groupCount(of: te) {
                id += 1
                let a = kvs.allocatePrefill(id, in: GroupRef(te: te, group: g), promptTokens: 16 * id, chained: [],
                                            expectedTotalTokens: 0)
                #expect(a?.computeTokens == 16 * id)
            }
        }
        #expect(figures(kvs) == [[[1, 0, 1], [2, 0, 1]], [[3, 0, 1], [4, 0, 1], [5, 0, 1]]])
        #expect(kvs.contains(GroupRef(te: 1, group: 1), 4) && !kvs.contains(GroupRef(te: 1, group: 2), 4))
        #expect(kvs.tokens(of: 5, in: GroupRef(te: 1, group: 2)) == 80)
        // A TE's groups borrowed for a scan are its own, in order.
        #expect(kvs.withGroups(of: 1) { $0.map(\.usedBlocks) } == [3, 4, 5])
        #expect(kvs.withGroups(of: 0) { $0.map(\.totalBlocks) } == [10, 10])
        #expect(kvs.smallestGroupBlocks(of: 0) == 10 && kvs.smallestGroupBlocks(of: 1) == 20)
        // Releasing one request frees its group only.
        kvs.release(2, in: GroupRef(te: 0, group: 1))
        #expect(figures(kvs) == [[[1, 0, 1], [0, 0, 0]], [[3, 0, 1], [4, 0, 1], [5, 0, 1]]])
        kvs.release(2, in: GroupRef(te: 1, group: 0))   // not there: nothing
        #expect(kvs.liveRequests(GroupRef(te: 1, group: 0)) == 1)
        for te in 0..<2 { for g in 0..<kvs.groupCount(of: te) { #expect(kvs.audit(GroupRef(te: te, group: g)) == []) } }
    }

    @Test func aDecodeAdmissionReservesTheWholeLengthOrChangesNothing() {
        let kvs = store()
        let g = GroupRef(te: 1, group: 2)   // 20 blocks
        // 40 prompt tokens (3 blocks) growing to 100 (7 blocks): 4 reserved.
        #expect(kvs.admitDecode(1, in: g, promptTokens: 40, totalTokens: 100))
        #expect(kvs.usedBlocks(g) == 3 && kvs.reservedBlocks(g) == 4 && kvs.decodeLoad(g) == 7)
        #expect(kvs.roomForDecode(g) == 20 - 3 - 4)
        #expect(kvs.usageIncludingReserved(g) == 7.0 / 20 && kvs.usage(g) == 3.0 / 20)
        // 14 blocks of whole length do not fit in the 13 left: nothing changes.
        #expect(!kvs.admitDecode(2, in: g, promptTokens: 16, totalTokens: 14 * 16))
        #expect(!kvs.admitDecode(1, in: g, promptTokens: 16, totalTokens: 16), "already there")
        #expect(kvs.usedBlocks(g) == 3 && kvs.reservedBlocks(g) == 4 && kvs.liveRequests(g) == 1)
        #expect(kvs.admitDecode(2, in: g, promptTokens: 16, totalTokens: 13 * 16), "exactly what is left")
        #expect(kvs.roomForDecode(g) == 0)
        // Only that group moved.
        #expect(figures(kvs)[1][0] == [0, 0, 0] && figures(kvs)[1][1] == [0, 0, 0] && figures(kvs)[0] == [[0, 0, 0], [0, 0, 0]])
        kvs.release(1, in: g)
        kvs.release(2, in: g)
        #expect(kvs.usedBlocks(g) == 0 && kvs.reservedBlocks(g) == 0 && kvs.freeBlocks(g) == 20 && kvs.audit(g) == [])
    }

    /// A TE added after others hold KV (a scale-out) gets empty groups of its own size after
    /// theirs; the earlier groups keep what they hold, and its groups take KV alone.
    @Test func aTEAddedLaterGetsGroupsOfItsOwn() throws {
        let kvs = store()
        #expect(kvs.admitDecode(1, in: GroupRef(te: 1, group: 1), promptTokens: 64, totalTokens: 64))
        let before = figures(kvs)
        let te = try #require(kvs.addTE(groups: 4, blocksEach: 30))
        #expect(te == 2 && kvs.teCount == 3 && kvs.groupCount(of: 2) == 4)
        #expect(Array(figures(kvs).prefix(2)) == before)
        #expect(figures(kvs)[2] == Array(repeating: [0, 0, 0], count: 4))
        #expect((0..<4).allSatisfy { kvs.totalBlocks(GroupRef(te: 2, group: $0)) == 30 })
        #expect(kvs.admitDecode(9, in: GroupRef(te: 2, group: 3), promptTokens: 16, totalTokens: 32))
        #expect(figures(kvs)[2][3] == [1, 1, 1] && Array(figures(kvs).prefix(2)) == before)
        #expect(!kvs.contains(GroupRef(te: 1, group: 1), 9) && kvs.contains(GroupRef(te: 1, group: 1), 1))
    }

    @Test func readsChangeNothing() {
        let kvs = store()
        let keys = PrefixHashes.chain([1, 2, 3])
        let g = GroupRef(te: 0, group: 1)
        _ = kvs.allocatePrefill(1, in: g, promptTokens: 60, chained: keys, expectedTotalTokens: 0)
        kvs.release(1, in: g)   // the prefix stays cached
        let stats = kvs.prefixStats(g)
        #expect(kvs.cachedPrefixTokens(g, promptTokens: 60, chained: keys) == 48)
        #expect(kvs.cachedPrefixTokens(GroupRef(te: 0, group: 0), promptTokens: 60, chained: keys) == 0)
        #expect(kvs.probePrefix(in: g, promptTokens: 60, chained: keys).group == 48)
        #expect(kvs.prefixStats(g) == stats && kvs.usedBlocks(g) == 0 && kvs.liveRequests(g) == 0)
    }

    @Test func aCopysManagersAreItsOwn() throws {
        let a = store()
        let g = GroupRef(te: 1, group: 2)
        #expect(a.admitDecode(1, in: g, promptTokens: 40, totalTokens: 100))
        let b = a.copy()
        #expect(figures(b) == figures(a))
        // The copy admits, releases and grows; the original does not see it.
        #expect(b.admitDecode(2, in: g, promptTokens: 16, totalTokens: 16))
        b.release(1, in: g)
        #expect(b.addTE(groups: 1, blocksEach: 5) == 2)
        #expect(a.liveRequests(g) == 1 && a.contains(g, 1) && !a.contains(g, 2) && a.teCount == 2)
        #expect(a.usedBlocks(g) == 3 && a.reservedBlocks(g) == 4)
        // And the other way round.
        a.release(1, in: g)
        #expect(b.contains(g, 2) && b.usedBlocks(g) == 1 && b.teCount == 3)
        #expect(a.audit(g) == [] && b.audit(g) == [])
    }
}
