import PodModel
import ServingEngine
import Testing
import XDSTestSupport

@testable import Console

/// The Pod grid's legend keys the roles its chips show: "P prefill D decode A attention E expert"
/// above a grid of colocated GPU replicas keyed four letters no chip had, and the superpod's
/// legend keyed A and E (MoE–attention layouts only). The help's `r` line on a dense model no
/// longer promises a rebalance the engine refuses.
@Suite struct PodLegendRolesTests {
    static func lines(_ spec: String, width: Int, height: Int, help: Bool = false) throws -> [String] {
        let s = try SnapshotFixtures.live(spec, rate: 2, until: 2)
        var state = ConsoleUpdate.update(ConsoleState(width: width, height: height), .tick(s)).0
        state.showHelp = help
        return ConsoleScreen.render(state, s, theme: .builtinDark, width: width, height: height).lines
    }

    @Test(arguments: [(80, 24), (200, 60)])
    func theLegendKeysTheRolesOnTheGrid(size: (Int, Int)) throws {
        let gpu = try Self.lines("colocated:4:llama-3-70b:nvidia-h100:tp4", width: size.0, height: size.1).joined(separator: "\n")
        // Four TP4 replicas fill both nodes: no spare either.
        #expect(gpu.contains(size.0 >= 200 ? "│ C colocated    X dead" : "│ C coloc X dead"), "\(gpu)")
        for absent in ["P pre", "D dec", "A attn", "E exp", "P prefill", "D decode", "A attention", "E expert"] {
            #expect(!gpu.contains(absent), "\(absent)")
        }
        let pod = try Self.lines("superpod", width: size.0, height: size.1).joined(separator: "\n")
        #expect(pod.contains(size.0 >= 200 ? "P prefill  D decode  · spare    X dead" : "P pre D dec ·spare X dead"), "\(pod)")
        let ma = try Self.lines("xdeepserve-ma", width: size.0, height: size.1).joined(separator: "\n")
        #expect(ma.contains(size.0 >= 200 ? "A attention  E expert" : "A attn E exp"), "\(ma)")
    }

    @Test func theHelpOnADenseModelPromisesNoRebalance() throws {
        let dense = try Self.lines("colocated:4:llama-3-70b:nvidia-h100:tp4", width: 100, height: 40, help: true)
        #expect(dense.contains { $0.contains("r         nothing: a dense model has no experts") }, "\(dense.joined(separator: "\n"))")
        #expect(!dense.contains { $0.contains("rebalance experts now") })
        let moe = try Self.lines("superpod", width: 100, height: 40, help: true)
        #expect(moe.contains { $0.contains("rebalance experts now") })
    }
}
