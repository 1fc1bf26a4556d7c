import SimKit

/// What ``KVBlockManager/allocate(requestID:promptTokens:prefixHashes:)`` gave a request.
public struct KVAllocation: Sendable, Equatable {
    /// Prompt tokens whose KV was already in the prefix cache (need no prefill compute).
    public var hitTokens: Int
    /// Blocks that were found in the prefix cache and shared.
    public var hitBlocks: Int
    /// Blocks newly taken from the free list or by evicting cached blocks.
    public var newBlocks: Int
    /// Prompt tokens left to prefill: `promptTokens - hitTokens`.
    public var computeTokens: Int
}

/// The paged KV-cache block manager of one DP group, after vLLM v1's `KVCacheManager`.
///
/// Every block is exactly one of: *free*, *owned* by one or more live requests
/// (reference-counted, so requests can share prefix blocks), or *cached* — unreferenced
/// but holding a reusable prefix, evicted least-recently-used first when the free list
/// runs dry. ``audit()`` checks that this holds.
///
/// Full prompt blocks covered by `prefixHashes` are registered in the prefix cache at
/// allocation, so a second live request with the same prefix shares them at once (the
/// engine allocates when prefill is scheduled; treating the prefix as reusable from then on
/// is slightly optimistic by one prefill's duration). At least one prompt token is always
/// left to compute, as in vLLM, because the first output token needs a forward pass.
///
/// Reservations (``reserve(requestID:expectedTotalTokens:)``) hold no blocks; they are the
/// space a request is expected to grow into, counted by ``usageIncludingReserved`` for
/// decode DP load balancing (system.md §4, "including space reserved for long outputs").
///
/// ```swift
/// var kv = KVBlockManager(totalBlocks: 1_000, blockTokens: 128)
/// if let a = kv.allocate(requestID: 1, promptTokens: 1_500, prefixHashes: keys) {
///     print(a.hitTokens)
/// }
/// _ = kv.append(requestID: 1, tokens: 1)   // one decoded token
/// kv.free(requestID: 1)                    // prefix blocks stay cached
/// ```
public struct KVBlockManager: Sendable {
    public let totalBlocks: Int
    public let blockTokens: Int
    public private(set) var stats = PrefixCacheStats()

    /// A live request's blocks and lengths. Its block list sits in ``blockLists``, a chunk of
    /// `1 << sizeClass` entries from `start` of which the first `count` are its blocks, in order
    /// (in a manager that only counts blocks, ``isCountingOnly``: no list, `start` -1).
    /// No reference: storing, reading and removing one is a copy of five words (an array per
    /// request was a malloc, a free, retains and releases and a dictionary entry to destroy per
    /// allocation: a tenth of the saturated superpod's KV instructions).
    struct Sequence: Sendable {
        var start: Int
        var count: Int
        var sizeClass: Int
        var tokens: Int
        var expectedTotalTokens: Int
    }

    /// Per-block state (``BlockState``), one word per block: free, owned (with its reference
    /// count, registered in the prefix cache or not) or cached (in the LRU list of unreferenced
    /// registered blocks, with its two links). A block's count, registration and links were three
    /// arrays: an eviction, a hit or a release read and wrote three scattered lines per block where
    /// it now reads one. ``hashes`` holds the chained prefix hash of each registered block (apart:
    /// a release or a take reads and writes states only, runs of consecutive blocks eight to a
    /// line). Both are kept only from the first allocation with prefix keys (``keepsCounts``), for
    /// the blocks handed out at least once (`0..<touchedBlocks`), grown by doubling on first use
    /// (so they may cover never-used blocks too, all-zero: free): a pod of hundreds of groups does
    /// not allocate every group's table up front.
    private(set) var states: [UInt64] = []
    private(set) var hashes: [UInt64] = []
    /// Whether ``states`` and ``hashes`` are kept. Blocks are shared only through prefix hits, and a hit needs
    /// a block registered under a prefix key: until an allocation brings keys, every owned block
    /// has exactly one holder, the request whose list holds it, and needs no state. A decode
    /// group's KV comes without keys (transferred), so it never keeps any: writing and reading a
    /// count per block of every pull and every completion was a scattered access each (320
    /// groups' counts, 10 MB, for the saturated superpod).
    private(set) var keepsCounts = false
    /// Chained hash → registered block (its hash in ``hashes``).
    var cacheIndex = PrefixIndex(maxLoad: .half)
    /// Blocks freed after use, taken last-in first-out before any never-used block: the first
    /// `freeCount` entries of `freeStack`. Taking blocks only lowers the count and the storage
    /// grows by doubling (an array's `removeLast(_:)` and `append(contentsOf:)` cost a hundred
    /// instructions a call, two calls per request).
    private var freeStack: [Int32] = []
    private(set) var freeCount = 0
    /// The free list, oldest first (the audit, tests).
    var freeList: ArraySlice<Int32> { freeStack[..<freeCount] }
    /// Blocks `touchedBlocks..<totalBlocks` have never been used; they are handed out in
    /// increasing order after the free list (the order of a free list that started full). In a
    /// manager that only counts its blocks (``isCountingOnly``) it is the count of blocks in use,
    /// lowered again as requests leave.
    private(set) var touchedBlocks = 0
    /// The LRU list of cached blocks (linked through their ``states``): least recently released
    /// first, `-1` when empty.
    private var oldestCached: Int32 = -1
    private var newestCached: Int32 = -1
    public private(set) var cachedBlocks = 0
    /// Live requests' blocks by request id (``SequenceTable``).
    var sequences = SequenceTable()
    private(set) var ownedBlockCount = 0
    /// The live requests' block lists (block numbers fit 32 bits: the engine caps a pod's blocks
    /// far below 2³¹), each in a chunk of a power-of-two length (``Sequence``). A released list's
    /// chunk goes on its size class's free chain for the next list of that class; the arena grows
    /// only when a class has no free chunk, so it holds about the most lists ever live at once
    /// (a few tens of kilobytes for a group), and never shrinks.
    private var blockLists: [Int32] = []
    /// Where the next new chunk starts: `blockLists` past it is room made ahead (it grows by
    /// doubling, not per chunk: a decode group takes a new chunk for most requests while its
    /// live requests pile up).
    private var blockListsEnd = 0
    /// Per size class `k` (chunks of `1 << k` entries): the start of the first free chunk, -1 for
    /// none. A free chunk's first entry holds the start of the next one of its class.
    private var freeChunks: [Int] = []
    /// Index entries a keyed group reserves at its first keyed allocation (``startCounting()``):
    /// a whole prefill group of the superpod, at most 1 MB of index per group.
    private static let indexEntriesReservedAtOnce = 1 << 16
    /// The smallest chunk: 8 blocks (a thousand tokens of 128-token blocks).
    private static let smallestSizeClass = 3
    public private(set) var reservedBlocks = 0

