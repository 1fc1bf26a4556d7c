import Foundation
import ServingEngine
import Testing
import XDSTestSupport

@testable import Console

/// Issue 13, "layouts that degrade gracefully": at 100×30 and 160×45, as at 80×24, 120×40 and
/// 200×60, every view keeps the vitals, a trace of the active fault and drains, and its frame.
@Suite(.timeLimit(.minutes(10))) struct LayoutSizeTests {
    static let sizes = [(100, 30), (160, 45)]

    static let header100 = [
        spread(" xds  superpod · deepseek-r1 · ascend-910c", "150.0 req/s   ▶ 1×   sim 0:10:42", width: 99),
        " 182.4k tok/s r/w 24.3k/812 faults 1 ⊘1 ~1 since start: TTFT99 1.82/2s TPOT99 36.4/35ms SLO 96%",
        spread("  1 Pod   2 Experts   3 KV cache   4 Latency   5 Requests   6 Events", "theme dark", width: 99),
    ]
    static let header160 = [
        spread(" xds  superpod · deepseek-r1 · ascend-910c", "150.0 req/s   ▶ 1×   sim 0:10:42", width: 159),
        " 182.4k tok/s  run 24.3k  wait 812  faults 1  drained 1 draining 1  since start: TTFT99 1820/2000ms  TPOT99 36.4/35ms  SLO 96%",
        spread("  1 Pod   2 Experts   3 KV cache   4 Latency   5 Requests   6 Events", "theme dark", width: 159),
    ]

    @Test(arguments: sizes)
    func everyViewKeepsTheVitalsTheFaultAndItsFrame(size: (Int, Int)) {
        let (w, h) = size
        for view in ConsoleView.allCases {
            let lines = renderFixture(view, width: w, height: h)
            #expect(lines.count == h)
            #expect(Array(lines[0..<3]) == (w == 100 ? Self.header100 : Self.header160), "\(view) at \(w)×\(h)")
            #expect(lines.allSatisfy { $0.count <= w }, "\(view) at \(w)×\(h) draws past the edge")
            // The frame reaches the right edge and the row above the footer.
            #expect(lines[3].count == w && lines[3].hasPrefix("┌") && lines[3].hasSuffix("┐"), "\(view) at \(w)×\(h)")
            #expect(lines[h - 2].hasPrefix("└") && lines[h - 2].hasSuffix("┘"), "\(view) at \(w)×\(h)")
            // Active fault and drains: the Faults panel, or the ticker in the bottom border.
            let text = lines.joined(separator: "\n")
            let panel = text.contains("Faults · drains") && text.contains("#1 detected  NPU 140 lost (node 17)")
            let ticker = lines[h - 2].contains("⚠ #1 NPU 140 lost (node 17) · ~ draining node 20 · ⊘ drained node 5")
            #expect(panel || ticker, "\(view) at \(w)×\(h) shows no trace of the active fault")
            // The footer gives the keys back (no status is set).
            #expect(lines[h - 1].hasPrefix("q quit"), "\(view) at \(w)×\(h)")
        }
    }

    @Test func podAt100x30KeepsLegendsDetailAndTicker() {
        let lines = renderFixture(.pod, width: 100, height: 30)
        #expect(lines[3] == "┌ Pod · 48×8 NPUs (chips, 2 dies each) · colour = load (prefill groups busy, decode KV held) ──────┐")
        #expect(lines[5] == "│  01 PPPPPPPP  09 PPPPPPPP X17 DDDDXDDD  25 DDDDDDDD  33 DDDDDDDD  41 ········ " + String(repeating: " ", count: 19) + "│")
        #expect(lines[12].hasPrefix("│ P pre D dec ·spare X dead ↓slow #HBM ≠link "))
        #expect(lines[13].hasPrefix("│ load ■idle ■<70% ok ■<90% high ■≥90% crit ⊘drained ~draining "))
        #expect(lines[15].hasPrefix("┌ NPU 0 · node 0 ─"))
        #expect(lines[21].hasPrefix("│ node 0 in service  util 62%  requests 50  d/u drain  f fault "))
        #expect(lines[25].hasPrefix("┌ Instances · KV held ─"))
        #expect(lines[28] == "└─ ⚠ #1 NPU 140 lost (node 17) · ~ draining node 20 · ⊘ drained node 5 " + String(repeating: "─", count: 28) + "┘")
    }

    @Test func podAt160x45GivesTheSidePanelsRoomInsteadOfClipping() {
        let lines = renderFixture(.pod, width: 160, height: 45)
        let text = lines.joined(separator: "\n")
        // One-column NPU cells at 160 (two-column cells start at 180, where the side column fits).
        #expect(lines[5].hasPrefix("│  01 PPPPPPPP  09 PPPPPPPP X17 DDDDXDDD  25 DDDDDDDD  33 DDDDDDDD  41 ········ "))
        #expect(text.contains("│ node 0 in service  util 62%  requests 50  d/u drain  f fault"))
        #expect(text.contains("│ DP group 0 of 8  experts –  MoE load –  "))
        // The Faults panel is on screen beside the detail and instances, its lines whole.
        #expect(text.contains("│ #1 detected  NPU 140 lost (node 17) "))
        #expect(text.contains("│  at 0:09:58 · 0 re-prefilled · 0 failed "))
        #expect(text.contains("│ ⊘ drained node 5  ~ draining node 20 "))
        // decode-0 holds NPU 140, lost and not recovered: degraded, not "serving".
        #expect(text.contains("│ decode-0     decode      160     310    24.3k   68%   88.5ms degraded "))
    }

    @Test(arguments: sizes)
    func latencyAndKVKeepTheirScales(size: (Int, Int)) {
        let latency = renderFixture(.latency, width: size.0, height: size.1).joined(separator: "\n")
        for label in ["TTFT", "TPOT", "E2E", "▲ SLO 2.00s", "▲ SLO 35.0ms", "p99 1.82s", "tallest bar"] {
            #expect(latency.contains(label), "\(label) at \(size)")
        }
        let kv = renderFixture(.kvCache, width: size.0, height: size.1).joined(separator: "\n")
        for label in ["Decode DP groups · 320 (one per die) · KV held + reserved", "peak since start 91%", "prefix hit", "DRAM pool"] {
            #expect(kv.contains(label), "\(label) at \(size)")
        }
    }

    @Test(arguments: sizes)
    func listsKeepTheirColumnsAndKeys(size: (Int, Int)) {
        let requests = renderFixture(.requests, width: size.0, height: size.1)
        #expect(requests[3].hasPrefix("┌ In flight · 25.1k (snapshot lists 40) · "))
        #expect(requests[4].hasPrefix("│ id       stage        age▼  prompt     gen/out     TTFT where"))
        #expect(requests[5].hasPrefix("│ #96000   decode      60.0s    5575    650/1952    500ms decode-0/dp0"))
        let events = renderFixture(.events, width: size.0, height: size.1).joined(separator: "\n")
        #expect(events.contains("/ filter") && events.contains("v level"))
    }

    @Test func dumpForReview() throws {
        guard let dir = ProcessInfo.processInfo.environment["XDS_DUMP_LAYOUTS"] else { return }
        for (w, h) in Self.sizes + [(80, 24), (120, 40), (200, 60)] {
            for view in ConsoleView.allCases {
                let text = renderFixture(view, width: w, height: h).joined(separator: "\n")
                try text.write(toFile: "\(dir)/\(w)x\(h)-\(view.rawValue).txt", atomically: false, encoding: .utf8)
            }
        }
    }
}

