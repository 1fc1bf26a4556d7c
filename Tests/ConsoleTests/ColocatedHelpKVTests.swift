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
        #expect(text.contains(" KV cache  colocated DP-group KV, TEs that prefill, prefix hits, DRAM pool "), "\(text)")
    }

    @Test func superpodHelpIsUnchanged() {
        let text = Self.page1(OtherDeploymentRenderTests.superpod)
        #expect(text.contains(" KV cache  decode DP-group KV use, prefill TEs, prefix hits, DRAM pool "), "\(text)")
    }
}
