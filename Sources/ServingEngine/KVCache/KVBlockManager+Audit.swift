extension KVBlockManager {
    /// Conservation violations, empty when the manager is consistent: every block is
    /// exactly one of free, owned (reference count = number of live requests holding it)
    /// or cached-evictable, and the totals add up. Messages are sorted so the result is
    /// deterministic.
    public func audit() -> [String] {
        if isCountingOnly { return countingAudit() }
        var problems: [String] = []
        // Blocks from `touchedBlocks` on were never handed out: free by construction.
        var holders = Array(repeating: 0, count: touchedBlocks)
        var expectedReserved = 0
        for (requestID, sequence) in sequences {
            let blocks = withBlocks(of: sequence) { Array($0) }
            if blocks.count != blocksFor(sequence.tokens) {
                problems.append(
                    "request \(requestID) holds \(blocks.count) blocks for \(sequence.tokens) tokens")
            }
            if Set(blocks).count != blocks.count {
                problems.append("request \(requestID) holds a block twice")
            }
            for block32 in blocks {
                let block = Int(block32)
                guard block >= 0, block < touchedBlocks else {
                    problems.append("request \(requestID) holds block \(block), never handed out")
                    continue
                }
                holders[block] += 1
            }
            expectedReserved += max(0, blocksFor(sequence.expectedTotalTokens) - blocks.count)
        }
        var inFreeList = Array(repeating: false, count: touchedBlocks)
        for block32 in freeList {
            let block = Int(block32)
            guard block >= 0, block < touchedBlocks else {
                problems.append("block \(block) on the free list was never handed out")
                continue
            }
            if inFreeList[block] { problems.append("block \(block) is on the free list twice") }
            inFreeList[block] = true
        }
        var inCachedList = Array(repeating: false, count: touchedBlocks)
        var cachedListed = 0
        for block in cachedOldestFirst {
            guard block < touchedBlocks, !inCachedList[block], cachedListed <= touchedBlocks else {
                problems.append("the cached list holds block \(block) twice or past the blocks handed out")
                break
            }
            inCachedList[block] = true
            cachedListed += 1
            if !state(of: block).isCached { problems.append("block \(block) is in the cached list but not cached") }
        }
        if cachedListed != cachedBlocks { problems.append("cached count \(cachedBlocks) but \(cachedListed) blocks listed") }
        var owned = 0
        for block in 0..<touchedBlocks {
            // Counted without building an array per block: audits run after every step of the fault soak.
            let state = state(of: block)
            let cached = state.isCached
            if cached != inCachedList[block] { problems.append("block \(block) is cached but not in the cached list") }
            let places = (holders[block] > 0 ? 1 : 0) + (inFreeList[block] ? 1 : 0) + (cached ? 1 : 0)
            if places != 1 { problems.append("block \(block) is in \(places) states (want exactly 1)") }
            if keepsCounts, state.count != holders[block] {
                problems.append("block \(block) has reference count \(state.count) but \(holders[block]) holders")
            }
            if !keepsCounts, holders[block] > 1 {
                problems.append("block \(block) has \(holders[block]) holders but no reference count is kept")
            }
            if holders[block] > 0 { owned += 1 }
            if inFreeList[block], hash(of: block) != nil { problems.append("free block \(block) still has a hash") }
            if let hash = hash(of: block), cacheIndex.block(for: hash, keys: hashes) != block {
                problems.append("block \(block) has a hash the index does not map to it")
            }
        }
        if !keepsCounts && (!states.isEmpty || !hashes.isEmpty) {
            problems.append("block states held before any prefix key")
        }
        if cacheIndex.count != hashedBlockCount {
            problems.append("prefix index has \(cacheIndex.count) entries for a different number of hashed blocks")
        }
        if owned != ownedBlockCount { problems.append("owned count \(ownedBlockCount) but \(owned) owned blocks") }
        if owned + freeList.count + untouchedBlocks + cachedBlocks != totalBlocks {
            problems.append(
                "owned \(owned) + free \(freeList.count + untouchedBlocks) + cached \(cachedBlocks) != total \(totalBlocks)")
        }
        if expectedReserved != reservedBlocks {
            problems.append("reserved count \(reservedBlocks) but requests reserve \(expectedReserved)")
        }
        return problems.sorted()
    }

    /// ``audit()`` of a manager that counts blocks without listing them (``isCountingOnly``): each
    /// request holds the blocks its tokens need, they add up to the owned count, the blocks in use
    /// are as many, and nothing is listed, registered or cached.
    private func countingAudit() -> [String] {
        var problems: [String] = []
        var owned = 0, expectedReserved = 0
        for (requestID, sequence) in sequences {
            if sequence.count != blocksFor(sequence.tokens) {
                problems.append("request \(requestID) holds \(sequence.count) blocks for \(sequence.tokens) tokens")
            }
            if sequence.start != -1 { problems.append("request \(requestID) has a block list in a counting manager") }
            owned += sequence.count
            expectedReserved += max(0, blocksFor(sequence.expectedTotalTokens) - sequence.count)
        }
        if owned != ownedBlockCount { problems.append("owned count \(ownedBlockCount) but requests hold \(owned) blocks") }
        if touchedBlocks != ownedBlockCount {
            problems.append("\(touchedBlocks) blocks in use but \(ownedBlockCount) owned")
        }
        if freeCount != 0 || cachedBlocks != 0 || cacheIndex.count != 0 {
            problems.append("a counting manager lists \(freeCount) free and \(cachedBlocks) cached blocks, indexes \(cacheIndex.count)")
        }
        if !states.isEmpty || !hashes.isEmpty { problems.append("block states held before any prefix key") }
        if owned + untouchedBlocks != totalBlocks {
            problems.append("owned \(owned) + free \(untouchedBlocks) + cached 0 != total \(totalBlocks)")
        }
        if expectedReserved != reservedBlocks {
            problems.append("reserved count \(reservedBlocks) but requests reserve \(expectedReserved)")
        }
        return problems.sorted()
    }

    /// Test hook: loses a free block (as a leak bug would) so tests can prove audit notices.
    mutating func leakFreeBlockForTesting() {
        if !takeFreeListBlockForTesting() { _ = touchFreshBlock() }
    }
}
