import PodModel
import SimKit
import Testing
import XDSTestSupport

@testable import ServingEngine

/// Recovery around TEs that scaling retired, several TEs restarting at once, and TEs out until
/// repaired coming back (found by a hostile review: retired TEs were "restarted", requests were
/// counted re-prefilled and then failed by the same glitch, and a repaired TE returned unseen).
@Suite(.timeLimit(.minutes(10))) struct RetiredAndRepairTests {
    /// Four colocated TEs scaled in to two, run until the two scaled in are retired.
    static func scaledIn(policy: String) throws -> (ServingEngine, retired: [Int]) {
        var config = EngineConfiguration(deployment: try Deployment.resolve("colocated:4:llama-2-7b:nvidia-a100:tp1"),
                                         seed: 1, syntheticRate: 8)
        config.eventCapacity = 100_000
        config.recoveryPolicy = policy
        var synthetic = SyntheticWorkload.Configuration(ratePerSecond: 8)
        synthetic.maxOutputTokens = 64
        let engine = try ServingEngine(configuration: config, workload: SyntheticWorkload(seed: 1, configuration: synthetic))
        engine.run(until: 5)
        #expect(engine.apply(.scale(role: .colocated, change: .by(-2), from: nil)).accepted)
        engine.run(until: 60)
        let retired = engine.instances.indices.filter { engine.isRetired($0) }
        #expect(retired.count == 2, "both scaled-in TEs finished their work and gave their NPUs back")
        return (engine, retired)
    }

    @Test(arguments: ["pd-failover", "restart-world"])
    func aRestartLeavesRetiredTEsAlone(policy: String) throws {
        let (engine, retired) = try Self.scaledIn(policy: policy)
        let inFlight = engine.requests.count
        #expect(inFlight > 0)
        #expect(engine.apply(.faultGlitch).accepted)
        for te in retired {
            #expect(!engine.faults.hasOutage(te), "\(engine.instances[te].name) holds no hardware; nothing restarts")
        }
        let serving = engine.instances.indices.filter { !retired.contains($0) }
        #expect(serving.allSatisfy(engine.faults.hasOutage), "every serving TE restarts")
        let recovery = FaultTests.events(engine, .recovery)
        for te in retired { #expect(!recovery.contains { $0.contains(engine.instances[te].name) }, "\(recovery)") }
        // Every colocated TE restarts at once: nothing can take the requests, and none is
        // counted re-prefilled before failing on the next TE's restart.
        let record = try #require(engine.faults.record(1))
        #expect(record.requestsReprefilled == 0 && record.requestsFailed == inFlight,
                "re-prefilled \(record.requestsReprefilled), failed \(record.requestsFailed) of \(inFlight)")
        // The restart ends and the fault is recovered (restart-world waited on the last TE of
        // the layout, a retired one that never returns).
        engine.run(until: 60 + 2 * engine.configuration.faults.componentRestartSeconds + 10)
        #expect(engine.faults.record(1)?.recoveredAt != nil, "\(recovery)")
        FaultTests.expectSound(engine)
    }

    /// Restart-the-world is recovered when the last prefill TE returns. Scaling that TE in during
    /// the restart (it holds nothing, so it retires at the next check) left the fault waiting
    /// for a return that never comes: never recovered, however long the run, and `heal` could
    /// not close it either (found with `scale prefill -1` four seconds into a world restart).
    @Test func aTEScaledInDuringAWorldRestartLeavesTheRecoveryToTheOthers() throws {
        // Light load: the prefill TEs are idle when the world restarts (a TE caught mid-step
        // finishes its restart before it can retire, and then nothing waits for it).
        let engine = try FaultTests.engine(rate: 0.5, limit: 20) { $0.recoveryPolicy = "restart-world" }
        let prefill = engine.instances.indices.filter { engine.instances[$0].role == .prefill }
        engine.run(until: 2)
        #expect(engine.apply(.faultGlitch).accepted)
        engine.run(until: 2.5)
        #expect(prefill.allSatisfy(engine.faults.hasOutage), "the world restarts")
        try #require(!engine.instances[try #require(prefill.last)].stepping)
        let reply = engine.apply(.scale(role: .prefill, change: .by(-1), from: nil))
        #expect(reply.accepted, "\(reply.message)")
        engine.run(until: 4)
        #expect(engine.isRetired(try #require(prefill.last)), "a restarting TE holds nothing: it retires at the next check")
        let restart = engine.configuration.faults.componentRestartSeconds
        engine.run(until: 2 + 2 * restart + 5)
        let record = try #require(engine.faults.record(1))
        let recovered = try #require(record.recoveredAt, "\(FaultTests.events(engine, .recovery))")
        // The world is back when the prefill TE left in it returns, 2 × the restart after detection.
        let detected = try #require(record.detectedAt)
        #expect(abs(recovered - (detected + 2 * restart)) < 1e-9, "recovered at \(recovered), detected at \(detected)")
        #expect(engine.report().faults.recovered == 1)
        FaultTests.expectSound(engine)
    }

    /// A TE restarting on its own (pd-failover) and scaled in before it returns: nothing is left
    /// to wait for, so its fault is recovered when the TE leaves the layout, and says so.
    @Test func aRestartingTEScaledInEndsItsOwnRecovery() throws {
        let engine = try FaultTests.engine(rate: 0.5, limit: 20) { $0.recoveryPolicy = "pd-failover" }
        let prefill = engine.instances.indices.filter { engine.instances[$0].role == .prefill }
        let last = try #require(prefill.last)
        engine.run(until: 2)
        #expect(engine.apply(.faultDie(engine.cluster.dies(of: last)[0])).accepted)
        engine.run(until: 7)
        guard case .restarting = engine.faults.outage(of: last) else {
            Issue.record("pd-failover restarts the touched prefill TE: \(String(describing: engine.faults.outage(of: last)))")
            return
        }
        try #require(!engine.instances[last].stepping, "idle when its die died")
        #expect(engine.faults.record(1)?.recoveredAt == nil)
        #expect(engine.apply(.scale(role: .prefill, change: .by(-1), from: nil)).accepted)
        engine.run(until: 8.5)
        #expect(engine.isRetired(last))
        let record = try #require(engine.faults.record(1))
        #expect(record.recoveredAt != nil && record.recoveredAt! <= 8.5, "\(FaultTests.events(engine, .recovery))")
        #expect(FaultTests.events(engine, .recovery).contains { $0.hasPrefix("fault 1 recovered") && $0.contains("scaled in") },
                "\(FaultTests.events(engine, .recovery))")
        engine.run(until: 30)
        #expect(engine.report().faults.recovered == 1)
        FaultTests.expectSound(engine)
    }

    /// A TE out until repaired (no spare to fork onto) says when it is back.
    @Test func aTERepairedByHealSaysItIsBackInService() throws {
        let engine = try FaultTests.engine(rate: 20, limit: 200)
        // Take every spare first so the lost prefill TE cannot fork onto one.
        let spares = engine.spareNPUs()
        for npu in spares { #expect(engine.apply(.faultNPU(npu)).accepted) }
        let npu = engine.cluster.npus(of: 0)[0]
        #expect(engine.apply(.faultNPU(npu)).accepted)
        engine.run(until: 10)
        #expect(engine.faults.outage(of: 0) == .awaitingRepair)
        #expect(engine.apply(.healAll).accepted)
        #expect(!engine.faults.hasOutage(0))
        let back = FaultTests.events(engine, .recovery).filter { $0.contains("back in service") }
        #expect(back == ["fault \(spares.count + 1): \(engine.instances[0].name) back in service (its dies repaired)"], "\(back)")
        FaultTests.expectSound(engine)
    }

    /// A straggler on a die no TE uses is found by the control plane; its record says why it
    /// is kept (nothing runs there now), not that "the policy does not isolate it".
    @Test func aStragglerOnAnUnusedDieSaysWhyItIsKept() throws {
        let engine = try FaultTests.engine(rate: 20, limit: 100)
        let die = try #require(engine.spareNPUs().first) * engine.cluster.diesPerNPU
        #expect(engine.apply(.faultStraggler(die: die, slowdown: 3)).accepted)
        engine.run(until: 3)
        let record = try #require(engine.faults.record(1))
        #expect(record.detection == "control plane: no TE uses die \(die)")
        #expect(record.recovery.contains("nothing runs on the die now"), "\(record.recovery)")
    }
}

