import Foundation
import Testing
import SimKit
import XDSTestSupport

@testable import ServingEngine

/// Writes `text` to a fresh scratch file (removed when the test process exits) and returns its path.
private func temporaryTrace(_ text: String, name: String = "trace") throws -> String {
    try TestScratch.write(text, name: "\(name).txt")
}

@Suite struct TraceWorkloadTests {
    @Test(.enabled(if: SharedTraces.available, "shared/traces is absent"))
    func azureTraceParsesFully() throws {
        let path = try #require(SharedTraces.path(SharedTraces.azureCode))
        let summary = try TraceWorkload.check(path: path)
        #expect(summary.format == .azureCSV)
        #expect(summary.requests == 8_819)
        #expect(summary.durationSeconds > 3_000 && summary.durationSeconds <= 3_600)
        var trace = try TraceWorkload(path: path)
        let first = try #require(trace.next() as RequestSpec?)
        #expect(first == RequestSpec(id: 0, arrival: 0, promptTokens: 4_808, outputTokens: 10))
        let second = try #require(trace.next() as RequestSpec?)
        #expect(abs(second.arrival - 0.052) < 1e-6)
    }

    @Test(.enabled(if: SharedTraces.available, "shared/traces is absent"))
    func mooncakeTraceParsesFullyWithPrefixReuse() throws {
        let path = try #require(SharedTraces.path(SharedTraces.mooncakeConversation))
        let summary = try TraceWorkload.check(path: path)
        #expect(summary.format == .mooncake)
        #expect(summary.requests == 12_031)
        // README: average input 12,035 tokens.
        #expect(abs(Double(summary.promptTokens) / 12_031 - 12_035) < 1)
        // Independently computed with Python over the same file: 0.3736.
        #expect(abs(summary.idealPrefixReuse - 0.3736) < 0.001)
        var trace = try TraceWorkload(path: path)
        let first = try #require(trace.next() as RequestSpec?)
        #expect(first.promptTokens == 6_758 && first.outputTokens == 500 && first.prefixHashes.count == 14)
        let second = try #require(trace.next() as RequestSpec?)
        #expect(second.prefixHashes.first == first.prefixHashes.first, "hash id 0 is shared")
    }

    @Test func detectsFormatByContentNotExtension() throws {
        let csv = try temporaryTrace("TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:17:03.5,10,2\n")
        let jsonl = try temporaryTrace("{\"timestamp\": 5, \"input_length\": 3, \"output_length\": 1, \"hash_ids\": []}\n")
        let other = try temporaryTrace("hello,world\n")
        #expect(try TraceFormat.detect(path: csv) == .azureCSV)
        #expect(try TraceFormat.detect(path: jsonl) == .mooncake)
        let error = #expect(throws: WorkloadError.self) { try TraceFormat.detect(path: other) }
        #expect(error?.description.hasPrefix("\(other):1: unknown trace format") == true)
        #expect(throws: WorkloadError.self) { try TraceFormat.detect(path: "/nonexistent/trace.csv") }
    }

    /// A column the trace is read from, named twice, is refused: the first was read and the
    /// other silently ignored (a review's `TIMESTAMP,ContextTokens,GeneratedTokens,context_tokens`
    /// replayed prompts of 10 with 99999999 in the second column).
    @Test(arguments: [
        ("TIMESTAMP,ContextTokens,GeneratedTokens,context_tokens", "ContextTokens twice (columns 2 and 4)"),
        ("TIMESTAMP,timestamp,ContextTokens,GeneratedTokens", "TIMESTAMP twice (columns 1 and 2)"),
        ("Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type,total_tokens", "Total tokens twice (columns 5 and 7)"),
    ])
    func aRepeatedColumnNameIsRefused(header: String, named: String) throws {
        let fields = header.split(separator: ",").count
        let row = (0..<fields).map { $0 == 0 ? "2023-11-16 18:17:03.5" : "5" }.joined(separator: ",")
        let path = try temporaryTrace(header + "\n" + row + "\n")
        let error = #expect(throws: WorkloadError.self) { try TraceFormat.detect(path: path) }
        #expect(error?.description.hasPrefix("\(path):1: the header names \(named);") == true, "\(String(describing: error))")
        // An unused column may repeat: it is not read.
        let fine = try temporaryTrace("TIMESTAMP,ContextTokens,GeneratedTokens,note,note\n2023-11-16 18:17:03.5,10,2,a,b\n")
        #expect(try TraceFormat.detect(path: fine) == .azureCSV)
    }