    public init(totalBlocks: Int, blockTokens: Int) {
        precondition(totalBlocks > 0 && blockTokens > 0 && totalBlocks <= Int(Int32.max))
        self.totalBlocks = totalBlocks
        self.blockTokens = blockTokens
    }

    // MARK: Queries

    /// Blocks referenced by at least one live request.
    public var usedBlocks: Int { ownedBlockCount }
    /// Blocks that can be handed out now: never-used free blocks plus evictable cached ones.
    public var freeBlocks: Int { freeCount + untouchedBlocks + cachedBlocks }
    /// Free blocks never handed out.
    var untouchedBlocks: Int { totalBlocks - touchedBlocks }
    /// Share of blocks owned by live requests (`vllm:kv_cache_usage_perc`).
    public var usage: Double { Double(ownedBlockCount) / Double(totalBlocks) }
    /// Owned plus reserved share; may exceed 1 when reservations overcommit.
    public var usageIncludingReserved: Double {
        Double(ownedBlockCount + reservedBlocks) / Double(totalBlocks)
    }
    public var liveRequests: Int { sequences.count }
    public func contains(requestID: Int) -> Bool { sequences[requestID] != nil }
    /// Tokens currently held for a request.
    public func tokens(of requestID: Int) -> Int? { sequences[requestID]?.tokens }

    /// Whether `tokens` fresh tokens would fit, ignoring any prefix hits.
    public func canAllocate(tokens: Int) -> Bool { blocksFor(tokens) <= freeBlocks }

    /// Prompt tokens that would hit the prefix cache, without changing anything (for the
    /// prefill leader's cost model).
    public func cachedPrefixTokens(promptTokens: Int, prefixHashes: [UInt64]) -> Int {
        matchPrefix(promptTokens: promptTokens, chained: PrefixHashes.chain(prefixHashes)).count * blockTokens
    }

    /// As ``cachedPrefixTokens(promptTokens:prefixHashes:)`` with keys already chained by
    /// ``PrefixHashes/chain(_:)``, so a scheduler probing many managers chains once.
    public func cachedPrefixTokens(promptTokens: Int, chainedHashes: [UInt64]) -> Int {
        // Counted, not collected: the JE probes every prefill group per arrival.
        let limit = min(chainedHashes.count, (promptTokens - 1) / blockTokens)
        guard limit > 0, !cacheIndex.isEmpty else { return 0 }
        return leadingHits(chainedHashes, from: 0, to: limit) * blockTokens
    }

    /// The index of the first of `chained[start..<end]` not in the prefix cache (`end`: all are).
    @inline(__always)
    private func leadingHits(_ chained: [UInt64], from start: Int, to end: Int) -> Int {
        chained.withUnsafeBufferPointer { chained in
            hashes.withUnsafeBufferPointer { keys in
                cacheIndex.registeredRun(chained, from: start, to: end, keys: keys)
            }
        }
    }

    /// ``cachedPrefixTokens(promptTokens:chainedHashes:)`` when it is more than `beating`, else some
    /// value no more than `beating` (0): for a prober that only wants a group that beats the best
    /// so far. Hits are leading, so a group beats `beating` tokens (`b` whole blocks) only if it
    /// holds block `b`'s key: that one key is looked up first, and a group without it (most
    /// groups, once one group of the TE holds a shared prefix) costs one lookup instead of `b + 1`.
    /// A negative `beating` asks for the exact count.
    @inline(__always)
    public func cachedPrefixTokens(promptTokens: Int, chainedHashes: [UInt64], beating: Int) -> Int {
        guard !cacheIndex.isEmpty else { return 0 }
        let limit = min(chainedHashes.count, (promptTokens - 1) / blockTokens)
        // Blocks to hold before the one that beats (none: the exact count).
        let needed = max(0, beating) / blockTokens
        guard needed < limit else { return 0 }
        if needed > 0 {
            guard cacheIndex.block(for: chainedHashes[needed], keys: hashes) != nil else { return 0 }
            let leading = leadingHits(chainedHashes, from: 0, to: needed)
            guard leading == needed else { return leading * blockTokens }
        }
        return leadingHits(chainedHashes, from: needed, to: limit) * blockTokens
    }

    /// The most ``cachedPrefixTokens(promptTokens:chainedHashes:)`` can return for a prompt with
    /// `chainedCount` keys (the last token is always computed), so a prober can stop early.
    public func longestPossiblePrefixTokens(promptTokens: Int, chainedCount: Int) -> Int {
        Self.longestPossiblePrefixTokens(promptTokens: promptTokens, chainedCount: chainedCount, blockTokens: blockTokens)
    }

    /// ``longestPossiblePrefixTokens(promptTokens:chainedCount:)`` of any manager with blocks of
    /// `blockTokens` (a router bounds a whole TE's groups, which share one block size, at once).
    @inline(__always)
    static func longestPossiblePrefixTokens(promptTokens: Int, chainedCount: Int, blockTokens: Int) -> Int {
        max(0, min(chainedCount, (promptTokens - 1) / blockTokens)) * blockTokens
    }

