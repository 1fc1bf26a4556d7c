import PodModel
import ServingEngine
import Testing

@testable import Console

/// xdeepserve-ma's Pod view at 80×24: the expert dies (E) are coloured by their MoE load (× the
/// mean die: orange from 4×, red from 6×), but the narrow legend keyed the colours only as
/// "■<70% ok ■<90% high ■≥90% crit", percentages of nothing an expert die shows (its detail says
/// "MoE load 2.32×", drawn green). The wide legend said "expert: MoE load, high ≥4×, crit ≥6×
/// mean"; the narrow one now keys the expert colours too, with their swatches.
@Suite struct NarrowExpertLegendTests {
    static func pod(_ spec: String, width: Int, height: Int) throws -> (CellBuffer, [String]) {
        let engine = try ServingEngine(configuration: EngineConfiguration(deployment: try Deployment.resolve(spec), seed: 1, syntheticRate: 1))
        engine.run(until: 3)
        let s = engine.snapshot()
        let state = ConsoleUpdate.update(ConsoleState(width: width, height: height), .tick(s)).0
        let b = ConsoleScreen.render(state, s, theme: .builtinDark, width: width, height: height)
        return (b, b.lines)
    }

    @Test func narrowLegendKeysTheExpertColours() throws {
        let (b, lines) = try Self.pod("xdeepserve-ma", width: 80, height: 24)
        let y = try #require(lines.firstIndex { $0.contains("load ■idle") }, "\(lines.joined(separator: "\n"))")
        let row = lines[y]
        #expect(row.contains("⊘drained ~draining E ■≥4× ■≥6×"), "\(row)")
        // A blank stays before the border.
        #expect(row.hasSuffix(" │"), "\(row)")
        // Each swatch in the colour of its band.
        let chars = Array(row)
        let swatches = chars.indices.filter { chars[$0] == "■" }
        try #require(swatches.count == 6)
        #expect(b[swatches[4], y].style == NPULoad.style(.high))
        #expect(b[swatches[5], y].style == NPULoad.style(.critical))
    }

    /// A pod without expert dies keeps its legend.
    @Test func superpodLegendIsUnchanged() throws {
        let (_, lines) = try Self.pod("superpod", width: 80, height: 24)
        #expect(lines.contains { $0.hasPrefix("│ load ■idle ■<70% ok ■<90% high ■≥90% crit ⊘drained ~draining ") && !$0.contains("≥4×") })
    }
}
