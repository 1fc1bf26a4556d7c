import PodModel
import ServingEngine
import Testing

@testable import Console

/// On `colocated:8:llama-3-70b:nvidia-h100:tp8` each replica is one DP group, listed twice in
/// view 3: the strip above ("KV held + reserved", "fullest group 3.2%") and the "TEs that
/// prefill" panel, which counted the blocks held without the reserve for the rest of each reply
/// ("colocated-0 … 2%"), lower even than "KV written" beside it. The panel now shows the strip's
/// scope, held + reserved, so the same replica reads the same figure in both.
@Suite struct ColocatedTEKVMeasureTests {
    /// The panel's row for `name`: from the name to the panel's right border.
    static func row(_ lines: [String], _ name: String) -> String? {
        guard let line = lines.first(where: { $0.contains("│ \(name) ") }),
              let start = line.range(of: "│ \(name) ") else { return nil }
        let rest = line[start.lowerBound...].dropFirst()
        return String(rest.prefix { $0 != "│" })
    }

    @Test(arguments: [(80, 24), (200, 60)])
    func teFigureIsTheStripGroupFigure(size: (Int, Int)) throws {
        let s = try GPUNoDRAMPoolTests.snapshot(KVPanelTitleTests.h100)
        let text = GPUNoDRAMPoolTests.render(s, width: size.0, height: size.1)
        let lines = text.split(separator: "\n").map(String.init)
        #expect(lines.contains { $0.contains("Colocated DP groups") && $0.contains("KV held + reserved") }, "\(text)")
        let title = try #require(lines.first { $0.contains("TEs that prefill") }, "\(text)")
        #expect(title.contains("TEs that prefill · KV held + reserved") && !title.contains("adds the reserve"), "\(title)")
        let tes = s.instances.filter { $0.kind == "colocated" }
        // One group per replica, in TE order: the strip's group i is colocated-i.
        try #require(tes.count == 8 && s.kv.decodeGroups.count == 8)
        // Some replica holds a reserve now, or the check below would not tell the scopes apart.
        #expect(zip(tes, s.kv.decodeGroups).contains { KVCacheView.axisPercent($0.kvUsage) != KVCacheView.axisPercent($1) })
        // As many rows as the panel has room for (all eight at 200×60).
        var rows = 0
        for (te, group) in zip(tes, s.kv.decodeGroups) {
            guard let row = Self.row(lines, te.name) else { continue }
            rows += 1
            #expect(row.hasSuffix(" \(KVCacheView.axisPercent(group)) "), "\(te.name) group \(group): \(row)")
        }
        #expect(rows >= (size.1 >= 60 ? 8 : 1), "\(text)")
    }

    /// The superpod's prefill TEs name the same measure.
    @Test func superpodPrefillPanelNamesItsMeasure() throws {
        let text = GPUNoDRAMPoolTests.render(try GPUNoDRAMPoolTests.snapshot("superpod"), width: 80, height: 24)
        #expect(text.contains("Prefill TEs · KV held + reserved") && !text.contains("KV use"), "\(text)")
    }
}
