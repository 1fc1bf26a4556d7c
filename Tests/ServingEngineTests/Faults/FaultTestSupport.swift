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

    /// Nothing lost: block managers consistent, the requests found by walking every queue,
    /// channel and batch (``ServingEngine/inFlightCensus()``) equal `arrived − completed − failed
    /// − rejected` and sit where their state says, and every failed or rejected request has a
    /// reason in the event log.
    static func expectSound(_ engine: ServingEngine, _ note: String = "", blocks: Bool = true,
                            sourceLocation: SourceLocation = #_sourceLocation) {
        for problem in problems(engine, note, blocks: blocks) { Issue.record("\(problem)", sourceLocation: sourceLocation) }
    }

    /// The same checks as text (for simulations run off the test pool, asserted afterwards).
    static func problems(_ engine: ServingEngine, _ note: String = "", blocks: Bool = true) -> [String] {
        // The block audit walks every KV block: the soak runs it at checkpoints only.
        var found = blocks ? engine.audit().map { "\(note): \($0)" } : []
        // Walked, not derived: the report's in_flight is arrived − completed − failed − rejected.
        found += engine.inFlightProblems().map { "\(note): \($0)" }
        let c = engine.report().requests
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
        let census = engine.inFlightCensus()
        if census.total != 0 || !engine.requests.isEmpty { found.append("\(note): requests in flight: \(census)") }
        for (te, instance) in engine.instances.enumerated() {
            for g in instance.groups where engine.kvStore.liveRequests(GroupRef(te: te, group: g)) != 0 || (instance.decode?.slots[g] ?? 0) != 0
                || (instance.decode?.batches.running[g] ?? 0) != 0 || !(instance.prefill?.queues[g].isEmpty ?? true)
                || (instance.prefill?.queuedTokens[g] ?? 0) != 0 {
                found.append("\(note): \(instance.name)/dp\(g) still holds work")
            }
            if instance.waiting != 0 || (instance.decode?.hasIncoming ?? false) { found.append("\(note): \(instance.name) has waiting work") }
        }
        return found
    }

    /// Fault `kind` (0…5: die, NPU, node, HBM, glitch, straggler) anywhere on `pod`, as the
    /// command soaks draw it after drawing the kind.
    static func randomFault(kind: Int, _ random: inout RandomStream, pod: PodTopology) -> OperatorCommand {
        let dies = pod.dieCount, npus = pod.npuCount, nodes = pod.nodes
        switch kind {
        case 0: return .faultDie(random.int(in: 0...(dies - 1)))
        case 1: return .faultNPU(random.int(in: 0...(npus - 1)))
        case 2: return .faultNode(random.int(in: 0...(nodes - 1)))
        case 3: return .faultHBM(die: random.int(in: 0...(dies - 1)))
        case 4: return .faultGlitch
        default: return .faultStraggler(die: random.int(in: 0...(dies - 1)), slowdown: 2)
        }
    }

    /// The soaks' wind-down: the autoscaler off, every fault healed and node undrained, then the
    /// engine run until everything has left (restarts under way finish on their own time); what
    /// is stuck or left behind, with the invariants at the end.
    static func windDown(_ engine: ServingEngine, _ note: String) -> [String] {
        var problems: [String] = []
        _ = engine.apply(.autoscale("off"))
        if engine.faults.activeCount > 0 { _ = engine.apply(.healAll) }
        for node in engine.drainedNodes.sorted() { _ = engine.apply(.undrain(node: node)) }
        engine.run(until: engine.now + 8)
        if !engine.runToCompletion(limit: 900) {
            problems.append("\(note): work stuck: \(engine.report().requests) \(engine.faults.outages) \(engine.inFlightCensus())")
        }
        problems += Self.problems(engine, "\(note) at the end")
        problems += leftovers(engine, note)
        return problems
    }

    static func events(_ engine: ServingEngine, _ kind: EngineEvent.Kind) -> [String] {
        engine.recentEvents().filter { $0.kind == kind }.map(\.message)
    }

    static func decodeIndex(_ engine: ServingEngine, sourceLocation: SourceLocation = #_sourceLocation) throws -> Int {
        try #require(engine.instances.firstIndex { $0.role == .decode }, sourceLocation: sourceLocation)
    }
}
