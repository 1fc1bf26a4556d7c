import ServingEngine
import Testing

@testable import Console

/// The console writes speeds (its header, the `speed S` commands of `+`/`-`, the help) the way
/// the engine writes numbers back (`OperatorCommand.format`); its own copy called `Int(_:)`
/// on any whole speed and trapped on one past Int's range (a foreign server's snapshot).
@Suite struct SpeedTextTests {
    @Test func speedsReadAsTheCommandLanguageWritesThem() {
        for (speed, text) in [(0.1, "0.1"), (2, "2"), (1000, "1000"), (100_000, "100000"), (0.01, "0.01"), (2.5, "2.5")] {
            #expect(ConsoleUpdate.formatSpeed(speed) == text, "\(speed)")
            #expect(ConsoleUpdate.formatSpeed(speed) == OperatorCommand.format(speed), "\(speed)")
        }
    }

    @Test func aSpeedPastIntsRangeIsWrittenNotTrapped() {
        #expect(ConsoleUpdate.formatSpeed(1e19) == "1e+19")
        #expect(ConsoleUpdate.formatSpeed(.infinity) == "inf")
        #expect(Format.speed(1e300, paused: false) == "▶ 1e+300×")
    }
}
