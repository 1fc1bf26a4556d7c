import ServingEngine
import Testing
import XDSTestSupport

@testable import Console

/// Boxes drawn over a view (the what-if preview, the help) keep the two header lines of vitals
/// in sight: at 80×24 the preview box (22–23 rows) and the help (21 rows) were centred on the
/// whole screen and covered the header's second line (tok/s, run/wait, p99 vs SLO, faults,
/// drains, SLO %), the very figures a what-if is weighed against.
@Suite struct OverlayHeaderTests {
    static let sizes = [(80, 24), (100, 30), (120, 40), (200, 60)]

    /// A result with everything the ready box can show: scenario steps in the window and a loss.
    static func fullResult() -> PreviewResult {
        var r = PreviewOverlayTests.result(lostWith: 3)
        r.scheduledSteps = [.init(atSeconds: 720, command: "rate 150"), .init(atSeconds: 810, command: "fault npu 170")]
        return r
    }

    static func phases() -> [(String, PreviewOverlay.Phase)] {
        var stopped = PreviewOverlayTests.result()
        stopped.coveredSeconds = 255
        stopped.stopped = "stopped at 4.25m of the 10m window: it used up its 30 s wall-clock budget"
        return [("ready", .ready(PreviewOverlayTests.result())), ("ready+steps+loss", .ready(fullResult())),
                ("stopped", .ready(stopped)), ("computing", .computing(progress: 0.4)),
                ("refused", .refused("the engine would reject 'drain node 99': no node 99"))]
    }

    @Test func previewBoxLeavesTheHeaderInSight() {
        for (width, height) in Self.sizes {
            let plain = renderFixture(.pod, width: width, height: height)
            for (name, phase) in Self.phases() {
                let lines = renderFixture(.pod, width: width, height: height) {
                    $0.wallNow = 11
                    $0.preview = PreviewOverlay(command: "drain node 20", line: "preview drain node 20 for 10m", askedAt: 10)
                    $0.preview?.phase = phase
                }
                for row in 0..<ScreenLayout.headerRows {
                    #expect(lines[row] == plain[row], "\(name) at \(width)×\(height) covers header row \(row): '\(lines[row])'")
                }
                #expect(lines.last == plain.last || lines.last!.contains("Esc"), "\(name) at \(width)×\(height) covers the footer")
            }
        }
    }

    /// Squeezed into the rows between header and footer, the ready box still shows every
    /// figure, the steps the window also ran, the verdict, and the keys that act on it.
    @Test func squeezedPreviewBoxStillShowsEverything() {
        for (width, height) in Self.sizes {
            let r = Self.fullResult()
            let lines = renderFixture(.pod, width: width, height: height) {
                $0.preview = PreviewOverlay(command: "drain node 20", line: "x", askedAt: 0)
                $0.preview?.phase = .ready(r)
            }
            let body = lines.joined(separator: "\n")
            for label in PreviewOverlayView.rows(r).map(\.label)
                + ["next 10 min of simulated time", "baseline  with command", "both sides also ran: rate 150 at 0:12:00",
                   "TTFT p99 +38%, TPOT p99 unchanged for 10 min, 3 ", "lost (0 without)", "a applies drain node 20 (y/n first)"] {
                #expect(body.contains(label), "\(label) is hidden at \(width)×\(height)")
            }
            if height >= 30 { #expect(body.contains("most lost: 3 × decode TE down"), "at \(width)×\(height)") }
        }
    }

    @Test func helpLeavesTheHeaderInSight() {
        for (width, height) in Self.sizes {
            let plain = renderFixture(.pod, width: width, height: height)
            for page in [0, 1] {
                let lines = renderFixture(.pod, width: width, height: height) {
                    $0.showHelp = true
                    $0.helpPage = page
                }
                for row in 0..<ScreenLayout.headerRows {
                    #expect(lines[row] == plain[row], "help page \(page + 1) at \(width)×\(height) covers header row \(row)")
                }
                // Every line of the page is still there.
                for (key, text) in page == 0 ? Overlays.helpLines : Overlays.commandLines {
                    #expect(lines.contains { $0.contains(text) && (key.isEmpty || $0.contains(key)) },
                            "'\(text)' is missing at \(width)×\(height)")
                }
            }
        }
    }
}
