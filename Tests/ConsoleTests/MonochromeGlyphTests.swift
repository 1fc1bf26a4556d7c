import Foundation
import ServingEngine
import Testing
import XDSTestSupport

@testable import Console

/// Without colour (`NO_COLOR`: the mono theme) and without UTF-8 (`LANG=C`: one ASCII character
/// per glyph) every state keeps a glyph of its own, and each legend shows exactly the glyphs its
/// chart draws. Under `LANG=C` + `NO_COLOR` the Pod legend's four load swatches were four `#`,
/// the HBM fault's glyph, and the grid showed the load by attribute only.
@Suite struct MonochromeGlyphTests {
    static let busy = LimitedTerminalTests.busy

    static func render(
        _ view: ConsoleView, _ s: Snapshot = busy, width: Int = 80, height: Int = 24, theme: Theme = .builtinMono,
        _ adjust: (inout ConsoleState) -> Void = { _ in }
    ) -> CellBuffer {
        var state = ConsoleUpdate.update(ConsoleState(width: width, height: height), .tick(s)).0
        state.view = view
        state.selectedNPU = 383  // a spare far from the cells looked at
        adjust(&state)
        return ConsoleScreen.render(state, s, theme: theme, width: width, height: height)
    }

    /// The Pod box (grid, its two legend rows, borders) as text.
    static func podBox(_ b: CellBuffer) -> [String] {
        let grid = PodLayout(width: b.width, height: b.height).grid
        return (grid.y..<grid.maxY).map { y in String(b.line(y).prefix(grid.width)) }
    }

    /// What the grid must show for an NPU without colour: its fault's glyph, the spare dot, a
    /// drained node's lower case, else its band's glyph.
    static func expectedGlyph(_ npu: NPUStatus, _ s: Snapshot) -> Character {
        let state = FaultMap(s).state(of: npu, s)
        if let glyph = state.glyph, [.dead, .slow, .hbm, .link].contains(state) { return glyph }
        let letter = Format.roleLetter(npu.role)
        if npu.role == .spare { return letter }
        if state == .drained { return NPULoad.monoGlyph(.idle, letter: letter) }
        return NPULoad.monoGlyph(NPULoad.band(of: npu, NPULoad.GroupShares(s)), letter: letter)
    }

