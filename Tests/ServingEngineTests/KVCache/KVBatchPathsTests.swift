import SimKit
import Testing

@testable import ServingEngine

/// The KV caches' batch paths (a buffer access per batch instead of per block) against the
/// one-at-a-time operations they replaced: same order, same results.
@Suite(.timeLimit(.minutes(10))) struct KVBatchPathsTests {
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
