import ServingEngine
import Testing
import XDSTestSupport

@testable import Console

/// The KV view's "Prefix cache · DRAM pool · transfers" panel put the prefix hit rate (every
/// prompt token since start) beside the pool's use, the KV written and the transfers (all of
/// now) with nothing telling them apart. The rate says "so far", at every size.
@Suite struct PrefixHitScopeTests {
    @Test func prefixHitSaysItIsSinceStart() {
        var s = SnapshotFixtures.superpod
        s.kv.prefixHitRate = 0.52
        for (width, height) in [(80, 24), (100, 30), (120, 40), (200, 60), (300, 80)] {
            let state = ConsoleUpdate.update(ConsoleState(width: width, height: height), .tick(s)).0
            var shown = state
            shown.view = .kvCache
            let lines = ConsoleScreen.render(shown, s, theme: .builtinDark, width: width, height: height).lines
            let row = lines.first { $0.contains("prefix hit") }
            #expect(row?.contains("52% so far") == true, "\(width)×\(height): \(row ?? "no prefix hit row")")
        }
    }
}
