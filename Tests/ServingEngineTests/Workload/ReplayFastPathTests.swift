import Foundation
import Histogram
import SimKit
import Testing

@testable import ServingEngine

/// The shortcuts an Azure code replay takes (issue 12 speed) give what the long ways gave.
@Suite(.timeLimit(.minutes(10))) struct ReplayFastPathTests {
    /// The String way `tokenCount` takes beside its byte shortcut, for comparison: plain digits,
    /// or a minus and digits (no plus sign or spaces: TraceFormatsTests.aTokenCountWithASignOrInnerSpacesIsRefused).
    private func slowTokenCount(_ text: String) -> Int? {
        let digits = text.hasPrefix("-") ? text.dropFirst() : Substring(text)
        guard !digits.isEmpty, digits.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }),
              let value = Int(text), value >= -TraceLimits.maxTokens, value <= TraceLimits.maxTokens
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

    /// The JSON reader's row, or its message.
    private func jsonRow(_ line: String) -> (row: TraceRow?, problem: String?) {
        do { return (try TraceRowParser.parseMooncakeJSON(Array(line.utf8)[...]), nil) } catch { return (nil, error.message) }
    }

    private func same(_ a: TraceRow, _ b: TraceRow) -> Bool {
        a.time.bitPattern == b.time.bitPattern && a.promptTokens == b.promptTokens && a.outputTokens == b.outputTokens
            && a.hashIDs == b.hashIDs && a.failedInSource == b.failedInSource
    }

    @Test func canonicalMooncakeLinesReadAsTheJSONReaderReadsThem() throws {
        // The published layout, and edge values it takes.
        var lines = [
            #"{"timestamp": 0, "input_length": 6758, "output_length": 500, "hash_ids": [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13]}"#,
            #"{"timestamp": 27482, "input_length": 1, "output_length": 0, "hash_ids": []}"#,
            #"{"timestamp": 10000000000000, "input_length": 10000000, "output_length": 10000000, "hash_ids": [999999999999999]}"#,
        ]
        var generator = RandomStream(seed: 3)
        for _ in 0..<2_000 {
            let ids = (0..<Int(generator.next() % 30)).map { _ in String(generator.next() % 1_000_000_000_000) }
            lines.append(#"{"timestamp": \#(generator.next() % 10_000_000_000), "input_length": \#(1 + generator.next() % 200_000), "#
                + #""output_length": \#(generator.next() % 5_000), "hash_ids": [\#(ids.joined(separator: ", "))]}"#)
        }
        for line in lines {
            let fast = try #require(TraceRowParser.parseCanonicalMooncake(Array(line.utf8)[...]), "not taken: \(line)")
            let slow = try #require(jsonRow(line).row)
            #expect(same(fast, slow), "line \(line)")
        }
    }

    /// The word-wide read of a short hash id gives the run of digits the byte loop read: its
    /// value and length, or nil (8 digits or more, fewer than 8 bytes left) for the byte loop.
    @Test func shortIntegerReadsWhatTheByteLoopReads() {
        var generator = RandomStream(seed: 5)
        let alphabet = Array("0123456789, ]}\u{7F}\u{80}\u{FF}/:".utf8) + [0x2F, 0x3A, 0x00, 0xB0, 0x8A, 0xFF]
        for trial in 0..<20_000 {
            let digits = Int(generator.next() % 10)
            var bytes = (0..<digits).map { _ in UInt8(0x30 + generator.next() % 10) }
            bytes += (0..<Int(generator.next() % 10)).map { _ in
                trial % 2 == 0 ? alphabet[Int(generator.next() % UInt64(alphabet.count))] : UInt8(truncatingIfNeeded: generator.next())
            }
            if bytes.isEmpty { continue }
            var expectedValue: UInt64 = 0, expectedDigits = 0
            while expectedDigits < bytes.count, bytes[expectedDigits] &- 0x30 < 10 {
                expectedValue = expectedValue * 10 + UInt64(bytes[expectedDigits] - 0x30)
                expectedDigits += 1
            }
            let read = bytes.withUnsafeBufferPointer { TraceRowParser.shortInteger($0.baseAddress!, available: $0.count) }
            if bytes.count < 8 || expectedDigits >= 8 {
                #expect(read == nil, "bytes \(bytes)")
            } else {
                #expect(read?.value == expectedValue && read?.digits == expectedDigits, "bytes \(bytes)")
            }
        }
    }

    /// Lines of short ids (the published trace's: 1 to 6 digits), where the word-wide read is taken.
    @Test func canonicalLinesOfShortIDsReadAsTheJSONReaderReadsThem() throws {
        var generator = RandomStream(seed: 4)
        for _ in 0..<2_000 {
            let ids = (0..<Int(generator.next() % 40)).map { _ in
                String(generator.next() % [10, 100, 100_000, 10_000_000, 100_000_000][Int(generator.next() % 5)])
            }
            let line = #"{"timestamp": \#(generator.next() % 10_000_000), "input_length": 20000, "#
                + #""output_length": 7, "hash_ids": [\#(ids.joined(separator: ", "))]}"#
            let fast = try #require(TraceRowParser.parseCanonicalMooncake(Array(line.utf8)[...]), "not taken: \(line)")
            let slow = try #require(jsonRow(line).row)
            #expect(same(fast, slow), "line \(line)")
        }
    }

    @Test func otherMooncakeLinesAreLeftToTheJSONReader() {
        // Each differs from the canonical layout in one way: another spacing, order or number
        // form, a value out of range, or broken JSON. The shortcut declines them all, so the
        // JSON reader reads them (or words their problem) as it always did.
        let lines = [
            #"{"timestamp":0, "input_length": 10, "output_length": 5, "hash_ids": [1]}"#,
            #" {"timestamp": 0, "input_length": 10, "output_length": 5, "hash_ids": [1]}"#,
            #"{"timestamp": 0, "input_length": 10, "output_length": 5, "hash_ids": [1]} "#,
            #"{"timestamp": 0, "input_length": 10, "output_length": 5, "hash_ids": [1,2]}"#,
            #"{"input_length": 10, "timestamp": 0, "output_length": 5, "hash_ids": [1]}"#,
            #"{"timestamp": 0, "input_length": 10, "output_length": 5}"#,
            #"{"timestamp": 0, "input_length": 10, "output_length": 5, "hash_ids": [1], "extra": 1}"#,
            #"{"timestamp": 0.5, "input_length": 10, "output_length": 5, "hash_ids": [1]}"#,
            #"{"timestamp": 1e3, "input_length": 10, "output_length": 5, "hash_ids": [1]}"#,
            #"{"timestamp": -1, "input_length": 10, "output_length": 5, "hash_ids": [1]}"#,
            #"{"timestamp": 01, "input_length": 10, "output_length": 5, "hash_ids": [1]}"#,
            #"{"timestamp": 0, "input_length": 10, "output_length": 5, "hash_ids": [007]}"#,
            #"{"timestamp": 10000000000001, "input_length": 10, "output_length": 5, "hash_ids": [1]}"#,
            #"{"timestamp": 0, "input_length": 10000001, "output_length": 5, "hash_ids": [1]}"#,
            #"{"timestamp": 0, "input_length": 10, "output_length": 10000001, "hash_ids": [1]}"#,
            #"{"timestamp": 0, "input_length": 10, "output_length": 5, "hash_ids": [1000000000000000]}"#,
            #"{"timestamp": 0, "input_length": 10, "output_length": 5, "hash_ids": [1, ]}"#,
            #"{"timestamp": 0, "input_length": 10, "output_length": 5, "hash_ids": [1"#,
            #"{"timestamp": 0, "input_length": 10, "output_length": 5, "hash_ids": [1]"#,
            #"{"timestamp": 0, "input_length": 10, "output_length": 5, "hash_ids": [1]}}"#,
            #"{"timestamp": , "input_length": 10, "output_length": 5, "hash_ids": [1]}"#,
        ]
        for line in lines {
            #expect(TraceRowParser.parseCanonicalMooncake(Array(line.utf8)[...]) == nil, "taken: \(line)")
        }
        // The row that goes on to the JSON reader reads as it always did.
        let spaced = #"{"timestamp":0, "input_length": 10, "output_length": 5, "hash_ids": [1,2]}"#
        #expect(jsonRow(spaced).row?.hashIDs == [StableHash.mix(1), StableHash.mix(2)])
        #expect((try? TraceRowParser.parseMooncake(Array(spaced.utf8)[...]))?.hashIDs == [StableHash.mix(1), StableHash.mix(2)])
        let zero = #"{"timestamp": 01, "input_length": 10, "output_length": 5, "hash_ids": [1]}"#
        #expect(jsonRow(zero).problem?.contains("expected ',' or '}'") == true)
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
        var reference = Histogram<UInt64>(highestTrackableValue: LatencyHistogram.highestTrackable,
                                          numberOfSignificantValueDigits: .three)
        var generator = RandomStream(seed: 12)
        // The library's mean, kept within the recorded samples as the engine keeps it (one sample's
        // slot midpoint is not its mean).
        var lowest = UInt64.max, highest: UInt64 = 0
        func expected() -> Double { min(max(reference.mean, Double(lowest)), Double(highest)) / 1_000 }
        for i in 0..<20_000 {
            // Seconds from 1 µs to hours, many sharing a bucket, a few past 10 hours (the old cap)
            // and a few past the cap (31.7 years).
            let seconds = i % 997 == 0 ? (i % 2 == 0 ? 50_000 : 1e9) : Double(generator.next() % 1_000_000_000) / 1e6 * Double(1 + i % 7)
            latency.record(seconds: seconds)
            let micros = UInt64(max(1, min(Double(LatencyHistogram.highestTrackable - 1), (seconds * 1_000_000).rounded())))
            _ = reference.record(micros)
            (lowest, highest) = (min(lowest, micros), max(highest, micros))
            if i % 4_999 == 0 { #expect(latency.meanMs == expected()) }
        }
        #expect(latency.meanMs == reference.mean / 1_000, "many samples: the library's mean, to the bit")
        #expect(latency.meanMs == expected())
        #expect(latency.meanMs > 0)
        latency.reset()
        #expect(latency.meanMs == 0)
        latency.record(seconds: 0.25)
        // One sample of 250,000 µs: its bucket's middle (250.048 ms) was reported, above the
        // sample and its own percentiles; the mean is now the sample.
        #expect(Double(reference.medianEquivalentForValue(250_000)) / 1_000 != 250)
        #expect(latency.meanMs == 250)
    }
}

/// The one-pass readers of a trace's bytes (issue 12 speed) give what the general ones give.
@Suite(.timeLimit(.minutes(10))) struct TraceByteReaderTests {
    private func fields(_ split: CSVRecord.Split) -> [[UInt8]]? {
        guard case .fields(let f) = split else { return nil }
        return f.map { Array($0) }
    }

    @Test func unquotedSplitGivesSplitsFieldsAndLeavesQuotesToIt() throws {
        var texts = ["", ",", "a", "a,b", " a , b ,c ", "\t4808\t,10", ",,", "2023-11-16 18:17:03.9799600,4808,10",
                     "a,", ",a", "  ", "a b,c\td"]
        var generator = RandomStream(seed: 3)
        let alphabet = Array("ab1 ,\t.-:".utf8)
        for _ in 0..<3_000 {
            let length = Int(generator.next() % 24)
            texts.append(String(decoding: (0..<length).map { _ in alphabet[Int(generator.next() % UInt64(alphabet.count))] },
                                as: UTF8.self))
        }
        var reused: [ArraySlice<UInt8>] = []
        for text in texts {
            // A slice not starting at 0, as the line reader hands them out.
            let bytes = (Array("x\n".utf8) + Array(text.utf8))[2...]
            #expect(CSVRecord.splitUnquoted(bytes, into: &reused))
            #expect(reused.map { Array($0) } == fields(try CSVRecord.split(bytes)), "text \(text)")
            #expect(reused.allSatisfy { $0.startIndex >= bytes.startIndex && $0.endIndex <= bytes.endIndex })
        }
        for quoted in ["\"a\",b", "a,\"b\"", "48\"08", "\"open"] {
            #expect(!CSVRecord.splitUnquoted(Array(quoted.utf8)[...], into: &reused), "text \(quoted)")
        }
    }

    @Test func lineReaderSplitsAFileAtEveryTerminatorAcrossChunks() throws {
        // Lines of all lengths around the 64 KiB chunk size, \n and \r\n, blank ones, no final terminator.
        var lines: [String] = []
        var generator = RandomStream(seed: 5)
        for i in 0..<400 {
            let length = i % 50 == 0 ? 70_000 : Int(generator.next() % 700)
            lines.append(String(repeating: Character(UnicodeScalar(UInt8(97 + i % 26))), count: length))
        }
        var text = ""
        for (i, line) in lines.enumerated() { text += line + (i == lines.count - 1 ? "" : i % 3 == 0 ? "\r\n" : "\n") }
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("linereader-\(getpid()).txt")
        try Data(text.utf8).write(to: url)
        defer { try? FileManager.default.removeItem(at: url) }
        var reader = try LineReader(path: url.path)
        var read: [String] = []
        while let line = try reader.nextLine() { read.append(String(decoding: line, as: UTF8.self)) }
        #expect(read == lines)
        #expect(reader.lineNumber == lines.count)
        var inMemory = LineReader(bytes: Array("a\r\n\r\nb\r".utf8), name: "m")
        var short: [String] = []
        while let line = try inMemory.nextLine() { short.append(String(decoding: line, as: UTF8.self)) }
        #expect(short == ["a", "", "b"])
    }

    @Test func timestampsInTheCachedMinuteReadAsAFreshClockReadsThem() throws {
        // One clock per kind: a clock refuses a time without an offset after one with (and the
        // other way), which a fresh clock has no rows to compare with.
        let zoned = ["2024-05-10 00:00:01.5+02:00", "2024-05-10 00:00:59.25+02:00", "2024-05-10 00:00:02Z",
                     "2024-05-10 00:00:03Z", "2024-05-10 00:00:60Z", "2024-05-10 00:00:5xZ", "2024-05-10 00:00:05.Z",
                     "2024-05-10 00:00:05.12345678901234Z", "2024-05-10 00:00:07Zq", "2024-05-10 00:01:07Z",
                     "2024-05-10T00:01:07Z", "2024-05-10 00:01:07.0000000000001Z", "2024-02-30 00:01:07Z",
                     "2024-05-10 00:01:09.99999999999999999999999999Z"]
        let plain = ["2024-05-10 00:00:01.5", "2024-05-10 00:00:01.75", "2024-05-10 00:00:60", "2024-05-10 00:00:5x",
                     "2024-05-10 00:01:59.9",
                     // More fraction digits than Int holds: the cached path counted on and trapped.
                     "2024-05-10 00:01:08.123456789012345678901234567890"]
        for stamps in [zoned, plain] {
            var cached = WallClockTimestamp()
            for stamp in stamps {
                var fresh = WallClockTimestamp()
                let bytes = Array(stamp.utf8)[...]
                #expect((try? cached.seconds(bytes)) == (try? fresh.seconds(bytes)), "\(stamp)")
            }
        }
    }

    @Test func latencySubBinTableIsTheComputedSubBin() {
        for digits in [SignificantDigits.one, .three] {
            let (table, computed) = LatencyHistogram(digits: digits).subBinsOfSlots()
            #expect(table.count == computed.count && table == computed, "digits \(digits)")
        }
    }

    @Test func microsecondsRoundHalfAwayFromZeroAsRoundedDid() {
        let cap = LatencyHistogram.highestTrackable - 1
        #expect(LatencyHistogram.highestTrackable == 1_000 << UInt64(LatencyHistogram.binCount - 1), "the top of the last bin")
        func long(_ s: Double) -> UInt64 { UInt64(max(1, min(Double(cap), (s * 1_000_000).rounded()))) }
        var seconds: [Double] = [0, -1, 1e-7, 4e-7, 5e-7, 6e-7, 1.5e-6, 2.5e-6, 0.0000025, 35_999.999_999_4, 35_999.999_999_5,
                                 36_000, 70_055.872_79, 549_755_813.887_998_4, 549_755_813.887_999_5, 549_755_813.888,
                                 1e9, 4.6e9, 1e300, .infinity, -.infinity, .nan, 0.49999999999999994e-6]
        var generator = RandomStream(seed: 9)
        for _ in 0..<50_000 {
            let whole = Double(generator.next() % 40_000_000_000)
            let half = generator.next() % 2 == 0
            // Exact halves of a microsecond and arbitrary fractions, at every scale.
            let micros = half ? whole + 0.5 : whole + Double(generator.next() % 1_000_000) / 1_000_000
            seconds.append(micros / 1_000_000)
            seconds.append(micros / 1_000_000 / Double(1 + generator.next() % 1_000))
        }
        for s in seconds { #expect(LatencyHistogram.micros(s) == long(s), "seconds \(s)") }
    }
}
