import PodModel
import Testing
import XDSTestSupport
@testable import ServingEngine

/// The step observer's output tokens (what `vllm:generation_tokens_total` adds up) equal the
/// tokens requests produced: a request's last step yields only what is left of its output, not
/// the `1 + acceptance` average every step yields.
@Suite struct GenerationCreditTests {
    /// Adds up what the observers say, on the engine's thread.
    final class Tally {
        var credited = 0.0
        var produced = 0
        var finished = 0
    }

    func engine(rate: Double) throws -> (ServingEngine, Tally) {
        var config = EngineConfiguration(deployment: TestDeployments.toyPod)
        config.syntheticRate = rate
        let engine = try ServingEngine(configuration: config)
        let tally = Tally()
        engine.observers.step = { tally.credited += $0.outputTokens }
        engine.observers.requestFinished = { request in
            tally.produced += request.outputTokens
            tally.finished += 1
        }
        return (engine, tally)
    }

    /// The measured case: 20 requests of `max_tokens` 1 credited 34 tokens (1.7 per step with MTP),
    /// 20 of 100 credited 2,006.
    @Test(arguments: [1, 7, 100])
    func fixedLengthRequestsCreditExactlyTheirTokens(maxTokens: Int) throws {
        let (engine, tally) = try engine(rate: 0)
        #expect(engine.tokensPerStep > 1, "MTP on: a step yields more than one token on average")
        for _ in 0..<20 {
            _ = engine.submitExternal(promptTokens: 200, maxTokens: maxTokens, minTokens: maxTokens, ignoreEOS: true,
                                      prefixHashes: [], prefixBlockTokens: 0)
        }
        #expect(engine.runToCompletion(limit: 600))
        #expect(tally.finished == 20 && tally.produced == 20 * maxTokens)
        #expect(abs(tally.credited - Double(20 * maxTokens)) < 1e-6, "credited \(tally.credited)")
    }

    /// Synthetic traffic of every length, then no more arrivals: once it drains, the steps credited
    /// what the requests that left produced.
    @Test func drainedTrafficCreditsWhatItProduced() throws {
        let (engine, tally) = try engine(rate: 3)
        engine.run(until: 60)
        #expect(engine.apply(.rate(requestsPerSecond: 0)).accepted)
        #expect(engine.runToCompletion(limit: 2_000))
        #expect(tally.finished > 50)
        #expect(abs(tally.credited - Double(tally.produced)) < 1e-6 * Double(tally.produced),
                "credited \(tally.credited), produced \(tally.produced)")
    }

    /// Requests that fail mid-decode (a restart of the world) decoded tokens first: the report's
    /// `tokens.generated` counts them, and it is the sum of what every request that left says it
    /// produced (it was the completed outputs alone, leaving out the failed ones' tokens).
    @Test func failedRequestsDecodedTokensAreGenerated() throws {
        let engine = try FaultTests.engine(rate: 20, limit: 200) { $0.recoveryPolicy = "restart-world" }
        var produced = (completed: 0, failed: 0)
        engine.observers.requestFinished = { request in
            if request.stage == .completed { produced.completed += request.outputTokens }
            if request.stage == .failed { produced.failed += request.outputTokens }
        }
        engine.run(until: 6)
        #expect(engine.apply(.faultGlitch).accepted)
        #expect(engine.runToCompletion(limit: 3_600))
        #expect(engine.report().requests.failed > 0 && produced.failed > 0, "the restart failed requests mid-decode")
        #expect(engine.report().tokens.generated == produced.completed + produced.failed, "\(produced)")
    }

    /// Replies cut short mid-step (a stop string matched, the client left) had that step credited
    /// the average when it began; they yield only what is left, and the difference is taken off
    /// the next steps, so the counter still ends at what was produced.
    @Test func repliesCutShortCreditWhatTheyProduced() throws {
        let (engine, tally) = try engine(rate: 0)
        let ids = (0..<12).map { _ in
            engine.submitExternal(promptTokens: 200, maxTokens: 300, minTokens: 300, ignoreEOS: true,
                                  prefixHashes: [], prefixBlockTokens: 0)
        }
        engine.run(until: 5)
        #expect(engine.instances.contains { $0.stepping && $0.hasDecode }, "cut mid-step")
        for id in ids[0..<4] { engine.stopExternal(id: id) }
        for id in ids[4..<8] { engine.cancelExternal(id: id) }
        #expect(engine.runToCompletion(limit: 600))
        #expect(tally.finished == 12 && tally.produced < 12 * 300)
        #expect(abs(tally.credited - Double(tally.produced)) < 1e-6, "credited \(tally.credited), produced \(tally.produced)")
    }
}
