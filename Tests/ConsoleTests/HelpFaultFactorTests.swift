import ServingEngine
import Testing
import XDSTestSupport

@testable import Console

/// Help page 2 said `fault link A-B [degrade F] (A, B NPUs; F 0…1 of bandwidth)`, and
/// `:fault link 130-200 degrade 0.5` was then refused ("expected a degrade factor greater than 1
/// and at most 1000"). The parser's F is how many times slower the link (or the straggler's die)
/// runs; the help now says so, with the parser's range.
@Suite struct HelpFaultFactorTests {
    static func page2(width: Int = 80, height: Int = 24) -> String {
        var s = primedState(width: width, height: height)
        s.showHelp = true
        s.helpPage = 1
        return ConsoleScreen.render(s, SnapshotFixtures.superpod, theme: .builtinDark, width: width, height: height).text
    }

    @Test(arguments: [(80, 24), (120, 40)])
    func helpSaysWhatTheParserTakesForF(size: (Int, Int)) {
        let text = Self.page2(width: size.0, height: size.1)
        #expect(!text.contains("0…1"), "\(text)")
        #expect(text.contains("fault link A-B [degrade F]   (A, B NPUs; no F: the link is down)"), "\(text)")
        #expect(text.contains("F: times slower, greater than 1 and at most 1000"), "\(text)")
        // Every command the page listed before is still there (the fault lines were regrouped).
        for syntax in ["fault die D", "fault npu N", "fault node N", "fault glitch", "fault straggler die D [slowdown F]",
                       "fault hbm die D", "clear faults", "paste"] {
            #expect(text.contains(syntax), "\(syntax)")
        }
    }

    /// The range the help states is the parser's, for both factors: within it accepted, at the
    /// edges as stated, outside refused with the same words; no F is a link down.
    @Test func theStatedRangeIsTheParsers() {
        for (line, ok) in [("fault link 130-200 degrade 0.5", false), ("fault link 130-200 degrade 1", false),
                           ("fault link 130-200 degrade 1.01", true), ("fault link 130-200 degrade 1000", true),
                           ("fault link 130-200 degrade 1000.5", false), ("fault straggler die 3 slowdown 0.5", false),
                           ("fault straggler die 3 slowdown 1000", true)] {
            switch OperatorCommand.parse(line) {
            case .success: #expect(ok, "\(line) was accepted")
            case .failure(let error):
                #expect(!ok, "\(line): \(error.message)")
                #expect(error.message.contains("greater than 1 and at most 1000"), "\(error.message)")
            }
        }
        #expect((try? OperatorCommand.parse("fault link 130-200").get()) == .faultLink(from: 130, to: 200, degrade: nil))
    }
}