    // MARK: Operations

    /// Allocates blocks for a new request's prompt, sharing cached prefix blocks.
    /// Returns nil and changes nothing if the request exists or the prompt does not fit.
    public mutating func allocate(requestID: Int, promptTokens: Int, prefixHashes: [UInt64]) -> KVAllocation? {
        allocate(requestID: requestID, promptTokens: promptTokens,
                 chainedHashes: prefixHashes.isEmpty ? [] : PrefixHashes.chain(prefixHashes))
    }

    /// As ``allocate(requestID:promptTokens:prefixHashes:)`` with keys already chained by
    /// ``PrefixHashes/chain(_:)`` (the engine chains a request's keys once, at arrival).
    /// `expectedTotalTokens` is ``reserve(requestID:expectedTotalTokens:)`` done in the same call
    /// (one lookup of the request instead of two).
    public mutating func allocate(requestID: Int, promptTokens: Int, chainedHashes chained: [UInt64],
                                  expectedTotalTokens: Int = 0) -> KVAllocation? {
        precondition(promptTokens > 0, "a prompt has at least one token")
        // The request's slot in the table, found once for the check and the store at the end.
        guard let slot = sequences.vacancy(for: requestID) else { return nil }
        if !keepsCounts && !chained.isEmpty { startCounting() }
        // Hits and new blocks together never exceed the group (a larger prompt cannot fit).
        let totalNeeded = blocksFor(promptTokens)
        guard totalNeeded <= totalBlocks else { return nil }
        guard keepsCounts else {
            // No keys ever (a decode group's transferred KV): no hits, nothing to register, no
            // cached blocks to evict, and no block's identity matters (``isCountingOnly``): the
            // blocks are counted, not listed.
            guard totalNeeded <= freeBlocks else { return nil }
            let sequence = Sequence(start: -1, count: totalNeeded, sizeClass: 0, tokens: promptTokens,
                                    expectedTotalTokens: expectedTotalTokens)
            touchedBlocks += totalNeeded
            ownedBlockCount += totalNeeded
            reservedBlocks += Self.reservation(sequence, blockTokens: blockTokens)
            sequences.insert(requestID, sequence, at: slot)
            stats.queriedTokens += promptTokens
            return KVAllocation(hitTokens: 0, hitBlocks: 0, newBlocks: totalNeeded, computeTokens: promptTokens)
        }
        // The request's block list, sized once (a chunk of the arena): the prefix hits first,
        // then the new blocks.
        var sequence = takeChunk(for: totalNeeded, tokens: promptTokens, expectedTotalTokens: expectedTotalTokens)
        matchPrefix(promptTokens: promptTokens, chained: chained, into: &sequence)
        let hitCount = sequence.count
        let needed = totalNeeded - hitCount
        if hitCount > 0 {
            var hitsNowEvictable = 0
            states.withUnsafeBufferPointer { states in
                blockLists.withUnsafeBufferPointer { lists in
                    for k in 0..<hitCount where BlockState(states[Int(lists[sequence.start &+ k])]).isCached {
                        hitsNowEvictable += 1
                    }
                }
            }
            guard needed <= freeBlocks - hitsNowEvictable else {
                giveBackChunk(of: sequence)
                return nil
            }
            retainHits(of: sequence)
        } else if needed > freeBlocks {
            giveBackChunk(of: sequence)
            return nil
        }
        let cacheableBlocks = min(chained.count, promptTokens / blockTokens)
        // New blocks that may be registered in the prefix cache come first. Those from the free
        // list and never-used ones carry no hash, so taking them all before registering any
        // changes no lookup: they are handed out in bulk (in ``takeOwnedBlocks(_:into:)``'s order), then
        // registered in order. Evictions unregister a hash, so they stay interleaved with the
        // registrations (one pass over the buffers). The rest (all of them for transferred KV,
        // which has no keys) are handed out in bulk.
        let registrableEnd = min(max(cacheableBlocks, hitCount), hitCount + needed)
        let takenInBulk = min(registrableEnd - hitCount, freeCount + untouchedBlocks)
        takeOwnedBlocks(takenInBulk, into: &sequence, registering: true)
        registerTaken(chained, of: sequence, range: hitCount..<(hitCount + takenInBulk))
        takeEvictedRegistering(chained, range: (hitCount + takenInBulk)..<registrableEnd, into: &sequence)
        takeOwnedBlocks(hitCount + needed - registrableEnd, into: &sequence)
        reservedBlocks += Self.reservation(sequence, blockTokens: blockTokens)
        sequences.insert(requestID, sequence, at: slot)
        let hitTokens = hitCount * blockTokens
        stats.queriedTokens += promptTokens
        stats.hitTokens += hitTokens
        return KVAllocation(
            hitTokens: hitTokens, hitBlocks: hitCount, newBlocks: needed,
            computeTokens: promptTokens - hitTokens)
    }

    /// Grows a request by `tokens` (decoded tokens). Returns false and changes nothing when
    /// the request is unknown or there are not enough blocks.
    public mutating func append(requestID: Int, tokens: Int) -> Bool {
        precondition(tokens >= 0)
        guard var sequence = sequences[requestID] else { return false }
        let needed = blocksFor(sequence.tokens + tokens) - sequence.count
        guard needed <= freeBlocks else { return false }
        let reservedBefore = Self.reservation(sequence, blockTokens: blockTokens)
        if needed > 0 && !keepsCounts {
            sequence.count += needed
            touchedBlocks += needed
            ownedBlockCount += needed
        } else if needed > 0 {
            makeRoom(for: needed, in: &sequence)
            takeOwnedBlocks(needed, into: &sequence)
        }
        sequence.tokens += tokens
        reservedBlocks += Self.reservation(sequence, blockTokens: blockTokens) - reservedBefore
        sequences[requestID] = sequence
        return true
    }

