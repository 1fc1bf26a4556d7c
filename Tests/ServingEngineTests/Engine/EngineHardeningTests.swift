import Foundation
import PodModel
import SimKit
import Testing
import XDSTestSupport

@testable import ServingEngine

/// Hostile-but-accepted values (issue 10): nothing in the engine traps, no accepted command stops
/// its clock, and requests that fail carry their reason into the report.
@Suite(.timeLimit(.minutes(10))) struct EngineHardeningTests {
    static func engine(_ requests: [RequestSpec], deployment: Deployment = TestDeployments.toyPod,
                       configure: (inout EngineConfiguration) -> Void = { _ in }) throws -> ServingEngine {
        var config = EngineConfiguration(deployment: deployment, syntheticRate: 0)
        configure(&config)
        return try ServingEngine(configuration: config, workload: FixedWorkload(requests))
    }

    static func expectConserved(_ engine: ServingEngine) {
        let r = engine.report().requests
        #expect(r.arrived == r.completed + r.failed + r.rejected + r.inFlight)
        #expect(r.failureReasons.values.reduce(0, +) == r.failed)
        #expect(r.rejectionReasons.values.reduce(0, +) == r.rejected)
        #expect(engine.audit() == [])
    }

    @Test func hugeAndDegenerateTokenCountsFailWithAReason() throws {
        let counts: [(Int, Int)] = [(.max, .max), (.max, 10), (10, .max), (.max / 2, .max / 2), (0, 10), (-5, 10),
                                    (10, 0), (10, -7), (1 << 62, 1), (1_000, 100)]
        let requests = counts.enumerated().map { i, c in
            RequestSpec(id: i, arrival: Double(i) * 0.1, promptTokens: c.0, outputTokens: c.1,
                        prefixHashes: [1, 2, 3], prefixBlockTokens: 512)
        }
        let engine = try Self.engine(requests)
        #expect(engine.runToCompletion(limit: 3_600))
        let report = engine.report()
        #expect(report.requests.completed == 3, "\(report.requests)")  // (10, 0), (10, -7), (1000, 100)
        #expect(report.requests.failed == 7)
        #expect(report.requests.failureReasons["empty prompt"] == 2)
        #expect(report.requests.failureReasons.keys.contains { $0.hasPrefix("prompt exceeds the") })
        #expect(report.requests.failureReasons.keys.contains { $0.hasPrefix("prompt + output exceed the") })
        #expect(report.tokens.prompt > 0)
        Self.expectConserved(engine)
    }

    @Test func externalRequestsWithHugeCountsAreAnswered() throws {
        let engine = try Self.engine([])
        let huge = engine.submitExternal(promptTokens: .max, maxTokens: .max)
        let big = engine.submitExternal(promptTokens: 100, maxTokens: .max)
        let negative = engine.submitExternal(promptTokens: -3, maxTokens: -3)
        #expect(engine.runToCompletion(limit: 600))
        let updates = engine.takeStreamUpdates()
        let refused = updates.contains { update in
            guard update.id == huge, case .failed(_, let status) = update.kind else { return false }
            return status == 400
        }
        #expect(refused)
        #expect(updates.contains { $0.id == big && $0.kind != .accepted })
        #expect(updates.contains { $0.id == negative })
        Self.expectConserved(engine)
    }

    @Test func hostileCommandsNeitherTrapNorStopTheClock() throws {
        var config = EngineConfiguration(deployment: TestDeployments.faultPod, syntheticRate: 20)
        config.eplb = .on
        let engine = try ServingEngine(configuration: config)
        engine.run(until: 2)
        let commands: [OperatorCommand] = [
            .faultLink(from: 0, to: 20, degrade: 1e300), .faultLink(from: 0, to: 20, degrade: 1e300),
            .faultLink(from: 1, to: 21, degrade: nil), .faultLink(from: 0, to: 1_000_000, degrade: 2),
            .faultStraggler(die: 40, slowdown: 1e300), .faultStraggler(die: 41, slowdown: .greatestFiniteMagnitude),
            .heal(faultID: 999), .heal(faultID: .max), .faultHBM(die: 34), .faultGlitch,
            .rate(requestsPerSecond: 1e300), .rate(requestsPerSecond: 1e-300), .rate(requestsPerSecond: 20),
            .speed(1e-300), .speed(1e300), .faultDie(.max), .faultNPU(.max), .faultNode(.max),
        ]
        for command in commands { _ = engine.apply(command) }
        for node in 0..<6 { _ = engine.apply(.drain(node: node)) }
        engine.run(until: 20)
        for node in 0..<6 { _ = engine.apply(.undrain(node: node)) }
        _ = engine.apply(.healAll)
        engine.run(until: 60)
        #expect(engine.now == 60)
        Self.expectConserved(engine)
        #expect(engine.report().faults.injected >= 6)
    }

    @Test func manyFaultsAreBounded() throws {
        let engine = try Self.engine([])
        var accepted = 0
        for i in 0..<(ServingEngine.maxActiveFaults + 50) {
            if engine.apply(.faultStraggler(die: i % 64, slowdown: 2)).accepted { accepted += 1 }
        }
        #expect(accepted == ServingEngine.maxActiveFaults)
        let refused = engine.apply(.faultGlitch)
        #expect(!refused.accepted && refused.message.contains("heal some first"))
        #expect(engine.apply(.healAll).accepted)
        #expect(engine.apply(.faultStraggler(die: 1, slowdown: 2)).accepted)
        engine.run(until: 30)
        #expect(engine.now == 30)
    }

    @Test func aRateTooHighForTheClockStillAdvances() throws {
        // Gaps below the clock's resolution: every arrival lands at the same instant.
        struct SameInstant: WorkloadSource {
            var id = 0
            mutating func next() -> RequestSpec? {
                defer { id += 1 }
                return RequestSpec(id: id, arrival: 1, promptTokens: 100, outputTokens: 5)
            }
        }
        var config = EngineConfiguration(deployment: TestDeployments.toyPod, syntheticRate: 0)
        config.maxWaitingPerPrefillInstance = 16
        let engine = try ServingEngine(configuration: config, workload: SameInstant())
        engine.run(until: 1 + 3e-6)
        #expect(engine.now == 1 + 3e-6)
        let arrived = engine.report().requests.arrived
        #expect(arrived >= 3 * ServingEngine.maxArrivalsPerInstant && arrived <= 5 * ServingEngine.maxArrivalsPerInstant)
        #expect(engine.report().requests.rejectionReasons.keys.contains { $0.contains("requests waiting") })
        Self.expectConserved(engine)
    }

    @Test func theConfigurationIsCheckedWithFieldAndRange() {
        let cases: [(String, (inout EngineConfiguration) -> Void)] = [
            ("syntheticRate", { $0.syntheticRate = .nan }),
            ("syntheticRate", { $0.syntheticRate = 1e300 }),
            // Just above 0: the next arrival would be ~3,000 years away (the command's rule).
            ("syntheticRate", { $0.syntheticRate = 1e-11 }),
            ("syntheticRate", { $0.syntheticRate = -1 }),
            ("arrivalCV", { $0.arrivalCV = 0 }),
            ("faults.heartbeatIntervalSeconds", { $0.faults.heartbeatIntervalSeconds = 1e-300 }),
            ("faults.missedHeartbeatsToDeclare", { $0.faults.missedHeartbeatsToDeclare = 0 }),
            ("snapshotInterval", { $0.snapshotInterval = .infinity }),
            ("kvBlockTokens", { $0.kvBlockTokens = 0 }),
            ("seriesCapacity", { $0.seriesCapacity = 0 }),
            // An SLO of 0 made the autoscaler's wait share NaN (it never scaled down); the CLI
            // refused it, the engine did not.
            ("sloTTFTMs", { $0.sloTTFTMs = 0 }),
            ("sloTTFTMs", { $0.sloTTFTMs = -0.0 }),
            ("sloTTFTMs", { $0.sloTTFTMs = .nan }),
            ("sloTTFTMs", { $0.sloTTFTMs = -5 }),
            ("sloTTFTMs", { $0.sloTTFTMs = .infinity }),
            ("sloTPOTMs", { $0.sloTPOTMs = 0 }),
            ("sloTPOTMs", { $0.sloTPOTMs = .nan }),
            ("sloTPOTMs", { $0.sloTPOTMs = -1 }),
            ("sloTPOTMs", { $0.sloTPOTMs = -.infinity }),
        ]
        for (field, change) in cases {
            do {
                _ = try Self.engine([], configure: change)
                Issue.record("\(field): accepted")
            } catch {
                #expect("\(error)".contains(field), "\(error)")
            }
        }
        // One line, naming the field and the range.
        do {
            _ = try Self.engine([], configure: { $0.sloTTFTMs = 0 })
            Issue.record("an SLO of 0 ms was accepted")
        } catch {
            #expect("\(error)" == "engine configuration: sloTTFTMs is 0.0; allowed above 0…1000000000000 ms")
        }
        // The smallest positive SLOs are taken.
        #expect((try? Self.engine([], configure: { $0.sloTTFTMs = 1e-3; $0.sloTPOTMs = 1e-3 })) != nil)
        // The rates the rule allows are taken: none, the least, the most.
        for rate in [0, CommandLimits.minNonzeroRate, ServingEngine.maxSyntheticRate] {
            #expect((try? Self.engine([], configure: { $0.syntheticRate = rate })) != nil, "rate \(rate)")
        }
    }

    @Test func aHugeKVLayoutIsRefusedNotAllocated() {
        do {
            let engine = try Self.engine([], deployment: .superpod) { $0.kvBlockTokens = 1 }
            Issue.record("a layout of \(engine.kvStore.blocksBuilt) 1-token blocks was accepted")
        } catch {
            #expect("\(error)".contains("blocks"), "\(error)")
        }
    }

    @Test func failureReasonsAreInTheJSONReportInKeyOrder() throws {
        let requests = [RequestSpec(id: 0, arrival: 0, promptTokens: 0, outputTokens: 1),
                        RequestSpec(id: 1, arrival: 0, promptTokens: .max, outputTokens: 1)]
        let engine = try Self.engine(requests)
        #expect(engine.runToCompletion(limit: 60))
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let data = try encoder.encode(engine.report())
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let counts = try #require(object["requests"] as? [String: Any])
        let reasons = try #require(counts["failure_reasons"] as? [String: Int])
        #expect(reasons.values.reduce(0, +) == 2)
        #expect(counts["rejection_reasons"] as? [String: Int] == [:])
        let text = String(decoding: data, as: UTF8.self)
        let empty = try #require(text.range(of: "empty prompt")), prompt = try #require(text.range(of: "prompt exceeds"))
        #expect(empty.lowerBound < prompt.lowerBound)
        // Round trip, and old reports without the maps still decode.
        #expect(try JSONDecoder().decode(RunReport.self, from: data) == engine.report())
        var old = object
        old["requests"] = ["arrived": 1, "completed": 1, "failed": 0, "rejected": 0, "in_flight": 0]
        let decoded = try JSONDecoder().decode(RunReport.self, from: JSONSerialization.data(withJSONObject: old))
        #expect(decoded.requests.failureReasons.isEmpty)
    }

    /// `context_cv` is written as null, never left out, and a decode batch without the key (a
    /// report written by hand or another tool) still decodes with it absent, as before the wrapper.
    @Test func decodeBatchWritesANullSpreadAndReadsAMissingOne() throws {
        let batch = RunReport.DecodeBatch(requestsPerDie: 2, meanContext: 100, contextCV: nil, stepMs: 5)
        let text = String(decoding: try JSONOutput.encoder().encode(batch), as: UTF8.self)
        #expect(text == #"{"context_cv":null,"mean_context":100,"requests_per_die":2,"step_ms":5}"#)
        #expect(try JSONDecoder().decode(RunReport.DecodeBatch.self, from: Data(text.utf8)) == batch)
        let without = #"{"mean_context":100,"requests_per_die":2,"step_ms":5}"#
        #expect(try JSONDecoder().decode(RunReport.DecodeBatch.self, from: Data(without.utf8)) == batch)
        let spread = RunReport.DecodeBatch(requestsPerDie: 2, meanContext: 100, contextCV: 0.5, stepMs: 5)
        #expect(try JSONDecoder().decode(RunReport.DecodeBatch.self, from: JSONOutput.encoder().encode(spread)) == spread)
    }

    @Test func prefixBlocksOfAnySizeAreRebasedWithoutATrap() {
        let keys: [UInt64] = [1, 2, 3, 4, 5]
        #expect(PrefixHashes.rebase(keys, fromBlockTokens: 512, toBlockTokens: 128).count == 20)
        #expect(PrefixHashes.rebase(keys, fromBlockTokens: 128, toBlockTokens: 512).count == 1)
        let odd = PrefixHashes.rebase(keys, fromBlockTokens: 512, toBlockTokens: 100)
        #expect(odd.count == 25)  // 2,560 tokens of known prefix in 100-token blocks
        #expect(Set(odd).count == odd.count)
        #expect(PrefixHashes.rebase(keys, fromBlockTokens: 100, toBlockTokens: 512).count == 0)
        #expect(PrefixHashes.rebase(keys, fromBlockTokens: 0, toBlockTokens: 128).isEmpty)
    }
}
