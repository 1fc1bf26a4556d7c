import PodModel
import Testing
import XDSTestSupport
@testable import ServingEngine

/// Issue 5 in the engine: skewed routing slows the decode barrier, one rebalance fixes most of it.
@Suite struct ExpertEngineTests {
    /// A decode-heavy synthetic load on superpod with EPLB off (static placement).
    func engine(eplb: EPLBMode, seed: UInt64 = 1) throws -> ServingEngine {
        var config = EngineConfiguration(deployment: .superpod, seed: seed)
        config.eplb = eplb
        config.trafficMix = .reasoning
        config.syntheticRate = 150
        return try ServingEngine(configuration: config)
    }

    @Test func oneRebalanceCutsImbalanceAndStepTime() throws {
        let e = try engine(eplb: .off)
        e.run(until: 40)
        let before = e.snapshot()
        let decode = try #require(before.instances.first { $0.kind == "decode" })
        #expect(before.experts.imbalance >= 2, "imbalance \(before.experts.imbalance)")
        let reply = e.apply(.rebalance)
        #expect(reply.accepted, "\(reply.message)")
        e.run(until: 41)
        let mid = e.snapshot()
        #expect(mid.experts.rebalances >= 1 && !mid.experts.rebalanceInProgress)
        #expect(mid.experts.imbalance <= before.experts.imbalance * 0.6,
                "\(before.experts.imbalance) → \(mid.experts.imbalance)")
        #expect(mid.events.contains { $0.kind == .rebalance && $0.message.contains("done") })
        // The same run's decode step gets faster at a similar batch.
        let after = try #require(mid.instances.first { $0.kind == "decode" })
        let runningChange = Double(after.running) / Double(max(1, decode.running))
        #expect(after.stepMs < decode.stepMs * runningChange, "step \(decode.stepMs) ms → \(after.stepMs) ms")
        e.run(until: 60)
        let report = e.report()
        #expect(report.requests.arrived == report.requests.completed + report.requests.failed
                + report.requests.rejected + report.requests.inFlight)
        #expect(report.experts.rebalances >= 1)
        #expect(e.audit() == [])
    }

    @Test func perfectIsTheLowerBoundAndOnSitsBetween() throws {
        var tpot: [EPLBMode: Double] = [:]
        var imbalance: [EPLBMode: Double] = [:]
        for mode in EPLBMode.allCases {
            let e = try engine(eplb: mode)
            e.run(until: 40)
            let decode = try #require(e.snapshot().instances.first { $0.kind == "decode" })
            tpot[mode] = decode.stepMs
            imbalance[mode] = e.report().experts.imbalance
        }
        #expect(imbalance[.perfect] == 1)
        #expect(imbalance[.perfect]! < imbalance[.on]! && imbalance[.on]! < imbalance[.off]!)
        #expect(tpot[.perfect]! <= tpot[.on]! && tpot[.on]! <= tpot[.off]!, "\(tpot)")
    }

    @Test func rebalancingRunsAreDeterministic() throws {
        func run() throws -> RunReport {
            let e = try engine(eplb: .on, seed: 7)
            e.run(until: 30)
            _ = e.apply(.rebalance)
            e.run(until: 70)
            return e.report()
        }
        #expect(try run() == run())
    }
}
