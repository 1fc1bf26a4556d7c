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

    @Test func toyPodCompletesEverythingAndConserves() throws {
        let engine = try Self.synthetic(TestDeployments.toyPod, rate: 20, limit: 200)
        var t = 0.0
        while !engine.runToCompletion(limit: t) {
            t += 5
            #expect(engine.audit() == [], "at \(t) s")
            let c = engine.report().requests
            #expect(c.arrived == c.completed + c.failed + c.rejected + c.inFlight)
            if t > 3_600 { break }
        }
        let report = engine.report()
        #expect(report.requests.arrived == 200)
        #expect(report.requests.completed == 200)
        #expect(report.requests.inFlight == 0)
        #expect(engine.audit() == [])
        #expect(report.latencyMs.ttft.p50 > 0)
        #expect(report.latencyMs.tpot.p50 > 0)
        #expect(report.tokens.generated > 0)
    }
}

@Suite struct ServingEngineProbe {
    @Test(.enabled(if: ProcessInfo.processInfo.environment["XDS_PROBE"] != nil)) func probe() throws {
        let engine = try ServingEngineTests.synthetic(TestDeployments.toyPod, rate: 20, limit: 200)
        engine.runToCompletion(limit: 3_600)
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        print(String(decoding: try enc.encode(engine.report()), as: UTF8.self))
    }
}
