import SimKit
import Testing
@testable import ServingEngine

/// `touch` replaced `remove` + `append` in the pooled tier (one relink instead of two): the list
/// order after any sequence of operations must be the same either way.
@Suite(.timeLimit(.minutes(10))) struct BlockLRUTouchTests {
    @Test func touchIsRemoveThenAppend() {
        var rng = RandomStreams(seed: 3).stream("lru")
        var touched = BlockLRU(capacity: 16)
        var relinked = BlockLRU(capacity: 16)
        for step in 0..<2_000 {
            let id = rng.int(in: 0...15)
            switch rng.int(in: 0...3) {
            case 0 where !touched.contains(id):
                touched.append(id)
                relinked.append(id)
            case 1 where touched.contains(id):
                touched.remove(id)
                relinked.remove(id)
            case 2:
                #expect(touched.popOldest() == relinked.popOldest())
            default:
                guard touched.contains(id) else { continue }
                touched.touch(id)
                relinked.remove(id)
                relinked.append(id)
            }
            #expect(touched.oldestFirst == relinked.oldestFirst, "order differs after step \(step)")
            #expect(touched.count == relinked.count)
        }
    }
}
