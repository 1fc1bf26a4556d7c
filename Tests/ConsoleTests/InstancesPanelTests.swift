import ServingEngine
import Testing
import XDSTestSupport

@testable import Console

/// The Pod view's Instances panel after elastic scaling. Retired TEs kept their place in the
/// engine's list: after `scale prefill -3` they sat between the serving prefill TEs and the
/// decode TE with their last step times, as if live, and at 120×40 a longer list was cut with
/// nothing to say so.
@Suite struct InstancesPanelTests {
    /// The fixture after `scale prefill -3`: prefill-5…7 retired (no NPUs, stale step times).
    static let scaledIn: Snapshot = {
        var s = SnapshotFixtures.superpod
        for i in s.instances.indices {
            let retired = ["prefill-5", "prefill-6", "prefill-7"].contains(s.instances[i].name)
            s.instances[i].state = retired ? "retired" : "in-service"
            if retired { s.instances[i].npus = 0 }
        }
        return s
    }()

    /// The scaled-in fixture with eight more prefill TEs loading their weights after it.
    static let scaledOutAgain: Snapshot = {
        var s = scaledIn
        for i in 8..<16 {
            var te = InstanceStatus(name: "prefill-\(i)", kind: "prefill", npus: 16)
            te.state = "loading"
            te.phaseSecondsLeft = 12
            s.instances.append(te)
        }
        return s
    }()

    static func render(_ s: Snapshot, width: Int, height: Int) -> [String] {
        var state = ConsoleUpdate.update(ConsoleState(width: width, height: height), .tick(s)).0
        state.view = .pod
        return ConsoleScreen.render(state, s, theme: .builtinDark, width: width, height: height).lines
    }

    /// The panel's inner rows, from its header to its bottom border, cut to the panel's width.
    static func panel(_ lines: [String]) -> [String] {
        guard let top = lines.firstIndex(where: { $0.hasPrefix("┌ Instances ") }),
              let width = lines[top].firstIndex(of: "┐").map({ lines[top].distance(from: lines[top].startIndex, to: $0) + 1 })
        else { return [] }
        let rows = lines[(top + 1)...].prefix { !$0.hasPrefix("└") }
        return rows.map { String($0.prefix(width)) }
    }

