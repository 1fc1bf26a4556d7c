import Foundation
import Testing
import XDSTestSupport

@testable import ServingEngine

/// The trace formats users have (issue 14): Azure 2023 and 2024 CSVs quoted or not, with or
/// without fractions and offsets; BurstGPT CSV; Mooncake JSONL with extra or nested fields.
@Suite(.timeLimit(.minutes(10))) struct TraceFormatsTests {
    private func requests(_ text: String) throws -> [RequestSpec] {
        var trace = try TraceWorkload(bytes: Array(text.utf8), name: "t.trace")
        var out: [RequestSpec] = []
        while let r = try trace.nextChecked() { out.append(r) }
        return out
    }

    private func problem(_ text: String) -> String? {
        do {
            _ = try TraceWorkload.check(bytes: Array(text.utf8), name: "t.trace")
            return nil
        } catch { return error.description }
    }

    private let azureHeader = "TIMESTAMP,ContextTokens,GeneratedTokens\n"

    @Test func quotedAzureCSVReplaysAsTheUnquotedOne() throws {
        let plain = azureHeader + "2023-11-16 18:17:03.9799600,4808,10\n2023-11-16 18:17:04.0319600,3180,8\n"
        let quoted = "\"TIMESTAMP\",\"ContextTokens\",\"GeneratedTokens\"\r\n"
            + "\"2023-11-16 18:17:03.9799600\",\"4808\",\"10\"\r\n\"2023-11-16 18:17:04.0319600\", \"3180\" ,8\r\n"
        let a = try requests(plain), b = try requests(quoted)
        #expect(a.count == 2)
        #expect(a == b)
        #expect(try TraceFormat.detect(path: try temporaryFile(quoted)) == .azureCSV)
    }

    @Test func azure2024TimestampsWithOffsetsAndFractions() throws {
        // 2024 style with +00:00, then Z, +02:00 and -01:30 (which is 1 h 30 min behind UTC).
        let text = azureHeader + "2024-05-10 00:00:00.009930+00:00,10,2\n2024-05-10T02:00:01.5+02:00,10,2\n"
            + "2024-05-10 00:00:03Z,10,2\n2024-05-10 00:00:04-0130,10,2\n"
        let r = try requests(text)
        #expect(r.count == 4)
        #expect(r[0].arrival == 0)
        #expect(abs(r[1].arrival - (1.5 - 0.00993)) < 1e-6)
        #expect(abs(r[2].arrival - (3 - 0.00993)) < 1e-6)
        #expect(abs(r[3].arrival - (5_400 + 4 - 0.00993)) < 1e-6)
    }

    @Test func azureTimestampsBackwardsAcrossAnOffsetAreRefused() {
        let text = azureHeader + "2024-05-10 00:00:04-01:30,10,2\n2024-05-10 00:00:05Z,10,2\n"
        #expect(problem(text)?.hasPrefix("t.trace:3: timestamp goes backwards") == true)
    }

    /// A time with no offset is taken as UTC, so a trace mixing `18:17:03+05:00` and `18:17:04`
    /// replayed its second row 18,001 s after its first, without a word. Rows that give an offset
    /// and rows that give none do not mix; every row with one (any offsets), or none, replays.
    @Test func timestampsWithAndWithoutAnOffsetDoNotMix() throws {
        let message = "mixes UTC offsets with the rows before it (some rows give an offset such as +00:00 or Z, some none, "
            + "and a time with none is taken as UTC); give every row an offset, or none"
        let zonedFirst = azureHeader + "2023-11-16 18:17:03+05:00,480,10\n2023-11-16 18:17:03.5+05:00,4,1\n2023-11-16 18:17:04,300,8\n"
        #expect(problem(zonedFirst) == "t.trace:4: TIMESTAMP '2023-11-16 18:17:04' " + message, "\(problem(zonedFirst) ?? "accepted")")
        let plainFirst = azureHeader + "2023-11-16 18:17:03,480,10\n2023-11-16 18:17:04Z,300,8\n"
        #expect(problem(plainFirst) == "t.trace:3: TIMESTAMP '2023-11-16 18:17:04Z' " + message, "\(problem(plainFirst) ?? "accepted")")
        // Offsets of every kind together, or none at all, still replay.
        #expect(try requests(azureHeader + "2023-11-16 18:17:03+05:00,480,10\n2023-11-16 13:17:04Z,300,8\n")
            .map(\.arrival) == [0, 1])
        #expect(try requests(azureHeader + "2023-11-16 18:17:03,480,10\n2023-11-16 18:17:04,300,8\n").map(\.arrival) == [0, 1])
    }

    /// The refusal said "1700158623.25 s after 1700158624.5 s": seconds since 1970, not what the
    /// file shows. It says by how much the row goes back.
    @Test func backwardsTimestampsSayByHowMuch() {
        let text = azureHeader + "2023-11-16 18:17:04.5,10,2\n2023-11-16 18:17:03.25,10,2\n"
        #expect(problem(text) == "t.trace:3: timestamp goes backwards: 1.25 s before the previous row's (rows must be in time order)")
    }

    /// A row back by less than the microsecond the amount is rounded to said "0 s before the
    /// previous row's", which reads as no step back at all (Mooncake ms timestamps 0.0001, 0).
    @Test func aBackwardsStepUnderAMicrosecondIsNotCalledZero() {
        let text = "{\"timestamp\": 0.0001, \"input_length\": 10, \"output_length\": 2}\n"
            + "{\"timestamp\": 0, \"input_length\": 10, \"output_length\": 2}\n"
        #expect(problem(text) == "t.trace:2: timestamp goes backwards: less than 0.000001 s before the previous row's "
            + "(rows must be in time order)", "\(problem(text) ?? "accepted")")
    }

    @Test(arguments: [
        "2023-02-29 00:00:00", "2023-11-31 00:00:00", "2023-11-16 24:00:00", "2023-11-16 18:60:00",
        "2023-11-16 18:17:60", "2023-1-16 18:17:03", "2023-11-16 18:17:3.5", "2023-11-16 18:17:03.",
        "2023-11-16 18:17:03+24:00", "2023-11-16 18:17:03+05:30x", "2023-11-16 18:17:03 UTC",
        "2023-11-16 18:17:03+5", "1899-12-31 23:59:59", "2023/11/16 18:17:03",
    ])
    func impossibleOrMalformedTimestampsAreRefused(_ stamp: String) {
        let message = problem(azureHeader + "2023-11-16 18:17:00,1,1\n\(stamp),1,1\n")
        #expect(message?.hasPrefix("t.trace:3: TIMESTAMP is not") == true, "\(message ?? "accepted")")
    }

    @Test func leapDayAndTheTSeparatorAreFine() throws {
        let r = try requests(azureHeader + "2024-02-28 23:59:59.5,1,1\n2024-02-29T00:00:00,1,1\n2024-03-01 00:00:00.25,1,1\n")
        #expect(r.map(\.arrival) == [0, 0.5, 86_400.75])
    }

    @Test func quotingErrorsNameTheLineTheRecordStartsOn() {
        #expect(problem(azureHeader + "2023-11-16 18:17:00,1,1\n2023-11-16 18:17:01,1\"2\",1\n")
            == "t.trace:3: field 2 has a quote but does not start with one; quote the whole field and write a quote inside it as \"\"")
        #expect(problem(azureHeader + "\"2023-11-16 18:17:00\"x,1,1\n")
            == "t.trace:2: field 1 has text after its closing quote; a quote inside a quoted field is written \"\"")
        #expect(problem(azureHeader + "2023-11-16 18:17:00,1,1\n\"2023-11-16 18:17:01,1,1\n2023-11-16 18:17:02,1,1\n")
            == "t.trace:3: a quoted field is not closed before the end of the file")
    }

    @Test func aQuotedLineBreakKeepsLaterLineNumbersRight() {
        // BurstGPT's Log Type holding a line break: the record spans lines 2–3; line 4 is bad.
        let text = "Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n"
            + "0,ChatGPT,10,5,15,\"Conversation\nlog\"\n1,ChatGPT,x,5,15,Conversation log\n"
        #expect(problem(text) == "t.trace:4: Request tokens is not an integer: 'x'; expected a whole number of tokens up to the model's context window (at most 10000000)")
    }

    private let burstHeader = "Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n"

    @Test func burstGPTReplaysAndSkipsRowsTheServiceFailed() throws {
        let text = burstHeader + "5,ChatGPT,472,18,490,Conversation log\n45,ChatGPT,1087,0,1087,Conversation log\n"
            + "118,GPT-4,417,276,693,API log\n118.5,ChatGPT,1,1,2,API log\n"
        let r = try requests(text)
        #expect(r.map(\.arrival) == [0, 113, 113.5])
        #expect(r.map(\.promptTokens) == [472, 417, 1])
        #expect(r.map(\.outputTokens) == [18, 276, 1])
        let summary = try TraceWorkload.check(bytes: Array(text.utf8), name: "b.csv")
        #expect(summary.format == .burstGPT)
        #expect(summary.requests == 3)
        #expect(summary.failedInSourceRows == 1)
    }

    /// A BurstGPT row with 0 response tokens is a request the traced service failed and is skipped,
    /// but its request count is still a field of the file: `-5` was skipped and counted as a failed
    /// request, where the same count in a replayed row is refused. A negative count is a broken
    /// row, refused at its line whatever the response column says.
    @Test func aFailedRowsNegativeRequestCountIsRefused() throws {
        #expect(problem(burstHeader + "5,ChatGPT,-5,0,-5,Conversation log\n6,ChatGPT,10,5,15,Conversation log\n")
            == "t.trace:2: prompt length must not be negative, got Request tokens -5; a token count is a whole number from 0 "
            + "(a row with 0 Response tokens, a request the traced service failed, is skipped, but its fields are checked)")
        // Without Total tokens too (its sum check caught nothing then either).
        let noTotal = "Timestamp,Model,Request tokens,Response tokens,Log Type\n5,ChatGPT,-1,0,API log\n"
        #expect(problem(noTotal)?.hasPrefix("t.trace:2: prompt length must not be negative, got Request tokens -1;") == true,
                "\(problem(noTotal) ?? "accepted")")
        // A failed row of 0 request tokens is still a failed row, skipped as before.
        let zero = burstHeader + "5,ChatGPT,0,0,0,Conversation log\n6,ChatGPT,10,5,15,Conversation log\n"
        #expect(try TraceWorkload.check(bytes: Array(zero.utf8), name: "b.csv").failedInSourceRows == 1)
    }

    /// A BurstGPT trace whose every row the traced service failed was refused as "the trace has no
    /// requests", as if empty or unread: the refusal says its rows were all failures.
    @Test func aTraceOfOnlyFailedRowsSaysSo() {
        #expect(problem(burstHeader + "5,ChatGPT,472,0,472,Conversation log\n")
            == "t.trace: the trace has no requests to replay: its 1 row has 0 response tokens "
            + "(requests the traced service failed, which are not replayed)")
        #expect(problem(burstHeader + "5,ChatGPT,472,0,472,Conversation log\r\n6,GPT-4,9,0,9,API log\r\n")?
            .contains(": all 2 rows have 0 response tokens ") == true)
        #expect(problem(burstHeader) == "t.trace: the trace has no requests")
        #expect(problem(azureHeader) == "t.trace: the trace has no requests")
    }

    /// Azure and Mooncake rows may ask for 0 output tokens: replayed (a prefill still yields the
    /// first token, so they are served as 1), and counted so the run can say so.
    @Test func zeroOutputRowsAreCounted() throws {
        let azure = "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:17:03,100,0\n2023-11-16 18:17:04,100,7\n"
        let a = try TraceWorkload.check(bytes: Array(azure.utf8), name: "a.csv")
        #expect(a.requests == 2 && a.zeroOutputRows == 1)
        let mooncake = #"{"timestamp": 0, "input_length": 10, "output_length": 0}"# + "\n"
            + #"{"timestamp": 5, "input_length": 10, "output_length": 0}"# + "\n"
        #expect(try TraceWorkload.check(bytes: Array(mooncake.utf8), name: "m.jsonl").zeroOutputRows == 2)
        // BurstGPT's 0-token rows are failures of the traced service: skipped, not counted here.
        let burst = burstHeader + "5,ChatGPT,472,0,472,Conversation log\n6,ChatGPT,10,3,13,API log\n"
        let b = try TraceWorkload.check(bytes: Array(burst.utf8), name: "b.csv")
        #expect(b.zeroOutputRows == 0 && b.failedInSourceRows == 1)
    }

    @Test func burstGPTHeaderVariantsAreRecognised() throws {
        // Any case, spaces or underscores, columns in any order, quoted.
        let text = "\"log_type\",\"timestamp\",\"request_tokens\",\"response_tokens\",\"model\"\nAPI log,0,3,4,GPT-4\n"
        let r = try requests(text)
        #expect(r.count == 1 && r[0].promptTokens == 3 && r[0].outputTokens == 4)
    }

    @Test(arguments: [
        ("5,ChatGPT,472,18,491,Conversation log", "t.trace:2: Total tokens 491 is not Request tokens + Response tokens (472 + 18)"),
        ("-5,ChatGPT,472,18,490,Conversation log", "t.trace:2: Timestamp is not a plain decimal number of seconds (digits, optional fraction) between 0 and 10000000000: '-5'"),
        ("1e3,ChatGPT,472,18,490,Conversation log", "t.trace:2: Timestamp is not a plain decimal number of seconds (digits, optional fraction) between 0 and 10000000000: '1e3'"),
        ("5,ChatGPT,0,18,18,Conversation log", "t.trace:2: prompt length must be at least 1, got Request tokens 0; expected 1…10000000 tokens"),
        ("5,ChatGPT,472,18,490", "t.trace:2: expected 6 comma-separated fields as the header has, got 5"),
    ])
    func malformedBurstGPTRowsAreRefused(row: String, message: String) {
        #expect(problem(burstHeader + row + "\n") == message)
    }

    /// A token count written with a sign or with spaces inside its quotes (`"+3180"`, `" 3180"`,
    /// `"3180\u{A0}"`) was read as 3180: a count is plain digits, and such a field is one the
    /// export did not mean as one (the spaces a CSV writes around a field, `a, 3180`, are not
    /// part of it and stay fine). Refused in one line naming the file, the line and the field.
    @Test(arguments: [
        ("2023-11-16 18:17:03,+3180,10", "t.trace:2: ContextTokens must be written in plain digits (no sign or spaces), got '+3180'"),
        ("2023-11-16 18:17:03,\" 3180\",10", "t.trace:2: ContextTokens must be written in plain digits (no sign or spaces), got ' 3180'"),
        ("2023-11-16 18:17:03,\"3180 \",10", "t.trace:2: ContextTokens must be written in plain digits (no sign or spaces), got '3180 '"),
        ("2023-11-16 18:17:03,3180\u{A0},10", "t.trace:2: ContextTokens must be written in plain digits (no sign or spaces), got '3180\u{A0}'"),
        ("2023-11-16 18:17:03,3180,+10", "t.trace:2: GeneratedTokens must be written in plain digits (no sign or spaces), got '+10'"),
        ("2023-11-16 18:17:03,3180,\"\t10\"", "t.trace:2: GeneratedTokens must be written in plain digits (no sign or spaces), got '\\u{9}10'"),
        ("2023-11-16 18:17:03,+12345678901,10", "t.trace:2: ContextTokens must be written in plain digits (no sign or spaces), got '+12345678901'"),
    ])
    func aTokenCountWithASignOrInnerSpacesIsRefused(row: String, message: String) {
        #expect(problem(azureHeader + row + "\n") == message, "\(problem(azureHeader + row + "\n") ?? "accepted")")
    }

    /// The forms that stay: spaces around an unquoted field (CSV, not the number), a negative or
    /// too-large count (told its range), and BurstGPT's columns, read by the same rule.
    @Test func tokenCountsKeepTheirOtherMessages() throws {
        #expect(try requests(azureHeader + "2023-11-16 18:17:03, 3180 ,\t10\n").map(\.promptTokens) == [3180])
        #expect(problem(azureHeader + "2023-11-16 18:17:03,-5,10\n")
                == "t.trace:2: prompt length must be at least 1, got ContextTokens -5; expected 1…10000000 tokens")
        #expect(problem(azureHeader + "2023-11-16 18:17:03,99999999999,10\n")?.hasPrefix(
            "t.trace:2: ContextTokens 99999999999 is out of range;") == true)
        #expect(problem(burstHeader + "5,ChatGPT,472,18,+490,Conversation log\n")
                == "t.trace:2: Total tokens must be written in plain digits (no sign or spaces), got '+490'")
    }

    /// A row with several bad fields is refused for the first in column order: `,,` was blamed
    /// on ContextTokens (read first), where TIMESTAMP, before it, is as empty; BurstGPT's were
    /// read tokens first, timestamp after. Columns in another order are read in theirs.
    @Test(arguments: [
        ("TIMESTAMP,ContextTokens,GeneratedTokens\n", ",,",
         "TIMESTAMP is not 'YYYY-MM-DD HH:MM:SS[.fraction][Z|±HH:MM]' (a real date and time) with a year 1900–9999: ''"),
        ("TIMESTAMP,ContextTokens,GeneratedTokens\n", "yesterday,x,",
         "TIMESTAMP is not 'YYYY-MM-DD HH:MM:SS[.fraction][Z|±HH:MM]' (a real date and time) with a year 1900–9999: 'yesterday'"),
        ("TIMESTAMP,ContextTokens,GeneratedTokens\n", "2023-11-16 18:17:03,x,",
         "ContextTokens is not an integer: 'x'; expected a whole number of tokens up to the model's context window (at most 10000000)"),
        ("GeneratedTokens,TIMESTAMP,ContextTokens\n", ",,",
         "GeneratedTokens is not an integer: ''; expected a whole number of tokens up to the model's context window (at most 10000000)"),
        ("Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n", ",,,,,",
         "Timestamp is not a plain decimal number of seconds (digits, optional fraction) between 0 and 10000000000: ''"),
        ("Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n", "5,GPT-4,x,y,z,",
         "Request tokens is not an integer: 'x'; expected a whole number of tokens up to the model's context window (at most 10000000)"),
        ("Total tokens,Response tokens,Request tokens,Timestamp\n", "x,y,z,w",
         "Total tokens is not an integer: 'x'; expected a whole number of tokens up to the model's context window (at most 10000000)"),
    ])
    func aRowIsRefusedForItsFirstBadFieldInColumnOrder(header: String, row: String, message: String) {
        let got = problem(header + row + "\n")
        #expect(got == "t.trace:2: " + message, "got \(got ?? "accepted")")
    }

    /// The same for Mooncake: fields in the trace's own order (timestamp, input_length,
    /// output_length, hash_ids). `hash_ids` was read first, so a line whose fields were all bad
    /// (`null`s) was blamed on its last.
    @Test(arguments: [
        ("{\"timestamp\": null, \"input_length\": null, \"output_length\": null, \"hash_ids\": null}",
         "\"timestamp\" must be a number; expected a number of ms from 0 to 10000000000000"),
        ("{\"hash_ids\": [\"a\"], \"output_length\": 1, \"input_length\": 1, \"timestamp\": \"x\"}",
         "\"timestamp\" must be a number; expected a number of ms from 0 to 10000000000000"),
        ("{\"hash_ids\": [-1], \"input_length\": 0}", "missing \"timestamp\""),
        ("{\"timestamp\": 1, \"input_length\": 1.5, \"output_length\": 1, \"hash_ids\": [-1]}",
         "\"input_length\" must be an integer, got 1.5; expected a whole number of tokens from 1 to the model's context window (at most 10000000)"),
        ("{\"timestamp\": 1, \"input_length\": 1, \"hash_ids\": [-1]}", "missing \"output_length\""),
    ])
    func aMooncakeLineIsRefusedForItsFirstBadFieldInTheTracesOrder(line: String, message: String) {
        let got = problem(line + "\n")
        #expect(got == "t.trace:1: " + message, "got \(got ?? "accepted")")
    }

    @Test func mooncakeLinesWithExtraAndNestedFieldsParse() throws {
        let lines = [
            // Nested objects and arrays in unknown fields, before and after the known ones.
            "{\"meta\": {\"a\": [1, {\"b\": null}], \"s\": \"x\\\"y}]\"}, \"timestamp\": 0, \"input_length\": 600, "
                + "\"output_length\": 2, \"hash_ids\": [7, 8], \"tags\": [\"a\", [], {}], \"ok\": true}",
            // Keys in another order, escaped key, unicode, no spaces, CRLF handled by the line reader.
            "{\"hash_ids\":[],\"output_length\":3,\"input\\u005flength\":4,\"timestamp\":1.5e3,\"note\":\"é🙂\\ud83d\\ude42\"}",
            // A member not read, repeated: changes nothing read.
            "{\"timestamp\": 2000, \"x\": 1, \"input_length\": 5, \"output_length\": 1, \"hash_ids\": [], \"x\": -0.5e-3}",
        ]
        let r = try requests(lines.joined(separator: "\r\n") + "\n")
        #expect(r.map(\.promptTokens) == [600, 4, 5])
        #expect(r.map(\.outputTokens) == [2, 3, 1])
        #expect(r.map(\.arrival) == [0, 1.5, 2])
        #expect(r[0].prefixHashes.count == 2 && r[1].prefixHashes.isEmpty && r[2].prefixHashes.isEmpty)
    }

    /// A field the replay reads, given twice: which value is meant is a guess (it used to be the
    /// last, while the HTTP API refuses a repeated key), so the line is refused, with the key and
    /// the column of its second mention, escaped spellings included.
    @Test(arguments: [
        ("{\"timestamp\": 2000, \"input_length\": 1, \"input_length\": 5, \"output_length\": 1}",
         "t.trace:2: \"input_length\" is given twice (again at column 40)"),
        ("{\"timestamp\": 1, \"input_length\": 1, \"output_length\": 1, \"hash_ids\": [], \"hash\\u005fids\": [3]}",
         "t.trace:2: \"hash_ids\" is given twice (again at column 73)"),
    ])
    func aFieldGivenTwiceIsRefused(line: String, message: String) {
        let got = problem("{\"timestamp\": 0, \"input_length\": 1, \"output_length\": 1}\n" + line + "\n")
        #expect(got?.hasPrefix(message) == true, "got \(got ?? "accepted")")
    }

    @Test(arguments: [
        ("{\"timestamp\": 01, \"input_length\": 1, \"output_length\": 1}", "expected ',' or '}' in a JSON object at column 16"),
        ("{\"timestamp\": 1, \"input_length\": 1, \"output_length\": 1,}", "expected a string key in a JSON object at column 56"),
        ("{\"timestamp\": 1, \"input_length\": 1, \"output_length\": 1, \"x\": [1,]}", "expected a JSON value at column 65"),
        ("{\"timestamp\": 1, \"input_length\": 1, \"output_length\": 1, \"x\": 'a'}", "expected a JSON value at column 62"),
        ("{\"timestamp\": 1, \"input_length\": 1, \"output_length\": 1, \"x\": \"\\ud800\"}", "unpaired surrogate in a JSON string"),
        ("{\"timestamp\": 1, \"input_length\": 1, \"output_length\": 1, \"x\": \"\\q\"}", "invalid escape in a JSON string"),
        ("{\"timestamp\": 1, \"input_length\": 1, \"output_length\": 1, \"x\": {\"a\" 1}}", "expected ':' after a key"),
        ("{\"timestamp\": 1, \"input_length\": 1, \"output_length\": 1} {}", "unexpected text after the JSON object"),
        ("{\"timestamp\": .5, \"input_length\": 1, \"output_length\": 1}", "expected a JSON value at column 15"),
        ("{\"timestamp\": 1, \"input_length\": 1, \"output_length\": 1, \"x\": \(String(repeating: "[", count: 600))}",
         "JSON nested deeper than 512 levels"),
    ])
    func invalidJSONIsRefusedWithWhereItBroke(line: String, message: String) {
        let got = problem("{\"timestamp\": 0, \"input_length\": 1, \"output_length\": 1}\n" + line + "\n")
        #expect(got?.hasPrefix("t.trace:2: ") == true)
        #expect(got?.contains(message) == true, "got \(got ?? "accepted")")
    }

    @Test func jsonLineAgreesWithJSONSerializationOnValidity() {
        // Valid and invalid texts the old hand scanner got wrong one way or the other.
        let texts = [
            "{\"a\": {\"b\": [1, 2, {\"c\": \"d\"}]}, \"timestamp\": 1}", "{\"a\": 01}", "{\"a\": 1.}", "{\"a\": -}",
            "{\"a\": tru}", "{\"a\": nulls}", "{\"a\": \"\\u00e9\"}", "{\"a\": \"\u{01}\"}", "{\"a\": [1 2]}", "{}", " { } ",
            "{\"a\": 1e5, \"b\": -0.0, \"c\": 1E+2}", "{\"a\": [[[]]], \"b\": {}}", "[1]", "{\"a\":1}x",
        ]
        // JSONSerialization also reads a trailing comma (`{"a": 1,}`), which RFC 8259 does not allow: we refuse it.
        #expect((try? JSONLine.members(Array("{\"a\": 1,}".utf8)[...], keys: [])) == nil)
        for text in texts {
            let ours = (try? JSONLine.members(Array(text.utf8)[...], keys: [])) != nil
            let foundation = (try? JSONSerialization.jsonObject(with: Data(text.utf8))) is [String: Any]
            #expect(ours == foundation, "\(text): JSONLine \(ours), JSONSerialization \(foundation)")
        }
    }

    @Test(.enabled(if: SharedTraces.available, "shared/traces is absent"))
    func publishedTracesStillDetectAndParseTheSame() throws {
        let azure = try TraceWorkload.check(path: try #require(SharedTraces.path(SharedTraces.azureCode)))
        #expect(azure.format == .azureCSV && azure.requests == 8_819 && azure.failedInSourceRows == 0)
        let mooncake = try TraceWorkload.check(path: try #require(SharedTraces.path(SharedTraces.mooncakeConversation)))
        #expect(mooncake.format == .mooncake && mooncake.requests == 12_031)
    }

    /// A Mooncake row's `"timestamp": 1e-400` was read as 0 ms and `"hash_ids": [0, 1e-400]` as
    /// block id 0 (a shared prefix the row does not have), where `1.5` is refused and the flags and
    /// command language refuse `1e-400`: a nonzero number that underflows to 0 is refused, naming
    /// the column; zero written any way still reads as 0, and members the reader skips are left alone.
    @Test func aMooncakeNumberThatUnderflowsToZeroIsRefused() throws {
        func problem(_ line: String) -> String? {
            do { _ = try TraceRowParser.parseMooncake(Array(line.utf8)[...]); return nil } catch { return error.message }
        }
        let said = problem(#"{"timestamp": 1e-400, "input_length": 600, "output_length": 5, "hash_ids": [0, 1]}"#)
        // The field is named (as every problem inside a kept member's value is).
        #expect(said == "\"timestamp\": the number 1e-400 underflows to 0 at column 15; write 0 if 0 is meant; "
                    + "expected a number of ms from 0 to 10000000000000", "\(said ?? "taken")")
        for line in [#"{"timestamp": 0, "input_length": 600, "output_length": 5, "hash_ids": [0, 1e-400]}"#,
                     #"{"timestamp": 0, "input_length": 0.5e-330, "output_length": 5, "hash_ids": [0]}"#,
                     #"{"timestamp": -1E-999, "input_length": 600, "output_length": 5, "hash_ids": [0]}"#] {
            #expect(problem(line)?.contains("underflows to 0 at column") == true, "\(line): \(problem(line) ?? "taken")")
        }
        for line in [#"{"timestamp": 0e-400, "input_length": 600, "output_length": 5, "hash_ids": [0.0, 1e1]}"#,
                     #"{"timestamp": -0.0, "input_length": 600, "output_length": 5, "hash_ids": [0], "extra": 1e-400}"#,
                     #"{"timestamp": 1e-300, "input_length": 600, "output_length": 5, "hash_ids": [0]}"#] {
            #expect(problem(line) == nil, "\(line): \(problem(line) ?? "")")
        }
    }

    private func temporaryFile(_ text: String) throws -> String {
        try TestScratch.write(text, name: "formats.csv")
    }
}
