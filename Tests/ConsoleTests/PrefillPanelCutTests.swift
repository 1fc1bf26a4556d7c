import PodModel
import ServingEngine
import Testing

@testable import Console

/// On `xdeepserve-ma` at 80×24 the KV view's decode strip (480 groups) takes eight rows, leaving
/// the "Prefill TEs" panel seven: it listed prefill-0 … prefill-6 and stopped, with nothing to
/// say that prefill-7 was left out or how full it was. A cut list now ends in a line that counts
/// the TEs not shown and gives the fullest figure among them, so a full TE is never hidden.
@Suite struct PrefillPanelCutTests {
    /// The panel's inner lines, from its title to its bottom border (left half of the screen).
    static func panel(_ text: String) -> [String] {
        let lines = text.split(separator: "\n").map(String.init)
        guard let top = lines.firstIndex(where: { $0.contains("Prefill TEs ·") }) else { return [] }
        let width = lines[top].firstIndex(of: "┐").map { lines[top].distance(from: lines[top].startIndex, to: $0) } ?? 40
        var rows: [String] = []
        for line in lines[(top + 1)...] {
            let left = String(line.prefix(width + 1))
            if left.hasPrefix("└") { break }
            rows.append(left)
        }
        return rows
    }

    @Test func aCutListSaysWhatIsLeftOut() throws {
        let s = try GPUNoDRAMPoolTests.snapshot("xdeepserve-ma")
        let tes = s.instances.filter { $0.kind == "prefill" && $0.state != "retired" }
        try #require(tes.count == 8)
        let text = GPUNoDRAMPoolTests.render(s, width: 80, height: 24)
        let rows = Self.panel(text)
        // The layout this defect was seen in: fewer rows than TEs.
        try #require(!rows.isEmpty && rows.count < tes.count, "\(text)")
        let shown = tes.filter { te in rows.contains { $0.contains("│ \(te.name) ") } }
        #expect(shown.count == rows.count - 1, "\(rows)")
        let hidden = tes.filter { te in !shown.contains { $0.name == te.name } }
        let last = try #require(rows.last)
        #expect(last.contains("+\(hidden.count) more"), "\(last)")
        // The fullest of the hidden ones, in the panel's measure and format.
        let fullest = try #require(hidden.map { $0.kvHeldPlusReservedShare ?? $0.kvUsage }.max())
        #expect(last.contains(KVCacheView.axisPercent(fullest)), "\(last)")
    }

    /// Where every TE has a row, no summary line is added (superpod at 80×24 fits all eight).
    @Test func aWholeListHasNoSummary() throws {
        let text = GPUNoDRAMPoolTests.render(try GPUNoDRAMPoolTests.snapshot("superpod"), width: 80, height: 24)
        let rows = Self.panel(text)
        #expect(rows.contains { $0.contains("│ prefill-7 ") }, "\(text)")
        #expect(!rows.contains { $0.contains("more") }, "\(text)")
    }
}
