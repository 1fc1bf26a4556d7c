import PodModel
import SimKit
import Testing
import XDSTestSupport

@testable import ServingEngine

@Suite(.timeLimit(.minutes(10))) struct DecodeLoadIndexTests {
    /// One TE's groups in a KV store (TE 0), as the engine holds them.
    static func groups(_ count: Int, blocks: Int = 100) -> KVCacheStore {
        .oneTE(groups: count, blocks: blocks, blockTokens: 16)
    }

    /// An index over the store's TE 0, as the decode scheduler builds it.
    static func index(_ kv: KVCacheStore, placeable: PlaceableGroups, slots: [Int], batchLimit: Int) -> DecodeLoadIndex? {
        kv.withGroups(of: 0) { DecodeLoadIndex(groups: $0, placeable: placeable, slots: slots, batchLimit: batchLimit) }
    }

    static func problems(_ index: DecodeLoadIndex, _ kv: KVCacheStore, placeable: PlaceableGroups, slots: [Int]) -> [String] {
        kv.withGroups(of: 0) { index.problems(against: $0, placeable: placeable, slots: slots) }
    }

    /// kv-aware's definition, by a scan (the index must agree with it at every step).
    static func scan(_ kv: KVCacheStore, _ placeable: PlaceableGroups, slots: [Int], batchLimit: Int) -> Int? {
        KVAwareBalancing.scan(DecodeGroups(instance: 0, batchLimit: batchLimit, kv: kv, placeable: placeable, slots: slots))
    }

    /// As the decode scheduler does: a KV or slot change updates the group's leaf, a changed
    /// placeable answer (a new version) rebuilds the index.
    static func refresh(_ index: inout DecodeLoadIndex, _ kv: KVCacheStore, _ placeable: PlaceableGroups,
                        _ slots: [Int], _ g: Int) {
        if !index.fits(groupCount: kv.groupCount(of: 0), placeable: placeable, batchLimit: index.batchLimit) {
            index = Self.index(kv, placeable: placeable, slots: slots, batchLimit: index.batchLimit)!
        } else {
            index.update(g, load: kv.decodeLoad(GroupRef(te: 0, group: g)), slots: slots[g])
        }
    }

    /// `mask` with group `g` set to `value`, as a new answer.
    static func with(_ p: PlaceableGroups, _ g: Int, _ value: Bool) -> PlaceableGroups {
        var mask = p.mask
        mask[g] = value
        return PlaceableGroups(mask: mask, version: p.version + 1)
    }

    @Test func picksTheLeastLoadedEligibleGroupLowestIndexOnTies() throws {
        let groups = Self.groups(5)
        var slots = [Int](repeating: 0, count: 5)
        var placeable = PlaceableGroups.all(5)
        var index = try #require(Self.index(groups, placeable: placeable, slots: slots, batchLimit: 2))
        #expect(index.best == 0, "all empty: the first")
        // Group 0 holds 3 blocks, group 1 a reservation of 2: group 2 (empty) is next.
        #expect(groups.admitDecode(1, in: GroupRef(te: 0, group: 0), promptTokens: 48, totalTokens: 48))
        slots[0] = 1
        Self.refresh(&index, groups, placeable, slots, 0)
        #expect(groups.admitDecode(2, in: GroupRef(te: 0, group: 1), promptTokens: 16, totalTokens: 48))
        Self.refresh(&index, groups, placeable, slots, 1)
        #expect(index.best == 2)
        // Groups 2–4 unplaceable or full: the lighter of 0 (3 blocks) and 1 (1 + 2 reserved) ties, 0 wins.
        placeable = Self.with(Self.with(placeable, 2, false), 4, false)
        slots[3] = 2
        for g in 2...4 { Self.refresh(&index, groups, placeable, slots, g) }
        #expect(index.best == 0 && Self.scan(groups, placeable, slots: slots, batchLimit: 2) == 0)
        groups.release(1, in: GroupRef(te: 0, group: 0))
        Self.refresh(&index, groups, placeable, slots, 0)
        #expect(index.best == 0)
        placeable = Self.with(placeable, 0, false)
        slots[1] = 2
        Self.refresh(&index, groups, placeable, slots, 0)
        Self.refresh(&index, groups, placeable, slots, 1)
        #expect(index.best == nil && Self.scan(groups, placeable, slots: slots, batchLimit: 2) == nil, "nothing eligible")
        #expect(Self.problems(index, groups, placeable: placeable, slots: slots).isEmpty)
    }

    @Test func agreesWithTheScanUnderRandomChanges() throws {
        for count in [1, 2, 3, 7, 32, 33] {
            let groups = Self.groups(count, blocks: 64)
            var slots = [Int](repeating: 0, count: count)
            var placeable = PlaceableGroups.all(count)
            var index = try #require(Self.index(groups, placeable: placeable, slots: slots, batchLimit: 4))
            var random = RandomStream(seed: UInt64(count))
            var nextID = 0
            for _ in 0..<2_000 {
                let g = Int(random.uniform() * Double(count)) % count
                switch Int(random.uniform() * 4) {
                case 0:
                    let prompt = 1 + Int(random.uniform() * 100)
                    if groups.admitDecode(nextID, in: GroupRef(te: 0, group: g), promptTokens: prompt,
                                          totalTokens: prompt + Int(random.uniform() * 200)) {
                        slots[g] += 1
                    }
                    nextID += 1
                case 1:
                    if let id = (max(0, nextID - 40)..<nextID).first(where: { groups.contains(GroupRef(te: 0, group: g), $0) }) {
                        groups.release(id, in: GroupRef(te: 0, group: g))
                        slots[g] -= 1
                    }
                case 2: placeable = Self.with(placeable, g, !placeable[g])
                default: slots[g] = max(0, slots[g] + (random.uniform() < 0.5 ? -1 : 1))
                }
                Self.refresh(&index, groups, placeable, slots, g)
                #expect(index.best == Self.scan(groups, placeable, slots: slots, batchLimit: 4))
            }
            #expect(Self.problems(index, groups, placeable: placeable, slots: slots).isEmpty)
        }
    }

    @Test func refusesGroupsOfDifferentSizesAndReportsStaleness() throws {
        let mixed = [100, 50, 100].map { KVBlockManager(totalBlocks: $0, blockTokens: 16) }
        let none = [0, 0, 0]
        let all = PlaceableGroups.all(3)
        #expect(mixed.withUnsafeBufferPointer { DecodeLoadIndex(groups: $0, placeable: all, slots: none, batchLimit: 4) } == nil)
        #expect(Self.index(Self.groups(0), placeable: .all(0), slots: [], batchLimit: 4) == nil)
        #expect(Self.index(Self.groups(3), placeable: .all(2), slots: none, batchLimit: 4) == nil)
        let groups = Self.groups(3)
        let index = try #require(Self.index(groups, placeable: all, slots: none, batchLimit: 4))
        // A mask changed under the same version (never done): the index is found stale.
        #expect(Self.problems(index, groups, placeable: PlaceableGroups(mask: [true, true, false], version: 0), slots: none)
            == ["decode load index is stale for dp2"])
        // KV changed without telling it.
        #expect(groups.admitDecode(1, in: GroupRef(te: 0, group: 0), promptTokens: 16, totalTokens: 16))
        #expect(Self.problems(index, groups, placeable: all, slots: none) == ["decode load index is stale for dp0"])
        #expect(Self.problems(index, Self.groups(3), placeable: all, slots: [0, 4, 0]) == ["decode load index is stale for dp1"])
        // A newer answer: the index no longer fits (rebuilt at the next pick), and is not audited.
        let drained = Self.with(all, 2, false)
        #expect(Self.problems(index, Self.groups(3), placeable: drained, slots: none).isEmpty)
        #expect(index.fits(groupCount: 3, placeable: all, batchLimit: 4) && !index.fits(groupCount: 3, placeable: all, batchLimit: 5))
        #expect(!index.fits(groupCount: 3, placeable: drained, batchLimit: 4))
    }

    /// Through the engine: a saturated toy pod keeps its decode index equal to a scan (the audit
    /// compares them), and a drain/undrain rebuilds it.
    /// The engine keeps the index current, and the JE's kv-aware pick (read straight off the
    /// index, not through the policy) is the scan's at every point, across a drain and undrain.
    @Test func engineKeepsTheIndexCurrent() throws {
        let engine = try PolicyTests.engine(rate: 200, limit: 600)
        let d = try FaultTests.decodeIndex(engine)
        func scan() -> Int? {
            KVAwareBalancing.scan(DecodeGroups(
                instance: d, batchLimit: engine.instances[d].groupSpec.batchLimit, kv: engine.kvStore,
                placeable: engine.cluster.placeableGroups(of: d), slots: engine.instances[d].decode!.slots))
        }
        for t in stride(from: 1.0, through: 20, by: 1) {
            engine.run(until: t)
            #expect(engine.audit() == [], "at \(t) s")
            if t == 5 { #expect(engine.apply(.drain(node: 2)).accepted) }
            if t == 9 { #expect(engine.apply(.undrain(node: 2)).accepted) }
            #expect(engine.pickDecodeGroup(d) == scan(), "at \(t) s")
        }
        #expect(engine.instances[d].decode?.loadIndex != nil, "built on the first pull")
        #expect(engine.pickDecodeGroup(d) == scan())
    }
}
