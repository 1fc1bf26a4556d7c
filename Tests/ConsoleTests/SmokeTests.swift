import Testing
@testable import Console
import ServingEngine
import XDSTestSupport
import Foundation

@Test func dumpViews() throws {
    var out = ""
    for (w, h) in [(80, 24), (200, 60)] {
        for view in ConsoleView.allCases {
            var st = ConsoleState(width: w, height: h)
            st.view = view
            st = ConsoleUpdate.update(st, .tick(SnapshotFixtures.superpod)).0
            out += "==== \(view) \(w)x\(h)\n" + ConsoleScreen.render(st, SnapshotFixtures.superpod, theme: .builtinDark, width: w, height: h).text + "\n"
        }
    }
    try out.write(toFile: "/tmp/console-dump.txt", atomically: true, encoding: .utf8)
}
