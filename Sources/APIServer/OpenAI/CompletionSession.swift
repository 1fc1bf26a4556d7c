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
    private var stopMatcher: StopStringMatcher
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
        self.stopMatcher = StopStringMatcher(stop)
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
                guard !stopMatcher.isEmpty else {
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
        let before = output.utf8.count
        output += chunk
        // Stop strings count only from `min_tokens` on (vLLM's stop checker returns early before),
        // and a cut never leaves the reply shorter than that. The matcher still reads every chunk,
        // so a stop string begun before `min_tokens` is found where it ends.
        let searching = generatedTokens + count >= minTokens
        let cut = stopMatcher.feed(chunk) { start in
            searching && (minTokens == 0 || PromptTokenizer.count(prefix(utf8Count: start)) >= minTokens)
        }
        guard let cut else {
            generatedTokens += count
            return .text(chunk)
        }
        let kept = prefix(utf8Count: cut)
        let fresh = String(kept.utf8.dropFirst(before))!
        output = kept
        // Tokens are the tokenizer's count of what the client got (a cut piece counts as one).
        generatedTokens = PromptTokenizer.count(kept)
        stopped = true
        backend.stop(requestID: requestID)
        return .text(fresh)
    }

    /// The reply's first `count` UTF-8 bytes (a stop string's start: a code point boundary).
    private func prefix(utf8Count count: Int) -> String {
        String(output.utf8.prefix(count))!
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
