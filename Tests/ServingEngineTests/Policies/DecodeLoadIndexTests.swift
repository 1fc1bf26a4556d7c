import PodModel
import SimKit
import Testing
import XDSTestSupport

@testable import ServingEngine

@Suite(.timeLimit(.minutes(10))) struct DecodeLoadIndexTests {
    static func groups(_ count: Int, blocks: Int = 100) -> [DPGroupState] {
        (0..<count).map { _ in DPGroupState(kv: KVBlockManager(totalBlocks: blocks, blockTokens: 16)) }
    }

    /// kv-aware's definition, by a scan (the index must agree with it at every step).
    static func scan(_ groups: [DPGroupState], _ placeable: PlaceableGroups, slots: [Int], batchLimit: Int) -> Int? {
        KVAwareBalancing.scan(DecodeGroups(instance: 0, batchLimit: batchLimit, groups: groups, placeable: placeable, slots: slots))
    }

    /// As the decode scheduler does: a KV or slot change updates the group's leaf, a changed
    /// placeable answer (a new version) rebuilds the index.
    static func refresh(_ index: inout DecodeLoadIndex, _ groups: [DPGroupState], _ placeable: PlaceableGroups,
                        _ slots: [Int], _ g: Int) {
        if !index.fits(groups, placeable: placeable, batchLimit: index.batchLimit) {
            index = DecodeLoadIndex(groups: groups, placeable: placeable, slots: slots, batchLimit: index.batchLimit)!
        } else {
            index.update(g, load: groups[g].kv.usedBlocks + groups[g].kv.reservedBlocks, slots: slots[g])
        }
    }

    /// `mask` with group `g` set to `value`, as a new answer.
    static func with(_ p: PlaceableGroups, _ g: Int, _ value: Bool) -> PlaceableGroups {
        var mask = p.mask
        mask[g] = value
        return PlaceableGroups(mask: mask, version: p.version + 1)
    }

    @Test func picksTheLeastLoadedEligibleGroupLowestIndexOnTies() throws {
        var groups = Self.groups(5)
        var slots = [Int](repeating: 0, count: 5)
        var placeable = PlaceableGroups.all(5)
        var index = try #require(DecodeLoadIndex(groups: groups, placeable: placeable, slots: slots, batchLimit: 2))
        #expect(index.best == 0, "all empty: the first")
        // Group 0 holds 3 blocks, group 1 a reservation of 2: group 2 (empty) is next.
        _ = groups[0].kv.allocate(requestID: 1, promptTokens: 48, prefixHashes: [])
        slots[0] = 1
        Self.refresh(&index, groups, placeable, slots, 0)
        _ = groups[1].kv.allocate(requestID: 2, promptTokens: 16, prefixHashes: [])
        groups[1].kv.reserve(requestID: 2, expectedTotalTokens: 48)
        Self.refresh(&index, groups, placeable, slots, 1)
        #expect(index.best == 2)
        // Groups 2–4 unplaceable or full: the lighter of 0 (3 blocks) and 1 (1 + 2 reserved) ties, 0 wins.
        placeable = Self.with(Self.with(placeable, 2, false), 4, false)
        slots[3] = 2
        for g in 2...4 { Self.refresh(&index, groups, placeable, slots, g) }
        #expect(index.best == 0 && Self.scan(groups, placeable, slots: slots, batchLimit: 2) == 0)
        groups[0].kv.free(requestID: 1)
        Self.refresh(&index, groups, placeable, slots, 0)
        #expect(index.best == 0)
        placeable = Self.with(placeable, 0, false)
        slots[1] = 2
        Self.refresh(&index, groups, placeable, slots, 0)
        Self.refresh(&index, groups, placeable, slots, 1)
        #expect(index.best == nil && Self.scan(groups, placeable, slots: slots, batchLimit: 2) == nil, "nothing eligible")
        #expect(index.problems(against: groups, placeable: placeable, slots: slots).isEmpty)
    }

    @Test func agreesWithTheScanUnderRandomChanges() throws {
        for count in [1, 2, 3, 7, 32, 33] {
            var groups = Self.groups(count, blocks: 64)
            var slots = [Int](repeating: 0, count: count)
            var placeable = PlaceableGroups.all(count)
            var index = try #require(DecodeLoadIndex(groups: groups, placeable: placeable, slots: slots, batchLimit: 4))
            var random = RandomStream(seed: UInt64(count))
            var nextID = 0
            for _ in 0..<2_000 {
                let g = Int(random.uniform() * Double(count)) % count
                switch Int(random.uniform() * 4) {
                case 0:
                    if groups[g].kv.allocate(requestID: nextID, promptTokens: 1 + Int(random.uniform() * 100), prefixHashes: []) != nil {
                        groups[g].kv.reserve(requestID: nextID, expectedTotalTokens: 1 + Int(random.uniform() * 300))
                        slots[g] += 1
                    }
                    nextID += 1
                case 1:
                    if let id = (max(0, nextID - 40)..<nextID).first(where: { groups[g].kv.contains(requestID: $0) }) {
                        groups[g].kv.free(requestID: id)
                        slots[g] -= 1
                    }
                case 2: placeable = Self.with(placeable, g, !placeable[g])
                default: slots[g] = max(0, slots[g] + (random.uniform() < 0.5 ? -1 : 1))
                }
                Self.refresh(&index, groups, placeable, slots, g)
                #expect(index.best == Self.scan(groups, placeable, slots: slots, batchLimit: 4))
            }
            #expect(index.problems(against: groups, placeable: placeable, slots: slots).isEmpty)
        }
    }

    @Test func refusesGroupsOfDifferentSizesAndReportsStaleness() throws {
        var mixed = Self.groups(3)
        mixed[1] = DPGroupState(kv: KVBlockManager(totalBlocks: 50, blockTokens: 16))
        let none = [0, 0, 0]
        let all = PlaceableGroups.all(3)
        #expect(DecodeLoadIndex(groups: mixed, placeable: all, slots: none, batchLimit: 4) == nil)
        #expect(DecodeLoadIndex(groups: [], placeable: .all(0), slots: [], batchLimit: 4) == nil)
        #expect(DecodeLoadIndex(groups: Self.groups(3), placeable: .all(2), slots: none, batchLimit: 4) == nil)
        var groups = Self.groups(3)
        let index = try #require(DecodeLoadIndex(groups: groups, placeable: all, slots: none, batchLimit: 4))
        // A mask changed under the same version (never done): the index is found stale.
        #expect(index.problems(against: groups, placeable: PlaceableGroups(mask: [true, true, false], version: 0), slots: none)
            == ["decode load index is stale for dp2"])
        _ = groups[0].kv.allocate(requestID: 1, promptTokens: 16, prefixHashes: [])   // KV changed without telling it
        #expect(index.problems(against: groups, placeable: all, slots: none) == ["decode load index is stale for dp0"])
        #expect(index.problems(against: Self.groups(3), placeable: all, slots: [0, 4, 0]) == ["decode load index is stale for dp1"])
        // A newer answer: the index no longer fits (rebuilt at the next pick), and is not audited.
        let drained = Self.with(all, 2, false)
        #expect(index.problems(against: Self.groups(3), placeable: drained, slots: none).isEmpty)
        #expect(index.fits(groups, placeable: all, batchLimit: 4) && !index.fits(groups, placeable: all, batchLimit: 5))
        #expect(!index.fits(groups, placeable: drained, batchLimit: 4))
    }

    /// Through the engine: a saturated toy pod keeps its decode index equal to a scan (the audit
    /// compares them), and a drain/undrain rebuilds it.
    @Test func engineKeepsTheIndexCurrent() throws {
        let engine = try PolicyTests.engine(rate: 200, limit: 600)
        let d = try FaultTests.decodeIndex(engine)
        for t in stride(from: 1.0, through: 20, by: 1) {
            engine.run(until: t)
            #expect(engine.audit() == [], "at \(t) s")
            if t == 5 { #expect(engine.apply(.drain(node: 2)).accepted) }
            if t == 9 { #expect(engine.apply(.undrain(node: 2)).accepted) }
        }
        #expect(engine.instances[d].decode?.loadIndex != nil, "built on the first pull")
        #expect(engine.pickDecodeGroup(d) == KVAwareBalancing.scan(DecodeGroups(
            instance: d, batchLimit: engine.instances[d].groupSpec.batchLimit, groups: engine.instances[d].dp,
            placeable: engine.cluster.placeableGroups(of: d), slots: engine.instances[d].decode!.slots)))
    }
}
