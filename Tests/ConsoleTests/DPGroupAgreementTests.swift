import PodModel
import ServingEngine
import Testing
import XDSTestSupport

@testable import Console

/// On a colocated GPU preset the Requests view placed a request on "colocated-1/dp0" (the
/// engine's location) while the Pod view's detail for a GPU of colocated-1 said "DP none · TP4":
/// two views of one deployment disagreeing. The engine's snapshot lists DP group 0 on each GPU of
/// the replica (its only group), so the detail names that group, as the request does.
@Suite struct DPGroupAgreementTests {
    @Test(arguments: ["colocated:4:llama-3-70b:nvidia-h100:tp4", "colocated:2:llama-2-7b:nvidia-a100:tp1"])
    func podDetailNamesTheGroupTheRequestsViewNames(deployment: String) throws {
        let s = try SnapshotFixtures.live(deployment, rate: 4, until: 6)
        let request = try #require(s.inFlight.first { $0.location.contains("/dp") }, "no placed request")
        let parts = request.location.split(separator: "/")
        let te = String(parts[0]), group = String(parts[1].dropFirst(2))
        let npu = try #require(s.npus.first { $0.instance == te })
        #expect(npu.dpGroups.map(String.init) == [group], "the snapshot's groups: \(npu.dpGroups)")

        var state = ConsoleUpdate.update(ConsoleState(width: 160, height: 45), .tick(s)).0
        state.selectedNPU = npu.id
        let pod = ConsoleScreen.render(state, s, theme: .builtinDark, width: 160, height: 45).lines
        let detail = try #require(pod.first { $0.contains("experts ") && $0.contains("MoE load") }, "\(pod.joined(separator: "\n"))")
        #expect(!detail.contains("DP none"), "\(detail)")
        #expect(detail.contains("DP group \(group) of 1 · TP"), "\(detail)")

        state.view = .requests
        let requests = ConsoleScreen.render(state, s, theme: .builtinDark, width: 160, height: 45).lines.joined(separator: "\n")
        #expect(requests.contains("\(te)/dp\(group)"), "\(requests)")
    }
}
