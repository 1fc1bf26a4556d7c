import ServingEngine
import APIServer
import Synchronization

/// A ``CompletionBackend`` without an engine: tokens arrive on a timer, so HTTP tests and demos
/// see real streaming without simulating a pod.
///
/// Each request gets `outputTokens` tokens (or `max_tokens`, whichever is smaller: then the
/// finish reason is `"length"`), `tokensPerBatch` at a time, one batch every `tokenInterval`.
/// Set ``mode`` to make it refuse (429), be unavailable (503), or fail midway; it records every
/// submission and cancellation for assertions.
///
/// ```swift
/// let backend = FakeCompletionBackend(outputTokens: 20, tokenInterval: .milliseconds(2))
/// backend.mode = .reject(reason: "queue full")       // next submissions get 429
/// #expect(backend.cancelledIDs == [3])
/// ```
public final class FakeCompletionBackend: CompletionBackend {
    public enum Mode: Sendable, Equatable {
        case serve
        /// Refuse at admission with 429.
        case reject(reason: String)
        /// Refuse at admission with 503.
        case unavailable(reason: String)
        /// Refuse at admission with any status (e.g. 400: a prompt no instance can ever hold).
        case refuse(status: Int, reason: String)
        /// Admit, produce this many tokens, then fail with 503 (a fault mid-decode).
        case failAfter(tokens: Int, reason: String)
    }

    public let modelName: String
    public let outputTokens: Int
    public let tokensPerBatch: Int
    public let tokenInterval: Duration
    /// Share of each prompt reported as a prefix-cache hit.
    public let prefixHitShare: Double
    /// When > 0, every `rejectEvery`-th submission is refused with 429 (load tests mix in errors).
    public let rejectEvery: Int

    private struct State {
        var mode: Mode = .serve
        var nextID = 1
        var submitted: [CompletionRequest] = []
        var cancelled: [Int] = []
        var producers: [Int: Task<Void, Never>] = [:]
        var finished = 0
    }
    private let state = Mutex(State())

    public init(
        modelName: String = "deepseek-r1", outputTokens: Int = 16, tokensPerBatch: Int = 1,
        tokenInterval: Duration = .milliseconds(2), prefixHitShare: Double = 0.25, rejectEvery: Int = 0
    ) {
        self.rejectEvery = rejectEvery
        self.modelName = modelName
        self.outputTokens = outputTokens
        self.tokensPerBatch = max(1, tokensPerBatch)
        self.tokenInterval = tokenInterval
        self.prefixHitShare = prefixHitShare
    }

    public var mode: Mode {
        get { state.withLock { $0.mode } }
        set { state.withLock { $0.mode = newValue } }
    }

    /// Every request submitted so far, admitted or not, in order.
    public var submitted: [CompletionRequest] { state.withLock { $0.submitted } }
    /// Request ids the face cancelled (the client went away), in order.
    public var cancelledIDs: [Int] { state.withLock { $0.cancelled } }
    /// Requests whose stream ended with a terminal element (finished or failed after admission).
    public var finishedCount: Int { state.withLock { $0.finished } }
    /// Admitted requests still producing tokens.
    public var inFlightCount: Int { state.withLock { $0.producers.count } }

    public func submit(_ request: CompletionRequest) -> AsyncStream<CompletionEvent> {
        let (stream, continuation) = AsyncStream<CompletionEvent>.makeStream()
        let (mode, id) = state.withLock { state -> (Mode, Int) in
            state.submitted.append(request)
            defer { state.nextID += 1 }
            if rejectEvery > 0, state.submitted.count % rejectEvery == 0 {
                return (.reject(reason: "rejected: every \(rejectEvery)th request is"), state.nextID)
            }
            return (state.mode, state.nextID)
        }
        switch mode {
        case .reject(let reason):
            continuation.yield(.failed(reason: reason, status: 429))
            continuation.finish()
            return stream
        case .unavailable(let reason):
            continuation.yield(.failed(reason: reason, status: 503))
            continuation.finish()
            return stream
        case .refuse(let status, let reason):
            continuation.yield(.failed(reason: reason, status: status))
            continuation.finish()
            return stream
        case .serve, .failAfter:
            break
        }
        continuation.yield(.accepted(requestID: id))
        let failure: (tokens: Int, reason: String)? =
            if case .failAfter(let n, let r) = mode { (n, r) } else { nil }
        let total = min(outputTokens, request.maxTokens)
        let reason = outputTokens >= request.maxTokens ? "length" : "stop"
        let cached = Int(Double(request.promptTokens) * prefixHitShare)
        // Registered before it can run, so a quick cancel always finds it.
        state.withLock { state in
            state.producers[id] = Task { [tokenInterval, tokensPerBatch] in
                if cached > 0 { continuation.yield(.prefixCacheHit(tokens: cached)) }
                var produced = 0
                while produced < total {
                    do { try await Task.sleep(for: tokenInterval) } catch { break }
                    let batch = min(tokensPerBatch, total - produced, (failure?.tokens ?? .max) - produced)
                    if batch <= 0 { break }
                    produced += batch
                    continuation.yield(.tokens(batch))
                }
                if Task.isCancelled {
                    continuation.finish()
                    return
                }
                if let failure, produced >= failure.tokens {
                    continuation.yield(.failed(reason: failure.reason, status: 503))
                } else {
                    continuation.yield(.finished(reason: reason))
                }
                continuation.finish()
                self.state.withLock { state in
                    state.producers[id] = nil
                    state.finished += 1
                }
            }
        }
        return stream
    }

    public func cancel(requestID: Int) {
        let producer = state.withLock { state -> Task<Void, Never>? in
            guard let producer = state.producers.removeValue(forKey: requestID) else { return nil }
            state.cancelled.append(requestID)
            return producer
        }
        producer?.cancel()
    }
}
