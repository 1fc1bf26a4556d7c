import ServingEngine
import Testing
import XDSTestSupport

@testable import Console

/// The Pod detail panel's node line summed every chip's "requests", but a DP group that spans
/// chips (TP across chips: a superpod prefill group is 4 dies on 2 NPUs, a `tp8` GPU replica's
/// group is 8 GPUs) lists its requests on each of them. `xds console` showed "node 0 … requests 2"
/// with prefill-0 holding 1 request in all, and on `colocated:4:qwen3-235b-a22b:nvidia-h100:tp8`
/// "requests 264" for a node whose one replica ran 33. A group's requests now count once.
@Suite struct NodeRequestCountTests {
    static func nodeLine(_ s: Snapshot, npu: Int = 0, width: Int = 120, height: Int = 40) throws -> String {
        var state = ConsoleUpdate.update(ConsoleState(width: width, height: height), .tick(s)).0
        state.selectedNPU = npu
        let lines = ConsoleScreen.render(state, s, theme: .builtinDark, width: width, height: height).lines
        return try #require(lines.first { $0.contains("node \(s.npus[npu].node) ") && $0.contains("  util ") }, "\(lines.joined(separator: "\n"))")
    }

    /// The GPU fixture at TP4: node 0 is colocated-0 (GPUs 0-3, one group) and colocated-1
    /// (GPUs 4-7, one group). 3 + 2 requests in flight are 5, not 4 × 3 + 4 × 2 = 20.
    @Test func aGroupOverSeveralChipsCountsOnce() throws {
        var s = OtherDeploymentRenderTests.snapshot
        for i in s.npus.indices where s.npus[i].node == 0 {
            s.npus[i].dpGroups = [0]
            s.npus[i].requestsInFlight = s.npus[i].instance == "colocated-0" ? 3 : 2
        }
        #expect(Set(s.npus.prefix(8).map(\.instance)) == ["colocated-0", "colocated-1"])
        let line = try Self.nodeLine(s)
        #expect(line.contains("requests 5 ") || line.contains("requests 5│") || line.hasSuffix("requests 5"), "\(line)")
        #expect(!line.contains("requests 20"), "\(line)")
    }

    /// The large screen's Nodes table counts the same way (its requests column is the last).
    @Test func nodeTableCountsAGroupOnce() throws {
        var s = OtherDeploymentRenderTests.snapshot
        for i in s.npus.indices where s.npus[i].node == 0 {
            s.npus[i].dpGroups = [0]
            s.npus[i].requestsInFlight = s.npus[i].instance == "colocated-0" ? 3 : 2
        }
        var state = ConsoleUpdate.update(ConsoleState(width: 300, height: 90), .tick(s)).0
        state.selectedNPU = 0
        let lines = ConsoleScreen.render(state, s, theme: .builtinDark, width: 300, height: 90).lines
        let text = lines.joined(separator: "\n")
        let top = try #require(lines.firstIndex { $0.contains("┌ Nodes · ") }, "\(text)")
        let row = try #require(lines[(top + 1)...].first { $0.contains(" 00 ") }, "\(text)")
        #expect(row.hasSuffix("       5 │") || row.contains(" GB        5 "), "\(row)")
        #expect(!row.contains(" 20 "), "\(row)")
    }

    /// One group per die (the superpod's decode chips hold two groups each, none shared): the
    /// node still sums every chip.
    @Test func groupsOfOneChipStillSum() throws {
        var s = OtherDeploymentRenderTests.superpod
        let decode = try #require(s.npus.first { $0.role == .decode })
        var total = 0
        for i in s.npus.indices where s.npus[i].node == decode.node {
            s.npus[i].dpGroups = [2 * i, 2 * i + 1]
            s.npus[i].requestsInFlight = i % 5 + 1
            total += i % 5 + 1
        }
        let line = try Self.nodeLine(s, npu: decode.id)
        #expect(line.contains("requests \(total) "), "\(line)")
    }
}