    /// Declares the total length (prompt + expected output) a request is expected to reach;
    /// the not-yet-allocated remainder counts as reserved. Returns false for unknown ids.
    @discardableResult
    public mutating func reserve(requestID: Int, expectedTotalTokens: Int) -> Bool {
        guard var sequence = sequences[requestID] else { return false }
        let before = Self.reservation(sequence, blockTokens: blockTokens)
        sequence.expectedTotalTokens = expectedTotalTokens
        reservedBlocks += Self.reservation(sequence, blockTokens: blockTokens) - before
        sequences[requestID] = sequence
        return true
    }

    /// Releases a request's blocks. Registered prefix blocks become evictable cache
    /// entries; the rest return to the free list. Unknown ids are ignored.
    public mutating func free(requestID: Int) {
        guard let sequence = sequences.removeValue(forKey: requestID) else { return }
        reservedBlocks -= Self.reservation(sequence, blockTokens: blockTokens)
        // Tail first, as vLLM does, so the oldest-evicted block of a prefix is its last one
        // and a partially evicted prefix still matches from the start.
        // Through the buffers (one uniqueness check per array, not one or two per block), in one
        // pass: registered prefix blocks go onto the LRU and the rest onto the free list (room made
        // first) as they are released. (The LRU and the free list are apart, so this is the order
        // of adding block by block.)
        let count = sequence.count
        guard keepsCounts else {
            // Counted, not listed (no keys ever, a decode group: ``isCountingOnly``).
            touchedBlocks -= count
            ownedBlockCount -= count
            return
        }
        if freeCount + count > freeStack.count {
            freeStack.append(contentsOf: repeatElement(0, count: max(freeCount + count, 2 * freeStack.count, 64) - freeStack.count))
        }
        var toFree = 0, toCache = 0
        var words: [UInt64] = [], stack: [Int32] = []
        swap(&words, &states)
        swap(&stack, &freeStack)
        let freeBase = freeCount
        var cached = CachedList(oldest: oldestCached, newest: newestCached)
        words.withUnsafeMutableBufferPointer { states in
            stack.withUnsafeMutableBufferPointer { stack in
                blockLists.withUnsafeBufferPointer { lists in
                    // Positions and counters cannot overflow (a list is shorter than the arena,
                    // a count at most the live requests): wrapping arithmetic, no checks per block.
                    let blocks = lists.baseAddress! + sequence.start
                    let freed = stack.baseAddress! + freeBase
                    // A pointer walked down the list: one compare per block ends the loop (a
                    // position counted down took five instructions a block; issue 12).
                    var cursor = blocks + count
                    while cursor != blocks {
                        cursor -= 1
                        let block32 = cursor.pointee
                        let block = Int(block32)
                        let state = BlockState(states[block])
                        if state.count > 1 {
                            states[block] = state.released.word
                            continue
                        }
                        if state.isRegistered {
                            cached.append(block32, states)
                            toCache &+= 1
                        } else {
                            states[block] = BlockState.free.word
                            freed[toFree] = block32
                            toFree &+= 1
                        }
                    }
                }
            }
        }
        swap(&words, &states)
        swap(&stack, &freeStack)
        (oldestCached, newestCached) = (cached.oldest, cached.newest)
        cachedBlocks += toCache
        freeCount += toFree
        ownedBlockCount -= toFree + toCache
        giveBackChunk(of: sequence)
    }

    // MARK: Internals

    /// Takes the free list's last block (the audit's tests lose it); false when the list is empty.
    mutating func takeFreeListBlockForTesting() -> Bool {
        guard freeCount > 0 else { return false }
        freeCount -= 1
        return true
    }

    /// A new sequence (no blocks yet) whose list has room for `length` blocks: a free chunk of the
    /// smallest class that holds them, else a new one at the arena's end.
    /// Inlined, as is ``takeOwnedBlocks(_:into:registering:)``: their calls' overhead (spilling and
    /// reloading a sequence and a dozen counters) was a hundred instructions an allocation.
    @inline(__always)
    private mutating func takeChunk(for length: Int, tokens: Int, expectedTotalTokens: Int) -> Sequence {
        let sizeClass = max(Self.smallestSizeClass, Int.bitWidth - (length - 1).leadingZeroBitCount)
        var start = blockListsEnd
        if sizeClass < freeChunks.count, freeChunks[sizeClass] >= 0 {
            start = freeChunks[sizeClass]
            freeChunks[sizeClass] = Int(blockLists[start])
        } else {
            let end = start + (1 << sizeClass)
            precondition(end <= Int(Int32.max), "block lists past 2³¹ entries")
            if end > blockLists.count {
                blockLists.append(contentsOf: repeatElement(0, count: max(end, 2 * blockLists.count, 1_024) - blockLists.count))
            }
            blockListsEnd = end
        }
        return Sequence(start: start, count: 0, sizeClass: sizeClass, tokens: tokens,
                        expectedTotalTokens: expectedTotalTokens)
    }

    /// Puts a released sequence's chunk on its class's free chain. Inlined: a call per release.
    @inline(__always)
    private mutating func giveBackChunk(of sequence: Sequence) {
        let sizeClass = sequence.sizeClass
        if sizeClass >= freeChunks.count {
            freeChunks.append(contentsOf: repeatElement(-1, count: sizeClass + 1 - freeChunks.count))
        }
        blockLists[sequence.start] = Int32(truncatingIfNeeded: freeChunks[sizeClass])
        freeChunks[sizeClass] = sequence.start
    }

    /// Moves a sequence's list to a larger chunk when `more` blocks would not fit its own.
    private mutating func makeRoom(for more: Int, in sequence: inout Sequence) {
        guard sequence.count + more > 1 << sequence.sizeClass else { return }
        let moved = takeChunk(for: sequence.count + more, tokens: sequence.tokens,
                              expectedTotalTokens: sequence.expectedTotalTokens)
        blockLists.withUnsafeMutableBufferPointer { lists in
            for k in 0..<sequence.count { lists[moved.start + k] = lists[sequence.start + k] }
        }
        giveBackChunk(of: sequence)
        let count = sequence.count
        sequence = moved
        sequence.count = count
    }