/// The Experts view's placement state is never cut mid-word: at 80 columns "placement stable"
/// read "placement stab"; it now says "stable" when the long form does not fit.
@Suite struct PlacementStateWordingTests {
    static func row(_ s: Snapshot, _ w: Int, _ h: Int) -> String {
        var state = ConsoleUpdate.update(ConsoleState(width: w, height: h), .tick(s)).0
        state.view = .experts
        let lines = ConsoleScreen.render(state, s, theme: .builtinDark, width: w, height: h).lines
        let row = lines.first { $0.contains("rebalances ") } ?? ""
        return row.split(separator: "│").first { $0.contains("rebalances ") }
            .map { $0.trimmingCharacters(in: .whitespaces) } ?? row
    }

    /// The superpod fixture with no swap under way, `rebalances` done and 14.4 ms of MoE per step.
    static func settled(rebalances: Int) -> Snapshot {
        var s = SnapshotFixtures.superpod
        s.experts.rebalanceInProgress = false
        s.experts.loadingDies = []
        s.experts.rebalances = rebalances
        s.experts.moeMsPerStep = 14.4
        return s
    }

    @Test func thePlacementStateFitsAtEverySize() {
        // As a live superpod shows it: "rebalances 12  MoE 14.4 ms/step  " leaves 15 cells at 80 columns.
        let stable = Self.settled(rebalances: 12)
        for (w, h) in [(80, 24), (100, 30), (120, 40), (160, 45), (200, 60)] {
            #expect(Self.row(stable, w, h).hasSuffix("stable"), "\(w)×\(h): \(Self.row(stable, w, h))")
            let busy = Self.row(SnapshotFixtures.superpod, w, h)
            #expect(busy.hasSuffix("loading 3 dies") || busy.hasSuffix("rebalancing"), "\(w)×\(h): \(busy)")
        }
    }

    /// With `--eplb off` the view said "placement stable" in the good colour, as with EPLB on: it
    /// says EPLB is off (and `r` still rebalances once).
    @Test func eplbOffIsSaidNotShownAsAStablePlacement() {
        var off = Self.settled(rebalances: 0)
        off.experts.eplb = .off
        for (w, h) in [(80, 24), (120, 40), (200, 60)] {
            let row = Self.row(off, w, h)
            #expect(row.hasSuffix("EPLB off · static placement") || row.hasSuffix("EPLB off"), "\(w)×\(h): \(row)")
            #expect(!row.contains("stable placement") && !row.hasSuffix("placement stable"))
        }
        off.experts.eplb = .on
        #expect(Self.row(off, 200, 60).hasSuffix("placement stable"))
    }

    /// One expert per die and no redundant slot (colocated-288, xdeepserve-ma): EPLB can move
    /// nothing, and "placement stable" in the good colour beside an imbalance of 3.8 read as a
    /// planner keeping it balanced. The view says there is nothing to move, at every size.
    @Test func aLayoutEPLBCannotChangeIsSaidNotShownAsStable() {
        var fixed = Self.settled(rebalances: 0)
        fixed.experts.eplb = .on
        fixed.experts.placementFixed = true
        for (w, h) in [(80, 24), (120, 40), (200, 60)] {
            let row = Self.row(fixed, w, h)
            // At 80 columns 13 cells are left after "rebalances 0  MoE 14.4 ms/step  ".
            #expect(row.hasSuffix("nothing to move") || row.hasSuffix("no redundant slot") || row.hasSuffix("no spare slot"),
                    "\(w)×\(h): \(row)")
            #expect(!row.contains("stable"), "\(w)×\(h): \(row)")
        }
        #expect(Self.row(fixed, 200, 60).hasSuffix("EPLB on, nothing to move: one expert per die, no redundant slot"))
        // With EPLB off the view says that, as before.
        fixed.experts.eplb = .off
        #expect(Self.row(fixed, 200, 60).hasSuffix("EPLB off · static placement"))
    }
}
