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
        // Uniform expert traffic: skewed popularity costs a third of a second per engine in debug.
        config.expertSkew = false
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
        for problem in problems(engine, note, blocks: blocks) { Issue.record("\(problem)", sourceLocation: sourceLocation) }
    }

    /// The same checks as text (for simulations run off the test pool, asserted afterwards).
    static func problems(_ engine: ServingEngine, _ note: String = "", blocks: Bool = true) -> [String] {
        // The block audit walks every KV block: the soak runs it at checkpoints only.
        var found = blocks ? engine.audit().map { "\(note): \($0)" } : []
        if engine.telemetry.inFlight != engine.requests.count { found.append("\(note): in-flight count off") }
        let c = engine.report().requests
        if c.arrived != c.completed + c.failed + c.rejected + c.inFlight { found.append("\(note): not conserved: \(c)") }
        let events = engine.recentEvents()
        let failed = events.filter { $0.kind == .requestFailed || $0.kind == .requestCancelled }
        let rejected = events.filter { $0.kind == .requestRejected }
        if failed.count != c.failed { found.append("\(note): \(c.failed) failed but \(failed.count) failure events") }
        if rejected.count != c.rejected { found.append("\(note): \(c.rejected) rejected but \(rejected.count) events") }
        for event in failed + rejected {
            let reason = event.message.split(separator: ":", maxSplits: 1).last.map(String.init) ?? ""
            if reason.filter({ $0 != " " }).count <= 3 { found.append("\(note): no reason in '\(event.message)'") }
        }
        return found
    }

    /// After everything has left: no KV held anywhere but cached prefixes.
    static func expectEmpty(_ engine: ServingEngine, _ note: String = "",
                            sourceLocation: SourceLocation = #_sourceLocation) {
        for problem in leftovers(engine, note) { Issue.record("\(problem)", sourceLocation: sourceLocation) }
    }

    static func leftovers(_ engine: ServingEngine, _ note: String = "") -> [String] {
        var found: [String] = []
        if engine.report().requests.inFlight != 0 { found.append("\(note): requests in flight") }
        for instance in engine.instances {
            for (g, group) in instance.dp.enumerated() where group.kv.liveRequests != 0 || group.slots != 0
                || group.running != 0 || !group.prefillQueue.isEmpty || group.queuedTokens != 0 {
                found.append("\(note): \(instance.name)/dp\(g) still holds work")
            }
            if instance.waiting != 0 || !instance.transferQueue.isEmpty { found.append("\(note): \(instance.name) has waiting work") }
        }
        return found
    }

    static func events(_ engine: ServingEngine, _ kind: EngineEvent.Kind) -> [String] {
        engine.recentEvents().filter { $0.kind == kind }.map(\.message)
    }

    static func decodeIndex(_ engine: ServingEngine) -> Int {
        engine.instances.firstIndex { $0.role == .decode }!
    }
}