    @Test(arguments: [
        ("2023-11-16 18:17:03.5,abc,2", "ContextTokens is not an integer"),
        ("2023-11-16 18:17:03.5,10", "expected 3 comma-separated fields"),
        ("2023-13-16 18:17:03.5,10,2", "TIMESTAMP is not"),
        ("2023-11-16 18:17:03.5,0,2", "prompt length must be at least 1"),
        ("2023-11-16 18:17:01.0,10,2", "timestamp goes backwards"),
    ])
    func malformedAzureLineNamesFileAndLine(line: String, problem: String) throws {
        let path = try temporaryTrace(
            "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:17:02.0,10,2\n\(line)\n2023-11-16 18:17:09.0,1,1\n")
        let error = try #require(throws: WorkloadError.self) { try TraceWorkload.check(path: path) }
        #expect(error.description.hasPrefix("\(path):3: "))
        #expect(error.description.contains(problem))
        #expect(!error.description.contains("\n"))
    }

    @Test(arguments: [
        ("{\"timestamp\": 1, \"input_length\": 3}", "missing \"output_length\""),
        ("{\"timestamp\": 1, \"input_length\": 3, \"output_length\": 2, \"hash_ids\": [1,", "expected a JSON value, found the end of the line"),
        ("{\"timestamp\": 1, \"input_length\": 2.5, \"output_length\": 2}", "must be an integer"),
        ("{\"timestamp\": 1, \"input_length\": 3, \"output_length\": -1}", "output length must not be negative"),
        ("not json", "expected '{'"),
    ])
    func malformedMooncakeLineNamesFileAndLine(line: String, problem: String) throws {
        let good = "{\"timestamp\": 0, \"input_length\": 3, \"output_length\": 1, \"hash_ids\": [1]}"
        let path = try temporaryTrace("\(good)\n\(good)\n\(line)\n")
        let error = try #require(throws: WorkloadError.self) { try TraceWorkload.check(path: path) }
        #expect(error.description.hasPrefix("\(path):3: "))
        #expect(error.description.contains(problem))
    }

    @Test func zeroOutputReplaysAsOneTokenAndStreamingStopsAtBadRow() throws {
        let path = try temporaryTrace(
            "TIMESTAMP,ContextTokens,GeneratedTokens\r\n2023-11-16 23:59:59.5,10,0\r\n2023-11-17 00:00:00.25,5,3\r\nbad\r\n")
        var trace = try TraceWorkload(path: path)
        let first = try #require(trace.next() as RequestSpec?)
        let second = try #require(trace.next() as RequestSpec?)
        #expect(first.outputTokens == 1)
        #expect(second.arrival == 0.75, "crosses midnight into the next day")
        let exhausted = trace.next()
        #expect(exhausted == nil)
        #expect(trace.error?.description.hasPrefix("\(path):4:") == true)
    }

    private func problem(_ text: String, window: Int = TraceLimits.maxTokens) -> String? {
        do {
            _ = try TraceWorkload.check(bytes: Array(text.utf8), name: "t.trace", maxContextTokens: window)
            return nil
        } catch { return error.description }
    }

    private let mooncakeHeader = "{\"timestamp\": 0, \"input_length\": 3, \"output_length\": 1}\n"

