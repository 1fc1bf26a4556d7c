import PodModel
import Testing

@testable import ServingEngine

/// `drain node 0` on a one-node GPU cluster was accepted with the usual line ("no new work is
/// placed on its NPUs; 0 queued prefills moved elsewhere; …") and then every arrival was
/// rejected; on Ascend, draining the last node a decode TE takes work on was the same. The
/// reply (the console's footer, the event log, `POST /admin/commands`) now says that the drain
/// leaves no capacity and that every new request will be rejected until a node is undrained.
@Suite struct DrainLastCapacityTests {
    static func engine(_ spec: String) throws -> ServingEngine {
        let engine = try ServingEngine(configuration: EngineConfiguration(deployment: try Deployment.resolve(spec),
                                                                          seed: 1, syntheticRate: 2))
        engine.run(until: 5)
        return engine
    }

    /// The nodes a decode TE of `engine` holds NPUs on, in order.
    static func decodeNodes(_ engine: ServingEngine) -> [Int] {
        let perNode = engine.topology.npusPerNode
        return Set(engine.instances.indices.filter { engine.instances[$0].role == .decode }
            .flatMap { engine.cluster.npus(of: $0) }.map { $0 / perNode }).sorted()
    }

    @Test func drainingTheOnlyGPUNodeSaysNothingIsLeft() throws {
        let engine = try Self.engine("colocated:2:llama-2-7b:nvidia-a100:tp1")
        let reply = engine.apply(.drain(node: 0))
        #expect(reply.accepted)
        #expect(reply.message.contains("no TE is left taking new work: every new request will be rejected until a node is undrained"),
                "\(reply.message)")
        #expect(reply.message.contains("on its GPUs") && !reply.message.contains("NPU"), "\(reply.message)")
        // And it is so: arrivals from here on are rejected.
        let rejected = engine.telemetry.rejected
        engine.run(until: 30)
        #expect(engine.telemetry.rejected > rejected)
    }

    /// The drain's event is a warning then (the Events view's WARN, the event stream's severity);
    /// other drains stay info.
    @Test func theLastDrainsEventIsAWarning() throws {
        let engine = try Self.engine("colocated:2:llama-2-7b:nvidia-a100:tp1")
        _ = engine.apply(.drain(node: 0))
        let drain = try #require(engine.recentEvents().last { $0.kind == .drain })
        #expect(drain.severity == .warning, "\(drain)")
        let superpod = try Self.engine("superpod")
        _ = superpod.apply(.drain(node: 0))
        #expect(superpod.recentEvents().last { $0.kind == .drain }?.severity == .info)
    }

    /// Ascend: the nodes of cloudmatrix-infer's decode TE drained one by one; only the last says it.
    /// The drain event's severity follows the drain's own verdict (the reply's `capacityLost`),
    /// not the wording of its reply: a warning exactly when the flag is set.
    @Test func drainingTheLastAscendDecodeNodeSaysSo() throws {
        let engine = try Self.engine("cloudmatrix-infer")
        let decodeNodes = Self.decodeNodes(engine)
        try #require(decodeNodes.count > 1)
        for node in decodeNodes {
            let reply = engine.apply(.drain(node: node))
            #expect(reply.accepted)
            let warned = reply.message.contains("no decode TE is left taking new work: every new request will be rejected until a node is undrained")
            #expect(warned == (node == decodeNodes.last), "node \(node): \(reply.message)")
            #expect(reply.message.contains("on its NPUs"), "\(reply.message)")
            #expect(reply.capacityLost == (node == decodeNodes.last), "node \(node): \(reply.message)")
            let event = try #require(engine.recentEvents().last { $0.kind == .drain })
            #expect(event.severity == (reply.capacityLost ? .warning : .info), "node \(node): \(event)")
        }
        // A refused drain (already drained) loses nothing more.
        let again = engine.apply(.drain(node: decodeNodes[0]))
        #expect(!again.accepted && !again.capacityLost)
    }
}
