import PodModel
import SimKit
import Testing
import XDSTestSupport

@testable import ServingEngine

/// Small engines and the invariants every fault test checks.
enum FaultTests {
    /// `faultPod` under a short synthetic load; short outputs keep debug runs fast.
    static func engine(rate: Double = 20, limit: Int = 80, seed: UInt64 = 1, maxOutput: Int = 256,
                       deployment: Deployment = TestDeployments.faultPod,
                       configure: (inout EngineConfiguration) -> Void = { _ in }) throws -> ServingEngine {
        var config = EngineConfiguration(deployment: deployment, seed: seed, syntheticRate: rate)
        config.eventCapacity = 100_000
        config.faults.componentRestartSeconds = 5
        configure(&config)
        var synthetic = SyntheticWorkload.Configuration(ratePerSecond: rate)
        synthetic.maxRequests = limit
        synthetic.maxOutputTokens = maxOutput
        return try ServingEngine(configuration: config, workload: SyntheticWorkload(seed: seed, configuration: synthetic))
    }

    /// Nothing lost: block managers consistent, `arrived == completed + failed + rejected +
    /// in_flight`, and every failed or rejected request has a reason in the event log.
    static func expectSound(_ engine: ServingEngine, _ note: String = "", blocks: Bool = true,
                            sourceLocation: SourceLocation = #_sourceLocation) {
        // The block audit walks every KV block: the soak runs it at checkpoints only.
        if blocks { #expect(engine.audit() == [], "\(note)", sourceLocation: sourceLocation) }
        #expect(engine.telemetry.inFlight == engine.requests.count, "\(note)", sourceLocation: sourceLocation)
        let c = engine.report().requests
        #expect(c.arrived == c.completed + c.failed + c.rejected + c.inFlight, "\(note)", sourceLocation: sourceLocation)
        let events = engine.recentEvents()
        let failed = events.filter { $0.kind == .requestFailed }
        let rejected = events.filter { $0.kind == .requestRejected }
        #expect(failed.count == c.failed, "\(note): failed requests without an event", sourceLocation: sourceLocation)
        #expect(rejected.count == c.rejected, "\(note)", sourceLocation: sourceLocation)
        for event in failed + rejected {
            let reason = event.message.split(separator: ":", maxSplits: 1).last.map(String.init) ?? ""
            #expect(reason.filter { $0 != " " }.count > 3, "\(note): \(event.message)",
                    sourceLocation: sourceLocation)
        }
    }

    /// After everything has left: no KV held anywhere but cached prefixes.
    static func expectEmpty(_ engine: ServingEngine, _ note: String = "",
                            sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(engine.report().requests.inFlight == 0, "\(note)", sourceLocation: sourceLocation)
        for instance in engine.instances {
            for (g, group) in instance.dp.enumerated() {
                #expect(group.kv.liveRequests == 0 && group.slots == 0 && group.running == 0
                            && group.prefillQueue.isEmpty && group.queuedTokens == 0,
                        "\(note): \(instance.name)/dp\(g) still holds work", sourceLocation: sourceLocation)
            }
            #expect(instance.waiting == 0 && instance.transferQueue.isEmpty, "\(note)", sourceLocation: sourceLocation)
        }
    }

    static func events(_ engine: ServingEngine, _ kind: EngineEvent.Kind) -> [String] {
        engine.recentEvents().filter { $0.kind == kind }.map(\.message)
    }

    static func decodeIndex(_ engine: ServingEngine) -> Int {
        engine.instances.firstIndex { $0.role == .decode }!
    }
}
