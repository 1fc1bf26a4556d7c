import ServingEngine
import Testing
import XDSTestSupport

@testable import Console

/// The Instances panel's last line (the retired TEs, or what a cut list leaves out) was meant to
/// end in "…" when cut, but the check compared `put`'s returned column with the edge, and `put`
/// stops at the edge: after `scale prefill -7` at 120×40 the line read "7 retired (scaled in):
/// prefill-1, … prefill-5, pre" up to the border, as if it named them all.
@Suite struct InstancesLineCutTests {
    @Test func aLongRetiredLineEndsInAnEllipsis() throws {
        var s = SnapshotFixtures.superpod
        for i in s.instances.indices where s.instances[i].kind == "prefill" && s.instances[i].name != "prefill-0" {
            s.instances[i].state = "retired"
            s.instances[i].npus = 0
        }
        let rows = InstancesPanelTests.panel(InstancesPanelTests.render(s, width: 120, height: 40))
        let line = try #require(rows.first { $0.hasPrefix("│ 7 retired (scaled in): prefill-1, ") }, "\(rows.joined(separator: "\n"))")
        #expect(line.hasSuffix("… │"), "\(line)")
        // At 200 columns it fits whole, and ends with the last name.
        let wide = InstancesPanelTests.panel(InstancesPanelTests.render(s, width: 200, height: 55))
        #expect(wide.contains { $0.contains("prefill-6, prefill-7 ") && !$0.contains("…") }, "\(wide.joined(separator: "\n"))")
    }
}
