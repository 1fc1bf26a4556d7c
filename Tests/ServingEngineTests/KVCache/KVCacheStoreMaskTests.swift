import SimKit
import Testing

@testable import ServingEngine

/// ``KVCacheStore``'s HBM masks through its own API: a mask takes blocks out of a group's
/// allocator and its heal gives exactly those back, the store tells masks from requests, and a
/// copy keeps its own mask table.
@Suite(.timeLimit(.minutes(10))) struct KVCacheStoreMaskTests {
    /// 16-token blocks, no pool.
    private func store() -> KVCacheStore { KVCacheStore(blockTokens: 16, kvBytesPerToken: 1, poolCapacityBytes: 0) }

    private let group = GroupRef(te: 2, group: 1)

    @Test func maskThenUnmaskConservesBlocks() throws {
        let kvs = store()
        var kv = kvs.makeGroupCache(blocks: 10)
        _ = try #require(kvs.allocatePrefill(7, in: &kv, promptTokens: 32, chained: [], expectedTotalTokens: 0))
        #expect(kv.freeBlocks == 8)
        // 40 tokens of failed requests' KV: 3 blocks out of use.
        #expect(kvs.mask(group, tokens: 40, fault: 5, in: &kv) == 3)
        #expect(kv.freeBlocks == 5 && kv.usedBlocks == 5)
        #expect(kvs.maskedGroup(fault: 5) == group && kvs.maskCount(group) == 1)
        #expect(kvs.maskCount(GroupRef(te: 2, group: 0)) == 0)
        // The store tells the mask from the request holding KV there.
        #expect(kv.liveRequests == 2 && kvs.requestsHoldingKV(group, in: kv) == 1)
        // A mask's blocks are never handed out: 6 blocks do not fit in the 5 left.
        #expect(kvs.allocatePrefill(8, in: &kv, promptTokens: 96, chained: [], expectedTotalTokens: 0) == nil)
        kvs.unmask(fault: 5, in: &kv)
        #expect(kv.freeBlocks == 8 && kv.usedBlocks == 2)
        #expect(kvs.maskedGroup(fault: 5) == nil && kvs.maskCount(group) == 0 && kvs.masks.isEmpty)
        #expect(kvs.requestsHoldingKV(group, in: kv) == 1 && kv.contains(requestID: 7))
        // The request's own blocks are untouched; unmasking again changes nothing.
        kvs.unmask(fault: 5, in: &kv)
        #expect(kv.freeBlocks == 8 && kv.contains(requestID: 7))
        kvs.release(7, in: &kv)
        #expect(kv.freeBlocks == 10 && kv.liveRequests == 0)
    }

    @Test func aMaskTakesAtLeastOneBlockAndAtMostWhatIsFree() throws {
        let kvs = store()
        var kv = kvs.makeGroupCache(blocks: 4)
        // No KV lived there: still one block (the region is bad).
        #expect(kvs.mask(group, tokens: 0, fault: 1, in: &kv) == 1 && kv.freeBlocks == 3)
        // More than is free: what is free.
        #expect(kvs.mask(group, tokens: 1_000, fault: 2, in: &kv) == 3 && kv.freeBlocks == 0)
        #expect(kvs.maskCount(group) == 2 && kvs.requestsHoldingKV(group, in: kv) == 0)
        // Nothing free: nothing masked, nothing recorded.
        #expect(kvs.mask(group, tokens: 16, fault: 3, in: &kv) == 0 && kvs.maskedGroup(fault: 3) == nil)
        // Healing one fault gives back its blocks only.
        kvs.unmask(fault: 2, in: &kv)
        #expect(kv.freeBlocks == 3 && kvs.maskCount(group) == 1 && kvs.maskedGroup(fault: 1) == group)
    }

    @Test func aFaultHoldsOneMask() {
        let kvs = store()
        var kv = kvs.makeGroupCache(blocks: 10)
        #expect(kvs.mask(group, tokens: 16, fault: 4, in: &kv) == 1)
        var other = kvs.makeGroupCache(blocks: 10)
        #expect(kvs.mask(GroupRef(te: 0, group: 0), tokens: 16, fault: 4, in: &other) == 0)
        #expect(other.freeBlocks == 10 && kvs.maskedGroup(fault: 4) == group)
    }

    /// A mask holds blocks but is no request: a drained group left holding only a mask is
    /// released (a drain's `releasedByDrain` counts requests, not masks).
    @Test func aMaskedGroupHoldsBlocksButNoRequest() {
        let kvs = store()
        var kv = kvs.makeGroupCache(blocks: 10)
        #expect(kvs.maskCount(group) == 0 && kv.liveRequests == 0)
        kvs.mask(group, tokens: 16, fault: 9, in: &kv)
        #expect(kvs.maskCount(group) == 1 && kv.liveRequests == 1 && kvs.requestsHoldingKV(group, in: kv) == 0)
        kvs.unmask(fault: 9, in: &kv)
        #expect(kvs.maskCount(group) == 0 && kv.liveRequests == 0 && kv.freeBlocks == 10)
    }

    @Test func aCopyKeepsItsOwnMasks() {
        let a = store()
        var kv = a.makeGroupCache(blocks: 10)
        a.mask(group, tokens: 16, fault: 1, in: &kv)
        let b = a.copy()
        var copied = kv
        b.unmask(fault: 1, in: &copied)
        #expect(b.masks.isEmpty && copied.freeBlocks == 10)
        #expect(a.maskedGroup(fault: 1) == group && kv.freeBlocks == 9)
    }
}
