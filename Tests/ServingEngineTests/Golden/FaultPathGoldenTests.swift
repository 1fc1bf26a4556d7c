import Foundation
import PodModel
import SimKit
import Testing
import XDSTestSupport

@testable import ServingEngine

/// Goldens for the recovery and drain paths the first set left uncovered: a drain that migrates
/// decode requests, each recovery policy under one mix of every fault kind, kill-prefill-to-
/// preserve-decode, and a prefill TE waiting for repair. All run on `faultPod` (prefill-0 on
/// node 0, prefill-1 on node 1, decode on nodes 2–4, node 5 the spare pool). Each case also
/// asserts that its path was taken, and records the events that show it (`witnesses`), so a
/// refactor that silently skips the path fails here even if the rest matched.
extension GoldenTests {
    /// Applies `script` (time, command line) in time order, running the engine up to each time.
    static func play(_ engine: ServingEngine, _ script: [(SimTime, String)],
                     sourceLocation: SourceLocation = #_sourceLocation) throws {
        for (time, line) in script {
            engine.run(until: time)
            guard case .success(let command) = OperatorCommand.parse(line) else {
                Issue.record("'\(line)' does not parse", sourceLocation: sourceLocation)
                continue
            }
            let reply = engine.apply(command)
            #expect(reply.accepted, "\(line): \(reply.message)", sourceLocation: sourceLocation)
        }
    }

    /// Every fault kind plus a drain, 5 s apart so each is detected and (even under
    /// restart-world, 2 s decode + 4 s prefill) recovered before the next lands: glitch; HBM
    /// error on decode's first KV die; a 2× straggler; the UB link prefill-0 → decode down;
    /// drain of prefill-1's node; decode NPU 21 (its experts' only replicas: no shrink); decode
    /// node 4 (shared-expert dies only: shrinkable); then undrain and heal all. Arrivals go on
    /// past the heal, so every restart under way ends inside the run.
    static let faultMixScript: [(SimTime, String)] = [
        (1, "fault glitch"), (6, "fault hbm die 32"), (11, "fault straggler die 50 slowdown 2"),
        (16, "fault link 0-16"), (21, "drain node 1"), (26, "fault npu 21"), (31, "fault node 4"),
        (36, "undrain node 1"), (40, "heal all"),
    ]

    @Test(arguments: RecoveryPolicies.names)
    func faultMixUnderEachRecoveryPolicy(policy: String) throws {
        let engine = try FaultTests.engine(rate: 10, limit: 440, maxOutput: 128) {
            $0.recoveryPolicy = policy
            $0.faults.componentRestartSeconds = 2
        }
        try Self.play(engine, Self.faultMixScript)
        #expect(engine.runToCompletion(limit: 3_600))
        FaultTests.expectSound(engine)
        FaultTests.expectEmpty(engine)
        let report = engine.report()
        #expect(report.faults.injected == 6 && report.faults.detected == 6 && report.faults.recovered == 6, "\(report.faults)")
        #expect(report.requests.arrived == 440)
        #expect(FaultTests.events(engine, .drain).contains { $0.contains("node 1 drained") })
        let recoveries = report.faultDetails.map(\.recovery)
        #expect(recoveries[2].contains("kept until healed"), "the straggler is observed: \(recoveries[2])")
        switch policy {
        case "fine-grained":
            #expect(recoveries[0].contains("rolled back and redid"), "\(recoveries[0])")
            #expect(recoveries[1].contains("masked on die 32"), "\(recoveries[1])")
            #expect(recoveries[3].contains("RoCE"), "\(recoveries[3])")
            #expect(recoveries[4].contains("spare NPU 40"), "\(recoveries[4])")
            #expect(recoveries[5].contains("vertical shrink of decode-0"), "\(recoveries[5])")
            #expect(report.faultDetails.reduce(0) { $0 + $1.requestsReprefilled } > 0)
        case "pd-failover":
            #expect(recoveries[0].contains("decode-0 restarts after a network glitch"), "\(recoveries[0])")
            #expect(recoveries[1].contains("decode-0 restarts after an HBM fault"), "\(recoveries[1])")
            #expect(recoveries[3].contains("RoCE"), "\(recoveries[3])")
            #expect(recoveries[4].contains("spare NPU 40"), "\(recoveries[4])")
            #expect(recoveries[5].contains("vertical shrink of decode-0"), "\(recoveries[5])")
            #expect(report.faultDetails.reduce(0) { $0 + $1.requestsReprefilled } > 0)
        default:
            let restarts = [0, 1, 3, 4, 5].filter { recoveries[$0].contains("restart the world") }
            #expect(restarts.count == 5, "every hard fault restarts the world: \(recoveries)")
            #expect(report.faultDetails.reduce(0) { $0 + $1.requestsFailed } > 0)
        }
        try Self.check("fault-mix-\(policy)", engine) { [.drain, .undrain, .recovery].contains($0.kind) }
    }

