import ServingEngine
import Testing
import XDSTestSupport

@testable import Console

/// The what-if box on `colocated:2:llama-2-7b:nvidia-a100:tp1` (`f` → straggler → `p`) had a row
/// "decode KV peak": the deployment has no decode TE, its replicas' groups prefill and decode,
/// and the KV view calls them colocated groups. The row is "KV peak" there; the superpod keeps
/// "decode KV peak".
@Suite struct ColocatedPreviewKVTests {
    static func render(_ s: Snapshot, width: Int, height: Int) -> [String] {
        var state = ConsoleUpdate.update(ConsoleState(width: width, height: height), .tick(s)).0
        state.preview = PreviewOverlay(command: "fault straggler die 0 slowdown 2", line: "x", askedAt: 0)
        state.preview?.phase = .ready(PreviewOverlayTests.result())
        return ConsoleScreen.render(state, s, theme: .builtinDark, width: width, height: height).lines
    }

    @Test(arguments: [(80, 24), (120, 40), (200, 60)])
    func colocatedPreviewSaysKVPeak(size: (Int, Int)) {
        let text = Self.render(OtherDeploymentRenderTests.snapshot, width: size.0, height: size.1).joined(separator: "\n")
        #expect(!text.contains("decode KV"), "\(text)")
        #expect(text.contains("│ KV peak "), "\(text)")
        #expect(text.contains("│   per die "), "\(text)")
    }

    @Test func superpodPreviewKeepsDecodeKVPeak() {
        let text = Self.render(OtherDeploymentRenderTests.superpod, width: 80, height: 24).joined(separator: "\n")
        #expect(text.contains("│ decode KV peak "), "\(text)")
        #expect(text.contains("│   per decode die "), "\(text)")
    }
}
