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
    /// UTF-8 bytes of `output` handed out so far. With stop strings, the last `longest − 1`
    /// bytes are held back until the reply goes on past them or ends, as vLLM's detokenizer holds
    /// back its stop buffer: a stop string that begins in one chunk and ends in the next must not
    /// have reached the client already.
    private var handedOutBytes = 0
    /// UTF-8 bytes held back from the end of the reply (the longest stop string's, less one;
    /// none when the stop string stays in the reply).
    private let heldBackBytes: Int
    /// vLLM's `include_stop_str_in_output`: a reply cut by a stop string ends with it.
    private let keepsStopString: Bool
    /// The engine finished while text was held back: handed out first, then this finish.
    private var pendingFinish: String?
    /// `min_tokens`: as in vLLM, stop strings are not looked for until the reply has this many
    /// tokens, and a cut never leaves it shorter.
    private let minTokens: Int

    init(
        requestID: Int, header: CompletionHeader, promptTokens: Int,
        events: AsyncStream<CompletionEvent>.Iterator,
        started: ContinuousClock.Instant, backend: any CompletionBackend, metrics: ServingMetrics,
        stop: [String] = [], keepsStopString: Bool = false, minTokens: Int = 0
    ) {
        self.requestID = requestID
        self.stopMatcher = StopStringMatcher(stop)
        // As vLLM: nothing is held back when the stop string is sent anyway.
        self.heldBackBytes = keepsStopString ? 0 : max(0, stopMatcher.longestBytes - 1)
        self.keepsStopString = keepsStopString
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

    /// A session dropped before it ended (its response body never ran, as when the connection
    /// closed before the head went out) is the client leaving: the engine must not generate on
    /// for nobody, and the request counts (the face counts its HTTP requests' successes).
    deinit {
        clientLeft()
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
        if let reason = pendingFinish { return end(finishReason: reason) }
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
                let finishReason = reason == "length" ? "length" : "stop"
                // What was held back for a stop string that did not come is the reply's end.
                let rest = handOut(upTo: output.utf8.count)
                guard rest.isEmpty else {
                    pendingFinish = finishReason
                    return .text(rest)
                }
                return end(finishReason: finishReason)
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
    /// reply ends just before the stop string (as in vLLM, which returns it only with
    /// `include_stop_str_in_output`, and then ends the reply just after it), the engine is told
    /// to stop generating, and the next step is `.finished("stop")`.
    private func cutAtStop(_ chunk: String, count: Int) -> Step {
        output += chunk
        // Stop strings count only from `min_tokens` on (vLLM's stop checker returns early before),
        // and a cut never leaves the reply shorter than that. The matcher still reads every chunk,
        // so a stop string begun before `min_tokens` is found where it ends.
        let searching = generatedTokens + count >= minTokens
        let match = stopMatcher.feed(chunk) { start in
            searching && (minTokens == 0 || PromptTokenizer.count(prefix(utf8Count: start)) >= minTokens)
        }
        guard let match else {
            generatedTokens += count
            return .text(handOut(upTo: output.utf8.count - heldBackBytes))
        }
        // The match ends in this chunk, so it starts within the bytes held back: none of it was
        // handed out (kept, it ends past everything handed out).
        let cut = keepsStopString ? match.end : match.start
        let fresh = handOut(upTo: cut)
        output = prefix(utf8Count: cut)
        // Tokens are the tokenizer's count of what the client got (a cut piece counts as one).
        generatedTokens = PromptTokenizer.count(output)
        stopped = true
        backend.stop(requestID: requestID)
        return .text(fresh)
    }

    /// The reply's bytes from what was handed out so far up to `end` (moved back to a code point
    /// boundary), now handed out; "" when there are none.
    private func handOut(upTo end: Int) -> String {
        let bytes = output.utf8
        var end = min(end, bytes.count)
        // Not inside a code point: UTF-8 continuation bytes are 0b10xxxxxx.
        while end > handedOutBytes, end < bytes.count, bytes[bytes.index(bytes.startIndex, offsetBy: end)] & 0xC0 == 0x80 { end -= 1 }
        guard end > handedOutBytes else { return "" }
        let piece = String(bytes[bytes.index(bytes.startIndex, offsetBy: handedOutBytes)..<bytes.index(bytes.startIndex, offsetBy: end)])!
        handedOutBytes = end
        return piece
    }

    /// The reply's first `count` UTF-8 bytes (a stop string's start or end: a code point boundary).
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
