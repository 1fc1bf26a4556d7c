import Foundation
import PodModel
import Testing
import XDSTestSupport

@testable import ServingEngine

/// The engine's EPLB plans from the last window's counts while the hot experts move, so its
/// balance at a given step is a stale plan's, not the fresh one `bench decode` plans on the very
/// popularity it prices. The report's `decode_batch_at_end` says what the step was priced at
/// (`moe_load_factor`, and per group of layers `moe_load_factors`), and the bench prices it:
/// without them the run summary's `bench decode` line put a saturated superpod's step 5–8% under
/// the engine's, where `--eplb perfect` and `--eplb off` runs agree within 2%.
@Suite(.cpuBound) struct StaleEPLBLoadTests {
    @Test func theReportSaysTheBalanceTheStepWasPricedAtAndTheBenchPricesIt() async throws {
        let batch = try await offPool { () throws -> RunReport.DecodeBatch? in
            var config = EngineConfiguration(deployment: .superpod, syntheticRate: 400)
            config.trafficMix = .reasoning
            let engine = try ServingEngine(configuration: config)
            engine.run(until: 200)
            #expect(engine.audit() == [])
            return engine.decodeBatchNow()
        }
        let now = try #require(batch)
        let factor = try #require(now.moeLoadFactor, "\(now)")
        let groups = try #require(now.moeLoadFactors, "\(now)")
        #expect(groups.count == ExpertRouting.layerBins)
        // The groups are the layers in load order; their mean is the step's factor (none under 1
        // at this batch).
        #expect(groups == groups.sorted(), "\(groups)")
        let groupMean: Double = groups.reduce(0, +) / Double(groups.count)
        #expect(abs(groupMean - factor) < 1e-9, "\(groups) against \(factor)")
        // A stale plan leaves a few layers with a hot expert it did not replicate: the hottest
        // group well above the rest, and the mean above a fresh plan's.
        let fresh = try Bench.decode(deployment: .superpod, batchPerDie: now.requestsPerDie, context: now.meanContext,
                                     mtpAcceptance: 0.7, contextCV: now.contextCV)
        #expect(factor > fresh.moeLoadFactor, "engine \(factor), a fresh plan \(fresh.moeLoadFactor)")
        #expect(groups[groups.count - 1] > groups[0] + 0.2, "\(groups)")
        let priced = try Bench.decode(deployment: .superpod, batchPerDie: now.requestsPerDie, context: now.meanContext,
                                      mtpAcceptance: 0.7, contextCV: now.contextCV, moeLoadFactor: groups)
        #expect(abs(priced.moeLoadFactor - factor) < 1e-9)
        // Closer to the engine's step than the fresh plan's price, and within 6% (the rest is the
        // slowest DP group, whose context the bench derives from the spread).
        #expect(abs(now.stepMs - priced.stepMs) < abs(now.stepMs - fresh.stepMs) - 0.5,
                "engine \(now.stepMs) ms, at its balance \(priced.stepMs), fresh \(fresh.stepMs)")
        #expect(abs(now.stepMs / priced.stepMs - 1) < 0.06, "engine \(now.stepMs) ms, bench \(priced.stepMs)")
    }

    @Test func perfectBalanceAndDenseModelsReportNoFactor() async throws {
        let reports = try await offPool { () throws -> [RunReport.DecodeBatch?] in
            var perfect = EngineConfiguration(deployment: .superpod, syntheticRate: 40)
            perfect.eplb = .perfect
            let dense = EngineConfiguration(deployment: try Deployment.inlineColocated("colocated:1:llama-2-7b:nvidia-a100:tp1"),
                                            syntheticRate: 2)
            return try [perfect, dense].map { config in
                let engine = try ServingEngine(configuration: config)
                engine.run(until: 20)
                return engine.decodeBatchNow()
            }
        }
        for report in reports {
            let batch = try #require(report)
            #expect(batch.moeLoadFactor == nil && batch.moeLoadFactors == nil, "\(batch)")
        }
    }

    /// One factor keeps the draw's layer shape; a list is priced group by group.
    @Test func theBenchPricesAGivenBalance() throws {
        func step(_ factors: [Double]?, eplb: EPLBMode = .on) throws -> Bench.DecodeResult {
            try Bench.decode(deployment: .superpod, batchPerDie: 96, context: 4096, mtpAcceptance: 0.7, eplb: eplb,
                             moeLoadFactor: factors)
        }
        let own = try step(nil)
        // Its own mean, given: the same step, bit for bit.
        #expect(try step([own.moeLoadFactor]).stepMs == own.stepMs)
        // More load on the hottest die costs more; the same mean gathered in a quarter of the
        // layers costs more again (a layer's time is convex in its load).
        let even = try step([1.5, 1.5, 1.5, 1.5])
        let gathered = try step([1, 1, 1, 3])
        #expect(try step([1.5]).stepMs > own.stepMs)
        #expect(gathered.stepMs > even.stepMs, "gathered \(gathered.stepMs), even \(even.stepMs)")
        #expect(even.moeLoadFactor == 1.5 && gathered.moeLoadFactor == 1.5)
        // Perfect balance is a factor of 1 whatever the mode.
        #expect(try step([1, 1, 1, 1], eplb: .off).stepMs
                == Bench.decode(deployment: .superpod, batchPerDie: 96, context: 4096, mtpAcceptance: 0.7, eplb: .perfect).stepMs)
    }

    @Test func aBalanceNoDeploymentCanHaveIsRefused() throws {
        func refusal(_ factors: [Double], eplb: EPLBMode = .on, deployment: Deployment = .superpod) -> String {
            do {
                _ = try Bench.decode(deployment: deployment, batchPerDie: 8, context: 1024, mtpAcceptance: 0, eplb: eplb,
                                     moeLoadFactor: factors)
                return "priced"
            } catch {
                return "\(error)"
            }
        }
        // superpod's decode EP320 has 288 routed expert dies (32 hold the shared expert).
        for bad in [[0.5], [289], [Double.nan], [Double.infinity], [1, 1, 0.99]] {
            let text = refusal(bad)
            let expected = "--moe-load-factor must be between 1 (perfect balance) and 288 (every pair on one of the 288 routed expert dies), got"
            #expect(text.hasPrefix(expected), "\(bad): \(text)")
        }
        let tooMany: String = refusal(Array(repeating: 1.2, count: 59))
        #expect(tooMany.contains("one per group of MoE layers (at most deepseek-r1's 58), got 59"), "\(tooMany)")
        #expect(refusal([1.2], eplb: .perfect).contains("--eplb perfect prices perfectly balanced experts"))
        let dense = try Deployment.inlineColocated("colocated:1:llama-2-7b:nvidia-a100:tp1")
        #expect(refusal([1.2], deployment: dense).contains("is a dense model; it has no experts to balance"))
        #expect(refusal([288]) == "priced" && refusal([1]) == "priced")
    }
}
