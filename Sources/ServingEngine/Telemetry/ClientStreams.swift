import SimKit

/// Progress of a request submitted from outside the workload (an HTTP client), for its stream.
public struct StreamUpdate: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// Taken in and placed on a prefill TE.
        case accepted
        /// `n` more output tokens (a step can yield several with MTP).
        case tokens(Int)
        /// Done; `lengthCapped` when the output stopped at the client's `max_tokens`.
        case finished(lengthCapped: Bool)
        /// Prompt tokens whose KV came from the prefix cache; sent once, just before the first
        /// `.tokens` of a request with a hit, whether that comes from a step's report or from the
        /// finish (a reply of one step, e.g. `max_tokens` 1, or 2 under MTP).
        case cachedPrompt(Int)
        /// Not served or lost: 429 rejected by admission, 400 can never fit, 503 failed (fault).
        case failed(reason: String, status: Int)
    }
    public var id: Int
    public var kind: Kind
    public init(id: Int, kind: Kind) {
        self.id = id
        self.kind = kind
    }
}

/// The streams of requests submitted from outside the workload (HTTP clients): their ids, their
/// output lengths, how many tokens each stream has been told so far, and the updates the face has
/// not taken yet (engine-components.md §2, `ClientStreams`).
///
/// A sink: it decides nothing about a request. The engine (the coordinator) tells it what
/// happened — accepted, tokens produced, finished, failed — and it turns that into
/// ``StreamUpdate``s for the requests it watches; for any other id every call is a no-op, so the
/// engine need not ask first (with no stream open, not even the id is hashed: every workload
/// request's admission and completion tell it). A stream closes (stops being watched) on its last
/// update, or when the client goes away (``close(_:)``).
///
/// A `final class` like the engine's other components: the engine holds one, `fork()` takes a
/// ``copy()`` (the length stream copied where it stands, never re-seeded), and no other object
/// holds a reference to it.
///
/// ```swift
/// let streams = ClientStreams(seed: 1)
/// let (id, output) = streams.open(maxTokens: 64, minTokens: 0, ignoreEOS: false)
/// streams.accepted(id)
/// streams.progress(id, tokensSoFar: 3, cachedPromptTokens: 0)     // .tokens(3)
/// streams.finished(id, outputTokens: output, lengthCapped: false,
///                  cachedPromptTokens: 0)                          // .tokens(output - 3), .finished
/// let updates = streams.take()                                     // all four, in order; now empty
/// ```
final class ClientStreams {
    /// External request ids live far above any workload's (which count from 0).
    static let firstID = 1 << 40

    /// Open streams: request id → output tokens reported to the client so far. Looked up, never
    /// iterated: its order is Swift's per-process hash seeding (engine-components.md §7.7).
    private(set) var watched: [Int: Int] = [:]
    /// The open streams' ids in the order they opened, which is id order (``open(maxTokens:minTokens:ignoreEOS:)``
    /// hands ids out counting up): the engine's per-step token report walks it. It walked
    /// ``watched``, so two runs of the same config, seed and commands told the clients of one
    /// step their tokens in different orders (the order of ``take()``, of SSE delivery).
    private(set) var openOrder: [Int] = []
    /// Updates since the face last took them (``take()``), in the order they happened.
    private(set) var updates: [StreamUpdate] = []
    /// The id the next ``open(maxTokens:minTokens:ignoreEOS:)`` hands out.
    private(set) var nextID = ClientStreams.firstID
    /// Output lengths of external requests: a stream of its own, so HTTP traffic never shifts the
    /// workload's draws. Drawn once per request whatever its flags.
    private var lengths: RandomStream

    init(seed: UInt64) {
        lengths = RandomStreams(seed: seed).stream("external-lengths")
    }

    private init(copying other: ClientStreams) {
        watched = other.watched
        openOrder = other.openOrder
        updates = other.updates
        nextID = other.nextID
        lengths = other.lengths
    }

    /// A deep, independent copy (for the engine's `fork()`): same open streams, pending updates,
    /// next id, and the length stream where it stands.
    func copy() -> ClientStreams { ClientStreams(copying: self) }

    // MARK: Opening and closing

