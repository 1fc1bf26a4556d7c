import PodModel
import ServingEngine
import Testing

@testable import Console

/// On a GPU deployment the Faults panel listed an HBM fault by its command text, "fault hbm die
/// 0", beside a grid, fault menu ("HBM error on GPU 0 (die 0)") and event log ("uncorrectable
/// HBM error on GPU 0") that call the device GPU 0; `fault die N` and `fault npu N` read "fault
/// die 0" and "fault npu 0" the same way. The engine now lists faults with the hardware's names,
/// so the panel and the ticker name the GPU; the `:` language keeps `die` and `npu` (the fault
/// menu and help page 2 say which command hits which GPU), and the superpod keeps its words.
@Suite struct GPUHBMFaultLabelTests {
    static let spec = "colocated:2:llama-2-7b:nvidia-a100:tp1"

    @Test(arguments: [(120, 40), (200, 60)])
    func gpuFaultsPanelNamesTheGPU(size: (Int, Int)) throws {
        for (command, label) in [("fault hbm die 0", "fault hbm GPU 0"), ("fault die 1", "fault GPU 1"), ("fault npu 1", "fault GPU 1")] {
            let s = try GPUFaultPanelWordingTests.engine(Self.spec, fault: command)
            let lines = GPUFaultPanelWordingTests.render(s, .pod, width: size.0, height: size.1)
            let text = lines.joined(separator: "\n")
            try #require(text.contains("Faults · drains"), "\(text)")
            #expect(lines.contains { $0.contains("#1 ") && $0.contains("  \(label)") }, "\(command): \(text)")
            #expect(!text.contains(command), "\(command): \(text)")
        }
    }

    /// The ticker on the border of the views without the Faults panel, at 80 and 200 columns
    /// (it names faults not yet recovered: read at the instant of injection).
    @Test func gpuTickerNamesTheGPU() throws {
        let engine = try ServingEngine(configuration: EngineConfiguration(deployment: try Deployment.resolve(Self.spec),
                                                                          seed: 1, syntheticRate: 4))
        engine.run(until: 5)
        #expect(engine.apply(try OperatorCommand.parse("fault hbm die 0").get()).accepted)
        let s = engine.snapshot()
        for width in [80, 200] {
            let text = GPUFaultPanelWordingTests.render(s, .requests, width: width, height: width == 80 ? 24 : 60)
                .joined(separator: "\n")
            #expect(text.contains("#1 fault hbm GPU 0"), "\(text)")
            #expect(!text.contains("hbm die"), "\(text)")
        }
    }

    /// The grid still marks the GPU's HBM fault (from the chips and effect the engine sends).
    @Test func gpuGridStillMarksTheHBMFault() throws {
        let s = try GPUFaultPanelWordingTests.engine(Self.spec, fault: "fault hbm die 0")
        #expect(FaultMap(s).byNPU[0] == .hbm)
    }

    /// The grid marks what the engine says a fault touches, whatever its listing's words; a
    /// fault without them (from an engine that does not send them) is read from its command.
    @Test func theGridMarksTheChipsTheEngineNames() throws {
        var s = try GPUFaultPanelWordingTests.engine("superpod", fault: "fault hbm die 74")
        s.activeFaults[0].description = "uncorrectable memory error"
        #expect(FaultMap(s).byNPU == [37: .hbm])
        s.activeFaults[0].chips = [36, 37]
        s.activeFaults[0].effect = .link
        #expect(FaultMap(s).byNPU == [36: .link, 37: .link])
        s.activeFaults[0].description = "fault hbm die 74"
        (s.activeFaults[0].effect, s.activeFaults[0].chips) = (nil, nil)
        #expect(FaultMap(s).byNPU == [37: .hbm])
    }

    @Test func superpodKeepsItsWords() throws {
        let s = try GPUFaultPanelWordingTests.engine("superpod", fault: "fault hbm die 74")
        let text = GPUFaultPanelWordingTests.render(s, .pod, width: 200, height: 60).joined(separator: "\n")
        #expect(text.contains("fault hbm die 74"), "\(text)")
    }
}
