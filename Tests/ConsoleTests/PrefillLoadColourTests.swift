import PodModel
import ServingEngine
import Testing
import XDSTestSupport

@testable import Console

/// A review found `xds console --rate 40` (about a quarter of the default pod's capacity) drawing
/// 48 of 128 prefill NPUs red "crit", the red of dead hardware: they were coloured by their TE's
/// busy share, which is near 100 % whenever any one of the TE's 8 DP groups has a prompt (the
/// README: "a TE's plain busy share is no guide"). Prefill NPUs are now coloured by the share of
/// their TE's DP groups holding a prompt: red means no group is free, and the legend says so.
@Suite struct PrefillLoadColourTests {
    /// The superpod fixture with every prefill TE ≥ 90 % busy and `busyGroups` of its 8 DP groups
    /// holding prompts (groups are NPU pairs: NPUs 16t+2g and 16t+2g+1).
    static func snapshot(busyGroups: Int) -> Snapshot {
        var s = SnapshotFixtures.superpod
        for i in s.npus.indices where s.npus[i].role == .prefill && !s.npus[i].drained {
            s.npus[i].utilization = 0.97
            s.npus[i].requestsInFlight = (s.npus[i].id % 16) / 2 < busyGroups ? 2 : 0
        }
        return s
    }

    /// The prefill cells of every TE but prefill-2, half of which is on the fixture's drained
    /// node 5 (its groups there hold nothing).
    static func prefillCells(_ s: Snapshot, width: Int = 80, height: Int = 24) -> [Cell] {
        let b = StateColourTests.pod(s, width: width, height: height)
        return s.npus.filter { $0.role == .prefill && $0.instance != "prefill-2" }.map { StateColourTests.cell(b, npu: $0.id) }
    }

    /// The review's picture: busy TEs with one group in eight prefilling are calm (green), never red.
    @Test func aBusyTEWithFreeGroupsIsNotRed() {
        let cells = Self.prefillCells(Self.snapshot(busyGroups: 1))
        #expect(cells.count == 112)
        #expect(cells.allSatisfy { $0.style == Style(fg: .good) }, "\(Set(cells.map(\.style)))")
    }

    /// The colour follows the TE's free groups: none holding a prompt dim, 6 of 8 high, all red.
    @Test func theColourFollowsTheGroupsHoldingAPrompt() {
        for (busy, style) in [(0, Style.dim), (4, Style(fg: .good)), (6, Style(fg: .warn, bold: true)),
                              (8, Style(fg: .bad, bold: true))] {
            let cells = Self.prefillCells(Self.snapshot(busyGroups: busy))
            #expect(cells.allSatisfy { $0.style == style }, "\(busy) of 8: \(Set(cells.map(\.style)))")
        }
    }

    /// The title and the legend name the measure; the NPU detail shows both figures, the busy
    /// share no longer in load colours; the node table's busy bar of a prefill node is neutral.
    @Test func theScreenNamesWhatTheColourMeasures() throws {
        let s = Self.snapshot(busyGroups: 1)
        var state = ConsoleUpdate.update(ConsoleState(width: 160, height: 45), .tick(s)).0
        state.selectedNPU = 3
        let b = ConsoleScreen.render(state, s, theme: .builtinDark, width: 160, height: 45)
        #expect(b.text.contains("colour = load (prefill groups busy, decode KV held)"), "\(b.text)")
        #expect(b.text.contains("(prefill: share of its TE's DP groups with a prompt · decode: KV held)"))
        #expect(b.text.contains("97% TE busy · 1/8 groups busy"), "\(b.text)")
        let row = try #require(b.lines.firstIndex { $0.contains("97% TE busy") })
        let bar = (0..<b.width).map { b[$0, row] }.filter { "█▏▎▍▌▋▊▉".contains($0.character) }
        #expect(!bar.isEmpty && bar.allSatisfy { $0.style.fg == .accent }, "\(Set(bar.map(\.style)))")
        let narrow = ConsoleScreen.render(
            ConsoleUpdate.update(ConsoleState(width: 80, height: 24), .tick(s)).0, s, theme: .builtinDark,
            width: 80, height: 24)
        #expect(narrow.text.contains("colour = load (prefill groups busy, decode KV held)"))
    }

    /// The engine itself at about a quarter of capacity, drawn as the operator sees it: few
    /// prefill NPUs are red (the review saw 48 of 128 with the busy share), and only those of a
    /// TE whose every DP group holds a prompt.
    @Test func aQuarterLoadedPodIsMostlyCalm() throws {
        let engine = try ServingEngine(
            configuration: EngineConfiguration(deployment: try Deployment.resolve("superpod"), seed: 1, syntheticRate: 40))
        engine.run(until: 60)
        let s = engine.snapshot()
        let b = StateColourTests.pod(s, width: 120, height: 40)
        let prefill = s.npus.filter { $0.role == .prefill }
        let red = prefill.filter { StateColourTests.cell(b, npu: $0.id).style.fg == .bad }
        let busyShareRed = prefill.filter { $0.utilization >= 0.9 }.count
        #expect(red.count <= 16 && red.count < max(1, busyShareRed),
                "red \(red.count) of \(prefill.count); ≥ 90 % busy: \(busyShareRed)")
        for npu in red {
            let te = prefill.filter { $0.instance == npu.instance }
            #expect(te.allSatisfy { $0.requestsInFlight > 0 }, "\(npu.instance) has a free group")
        }
    }
}