    /// Appends `run` to the sequence's list (its chunk has room: sized for the whole prompt).
    @inline(__always)
    private mutating func appendBlocks(_ run: UnsafeBufferPointer<Int32>, to sequence: inout Sequence) {
        guard !run.isEmpty else { return }
        let at = sequence.start + sequence.count
        precondition(sequence.count + run.count <= 1 << sequence.sizeClass, "the chunk holds the prompt")
        blockLists.withUnsafeMutableBufferPointer { lists in
            lists.baseAddress!.advanced(by: at).update(from: run.baseAddress!, count: run.count)
        }
        sequence.count += run.count
    }

    /// Request `id`'s blocks in order (tests), nil when it holds none here.
    /// A counting manager lists none (``isCountingOnly``): nil.
    func blocks(of requestID: Int) -> [Int32]? {
        guard keepsCounts, let sequence = sequences[requestID] else { return nil }
        return Array(blockLists[sequence.start..<(sequence.start + sequence.count)])
    }

    /// A sequence's blocks, read in place (a listing manager's: not ``isCountingOnly``).
    func withBlocks<R>(of sequence: Sequence, _ body: (UnsafeBufferPointer<Int32>) -> R) -> R {
        blockLists.withUnsafeBufferPointer { body(UnsafeBufferPointer(rebasing: $0[sequence.start..<(sequence.start + sequence.count)])) }
    }

    /// Registers `blocks[range]` (just taken in bulk, ``takeOwnedBlocks(_:into:registering:)``,
    /// their states not yet set) under `chained[range]` in order, each unless another block already
    /// holds its hash (then it is owned once, unregistered): a probe and, when vacant, a
    /// registration per block, through the buffers.
    /// Inlined into ``allocate(requestID:promptTokens:chainedHashes:expectedTotalTokens:)``, its one
    /// caller, as is ``takeEvictedRegistering(_:range:into:)``: a call each per keyed allocation.
    @inline(__always)
    private mutating func registerTaken(_ chained: [UInt64], of sequence: Sequence, range: Range<Int>) {
        guard !range.isEmpty else { return }
        // Moved out while edited through their buffers (nothing grows meanwhile: the table was
        // made room for first, the states and hashes cover every block handed out).
        var words: [UInt64] = [], keys: [UInt64] = [], index = PrefixIndex()
        cacheIndex.reserve(entries: cacheIndex.count + range.count)
        swap(&words, &states)
        swap(&keys, &hashes)
        swap(&index, &cacheIndex)
        words.withUnsafeMutableBufferPointer { states in
            keys.withUnsafeMutableBufferPointer { hashes in
                chained.withUnsafeBufferPointer { chained in
                    blockLists.withUnsafeBufferPointer { lists in
                        index.edit(keys: UnsafeBufferPointer(hashes)) { index in
                            for k in range {
                                let hash = chained[k]
                                let (vacancy, registered) = index.find(hash)
                                let block = Int(lists[sequence.start &+ k])
                                guard !registered else {
                                    states[block] = BlockState.ownedOnce.word
                                    continue
                                }
                                hashes[block] = hash
                                states[block] = BlockState.registeredOnce.word
                                index.occupy(vacancy, with: block)
                            }
                        }
                    }
                }
            }
        }
        swap(&words, &states)
        swap(&keys, &hashes)
        swap(&index, &cacheIndex)
    }

    /// Takes `range.count` blocks by evicting the least recently used cached ones, each owned once
    /// and registered under `chained[index]` (unless another block holds that hash) before the
    /// next is evicted: what taking a block by eviction, then a registration, did per block. The
    /// evictions come first, in LRU order (one walk of the list), then, block by block, its old
    /// hash is unregistered and the new one registered: the LRU and the index are apart, so this
    /// is the order of evicting and registering block by block (once a prefill group's blocks are
    /// all in use or cached, as through most of a saturated run, it takes nearly every block this way).
    @inline(__always)
    private mutating func takeEvictedRegistering(_ chained: [UInt64], range: Range<Int>, into sequence: inout Sequence) {
        guard !range.isEmpty else { return }
        precondition(freeCount == 0 && untouchedBlocks == 0 && range.count <= cachedBlocks, "caller checked capacity")
        let count = range.count
        withUnsafeTemporaryAllocation(of: Int32.self, capacity: count) { run in
            // Moved out while edited through their buffers (each eviction frees an index slot
            // before the registration that may take it, so the table never grows here).
            var words: [UInt64] = [], keys: [UInt64] = [], index = PrefixIndex()
            swap(&words, &states)
            swap(&keys, &hashes)
            swap(&index, &cacheIndex)
            words.withUnsafeMutableBufferPointer { states in
                keys.withUnsafeMutableBufferPointer { hashes in
                    popOldest(into: run, states)
                    chained.withUnsafeBufferPointer { chained in
                        // Every cached block is registered, so the index has slots to edit.
                        index.edit(keys: UnsafeBufferPointer(hashes)) { index in
                            for i in 0..<count {
                                let block = Int(run[i])
                                index.remove(hashes[block])
                                let hash = chained[range.lowerBound &+ i]
                                let (vacancy, taken) = index.find(hash)
                                if taken {
                                    states[block] = BlockState.ownedOnce.word
                                    continue
                                }
                                hashes[block] = hash
                                states[block] = BlockState.registeredOnce.word
                                index.occupy(vacancy, with: block)
                            }
                        }
                    }
                }
            }
            swap(&words, &states)
            swap(&keys, &hashes)
            swap(&index, &cacheIndex)
            appendBlocks(UnsafeBufferPointer(run), to: &sequence)
        }
        ownedBlockCount += count
    }