    @Test func servingTEsComeFirstAndRetiredOnesFoldIntoOneLine() {
        for (width, height) in [(120, 40), (200, 55)] {
            let rows = Self.panel(Self.render(Self.scaledIn, width: width, height: height))
            let names = rows.compactMap { row in row.split(separator: " ").dropFirst().first.map(String.init) }
            #expect(Array(names.prefix(7)) == ["instance", "prefill-0", "prefill-1", "prefill-2", "prefill-3", "prefill-4", "decode-0"],
                    "\(width)×\(height): \(rows.joined(separator: "\n"))")
            #expect(rows[7].hasPrefix("│ 3 retired (scaled in): prefill-5, prefill-6, prefill-7 "), "\(width)×\(height): \(rows[7])")
            // No retired TE gets a table row with its stale step time.
            #expect(!rows.contains { $0.hasPrefix("│ prefill-5 ") || $0.contains("ms retired") }, "\(width)×\(height)")
            #expect(rows.dropFirst(8).allSatisfy { $0.dropFirst().allSatisfy { $0 == " " || $0 == "│" } })
        }
    }

    /// At 120×40 the panel holds eleven rows under its header; fifteen rows' worth of TEs do not
    /// fit, and the last row says what is left out rather than the list ending as if whole.
    @Test func aCutListSaysHowManyMoreThereAre() {
        let rows = Self.panel(Self.render(Self.scaledOutAgain, width: 120, height: 40))
        #expect(rows.count == 12, "\(rows.joined(separator: "\n"))")
        // The TEs that need attention first: decode-0 (its NPU 140 is lost), the eight loading
        // ones, then the serving ones in order.
        #expect(rows[1].hasPrefix("│ decode-0 ") && rows[1].hasSuffix(" degraded    │"), "\(rows.joined(separator: "\n"))")
        #expect(rows[2].hasPrefix("│ prefill-8 ") && rows[2].contains("loading 12s"))
        #expect(rows[9].hasPrefix("│ prefill-15 ") && rows[10].hasPrefix("│ prefill-0 "))
        #expect(rows[11].hasPrefix("│ +4 more TEs (4 serving) · 3 retired "), "\(rows.joined(separator: "\n"))")
        let wide = Self.panel(Self.render(Self.scaledOutAgain, width: 200, height: 55))
        #expect(wide.contains { $0.hasPrefix("│ prefill-15 ") }, "\(wide.joined(separator: "\n"))")
        #expect(wide.last?.hasPrefix("│ 3 retired (scaled in): prefill-5, prefill-6, prefill-7") == true)
        #expect(!wide.contains { $0.contains(" more TE") })
    }

    @Test func fittingCountsWhatIsLeftOut() {
        let list = InstanceRows(Self.scaledOutAgain.instances)
        #expect(list.live.count == 14 && list.retired.count == 3 && list.wanted == 15)
        let whole = list.fitting(rows: 15)
        #expect(whole.shown.count == 14 && whole.lastLine == "3 retired (scaled in): prefill-5, prefill-6, prefill-7")
        let cut = list.fitting(rows: 4)
        #expect(cut.shown.map(\.name) == ["prefill-8", "prefill-9", "prefill-10"])
        #expect(cut.lastLine == "+11 more TEs (5 loading, 6 serving) · 3 retired")
        #expect(list.fitting(rows: 0).shown.isEmpty && list.fitting(rows: 0).lastLine == nil)
        let one = InstanceRows(Array(Self.scaledIn.instances.prefix(2))).fitting(rows: 1)
        #expect(one.shown.isEmpty && one.lastLine == "2 TEs, all serving")
        let none = InstanceRows(Array(Self.scaledIn.instances.prefix(3)))
        #expect(none.retiredLine == nil && none.fitting(rows: 3).lastLine == nil)
    }

    /// At 80×24 there is no room for the panel; nothing of it is drawn past the edge.
    @Test func smallScreenStaysWithinItsEdges() {
        let lines = Self.render(Self.scaledOutAgain, width: 80, height: 24)
        #expect(lines.count == 24 && lines.allSatisfy { $0.count <= 80 })
        #expect(!lines.contains { $0.contains("ms retired") })
    }

    /// At 100×30 the panel had one row, which read "+9 more TEs (9 serving)" with no TE listed.
    /// One row now counts them all and names the ones that need attention; with more rows the
    /// degraded and starting TEs come before the serving ones.
    @Test func aShortPanelNamesTheTEsThatNeedAttention() {
        // The fixture's NPU 140, lost and not yet recovered, is in decode-0.
        let lost = Self.panel(Self.render(SnapshotFixtures.superpod, width: 100, height: 30))
        // The summary takes the first line: no column titles over an empty table.
        #expect(lost.count == 2 && lost[0].hasPrefix("│ 9 TEs: 8 serving, 1 degraded · decode-0 degraded "),
                "\(lost.joined(separator: "\n"))")
        #expect(!lost.contains { $0.contains("instance") && $0.contains("queued") }, "\(lost.joined(separator: "\n"))")
        var healthy = SnapshotFixtures.superpod
        healthy.activeFaults = []
        for i in healthy.npus.indices { healthy.npus[i].faulted = false }
        let calm = Self.panel(Self.render(healthy, width: 100, height: 30))
        #expect(calm.count == 2 && calm[0].hasPrefix("│ 9 TEs, all serving "), "\(calm.joined(separator: "\n"))")
        let faulted = Self.panel(Self.render(ReviewRecheckTests.faulted, width: 100, height: 30))
        #expect(faulted.count == 2 && faulted[0].hasPrefix("│ 9 TEs: ") && faulted[0].contains("decode-0 degraded"),
                "\(faulted.joined(separator: "\n"))")
        #expect(!faulted.contains { $0.contains("more TE") })
        let list = InstanceRows(ReviewRecheckTests.faulted.instances, degraded: InstanceRows.degraded(ReviewRecheckTests.faulted))
        #expect(list.degraded.contains("decode-0"))
        let cut = list.fitting(rows: 3)
        #expect(cut.shown.allSatisfy { list.degraded.contains($0.name) } && cut.shown.contains { $0.name == "decode-0" },
                "\(cut.shown.map(\.name))")
        #expect(cut.lastLine?.hasPrefix("+7 more TEs (") == true, "\(cut.lastLine ?? "nil")")
    }
}
