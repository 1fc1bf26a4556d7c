import ServingEngine
import Testing
import XDSTestSupport

@testable import Console

/// The NPU detail's KV row wrote the chip's held share in whole percent while the Instances table
/// beside it writes one decimal below 10% (`KVCacheView.axisPercent`): a decode chip holding 0.4% of
/// its blocks read "0% held", an empty cache, next to its TE's "0.4%".
@Suite struct NPUDetailKVShareTests {
    func detailKVLine(kvUsage: Double) -> String? {
        var snapshot = SnapshotFixtures.superpod
        let decodeNPU = 160
        snapshot.npus[decodeNPU].kvUsage = kvUsage
        var state = ConsoleState(width: 120, height: 40)
        state = ConsoleUpdate.update(state, .tick(snapshot)).0
        state.view = .pod
        state.selectedNPU = decodeNPU
        let lines = ConsoleScreen.render(state, snapshot, theme: .builtinDark, width: 120, height: 40).lines
        return lines.first { $0.contains("│ KV ") }
    }

    @Test func aSmallShareIsNotReadAsEmpty() throws {
        let small = try #require(detailKVLine(kvUsage: 0.004))
        #expect(small.contains(" 0.4% held"), "\(small)")
        let some = try #require(detailKVLine(kvUsage: 0.093))
        #expect(some.contains(" 9.3% held"), "\(some)")
        // From 10% on, whole percent as the table writes it.
        let large = try #require(detailKVLine(kvUsage: 0.42))
        #expect(large.contains(" 42% held"), "\(large)")
    }
}
