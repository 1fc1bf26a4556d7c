import PodModel
import ServingEngine
import Testing

@testable import Console

/// On `colocated:8:llama-3-70b:nvidia-h100:tp8` each replica is one DP group, listed twice in
/// view 3: the strip above (titled "KV held + reserved", "now: mean 2.9%  fullest group 3.2%")
/// and the "TEs that prefill · KV use" panel ("colocated-0 … 2%"), which counts the blocks held
/// without the reserve for the rest of each reply, rounded to whole percents. Side by side the
/// same replica read 3.2% and 2%, as if one figure were wrong. The panel names its measure and
/// prints it as the strip does (one decimal below 10 %).
@Suite struct ColocatedTEKVMeasureTests {
    @Test(arguments: [(80, 24), (200, 60)])
    func tePanelNamesItsMeasure(size: (Int, Int)) throws {
        let s = try GPUNoDRAMPoolTests.snapshot(KVPanelTitleTests.h100)
        let text = GPUNoDRAMPoolTests.render(s, width: size.0, height: size.1)
        let lines = text.split(separator: "\n").map(String.init)
        #expect(lines.contains { $0.contains("Colocated DP groups") && $0.contains("KV held + reserved") }, "\(text)")
        let title = try #require(lines.first { $0.contains("TEs that prefill") }, "\(text)")
        #expect(title.contains("TEs that prefill · KV held") && !title.contains("KV held +") && !title.contains("KV use"), "\(title)")
        let tes = s.instances.filter { $0.kind == "colocated" }
        try #require(tes.count == 8)
        for te in tes {
            let row = try #require(lines.first { $0.contains("│ \(te.name) ") }, "\(text)")
            #expect(row.contains(" \(KVCacheView.axisPercent(te.kvUsage)) │"), "\(te.name) \(te.kvUsage): \(row)")
        }
    }

    /// The superpod's prefill TEs name the same measure.
    @Test func superpodPrefillPanelNamesItsMeasure() throws {
        let text = GPUNoDRAMPoolTests.render(try GPUNoDRAMPoolTests.snapshot("superpod"), width: 80, height: 24)
        #expect(text.contains("Prefill TEs · KV held") && !text.contains("KV use"), "\(text)")
    }
}