/// A second fault on a TE in the middle of a restart waits for the restart (it cut a 300 s
/// decode restart to an 8 s NPU-fork, so that more faults gave better service).
@Suite(.timeLimit(.minutes(10))) struct FaultDuringRestartTests {
    @Test func aDeadNPUOnARestartingDecodeTEWaitsForTheRestart() throws {
        let engine = try FaultTests.engine(rate: 20, limit: 200) {
            $0.recoveryPolicy = "pd-failover"
            $0.faults.componentRestartSeconds = 60
        }
        let d = try FaultTests.decodeIndex(engine)
        engine.run(until: 2)
        let hbmDie = engine.cluster.dies(of: d, group: 0)[0]
        #expect(engine.apply(.faultHBM(die: hbmDie)).accepted)
        engine.run(until: 4)
        guard case .restarting(let until) = engine.faults.outage(of: d) else {
            Issue.record("pd-failover restarts the decode TE on an HBM fault: \(String(describing: engine.faults.outage(of: d)))")
            return
        }
        let npu = engine.cluster.npus(of: d)[3]
        #expect(engine.apply(.faultNPU(npu)).accepted)
        engine.run(until: 10)
        #expect(engine.faults.outage(of: d) == .restarting(until: until), "the restart keeps its end")
        #expect(engine.faults.record(2)?.recoveredAt == nil)
        #expect(FaultTests.events(engine, .recovery).contains { $0.contains("is already restarting") })
        engine.run(until: until + 1)
        #expect(!engine.faults.hasOutage(d))
        #expect(engine.faults.record(1)?.recoveredAt == until && engine.faults.record(2)?.recoveredAt == until)
        #expect(engine.runToCompletion(limit: 3_600))
        FaultTests.expectSound(engine)
    }
}

