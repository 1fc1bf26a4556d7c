import PodModel
import Testing
@testable import ServingEngine

/// `submitExternal` took a prompt plus `maxTokens` beyond the model's context window: only the
/// HTTP layer checked (it lowers `max_tokens` to what the window leaves and refuses a prompt
/// that fills it), and other faces call the engine directly. The engine refuses such a request
/// itself, 400, with one line naming the window; the engine goes on.
@Suite struct ExternalContextWindowTests {
    /// The toy pod without synthetic traffic, as the prefix-key refusals'.
    func engine() throws -> ServingEngine { try ExternalPrefixBoundsTests().engine() }

    static func refusal(_ e: ServingEngine, _ id: Int) -> (reason: String, status: Int)? {
        guard case .failed(let reason, let status) = e.takeStreamUpdates().last(where: { $0.id == id })?.kind else { return nil }
        return (reason, status)
    }

    /// One token over with a short prompt; a prompt that fills the window; one beyond it; and
    /// counts whose sum does not fit an Int (no trap adding them).
    @Test(arguments: 0..<5)
    func beyondTheWindowIsRefused(index: Int) throws {
        let e = try engine()
        let window = e.model.contextWindow
        let (prompt, maxTokens) = [(1_000, window - 999), (window, 1), (window + 100, 1), (1_000, Int.max), (Int.max, 1)][index]
        let id = e.submitExternal(promptTokens: prompt, maxTokens: maxTokens, minTokens: 0, ignoreEOS: true,
                                  prefixHashes: [], prefixBlockTokens: 0)
        let refused = try #require(Self.refusal(e, id), "not refused: prompt \(prompt) max \(maxTokens)")
        #expect(refused.status == 400)
        #expect(refused.reason == "prompt of \(prompt) tokens plus up to \(maxTokens) output tokens exceeds the model's "
                    + "context window of \(window) tokens", "\(refused.reason)")
        ExternalPrefixBoundsTests.refusedOneAndServesTheNext(e)
    }

    /// A request that fills the window exactly is taken in.
    @Test func exactlyTheWindowIsServed() throws {
        let e = try engine()
        let window = e.model.contextWindow
        let id = e.submitExternal(promptTokens: 1_000, maxTokens: window - 1_000)
        #expect(e.takeStreamUpdates().first { $0.id == id }?.kind == .accepted)
    }
}
