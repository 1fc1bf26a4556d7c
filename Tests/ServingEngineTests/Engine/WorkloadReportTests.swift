import Foundation
import PodModel
import Testing
import XDSTestSupport

@testable import ServingEngine

/// The report says what load was offered (its `workload` section): a run's latencies and
/// throughput mean little without it, and the default rate now depends on the deployment.
@Suite(.timeLimit(.minutes(10)))
struct WorkloadReportTests {
    @Test func aSyntheticRunNamesItsRateAtTheStartAndAtTheEndAndItsMix() throws {
        var config = EngineConfiguration(deployment: TestDeployments.toyPod, seed: 1, syntheticRate: 20)
        config.trafficMix = .chat
        let engine = try ServingEngine(configuration: config)
        engine.run(until: 10)
        guard case .success(let command) = OperatorCommand.parse("rate 5") else {
            Issue.record("rate 5 did not parse")
            return
        }
        #expect(engine.apply(command).accepted)
        engine.run(until: 20)
        let workload = try #require(engine.report().workload)
        #expect(workload.source == "synthetic")
        #expect(workload.ratePerSecond == 20)
        #expect(workload.rateAtEndPerSecond == 5)
        #expect(workload.mix == "chat")
        #expect(workload.file == nil && workload.speedup == nil)
        let json = String(decoding: try JSONEncoder().encode(engine.report()), as: UTF8.self)
        #expect(json.contains(#""rate_per_s":20"#) && json.contains(#""rate_at_end_per_s":5"#), "\(json)")
    }

    /// `scenarios/load-paths.toml` runs 9 of its 10 minutes at 200 req/s, yet its report said
    /// "10 req/s at the start, 40 at the end"; and `daily-cycle.toml`'s `rate 40` at 0 s left
    /// "10 at the start", a rate no arrival followed. The report now carries the highest rate in
    /// effect after time 0, and the start is the rate once time-0 commands are applied.
    @Test func aSurgeBetweenTheStartAndTheEndIsReported() throws {
        let engine = try ServingEngine(configuration: EngineConfiguration(deployment: TestDeployments.toyPod, seed: 1,
                                                                          syntheticRate: 10))
        func rate(_ text: String) throws {
            guard case .success(let command) = OperatorCommand.parse(text) else {
                Issue.record("\(text) did not parse")
                return
            }
            #expect(engine.apply(command).accepted, "\(text)")
        }
        // Two commands at time 0: the last one is the start; the first was never in effect.
        try rate("rate 90")
        try rate("rate 20")
        engine.run(until: 5)
        try rate("rate 60")
        engine.run(until: 10)
        try rate("rate 20")
        engine.run(until: 15)
        // Read back from the JSON, the report's contract.
        func workload(_ engine: ServingEngine) throws -> [String: Any] {
            let report = try JSONSerialization.jsonObject(with: try JSONEncoder().encode(engine.report())) as? [String: Any]
            return try #require(report?["workload"] as? [String: Any])
        }
        let surged = try workload(engine)
        #expect(surged["rate_per_s"] as? Double == 20, "\(surged)")
        #expect(surged["rate_at_end_per_s"] as? Double == 20, "\(surged)")
        #expect(surged["rate_max_per_s"] as? Double == 60, "\(surged)")
        // Without commands the three are the configured rate.
        let plain = try ServingEngine(configuration: EngineConfiguration(deployment: TestDeployments.toyPod, seed: 1,
                                                                         syntheticRate: 10))
        plain.run(until: 5)
        let steady = try workload(plain)
        #expect(["rate_per_s", "rate_at_end_per_s", "rate_max_per_s"].allSatisfy { steady[$0] as? Double == 10 }, "\(steady)")
    }

