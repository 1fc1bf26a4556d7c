import ServingEngine
import Testing
import XDSTestSupport

@testable import Console

/// The header counts drained nodes ("drained 1"); the Faults panel and the ticker name them.
/// Both said "drained N": under "drained 1", the panel's "⊘ drained 5" (node 5) read as five.
@Suite struct DrainWordingTests {
    @Test func panelAndTickerNameNodesWhereTheHeaderCountsThem() {
        let lines = renderFixture(.pod, width: 160, height: 45)
        #expect(lines[1].contains("drained 1 draining 1"))
        let text = lines.joined(separator: "\n")
        #expect(text.contains("⊘ drained node 5  ~ draining node 20"))
        #expect(!text.contains("⊘ drained 5"))
        let ticker = renderFixture(.experts, width: 120, height: 40).joined(separator: "\n")
        #expect(ticker.contains("~ draining node 20 · ⊘ drained node 5"))
    }

    @Test func severalNodesAreNodes() {
        #expect(PodView.nodeList([5, 20], separator: ",") == "nodes 5,20")
        #expect(PodView.nodeList([5], separator: ", ") == "node 5")
        #expect(PodView.nodeList([], separator: ", ") == "")
    }
}