    /// The whole Pod box at 80×24 without colour, in UTF-8 and in ASCII: prefill TEs with every
    /// group holding a prompt `*` (prefill-2, half its groups on drained node 5, `P`), decode dies
    /// by their KV (35–90 %: `D` ok, `^` high), drained node 5 in lower case, faults and drains by
    /// their glyphs, and the load legend lists the very glyphs: `pd` idle, `PD` ok, `^` high, `*`
    /// critical. In ASCII none of them is the stand-in of another glyph in the box (`#` is HBM
    /// only; box corners are `+`).
    @Test func podBoxWithoutColourAt80x24() {
        let box = Self.podBox(Self.render(.pod))
        #expect(box == [
            "┌ Pod · 48 nodes × 8 NPUs · glyph = load (prefill groups busy, decode KV held) ┐",
            "│  00********   08********   16DD^DDDD^   24^D^D^^^D   32D^^DD^D^   40········ │",
            "│  01********   09********  X17DD^^X^^^  ≠25≠^^DD^DD   33D^D^^^D^   41········ │",
            "│  02********   10********  ↓18^D^DDD↓D  ≠26D^≠DDD^^   34DD^DDDDD   42········ │",
            "│  03********   11********   19DD^DD^DD   27D^^DDD^D   35DD^DD^^D   43········ │",
            "│  04PPPPPPPP   12********  ~20DDDDDDD^   28DDDDDDDD   36········   44········ │",
            "│ ⊘05pppppppp   13********  #21#D^D^DDD   29DDD^^DD^   37········   45········ │",
            "│  06********   14********   22DD^^DDD^   30^^DDDD^D   38········   46········ │",
            "│  07********   15********   23^DDD^D^D   31DDDDDDD^   39········   47········ │",
            "│ P pre D dec ·spare X dead ↓slow #HBM ≠link                                   │",
            "│ load pd idle PD <70% ok ^ <90% high * ≥90% crit ⊘drained ~draining           │",
            "└──────────────────────────────────────────────────────────────────────────────┘",
        ])
        let ascii = Self.podBox(Self.render(.pod).asciiOnly())
        #expect(ascii[3] == "|  02********   10********  v18^D^DDDvD  !26D^!DDD^^   34DD^DDDDD   42........ |")
        // `↓slow` read as a word, `vslow`: written out `v slow`.
        #expect(ascii[9] == "| P pre D dec .spare X dead v slow #HBM !link                                  |")
        // `≥` is written out: `>90% crit` said something else (90% itself is crit).
        #expect(ascii[10] == "| load pd idle PD <70% ok ^ <90% high * >=90% crit /drained ~draining          |")
    }

    /// At every size, in both encodings: each NPU's cell holds the glyph of its state, and every
    /// glyph the grid draws is one the legend rows name.
    @Test(arguments: [(80, 24), (120, 40), (160, 45), (200, 60)])
    func everyGridGlyphIsItsStateAndInTheLegend(size: (Int, Int)) {
        let (w, h) = size
        let s = Self.busy
        let frame = Self.render(.pod, width: w, height: h)
        let layout = PodLayout(width: w, height: h)
        for ascii in [false, true] {
            let b = ascii ? frame.asciiOnly() : frame
            let mapped = { (c: Character) in ascii ? ASCIIFallback.ascii(c) : c }
            let legend = b.line(layout.grid.maxY - 3) + b.line(layout.grid.maxY - 2)
            var drawn: Set<Character> = []
            for npu in s.npus where npu.id != 383 {
                let (x, y) = layout.origin(ofNode: npu.node)
                let cell = b[x + layout.labelWidth + (npu.id % 8) * layout.cellWidth, y].character
                #expect(cell == mapped(Self.expectedGlyph(npu, s)), "NPU \(npu.id) at \(w)×\(h), ascii \(ascii)")
                drawn.insert(cell)
            }
            for glyph in drawn {
                #expect(legend.contains(glyph), "\(glyph) is not in the legend at \(w)×\(h), ascii \(ascii): \(legend)")
            }
        }
    }

    /// In ASCII the glyphs that carry a state in the grid and its legend are distinct from each
    /// other, and no other glyph's stand-in is one of them (the colour swatch `■` was `#`, HBM).
    @Test func asciiStandInsOfGridStatesAreTheirsAlone() {
        let states: [Character] = ["X", "↓", "#", "≠", "⊘", "~"]
        let roles: [Character] = ["P", "D", "A", "E", "C", "·"]
        let bands = NPULoad.Band.allCases.flatMap { band in roles.dropLast().map { NPULoad.monoGlyph(band, letter: $0) } }
        let glyphs = Array(Set(states + roles + bands))
        let standIns = glyphs.map(ASCIIFallback.ascii)
        #expect(Set(standIns).count == glyphs.count, "\(zip(glyphs, standIns).map { "\($0)→\($1)" })")
        // Everything else the table maps must land elsewhere: box drawing around the grid, the
        // swatch, bars. (`↓` is a key name in the help too; it is the same glyph.)
        // Other glyphs share those stand-ins (bars and sparkline levels `█ ▆ ▁`, shades, sort and
        // SLO markers `▲ ▼`, status marks `⚠ ✗`, `…` and `≈`), so none of them may be drawn in
        // the Pod box, in any mode or size.
        let clashing = ASCIIFallback.table.filter { !glyphs.contains($0.key) && Set(standIns).contains($0.value) }
        #expect(clashing.keys.contains("█") && clashing.keys.contains("…"))
        for (w, h) in [(80, 24), (120, 40), (200, 60)] {
            for theme in [Theme.builtinMono, .builtinDark] {
                let box = Self.podBox(Self.render(.pod, width: w, height: h, theme: theme)).joined()
                for glyph in clashing.keys {
                    #expect(!box.contains(glyph), "\(glyph) in the Pod box at \(w)×\(h) \(theme.name)")
                }
            }
        }
        #expect(ASCIIFallback.ascii("■") == "o")
    }

    /// In colour the legend's swatches are `■` in the band colours; under `LANG=C` they are `o`,
    /// not the HBM glyph `#`.
    @Test func colourSwatchesInASCIIAreNotTheHBMGlyph() {
        let b = Self.render(.pod, theme: .builtinDark).asciiOnly()
        let layout = PodLayout(width: 80, height: 24)
        #expect(b.line(layout.grid.maxY - 2) == "| load oidle o<70% ok o<90% high o>=90% crit /drained ~draining                |")
    }

    /// The KV strip draws heights; its colour bands mean nothing without colour, and four equal
    /// swatches (`■■■■`, under `LANG=C` `####`, the strip's own 100% glyph) said otherwise.
    @Test func kvStripScaleWithoutColourIsItsHeightsOnly() {
        for (w, h) in [(120, 40), (200, 60)] {
            let mono = Self.render(.kvCache, width: w, height: h).lines.first { $0.contains("Decode DP groups") } ?? ""
            #expect(mono.hasSuffix("─ height ▁0…█100% ┐"), "\(mono)")
            #expect(!mono.contains("■"))
            let colour = Self.render(.kvCache, width: w, height: h, theme: .builtinDark).asciiOnly().lines
                .first { $0.contains("Decode DP groups") } ?? ""
            // `…` is `..` (as `~` it was the draining glyph), the title's rule giving the cell.
            #expect(colour.hasSuffix("- height .0..#100% . o<5% o<70% o<90% o>90% +"), "\(colour)")
        }
    }

    /// The heat map without colour draws five shades; its scale shows exactly those five, each
    /// once, in brackets (the lowest is blank), under "shade", not eight stops cut elsewhere.
    @Test func expertHeatScaleWithoutColourShowsTheMapsShades() throws {
        let heat = Self.busy.experts.heat
        let peak = Format.fixed(max(2, heat.map { $0.max() ?? 0 }.max() ?? 0), 2)
        for (w, h) in [(80, 24), (120, 40), (200, 60)] {
            let b = Self.render(.experts, width: w, height: h)
            let row = try #require(b.lines.firstIndex { $0.contains("shade ≤0.1×") }, "\(w)×\(h)")
            #expect(b.line(row).contains("shade ≤0.1× [ ░▒▓█] \(peak)× mean (max), log"), "\(b.line(row))")
            #expect(!b.text.contains("colour ≤"))
            // Every cell of the map is one of the scale's shades.
            let top = try #require(b.lines.firstIndex { $0.contains("Expert heat") })
            for y in (top + 1)..<(row - 1) {
                let map = Array(b.line(y)).dropFirst(6).prefix { $0 != "│" && $0 != "┐" }
                #expect(map.allSatisfy { CellBuffer.shadeGlyphs.contains($0) }, "\(w)×\(h) row \(y): \(String(map))")
            }
        }
        // The scale's shades are the map's for the same values (the map rounds; the old scale cut).
        for i in 0...4 { #expect(CellBuffer.shadeGlyph(Double(i) / 4) == CellBuffer.shadeGlyphs[i]) }
        #expect(CellBuffer.shadeGlyph(0.4) == "▒")
    }

    /// The help names the mono glyphs where the colour help says "colour = load".
    @Test func helpSaysWhichGlyphsCarryTheLoad() {
        let mono = Self.render(.pod) { $0.showHelp = true }.text
        #expect(mono.contains("Pod       letter = role (P/D/A/E/C/·); load: p idle P ok ^ high * crit"), "\(mono)")
        let colour = Self.render(.pod, theme: .builtinDark) { $0.showHelp = true }.text
        #expect(colour.contains("Pod       NPUs by node; letter = role (P/D/A/E/C/·), colour = load"))
        // And the latency bars' glyph over the SLO (in colour they are red).
        #expect(mono.contains("Latency   TTFT/TPOT/E2E histograms, p50/p90/p99, ▲ SLO, ╳ over it; trends"), "\(mono)")
        #expect(colour.contains("Latency   TTFT/TPOT/E2E histograms, p50/p90/p99, ▲ = SLO; trends"))
    }
}