    /// Takes the `run.count` least recently used cached blocks out of the LRU list into `run`,
    /// oldest first (the caller checked there are that many), in one walk of the links; their
    /// states are the caller's to set.
    private mutating func popOldest(into run: UnsafeMutableBufferPointer<Int32>, _ states: UnsafeMutableBufferPointer<UInt64>) {
        var list = CachedList(oldest: oldestCached, newest: newestCached)
        list.popOldest(into: run, states)
        (oldestCached, newestCached) = (list.oldest, list.newest)
        cachedBlocks -= run.count
    }

    func blocksFor(_ tokens: Int) -> Int { Saturating.ceilDiv(tokens, blockTokens) }

    /// Blocks `sequence` is expected to grow into beyond those it holds (``reservedBlocks``).
    /// Static, given the block size: as a method of the manager it was handed the whole manager,
    /// copied to the stack first (a 224-byte memcpy per allocate and free; issue 12).
    @inline(__always)
    private static func reservation(_ sequence: Sequence, blockTokens: Int) -> Int {
        max(0, Saturating.ceilDiv(sequence.expectedTotalTokens, blockTokens) - sequence.count)
    }

    /// Leading cached blocks matching `chained`, leaving at least one prompt token to compute.
    private func matchPrefix(promptTokens: Int, chained: [UInt64]) -> [Int32] {
        var hits: [Int32] = []
        matchPrefix(promptTokens: promptTokens, chained: chained, into: &hits)
        return hits
    }

    /// ``matchPrefix(promptTokens:chained:)`` into a new sequence's list (its chunk holds the
    /// prompt's blocks, so at least every hit), written straight into the chunk.
    private mutating func matchPrefix(promptTokens: Int, chained: [UInt64], into sequence: inout Sequence) {
        let limit = min(chained.count, (promptTokens - 1) / blockTokens)
        guard limit > 0, !cacheIndex.isEmpty else { return }
        precondition(sequence.count == 0 && limit <= 1 << sequence.sizeClass, "a new list holds the prompt")
        var lists: [Int32] = []
        swap(&lists, &blockLists)
        let count = lists.withUnsafeMutableBufferPointer { lists in
            chained.withUnsafeBufferPointer { chained in
                hashes.withUnsafeBufferPointer { keys in
                    cacheIndex.registeredBlocks(chained, to: limit, keys: keys,
                                                into: UnsafeMutableBufferPointer(rebasing: lists[sequence.start..<(sequence.start + limit)]))
                }
            }
        }
        swap(&lists, &blockLists)
        sequence.count = count
    }

    /// ``matchPrefix(promptTokens:chained:)`` appending to `hits`.
    private func matchPrefix(promptTokens: Int, chained: [UInt64], into hits: inout [Int32]) {
        let limit = min(chained.count, (promptTokens - 1) / blockTokens)
        guard limit > 0, !cacheIndex.isEmpty else { return }
        // Found into a buffer and appended in one copy (not one append per block).
        withUnsafeTemporaryAllocation(of: Int32.self, capacity: limit) { found in
            let count = chained.withUnsafeBufferPointer { chained in
                hashes.withUnsafeBufferPointer { keys in
                    cacheIndex.registeredBlocks(chained, to: limit, keys: keys, into: found)
                }
            }
            if count > 0 { hits.append(contentsOf: UnsafeBufferPointer(rebasing: found[..<count])) }
        }
    }

    /// Retains each of `sequence`'s blocks (its prefix hits, just matched) once, in order: a cached
    /// one leaves the LRU list, owned once, an owned one gains a holder.
    private mutating func retainHits(of sequence: Sequence) {
        var words: [UInt64] = []
        swap(&words, &states)
        var nowOwned = 0
        var cached = CachedList(oldest: oldestCached, newest: newestCached)
        words.withUnsafeMutableBufferPointer { states in
            blockLists.withUnsafeBufferPointer { lists in
                for k in sequence.start..<(sequence.start + sequence.count) {
                    let block = Int(lists[k])
                    let state = BlockState(states[block])
                    if state.isCached {
                        nowOwned &+= 1
                        cached.remove(block, state, states)
                        states[block] = BlockState.registeredOnce.word
                    } else {
                        states[block] = state.retained.word
                    }
                }
            }
        }
        swap(&words, &states)
        (oldestCached, newestCached) = (cached.oldest, cached.newest)
        cachedBlocks -= nowOwned
        ownedBlockCount += nowOwned
    }

    /// A block's state (free when no state is kept or it was never handed out).
    func state(of block: Int) -> BlockState {
        block < states.count ? BlockState(states[block]) : .free
    }

    /// The chained prefix hash a block is registered under, if any.
    func hash(of block: Int) -> UInt64? {
        state(of: block).isRegistered ? hashes[block] : nil
    }

    func isHashed(_ block: Int) -> Bool { state(of: block).isRegistered }

    /// Blocks the states and hashes cover (tests: a group without prefix keys keeps none).
    var hashCoverage: Int { states.count }

    /// Blocks registered in the prefix cache (for the audit).
    var hashedBlockCount: Int { (0..<hashCoverage).lazy.filter { self.isHashed($0) }.count }

    /// Reference counts by block, over the states' coverage (tests, the audit).
    var referenceCount: [Int32] { (0..<hashCoverage).map { Int32(state(of: $0).count) } }

    /// The cached blocks, least recently released first (the audit, tests).
    var cachedOldestFirst: [Int] {
        var result: [Int] = []
        var cursor = oldestCached
        // At most every block once (a broken list may loop: the audit then reports it).
        while cursor >= 0, Int(cursor) < states.count, result.count <= hashCoverage {
            result.append(Int(cursor))
            cursor = BlockState(states[Int(cursor)]).next
        }
        return result
    }

