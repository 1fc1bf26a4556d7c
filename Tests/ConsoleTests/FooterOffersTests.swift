import PodModel
import ServingEngine
import Testing
import XDSTestSupport

@testable import Console

/// The footer offers only keys that act on this deployment and in this view. On
/// `colocated:4:llama-3-70b:nvidia-h100:tp4` (a dense model) it listed `r rebalance`, which the
/// engine refuses ("llama-3-70b has no experts"); in the Experts view `/ filter` and `hjkl move`
/// acted on a heat map that is not there; in the KV and Latency views `hjkl` moved nothing.
@Suite struct FooterOffersTests {
    static let dense = try! SnapshotFixtures.live("colocated:4:llama-3-70b:nvidia-h100:tp4", rate: 2, until: 5)

    static func footer(_ s: Snapshot, _ view: ConsoleView, width: Int, height: Int,
                       capabilities: Set<EngineCapability> = Set(EngineCapability.allCases)) -> String {
        var state = ConsoleUpdate.update(ConsoleState(width: width, height: height, capabilities: capabilities), .tick(s)).0
        state.view = view
        state.status = nil  // the hints, not a first-run note
        return ConsoleScreen.render(state, s, theme: .builtinDark, width: width, height: height).line(height - 1)
    }

    @Test(arguments: [(80, 24), (120, 40), (200, 60)])
    func aDenseModelIsOfferedNoRebalance(size: (Int, Int)) {
        for view in ConsoleView.allCases {
            let line = Self.footer(Self.dense, view, width: size.0, height: size.1)
            #expect(!line.contains("rebal"), "\(view) \(size): \(line)")
            // Keys that do act here stay.
            #expect(line.contains("quit") && line.contains("drain") && line.contains("fault"), "\(view) \(size): \(line)")
        }
    }

    @Test func keysWithNothingToActOnAreNotOffered() {
        let experts = Self.footer(Self.dense, .experts, width: 200, height: 60)
        #expect(!experts.contains("filter") && !experts.contains("hjkl"), "\(experts)")
        for view in [ConsoleView.kvCache, .latency] {
            let line = Self.footer(SnapshotFixtures.superpod, view, width: 200, height: 60)
            #expect(!line.contains("hjkl"), "\(view): \(line)")
        }
        // Where they act, they are offered: the superpod's experts, the Pod grid, the lists.
        let moe = Self.footer(SnapshotFixtures.superpod, .experts, width: 200, height: 60)
        #expect(moe.contains("/ filter") && moe.contains("hjkl move") && moe.contains("r rebalance"), "\(moe)")
        for view in [ConsoleView.pod, .requests, .events] {
            #expect(Self.footer(SnapshotFixtures.superpod, view, width: 200, height: 60).contains("hjkl move"), "\(view)")
        }
    }

    /// An engine (a `--connect`ed server) without drains, faults or rebalance: the footer does not
    /// offer the keys its build turns down.
    @Test func keysTheLinkCannotSendAreNotOffered() {
        let line = Self.footer(SnapshotFixtures.superpod, .pod, width: 200, height: 60, capabilities: [.speed])
        #expect(!line.contains("drain") && !line.contains("fault") && !line.contains("rebal"), "\(line)")
        #expect(line.contains("+/- speed"), "\(line)")
    }
}