/// The detection line of faults found together.
@Suite(.timeLimit(.minutes(10))) struct DetectionLineTests {
    /// `fault die D` then `fault npu N` over the same die, found in one heartbeat round: the
    /// device check named die D twice ("dies 0, 0, 1, 2, …").
    @Test func aDieSharedByTwoFaultsIsNamedOnce() throws {
        let engine = try FaultTests.engine(rate: 20, limit: 200)
        let decode = try FaultTests.decodeIndex(engine)
        let npu = engine.cluster.npus(of: decode)[0]
        let die = npu * engine.cluster.diesPerNPU
        engine.run(until: 1)
        #expect(engine.apply(.faultDie(die)).accepted)
        #expect(engine.apply(.faultNPU(npu)).accepted)
        engine.run(until: 6)
        let line = try #require(FaultTests.events(engine, .faultDetected).first { $0.hasPrefix("faults 1, 2 detected") })
        let listed = try #require(line.components(separatedBy: "device check: ").last)
        #expect(listed == "dies \((0..<engine.cluster.diesPerNPU).map { String(die + $0) }.joined(separator: ", ")) dead", "\(line)")
    }
}

extension DetectionLineTests {
    /// A die lost by a TE in the middle of a restart is found with no DP master running: the
    /// line said "0 DP masters silent for 3 heartbeats".
    @Test func aRestartingTEIsNotSaidToHaveSilentMasters() throws {
        let engine = try FaultTests.engine(rate: 20, limit: 200) { $0.recoveryPolicy = "restart-world" }
        let decode = try FaultTests.decodeIndex(engine)
        engine.run(until: 1)
        #expect(engine.apply(.faultGlitch).accepted)
        engine.run(until: 1.5)
        #expect(engine.faults.hasOutage(decode), "the world restarts")
        #expect(engine.apply(.faultDie(engine.cluster.dies(of: decode)[0])).accepted)
        engine.run(until: 6)
        let line = try #require(FaultTests.events(engine, .faultDetected).first { $0.hasPrefix("fault 2 detected") })
        #expect(!line.contains("0 DP masters"), "\(line)")
        #expect(line.contains("\(engine.instances[decode].name): out of service (restarting), no DP master running; device check: "),
                "\(line)")
        // The report's detection says the same (it said "DP masters silent for 3 heartbeats
        // (stuck in a collective)" while the event log said "out of service").
        let detection = engine.report().faultDetails[1].detection
        #expect(!detection.contains("silent") && !detection.contains("collective"), "\(detection)")
        #expect(detection == "\(engine.instances[decode].name): out of service (restarting), no DP master running; "
            + "device check finds the dead dies", "\(detection)")
    }
}
