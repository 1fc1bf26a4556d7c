import PodModel
import ServingEngine
import Testing

@testable import Console

/// On a GPU deployment (one die per GPU) the Faults panel and the ticker echoed the engine's
/// "straggler die 1 (2× slower)" while the fault menu, help and grid call the device GPU 1
/// ("straggler GPU 1, slowdown 2× (die 1)"). They now show the engine's own text, which names the
/// GPU (the console no longer rewrites it, so it says what the report and the HTTP event stream
/// say); the superpod (a die is half a 910C chip) keeps "straggler die N".
@Suite struct GPUFaultPanelWordingTests {
    static func engine(_ spec: String, fault: String) throws -> Snapshot {
        let d = try Deployment.resolve(spec)
        let engine = try ServingEngine(configuration: EngineConfiguration(deployment: d, seed: 1, syntheticRate: 4))
        engine.run(until: 5)
        #expect(engine.apply(try OperatorCommand.parse(fault).get()).accepted)
        engine.run(until: 10)
        return engine.snapshot()
    }

    static func render(_ s: Snapshot, _ view: ConsoleView, width: Int, height: Int) -> [String] {
        var state = ConsoleUpdate.update(ConsoleState(width: width, height: height), .tick(s)).0
        state.view = view
        return ConsoleScreen.render(state, s, theme: .builtinDark, width: width, height: height).lines
    }

    @Test(arguments: [(120, 40), (200, 60)])
    func gpuFaultsPanelSaysGPU(size: (Int, Int)) throws {
        let s = try Self.engine("colocated:2:llama-2-7b:nvidia-a100:tp1", fault: "fault straggler die 1 slowdown 2")
        let lines = Self.render(s, .pod, width: size.0, height: size.1)
        let text = lines.joined(separator: "\n")
        try #require(text.contains("Faults · drains"), "\(text)")
        #expect(lines.contains { $0.contains("#1 detected  straggler GPU 1 (2× slower)") }, "\(text)")
        #expect(!text.contains("straggler die"), "\(text)")
    }

    /// The ticker on the border of the views without the Faults panel says it the same way.
    @Test func gpuTickerSaysGPU() throws {
        let s = try Self.engine("colocated:2:llama-2-7b:nvidia-a100:tp1", fault: "fault straggler die 1 slowdown 2")
        for width in [80, 200] {
            let text = Self.render(s, .requests, width: width, height: width == 80 ? 24 : 60).joined(separator: "\n")
            #expect(text.contains("#1 straggler GPU 1 (2× slower)"), "\(text)")
            #expect(!text.contains("straggler die"), "\(text)")
        }
    }

    @Test func superpodKeepsDies() throws {
        let s = try Self.engine("superpod", fault: "fault straggler die 74 slowdown 2")
        let text = Self.render(s, .pod, width: 200, height: 60).joined(separator: "\n")
        #expect(text.contains("straggler die 74 (2× slower)"), "\(text)")
        #expect(!text.contains("straggler NPU"), "\(text)")
    }
}
