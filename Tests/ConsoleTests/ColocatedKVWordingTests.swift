import ServingEngine
import Testing
import XDSTestSupport

@testable import Console

/// The KV cache view on `colocated:2:llama-2-7b:nvidia-a100:tp1` called the colocated replicas'
/// DP groups "Decode DP groups", their KV "tokens written, all decode", "2.0% of decode" and
/// "Decode KV written (tokens, all decode)", beside a panel "TEs that prefill" listing the same
/// replicas: there is no decode TE, each group prefills and decodes. The colocated view names
/// them as such; the superpod keeps "decode".
@Suite struct ColocatedKVWordingTests {
    @Test(arguments: [(80, 24), (120, 40), (200, 60)])
    func colocatedKVViewSaysNoDecodeTE(size: (Int, Int)) {
        let lines = OtherDeploymentRenderTests.render(.kvCache, width: size.0, height: size.1)
        let text = lines.joined(separator: "\n")
        #expect(!text.lowercased().contains("decode"), "\(text)")
        #expect(text.contains("Colocated DP groups · "), "\(text)")
    }

    @Test(arguments: [(80, 24), (120, 40), (200, 60)])
    func superpodKeepsDecode(size: (Int, Int)) {
        let text = OtherDeploymentRenderTests.render(.kvCache, OtherDeploymentRenderTests.superpod, width: size.0, height: size.1)
            .joined(separator: "\n")
        #expect(text.contains("Decode DP groups · 320"), "\(text)")
        #expect(text.contains("of decode"), "\(text)")
    }
}
