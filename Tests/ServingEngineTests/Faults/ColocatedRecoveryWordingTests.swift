import PodModel
import Testing
@testable import ServingEngine

/// A colocated pod has no prefill TE: a colocated TE that loses an NPU with no spare to replace
/// it goes out until repaired, and its recovery line said its requests were "re-queued on the
/// other prefill TEs" (repro: `xds run --deployment colocated:4:llama-2-7b:nvidia-a100:tp1`,
/// `fault npu 0` under load). It names the colocated TEs, as the pod's refusals do.
@Suite struct ColocatedRecoveryWordingTests {
    @Test func aColocatedTEOutUntilRepairedSaysItsRequestsWentToTheOtherColocatedTEs() throws {
        var config = EngineConfiguration(deployment: try Deployment.resolve("colocated:4:llama-2-7b:nvidia-a100:tp1"))
        config.syntheticRate = 20
        let engine = try ServingEngine(configuration: config)
        engine.run(until: 5)
        // NPUs 4–7 of the node are the spare pool: dead, there is no spare to fork onto.
        for spare in 4...7 { #expect(engine.apply(.faultNPU(spare)).accepted) }
        #expect(engine.apply(.faultNPU(0)).accepted)
        engine.run(until: 15)
        let lines = engine.recentEvents().map(\.message)
        #expect(lines.contains { $0.contains("out of service until repaired") && $0.contains("re-queued on the other colocated TEs") },
                "\(lines.filter { $0.contains("re-queued") })")
        #expect(!lines.contains { $0.contains("prefill TE") }, "\(lines.filter { $0.contains("prefill TE") })")
        FaultTests.expectSound(engine)
    }
}