    @Test func drainMigratesDecode() throws {
        let engine = try FaultTests.engine(rate: 40, limit: 100, maxOutput: 256) { $0.faults.migrateDecodeOnDrain = true }
        try Self.play(engine, [(2.5, "drain node 3"), (8, "undrain node 3")])
        let drain = try #require(FaultTests.events(engine, .drain).first)
        let migrated = try #require(drain.split(separator: ";").first { $0.contains("decode requests migrated") }
            .flatMap { Int($0.split(separator: " ")[0]) }, "\(drain)")
        #expect(migrated > 0)
        #expect(engine.runToCompletion(limit: 3_600))
        #expect(engine.report().requests.completed == 100)
        FaultTests.expectSound(engine)
        FaultTests.expectEmpty(engine)
        try Self.check("drain-migrates-decode", engine) { [.drain, .undrain].contains($0.kind) }
    }

    @Test func killPrefillToPreserveDecode() throws {
        let engine = try FaultTests.engine(rate: 30, limit: 100, maxOutput: 128) { $0.faults.killPrefillToPreserveDecode = true }
        // The spare pool (node 5) first, so NPU 21's replacement must come from a prefill TE.
        try Self.play(engine, [(2, "fault node 5"), (2.5, "fault npu 21")])
        engine.run(until: 8)
        let recovery = try #require(engine.report().faultDetails.last?.recovery)
        #expect(recovery.contains("kill prefill to preserve decode"), "\(recovery)")
        #expect(engine.cluster.npus(of: 1).count == 7, "prefill-1 gave an NPU to decode")
        #expect(engine.runToCompletion(limit: 3_600))
        FaultTests.expectSound(engine)
        FaultTests.expectEmpty(engine)
        try Self.check("kill-prefill-to-preserve-decode", engine) { $0.kind == .recovery }
    }

    @Test func prefillWaitsForRepair() throws {
        // Arrivals until 10 s, so some come after the heal.
        let engine = try FaultTests.engine(rate: 20, limit: 200, maxOutput: 128)
        // No spares (node 5 dead): prefill-0 loses NPU 3 and stays out until the heal.
        try Self.play(engine, [(1, "fault node 5"), (2, "fault npu 3")])
        engine.run(until: 5.5)
        #expect(engine.faults.outage(of: 0) == .awaitingRepair)
        let recovery = try #require(engine.report().faultDetails.last?.recovery)
        #expect(recovery.contains("out of service until repaired"), "\(recovery)")
        let queried = engine.kvStore.groupManagers(of: 0).map(\.stats.queriedTokens)
        #expect(engine.apply(.heal(faultID: 2)).accepted)
        #expect(engine.faults.outage(of: 0) == nil, "the repair returns prefill-0")
        engine.run(until: 10)
        #expect(engine.kvStore.groupManagers(of: 0).map(\.stats.queriedTokens) != queried, "prefill-0 takes work again")
        #expect(engine.runToCompletion(limit: 3_600))
        FaultTests.expectSound(engine)
        FaultTests.expectEmpty(engine)
        try Self.check("prefill-waits-for-repair", engine) { [.recovery, .heal].contains($0.kind) }
    }
}
