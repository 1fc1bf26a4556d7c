import Testing

@testable import SimKit

@Suite struct RandomStreamsTests {
    @Test func sameSeedSameSequence() {
        var a = RandomStreams(seed: 42).stream("arrivals")
        var b = RandomStreams(seed: 42).stream("arrivals")
        let sa = (0..<1000).map { _ in a.next() }
        let sb = (0..<1000).map { _ in b.next() }
        #expect(sa == sb)
    }

    @Test func differentSeedsAndNamesDiffer() {
        var a = RandomStreams(seed: 1).stream("x")
        var b = RandomStreams(seed: 2).stream("x")
        var c = RandomStreams(seed: 1).stream("y")
        let sa = (0..<8).map { _ in a.next() }
        let sb = (0..<8).map { _ in b.next() }
        let sc = (0..<8).map { _ in c.next() }
        #expect(sa != sb)
        #expect(sa != sc)
    }

    @Test func addingAStreamDoesNotShiftAnother() {
        let streams = RandomStreams(seed: 9)
        var alone = streams.stream("a")
        let expected = (0..<50).map { _ in alone.next() }
        var a = streams.stream("a")
        var b = streams.stream("b")
        var got: [UInt64] = []
        for _ in 0..<50 {
            _ = b.next()
            got.append(a.next())
        }
        #expect(got == expected)
    }

    @Test func knownValuesArePinned() {
        // Pins the generator so a refactor cannot silently change every simulation result.
        var rng = RandomStream(seed: 0)
        // Reference values from an independent Python implementation of SplitMix64 + xoshiro256**.
        let firstTwo = [rng.next(), rng.next()]
        #expect(firstTwo == [0xfb54_05f7_bd79_c540, 0x780c_98e2_6cea_5883])
        #expect(StableHash.fnv1a("") == 0xcbf2_9ce4_8422_2325)
        #expect(StableHash.fnv1a("a") == 0xaf63_dc4c_8601_ec8c)
        // Prefix-block keys chain through `combine`; the same Python computes mix(p ^ mix(k + c)).
        #expect(StableHash.combine(parent: 7, 0) == 0x97ee_73ef_0b8b_3102)
        #expect(StableHash.combine(parent: 7, 3) == 0xa796_98f2_a0cd_e86d)
        #expect(StableHash.combine(parent: .max, 1) == 0x3477_afc2_10b6_2dfc)
        // A child mixed once, for many parents, combines to the same bits.
        let child = StableHash.mixedChild(3)
        #expect(StableHash.combine(parent: 7, mixedChild: child) == StableHash.combine(parent: 7, 3))
    }

    @Test func uniformStaysInRangeWithMeanOneHalf() {
        var rng = RandomStream(seed: 3)
        var sum = 0.0
        for _ in 0..<100_000 {
            let u = rng.uniform()
            #expect(u >= 0 && u < 1)
            sum += u
        }
        #expect(abs(sum / 100_000 - 0.5) < 0.005)
    }

    @Test func intCoversRangeUniformly() {
        var rng = RandomStream(seed: 5)
        var counts = [Int](repeating: 0, count: 6)
        for _ in 0..<60_000 { counts[rng.int(in: 1...6) - 1] += 1 }
        for c in counts { #expect(abs(c - 10_000) < 400) }
        let single = rng.int(in: 7...7)
        let negative = rng.int(in: -3 ... -1)
        #expect(single == 7)
        #expect((-3 ... -1).contains(negative))
    }
}
