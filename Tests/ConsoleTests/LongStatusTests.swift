import ServingEngine
import Testing
import XDSTestSupport

@testable import Console

/// The footer's answer to a command is one line, and a longer one was cut at the screen's edge
/// with nothing to say so: `:preview` alone at 80 columns showed "✗ preview: preview what?
/// preview COMMAND [for DURATION]: COMMAND starts with d" and lost the command words and the
/// durations it takes; the first-run hint lost "(also flapping-link, rolling-drain) · ? help".
/// A long status now wraps onto the rows above the footer (at most three, the last cut with "…"),
/// for the few seconds it shows; the header and the tab bar stay.
@Suite struct LongStatusTests {
    static func words(_ text: String) -> [String] { text.split(separator: " ").map(String.init) }

    @Test func aLongStatusWrapsAboveTheFooterWithNothingLost() {
        let hint = PreviewKeys.emptyHint
        for (width, height) in [(80, 24), (100, 30), (200, 60)] {
            let plain = renderFixture(.pod, width: width, height: height)
            for (text, isError) in [("preview: " + hint, true),
                                    ("try a story: xds console --scenario scenarios/npu-loss.toml (also flapping-link, rolling-drain) · ? help", false)] {
                let lines = renderFixture(.pod, width: width, height: height) { $0.status = StatusLine(text, isError: isError) }
                #expect(Array(lines.prefix(3)) == Array(plain.prefix(3)), "header or tabs covered at \(width)×\(height)")
                // The status's rows, from the first that starts with its mark.
                let mark = isError ? "✗ " : "✓ "
                guard let first = lines.lastIndex(where: { $0.hasPrefix(mark) }) else {
                    Issue.record("no status line at \(width)×\(height)")
                    continue
                }
                #expect(first >= height - 3, "at most three rows at \(width)×\(height)")
                let shown = Self.words(lines[first...].joined(separator: " "))
                #expect(shown == [mark.trimmingCharacters(in: .whitespaces)] + Self.words(text),
                        "at \(width)×\(height): \(lines[first...])")
            }
        }
    }

    @Test func aShortStatusStaysOneLine() {
        let lines = renderFixture(.pod) { $0.status = StatusLine("node 20 accepts work again") }
        let plain = renderFixture(.pod)
        #expect(lines.last == "✓ node 20 accepts work again")
        #expect(Array(lines.dropLast()) == Array(plain.dropLast()))
    }

    /// Beyond three rows the text is cut, and says so with "…" rather than ending mid-word silently.
    @Test func aVeryLongStatusIsCutWithAnEllipsis() {
        let text = Array(repeating: "word", count: 100).joined(separator: " ")
        let lines = renderFixture(.pod) { $0.status = StatusLine(text, isError: true) }
        let first = lines.count - 3
        #expect(lines[first].hasPrefix("✗ word"))
        #expect(lines.last?.hasSuffix("…") == true, "\(lines.last ?? "")")
        #expect(lines.allSatisfy { $0.count <= 80 })
    }

    /// Under a box the rows above the footer are the box's: the status keeps to its one row there,
    /// cut with "…", rather than showing its tail below the box with its start hidden under it.
    @Test func underABoxALongStatusKeepsToOneRow() {
        let text = "preview: " + PreviewKeys.emptyHint
        let lines = renderFixture(.pod) {
            $0.preview = PreviewOverlay(command: "drain node 20", line: "x", askedAt: 0)
            $0.preview?.phase = .ready(PreviewOverlayTests.result())
            $0.status = StatusLine(text, isError: true)
        }
        #expect(lines[23].hasPrefix("✗ preview: preview what?") && lines[23].hasSuffix("…"), "\(lines[23])")
        #expect(lines[23].count <= 80)
        #expect(!lines[22].hasPrefix("  "), "\(lines[22])")
    }
}