    /// Hands out `count` blocks, each now owned once, in exactly the order of taking one block at
    /// a time: the free list from its end, then never-used blocks in increasing order, then
    /// evictions. The first two move in bulk (a decode group takes a whole transferred prompt per
    /// allocate, dozens of blocks): free-list and never-used blocks are unreferenced and never
    /// cached, so owning one is setting its state, when states are kept. `registering`: the caller
    /// sets those blocks' states itself (``registerTaken(_:of:range:)``, right after, sets every one
    /// of them: writing each state twice was 3.8 M of the saturated superpod's two minutes).
    @inline(__always)
    private mutating func takeOwnedBlocks(_ count: Int, into sequence: inout Sequence, registering: Bool = false) {
        guard count > 0 else { return }
        let fromList = min(count, freeCount)
        let fresh = min(count - fromList, untouchedBlocks)
        let taken = fromList + fresh
        if taken > 0 {
            if fresh > 0 { coverStates(through: touchedBlocks + fresh - 1) }
            // The run is written straight into the sequence's chunk (free-list blocks from the
            // list's end, then never-used ones in increasing order), each block owned once: no
            // scratch buffer copied in after (a decode group takes a whole transferred prompt
            // here), and no append per block (a uniqueness and capacity check each).
            let firstFresh = Int32(truncatingIfNeeded: touchedBlocks)
            let at = sequence.start + sequence.count
            precondition(sequence.count + taken <= 1 << sequence.sizeClass, "the chunk holds the prompt")
            blockLists.withUnsafeMutableBufferPointer { lists in
                let run = UnsafeMutableBufferPointer(rebasing: lists[at..<(at + taken)])
                freeStack.withUnsafeBufferPointer { list in
                    var position = freeCount
                    for k in 0..<fromList {
                        position &-= 1
                        run[k] = list[position]
                    }
                }
                var block = firstFresh
                for k in fromList..<taken {
                    run[k] = block
                    block &+= 1  // below totalBlocks
                }
                if keepsCounts && !registering {
                    states.withUnsafeMutableBufferPointer { states in
                        for block in run { states[Int(block)] = BlockState.ownedOnce.word }
                    }
                }
            }
            sequence.count += taken
            freeCount -= fromList
            touchedBlocks += fresh
        }
        ownedBlockCount += fromList + fresh
        takeEvicted(count - fromList - fresh, into: &sequence)
    }

    /// Takes `count` blocks by evicting the least recently used cached ones, each now owned once
    /// and unregistered: one walk of the LRU list, then each block's hash out of the index (a full
    /// prefill group takes a prompt's unkeyed tail this way: a third of a million blocks in the
    /// saturated superpod's five minutes).
    private mutating func takeEvicted(_ count: Int, into sequence: inout Sequence) {
        guard count > 0 else { return }
        precondition(freeCount == 0 && untouchedBlocks == 0 && count <= cachedBlocks, "caller checked capacity")
        withUnsafeTemporaryAllocation(of: Int32.self, capacity: count) { run in
            // Moved out while edited through their buffers (nothing grows meanwhile).
            var words: [UInt64] = [], index = PrefixIndex()
            swap(&words, &states)
            swap(&index, &cacheIndex)
            words.withUnsafeMutableBufferPointer { states in
                popOldest(into: run, states)
                hashes.withUnsafeBufferPointer { hashes in
                    // Every cached block is registered, so the index has slots to edit.
                    index.edit(keys: hashes) { index in
                        for block in run {
                            index.remove(hashes[Int(block)])
                            states[Int(block)] = BlockState.ownedOnce.word
                        }
                    }
                }
            }
            swap(&words, &states)
            swap(&index, &cacheIndex)
            appendBlocks(UnsafeBufferPointer(run), to: &sequence)
        }
        ownedBlockCount += count
    }

    /// Hands out the lowest never-used block, growing the states to cover it (tests).
    mutating func touchFreshBlock() -> Int {
        let block = touchedBlocks
        coverStates(through: block)
        touchedBlocks += 1
        return block
    }

    /// Makes ``states`` and ``hashes`` cover `block` (never-used blocks are free: all-zero), when
    /// they are kept. They grow by doubling, ahead of `touchedBlocks`, so handing out never-used
    /// blocks does not append to them per allocation.
    private mutating func coverStates(through block: Int) {
        guard keepsCounts, block >= states.count else { return }
        let grown = min(totalBlocks, max(block + 1, 2 * states.count, 64))
        states.append(contentsOf: repeatElement(0, count: grown - states.count))
        hashes.append(contentsOf: repeatElement(0, count: grown - hashes.count))
    }

    /// Starts keeping block states (``keepsCounts``), before the first allocation with prefix
    /// keys: each block a live request holds has that one holder.
    private mutating func startCounting() {
        listLiveRequestsBlocks()
        keepsCounts = true
        // The index holds at most one entry per block, and a keyed group (a prefill group) soon
        // registers nearly all of them: sized for that now, it is built once instead of rebuilt at
        // every doubling (each rebuild re-placed every entry into a freshly filled table: 2% of the
        // saturated superpod's instructions). Capped, so a huge group still grows on demand.
        cacheIndex.reserve(entries: min(totalBlocks, Self.indexEntriesReservedAtOnce))
        // Likewise the states and hashes get the room now (capacity, not count: they still cover
        // only the blocks handed out, and untouched room costs no memory), so their doublings in
        // ``coverStates(through:)`` append in place instead of copying each time.
        states.reserveCapacity(min(totalBlocks, Self.indexEntriesReservedAtOnce))
        hashes.reserveCapacity(min(totalBlocks, Self.indexEntriesReservedAtOnce))
        if touchedBlocks > 0 { coverStates(through: touchedBlocks - 1) }
        states.withUnsafeMutableBufferPointer { states in
            blockLists.withUnsafeBufferPointer { lists in
                for (_, sequence) in sequences {
                    for k in sequence.start..<(sequence.start + sequence.count) {
                        states[Int(lists[k])] = BlockState.ownedOnce.word
                    }
                }
            }
        }
    }
}

