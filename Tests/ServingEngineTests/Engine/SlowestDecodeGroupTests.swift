import PodModel
import SimKit
import Testing
import XDSTestSupport

@testable import ServingEngine

/// The decode step's slowest-group index (``SlowestDecodeGroup``) against its definition, the scan
/// of every group, bit for bit: driven through the TE's own API (`decodeJoin`, `decodeLeave`,
/// `decodeStepBatch`) and through a whole engine with finishes, fault evictions and a drain.
@Suite(.timeLimit(.minutes(10))) struct SlowestDecodeGroupTests {
    /// A decode TE with `count` empty groups, its shape and cost model borrowed from a toy pod.
    static func executor(groups count: Int) throws -> TaskExecutor {
        let engine = try PolicyTests.engine()
        let template = engine.instances[try FaultTests.decodeIndex(engine)]
        let groups = (0..<count).map { _ in DPGroupState(kv: KVBlockManager(totalBlocks: 64, blockTokens: 16), npus: []) }
        return TaskExecutor(role: .decode, name: "decode-test", groupSpec: template.groupSpec, external: false,
                            cost: template.cost, npus: [], dp: groups)
    }

    /// Whether the TE's index answers exactly as the scan does (same group figures, same bits).
    static func agrees(_ te: TaskExecutor, step: Int, tokensPerStep: Double, perRequest: Double, perToken: Double) -> Bool {
        agrees(te.slowestGroup, over: te.dp, step: step, tokensPerStep: tokensPerStep, perRequest: perRequest,
               perToken: perToken)
    }

    /// Whether `index` answers for `groups` exactly as the scan does.
    static func agrees(_ index: SlowestDecodeGroup, over groups: [DPGroupState], step: Int, tokensPerStep: Double,
                       perRequest: Double, perToken: Double) -> Bool {
        let scan = SlowestDecodeGroup.scan(groups, step: step, tokensPerStep: tokensPerStep, perRequest: perRequest,
                                           perToken: perToken)
        var index = index   // a copy: `slowest` is mutating only to run in place on the TE
        guard index.isBuilt, let found = index.slowest(step: step, perRequest: perRequest, perToken: perToken) else { return false }
        return found.maxRunning == scan.maxRunning && found.total == scan.total
            && found.context.bitPattern == scan.context.bitPattern
    }

    @Test(arguments: [1.0, 1.7, 2.0])
    func agreesWithTheScanUnderRandomJoinsAndLeaves(tokensPerStep: Double) throws {
        // Rates: realistic, per-request only (every group of a size ties), and per-token only.
        let rates: [(Double, Double)] = [(2.1e-5, 3.3e-8), (1e-4, 0), (0, 1e-7)]
        // Below `fewestGroupsIndexed` the TE scans; a standalone index kept beside it is checked
        // at every size.
        for count in [1, 2, 7, SlowestDecodeGroup.fewestGroupsIndexed, 33, 320] {
            let te = try Self.executor(groups: count)
            _ = te.decodeStepBatch(step: 0, tokensPerStep: tokensPerStep, perRequest: 1, perToken: 1)   // builds the index
            #expect(te.slowestGroup.isBuilt == (count >= SlowestDecodeGroup.fewestGroupsIndexed))
            var index = SlowestDecodeGroup(groups: te.dp, tokensPerStep: tokensPerStep)
            var random = RandomStream(seed: UInt64(count))
            var members: [[(prompt: Int, joinStep: Int)]] = Array(repeating: [], count: count)
            var step = 0
            for round in 0..<1_500 {
                let g = Int(random.uniform() * Double(count)) % count
                if random.uniform() < 0.55 || members[g].isEmpty {
                    // Few distinct prompt lengths: groups with equal figures (exact ties) are common.
                    let prompt = [100, 200, 300, 1_000][Int(random.uniform() * 4) % 4]
                    te.decodeJoin(g, promptTokens: prompt, joinStep: step)
                    members[g].append((prompt, step))
                } else {
                    let leaving = members[g].remove(at: Int(random.uniform() * Double(members[g].count)) % members[g].count)
                    te.decodeLeave(g, promptTokens: leaving.prompt, joinStep: leaving.joinStep)
                }
                index.update(g, running: te.dp[g].running, promptSum: te.dp[g].promptSum, joinStepSum: te.dp[g].joinStepSum)
                if random.uniform() < 0.3 { step += 1 + Int(random.uniform() * 50) }
                for (perRequest, perToken) in rates {
                    #expect(Self.agrees(index, over: te.dp, step: step, tokensPerStep: tokensPerStep, perRequest: perRequest,
                                        perToken: perToken),
                            "\(count) groups, round \(round), step \(step), rates \(perRequest) \(perToken)")
                    let scan = SlowestDecodeGroup.scan(te.dp, step: step, tokensPerStep: tokensPerStep, perRequest: perRequest,
                                                       perToken: perToken)
                    let answer = te.decodeStepBatch(step: step, tokensPerStep: tokensPerStep, perRequest: perRequest,
                                                    perToken: perToken)
                    #expect(answer.maxRunning == scan.maxRunning && answer.total == scan.total
                                && answer.context.bitPattern == scan.context.bitPattern)
                }
            }
            #expect(te.slowestGroup.problems(against: te.dp) == [])
            #expect(index.problems(against: te.dp) == [])
            #expect(index.totalRunning == members.reduce(0) { $0 + $1.count })
            if te.slowestGroup.isBuilt { #expect(te.slowestGroup.totalRunning == index.totalRunning) }
        }
    }

    @Test func equalGroupsPickTheLowestIndexAndEmptyBatchesCostNothing() throws {
        let te = try Self.executor(groups: SlowestDecodeGroup.fewestGroupsIndexed)
        #expect(te.decodeStepBatch(step: 3, tokensPerStep: 1.8, perRequest: 1e-4, perToken: 1e-7) == (0, 0, 0))
        for g in [4, 1, 3] { te.decodeJoin(g, promptTokens: 500, joinStep: 2) }
        let batch = te.decodeStepBatch(step: 3, tokensPerStep: 1.8, perRequest: 1e-4, perToken: 1e-7)
        #expect(batch.maxRunning == 1 && batch.total == 3)
        #expect(batch.context == (500 + 1.8) / 1, "group 1's mean context: prompt plus one step's tokens")
        // A second request on group 3 makes it the slowest.
        te.decodeJoin(3, promptTokens: 10, joinStep: 3)
        let after = te.decodeStepBatch(step: 3, tokensPerStep: 1.8, perRequest: 1e-4, perToken: 1e-7)
        #expect(after.maxRunning == 2 && after.total == 4)
        #expect(Self.agrees(te, step: 3, tokensPerStep: 1.8, perRequest: 1e-4, perToken: 1e-7))
        for g in [4, 1] { te.decodeLeave(g, promptTokens: 500, joinStep: 2) }
        te.decodeLeave(3, promptTokens: 500, joinStep: 2)
        te.decodeLeave(3, promptTokens: 10, joinStep: 3)
        #expect(te.decodeStepBatch(step: 9, tokensPerStep: 1.8, perRequest: 1e-4, perToken: 1e-7) == (0, 0, 0))
        #expect(te.slowestGroup.problems(against: te.dp) == [])
    }

    @Test func ratesOutsideTheEstimateFallBackToTheScan() throws {
        let te = try Self.executor(groups: SlowestDecodeGroup.fewestGroupsIndexed)
        te.decodeJoin(1, promptTokens: 100, joinStep: 0)
        te.decodeJoin(2, promptTokens: 900, joinStep: 0)
        _ = te.decodeStepBatch(step: 1, tokensPerStep: 1, perRequest: 1, perToken: 1)
        var index = te.slowestGroup
        #expect(index.isBuilt)
        #expect(index.slowest(step: 1, perRequest: -1, perToken: 1e-7) == nil)
        #expect(index.slowest(step: 1, perRequest: 1, perToken: .nan) == nil)
        // The TE answers anyway, by the scan: group 1 (cost falls with context) is the slowest.
        let batch = te.decodeStepBatch(step: 1, tokensPerStep: 1, perRequest: 1, perToken: -1e-3)
        #expect(batch.maxRunning == 1 && batch.total == 2 && batch.context == 101)
    }

    @Test func aStaleIndexIsReported() throws {
        let te = try Self.executor(groups: 4)
        #expect(!te.slowestGroup.isBuilt && te.slowestGroup.problems(against: te.dp) == [], "unbuilt until the first step")
        let before = SlowestDecodeGroup(groups: te.dp, tokensPerStep: 1.5)
        te.decodeJoin(2, promptTokens: 64, joinStep: 0)   // the TE has no index yet: `before` is not told
        #expect(before.problems(against: te.dp).contains { $0.contains("stale for dp2") })
        #expect(SlowestDecodeGroup(groups: te.dp, tokensPerStep: 1.5).problems(against: te.dp) == [])
        #expect(before.problems(against: Array(te.dp.prefix(3))) == ["slowest-group index covers 4 groups of 3"])
    }

    /// A whole engine: joins and finishes, a decode NPU fault (its requests evicted and re-queued),
    /// a drain that migrates running requests, an undrain, run to completion. The audit compares
    /// the index with the groups at every checkpoint, and the index answers as the scan does.
    @Test func engineKeepsTheIndexCurrentThroughFaultsAndDrain() throws {
        let engine = try FaultTests.engine(rate: 40, limit: 200, maxOutput: 512) { $0.faults.migrateDecodeOnDrain = true }
        let d = try FaultTests.decodeIndex(engine)
        let decodeNPU = try #require(engine.instances[d].dp.first?.npus.first)
        var checked = 0
        for t in stride(from: 1.0, through: 40, by: 1) {
            engine.run(until: t)
            #expect(engine.audit() == [], "at \(t) s")
            let te = engine.instances[d]
            if te.slowestGroup.isBuilt, let rates = te.decodeAttentionRates {
                #expect(Self.agrees(te, step: te.stepIndex, tokensPerStep: engine.tokensPerStep, perRequest: rates.perRequest,
                                    perToken: rates.perToken), "at \(t) s")
                checked += 1
            }
            if t == 3 { #expect(engine.apply(.faultNPU(decodeNPU)).accepted) }
            if t == 5 { #expect(engine.apply(.drain(node: 3)).accepted) }
            if t == 9 { #expect(engine.apply(.undrain(node: 3)).accepted) }
        }
        #expect(checked > 30)
        #expect(engine.runToCompletion(limit: 3_600))
        FaultTests.expectSound(engine)
        #expect(engine.instances[d].slowestGroup.totalRunning == 0)
        #expect(engine.instances[d].slowestGroup.problems(against: engine.instances[d].dp) == [])
    }
}