    @Test func aTraceRunNamesItsFileAndSpeedup() throws {
        let path = try GoldenTests.mooncakeFixture()
        defer { try? FileManager.default.removeItem(atPath: path) }
        var config = EngineConfiguration(deployment: TestDeployments.toyPod, seed: 1)
        config.workload = .trace(path: path)
        config.traceSpeedup = 2
        let engine = try ServingEngine(configuration: config)
        engine.run(until: 5)
        let workload = try #require(engine.report().workload)
        #expect(workload.source == "trace")
        #expect(workload.file == path)
        #expect(workload.speedup == 2)
        #expect(workload.ratePerSecond == nil && workload.mix == nil)
    }

    /// A default rate is sized for the superpod and scaled to the deployment's decode capacity:
    /// 10 req/s drowned two A100s serving Llama-2-7B (a TTFT p99 of 28 s in a minute).
    @Test func theDefaultRateIsScaledToTheDeploymentsDecodeCapacity() throws {
        #expect(Bench.defaultRate(10, for: .superpod) == 10)
        #expect(Bench.defaultRate(40, for: .superpod) == 40)
        #expect(Bench.defaultRate(0, for: .superpod) == 0)
        let small = TestDeployments.colocatedLlama()
        let scale = Bench.decodeCapacityScale(for: small)
        #expect(scale > 0 && scale < 0.05, "\(scale)")
        let rate = Bench.defaultRate(10, for: small)
        // Two significant digits of the scaled rate.
        #expect(abs(rate - 10 * scale) <= 0.05 * 10 * scale, "\(rate) against \(10 * scale)")
        #expect(String(rate).count <= 6, "\(rate)")
        // The same decode TE as the superpod's: the same default.
        #expect(Bench.defaultRate(10, for: .cloudMatrixInfer) == 10)
    }

    /// The capacity probe (16 requests per die at a 2K context) does not fit a deployment whose
    /// weights leave too little HBM (Llama-3-70B on A100 pairs: 81 GB per GPU of 72 usable), and the
    /// scale then fell back to 1: `xds run` and the console's demo offered such a pod the superpod's
    /// 10 and 25…55 req/s, 103 of 106 requests still waiting after 10 s. The probe now takes the
    /// largest batch that fits, so the rate is scaled to what the pod decodes.
    @Test func aDeploymentTheProbeBatchDoesNotFitIsStillScaled() throws {
        let tight = try Deployment.inlineColocated("colocated:4:llama-3-70b:nvidia-a100:tp2")
        #expect(throws: (any Error).self) {
            try Bench.decode(deployment: tight, batchPerDie: 16, context: 2_048, mtpAcceptance: 0, eplb: .perfect, routing: .balanced)
        }
        let scale = Bench.decodeCapacityScale(for: tight)
        #expect(scale > 0 && scale < 0.05, "\(scale)")
        // Below the same pod with room for the probe batch: a smaller batch decodes less per die.
        let roomy = try Deployment.inlineColocated("colocated:4:llama-3-70b:nvidia-a100:tp4")
        #expect(scale < Bench.decodeCapacityScale(for: roomy), "\(scale)")
        #expect(Bench.defaultRate(10, for: tight) < 1, "\(Bench.defaultRate(10, for: tight))")
    }

    /// `xds console` without `--rate` worked out the deployment's capacity scale twice at start-up
    /// (two bench steps each): once for the default rate, once for the demo's steps. The default
    /// rate now takes the scale worked out once, and gives what it gave from the deployment.
    @Test func theDefaultRateFromAScaleWorkedOutOnceIsTheSame() throws {
        for deployment in [Deployment.superpod, .cloudMatrixInfer, TestDeployments.colocatedLlama()] {
            let scale = Bench.decodeCapacityScale(for: deployment)
            for rate in [0.0, 10, 40, 400] {
                #expect(Bench.defaultRate(rate, scale: scale) == Bench.defaultRate(rate, for: deployment), "\(deployment.name) \(rate)")
            }
        }
        #expect(Bench.defaultRate(40, scale: 1) == 40)
        #expect(Bench.defaultRate(40, scale: .nan) == 40 && Bench.defaultRate(40, scale: 0) == 40)
    }
}
