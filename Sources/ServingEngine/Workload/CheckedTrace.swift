import Foundation

/// A trace that ``TraceWorkload/check(path:maxContextTokens:clipToContext:keepRequests:)`` has
/// already parsed, held in memory so the run replays those requests instead of parsing the file
/// a second time (issue 12: one parse per run). Only traces up to ``maxBytes`` are kept; longer
/// ones stream from the file as before, in constant memory.
///
/// Immutable and shared: ``CheckedTraceWorkload`` is the cursor over it (a value, so copying the
/// workload copies the position and nothing else).
public final class CheckedTrace: Sendable, Equatable {
    /// Largest trace file kept in memory after its check (the published traces are 0.3–3 MB).
    public static let maxBytes = 64 << 20

    public let path: String
    public let maxContextTokens: Int
    public let clipsToContext: Bool
    public let requests: [RequestSpec]

    init(path: String, maxContextTokens: Int, clipsToContext: Bool, requests: [RequestSpec]) {
        self.path = path
        self.maxContextTokens = maxContextTokens
        self.clipsToContext = clipsToContext
        self.requests = requests
    }

    /// Identity: two checks of one file are different objects (the file may have changed between).
    public static func == (a: CheckedTrace, b: CheckedTrace) -> Bool { a === b }

    /// Whether this is the trace a run of `path` with these options would read.
    func matches(path: String, maxContextTokens: Int, clipsToContext: Bool) -> Bool {
        self.path == path && self.maxContextTokens == max(1, min(maxContextTokens, TraceLimits.maxTokens))
            && self.clipsToContext == clipsToContext
    }
}

/// Replays a ``CheckedTrace``: the same requests, ids and arrival times ``TraceWorkload`` gives.
public struct CheckedTraceWorkload: WorkloadSource {
    public let trace: CheckedTrace
    private var position = 0

    public init(_ trace: CheckedTrace) { self.trace = trace }

    public mutating func next() -> RequestSpec? {
        guard position < trace.requests.count else { return nil }
        defer { position += 1 }
        return trace.requests[position]
    }
}
