import ServingEngine
import Testing
import XDSTestSupport

@testable import Console

/// The what-if verdict named TTFT p99 only. `f` → straggler die 296 → `p` on the superpod showed
/// "TPOT p99 +75%" and "E2E p99 +65%" in the table and, under it, the verdict
/// "TTFT p99 +1.6% for 10 min, 0 requests lost": a straggler slows decode, and the one line a
/// user reads called it harmless. The verdict now gives both SLO latencies, as
/// `xds bench preview` does ("TTFT p99 … ms, TPOT p99 … ms").
@Suite struct PreviewVerdictTPOTTests {
    /// The fixture with TTFT nearly unchanged and TPOT 75% worse.
    static var slowDecode: PreviewResult {
        var r = PreviewOverlayTests.result()
        r.withCommand.latencyMs.ttft.p99 = r.baseline.latencyMs.ttft.p99 * 1.016
        r.withCommand.latencyMs.tpot.p99 = r.baseline.latencyMs.tpot.p99 * 1.75
        return r
    }

    @Test func verdictNamesTheTPOTChange() {
        #expect(PreviewOverlayView.verdict(Self.slowDecode) == "TTFT p99 +1.6%, TPOT p99 +75% for 10 min, 0 requests lost")
    }

    @Test(arguments: [(80, 24), (120, 40), (200, 60)])
    func verdictOnScreenIsWhole(size: (Int, Int)) {
        var lossy = Self.slowDecode
        lossy.withCommand.requests.failed = 1234
        lossy.withCommand.requests.failureReasons = ["decode TE down": 1234]
        lossy.baseline.requests.failed = 567
        for r in [Self.slowDecode, lossy] {
            let lines = renderFixture(.pod, width: size.0, height: size.1) {
                $0.preview = PreviewOverlay(command: "fault straggler die 296 slowdown 2", line: "x", askedAt: 0)
                $0.preview?.phase = .ready(r)
            }
            let text = lines.joined(separator: "\n")
            let verdict = lines.first { $0.contains("TPOT") && $0.contains("lost") }
            #expect(verdict != nil, "\(text)")
            // Whole: the loss count and its comparison end before the box's border.
            if r.withCommand.lost > 0 { #expect(verdict?.contains("1234") == true && verdict?.contains("(567 without)") == true, "\(verdict ?? "")") }
            #expect(verdict?.contains("+75%") == true, "\(verdict ?? "")")
        }
    }
}
