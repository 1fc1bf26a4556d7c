import PodModel
import SimKit
import Testing
import XDSTestSupport

@testable import ServingEngine

/// Recovery around TEs that scaling retired, several TEs restarting at once, and TEs out until
/// repaired coming back (found by a hostile review: retired TEs were "restarted", requests were
/// counted re-prefilled and then failed by the same glitch, and a repaired TE returned unseen).
@Suite(.timeLimit(.minutes(5))) struct RetiredAndRepairTests {
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
