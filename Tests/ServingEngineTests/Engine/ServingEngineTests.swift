import Foundation
import PodModel
import SimKit
import Testing
import XDSTestSupport

@testable import ServingEngine

@Suite struct ServingEngineTests {
    static func synthetic(_ deployment: Deployment, rate: Double, limit: Int, seed: UInt64 = 1) throws -> ServingEngine {
        var config = EngineConfiguration(deployment: deployment, seed: seed, syntheticRate: rate)
        config.snapshotInterval = 0.5
        var synthetic = SyntheticWorkload.Configuration(ratePerSecond: rate)
        synthetic.maxRequests = limit
        synthetic.maxOutputTokens = 1_024
        return try ServingEngine(configuration: config, workload: SyntheticWorkload(seed: seed, configuration: synthetic))
    }

    static func expectConserved(_ engine: ServingEngine, _ note: String = "") {
        let c = engine.snapshot().requests
        #expect(c.arrived == c.completed + c.failed + c.rejected + c.inFlight, "\(note)")
        #expect(c.inFlight == c.waiting + c.running, "\(note)")
        let r = engine.report().requests
        #expect(r.arrived == r.completed + r.failed + r.rejected + r.inFlight, "\(note)")
    }

    @Test func toyPodCompletesEverythingAndConserves() throws {
        let engine = try Self.synthetic(TestDeployments.toyPod, rate: 20, limit: 200)
        var t = 0.0
        while !engine.runToCompletion(limit: t), t < 3_600 {
            t += 5
            #expect(engine.audit() == [], "at \(t) s")
            Self.expectConserved(engine, "at \(t) s")
        }
        let report = engine.report()
        #expect(report.requests.arrived == 200)
        #expect(report.requests.completed == 200)
        #expect(report.requests.inFlight == 0)
        #expect(engine.audit() == [])
        #expect(report.latencyMs.ttft.p50 > 0 && report.latencyMs.tpot.p50 > 0 && report.latencyMs.e2e.p50 > 0)
        #expect(report.tokens.generated > 0 && report.throughput.outputTokensPerS > 0)
        #expect(report.kv.prefixHitRate > 0, "the synthetic workload shares system prompts")
    }

    @Test func colocatedLlamaCompletesEverything() throws {
        let engine = try Self.synthetic(TestDeployments.colocatedLlama(), rate: 4, limit: 60)
        #expect(engine.runToCompletion(limit: 3_600))
        let report = engine.report()
        #expect(report.requests.completed + report.requests.failed == 60)
        #expect(report.requests.completed > 0)
        #expect(engine.audit() == [])
        #expect(report.model == "llama-2-7b")
        let snapshot = engine.snapshot()
        #expect(snapshot.npus.count == 8)
        #expect(snapshot.npus.filter { $0.role == .colocated }.count == 2)
        #expect(snapshot.instances.map(\.name) == ["colocated-0", "colocated-1"])
    }

    @Test func sameSeedSameReport() throws {
        func run() throws -> RunReport {
            let engine = try Self.synthetic(TestDeployments.toyPod, rate: 30, limit: 120, seed: 7)
            engine.run(until: 5)
            _ = engine.apply(.rate(requestsPerSecond: 50))
            _ = engine.apply(.drain(node: 1))
            engine.runToCompletion(limit: 3_600)
            return engine.report()
        }
        let a = try run(), b = try run()
        #expect(a == b)
        #expect(a.wallSeconds == 0)
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        #expect(try encoder.encode(a) == encoder.encode(b))
    }

    @Test func reportHasTheInterfaceKeys() throws {
        let engine = try Self.synthetic(TestDeployments.toyPod, rate: 10, limit: 10)
        engine.runToCompletion(limit: 600)
        let json = try JSONSerialization.jsonObject(with: JSONEncoder().encode(engine.report())) as? [String: Any]
        let object = try #require(json)
        for key in ["deployment", "model", "seed", "sim_seconds", "wall_seconds", "events", "requests", "tokens",
                    "throughput", "latency_ms", "slo", "kv", "experts", "faults"] {
            #expect(object[key] != nil, "missing \(key)")
        }
        let requests = try #require(object["requests"] as? [String: Any])
        #expect(Set(requests.keys).isSuperset(of: ["arrived", "completed", "failed", "rejected", "in_flight"]))
        let throughput = try #require(object["throughput"] as? [String: Any])
        #expect(Set(throughput.keys).isSuperset(of: ["output_tokens_per_s", "output_tokens_per_s_per_npu",
                                                     "prefill_tokens_per_s_per_npu"]))
        let latency = try #require(object["latency_ms"] as? [String: [String: Double]])
        #expect(Set(latency.keys) == ["ttft", "tpot", "e2e"])
        #expect(Set(latency["ttft"]?.keys.map { $0 } ?? []) == ["mean", "p50", "p90", "p99"])
        let slo = try #require(object["slo"] as? [String: Any])
        #expect(Set(slo.keys).isSuperset(of: ["ttft_ms", "tpot_ms", "attainment"]))
        let kv = try #require(object["kv"] as? [String: Any])
        #expect(Set(kv.keys).isSuperset(of: ["peak_usage", "prefix_hit_rate"]))
        let experts = try #require(object["experts"] as? [String: Any])
        #expect(Set(experts.keys).isSuperset(of: ["imbalance", "rebalances"]))
        let faults = try #require(object["faults"] as? [String: Any])
        #expect(Set(faults.keys).isSuperset(of: ["injected", "detected", "recovered"]))
    }
}

/// Manual speed probe: `XDS_PROBE=1 swift test --filter ServingEngineProbe`.
@Suite struct ServingEngineProbe {
    @Test(.enabled(if: ProcessInfo.processInfo.environment["XDS_PROBE"] != nil)) func superpodSpeed() throws {
        let rate = Double(ProcessInfo.processInfo.environment["XDS_PROBE_RATE"] ?? "") ?? 100
        let seconds = Double(ProcessInfo.processInfo.environment["XDS_PROBE_SECONDS"] ?? "") ?? 60
        let engine = try ServingEngine(configuration: EngineConfiguration(deployment: .superpod, syntheticRate: rate))
        let start = Date()
        engine.run(until: seconds)
        let wall = Date().timeIntervalSince(start)
        var report = engine.report()
        report.wallSeconds = wall
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        print(String(decoding: try encoder.encode(report), as: UTF8.self))
        print("simulated seconds per wall second: \(seconds / wall)")
    }
}
