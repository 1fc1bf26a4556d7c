import ServingEngine
import Testing
import XDSTestSupport

@testable import Console

/// Help page 1 on `colocated:2:llama-2-7b:nvidia-a100:tp1` described view 3 as "decode DP-group
/// KV use, prefill TEs, …": the deployment has neither decode nor prefill TEs, and the view it
/// describes says "Colocated DP groups" and "TEs that prefill". The line follows the view there.
@Suite struct ColocatedHelpKVTests {
    static func page1(_ s: Snapshot, width: Int = 80, height: Int = 24) -> String {
        var state = ConsoleUpdate.update(ConsoleState(width: width, height: height), .tick(s)).0
        state.showHelp = true
        return ConsoleScreen.render(state, s, theme: .builtinDark, width: width, height: height).text
    }

    @Test(arguments: [(80, 24), (120, 40), (200, 60)])
    func colocatedHelpDescribesTheKVViewAsItIs(size: (Int, Int)) {
        let text = Self.page1(OtherDeploymentRenderTests.snapshot, width: size.0, height: size.1)
        #expect(!text.contains("decode DP-group"), "\(text)")
        #expect(text.contains(" KV cache  colocated DP-group KV, TEs that prefill, prefix hits, KV written "), "\(text)")
    }

    /// On GPUs the engine builds no pooled DRAM tier and the view says "DRAM pool  none on
    /// GPUs": page 1 still promised a "DRAM pool" there. It names what the view shows instead,
    /// on the colocated A100 replicas and on a TP1 one alike.
    @Test(arguments: [(80, 24), (200, 60)])
    func gpuHelpNamesNoDRAMPool(size: (Int, Int)) throws {
        for s in [OtherDeploymentRenderTests.snapshot, try GPUNoDRAMPoolTests.snapshot("colocated:2:llama-2-7b:nvidia-a100:tp1")] {
            try #require(s.kv.poolCapacityBytes == 0)
            let text = Self.page1(s, width: size.0, height: size.1)
            try #require(text.contains("Help 1/2"), "\(text)")
            #expect(!text.contains("DRAM pool"), "\(text)")
            #expect(text.contains(" KV cache  colocated DP-group KV, TEs that prefill, prefix hits, KV written "), "\(text)")
        }
    }

    /// A disaggregated pod without a pool (an Ascend pod configured with no pool bytes; its
    /// snapshot has no pool capacity): its line names the transfers the view shows instead.
    @Test func disaggregatedWithoutPoolNamesTransfers() {
        var s = OtherDeploymentRenderTests.superpod
        s.kv.poolCapacityBytes = 0
        let text = Self.page1(s)
        #expect(text.contains(" KV cache  decode DP-group KV use, prefill TEs, prefix hits, KV transfers "), "\(text)")
    }

    @Test func superpodHelpIsUnchanged() {
        let text = Self.page1(OtherDeploymentRenderTests.superpod)
        #expect(text.contains(" KV cache  decode DP-group KV use, prefill TEs, prefix hits, DRAM pool "), "\(text)")
    }
}
