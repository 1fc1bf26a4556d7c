import PodModel
import SimKit
import Testing
import XDSTestSupport

@testable import ServingEngine

/// What the snapshot says of a decode TE after a vertical shrink, and after the heal that gives
/// the dropped groups back (found by review: `fault npu 130` on cloudmatrix-infer left the
/// Instances panel at "decode-0 160 NPUs" and the NPU panel at "DP groups 4, 5 of 320").
@Suite(.timeLimit(.minutes(10))) struct ShrinkSnapshotTests {
    @Test func aShrunkDecodeTEShowsItsLiveNPUsAndGroupsUntilHealed() throws {
        // Static placement: NPU 36 (the TE's dies 40, 41) holds shared-expert dies, so losing it
        // shrinks decode (as in RecoveryPolicyTests).
        let engine = try FaultTests.engine(rate: 30, limit: 150) { $0.eplb = .off }
        let d = try FaultTests.decodeIndex(engine)
        let name = engine.instances[d].name
        let npus = engine.cluster.npus(of: d).count
        let groups = engine.instances[d].groupCount
        func shown(_ s: Snapshot) -> (npus: Int?, groups: Int, dead: [Int]) {
            let te = s.instances.first { $0.name == name }?.npus
            let all = Set(s.npus.filter { $0.instance == name }.flatMap(\.dpGroups))
            return (te, all.count, s.npus.first { $0.id == 36 }?.dpGroups ?? [-1])
        }
        engine.run(until: 2.5)
        let before = shown(engine.snapshot())
        #expect(before.npus == npus && before.groups == groups && before.dead == [40, 41])
        #expect(engine.apply(.faultNPU(36)).accepted)
        engine.run(until: 6)
        #expect(engine.report().faultDetails[0].recovery.contains("vertical shrink"))
        let shrunk = shown(engine.snapshot())
        #expect(shrunk.npus == npus - 1, "the dead chip runs nothing: \(String(describing: shrunk.npus)) of \(npus)")
        #expect(shrunk.groups == groups - 2, "DP \(groups) → \(groups - 2): \(shrunk.groups) shown")
        #expect(shrunk.dead == [], "the dead chip's groups were dropped")
        #expect(engine.snapshot().kv.decodeGroups.count == groups - 2, "the KV panel's bars are the groups the TE runs")
        #expect(engine.apply(.heal(faultID: 1)).accepted)
        engine.run(until: 7)
        let healed = shown(engine.snapshot())
        #expect(healed.npus == npus && healed.groups == groups && healed.dead == [40, 41], "the heal gives them back")
        #expect(engine.snapshot().kv.decodeGroups.count == groups)
        FaultTests.expectSound(engine)
    }
}

/// The Instances panel's KV figure of a shrunk decode TE is the mean over the groups it runs:
/// the fenced groups (empty, taking nothing) were averaged in too.
@Suite(.timeLimit(.minutes(10))) struct ShrinkKVMeanTests {
    @Test func aShrunkTEsKVMeanLeavesOutItsFencedGroups() throws {
        let engine = try FaultTests.engine(rate: 30, limit: 400) { $0.eplb = .off }
        let d = try FaultTests.decodeIndex(engine)
        engine.run(until: 2.5)
        #expect(engine.apply(.faultNPU(36)).accepted)   // shared-expert dies 40, 41: decode shrinks
        engine.run(until: 8)
        let fenced = engine.fencedGroups(of: d)
        #expect(fenced == [40, 41])
        let live = engine.instances[d].groups.filter { !fenced.contains($0) }
        let usages = engine.kvStore.withGroups(of: d) { groups in live.map { groups[$0].usage } }
        let expected = usages.reduce(0, +) / Double(live.count)
        #expect(expected > 0, "decode holds KV under load")
        let shown = try #require(engine.snapshot().instances.first { $0.name == engine.instances[d].name }).kvUsage
        #expect(abs(shown - expected) < 1e-12, "\(shown) shown, \(expected) over the \(live.count) groups it runs")
        FaultTests.expectSound(engine)
    }
}
