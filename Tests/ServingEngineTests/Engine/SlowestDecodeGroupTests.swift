import PodModel
import SimKit
import Testing
import XDSTestSupport

@testable import ServingEngine

/// The decode step's slowest-group index (``SlowestDecodeGroup``) against its definition, the scan
/// of every group, bit for bit: driven through the decode scheduler's own API (requests seated,
/// admitted and released; `stepLoad`) and through a whole engine with finishes, fault evictions
/// and a drain.
@Suite(.timeLimit(.minutes(10))) struct SlowestDecodeGroupTests {
    /// A decode scheduler with `count` groups, and the groups' KV (empty: requests here hold none).
    final class Executor {
        let decode: DecodeScheduler
        let kv = KVCacheStore(blockTokens: 16, kvBytesPerToken: 1, poolCapacityBytes: 0)
        private var nextID = 0
        init(groups count: Int) {
            decode = DecodeScheduler(groups: count, colocated: false)
            kv.addTE(groups: count, blocksEach: 64)
        }
        var slowestGroup: SlowestDecodeGroup { decode.slowestGroup }
        var batches: DecodeBatchFigures { decode.batches }
        /// A request seated in group `g` joins its batch at `joinStep`; returns its id.
        @discardableResult
        func decodeJoin(_ g: Int, promptTokens: Int, joinStep: Int) -> Int {
            nextID += 1
            decode.reserveSeat(g)
            decode.join(nextID)
            for id in decode.takeJoiners() {
                decode.admit(id, group: g, promptTokens: promptTokens, joinStep: joinStep, finishStep: joinStep + 1_000)
            }
            return nextID
        }
        /// Request `id` (joined group `g` at `joinStep`) finishes and leaves.
        func decodeLeave(_ id: Int, _ g: Int, promptTokens: Int, joinStep: Int) {
            decode.release(id, group: g, promptTokens: promptTokens, joinStep: joinStep, te: 0, kv: kv)
        }
        func decodeStepBatch(step: Int, tokensPerStep: Double, perRequest: Double,
                             perToken: Double) -> (maxRunning: Int, context: Double, total: Int) {
            decode.stepLoad(step: step, tokensPerStep: tokensPerStep, perRequest: perRequest, perToken: perToken)
        }
    }

    static func executor(groups count: Int) -> Executor { Executor(groups: count) }

    /// Whether the scheduler's index answers exactly as the scan does (same group figures, same bits).
    static func agrees(_ decode: DecodeScheduler, step: Int, tokensPerStep: Double, perRequest: Double, perToken: Double) -> Bool {
        agrees(decode.slowestGroup, over: decode.batches, step: step, tokensPerStep: tokensPerStep, perRequest: perRequest,
               perToken: perToken)
    }

    /// Whether `index` answers for `batches` exactly as the scan does.
    static func agrees(_ index: SlowestDecodeGroup, over batches: DecodeBatchFigures, step: Int, tokensPerStep: Double,
                       perRequest: Double, perToken: Double) -> Bool {
        let scan = SlowestDecodeGroup.scan(batches, step: step, tokensPerStep: tokensPerStep, perRequest: perRequest,
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
            let te = Self.executor(groups: count)
            _ = te.decodeStepBatch(step: 0, tokensPerStep: tokensPerStep, perRequest: 1, perToken: 1)   // builds the index
            #expect(te.slowestGroup.isBuilt == (count >= SlowestDecodeGroup.fewestGroupsIndexed))
            var index = SlowestDecodeGroup(batches: te.batches, tokensPerStep: tokensPerStep)
            var random = RandomStream(seed: UInt64(count))
            var members: [[(id: Int, prompt: Int, joinStep: Int)]] = Array(repeating: [], count: count)
            var step = 0
            for round in 0..<1_500 {
                let g = Int(random.uniform() * Double(count)) % count
                if random.uniform() < 0.55 || members[g].isEmpty {
                    // Few distinct prompt lengths: groups with equal figures (exact ties) are common.
                    let prompt = [100, 200, 300, 1_000][Int(random.uniform() * 4) % 4]
                    let id = te.decodeJoin(g, promptTokens: prompt, joinStep: step)
                    members[g].append((id, prompt, step))
                } else {
                    let leaving = members[g].remove(at: Int(random.uniform() * Double(members[g].count)) % members[g].count)
                    te.decodeLeave(leaving.id, g, promptTokens: leaving.prompt, joinStep: leaving.joinStep)
                }
                index.update(g, running: te.batches.running[g], promptSum: te.batches.promptSum[g],
                             joinStepSum: te.batches.joinStepSum[g])
                if random.uniform() < 0.3 { step += 1 + Int(random.uniform() * 50) }
                for (perRequest, perToken) in rates {
                    #expect(Self.agrees(index, over: te.batches, step: step, tokensPerStep: tokensPerStep, perRequest: perRequest,
                                        perToken: perToken),
                            "\(count) groups, round \(round), step \(step), rates \(perRequest) \(perToken)")
                    let scan = SlowestDecodeGroup.scan(te.batches, step: step, tokensPerStep: tokensPerStep, perRequest: perRequest,
                                                       perToken: perToken)
                    let answer = te.decodeStepBatch(step: step, tokensPerStep: tokensPerStep, perRequest: perRequest,
                                                    perToken: perToken)
                    #expect(answer.maxRunning == scan.maxRunning && answer.total == scan.total
                                && answer.context.bitPattern == scan.context.bitPattern)
                }
                // Lists sorted by the walks, and lists never walked (the standalone index is
                // queried through copies), keep their invariants between joins and leaves.
                if round % 10 == 0 {
                    #expect(te.slowestGroup.problems(against: te.batches) == [], "round \(round)")
                    #expect(index.problems(against: te.batches) == [], "round \(round)")
                }
            }
            #expect(te.slowestGroup.problems(against: te.batches) == [])
            #expect(index.problems(against: te.batches) == [])
            #expect(index.totalRunning == members.reduce(0) { $0 + $1.count })
            #expect(te.decode.runningRequests == index.totalRunning)
            #expect(te.decode.slots == members.map(\.count), "a seat per running request")
            if te.slowestGroup.isBuilt { #expect(te.slowestGroup.totalRunning == index.totalRunning) }
        }
    }

    @Test func equalGroupsPickTheLowestIndexAndEmptyBatchesCostNothing() throws {
        let te = Self.executor(groups: SlowestDecodeGroup.fewestGroupsIndexed)
        #expect(te.decodeStepBatch(step: 3, tokensPerStep: 1.8, perRequest: 1e-4, perToken: 1e-7) == (0, 0, 0))
        let ids = [4, 1, 3].map { te.decodeJoin($0, promptTokens: 500, joinStep: 2) }
        let batch = te.decodeStepBatch(step: 3, tokensPerStep: 1.8, perRequest: 1e-4, perToken: 1e-7)
        #expect(batch.maxRunning == 1 && batch.total == 3)
        #expect(batch.context == (500 + 1.8) / 1, "group 1's mean context: prompt plus one step's tokens")
        // A second request on group 3 makes it the slowest.
        let late = te.decodeJoin(3, promptTokens: 10, joinStep: 3)
        let after = te.decodeStepBatch(step: 3, tokensPerStep: 1.8, perRequest: 1e-4, perToken: 1e-7)
        #expect(after.maxRunning == 2 && after.total == 4)
        #expect(Self.agrees(te.decode, step: 3, tokensPerStep: 1.8, perRequest: 1e-4, perToken: 1e-7))
        for (id, g) in zip(ids, [4, 1, 3]) { te.decodeLeave(id, g, promptTokens: 500, joinStep: 2) }
        te.decodeLeave(late, 3, promptTokens: 10, joinStep: 3)
        #expect(te.decodeStepBatch(step: 9, tokensPerStep: 1.8, perRequest: 1e-4, perToken: 1e-7) == (0, 0, 0))
        #expect(te.slowestGroup.problems(against: te.batches) == [])
    }

    @Test func ratesOutsideTheEstimateFallBackToTheScan() throws {
        let te = Self.executor(groups: SlowestDecodeGroup.fewestGroupsIndexed)
        te.decodeJoin(1, promptTokens: 100, joinStep: 0)
        te.decodeJoin(2, promptTokens: 900, joinStep: 0)
        _ = te.decodeStepBatch(step: 1, tokensPerStep: 1, perRequest: 1, perToken: 1)
        var index = te.slowestGroup
        #expect(index.isBuilt)
        #expect(index.slowest(step: 1, perRequest: -1, perToken: 1e-7) == nil)
        #expect(index.slowest(step: 1, perRequest: 1, perToken: .nan) == nil)
        // Every rate that is negative, infinite or NaN is outside; zero is inside.
        for bad in [-Double.leastNonzeroMagnitude, -.infinity, .infinity, .nan, -.nan] {
            #expect(index.slowest(step: 1, perRequest: bad, perToken: 1e-7) == nil, "perRequest \(bad)")
            #expect(index.slowest(step: 1, perRequest: 1e-4, perToken: bad) == nil, "perToken \(bad)")
        }
        #expect(index.slowest(step: 1, perRequest: 0, perToken: 0) != nil)
        // The TE answers anyway, by the scan: group 1 (cost falls with context) is the slowest.
        let batch = te.decodeStepBatch(step: 1, tokensPerStep: 1, perRequest: 1, perToken: -1e-3)
        #expect(batch.maxRunning == 1 && batch.total == 2 && batch.context == 101)
    }

    @Test func aStaleIndexIsReported() throws {
        let te = Self.executor(groups: 4)
        #expect(!te.slowestGroup.isBuilt && te.slowestGroup.problems(against: te.batches) == [], "unbuilt until the first step")
        let before = SlowestDecodeGroup(batches: te.batches, tokensPerStep: 1.5)
        te.decodeJoin(2, promptTokens: 64, joinStep: 0)   // the scheduler has no index yet: `before` is not told
        #expect(before.problems(against: te.batches).contains { $0.contains("stale for dp2") })
        #expect(SlowestDecodeGroup(batches: te.batches, tokensPerStep: 1.5).problems(against: te.batches) == [])
        #expect(before.problems(against: DecodeBatchFigures(groups: 3)) == ["slowest-group index covers 4 groups of 3"])
    }

    /// A whole engine: joins and finishes, a decode NPU fault (its requests evicted and re-queued),
    /// a drain that migrates running requests, an undrain, run to completion. The audit compares
    /// the index with the groups at every checkpoint, and the index answers as the scan does.
    @Test func engineKeepsTheIndexCurrentThroughFaultsAndDrain() throws {
        let engine = try FaultTests.engine(rate: 40, limit: 200, maxOutput: 512) { $0.faults.migrateDecodeOnDrain = true }
        let d = try FaultTests.decodeIndex(engine)
        let decodeNPU = try #require(engine.cluster.npus(of: d, group: 0).first)
        var checked = 0
        for t in stride(from: 1.0, through: 40, by: 1) {
            engine.run(until: t)
            #expect(engine.audit() == [], "at \(t) s")
            let te = engine.instances[d]
            if te.decode!.slowestGroup.isBuilt, let rates = te.decodeAttentionRates {
                #expect(Self.agrees(te.decode!, step: te.stepIndex, tokensPerStep: engine.tokensPerStep, perRequest: rates.perRequest,
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
        #expect(engine.instances[d].decode!.slowestGroup.totalRunning == 0)
        #expect(engine.instances[d].decode!.problems(te: d, kv: engine.kvStore, placeable: engine.cluster.placeableGroups(of: d)) == [])
    }
}
