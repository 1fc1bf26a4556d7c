import Foundation
import Testing
import XDSTestSupport

@testable import ServingEngine

/// Writes `text` to a fresh temporary file and returns its path.
private func temporaryTrace(_ text: String, name: String = "trace") throws -> String {
    let url = FileManager.default.temporaryDirectory
        .appendingPathComponent("xds-\(name)-\(UUID().uuidString).txt")
    try text.write(to: url, atomically: true, encoding: .utf8)
    return url.path
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
        ("{\"timestamp\": 1, \"input_length\": 3, \"output_length\": 2, \"hash_ids\": [1,", "expected a JSON number"),
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
}
