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

    @Test func anOversizedPromptFailsAtOnceWith400() throws {
        let e = try engine()
        let id = e.submitExternal(promptTokens: 50_000_000, maxTokens: 10)
        let last = try #require(e.recentEvents().last)
        #expect(e.takeStreamUpdates() == [StreamUpdate(id: id, kind: .failed(reason: last.message
            .replacingOccurrences(of: "request \(id) failed: ", with: ""), status: 400))])
    }
}
