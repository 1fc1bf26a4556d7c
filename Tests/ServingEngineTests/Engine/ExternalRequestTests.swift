import PodModel
import Testing
import XDSTestSupport
@testable import ServingEngine

/// Requests from outside the workload (HTTP): streamed progress, the max_tokens cap, cancellation.
@Suite struct ExternalRequestTests {
    func engine() throws -> ServingEngine {
        var config = EngineConfiguration(deployment: TestDeployments.toyPod)
        config.syntheticRate = 0
        return try ServingEngine(configuration: config)
    }

    @Test func progressIsStreamedAndAddsUpToTheOutput() throws {
        let e = try engine()
        let id = e.submitExternal(promptTokens: 300, maxTokens: 40)
        #expect(e.runToCompletion(limit: 120))
        let updates = e.takeStreamUpdates().filter { $0.id == id }
        #expect(updates.first?.kind == .accepted)
        let tokens = updates.compactMap { if case .tokens(let n) = $0.kind { n } else { nil } }.reduce(0, +)
        #expect(tokens >= 1 && tokens <= 40)
        guard case .finished(let capped) = updates.last?.kind else { Issue.record("no finish: \(updates)"); return }
        #expect(capped == (tokens == 40))
        #expect(updates.filter { if case .tokens = $0.kind { true } else { false } }.count > 1, "tokens come step by step")
        #expect(e.report().requests.completed == 1 && e.audit() == [])
    }

    @Test func cancellingFreesTheRequestWithAReason() throws {
        let e = try engine()
        let id = e.submitExternal(promptTokens: 2_000, maxTokens: 4_000)
        e.run(until: 0.5)
        e.cancelExternal(id: id)
        _ = e.takeStreamUpdates()
        #expect(e.runToCompletion(limit: 120))
        let report = e.report()
        #expect(report.requests.failed == 1 && report.requests.completed == 0 && report.requests.inFlight == 0)
        #expect(e.recentEvents().contains { $0.kind == .requestCancelled && $0.requestId == id })
        #expect(e.audit() == [])
        // Nothing more is streamed for a cancelled request, and cancelling again is a no-op.
        #expect(!e.takeStreamUpdates().contains { $0.id == id })
        e.cancelExternal(id: id)
        #expect(e.report() == report)
    }

    /// Each decode step's token report lists the watched requests in the order their streams
    /// opened (their ids), not in the open streams' dictionary order, which Swift seeds per
    /// process: two runs of the same commands streamed the same tokens in different orders (and
    /// an in-process comparison of two engines cannot see it: both share the process's seed).
    /// Twelve streams on the toy pod's one decode TE, the engine advanced 1 ms at a time (a
    /// decode step is far longer), so each slice holds at most one step's report.
    @Test func eachStepReportsTheWatchedRequestsInTheOrderTheirStreamsOpened() throws {
        let e = try engine()
        let ids = (0..<12).map { _ in
            e.submitExternal(promptTokens: 200, maxTokens: 40, minTokens: 0, ignoreEOS: true, prefixHashes: [],
                             prefixBlockTokens: 0)
        }
        #expect(ids == ids.sorted())
        var reports = 0
        var time = 0.0
        while time < 120, e.report().requests.completed < ids.count {
            time += 0.001
            e.run(until: time)
            let updates = e.takeStreamUpdates()
            // A finishing request's last tokens come with its finish, not from the step's report.
            let finished = Set(updates.compactMap { u -> Int? in if case .finished = u.kind { u.id } else { nil } })
            let step = updates.compactMap { u -> Int? in
                if case .tokens = u.kind, !finished.contains(u.id) { u.id } else { nil }
            }
            guard step.count > 1 else { continue }
            reports += 1
            #expect(step == step.sorted(), "a step's report at \(time) s (ids from the first): \(step.map { $0 - ids[0] })")
        }
        #expect(e.report().requests.completed == ids.count)
        #expect(reports > 10, "the requests decoded together over several steps")
    }

    /// Refused at arrival: beyond the model's context window, before any KV is sought for it.
    @Test func anOversizedPromptFailsAtOnceWith400() throws {
        let e = try engine()
        let id = e.submitExternal(promptTokens: 50_000_000, maxTokens: 10)
        let last = try #require(e.recentEvents().last)
        #expect(e.takeStreamUpdates() == [StreamUpdate(id: id, kind: .failed(reason: last.message
            .replacingOccurrences(of: "request \(id) rejected: ", with: ""), status: 400))])
    }
}