    /// Opens a stream for a new request: its id and its output length. The natural length follows
    /// the synthetic chat traffic's distribution (the data plane is simulated, so the engine
    /// decides when it stops) and is drawn in every case, so later requests' lengths do not depend
    /// on these flags; then, with vLLM's semantics, `ignoreEOS` gives exactly `maxTokens`,
    /// otherwise the natural length raised to at least `minTokens` and never beyond `maxTokens`
    /// (at least 1 either way).
    func open(maxTokens: Int, minTokens: Int, ignoreEOS: Bool) -> (id: Int, outputTokens: Int) {
        let id = nextID
        nextID += 1
        let natural = Int(saturating: SyntheticWorkload.TrafficClass.chat.outputTokens.sample(using: &lengths).rounded())
        let ceiling = max(1, maxTokens)
        watched[id] = 0
        openOrder.append(id)
        return (id, ignoreEOS ? ceiling : min(ceiling, max(1, natural, minTokens)))
    }

    /// The client went away (cancel or stop): the stream closes without an update. Returns the
    /// tokens it had been told, nil if `id` was not open.
    @discardableResult
    func close(_ id: Int) -> Int? {
        unwatch(id)
    }

    /// Closes `id`'s stream: the tokens it had been told, nil if it was not open.
    private func unwatch(_ id: Int) -> Int? {
        guard let reported = watched.removeValue(forKey: id) else { return nil }
        // Ascending: the first index not below `id` is its own.
        var low = 0, high = openOrder.count
        while low < high {
            let mid = (low + high) / 2
            if openOrder[mid] < id { low = mid + 1 } else { high = mid }
        }
        openOrder.remove(at: low)
        return reported
    }

    /// Whether `id`'s stream is open.
    func isWatched(_ id: Int) -> Bool { watched[id] != nil }

    /// Some stream is open (the engine skips its per-step token report otherwise).
    var hasOpenStreams: Bool { !watched.isEmpty }

    /// Output tokens `id`'s client has been told so far; nil if its stream is not open.
    func tokensSoFar(_ id: Int) -> Int? { watched[id] }

    // MARK: Progress

    /// `id` was placed on a prefill TE.
    func accepted(_ id: Int) {
        if !watched.isEmpty, watched[id] != nil { updates.append(StreamUpdate(id: id, kind: .accepted)) }
    }

    /// `id` has produced `tokensSoFar` output tokens in all. Reports the increase, if any; the
    /// first report of a request with a prefix-cache hit is preceded by `.cachedPrompt`.
    func progress(_ id: Int, tokensSoFar produced: Int, cachedPromptTokens: Int) {
        guard !watched.isEmpty, let reported = watched[id], produced > reported else { return }
        announceCachedPrompt(id, reported: reported, cachedPromptTokens: cachedPromptTokens)
        watched[id] = produced
        updates.append(StreamUpdate(id: id, kind: .tokens(produced - reported)))
    }

    /// `id` completed with `outputTokens` in all: the tokens not reported yet, then `.finished`;
    /// the stream closes. A request that finishes within its first reporting step (one token, or
    /// two under MTP) was never in a step's report, so its `.cachedPrompt` comes from here — else
    /// its client's `usage.prompt_tokens_details.cached_tokens` read 0 whatever the cache held.
    /// `cachedPromptTokens` defaults to 0 (no hit) for callers without a prefix cache.
    func finished(_ id: Int, outputTokens: Int, lengthCapped: Bool, cachedPromptTokens: Int = 0) {
        guard !watched.isEmpty, let reported = unwatch(id) else { return }
        announceCachedPrompt(id, reported: reported, cachedPromptTokens: cachedPromptTokens)
        if outputTokens > reported {
            updates.append(StreamUpdate(id: id, kind: .tokens(outputTokens - reported)))
        }
        updates.append(StreamUpdate(id: id, kind: .finished(lengthCapped: lengthCapped)))
    }

    /// `.cachedPrompt` once per request: before its first tokens, when it had a hit.
    private func announceCachedPrompt(_ id: Int, reported: Int, cachedPromptTokens: Int) {
        if reported == 0, cachedPromptTokens > 0 {
            updates.append(StreamUpdate(id: id, kind: .cachedPrompt(cachedPromptTokens)))
        }
    }

    /// `id` was rejected (429), can never fit (400) or was lost (503): the stream closes.
    func failed(_ id: Int, reason: String, status: Int) {
        guard !watched.isEmpty, unwatch(id) != nil else { return }
        updates.append(StreamUpdate(id: id, kind: .failed(reason: reason, status: status)))
    }

    /// The updates since the last call, in the order they happened.
    func take() -> [StreamUpdate] {
        defer { updates.removeAll(keepingCapacity: true) }
        return updates
    }
}
