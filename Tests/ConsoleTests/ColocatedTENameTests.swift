import PodModel
import ServingEngine
import Testing
import XDSTestSupport

@testable import Console

/// On `colocated:2:qwen3-235b-a22b:nvidia-h100:tp8` the Experts view's Die load panel was titled
/// "8 expert dies of colocated-0 (1 of 2 decode TEs)": a colocated replica prefills and decodes,
/// and the Instances table beside it calls it "colocated". The title now names the TEs as they
/// are; the superpod's decode TEs keep their name.
@Suite struct ColocatedTENameTests {
    static let snapshot = try! SnapshotFixtures.live("colocated:2:qwen3-235b-a22b:nvidia-h100:tp8", rate: 2, until: 5)

    static func render(_ s: Snapshot, width: Int, height: Int) -> [String] {
        var state = ConsoleUpdate.update(ConsoleState(width: width, height: height), .tick(s)).0
        state.view = .experts
        return ConsoleScreen.render(state, s, theme: .builtinDark, width: width, height: height).lines
    }

    @Test(arguments: [(80, 24), (120, 40), (200, 60)])
    func colocatedReplicasAreNotCalledDecodeTEs(size: (Int, Int)) throws {
        let lines = Self.render(Self.snapshot, width: size.0, height: size.1)
        let text = lines.joined(separator: "\n")
        #expect(!text.contains("decode TE"), "\(text)")
        // An H100 is one die: the panel is "GPU load" and counts GPUs (GPUUnitWordingTests).
        let title = try #require(lines.first { $0.contains("┌ GPU load") }, "\(text)")
        if size.0 >= 120 {
            #expect(title.contains("8 expert GPUs of colocated-0 (1 of 2 colocated TEs)"), "\(title)")
        } else {
            // Narrow: a shorter form, whole (it was cut at "(1 of" by the border).
            #expect(title.contains("colocated-0 (1 of 2 TEs) ─"), "\(title)")
        }
    }

    /// Two decode TEs (the superpod after `scale decode +1`) are still decode TEs.
    @Test func decodeTEsKeepTheirName() throws {
        var s = Self.snapshot
        s.instances = [
            InstanceStatus(name: "decode-0", kind: "decode", npus: 8),
            InstanceStatus(name: "decode-1", kind: "decode", npus: 8),
        ]
        let lines = Self.render(s, width: 200, height: 60)
        let title = try #require(lines.first { $0.contains("┌ GPU load") })
        #expect(title.contains("of decode-0 (1 of 2 decode TEs)"), "\(title)")
    }
}
