import ServingEngine
import Synchronization

/// One admitted completion as the HTTP face follows it: reads the engine's event stream, turns
/// token counts into text, times the request, and makes sure the engine hears about a client that
/// left (exactly once, and never after the request already ended).
///
/// The handler reads the first event (to choose the HTTP status) and the response body reads the
/// rest, so the iterator moves between two tasks — one after the other, never at the same time,
/// which is why the class may be `@unchecked Sendable`. Only `ended` is touched concurrently (by the
/// inbound-close path), and it is atomic.
final class CompletionSession: @unchecked Sendable {
    let header: CompletionHeader
    let promptTokens: Int
    private let backend: any CompletionBackend
    private let metrics: ServingMetrics
    private var events: AsyncStream<CompletionEvent>.Iterator
    private var text: SyntheticText
    private let started: ContinuousClock.Instant
    private var firstTokenAt: ContinuousClock.Instant?
    private(set) var generatedTokens = 0
    private var cachedPromptTokens = 0
    private let requestID: Int
    private let ended = Atomic<Bool>(false)
    /// `stop` strings: the reply ends where the generated text contains one.
    private let stop: [String]
    /// The reply so far (only kept when there are stop strings to look for).
    private var output = ""
    /// A stop string was found: the next step is `.finished("stop")`.
    private var stopped = false
    /// `min_tokens`: as in vLLM, stop strings are not looked for until the reply has this many
    /// tokens, and a cut never leaves it shorter.
    private let minTokens: Int

    init(
        requestID: Int, header: CompletionHeader, promptTokens: Int,
        events: AsyncStream<CompletionEvent>.Iterator,
        started: ContinuousClock.Instant, backend: any CompletionBackend, metrics: ServingMetrics,
        stop: [String] = [], minTokens: Int = 0
    ) {
        self.requestID = requestID
        self.stop = stop
        self.minTokens = max(0, minTokens)
        self.header = header
        self.promptTokens = promptTokens
        self.events = events
        self.started = started
        self.backend = backend
        self.metrics = metrics
        // Seeded by the engine's id: a replayed session says the same words.
        self.text = SyntheticText(seed: requestID)
    }

    /// What the face does with the next engine event.
    enum Step {
        /// New output text (exactly as many tokenizer tokens as the engine produced).
        case text(String)
        case finished(reason: String)
        case failed(APIError)
    }

    /// The next step, skipping bookkeeping events. Throws `CancellationError` when the task was
    /// cancelled (the client left: the caller then calls ``clientLeft()``); a stream that ends
    /// without a terminal element otherwise (the engine broke its contract) reads as a 503 failure.
    func next() async throws -> Step {
        if stopped { return end(finishReason: "stop") }
        while let event = await events.next() {
            switch event {
            case .accepted: continue
            case .prefixCacheHit(let tokens): cachedPromptTokens += tokens
            case .tokens(let count):
                guard count > 0 else { continue }
                if firstTokenAt == nil { firstTokenAt = .now }
                let chunk = text.next(count)
                guard !stop.isEmpty else {
                    generatedTokens += count
                    return .text(chunk)
                }
                return cutAtStop(chunk, count: count)
            case .finished(let reason):
                return end(finishReason: reason == "length" ? "length" : "stop")
            case .failed(let reason, let status):
                _ = end(finishReason: nil)
                return .failed(.engine(reason: reason, status: status))
            }
        }
        // A cancelled wait also ends the iteration: that is the client leaving, not the engine failing.
        try Task.checkCancellation()
        _ = end(finishReason: nil)
        return .failed(.engine(reason: "the engine closed the request without finishing it", status: 503))
    }

    /// The client went away (connection closed or a write failed): tell the engine, count an abort.
    func clientLeft() {
        guard !ended.exchange(true, ordering: .acquiringAndReleasing) else { return }
        backend.cancel(requestID: requestID)
        record(finishReason: nil)
    }

    var usage: Usage {
        Usage(promptTokens: promptTokens, completionTokens: generatedTokens, cachedTokens: cachedPromptTokens)
    }

    /// Appends `chunk` (`count` tokens) to the reply unless it completes a stop string; then the
    /// reply ends just before the stop string (which is not returned, as in vLLM), the engine is
    /// told to stop generating, and the next step is `.finished("stop")`.
    private func cutAtStop(_ chunk: String, count: Int) -> Step {
        let before = output.count
        output += chunk
        // Stop strings count only from `min_tokens` on (vLLM's stop checker returns early before).
        guard generatedTokens + count >= minTokens else {
            generatedTokens += count
            return .text(chunk)
        }
        // Only a match that ends inside the new chunk is new.
        let searchFrom = output.index(output.startIndex, offsetBy: max(0, before - (stop.map(\.count).max() ?? 0)))
        let hits = stop.compactMap { firstCut(at: $0, from: searchFrom) }
        guard let cut = hits.min() else {
            generatedTokens += count
            return .text(chunk)
        }
        let kept = String(output[..<cut])
        let fresh = String(kept.dropFirst(before))
        output = kept
        // Tokens are the tokenizer's count of what the client got (a cut piece counts as one).
        generatedTokens = PromptTokenizer.count(kept)
        stopped = true
        backend.stop(requestID: requestID)
        return .text(fresh)
    }

    /// Where the reply would end for the first match of `stop` at or after `from` that leaves at
    /// least `min_tokens` tokens before it (the search window is one chunk and a stop string long).
    private func firstCut(at stop: String, from: String.Index) -> String.Index? {
        var start = from
        while start < output.endIndex, let hit = output.range(of: stop, range: start..<output.endIndex) {
            if minTokens == 0 || PromptTokenizer.count(String(output[..<hit.lowerBound])) >= minTokens {
                return hit.lowerBound
            }
            start = output.index(after: hit.lowerBound)
        }
        return nil
    }

    private func end(finishReason: String?) -> Step {
        if !ended.exchange(true, ordering: .acquiringAndReleasing) { record(finishReason: finishReason) }
        return .finished(reason: finishReason ?? "abort")
    }

    private func record(finishReason: String?) {
        let now = ContinuousClock.now
        metrics.record(
            RequestOutcome(
                admitted: true, promptTokens: promptTokens, cachedPromptTokens: cachedPromptTokens,
                generatedTokens: generatedTokens, finishReason: finishReason,
                timeToFirstTokenSeconds: firstTokenAt.map { Self.seconds($0 - started) },
                endToEndSeconds: Self.seconds(now - started)))
    }

    static func seconds(_ duration: Duration) -> Double {
        let (seconds, attoseconds) = duration.components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}
