import Foundation
import ServingEngine
import Testing
import XDSTestSupport

@testable import Console

/// The Pod legend keyed its grey swatch "idle", but a busy decode die whose KV is under 5 %
/// is drawn green on purpose (a busy die is not idle): the operator read "under 5 % KV = grey"
/// and found green cells at 2 % KV. Grey means idle (almost no work), not a load figure, so its
/// key names no percentage; green is keyed by the range that covers such a die ("<70% ok").
@Suite struct PodIdleLegendTests {
    /// The text after each `■` swatch of the load legend row, with the swatch's style.
    static func keys(_ b: CellBuffer, row y: Int) -> [(style: Style, label: String)] {
        var keys: [(style: Style, label: String)] = []
        for x in 0..<b.width {
            let cell = b[x, y]
            if cell.character == "■" {
                keys.append((cell.style, ""))
            } else if !keys.isEmpty {
                keys[keys.count - 1].label.append(cell.character)
            }
        }
        return keys.map { ($0.style, $0.label.trimmingCharacters(in: .whitespaces)) }
    }

    @Test(arguments: [(80, 24), (120, 40), (200, 60)])
    func aBusyDecodeDieUnder5PercentKVIsDrawnInTheColourKeyedForIt(size: (Int, Int)) throws {
        let (width, height) = size
        var s = SnapshotFixtures.superpod
        let decode = try #require(s.npus.firstIndex { $0.role == .decode && !$0.faulted && $0.node != 20 })
        s.npus[decode].utilization = 1.0
        s.npus[decode].kvUsage = 0.02
        let b = StateColourTests.pod(s, width: width, height: height)
        let cell = StateColourTests.cell(b, npu: decode)
        #expect(cell.style == Style(fg: .good), "a busy die is not idle")
        let row = try #require(b.lines.firstIndex { $0.contains("load ■") })
        let keys = Self.keys(b, row: row)
        // The key of the cell's colour covers 2 % KV.
        let own = try #require(keys.first { $0.style == cell.style })
        #expect(own.label.hasPrefix("<70% ok"), "\(width)×\(height): \(own.label)")
        // No other colour's key claims 2 %: the grey key says idle, with no "<5%".
        for key in keys where key.style != cell.style {
            #expect(!key.label.hasPrefix("<5%"), "\(width)×\(height): '\(key.label)' keys a 2 % KV die, drawn green")
        }
        let idle = try #require(keys.first { $0.style == NPULoad.style(.idle) })
        #expect(idle.label == "idle", "\(width)×\(height): \(idle.label)")
    }
}
