import ServingEngine
import Testing

@testable import Console

/// The Pod view's KV figures and the KV view's side by side. The KV view draws a TE's KV as
/// the blocks its requests hold plus those reserved for the rest of each reply; the Pod view's
/// Instances table showed the held share alone under the bare word "KV", so on
/// `colocated:8:llama-3-70b:nvidia-h100:tp8` the same replica read two figures. A TE's figure
/// is now held + reserved in both, and every KV figure on the Pod view says its scope: the
/// snapshot has no reserve per chip or per node, so those say "held".
@Suite struct PodKVScopeTests {
    static func pod(_ s: Snapshot, width: Int, height: Int) -> [String] {
        InstancesPanelTests.render(s, width: width, height: height)
    }

    /// The KV figure of `name`'s row in the Instances panel: its one percentage.
    static func kvFigure(_ rows: [String], _ name: String) -> String? {
        guard let row = rows.first(where: { $0.hasPrefix("│ \(name) ") }) else { return nil }
        return row.split(separator: " ").map(String.init).first { $0.hasSuffix("%") }
    }

    @Test(arguments: ["superpod", KVPanelTitleTests.h100], [(80, 24), (200, 60)])
    func teFigureIsHeldPlusReservedAsInTheKVView(spec: String, size: (Int, Int)) throws {
        let s = try GPUNoDRAMPoolTests.snapshot(spec)
        let lines = Self.pod(s, width: size.0, height: size.1)
        let text = lines.joined(separator: "\n")
        // The grid's colour (per chip) has no reserve: it says "held", at 80 columns too.
        #expect(text.contains("KV held)"), "\(text)")
        // 80×24 has no room for the Instances table.
        guard size.0 >= 200 else { return }
        let top = try #require(lines.first { $0.hasPrefix("┌ Instances ") }, "\(text)")
        #expect(top.contains("KV held + reserved"), "\(top)")
        let rows = InstancesPanelTests.panel(lines)
        var checked = 0
        for te in s.instances {
            guard let figure = Self.kvFigure(rows, te.name) else { continue }
            let share = try #require(te.kvHeldPlusReservedShare)
            #expect(figure == KVCacheView.axisPercent(share), "\(spec) \(te.name): \(figure) vs \(share)")
            checked += 1
        }
        #expect(checked >= 1, "\(text)")
        // Some replica holds a reserve now, or the check above would not tell the scopes apart
        // (the superpod's TEs hold too little at 4 req/s to differ in a printed figure).
        #expect(spec == "superpod" || s.instances.contains {
            KVCacheView.axisPercent($0.kvUsage) != KVCacheView.axisPercent($0.kvHeldPlusReservedShare ?? 0)
        })
    }

    /// An older server sends no block counts: the held share, under a title that says so.
    @Test func withoutBlockCountsTheTableSaysHeld() throws {
        var s = try GPUNoDRAMPoolTests.snapshot(KVPanelTitleTests.h100)
        for i in s.instances.indices { s.instances[i].kvBlocksTotal = nil }
        let lines = Self.pod(s, width: 200, height: 60)
        let top = try #require(lines.first { $0.hasPrefix("┌ Instances ") })
        #expect(top.contains("KV held") && !top.contains("reserved"), "\(top)")
        let rows = InstancesPanelTests.panel(lines)
        let te = s.instances[0]
        #expect(Self.kvFigure(rows, te.name) == KVCacheView.axisPercent(te.kvUsage), "\(rows.joined(separator: "\n"))")
    }

    /// The NPU detail's meter and the node table are per chip and per node: held.
    @Test func chipAndNodeFiguresSayHeld() throws {
        let s = try GPUNoDRAMPoolTests.snapshot("superpod")
        var state = ConsoleUpdate.update(ConsoleState(width: 300, height: 90), .tick(s)).0
        state.view = .pod
        state.selectedNPU = try #require(s.npus.first { $0.role == .decode }?.id)
        let lines = ConsoleScreen.render(state, s, theme: .builtinDark, width: 300, height: 90).lines
        let text = lines.joined(separator: "\n")
        let npu = s.npus[state.selectedNPU]
        #expect(lines.contains { $0.contains("│ KV ") && $0.contains(" \(KVCacheView.axisPercent(npu.kvUsage)) held") }, "\(text)")
        #expect(text.contains("┌ Nodes · 48 · busy and KV held: mean over"), "\(text)")
        #expect(text.contains(" KV held ") && !text.contains("KV use"), "\(text)")
    }
}
