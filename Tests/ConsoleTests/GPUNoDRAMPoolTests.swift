import PodModel
import ServingEngine
import Testing

@testable import Console

/// The KV view of an A100 colocated deployment showed "DRAM pool ▏░░░ 0.00/0.51 TB": the
/// engine gave every deployment the CloudMatrix pooled DRAM cache (EMS, reached from every NPU
/// over UB), GPUs included, and loaded pooled prefixes at NVLink speed. A GPU cluster has no
/// such tier: the engine builds none there, and the view says it is absent; the superpod keeps
/// its pool and its meter.
@Suite struct GPUNoDRAMPoolTests {
    static func snapshot(_ spec: String) throws -> Snapshot {
        let engine = try ServingEngine(configuration: EngineConfiguration(deployment: try Deployment.resolve(spec),
                                                                          seed: 1, syntheticRate: 4))
        engine.run(until: 10)
        return engine.snapshot()
    }

    static func render(_ s: Snapshot, width: Int, height: Int) -> String {
        var state = ConsoleUpdate.update(ConsoleState(width: width, height: height), .tick(s)).0
        state.view = .kvCache
        return ConsoleScreen.render(state, s, theme: .builtinDark, width: width, height: height).lines.joined(separator: "\n")
    }

    @Test func gpuKVViewSaysThereIsNoPool() throws {
        let s = try Self.snapshot("colocated:2:llama-2-7b:nvidia-a100:tp1")
        #expect(s.kv.poolCapacityBytes == 0, "the engine built a DRAM pool on a GPU cluster")
        for (w, h) in [(80, 24), (200, 60)] {
            let text = Self.render(s, width: w, height: h)
            #expect(text.contains("DRAM pool  none on GPUs"), "\(text)")
            #expect(!text.contains(" TB"), "\(text)")
        }
    }

    @Test func superpodKeepsItsPool() throws {
        let s = try Self.snapshot("superpod")
        #expect(s.kv.poolCapacityBytes > 0)
        let text = Self.render(s, width: 200, height: 60)
        #expect(text.contains("DRAM pool") && text.contains(" TB"), "\(text)")
    }
}

/// The same panel of a colocated deployment counted "transfers queued 0  in progress 0" under
/// the title "Prefix cache · DRAM pool · transfers": a colocated replica decodes where it
/// prefilled, so no KV is ever transferred and the zeros read as an idle link. The row and the
/// title's word are left out there; a disaggregated pod keeps them.
@Suite struct ColocatedNoTransfersRowTests {
    @Test func colocatedKVViewHasNoTransfersRow() throws {
        let s = try GPUNoDRAMPoolTests.snapshot("colocated:2:llama-2-7b:nvidia-a100:tp1")
        for (w, h) in [(80, 24), (200, 60)] {
            let text = GPUNoDRAMPoolTests.render(s, width: w, height: h)
            #expect(text.contains("Prefix cache") && !text.contains("transfers") && !text.contains("in progress"), "\(text)")
        }
        let superpod = GPUNoDRAMPoolTests.render(try GPUNoDRAMPoolTests.snapshot("superpod"), width: 200, height: 60)
        #expect(superpod.contains("Prefix cache · DRAM pool · transfers") && superpod.contains("transfers queued"), "\(superpod)")
    }
}
