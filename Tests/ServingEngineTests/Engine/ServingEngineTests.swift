import Foundation
import PodModel
import SimKit
import Testing
import XDSTestSupport

@testable import ServingEngine

@Suite(.timeLimit(.minutes(10))) struct ServingEngineTests {
    static func synthetic(_ deployment: Deployment, rate: Double, limit: Int, seed: UInt64 = 1) throws -> ServingEngine {
        var config = EngineConfiguration(deployment: deployment, seed: seed, syntheticRate: rate)
        config.snapshotInterval = 0.5
        var synthetic = SyntheticWorkload.Configuration(ratePerSecond: rate)
        synthetic.maxRequests = limit
        synthetic.maxOutputTokens = 1_024
        return try ServingEngine(configuration: config, workload: SyntheticWorkload(seed: seed, configuration: synthetic))
    }

    /// Conservation checked by walking the engine: the requests found in its queues, channels
    /// and batches equal `arrived − completed − failed − rejected` (the reported `in_flight` is
    /// that difference, so comparing it with the counters would prove nothing), each sits where
    /// its state says, and the snapshot's running/waiting split matches the walk.
    static func expectConserved(_ engine: ServingEngine, _ note: String = "",
                                sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(engine.inFlightProblems() == [], "\(note)", sourceLocation: sourceLocation)
        let census = engine.inFlightCensus()
        let c = engine.snapshot().requests
        #expect(c.inFlight == census.total, "\(note)", sourceLocation: sourceLocation)
        #expect(c.running == census.decoding, "\(note): \(census)", sourceLocation: sourceLocation)
        #expect(c.waiting == census.total - census.decoding, "\(note): \(census)", sourceLocation: sourceLocation)
        #expect(engine.report().requests.inFlight == census.total, "\(note)", sourceLocation: sourceLocation)
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
        for t in stride(from: 2.0, through: 20, by: 6) {
            engine.run(until: t)
            Self.expectConserved(engine, "at \(t) s")
        }
        #expect(engine.runToCompletion(limit: 3_600))
        Self.expectConserved(engine, "at the end")
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
            Self.expectConserved(engine, "at 5 s")
            _ = engine.apply(.rate(requestsPerSecond: 50))
            _ = engine.apply(.drain(node: 1))
            Self.expectConserved(engine, "after the drain")
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

    /// The walked count is a check that can fail: a request dropped from its queue (as a bug
    /// would drop it) leaves the counters adding up — `in_flight` is their difference — but not
    /// the walk; so does a request in two places, or a counter that drifts from its group.
    @Test func walkedConservationNoticesWhatTheCountersCannot() throws {
        func engine() throws -> ServingEngine {
            let engine = try Self.synthetic(TestDeployments.toyPod, rate: 60, limit: 200)
            engine.run(until: 3)
            #expect(engine.inFlightProblems() == [])
            return engine
        }
        let census = try engine().inFlightCensus()
        #expect(census.prefillQueued + census.prefilling > 0 && census.decoding > 0, "\(census)")

        // Silently dropped: gone from the engine and from its decode batch, no outcome counted.
        let dropped = try engine()
        let d = try #require(dropped.instances.firstIndex { $0.role == .decode })
        let ids = try #require(dropped.instances[d].decode?.finishing.first { !$0.value.isEmpty }?.value)
        let id = ids[0]
        let g = dropped.placement(of: try #require(dropped.requests[id])).decodeGroup
        dropped.instances[d].decode!.remove([id])   // off its queues, still counted in its group's batch
        dropped.requests[id] = nil
        let c = dropped.report().requests
        #expect(c.arrived == c.completed + c.failed + c.rejected + c.inFlight, "the derived count still adds up")
        let problems = dropped.inFlightProblems()
        #expect(problems.contains { $0.hasPrefix("walked ") }, "\(problems)")
        #expect(problems.contains { $0.contains("decode-0/dp\(g): running") }, "\(problems)")

        // Forgotten in a queue: the engine still holds it, but no structure does.
        let forgotten = try engine()
        let leader = try #require(forgotten.instances.lazy.compactMap(\.prefill).first { $0.queuedRequests > 0 })
        let pg = try #require(leader.queues.firstIndex { !$0.isEmpty })
        let head = leader.loseQueueHeadForTesting(group: pg)
        let queued = try #require(head)
        #expect(forgotten.inFlightProblems().contains { $0.contains("request \(queued) ") && $0.contains("sits in no queue") })

        // Counted twice: in a prefill queue and in a decode TE's transfer queue.
        let twice = try engine()
        twice.instances[d].decode!.enqueue(queued)   // same seed: queued there too
        #expect(twice.inFlightProblems().contains { $0.contains("request \(queued) is in") }, "\(twice.inFlightProblems())")
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
