import PodModel
import ServingEngine
import Testing
import XDSTestSupport

@testable import Console

/// On a GPU deployment the KV cache view's title said "Colocated DP groups · 2 (4 dies each)" and
/// the Experts view "Die load · 8 expert dies of colocated-0", "(1 die per column)", "every die":
/// an A100 or H100 is one die, and every other label on that screen calls it a GPU. Where the
/// device is a one-die GPU the views now say GPU(s); the superpod (a 910C chip holds two dies,
/// and its views count dies) keeps "die".
@Suite struct GPUUnitWordingTests {
    static func render(_ view: ConsoleView, _ s: Snapshot, width: Int, height: Int) -> [String] {
        var state = ConsoleUpdate.update(ConsoleState(width: width, height: height), .tick(s)).0
        state.view = view
        return ConsoleScreen.render(state, s, theme: .builtinDark, width: width, height: height).lines
    }

    static let llama7bTP1: Snapshot = {
        let d = try! Deployment.resolve("colocated:2:llama-2-7b:nvidia-a100:tp1")
        let engine = try! ServingEngine(configuration: EngineConfiguration(deployment: d, seed: 1, syntheticRate: 4))
        engine.run(until: 5)
        return engine.snapshot()
    }()

    @Test(arguments: [(80, 24), (200, 60)])
    func kvTitleCountsGPUs(size: (Int, Int)) {
        // TP4 on one-die A100s: a DP group spans 4 GPUs.
        let tp4 = Self.render(.kvCache, OtherDeploymentRenderTests.snapshot, width: size.0, height: size.1).joined(separator: "\n")
        #expect(tp4.contains("Colocated DP groups · 2 (4 GPUs each) · KV held"), "\(tp4)")
        #expect(!tp4.contains("dies each"), "\(tp4)")
        // TP1: one group per GPU.
        let tp1 = Self.render(.kvCache, Self.llama7bTP1, width: size.0, height: size.1).joined(separator: "\n")
        #expect(tp1.contains("Colocated DP groups · 2 (one per GPU) · KV held"), "\(tp1)")
        #expect(!tp1.contains("per die"), "\(tp1)")
    }

    @Test(arguments: [(80, 24), (200, 60)])
    func expertsViewCountsGPUs(size: (Int, Int)) throws {
        let lines = Self.render(.experts, ColocatedTENameTests.snapshot, width: size.0, height: size.1)
        let text = lines.joined(separator: "\n")
        let title = try #require(lines.first { $0.contains("┌ GPU load") }, "\(text)")
        if size.0 >= 120 {
            #expect(title.contains("GPU load · 8 expert GPUs of colocated-0 (1 of 2 colocated TEs)"), "\(title)")
            #expect(text.contains("each GPU, mean over layers:") && text.contains("(1 GPU per column)"), "\(text)")
            #expect(text.contains("every GPU, in id order"), "\(text)")
        } else {
            #expect(title.contains("GPU load · colocated-0 (1 of 2 TEs) ─"), "\(title)")
            #expect(text.contains("every GPU · height = load × mean"), "\(text)")
        }
        let dieLines = lines.filter { $0.lowercased().contains("die") }
        #expect(dieLines.isEmpty, "\(dieLines)")
    }

    @Test func gpuHelpSaysGPULoad() {
        var state = ConsoleUpdate.update(ConsoleState(width: 80, height: 24), .tick(ColocatedTENameTests.snapshot)).0
        state.showHelp = true
        let text = ConsoleScreen.render(state, ColocatedTENameTests.snapshot, theme: .builtinDark, width: 80, height: 24)
            .lines.joined(separator: "\n")
        #expect(text.contains("layer × expert heat (max per cell), GPU load, imbalance"), "\(text)")
    }

    /// The superpod keeps its dies: two per 910C chip, one DP group per die.
    @Test func superpodKeepsDies() {
        let kv = Self.render(.kvCache, OtherDeploymentRenderTests.superpod, width: 200, height: 60).joined(separator: "\n")
        #expect(kv.contains("Decode DP groups · 320 (one per die)"), "\(kv)")
        let experts = Self.render(.experts, OtherDeploymentRenderTests.superpod, width: 200, height: 60).joined(separator: "\n")
        #expect(experts.contains("Die load · 288 expert dies ─") && experts.contains("every die, in id order"), "\(experts)")
        #expect(!experts.contains("GPU"), "\(experts)")
        var state = ConsoleUpdate.update(ConsoleState(width: 80, height: 24), .tick(OtherDeploymentRenderTests.superpod)).0
        state.showHelp = true
        let help = ConsoleScreen.render(state, OtherDeploymentRenderTests.superpod, theme: .builtinDark, width: 80, height: 24)
            .lines.joined(separator: "\n")
        #expect(help.contains("heat (max per cell), die load, imbalance"), "\(help)")
    }
}
