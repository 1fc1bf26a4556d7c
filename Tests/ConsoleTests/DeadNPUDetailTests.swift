import ServingEngine
import Testing
import XDSTestSupport

@testable import Console

/// `fault npu 130` on the superpod's decode TE ends in a vertical shrink (DP 320 → 318): the
/// TE keeps the dead chip in its list, so the snapshot still gives it the TE's busy share, its
/// DP groups and its (dropped) expert replicas. The NPU panel drew "X dead … experts 44, 60
/// MoE load 0.75×" over a full "util 100%" bar: a dead chip drawn as the busiest one.
@Suite struct DeadNPUDetailTests {
    static let shrunk: Snapshot = {
        var s = SnapshotFixtures.superpod
        s.activeFaults = [
            FaultStatus(id: 1, description: "fault npu 130 · detected in 2.6 s · recovered in 2.6 s", injectedAt: 40,
                        detectedAt: 42.6, recoveredAt: 42.6),
        ]
        s.npus[130].faulted = true
        s.npus[130].utilization = 1
        s.npus[130].experts = [44, 60]
        s.npus[130].expertLoad = 0.75
        return s
    }()

    static func panel(_ s: Snapshot, npu: Int, width: Int, height: Int) -> String {
        var state = ConsoleUpdate.update(ConsoleState(width: width, height: height), .tick(s)).0
        state.view = .pod
        state.selectedNPU = npu
        return ConsoleScreen.render(state, s, theme: .builtinDark, width: width, height: height).lines.joined(separator: "\n")
    }

    @Test func aDeadNPUShowsNoLoadAndItsExpertsNotServedThere() {
        for (width, height) in [(80, 24), (120, 40), (200, 60)] {
            let text = Self.panel(Self.shrunk, npu: 130, width: width, height: height)
            #expect(text.contains("X dead"), "\(width)×\(height)\n\(text)")
            #expect(text.contains("– dead: runs nothing"), "\(width)×\(height)\n\(text)")
            let util = text.split(separator: "\n").filter { $0.contains("│ util ") }
            #expect(util.count == 1 && !util[0].contains("100%") && !util[0].contains("█"), "\(util)")
            #expect(text.contains("experts 44, 60 not served here"), "\(width)×\(height)\n\(text)")
            #expect(!text.contains("0.75×"), "\(width)×\(height)\n\(text)")
        }
        // Its live neighbour keeps its figures.
        var live = Self.shrunk
        live.npus[131].utilization = 1
        live.npus[131].experts = [45]
        live.npus[131].expertLoad = 1.1
        let text = Self.panel(live, npu: 131, width: 120, height: 40)
        #expect(text.contains("experts 45  MoE load 1.10×"), "\(text)")
        let util = text.split(separator: "\n").filter { $0.contains("│ util ") }
        #expect(util.count == 1 && util[0].contains("100%") && !text.contains("dead: runs nothing"), "\(util)")
    }
}

extension DeadNPUDetailTests {
    /// The node line under the NPU meters averaged the dead chip's snapshot share in: with its
    /// seven live neighbours at 40% it said "node 16 faulted  util 48%" under the dead chip's
    /// "– dead: runs nothing". It averages the chips that run.
    @Test func theNodesUtilLeavesTheDeadChipOut() {
        var s = Self.shrunk
        for i in 128..<136 { s.npus[i].utilization = i == 130 ? 1 : 0.4 }
        let text = Self.panel(s, npu: 130, width: 120, height: 40)
        let line = text.split(separator: "\n").first { $0.contains("│ node 16 ") }
        #expect(line?.contains("util 40%") == true, "\(line ?? "no node line")")
    }
}

extension DeadNPUDetailTests {
    /// After the shrink the engine lists on each chip only the DP groups its TE still runs (it
    /// said "DP groups 4, 5 of 320" of dead NPU 130 under decode-0 at DP 318): the dead chip
    /// says its groups were fenced off and its neighbours count the groups left.
    @Test func theDeadChipsGroupsAreFencedAndTheTECountsTheRest() {
        var s = Self.shrunk
        s.npus[130].dpGroups = []
        let dead = Self.panel(s, npu: 130, width: 120, height: 40)
        #expect(dead.contains("DP groups – (fenced)  experts 44, 60 not served here"), "\(dead)")
        let live = Self.panel(s, npu: 131, width: 120, height: 40)
        #expect(live.contains("DP groups 6, 7 of 318"), "\(live)")
        // A chip in no group that is not dead (an expert die) is unchanged.
        #expect(PodView.dpGroups(s.npus[130], s).map(\.0).joined() == "DP groups –")
        // The KV panel's bars are the 318 groups run, one per die of the 159 chips that run them.
        s.kv.decodeGroups = Array(s.kv.decodeGroups.prefix(318))
        #expect(KVCacheView.diesPerDecodeGroup(s) == 1)
    }
}