extension KVBlockManager {
    /// Whether blocks are only counted: until the first allocation with prefix keys, no block is
    /// shared, registered or cached, so which block a request holds changes nothing anyone reads.
    /// A live request then holds `count` blocks and no list (`start` -1), the blocks in use are
    /// `0..<touchedBlocks` (as many as are owned) and the free list is empty. A decode group's KV
    /// comes without keys (transferred), so it stays so: listing each pulled prompt's blocks and
    /// giving them back at completion was 4% of the saturated superpod's instructions (issue 12).
    var isCountingOnly: Bool { !keepsCounts }

    /// Gives each live request of a counting manager its blocks, for the first allocation with
    /// prefix keys: the lowest blocks, in order, to the requests in increasing id order (the one
    /// order that depends on nothing but the live requests).
    fileprivate mutating func listLiveRequestsBlocks() {
        precondition(!keepsCounts && freeCount == 0 && touchedBlocks == ownedBlockCount, "a counting manager")
        guard !sequences.isEmpty else { return }
        var next = 0
        for (requestID, counted) in sequences.sorted(by: { $0.0 < $1.0 }) {
            var sequence = takeChunk(for: max(1, counted.count), tokens: counted.tokens,
                                     expectedTotalTokens: counted.expectedTotalTokens)
            blockLists.withUnsafeMutableBufferPointer { lists in
                for k in 0..<counted.count { lists[sequence.start + k] = Int32(truncatingIfNeeded: next + k) }
            }
            sequence.count = counted.count
            next += counted.count
            sequences[requestID] = sequence
        }
        precondition(next == touchedBlocks, "the counted blocks are the live requests'")
    }
}

/// A block's state in its manager's ``KVBlockManager/states``, one word: the high
/// half says what the block is, the low half holds its reference count or its next link. All
/// zero is free (never handed out, or on the free list).
///
/// | high half | state | low half |
/// |---|---|---|
/// | 0 | free | 0 |
/// | 1 | owned, not registered | count |
/// | 2 | owned, registered under its hash | count |
/// | 3 + (previous + 1) | cached: registered, unreferenced, in the LRU list | next (-1: newest) |
struct BlockState: Equatable {
    let word: UInt64
    @inline(__always) init(_ word: UInt64) { self.word = word }

    private static let ownedTag: UInt64 = 1
    private static let registeredTag: UInt64 = 2
    private static let firstCachedTag: UInt64 = 3

    static let free = BlockState(0)
    static let ownedOnce = BlockState(ownedTag << 32 | 1)
    static let registeredOnce = BlockState(registeredTag << 32 | 1)

    /// A cached block's state with these links (-1: none).
    @inline(__always)
    static func cached(previous: Int32, next: Int32) -> BlockState {
        BlockState((firstCachedTag &+ UInt64(UInt32(bitPattern: previous &+ 1))) << 32 | UInt64(UInt32(bitPattern: next)))
    }

    @inline(__always) private var tag: UInt64 { word >> 32 }
    @inline(__always) private var low: UInt32 { UInt32(truncatingIfNeeded: word) }

    var isCached: Bool { tag >= Self.firstCachedTag }
    /// Registered in the prefix cache (owned and registered, or cached).
    var isRegistered: Bool { tag >= Self.registeredTag }
    var isOwned: Bool { tag == Self.ownedTag || tag == Self.registeredTag }
    /// Holders (0 unless owned).
    var count: Int { isOwned ? Int(low) : 0 }
    /// An owned block with one holder more.
    var retained: BlockState { BlockState(word &+ 1) }
    /// An owned block with one holder less (it has more than one).
    var released: BlockState { BlockState(word &- 1) }
    /// A cached block's links (-1: none).
    @inline(__always) var previous: Int32 { Int32(truncatingIfNeeded: tag &- Self.firstCachedTag) &- 1 }
    @inline(__always) var next: Int32 { Int32(bitPattern: low) }
}

/// The ends of a manager's LRU list of cached blocks, edited through the states' buffer
/// (``BlockState/cached(previous:next:)`` holds each member's links).
struct CachedList {
    var oldest: Int32
    var newest: Int32

    /// Appends `block` (registered, just unreferenced) as the most recently released.
    @inline(__always)
    mutating func append(_ block: Int32, _ states: UnsafeMutableBufferPointer<UInt64>) {
        states[Int(block)] = BlockState.cached(previous: newest, next: -1).word
        if newest >= 0 { setNext(of: Int(newest), block, states) } else { oldest = block }
        newest = block
    }

    /// Unlinks the cached `block` (its `state`); its new state is the caller's to set.
    @inline(__always)
    mutating func remove(_ block: Int, _ state: BlockState, _ states: UnsafeMutableBufferPointer<UInt64>) {
        let p = state.previous, n = state.next
        if p >= 0 { setNext(of: Int(p), n, states) } else { oldest = n }
        if n >= 0 { setPrevious(of: Int(n), p, states) } else { newest = p }
    }

    /// Unlinks the `run.count` oldest members into `run`, oldest first (there are that many):
    /// their new states are the caller's to set.
    @inline(__always)
    mutating func popOldest(into run: UnsafeMutableBufferPointer<Int32>, _ states: UnsafeMutableBufferPointer<UInt64>) {
        guard !run.isEmpty else { return }
        var cursor = oldest
        for k in run.indices {
            precondition(cursor >= 0, "the list holds the members popped")
            run[k] = cursor
            cursor = BlockState(states[Int(cursor)]).next
        }
        oldest = cursor
        if cursor >= 0 { setPrevious(of: Int(cursor), -1, states) } else { newest = -1 }
    }

    @inline(__always)
    private func setNext(of block: Int, _ next: Int32, _ states: UnsafeMutableBufferPointer<UInt64>) {
        let i = block
        states[i] = states[i] & 0xFFFF_FFFF_0000_0000 | UInt64(UInt32(bitPattern: next))
    }

    @inline(__always)
    private func setPrevious(of block: Int, _ previous: Int32, _ states: UnsafeMutableBufferPointer<UInt64>) {
        let i = block
        let next = BlockState(states[i]).next
        states[i] = BlockState.cached(previous: previous, next: next).word
    }
}
