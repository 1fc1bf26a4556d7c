/// What the HTTP face needs from the engine host to serve completions.
///
/// The face never reaches into the engine (architecture.md principle 2): it submits a request as a
/// command and reads the request's own event stream. The engine host implements this next to
/// ``ServingEngine/EngineLink``; tests and demos use `FakeCompletionBackend` from XDSTestSupport.
///
/// A stream is one of
/// - `.failed(reason:status:)` alone — rejected before admission (429 overloaded, 503 cannot serve
///   now, 400 can never serve, e.g. a prompt larger than any instance's KV capacity);
/// - `.accepted(requestID:)`, then optionally one `.prefixCacheHit(tokens:)`, then any number of
///   `.tokens(count)` batches as the simulated engine produces them, then exactly one terminal
///   element: `.finished(reason:)` (`"stop"` or `"length"`) or `.failed(reason:status:)`
///   (e.g. a fault killed the request mid-decode).
///
/// ```swift
/// for await event in backend.submit(CompletionRequest(promptTokens: 42, maxTokens: 256)) {
///     switch event {
///     case .accepted(let id): engineRequestID = id
///     case .tokens(let n): emit(n)
///     case .finished(let reason): close(reason)
///     case .failed(let reason, let status): fail(status, reason)
///     case .prefixCacheHit: break
///     }
/// }
/// ```
public protocol CompletionBackend: AnyObject, Sendable {
    /// The served model's name as clients address it, e.g. `"deepseek-r1"`.
    var modelName: String { get }
    /// Submits one request. The backend assigns the request id (the engine numbers all requests,
    /// HTTP or synthetic, in one sequence) and reports it in the first element, `.accepted`, as
    /// soon as the engine has taken the request in (it arrived and has an id; it need not be
    /// running yet). The face waits for that first element to choose the HTTP status, so it must
    /// come promptly — within one engine loop turn, also while the engine is paused.
    func submit(_ request: CompletionRequest) -> AsyncStream<CompletionEvent>
    /// The client went away: the engine frees the request's KV blocks and counts it as "cancelled".
    /// Cancelling a finished or unknown request is a no-op.
    func cancel(requestID: Int)
    /// The reply reached one of the client's stop strings: the engine stops generating and counts
    /// the request as completed (not cancelled). The default cancels.
    func stop(requestID: Int)
    /// See the default in the extension below.
    var unavailableReason: String? { get }
}

extension CompletionBackend {
    /// Why this backend cannot serve completions at all right now, or nil when it can; `/ready`
    /// answers 503 with this reason. Engine-side conditions (paused, no healthy NPUs) come from the
    /// snapshot instead, so most backends keep this default.
    public var unavailableReason: String? { nil }

    public func stop(requestID: Int) { cancel(requestID: requestID) }
}

/// One completion request as the engine sees it: sizes only, because the data plane is simulated.
public struct CompletionRequest: Sendable, Equatable {
    /// Prompt length from ``PromptTokenizer``.
    public var promptTokens: Int
    /// Upper bound on output tokens; the engine's workload model picks the actual length ≤ this
    /// (`finish_reason` is `"length"` when it hits the bound).
    public var maxTokens: Int
    /// OpenAI's `user` field, kept for the event log.
    public var user: String?
    /// vLLM's `min_tokens`: the engine's own length is raised to at least this (≤ `maxTokens`).
    public var minTokens: Int
    /// vLLM's `ignore_eos`: the output is exactly `maxTokens` tokens.
    public var ignoreEOS: Bool
    /// Content keys of the prompt's full blocks of ``prefixBlockTokens`` tokens (one per block,
    /// not chained; the engine chains them), as a trace's `hash_ids`. Empty: no prefix caching.
    public var prefixHashes: [UInt64]
    /// Tokens per block in ``prefixHashes``.
    public var prefixBlockTokens: Int

