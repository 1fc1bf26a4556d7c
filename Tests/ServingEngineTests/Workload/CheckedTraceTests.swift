import Foundation
import PodModel
import Testing
import XDSTestSupport

@testable import ServingEngine

/// A run replays the requests its check parsed (one parse): the same requests as streaming the
/// file, and the same engine report.
@Suite(.timeLimit(.minutes(10))) struct CheckedTraceTests {
    @Test(.enabled(if: SharedTraces.available, "shared/traces is absent"))
    func checkedRequestsAreTheStreamedOnes() throws {
        for name in [SharedTraces.azureCode, SharedTraces.mooncakeConversation] {
            let path = try #require(SharedTraces.path(name))
            let (summary, checked) = try TraceWorkload.checkKeepingRequests(path: path, maxContextTokens: 4_096,
                                                                            clipToContext: true)
            let trace = try #require(checked)
            #expect(trace.requests.count == summary.requests)
            var streamed = try TraceWorkload(path: path, maxContextTokens: 4_096, clipToContext: true)
            var replay = CheckedTraceWorkload(trace)
            var count = 0
            while let a = streamed.next() {
                #expect(replay.next() == a)
                count += 1
            }
            #expect(replay.next() == nil && count == summary.requests)
        }
    }

    /// The check applies `--trace-speedup`: a row the slow-down pushes beyond the 10¹⁰ s span is
    /// refused before the run, naming its line. The run used to stop reading there and end with
    /// exit 0, the rest of the trace silently not replayed.
    @Test func theCheckRefusesARowTheSpeedupPushesBeyondTheSpan() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("xds-span-\(getpid()).jsonl").path
        let row = { (ms: Int) in #"{"timestamp": \#(ms), "input_length": 1, "output_length": 1, "hash_ids": []}"# }
        try (row(0) + "\n" + row(1_000_000_000_000) + "\n").write(toFile: path, atomically: false, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        // 10⁹ s at speedup 1 (kept for replay) and at 0.5; 10¹² s at 0.001 is beyond the span.
        #expect(try TraceWorkload.checkKeepingRequests(path: path).trace?.requests.count == 2)
        let slowed = try TraceWorkload.checkKeepingRequests(path: path, speedup: 0.5)
        #expect(slowed.summary.requests == 2 && slowed.trace == nil)
        do {
            _ = try TraceWorkload.checkKeepingRequests(path: path, speedup: 0.001)
            Issue.record("a row beyond the span after the speedup passed the check")
        } catch {
            #expect("\(error)".contains(":2: timestamp is") && "\(error)".contains("(after the speedup)"), "\(error)")
        }
    }

    /// A trace that turns bad between its check and the run (a sped-up replay reads the file
    /// again) ends the replay with the problem stated: the engine logs an error event, exposes
    /// `file:line: problem` and the report says the workload stopped. It used to end silently.
    @Test func aTraceChangedAfterItsCheckEndsTheReplayWithItsLine() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("xds-changed-\(getpid()).jsonl").path
        let row = { (ms: Int) in #"{"timestamp": \#(ms), "input_length": 8, "output_length": 2, "hash_ids": []}"# }
        try [row(0), row(1_000), row(2_000)].joined(separator: "\n").write(toFile: path, atomically: false, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let checked = try TraceWorkload.checkKeepingRequests(path: path, speedup: 2)
        #expect(checked.summary.requests == 3 && checked.trace == nil)
        // After the check, row 2 goes back in time.
        try [row(0), row(3_000), row(2_000)].joined(separator: "\n").write(toFile: path, atomically: false, encoding: .utf8)
        var config = EngineConfiguration(deployment: try Deployment.inlineColocated("colocated:1:llama-2-7b:nvidia-a100:tp1"),
                                         workload: .trace(path: path))
        config.traceSpeedup = 2
        let engine = try ServingEngine(configuration: config)
        #expect(engine.runToCompletion(limit: 600))
        let stop = try #require(engine.workloadError)
        #expect(stop.description.hasPrefix("\(path):3: timestamp goes backwards"), "\(stop)")
        let report = engine.report()
        #expect(report.requests.arrived == 2 && report.workloadStopped == stop.description)
        let logged = engine.recentEvents().filter { $0.severity == .error }
        #expect(logged.map(\.message) == ["trace replay stopped: \(stop)"])
        // A trace read to its end reports nothing.
        try [row(0), row(1_000)].joined(separator: "\n").write(toFile: path, atomically: false, encoding: .utf8)
        let clean = try ServingEngine(configuration: config)
        #expect(clean.runToCompletion(limit: 600) && clean.workloadError == nil && clean.report().workloadStopped == nil)
    }

    /// A run told to stop when its work is done stops at its last event: a one-row trace ends when
    /// its request does (0.18 s), not at the end of the slice asked for, and its throughput is
    /// the tokens over that time.
    @Test func aRunThatStopsWhenDoneEndsWithItsLastRequest() throws {
        let path = NSTemporaryDirectory() + "xds-one-row-\(getpid()).jsonl"
        try #"{"timestamp": 0, "input_length": 100, "output_length": 10, "hash_ids": [1]}"#
            .write(toFile: path, atomically: false, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let config = EngineConfiguration(deployment: try Deployment.inlineColocated("colocated:1:llama-2-7b:nvidia-a100:tp1"),
                                         workload: .trace(path: path))
        let engine = try ServingEngine(configuration: config)
        engine.run(until: 5, stopWhenDone: true)
        let report = engine.report()
        #expect(report.requests.completed == 1 && !engine.hasWork)
        #expect(report.simSeconds > 0 && report.simSeconds < 1, "\(report.simSeconds)")
        #expect(abs(report.throughput.outputTokensPerS - 10 / report.simSeconds) < 1e-9)
        // Without the stop the clock runs to the end of the slice.
        let sliced = try ServingEngine(configuration: config)
        sliced.run(until: 5)
        #expect(sliced.report().simSeconds == 5)
    }

    @Test(.enabled(if: SharedTraces.available, "shared/traces is absent"))
    func aRunFromTheCheckedTraceEqualsOneFromTheFile() throws {
        let path = try #require(SharedTraces.path(SharedTraces.azureCode))
        var config = EngineConfiguration(deployment: try Deployment.inlineColocated("colocated:1:llama-2-7b:nvidia-a100:tp1"),
                                         workload: .trace(path: path))
        config.clipTracePromptsToContext = true
        let fromFile = try ServingEngine(configuration: config)
        config.checkedTrace = try TraceWorkload.checkKeepingRequests(
            path: path, maxContextTokens: config.deployment.modelSpec().contextWindow, clipToContext: true).trace
        #expect(config.checkedTrace != nil)
        let fromCheck = try ServingEngine(configuration: config)
        #expect(fromCheck.workload is CheckedTraceWorkload)
        fromFile.run(until: 120)
        fromCheck.run(until: 120)
        #expect(fromFile.report() == fromCheck.report())
        // Other options than the check's: the file is read again.
        config.clipTracePromptsToContext = false
        #expect(try ServingEngine(configuration: config).workload is TraceWorkload)
    }
}
