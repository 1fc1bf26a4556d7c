import Foundation
import PodModel
import ServingEngine
import SimKit
import Testing
import XDSTestSupport
@testable import EngineRuntime

/// A console session is replayable: the host's command log (each command with the simulated time
/// it took effect) fed to a fresh batch engine gives the same run, report and event log.
@Suite(.timeLimit(.minutes(10))) struct CommandLogReplayTests {
    static func engine() throws -> ServingEngine {
        var config = EngineConfiguration(deployment: TestDeployments.faultPod, seed: 11, syntheticRate: 20)
        config.expertSkew = false
        config.eplb = .perfect
        config.faults.componentRestartSeconds = 3
        config.eventCapacity = 100_000
        var synthetic = SyntheticWorkload.Configuration(ratePerSecond: 20)
        synthetic.maxRequests = 120
        synthetic.maxOutputTokens = 128
        return try ServingEngine(configuration: config, workload: SyntheticWorkload(seed: 11, configuration: synthetic))
    }

    /// Applies a logged line to a batch engine as the host did: operator commands through
    /// `apply`, HTTP submissions and cancellations through the external-request calls. The
    /// pacer's commands (speed, pause, resume) never reach the core in the host, so not here either.
    static func replay(_ line: String, into engine: ServingEngine) throws {
        let words = line.split(separator: " ").map(String.init)
        if words.first == "submit" {
            let parsed = try EngineHost.parseSubmitLine(line)
            let request = try #require(parsed, "\(line)")
            _ = engine.submitExternal(request)
            return
        }
        if words.first == "cancel" {
            engine.cancelExternal(id: try #require(words.count == 3 ? Int(words[2]) : nil, "\(line)"))
            return
        }
        if words.first == "stop", words.count == 3, words[1] == "request" {
            engine.stopExternal(id: try #require(Int(words[2]), "\(line)"))
            return
        }
        let command = try OperatorCommand.parse(line).get()
        switch command {
        case .speed, .speedMax, .pause, .resume: return
        default:
            let reply = engine.apply(command)
            #expect(reply.accepted, "replayed '\(line)' refused: \(reply.message)")
        }
    }

    @Test func sessionLogReplayedThroughABatchEngineGivesTheSameReport() async throws {
        let live = try Self.engine()
        let host = EngineHost(core: live, speed: 10, publishInterval: 0.05, capabilities: Set(EngineCapability.allCases))
        host.start()
        func send(_ line: String) {
            let reply = host.send(commandLine: line)
            #expect(reply.accepted, "\(line): \(reply.message)")
        }
        func pause(_ seconds: Double) async throws { try await Task.sleep(for: .milliseconds(Int(seconds * 1_000))) }

        // A session: faults, a drain, a rate change, an HTTP request cancelled mid-way, heals.
        try await pause(0.15)
        send("fault die 40")
        let stream = host.submit(CompletionRequest(promptTokens: 700, maxTokens: 400))
        var iterator = stream.makeAsyncIterator()
        var externalID: Int?
        if case .accepted(let id) = await iterator.next() { externalID = id }
        try await pause(0.1)
        send("rate 35")
        send("fault straggler die 60 slowdown 2")
        try await pause(0.15)
        send("drain node 1")
        host.cancel(requestID: try #require(externalID))
        _ = host.submit(CompletionRequest(promptTokens: 300, maxTokens: 50))
        // Benchmark semantics and prompt prefix keys travel through the log too.
        _ = host.submit(CompletionRequest(promptTokens: 600, maxTokens: 40, ignoreEOS: true,
                                          prefixHashes: [1, 2, 3, 4, 5, 6, 7, 8], prefixBlockTokens: 64))
        _ = host.submit(CompletionRequest(promptTokens: 600, maxTokens: 90, minTokens: 30,
                                          prefixHashes: [1, 2, 3, 4, 5, 6, 7, 8], prefixBlockTokens: 64))
        try await pause(0.2)
        send("heal all")
        send("undrain node 1")
        send("speed max")
        #expect(eventually { host.latestSnapshot().simTime > 30 })
        send("pause")
        // The engine is read below, on this thread: its own thread must have exited (a stop that
        // timed out on a loaded machine left it stepping the engine while these reads ran).
        try #require(host.stop(timeout: 60), "the engine thread did not stop")

        let log = host.commandLog
        #expect(log.map(\.line).filter { !$0.hasPrefix("submit") } == [
            "fault die 40", "rate 35", "fault straggler die 60 slowdown 2", "drain node 1", "cancel request \(try #require(externalID))",
            "heal all", "undrain node 1", "speed max", "pause",
        ])
        #expect(log.filter { $0.line.hasPrefix("submit") }.count == 4)
        #expect(log.contains { $0.line == "submit prompt 600 max_tokens 40 ignore_eos 1 prefix 64 1,2,3,4,5,6,7,8" })
        #expect(log.contains { $0.line == "submit prompt 600 max_tokens 90 min_tokens 30 prefix 64 1,2,3,4,5,6,7,8" })
        #expect(zip(log, log.dropFirst()).allSatisfy { $0.simTime <= $1.simTime }, "the log is in time order")

        // The batch replay: each command at its logged time, then on to where the session stopped.
        let end = live.now
        let replayed = try Self.engine()
        for entry in log {
            replayed.run(until: entry.simTime)
            try Self.replay(entry.line, into: replayed)
        }
        replayed.run(until: end)

        let a = live.report(), b = replayed.report()
        #expect(a.faults.injected == 2 && a.commands >= 5, "the session did something: \(a.faults) \(a.commands)")
        #expect(a.requests.arrived > 100, "\(a.requests)")
        #expect(a == b)
        #expect(live.recentEvents() == replayed.recentEvents())
        #expect(live.inFlightCensus() == replayed.inFlightCensus())
        #expect(live.inFlightProblems() == [] && replayed.inFlightProblems() == [])
    }
}

@Suite struct SubmitLineTests {
    @Test func submitLinesRoundTrip() throws {
        let requests = [
            CompletionRequest(promptTokens: 7, maxTokens: 9),
            CompletionRequest(promptTokens: 700, maxTokens: 1_500, minTokens: 3, ignoreEOS: true,
                              prefixHashes: [0, .max, 0xabc], prefixBlockTokens: 64),
        ]
        for request in requests {
            let parsed = try EngineHost.parseSubmitLine(EngineHost.submitLine(request))
            #expect(parsed == request)
        }
        #expect(EngineHost.submitLine(requests[0]) == "submit prompt 7 max_tokens 9", "old lines unchanged")
        for bad in ["submit prompt 7", "submit prompt 7 max_tokens x", "submit prompt 7 max_tokens 9 min_tokens",
                    "submit prompt 7 max_tokens 9 prefix 64 zz", "submit prompt 7 max_tokens 9 bogus 1"] {
            let parsed = try EngineHost.parseSubmitLine(bad)
            #expect(parsed == nil, "\(bad)")
        }
    }
}
