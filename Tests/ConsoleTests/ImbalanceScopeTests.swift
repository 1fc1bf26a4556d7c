import ServingEngine
import Testing
import XDSTestSupport

@testable import Console

/// The Die load panel's imbalance line put two different measures side by side as one: the
/// value is the serving placement's expected imbalance (the snapshot's `experts.imbalance`),
/// the sparkline and its range the imbalance measured over each interval's decode steps
/// (`series.imbalance`). In the demo it read "imbalance … 1.20 ▁▂▂█▇ 1.21…1.36": a current
/// value below the minimum of its own trend. Each now says which it is.
@Suite struct ImbalanceScopeTests {
    /// The fixture with an expected imbalance outside the measured trend's range.
    static let apart: Snapshot = {
        var s = SnapshotFixtures.superpod
        s.experts.imbalance = 1.2
        s.series.imbalance = Array(repeating: 1.3, count: 40) + [1.36, 1.21]
        return s
    }()

    static func line(width: Int, height: Int) -> String? {
        var state = ConsoleUpdate.update(ConsoleState(width: width, height: height), .tick(apart)).0
        state.view = .experts
        return ConsoleScreen.render(state, apart, theme: .builtinDark, width: width, height: height)
            .lines.first { $0.contains("imbalance (") }
    }

    @Test(arguments: [(160, 45), (200, 60)])
    func theValueAndTheTrendSayWhatTheyMeasure(size: (Int, Int)) throws {
        let line = try #require(Self.line(width: size.0, height: size.1))
        // The trend is drawn at these sizes (its range shows) …
        let range = try #require(line.range(of: "1.21…1.36"), "\(line)")
        // … and the value before it is named as the placement's expectation, the trend as measured.
        let value = try #require(line.range(of: "1.20 expected"), "\(size): \(line)")
        let measured = try #require(line.range(of: "measured"), "\(size): \(line)")
        #expect(value.upperBound <= measured.lowerBound && measured.upperBound <= range.lowerBound, "\(line)")
        #expect(line.contains("warn ≥4 alarm ≥6"), "\(line)")
    }

    /// Where no trend of a few points fits (80 and 120 columns) the value stands alone and keeps
    /// its thresholds. At 120 columns a trend of one point was drawn, its range "1.21…1.21".
    @Test(arguments: [(80, 24), (120, 40)])
    func narrowScreensKeepTheValueAndThresholds(size: (Int, Int)) throws {
        let line = try #require(Self.line(width: size.0, height: size.1))
        #expect(line.contains("1.20 ") && line.contains("warn ≥4 alarm ≥6") && !line.contains("…"), "\(size): \(line)")
    }
}
