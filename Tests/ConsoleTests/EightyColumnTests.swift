import ServingEngine
import Testing
import XDSTestSupport

@testable import Console

/// The 80×24 screen a user sees: the header names a running scenario, and every view's footer
/// shows that view's own keys (and says when it had to leave others to the help).
@Suite struct EightyColumnTests {
    static func frame(_ state: ConsoleState, theme: Theme = .builtinDark, width: Int = 80, height: Int = 24) -> CellBuffer {
        ConsoleScreen.render(state, SnapshotFixtures.superpod, theme: theme, width: width, height: height)
    }

    static func scenarioState(_ name: String, width: Int = 80) throws -> ConsoleState {
        var state = primedState(width: width, height: 24)
        state.achievedSpeed = 1  // as on a live console: the right side of the header is full
        state.scenario = Scenario(
            name: name, steps: [Scenario.Step(at: 700, command: try OperatorCommand.parse("fault npu 280").get())])
        return state
    }

    /// At 80 columns the header dropped the scenario's name and showed only its next step, so
    /// nothing said which scenario ran. The name stays, cut if it must be; the step stays whole.
    @Test func theHeaderNamesTheScenarioAt80Columns() throws {
        let short = Self.frame(try Self.scenarioState("NPU loss")).line(0)
        #expect(short.hasPrefix(" xds  NPU loss: 0:11:40 fault npu 280 "), "\(short)")
        let long = Self.frame(try Self.scenarioState("Daily cycle: a surge past prefill capacity and back")).line(0)
        #expect(long.hasPrefix(" xds  Daily…: 0:11:40 fault npu 280 "), "\(long)")
        // Under LANG=C the ellipsis is `..`, and the gap before the rate keeps its two blanks.
        let ascii = Self.frame(try Self.scenarioState("Daily cycle: a surge past prefill capacity and back")).asciiOnly().line(0)
        #expect(ascii.hasPrefix(" xds  Daily..: 0:11:40 fault npu 280  "), "\(ascii)")
        // The rate, pace and clock on the right are untouched, two blanks from the title.
        for line in [short, long] {
            #expect(line.count <= 80 && line.hasSuffix("150.0 req/s   ▶ 1× (≈1.0×)   sim 0:10:42"), "\(line)")
            #expect(line.contains("280  "), "\(line)")
        }
        // Wider screens still say "scenario:" and the whole name.
        let wide = Self.frame(try Self.scenarioState("Daily cycle: a surge past prefill capacity and back", width: 200), width: 200)
            .line(0)
        #expect(wide.contains("scenario: Daily cycle: a surge past prefill capacity and back · next 0:11:40 fault npu 280"), "\(wide)")
    }

    /// At 80×24 the Requests view's footer stopped after `d/u drain`: f, r, t and hjkl were cut
    /// off with nothing to say so. Each view's own keys are always there; what must go for them
    /// is the least used, and `? more` says the help has it.
    @Test func everyViewsFooterFitsItsOwnKeysAt80x24() {
        let own: [ConsoleView: [String]] = [
            .pod: [], .kvCache: [], .experts: ["/filter"], .latency: ["w window"],
            .requests: ["/filter", "⏎detail", "s sort"], .events: ["/filter", "v level", "⏎detail"],
        ]
        for view in ConsoleView.allCases {
            var state = primedState(width: 80, height: 24)
            state.view = view
            let b = Self.frame(state)
            let footer = b.line(23)
            #expect(footer.count <= 80, "\(view): \(footer)")
            #expect(footer.hasPrefix("q quit"), "\(view): \(footer)")
            for key in own[view]! { #expect(footer.contains(key), "\(view) lacks \(key): \(footer)") }
            // The Latency view fits the short form since hjkl (nothing to move there) left it.
            for key in [":cmd", "␣pause", "+-speed"] where ![.pod, .kvCache, .latency].contains(view) {
                #expect(footer.contains(key), "\(view) lacks \(key): \(footer)")
            }
            // Nothing is cut mid-word: the line ends with a whole label.
            #expect(!footer.hasSuffix(" "), "\(view): '\(footer)'")
            let items = ConsoleScreen.footerItems(view, width: 80, idle: ConsoleScreen.idleKeys(state, SnapshotFixtures.superpod))
            if !items.contains(where: { $0.key == "t" }) {
                #expect(footer.contains("?more"), "\(view) drops keys without saying so: \(footer)")
            } else {
                #expect(!footer.contains("more"), "\(view): \(footer)")
            }
            // Keys in the accent colour, labels dim: the two stay apart even when written together.
            if let slash = footer.range(of: "/filter") {
                let x = footer.distance(from: footer.startIndex, to: slash.lowerBound)
                #expect(b[x, 23].style == .accent && b[x + 1, 23].style == .dim, "\(view)")
            }
        }
        // The Requests view at 80×24 keeps the node keys too (d drains, asking first; f faults).
        var state = primedState(width: 80, height: 24)
        state.view = .requests
        let requests = Self.frame(state).line(23)
        #expect(requests == "q quit ?more :cmd /filter ⏎detail s sort ␣pause +-speed d drain f fault r rebal", "\(requests)")
        // Where the short labels fit, nothing changes (the Pod view at 80, the lists at 100).
        state.view = .pod
        #expect(Self.frame(state).line(23).hasPrefix("q quit ? help : cmd ␣ pause +- speed d/u drain f fault r rebal t theme"))
    }
}
