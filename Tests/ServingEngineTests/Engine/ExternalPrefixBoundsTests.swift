import PodModel
import Testing
import XDSTestSupport
@testable import ServingEngine

/// A library caller of `submitExternal` could pass any prefix block size: 2^62 tokens per block
/// split each key into 2^55 pieces (a trap allocating them, or a loop), and keys covering more
/// tokens than the prompt has were taken. Such a request is refused, 400, with the range said;
/// the engine goes on.
@Suite struct ExternalPrefixBoundsTests {
    func engine() throws -> ServingEngine {
        var config = EngineConfiguration(deployment: TestDeployments.toyPod)
        config.syntheticRate = 0
        return try ServingEngine(configuration: config)
    }

    @Test(arguments: [1 << 62, Int.max, 65_537])
    func aHugeBlockSizeIsRefusedWithItsRange(block: Int) throws {
        let e = try engine()
        let id = e.submitExternal(promptTokens: 600, maxTokens: 10, minTokens: 0, ignoreEOS: false, prefixHashes: [1],
                                  prefixBlockTokens: block)
        let updates = e.takeStreamUpdates().filter { $0.id == id }
        guard case .failed(let reason, let status) = updates.last?.kind else {
            Issue.record("not refused: \(updates)")
            return
        }
        #expect(status == 400)
        #expect(reason == "prefix block size must be within 1…65536 tokens, got \(block)")
        Self.refusedOneAndServesTheNext(e)
    }

    /// One request refused, no block lost, and the engine serves the next request.
    static func refusedOneAndServesTheNext(_ e: ServingEngine, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(e.report().requests.rejected == 1 && e.audit() == [], sourceLocation: sourceLocation)
        let next = e.submitExternal(promptTokens: 300, maxTokens: 20)
        #expect(e.runToCompletion(limit: 120), sourceLocation: sourceLocation)
        #expect(e.takeStreamUpdates().contains { u in u.id == next && { if case .finished = u.kind { true } else { false } }() },
                sourceLocation: sourceLocation)
    }

    @Test func keysCoveringMoreThanThePromptAreRefused() throws {
        let e = try engine()
        let id = e.submitExternal(promptTokens: 100, maxTokens: 10, minTokens: 0, ignoreEOS: false,
                                  prefixHashes: [1, 2, 3], prefixBlockTokens: 64)
        let updates = e.takeStreamUpdates().filter { $0.id == id }
        guard case .failed(let reason, let status) = updates.last?.kind else {
            Issue.record("not refused: \(updates)")
            return
        }
        #expect(status == 400)
        #expect(reason == "3 prefix keys of 64-token blocks cover 192 tokens, more than the prompt's 100")
    }

    /// Keys within the prompt, and no keys at all, are served as before.
    @Test func keysWithinThePromptAreServed() throws {
        let e = try engine()
        let id = e.submitExternal(promptTokens: 600, maxTokens: 10, minTokens: 0, ignoreEOS: false,
                                  prefixHashes: [1, 2, 3, 4, 5, 6, 7, 8, 9], prefixBlockTokens: 64)
        #expect(e.takeStreamUpdates().first { $0.id == id }?.kind == .accepted)
    }
}
