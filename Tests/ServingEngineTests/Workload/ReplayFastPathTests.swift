import Histogram
import SimKit
import Testing

@testable import ServingEngine

/// The shortcuts an Azure code replay takes (issue 12 speed) give what the long ways gave.
@Suite(.timeLimit(.minutes(10))) struct ReplayFastPathTests {
    /// The String way `tokenCount` took before its byte shortcut, for comparison.
    private func slowTokenCount(_ text: String) -> Int? {
        let trimmed = text.trimmingWhitespace
        let digits = trimmed.hasPrefix("-") || trimmed.hasPrefix("+") ? trimmed.dropFirst() : Substring(trimmed)
        guard !digits.isEmpty, digits.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }),
              let value = Int(trimmed), value >= -TraceLimits.maxTokens, value <= TraceLimits.maxTokens
        else { return nil }
        return value
    }

    @Test func tokenCountShortcutReadsWhatTheStringWayRead() {
        let fields = ["0", "7", "0007", "10", "4808", "9999999", "0000000", "10000000", "10000001", "00000012",
                      "+5", "-3", " 12", "12 ", "1a", "", "a", "99999999999999999999", "१२"]
        for field in fields {
            let fast = try? TraceRowParser.tokenCount(Array(field.utf8)[...], field: "ContextTokens")
            #expect(fast == slowTokenCount(field), "field \(field)")
        }
        // Every 1- to 7-digit count round-trips (a sample across the range).
        for value in stride(from: 0, through: 9_999_999, by: 9_973) {
            #expect((try? TraceRowParser.tokenCount(Array(String(value).utf8)[...], field: "f")) == value)
        }
    }

    @Test func timestampSecondsReadWithoutStringAreStrtodsDoubles() throws {
        var clock = WallClockTimestamp()
        let minute = try clock.seconds(Array("2023-11-16 18:17:00".utf8)[...])
        #expect(minute == 1_700_158_620)
        var generator = RandomStream(seed: 7)
        var fields = ["00", "59", "03.9799600", "04.0319600", "59.9999999", "00.0000001", "12.5", "07.123456789012",
                      "07.1234567890123", "07.12345678901234567"]  // the last two pass 15 digits: the String way
        for _ in 0..<5_000 {
            let whole = generator.next() % 60, digits = Int(generator.next() % 14)
            var fraction = ""
            for _ in 0..<digits { fraction += String(generator.next() % 10) }
            fields.append((whole < 10 ? "0" : "") + String(whole) + (digits == 0 ? "" : "." + fraction))
        }
        for field in fields {
            let read = try clock.seconds(Array("2023-11-16 18:17:\(field)".utf8)[...])
            #expect(read == minute + Double(field)!, "seconds field \(field)")
        }
    }

    @Test func latencyMeanIsHdrHistogramsMeanToTheBit() {
        var latency = LatencyHistogram()
        var reference = Histogram<UInt64>(highestTrackableValue: 36_000_000_000, numberOfSignificantValueDigits: .three)
        var generator = RandomStream(seed: 12)
        for i in 0..<20_000 {
            // Seconds from 1 µs to hours, many sharing a bucket, a few at the cap.
            let seconds = i % 997 == 0 ? 50_000 : Double(generator.next() % 1_000_000_000) / 1e6 * Double(1 + i % 7)
            latency.record(seconds: seconds)
            _ = reference.record(UInt64(max(1, min(35_999_999_999, (seconds * 1_000_000).rounded()))))
            if i % 4_999 == 0 { #expect(latency.meanMs == reference.mean / 1_000) }
        }
        #expect(latency.meanMs == reference.mean / 1_000)
        #expect(latency.meanMs > 0)
        latency.reset()
        #expect(latency.meanMs == 0)
        latency.record(seconds: 0.25)
        // 250,000 µs is reported as the middle of its bucket, not as 250 ms exactly.
        #expect(latency.meanMs == Double(reference.medianEquivalentForValue(250_000)) / 1_000)
        #expect(latency.meanMs != 250)
    }
}
