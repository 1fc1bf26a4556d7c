import ServingEngine
import Testing
import XDSTestSupport

@testable import Console

/// On a GPU deployment (`colocated:2:llama-2-7b:nvidia-a100:tp1`: one die per GPU) the fault
/// menu offered "straggler die 5" and "HBM error on die 5", and help page 2 listed `fault die D`
/// and `(A, B NPUs …)`, words for hardware the screen elsewhere calls GPUs. The screen now names
/// the GPU and still shows the `:` command that does it (`fault straggler die N` is the
/// interface, unchanged); the superpod (2 dies per chip, a die is half an NPU) keeps its words.
@Suite struct GPUDieWordingTests {
    static func menu(_ s: Snapshot, npu: Int, width: Int = 80, height: Int = 24) -> (ConsoleState, [String]) {
        var state = ConsoleUpdate.update(ConsoleState(width: width, height: height), .tick(s)).0
        state.selectedNPU = npu
        state = ConsoleUpdate.update(state, .key(.char("f"))).0
        return (state, ConsoleScreen.render(state, s, theme: .builtinDark, width: width, height: height).lines)
    }

    @Test(arguments: [(80, 24), (120, 40), (200, 60)])
    func gpuFaultMenuSaysGPUAndTheCommand(size: (Int, Int)) throws {
        let (state, lines) = Self.menu(OtherDeploymentRenderTests.snapshot, npu: 5, width: size.0, height: size.1)
        let text = lines.joined(separator: "\n")
        #expect(!text.contains("on die"), "\(text)")
        #expect(!text.contains("straggler die 5 ("), "\(text)")
        #expect(lines.contains { $0.contains("straggler GPU 5, slowdown 2× (die 5)") }, "\(text)")
        #expect(lines.contains { $0.contains("HBM error on GPU 5 (die 5)") }, "\(text)")
        // The note says how the `:` commands name the GPU, whole, inside the box.
        #expect(lines.contains { $0.contains("│ GPU N is die N in :fault (1 die per GPU)") }, "\(text)")
        // The commands are the interface's, unchanged.
        let items = try #require(state.faultMenu?.items)
        #expect(items.map(\.command).contains("fault straggler die 5 slowdown 2"))
        #expect(items.map(\.command).contains("fault hbm die 5"))
        // The footer's range still matches the items, and is not overwritten by the note.
        #expect(lines.contains { $0.contains("1-\(items.count) or Enter, then y injects") }, "\(text)")
    }

    /// The superpod's menu keeps "die" (a die is half of the 910C chip) and has no note.
    @Test func superpodMenuKeepsDies() {
        let (_, lines) = Self.menu(OtherDeploymentRenderTests.superpod, npu: 37)
        let text = lines.joined(separator: "\n")
        #expect(lines.contains { $0.contains("straggler die 74 (slowdown 2×)") }, "\(text)")
        #expect(lines.contains { $0.contains("HBM error on die 74") }, "\(text)")
        #expect(!text.contains("1 die per"), "\(text)")
    }

    static func page2(_ s: Snapshot, width: Int = 80, height: Int = 24) -> [String] {
        var state = ConsoleUpdate.update(ConsoleState(width: width, height: height), .tick(s)).0
        state.showHelp = true
        state.helpPage = 1
        return ConsoleScreen.render(state, s, theme: .builtinDark, width: width, height: height).lines
    }

    @Test(arguments: [(80, 24), (120, 40), (200, 60)])
    func gpuHelpPageSaysGPU(size: (Int, Int)) {
        let lines = Self.page2(OtherDeploymentRenderTests.snapshot, width: size.0, height: size.1)
        let text = lines.joined(separator: "\n")
        #expect(!text.contains("NPU"), "\(text)")
        #expect(text.contains("fault npu N = fault die N (GPU N) · fault node N · fault glitch"), "\(text)")
        #expect(text.contains("fault link A-B [degrade F]   (A, B GPUs; no F: the link is down)"), "\(text)")
        #expect(text.contains("fault straggler die N [slowdown F] · fault hbm die N (GPU N)"), "\(text)")
    }

    @Test func superpodHelpPageIsUnchanged() {
        let text = Self.page2(OtherDeploymentRenderTests.superpod).joined(separator: "\n")
        #expect(text.contains("fault die D  ·  fault npu N  ·  fault node N  ·  fault glitch"), "\(text)")
        #expect(text.contains("(A, B NPUs; no F: the link is down)"), "\(text)")
        #expect(text.contains("fault straggler die D [slowdown F]  ·  fault hbm die D"), "\(text)")
        #expect(!text.contains("GPU"), "\(text)")
    }
}
