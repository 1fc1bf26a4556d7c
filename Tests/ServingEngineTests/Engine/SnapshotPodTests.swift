import PodModel
import Testing

@testable import ServingEngine

/// ``Snapshot/podTopology``: the pod a snapshot pictures, which a remote console and a preview
/// parse command lines against (they named the grammar's 0…999999 for a bad index where the
/// engine names "the pod has nodes 0…47"). It must be the engine's own pod on every layout.
@Suite struct SnapshotPodTests {
    @Test(arguments: Deployment.presetNames + ["colocated:2:llama-2-7b:nvidia-a100:tp1", "colocated:1:qwen3-235b-a22b:nvidia-h100:tp8"])
    func theSnapshotsPodIsTheEngines(_ name: String) throws {
        let engine = try ServingEngine(configuration: EngineConfiguration(deployment: try Deployment.resolve(name), seed: 1))
        #expect(engine.snapshot().podTopology == engine.topology, "\(name)")
    }

    @Test func aSnapshotThatSaysNothingPicturesNoPod() {
        #expect(Snapshot().podTopology == nil)
        var unknown = Snapshot()
        unknown.hardwareName = "a-newer-chip"
        unknown.npus = [NPUStatus(id: 0, node: 0, role: .spare)]
        #expect(unknown.podTopology == nil)
    }
}