    public init(promptTokens: Int, maxTokens: Int, user: String? = nil, minTokens: Int = 0, ignoreEOS: Bool = false,
                prefixHashes: [UInt64] = [], prefixBlockTokens: Int = 0) {
        self.promptTokens = promptTokens
        self.maxTokens = maxTokens
        self.user = user
        self.minTokens = minTokens
        self.ignoreEOS = ignoreEOS
        self.prefixHashes = prefixHashes
        self.prefixBlockTokens = prefixBlockTokens
    }
}

extension CompletionRequest {
    /// Most tokens per prefix block a request's keys may be cut in: far above any engine's KV
    /// block (vLLM's 16…256, Mooncake's 512, the HTTP face's 64). The engine re-cuts the keys into
    /// its own blocks, one key per piece: a block of 2^62 tokens was 2^55 pieces per key, a trap
    /// allocating them or a loop that never ended.
    public static let maxPrefixBlockTokens = 65_536

    /// Why `keys` prefix keys of `blockTokens`-token blocks cannot describe a prompt of
    /// `promptTokens` tokens, with the range; nil when they can (or there are no keys). The keys
    /// are of the prompt's full blocks, so they cover at most the prompt.
    public static func prefixKeysProblem(keys: Int, blockTokens: Int, promptTokens: Int) -> String? {
        guard keys > 0 else { return nil }
        guard (1...maxPrefixBlockTokens).contains(blockTokens) else {
            return "prefix block size must be within 1…\(maxPrefixBlockTokens) tokens, got \(blockTokens)"
        }
        let (covered, overflow) = keys.multipliedReportingOverflow(by: blockTokens)
        guard overflow || covered > max(1, promptTokens) else { return nil }
        let tokens = overflow ? "more than \(Int.max)" : String(covered)
        return "\(keys) prefix keys of \(blockTokens)-token blocks cover \(tokens) tokens, more than the prompt's \(promptTokens)"
    }
}

/// One element of a request's event stream (see ``CompletionBackend`` for the grammar).
public enum CompletionEvent: Sendable, Equatable {
    /// Admitted; `requestID` is what ``CompletionBackend/cancel(requestID:)`` takes.
    case accepted(requestID: Int)
    /// Prompt tokens served from the prefix cache (feeds `vllm:prefix_cache_hits_total`).
    case prefixCacheHit(tokens: Int)
    /// `count` more output tokens (a decode step can yield several: MTP).
    case tokens(Int)
    /// Done: `"stop"` (the workload's output length reached) or `"length"` (`max_tokens` reached).
    case finished(reason: String)
    /// Not served: `status` 429 (rejected, overloaded), 503 (cannot serve: no capacity, fault) or
    /// 400 (can never serve this request). The HTTP status is the same, `reason` its message.
    case failed(reason: String, status: Int)

    /// True for the element that ends a stream.
    public var isTerminal: Bool {
        switch self {
        case .finished, .failed: true
        case .accepted, .prefixCacheHit, .tokens: false
        }
    }
}

/// A backend for an engine that cannot take HTTP requests (yet): every completion is answered 503
/// with `reason`, while `/metrics`, `/health`, `/ready` and `/admin/*` work as usual.
///
/// Lets `xds serve` run before the engine exposes request submission:
///
/// ```swift
/// let backend = UnavailableCompletionBackend(
///     modelName: host.latestSnapshot().modelName, reason: "this engine does not accept HTTP requests yet")
/// ```
public final class UnavailableCompletionBackend: CompletionBackend {
    public let modelName: String
    public let reason: String

    public init(modelName: String, reason: String) {
        self.modelName = modelName
        self.reason = reason
    }

    public func submit(_ request: CompletionRequest) -> AsyncStream<CompletionEvent> {
        AsyncStream { continuation in
            continuation.yield(.failed(reason: reason, status: 503))
            continuation.finish()
        }
    }

    public func cancel(requestID: Int) {}

    public var unavailableReason: String? { reason }
}
