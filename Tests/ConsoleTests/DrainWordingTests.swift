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

/// The Die load panel put "max 1.14×" (each die's load averaged over the layers) right above
/// "imbalance (max/mean) 1.42" (each layer's busiest die over its mean, averaged): two different
/// maxima under one word, live on the default demo. Each now says which it is where it fits;
/// at 80 columns the die row says "layer mean" and the imbalance keeps its thresholds whole.
@Suite struct DieLoadScopeTests {
    @Test func bothMaximaSayWhatTheyAreAtEverySize() {
        for (w, h) in [(80, 24), (120, 40), (200, 60)] {
            let lines = renderFixture(.experts, width: w, height: h)
            let dies = lines.first { $0.contains("max 1.42×") }
            #expect(dies?.contains("layer") == true, "\(w)×\(h): \(dies ?? "none")")
            let imbalance = lines.first { $0.contains("imbalance (") }
            #expect(imbalance?.contains("warn ≥4 alarm ≥6") == true, "\(w)×\(h): \(imbalance ?? "none")")
        }
        let wide = renderFixture(.experts, width: 200, height: 60)
        #expect(wide.contains { $0.contains("imbalance (each layer's max/mean, averaged) 1.41") })
    }

    /// The strip's caption ended "full at the warn level" at 160 columns, the level cut off.
    @Test func theStripCaptionKeepsItsScale() {
        for (w, h) in [(160, 48), (200, 60)] {
            let caption = renderFixture(.experts, width: w, height: h).first { $0.contains("every die") }
            #expect(caption?.contains("full at") == true && caption?.contains("4×") == true, "\(w)×\(h): \(caption ?? "none")")
        }
    }
}
