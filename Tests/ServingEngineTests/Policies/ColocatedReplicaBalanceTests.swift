import PodModel
import Testing

@testable import ServingEngine

/// `xds run --deployment colocated:2:llama-2-7b:nvidia-a100:tp1 --rate 2 --duration 120s` put
/// most requests on one replica (22 running beside 3 at one point): the JE's prefix-aware router
/// priced a replica by its queued prefill tokens alone, which a colocated replica clears in a
/// step or two, so the costs tied (or a cached prefix decided) and the lowest id took the
/// request while its decode batch, which sets TPOT, grew on one GPU. The TPOT p99 went over the
/// SLO with the other GPU half idle (round-robin on the same run stayed under it). The router
/// now counts a colocated replica's decode work too.
@Suite struct ColocatedReplicaBalanceTests {
    /// The run above under `routing` (nil: the default, prefix-aware).
    static func run(routing: String? = nil) throws -> (running: [Int], worst: Double, tpotP99: Double) {
        var config = EngineConfiguration(deployment: try Deployment.resolve("colocated:2:llama-2-7b:nvidia-a100:tp1"),
                                         seed: 1, syntheticRate: 2)
        if let routing { config.policies["je_routing"] = routing }
        let engine = try ServingEngine(configuration: config)
        var sums = [0, 0]
        var worst = 1.0
        for t in stride(from: 10.0, through: 120, by: 1) {
            engine.run(until: t)
            let running = engine.snapshot().instances.map(\.running)
            for i in running.indices { sums[i] += running[i] }
            if running.min()! >= 1 { worst = max(worst, Double(running.max()!) / Double(running.min()!)) }
            else if running.max()! >= 6 { worst = .infinity }
        }
        return (sums, worst, engine.report().latencyMs.tpot.p99)
    }

    @Test func prefixAwareKeepsColocatedReplicasBalanced() throws {
        let (sums, worst, p99) = try Self.run()
        let share = Double(sums.max()!) / Double(sums.reduce(0, +))
        #expect(share < 0.6, "running-request seconds per replica \(sums): one replica carries \(share)")
        #expect(worst < 3, "at some second one replica ran \(worst)× the other's requests")
        #expect(p99 < 35, "TPOT p99 \(p99) ms over the 35 ms SLO")
    }

    /// `--je-routing least-loaded` on the same run: it priced a replica by its queued prompt
    /// tokens alone, which are ~0 on both, so the lowest id took nearly every request (TPOT p99
    /// 39.5 ms). It now counts the replica's decode KV as prefix-aware does.
    @Test func leastLoadedKeepsColocatedReplicasBalanced() throws {
        let (sums, worst, p99) = try Self.run(routing: "least-loaded")
        let share = Double(sums.max()!) / Double(sums.reduce(0, +))
        #expect(share < 0.6, "running-request seconds per replica \(sums): one replica carries \(share)")
        #expect(worst < 3, "at some second one replica ran \(worst)× the other's requests")
        #expect(p99 < 35, "TPOT p99 \(p99) ms over the 35 ms SLO")
    }
}