    @Test(arguments: [
        // A whole number in range, but written as a Double's, exact only up to 2^53.
        ("{\"timestamp\": 1, \"input_length\": 600, \"output_length\": 1, \"hash_ids\": [1e19]}",
         "t.trace:2: \"hash_ids\"[0] must be an integer between 0 and 18446744073709551615, got 1e19 "
            + "(write an id above 9007199254740991 in plain digits)"),
        ("{\"timestamp\": 1, \"input_length\": 600, \"output_length\": 1, \"hash_ids\": [3, -1]}",
         "t.trace:2: \"hash_ids\"[1] must be an integer between 0 and 18446744073709551615, got -1"),
        ("{\"timestamp\": 1, \"input_length\": 600, \"output_length\": 1, \"hash_ids\": [0.5]}",
         "t.trace:2: \"hash_ids\"[0] must be an integer between 0 and 18446744073709551615, got 0.5"),
        ("{\"timestamp\": 1, \"input_length\": 600, \"output_length\": 1, \"hash_ids\": [1e400]}",
         "t.trace:2: \"hash_ids\"[0] must be an integer between 0 and 18446744073709551615, got 1e400"),
        // One past UInt64: refused with the digits as written, not a rounded Double.
        ("{\"timestamp\": 1, \"input_length\": 600, \"output_length\": 1, \"hash_ids\": [18446744073709551616]}",
         "t.trace:2: \"hash_ids\"[0] must be an integer between 0 and 18446744073709551615, got 18446744073709551616"),
        ("{\"timestamp\": 1, \"input_length\": 513, \"output_length\": 1, \"hash_ids\": [1, 2, 3]}",
         "t.trace:2: hash_ids has 3 entries but input_length 513 fills at most 2 blocks of 512 tokens"),
        ("{\"timestamp\": 1e400, \"input_length\": 1, \"output_length\": 1}",
         "t.trace:2: \"timestamp\" must be between 0 and 10000000000000 ms, got a number too large to read (over 1.8e308)"),
        // A number JSON holds but a Double does not was echoed as "inf", which the file never said.
        ("{\"timestamp\": -1e400, \"input_length\": 1, \"output_length\": 1}",
         "t.trace:2: \"timestamp\" must be between 0 and 10000000000000 ms, got a number too large to read (under -1.8e308)"),
        ("{\"timestamp\": -5, \"input_length\": 1, \"output_length\": 1}",
         "t.trace:2: \"timestamp\" must be between 0 and 10000000000000 ms, got -5"),
        ("{\"timestamp\": 1e14, \"input_length\": 1, \"output_length\": 1}",
         "t.trace:2: \"timestamp\" must be between 0 and 10000000000000 ms, got 100000000000000"),
        ("{\"timestamp\": 1, \"input_length\": 1e15, \"output_length\": 1}",
         "t.trace:2: \"input_length\" 1000000000000000.0 is out of range; expected a token count within the model's context window (at most 10000000 even with --clip-to-context, which cuts counts up to that to the window)"),
        // NaN and Infinity are no JSON numbers; the field holding one is named (it was "expected
        // a JSON value at column 54", leaving the reader to count columns to find which).
        ("{\"timestamp\": 1, \"input_length\": 1, \"output_length\": nan}",
         "t.trace:2: \"output_length\": nan at column 54 is not a JSON number (JSON numbers are finite)"
            + "; expected a whole number of tokens from 0 to the model's context window (at most 10000000)"),
        ("{\"timestamp\": 1, \"input_length\": Infinity, \"output_length\": 1}",
         "t.trace:2: \"input_length\": Infinity at column 34 is not a JSON number (JSON numbers are finite)"
            + "; expected a whole number of tokens from 1 to the model's context window (at most 10000000)"),
        ("{\"timestamp\": -Infinity, \"input_length\": 1, \"output_length\": 1}",
         "t.trace:2: \"timestamp\": -Infinity at column 15 is not a JSON number (JSON numbers are finite)"
            + "; expected a number of ms from 0 to 10000000000000"),
        ("{\"timestamp\": 1, \"input_length\": 1, \"output_length\": 1, \"hash_ids\": [1, NaN]}",
         "t.trace:2: \"hash_ids\": NaN at column 73 is not a JSON number (JSON numbers are finite)"
            + "; expected an array of integers from 0 to 18446744073709551615"),
        ("{\"timestamp\": 1, \"input_length\": 1, \"output_length\": 1e400}",
         "t.trace:2: \"output_length\" is out of range: a number too large to read (over 1.8e308); expected a token count within the model's context window (at most 10000000 even with --clip-to-context, which cuts counts up to that to the window)"),
        // A value of the wrong kind, NaN or a fraction: the message says what the field takes.
        ("{\"timestamp\": 1, \"input_length\": \"3\", \"output_length\": 1}",
         "t.trace:2: \"input_length\" must be a number; expected a whole number of tokens from 1 to the model's context "
            + "window (at most 10000000)"),
        ("{\"timestamp\": \"1\", \"input_length\": 3, \"output_length\": 1}",
         "t.trace:2: \"timestamp\" must be a number; expected a number of ms from 0 to 10000000000000"),
        ("{\"timestamp\": 1, \"input_length\": 3, \"output_length\": 1.5}",
         "t.trace:2: \"output_length\" must be an integer, got 1.5; expected a whole number of tokens from 0 to the model's "
            + "context window (at most 10000000)"),
        ("{\"timestamp\": 1, \"input_length\": 3, \"output_length\": 1, \"hash_ids\": 7}",
         "t.trace:2: \"hash_ids\" must be an array of integers; expected an array of integers from 0 to 18446744073709551615"),
        ("{\"timestamp\": 1, \"input_length\": 3, \"output_length\": NaN}",
         "t.trace:2: \"output_length\": NaN at column 54 is not a JSON number (JSON numbers are finite); expected a whole "
            + "number of tokens from 0 to the model's context window (at most 10000000)"),
        ("{\"timestamp\": 1, \"input_length\": 0, \"output_length\": 1}",
         "t.trace:2: prompt length must be at least 1, got input_length 0; expected 1…10000000 tokens"),
        ("{\"timestamp\": 1, \"input_length\": 1, \"output_length\": -1}",
         "t.trace:2: output length must not be negative, got output_length -1; expected 0…10000000 tokens"),
    ])
    func mooncakeFieldsAreBounded(line: String, message: String) {
        #expect(problem(mooncakeHeader + line + "\n") == message)
    }

