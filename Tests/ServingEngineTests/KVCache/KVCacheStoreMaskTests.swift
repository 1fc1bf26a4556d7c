import SimKit
import Testing

@testable import ServingEngine

/// ``KVCacheStore``'s HBM masks through its own API: a mask takes blocks out of a group's
/// allocator and its heal gives exactly those back, the store tells masks from requests, and a
/// copy keeps its own mask table.
@Suite(.timeLimit(.minutes(10))) struct KVCacheStoreMaskTests {
    /// 16-token blocks, no pool; TEs 0 and 1 of one group, TE 2 of two, each group of `blocks` blocks.
    private func store(blocks: Int) -> KVCacheStore {
        let kvs = KVCacheStore(blockTokens: 16, kvBytesPerToken: 1, poolCapacityBytes: 0)
        for groups in [1, 1, 2] { kvs.addTE(groups: groups, blocksEach: blocks) }
        return kvs
    }

    private let group = GroupRef(te: 2, group: 1)

    @Test func maskThenUnmaskConservesBlocks() throws {
        let kvs = store(blocks: 10)
        _ = try #require(kvs.allocatePrefill(7, in: group, promptTokens: 32, chained: [], expectedTotalTokens: 0))
        #expect(kvs.freeBlocks(group) == 8)
        // 40 tokens of failed requests' KV: 3 blocks out of use.
        #expect(kvs.mask(group, tokens: 40, fault: 5) == 3)
        #expect(kvs.freeBlocks(group) == 5 && kvs.usedBlocks(group) == 5)
        #expect(kvs.maskedGroup(fault: 5) == group && kvs.maskCount(group) == 1)
        #expect(kvs.maskCount(GroupRef(te: 2, group: 0)) == 0)
        #expect(kvs.freeBlocks(GroupRef(te: 2, group: 0)) == 10, "the TE's other group is untouched")
        // The store tells the mask from the request holding KV there.
        #expect(kvs.liveRequests(group) == 2 && kvs.requestsHoldingKV(group) == 1)
        // A mask's blocks are never handed out: 6 blocks do not fit in the 5 left.
        #expect(kvs.allocatePrefill(8, in: group, promptTokens: 96, chained: [], expectedTotalTokens: 0) == nil)
        #expect(kvs.unmask(fault: 5) == group)
        #expect(kvs.freeBlocks(group) == 8 && kvs.usedBlocks(group) == 2)
        #expect(kvs.maskedGroup(fault: 5) == nil && kvs.maskCount(group) == 0 && kvs.masks.isEmpty)
        #expect(kvs.requestsHoldingKV(group) == 1 && kvs.contains(group, 7))
        // The request's own blocks are untouched; unmasking again changes nothing.
        #expect(kvs.unmask(fault: 5) == nil)
        #expect(kvs.freeBlocks(group) == 8 && kvs.contains(group, 7))
        kvs.release(7, in: group)
        #expect(kvs.freeBlocks(group) == 10 && kvs.liveRequests(group) == 0)
    }

    @Test func aMaskTakesAtLeastOneBlockAndAtMostWhatIsFree() throws {
        let kvs = store(blocks: 4)
        // No KV lived there: still one block (the region is bad).
        #expect(kvs.mask(group, tokens: 0, fault: 1) == 1 && kvs.freeBlocks(group) == 3)
        // More than is free: what is free.
        #expect(kvs.mask(group, tokens: 1_000, fault: 2) == 3 && kvs.freeBlocks(group) == 0)
        #expect(kvs.maskCount(group) == 2 && kvs.requestsHoldingKV(group) == 0)
        // Nothing free: nothing masked, nothing recorded.
        #expect(kvs.mask(group, tokens: 16, fault: 3) == 0 && kvs.maskedGroup(fault: 3) == nil)
        // Healing one fault gives back its blocks only.
        kvs.unmask(fault: 2)
        #expect(kvs.freeBlocks(group) == 3 && kvs.maskCount(group) == 1 && kvs.maskedGroup(fault: 1) == group)
    }

    @Test func aFaultHoldsOneMask() {
        let kvs = store(blocks: 10)
        #expect(kvs.mask(group, tokens: 16, fault: 4) == 1)
        let other = GroupRef(te: 0, group: 0)
        #expect(kvs.mask(other, tokens: 16, fault: 4) == 0)
        #expect(kvs.freeBlocks(other) == 10 && kvs.maskedGroup(fault: 4) == group)
    }

    /// A mask holds blocks but is no request: a drained group left holding only a mask is
    /// released (a drain's `releasedByDrain` counts requests, not masks).
    @Test func aMaskedGroupHoldsBlocksButNoRequest() {
        let kvs = store(blocks: 10)
        #expect(kvs.maskCount(group) == 0 && kvs.liveRequests(group) == 0)
        kvs.mask(group, tokens: 16, fault: 9)
        #expect(kvs.maskCount(group) == 1 && kvs.liveRequests(group) == 1 && kvs.requestsHoldingKV(group) == 0)
        kvs.unmask(fault: 9)
        #expect(kvs.maskCount(group) == 0 && kvs.liveRequests(group) == 0 && kvs.freeBlocks(group) == 10)
    }

    @Test func aCopyKeepsItsOwnMasks() {
        let a = store(blocks: 10)
        a.mask(group, tokens: 16, fault: 1)
        let b = a.copy()
        #expect(b.unmask(fault: 1) == group)
        #expect(b.masks.isEmpty && b.freeBlocks(group) == 10)
        #expect(a.maskedGroup(fault: 1) == group && a.freeBlocks(group) == 9)
    }
}
