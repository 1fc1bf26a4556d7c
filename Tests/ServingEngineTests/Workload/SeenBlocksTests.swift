import SimKit
import Testing
@testable import ServingEngine

/// The trace check's set of seen `hash_id`s must answer exactly as the `Set<UInt64>` it replaced.
@Suite struct SeenBlocksTests {
    /// Random inserts and lookups over a small id range (many repeats) and a wide one (many
    /// growths), against `Set<UInt64>`: the same answers and the same count.
    @Test func answersAsASet() {
        var rng = RandomStreams(seed: 11).stream("seen")
        var seen = SeenBlocks()
        var reference = Set<UInt64>()
        for step in 0..<40_000 {
            let id = step % 2 == 0 ? UInt64(rng.uniform() * 3_000) : rng.next()
            if rng.uniform() < 0.5 {
                seen.insert(id)
                reference.insert(id)
            }
            #expect(seen.contains(id) == reference.contains(id))
            #expect(seen.contains(id &+ 1) == reference.contains(id &+ 1))
        }
        #expect(seen.count == reference.count)
        #expect(seen.count > 10_000, "the table grew several times")
    }

    /// Unions of runs of ids (repeats, the vacant-slot id, runs longer than the room left before
    /// a growth) answer as a set and as the same ids inserted one by one.
    @Test func unionsAnswerAsInsertsOneByOne() {
        var rng = RandomStreams(seed: 12).stream("seen-union")
        var union = SeenBlocks(), single = SeenBlocks()
        var reference = Set<UInt64>()
        for _ in 0..<3_000 {
            let ids: [UInt64] = (0..<Int(rng.uniform() * 60)).map { _ in
                let r = rng.uniform()
                return r < 0.01 ? .max : r < 0.4 ? UInt64(rng.uniform() * 5_000) : rng.next()
            }
            union.formUnion(ids)
            for id in ids { single.insert(id) }
            reference.formUnion(ids)
            for _ in 0..<10 {
                let probe = rng.uniform() < 0.5 ? UInt64(rng.uniform() * 5_000) : ids.randomElement(using: &rng) ?? 0
                #expect(union.contains(probe) == reference.contains(probe))
                #expect(single.contains(probe) == reference.contains(probe))
            }
        }
        #expect(union.count == reference.count && single.count == reference.count)
        #expect(union.count > 30_000, "the table grew several times")
    }

    /// The trace check's per-row walk: the leading run of held ids counted as `contains` one by
    /// one would (vacant-slot id included, an empty table too), then only the rest added.
    @Test func leadingRunThenUnionOfTheRest() {
        var rng = RandomStreams(seed: 13).stream("seen-leading")
        var seen = SeenBlocks()
        var reference = Set<UInt64>()
        #expect(seen.leadingRunHeld([1, 2]) == 0 && seen.leadingRunHeld([]) == 0)
        for row in 0..<3_000 {
            let ids: [UInt64] = (0..<Int(rng.uniform() * 40)).map { _ in
                let r = rng.uniform()
                return r < 0.01 ? .max : r < 0.7 ? UInt64(rng.uniform() * 4_000) : rng.next()
            }
            let expected = ids.prefix(while: { reference.contains($0) }).count
            #expect(seen.leadingRunHeld(ids) == expected)
            seen.formUnion(ids, from: expected)
            reference.formUnion(ids)
            if row % 100 == 0 {
                #expect(seen.count == reference.count)
            }
        }
        #expect(seen.count == reference.count)
        var onlyEmptyID = SeenBlocks()
        onlyEmptyID.insert(.max)
        #expect(onlyEmptyID.leadingRunHeld([.max, .max, 3]) == 2)
    }

    /// The id the table uses for a vacant slot, and zero, are ids like any other.
    @Test func edgeIDs() {
        var seen = SeenBlocks()
        #expect(!seen.contains(.max) && !seen.contains(0) && seen.count == 0)
        seen.insert(.max)
        #expect(seen.contains(.max) && !seen.contains(0) && seen.count == 1)
        seen.formUnion([0, 0, .max, 5])
        #expect(seen.contains(0) && seen.contains(5) && !seen.contains(6) && seen.count == 3)
    }
}
