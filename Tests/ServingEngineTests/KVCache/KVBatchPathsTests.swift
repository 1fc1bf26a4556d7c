import SimKit
import Testing

@testable import ServingEngine

/// The KV caches' batch paths (a buffer access per batch instead of per block) against the
/// one-at-a-time operations they replaced: same order, same results.
@Suite(.timeLimit(.minutes(10))) struct KVBatchPathsTests {
    @Test func theLRUEditorRelinksAsTheLRUDoes() {
        var rng = RandomStreams(seed: 5).stream("lru-editor")
        var edited = BlockLRU(capacity: 24)
        var plain = BlockLRU(capacity: 24)
        for step in 0..<600 {
            // A batch of random operations, applied one at a time to the plain LRU (which decides
            // which are valid: the editor has no `contains`), then all through one editor.
            var batch: [(op: Int, id: Int)] = []
            var popped: [Int?] = []
            for _ in 0..<rng.int(in: 1...6) {
                let op = rng.int(in: 0...2), id = rng.int(in: 0...23)
                switch op {
                case 0 where !plain.contains(id): plain.append(id)
                case 1 where plain.contains(id): plain.touch(id)
                case 2: popped.append(plain.popOldest())
                default: continue
                }
                batch.append((op, id))
            }
            let poppedByEditor = edited.edit { lru -> [Int?] in
                var popped: [Int?] = []
                for (op, id) in batch {
                    switch op {
                    case 0: lru.append(id)
                    case 1: lru.touch(id)
                    default: popped.append(lru.popOldest())
                    }
                }
                return popped
            }
            #expect(poppedByEditor == popped)
            #expect(edited.oldestFirst == plain.oldestFirst, "order differs after batch \(step)")
            #expect(edited.count == plain.count)
        }
    }

    @Test func aBatchAppendSkipsNegativesAndTakesTheRestLastFirst() {
        var batch = BlockLRU(capacity: 10)
        var single = BlockLRU(capacity: 10)
        batch.append(9)
        single.append(9)
        let ids: [Int32] = [3, ~4, 7, 1, ~0, 5]
        ids.withUnsafeBufferPointer { batch.append(reversedNonNegativeOf: $0) }
        for id in ids.reversed() where id >= 0 { single.append(Int(id)) }
        #expect(batch.oldestFirst == [9, 5, 1, 7, 3])
        #expect(batch.oldestFirst == single.oldestFirst && batch.count == single.count)
    }

    @Test func aBatchRegistrationMatchesOneProbeAtATime() {
        var rng = RandomStreams(seed: 9).stream("prefix-index")
        var batch = PrefixIndex()
        var single = PrefixIndex()
        var batchKeys = [UInt64](repeating: 0, count: 4_096)
        var singleKeys = batchKeys
        var batchMarks = [Bool](repeating: false, count: 4_096)
        var singleMarks = batchMarks
        var nextBlock: Int32 = 0
        for _ in 0..<200 {
            // Hashes from a small space, so some are registered already (by an earlier batch or
            // earlier in this one) and leave their block unregistered.
            let hashes = (0..<rng.int(in: 1...15)).map { _ in UInt64(rng.int(in: 0...2_000)) &* 0x9E37_79B9_7F4A_7C15 }
            let blocks = hashes.indices.map { nextBlock + Int32($0) }
            nextBlock += Int32(hashes.count)
            guard Int(nextBlock) <= batchKeys.count else { break }
            batchKeys.withUnsafeMutableBufferPointer { keys in
                batchMarks.withUnsafeMutableBufferPointer { marks in
                    hashes.withUnsafeBufferPointer { h in
                        blocks.withUnsafeBufferPointer { b in batch.registerNew(hashes: h, blocks: b, keys: keys, marks: marks) }
                    }
                }
            }
            for (hash, block) in zip(hashes, blocks) {
                if case .vacant(let slot) = single.probe(for: hash, keys: singleKeys) {
                    singleKeys[Int(block)] = hash
                    singleMarks[Int(block)] = true
                    single.occupy(slot, with: Int(block))
                }
            }
            #expect(batch.count == single.count && batchMarks == singleMarks && batchKeys == singleKeys)
        }
        for block in 0..<Int(nextBlock) where singleMarks[block] {
            #expect(batch.block(for: singleKeys[block], keys: batchKeys) == block)
        }
        #expect(batch.block(for: 12_345, keys: batchKeys) == nil)
    }

    /// The prefix walks (``PrefixIndex/registeredRun(_:from:to:keys:)``,
    /// ``PrefixIndex/registeredBlocks(_:to:keys:into:)``) stop where a lookup per hash would, and
    /// the blocks they write are the lookups' blocks.
    @Test func aPrefixWalkStopsAndFindsAsALookupPerHash() {
        var rng = RandomStreams(seed: 5).stream("prefix-walk")
        var index = PrefixIndex()
        var keys = [UInt64](repeating: 0, count: 512)
        for block in 0..<300 where rng.int(in: 0...3) > 0 {
            let hash = UInt64(block) &* 0x9E37_79B9_7F4A_7C15
            keys[block] = hash
            index.insert(block, hash: hash, keys: keys)
        }
        for _ in 0..<500 {
            // Mostly registered hashes, so runs are long; an unregistered one ends them.
            let hashes = (0..<rng.int(in: 0...20)).map { _ in UInt64(rng.int(in: 0...320)) &* 0x9E37_79B9_7F4A_7C15 }
            var expected: [Int32] = []
            for hash in hashes {
                guard let block = index.block(for: hash, keys: keys) else { break }
                expected.append(Int32(block))
            }
            let start = hashes.isEmpty ? 0 : rng.int(in: 0...(hashes.count - 1))
            var fromStart = start
            while fromStart < hashes.count, index.block(for: hashes[fromStart], keys: keys) != nil { fromStart += 1 }
            var found = [Int32](repeating: -1, count: hashes.count)
            let (run, written) = hashes.withUnsafeBufferPointer { h in
                keys.withUnsafeBufferPointer { k in
                    found.withUnsafeMutableBufferPointer { f in
                        (index.registeredRun(h, from: start, to: h.count, keys: k),
                         index.registeredBlocks(h, to: h.count, keys: k, into: f))
                    }
                }
            }
            #expect(run == fromStart)
            #expect(written == expected.count && Array(found[..<written]) == expected)
        }
        let empty = [UInt64](arrayLiteral: 1, 2).withUnsafeBufferPointer { h in
            keys.withUnsafeBufferPointer { PrefixIndex().registeredRun(h, from: 0, to: 2, keys: $0) }
        }
        #expect(empty == 0, "an empty index holds none")
    }

    @Test func theIndexEditorFindsRegistersAndRemovesAsTheIndexDoes() {
        var rng = RandomStreams(seed: 13).stream("index-editor")
        var edited = PrefixIndex()
        var plain = PrefixIndex()
        var keys = [UInt64](repeating: 0, count: 512)
        var registered: [Int] = []
        var unused = Array((0..<512).reversed())
        for step in 0..<300 {
            // A batch of registrations and removals, made one at a time on the plain index and
            // then through one editor (reserved first, as an editor cannot grow the table).
            // A block removed in a batch is reused only after it (its key is read until then).
            var batch: [(block: Int, hash: UInt64, remove: Bool)] = []
            var removed: [Int] = []
            for _ in 0..<rng.int(in: 1...12) {
                if !registered.isEmpty, rng.int(in: 0...2) == 0 {
                    let block = registered.remove(at: rng.int(in: 0...(registered.count - 1)))
                    plain.remove(keys[block], keys: keys)
                    batch.append((block, keys[block], true))
                    removed.append(block)
                } else if let block = unused.popLast() {
                    let hash = UInt64(rng.int(in: 0...1_000_000)) &* 0x9E37_79B9_7F4A_7C15
                    guard case .vacant(let slot) = plain.probe(for: hash, keys: keys) else {
                        unused.append(block)
                        continue
                    }
                    keys[block] = hash
                    plain.occupy(slot, with: block)
                    registered.append(block)
                    batch.append((block, hash, false))
                }
            }
            keys.withUnsafeBufferPointer { keys in
                edited.reserve(entries: edited.count + batch.count)
                edited.edit(keys: keys) { index in
                    for change in batch {
                        if change.remove {
                            index.remove(change.hash)
                        } else {
                            let (slot, found) = index.find(change.hash)
                            #expect(!found)
                            index.occupy(slot, with: change.block)
                        }
                    }
                }
            }
            unused.append(contentsOf: removed)
            #expect(edited.count == plain.count && edited.count == registered.count, "count after batch \(step)")
            for block in registered {
                #expect(edited.block(for: keys[block], keys: keys) == block)
            }
        }
        keys.withUnsafeBufferPointer { keys in
            edited.edit(keys: keys) { index in
                #expect(index.find(1).registered == false)
                if let block = registered.first {
                    let (slot, found) = index.find(keys[block])
                    #expect(found && index.block(at: slot) == block)
                }
            }
        }
    }

    @Test func recycledBlockListsKeepAllocationsIndependent() throws {
        var kv = KVBlockManager(totalBlocks: 40, blockTokens: 16)
        // Allocate and free repeatedly so lists are recycled; every live request keeps its own blocks.
        var live: [Int] = []
        for id in 0..<60 {
            let keys = PrefixHashes.chain([UInt64(id % 5), UInt64(id)])
            if kv.allocate(requestID: id, promptTokens: 20 + (id * 7) % 50, chainedHashes: keys) != nil { live.append(id) }
            if live.count > 4 { kv.free(requestID: live.removeFirst()) }
            #expect(kv.audit() == [], "after \(id)")
        }
        for id in live { kv.free(requestID: id) }
        #expect(kv.usedBlocks == 0 && kv.liveRequests == 0 && kv.audit() == [])
    }
}
