import PodModel
import SimKit
import Testing
import XDSTestSupport

@testable import ServingEngine

@Suite(.timeLimit(.minutes(10))) struct DecodeLoadIndexTests {
    static func groups(_ count: Int, blocks: Int = 100) -> [DPGroupState] {
        (0..<count).map { _ in DPGroupState(kv: KVBlockManager(totalBlocks: blocks, blockTokens: 16), npus: []) }
    }

    /// kv-aware's definition, by a scan (the index must agree with it at every step).
    static func scan(_ groups: [DPGroupState], batchLimit: Int) -> Int? {
        KVAwareBalancing.scan(DecodeGroups(instance: 0, batchLimit: batchLimit, groups: groups))
    }

    static func refresh(_ index: inout DecodeLoadIndex, _ groups: [DPGroupState], _ g: Int) {
        index.update(g, load: groups[g].kv.usedBlocks + groups[g].kv.reservedBlocks, slots: groups[g].slots,
                     drained: groups[g].drained)
    }

    @Test func picksTheLeastLoadedEligibleGroupLowestIndexOnTies() throws {
        var groups = Self.groups(5)
        var index = try #require(DecodeLoadIndex(groups: groups, batchLimit: 2))
        #expect(index.best == 0, "all empty: the first")
        // Group 0 holds 3 blocks, group 1 a reservation of 2: group 2 (empty) is next.
        _ = groups[0].kv.allocate(requestID: 1, promptTokens: 48, prefixHashes: [])
        groups[0].slots = 1
        Self.refresh(&index, groups, 0)
        _ = groups[1].kv.allocate(requestID: 2, promptTokens: 16, prefixHashes: [])
        groups[1].kv.reserve(requestID: 2, expectedTotalTokens: 48)
        Self.refresh(&index, groups, 1)
        #expect(index.best == 2)
        // Groups 2–4 drained or full: the lighter of 0 (3 blocks) and 1 (1 + 2 reserved) ties, 0 wins.
        groups[2].drained = true
        groups[3].slots = 2
        groups[4].drained = true
        for g in 2...4 { Self.refresh(&index, groups, g) }
        #expect(index.best == 0 && Self.scan(groups, batchLimit: 2) == 0)
        groups[0].kv.free(requestID: 1)
        Self.refresh(&index, groups, 0)
        #expect(index.best == 0)
        groups[0].drained = true
        groups[1].slots = 2
        Self.refresh(&index, groups, 0)
        Self.refresh(&index, groups, 1)
        #expect(index.best == nil && Self.scan(groups, batchLimit: 2) == nil, "nothing eligible")
        #expect(index.problems(against: groups).isEmpty)
    }

    @Test func agreesWithTheScanUnderRandomChanges() throws {
        for count in [1, 2, 3, 7, 32, 33] {
            var groups = Self.groups(count, blocks: 64)
            var index = try #require(DecodeLoadIndex(groups: groups, batchLimit: 4))
            var random = RandomStream(seed: UInt64(count))
            var nextID = 0
            for _ in 0..<2_000 {
                let g = Int(random.uniform() * Double(count)) % count
                switch Int(random.uniform() * 4) {
                case 0:
                    if groups[g].kv.allocate(requestID: nextID, promptTokens: 1 + Int(random.uniform() * 100), prefixHashes: []) != nil {
                        groups[g].kv.reserve(requestID: nextID, expectedTotalTokens: 1 + Int(random.uniform() * 300))
                        groups[g].slots += 1
                    }
                    nextID += 1
                case 1:
                    if let id = (max(0, nextID - 40)..<nextID).first(where: { groups[g].kv.contains(requestID: $0) }) {
                        groups[g].kv.free(requestID: id)
                        groups[g].slots -= 1
                    }
                case 2: groups[g].drained.toggle()
                default: groups[g].slots = max(0, groups[g].slots + (random.uniform() < 0.5 ? -1 : 1))
                }
                Self.refresh(&index, groups, g)
                #expect(index.best == Self.scan(groups, batchLimit: 4))
            }
            #expect(index.problems(against: groups).isEmpty)
        }
    }

    @Test func refusesGroupsOfDifferentSizesAndReportsStaleness() throws {
        var mixed = Self.groups(3)
        mixed[1] = DPGroupState(kv: KVBlockManager(totalBlocks: 50, blockTokens: 16), npus: [])
        #expect(DecodeLoadIndex(groups: mixed, batchLimit: 4) == nil)
        #expect(DecodeLoadIndex(groups: [], batchLimit: 4) == nil)
        var groups = Self.groups(3)
        let index = try #require(DecodeLoadIndex(groups: groups, batchLimit: 4))
        groups[2].drained = true   // changed without telling the index
        #expect(index.problems(against: groups) == ["decode load index is stale for dp2"])
        #expect(index.fits(groups, batchLimit: 4) && !index.fits(groups, batchLimit: 5))
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
        #expect(engine.instances[d].decodeLoad != nil, "built on the first pull")
        #expect(engine.pickDecodeGroup(d) == KVAwareBalancing.scan(DecodeGroups(
            instance: d, batchLimit: engine.instances[d].groupSpec.batchLimit, groups: engine.instances[d].dp)))
    }
}
