import SimKit

/// One request as the workload describes it, before the engine touches it.
///
/// ```swift
/// let r = RequestSpec(id: 0, arrival: 1.5, promptTokens: 2_048, outputTokens: 300,
///                     prefixHashes: [11, 12], prefixBlockTokens: 512, tag: "chat")
/// ```
public struct RequestSpec: Sendable, Equatable {
    // The block size is declared before the keys, not after as in the public initialiser: the
    // compiler then synthesises a memberwise initialiser of its own (another order of labels,
    // so no call could mean either), which the public one calls. An initialiser assigning the properties one by one built the spec aside,
    // copied it whole and destroyed the first (its keys and tag retained and released per
    // request: issue 12, 6.4 M instructions of a saturated superpod's two minutes).
    public var id: Int
    /// Arrival time, seconds since the start of the workload.
    public var arrival: SimTime
    public var promptTokens: Int
    public var outputTokens: Int
    /// Tokens per prefix block (512 for Mooncake's `hash_ids`).
    public var prefixBlockTokens: Int
    /// Flat keys, one per full `prefixBlockTokens`-token block of the prompt's shareable
    /// prefix; equal leading keys mean a reusable prefix (chain them with ``PrefixHashes``).
    public var prefixHashes: [UInt64]
    /// Traffic class, e.g. "chat" or "reasoning"; nil for traces that don't say.
    public var tag: String?
}

extension RequestSpec {
    public init(
        id: Int, arrival: SimTime, promptTokens: Int, outputTokens: Int,
        prefixHashes: [UInt64] = [], prefixBlockTokens: Int = 512, tag: String? = nil
    ) {
        self.init(id: id, arrival: arrival, promptTokens: promptTokens, outputTokens: outputTokens,
                  prefixBlockTokens: prefixBlockTokens, prefixHashes: prefixHashes, tag: tag)
    }
}

/// A pull-based stream of requests in arrival order; pulling keeps huge traces out of
/// memory.
///
/// ```swift
/// var source: any WorkloadSource = SyntheticWorkload(seed: 1)
/// while let r = source.next(), r.arrival < 60 { submit(r) }
/// ```
public protocol WorkloadSource {
    /// The next request, or nil when the workload is exhausted.
    mutating func next() -> RequestSpec?
    /// An independent copy that continues from the same point (``ServingEngine/fork()``). The
    /// default, a copy of the value, fits sources that are plain values; a source holding a
    /// class (a file handle) must give the copy its own.
    func fork() throws -> any WorkloadSource
}

extension WorkloadSource {
    public func fork() throws -> any WorkloadSource { self }
}

/// A problem with workload input; `description` is one line, `file:line: problem` when a
/// file is involved.
public struct WorkloadError: Error, CustomStringConvertible, Equatable {
    public var description: String
    public init(_ description: String) { self.description = description }
    static func at(_ path: String, _ line: Int, _ problem: String) -> WorkloadError {
        WorkloadError("\(path):\(line): \(problem)")
    }
}