    /// `hash_ids` above 2^53 were read as Doubles: 9007199254740993 became …992, so two ids in
    /// the file were one block (and a refusal echoed a number the file never held).
    @Test func hashIDsAboveTwoToThe53AreReadExactly() throws {
        let line = "{\"timestamp\": 1, \"input_length\": 2000, \"output_length\": 1, "
            + "\"hash_ids\": [9007199254740992, 9007199254740993, 18446744073709551615, 1e3]}"
        let row = try #require(try TraceRowParser.parseMooncakeLine(Array(line.utf8)[...]))
        #expect(row.hashIDs == [9_007_199_254_740_992, 9_007_199_254_740_993, UInt64.max, 1_000].map(StableHash.mix))
        #expect(problem(mooncakeHeader + line + "\n") == nil)
    }

    /// A header line repeated partway down (files joined with `cat`) was told
    /// "ContextTokens is not an integer: 'ContextTokens'", as if one field of a data row were bad.
    @Test func aRepeatedHeaderLineIsSaidToBeOne() {
        let azure = "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:17:03,1,1\n"
        #expect(problem(azure + "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:17:04,1,1\n")
            == "t.trace:3: this line repeats the header ('TIMESTAMP,ContextTokens,GeneratedTokens'), it is not a data row; "
            + "a trace has one header, on its first line: remove this one (files joined with cat keep each file's header)")
        // With a byte-order mark in front (a second file saved by a Windows editor, joined with cat).
        #expect(problem(azure + "\u{FEFF}TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:17:04,1,1\n")
            == "t.trace:3: this line repeats the header ('TIMESTAMP,ContextTokens,GeneratedTokens'), it is not a data row; "
            + "a trace has one header, on its first line: remove this one (files joined with cat keep each file's header)")
        // Another format's header is a header too, not a bad row.
        #expect(problem(azure + "Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n")?
            .hasPrefix("t.trace:3: this line is a header ('Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type'), not a data row") == true)
        let burst = "Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n5,ChatGPT,1,1,2,Conversation log\n"
        #expect(problem(burst + "Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n")?
            .hasPrefix("t.trace:3: this line repeats the header ('Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type')") == true)
        // A line no format takes for a header keeps the message of its first bad field (in column order).
        #expect(problem(azure + "Timestamp,ContextTokens,Response\n") == "t.trace:3: TIMESTAMP is not 'YYYY-MM-DD HH:MM:SS[.fraction]"
            + "[Z|±HH:MM]' (a real date and time) with a year 1900–9999: 'Timestamp'")
    }

    @Test(arguments: [
        ("9223372036854775807-01-01 00:00:00,1,1",
         "t.trace:3: TIMESTAMP is not 'YYYY-MM-DD HH:MM:SS[.fraction][Z|±HH:MM]' (a real date and time) with a year 1900–9999: '9223372036854775807-01-01 00:00:00'"),
        ("2023-11-16 18:17:nan,1,1",
         "t.trace:3: TIMESTAMP is not 'YYYY-MM-DD HH:MM:SS[.fraction][Z|±HH:MM]' (a real date and time) with a year 1900–9999: '2023-11-16 18:17:nan'"),
        ("2023-11-16 18:17:05,99999999999999999999,1",
         "t.trace:3: ContextTokens 99999999999999999999 is out of range; expected a token count within the model's context window (at most 10000000 even with --clip-to-context, which cuts counts up to that to the window)"),
        ("2023-11-16 18:17:05,1,10000001", "t.trace:3: GeneratedTokens 10000001 is out of range; expected a token count within the model's context window (at most 10000000 even with --clip-to-context, which cuts counts up to that to the window)"),
        ("2023-11-16 18:17:05,\u{1B}[2J,1", "t.trace:3: ContextTokens is not an integer: '\\u{1B}[2J'; "
            + "expected a whole number of tokens up to the model's context window (at most 10000000)"),
        ("2343-11-16 18:17:05,1,1",
         "t.trace:3: timestamp is 10098172802 s after the first row; a trace spans at most 10000000000 s (about 317 years)"),
        ("2023-11-16 18:17:05,1,abc", "t.trace:3: GeneratedTokens is not an integer: 'abc'; expected a whole number of tokens up to "
            + "the model's context window (at most 10000000)"),
    ])
    func azureFieldsAreBounded(line: String, message: String) {
        let header = "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:17:03,1,1\n"
        #expect(problem(header + line + "\n") == message)
    }

    @Test func promptsLongerThanTheModelsWindowAreRefused() {
        let row = "{\"timestamp\": 1, \"input_length\": 163841, \"output_length\": 1}\n"
        #expect(problem(mooncakeHeader + row, window: 163_840)
            == "t.trace:2: input_length 163841 is longer than the model's context window; expected 1…163840 tokens (--clip-to-context cuts such prompts to the window)")
        #expect(problem(mooncakeHeader + row) == nil, "without a window the ceiling is 10 million")
        let csv = "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:17:03,4097,1\n"
        #expect(problem(csv, window: 4_096)
            == "t.trace:2: ContextTokens 4097 is longer than the model's context window; expected 1…4096 tokens (--clip-to-context cuts such prompts to the window)")
        #expect(problem("TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:17:03,4095,1\n", window: 4_096) == nil)
        // Prompt and output share the window: each fitting alone is not enough (such rows were
        // replayed past the window; the HTTP API and synthetic traffic hold to it).
        #expect(problem("TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:17:03,4096,1\n", window: 4_096)
            == "t.trace:2: ContextTokens 4096 + GeneratedTokens 1 = 4097 tokens is longer than the model's context window of 4096 (--clip-to-context cuts such rows to the window)")
        #expect(problem(mooncakeHeader + "{\"timestamp\": 1, \"input_length\": 131000, \"output_length\": 1000}\n", window: 131_072)?
            .hasPrefix("t.trace:2: input_length 131000 + output_length 1000 = 132000 tokens is longer") == true)
    }

    /// A BurstGPT row whose `Request tokens` (or `Response tokens`) pass the window by so much
    /// that `Total tokens`, their sum, passes the 10-million ceiling on one count was refused
    /// naming `Total tokens` as out of range: the field at fault is the count, told the window.
    /// `Total tokens` is a sum, checked to be one; it is not a count held to the ceiling.
    @Test func aBurstGPTCountPastTheWindowIsNamedNotItsTotal() throws {
        let header = "Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n0,ChatGPT,100,10,110,Conversation log\n"
        #expect(problem(header + "1,ChatGPT,9999999,10,10000009,Conversation log\n", window: 131_072)
            == "t.trace:3: Request tokens 9999999 is longer than the model's context window; expected 1…131072 tokens "
                + "(--clip-to-context cuts such prompts to the window)")
        #expect(problem(header + "1,ChatGPT,100,9999999,10000099,Conversation log\n", window: 131_072)
            == "t.trace:3: Response tokens 9999999 is longer than the model's context window; expected 0…131072 tokens")
        // Within the ceiling, each count alone: the row is read whole, and the sum is checked to be one.
        #expect(problem(header + "1,ChatGPT,10000000,10000000,20000000,Conversation log\n") != nil)
        #expect(problem(header + "1,ChatGPT,10000000,10000000,20000001,Conversation log\n")
            == "t.trace:3: Total tokens 20000001 is not Request tokens + Response tokens (10000000 + 10000000)")
        #expect(problem(header + "1,ChatGPT,1,1,99999999999999999999,Conversation log\n")
            == "t.trace:3: Total tokens 99999999999999999999 is out of range; expected the sum of the row's two token counts")
        // With --clip-to-context such a row is cut to the window as any long row is (it was refused).
        var clipped = try TraceWorkload(bytes: Array((header + "1,ChatGPT,9999999,10,10000009,Conversation log\n").utf8),
                                        name: "t.trace", maxContextTokens: 4_096, clipToContext: true)
        _ = try clipped.nextChecked()
        let row = try #require(try clipped.nextChecked())
        #expect(row.promptTokens == 4_095 && row.outputTokens == 1 && clipped.clippedRows == 1, "\(row)")
    }

    @Test func aTrillionMillisecondGapIsAccepted() throws {
        let text = mooncakeHeader + "{\"timestamp\": 1000000000000, \"input_length\": 3, \"output_length\": 1}\n"
        let summary = try TraceWorkload.check(bytes: Array(text.utf8), name: "t.trace")
        #expect(summary.requests == 2)
        #expect(summary.durationSeconds == 1e9)
    }

    @Test func hugeLinesAreRefusedWithoutReadingThemWhole() throws {
        // One 2 MiB line with no newline, from a real file so the streaming path is used.
        let path = try temporaryTrace("{\"timestamp\": 0, \"input_length\": 3, \"output_length\": 1, \"hash_ids\": ["
            + String(repeating: "1, ", count: 700_000))
        let error = try #require(throws: WorkloadError.self) { try TraceWorkload.check(path: path) }
        #expect(error.description == "\(path):1: line longer than 1048576 bytes; a trace line holds one request")
        let second = try temporaryTrace(mooncakeHeader + String(repeating: " ", count: 1_100_000) + "\n")
        let error2 = try #require(throws: WorkloadError.self) { try TraceWorkload.check(path: second) }
        #expect(error2.description.hasPrefix("\(second):2: line longer than 1048576 bytes"))
    }

    /// A trace is read more than once, so a pipe or device is refused by name, before anything
    /// opens it (a FIFO with no writer would block the open): `--workload <(cat t)` and
    /// `/dev/stdin` were consumed by the format probe and refused as "the trace has no requests".
    @Test(.timeLimit(.minutes(10))) func pipesAndDevicesAreRefusedByName() throws {
        let fifo = FileManager.default.temporaryDirectory.appendingPathComponent("xds-fifo-\(UUID().uuidString)").path
        #expect(mkfifo(fifo, 0o600) == 0)
        defer { try? FileManager.default.removeItem(atPath: fifo) }
        for path in ["/dev/null", fifo] {
            let error = try #require(throws: WorkloadError.self) { try TraceWorkload.check(path: path) }
            #expect(error.description.hasPrefix("\(path): is a pipe or device, not a regular file"), "\(error)")
            #expect(throws: WorkloadError.self) { try TraceFormat.detect(path: path) }
        }
        // A symbolic link to a file is a file.
        let file = try temporaryTrace(#"{"timestamp": 0, "input_length": 10, "output_length": 2}"# + "\n")
        let link = file + ".link"
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: file)
        defer { try? FileManager.default.removeItem(atPath: link) }
        #expect(try TraceWorkload.check(path: link).requests == 1)
    }

    @Test func directoriesAndByteOrderMarksAreHandled() throws {
        let dir = FileManager.default.temporaryDirectory.path
        let error = try #require(throws: WorkloadError.self) { try TraceWorkload.check(path: dir) }
        #expect(error.description == "\(dir): is a directory, not a trace file")
        let bom = "\u{FEFF}TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:17:03,1,1\n"
        #expect(problem(bom) == nil)
        // A Mooncake JSONL saved with a BOM (Windows editors): detected as Mooncake and then
        // refused at its first row ("expected '{'"), with the invisible mark in the message.
        let row = #"{"timestamp": 0, "input_length": 10, "output_length": 2, "hash_ids": [1]}"#
        let jsonl = try temporaryTrace("\u{FEFF}\(row)\n\(row)\n")
        #expect(try TraceWorkload.check(path: jsonl).requests == 2)
        var replay = try TraceWorkload(path: jsonl)
        #expect((try replay.next() as RequestSpec?)?.promptTokens == 10)
        // Only the file's first bytes are a BOM; elsewhere it is a broken line, and said to be
        // one (it was told "expected '{' at column 1, found '{"timesta'", the mark unseen).
        #expect(problem("\(row)\n\u{FEFF}\(row)\n") == "t.trace:2: this line starts with a byte-order mark (U+FEFF), "
            + "which only a file's first line may carry; remove it (files joined with cat keep each file's mark)")
    }

    /// A file with classic Mac line endings (bare CR) reads as one line: it is refused by saying
    /// so, in either format, while CRLF files replay.
    @Test func bareCarriageReturnsAreNamed() throws {
        let row = #"{"timestamp": 0, "input_length": 10, "output_length": 2, "hash_ids": [1]}"#
        for text in ["\(row)\r\(row)\r", "TIMESTAMP,ContextTokens,GeneratedTokens\r2023-11-16 18:17:03,1,1\r"] {
            #expect(problem(text)?.contains(":1: lines end in a bare carriage return") == true, "\(problem(text) ?? "accepted")")
        }
        #expect(problem("\(row)\r\n\(row)\r\n") == nil)
        #expect(problem("TIMESTAMP,ContextTokens,GeneratedTokens\r\n2023-11-16 18:17:03,1,1\r\n") == nil)
    }

    /// A binary file whose first "line" holds a 0x0D (an executable, random bytes) was told "lines
    /// end in a bare carriage return (classic Mac line endings); convert them", advice for a text
    /// trace it is not: it is an unknown format. A real Mac-ending trace is still named so.
    @Test func aBinaryFileWithACarriageReturnIsAnUnknownFormat() throws {
        let binary: [UInt8] = [0x7F, 0x45, 0x4C, 0x46, 0x02, 0x01, 0x0D, 0x00, 0x3E, 0x00, 0x0D, 0x99, 0x0A, 0x01]
        let refused: String
        do {
            _ = try TraceWorkload.check(bytes: binary, name: "t.trace")
            refused = "accepted"
        } catch { refused = error.description }
        #expect(refused.hasPrefix("t.trace:1: unknown trace format; expected an Azure LLM CSV header"), "\(refused)")
        let header = "Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\r0,ChatGPT,1,1,2,Conversation log\r"
        #expect(problem(header)?.contains(":1: lines end in a bare carriage return") == true, "\(problem(header) ?? "accepted")")
    }

    /// A compressed or UTF-16 trace is named as such. A gzip file was refused as "lines end in a
    /// bare carriage return (classic Mac line endings)" whenever its compressed bytes held a 0x0D
    /// before the first 0x0A, and every other one as an unknown format (no hint that it was the
    /// encoding, not the columns).
    @Test func compressedAndUTF16TracesAreNamed() throws {
        func problem(_ bytes: [UInt8]) -> String? {
            do {
                _ = try TraceWorkload.check(bytes: bytes, name: "t.trace")
                return nil
            } catch { return error.description }
        }
        let csv = Array("TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:17:03,1,1\n".utf8)
        // The first bytes of `gzip` output of such a file, a 0x0D among them (as in a real one).
        let gzip: [UInt8] = [0x1F, 0x8B, 0x08, 0x08, 0x0D, 0x2E, 0x33, 0x69, 0x00, 0x03] + csv
        #expect(problem(gzip) == "t.trace:1: the file is gzip-compressed; decompress it first (gunzip -k FILE)",
                "\(problem(gzip) ?? "accepted")")
        let compressed: [([UInt8], String)] = [
            ([0x28, 0xB5, 0x2F, 0xFD], "the file is zstd-compressed; decompress it first (unzstd -k FILE)"),
            ([0x42, 0x5A, 0x68, 0x39], "the file is bzip2-compressed; decompress it first (bunzip2 -k FILE)"),
            ([0xFD, 0x37, 0x7A, 0x58, 0x5A, 0x00], "the file is xz-compressed; decompress it first (unxz -k FILE)"),
            ([0x50, 0x4B, 0x03, 0x04], "the file is a zip archive; extract the trace from it first (unzip FILE)"),
        ]
        for (magic, message) in compressed {
            #expect(problem(magic + csv) == "t.trace:1: " + message, "\(problem(magic + csv) ?? "accepted")")
        }
        let utf16: [UInt8] = [0xFF, 0xFE] + csv.flatMap { c -> [UInt8] in [c, 0] }
        #expect(problem(utf16) == "t.trace:1: the file is UTF-16 text; save it as UTF-8 (e.g. iconv -f UTF-16 -t UTF-8 IN > OUT)",
                "\(problem(utf16) ?? "accepted")")
        let utf16BE: [UInt8] = [0xFE, 0xFF] + csv.flatMap { c -> [UInt8] in [0, c] }
        #expect(problem(utf16BE) == "t.trace:1: the file is UTF-16 text; save it as UTF-8 (e.g. iconv -f UTF-16 -t UTF-8 IN > OUT)")
        // The same rows uncompressed still replay.
        #expect(problem(csv) == nil)
    }
}
