import Foundation
import ServingEngine
import Testing
import XDSTestSupport

@testable import Console

/// The NPU detail panel beside a two-column grid was 57 columns at 180×50: its lines ran past the
/// panel's edge and were cut there with no sign, mid-word or mid-number ("1/8 groups bu",
/// "MoE load 1.0"). A line that does not fit now ends in "…", and the util note takes a
/// shorter form first.
@Suite(.cpuBound) struct DetailCutTests {
    static func detailRows(_ npu: Int, width: Int, height: Int) -> [String] {
        var state = ConsoleState(width: width, height: height)
        state = ConsoleUpdate.update(state, .tick(SnapshotFixtures.superpod)).0
        state.selectedNPU = npu
        let b = ConsoleScreen.render(state, SnapshotFixtures.superpod, theme: .builtinDark, width: width, height: height)
        let inner = PodLayout(width: width, height: height).detail.inner
        return (inner.y..<inner.maxY).map { y in String((inner.x..<inner.maxX).map { b[$0, y].character }) }
    }

    @Test(arguments: [(180, 50), (181, 50), (185, 50), (186, 50)])
    func aDetailLineThatDoesNotFitSaysSo(size: (Int, Int)) {
        let (w, h) = size
        for npu in SnapshotFixtures.superpod.npus.map(\.id) {
            let rows = Self.detailRows(npu, width: w, height: h)
            // The same rows where the panel is wide: nothing there is cut.
            // Meter bars are wider there: rows are compared without them, and with the MoE
            // load's short label ("MoE 0.62×", the form taken where the long one does not fit).
            func words(_ row: String) -> String {
                row.filter { !"█▉▊▋▌▍▎▏·".contains($0) }.split(separator: " ").joined(separator: " ")
                    .replacingOccurrences(of: "MoE load ", with: "MoE ")
            }
            let whole = Self.detailRows(npu, width: 300, height: 80).map(words)
            for row in rows where row.last.map({ $0 != " " }) == true {
                #expect(row.last == "…" || whole.contains(words(row)), "NPU \(npu) at \(w)×\(h): '\(row)'")
            }
            #expect(!rows.contains { $0.contains("groups bu") && !$0.contains("groups busy") }, "NPU \(npu): \(rows)")
        }
    }

    /// At 185-190 columns the experts line read "MoE load 0.6…": the figure was cut. Where the
    /// long label does not fit the line says "MoE 0.62×", the figure whole.
    @Test(arguments: [(185, 50), (190, 50)])
    func theMoELoadFigureIsNeverCut(size: (Int, Int)) throws {
        let (w, h) = size
        let figure = try Regex("MoE (load )?[0-9]+\\.[0-9][0-9]×")
        var checked = 0
        for npu in SnapshotFixtures.superpod.npus where !npu.experts.isEmpty {
            let rows = Self.detailRows(npu.id, width: w, height: h)
            guard let row = rows.first(where: { $0.contains("experts ") && !$0.contains("not served") }) else { continue }
            #expect(row.contains(figure), "NPU \(npu.id) at \(w)×\(h): '\(row)'")
            checked += 1
        }
        #expect(checked > 0)
    }
}
