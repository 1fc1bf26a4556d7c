/// Replays an Azure LLM CSV or Mooncake JSONL trace, streaming it line by line.
///
/// Rules (interfaces.md: bad input gives one clear line and never half-runs):
/// - run ``check(path:)`` first; it scans the whole file and throws `file:line: problem`
///   for the first malformed row, so a run never starts on a bad trace;
/// - a prompt of 0 tokens is rejected (there is nothing to prefill); an output of 0 tokens
///   is accepted and replayed as 1, because every request produces at least its first token
///   (TTFT is defined by it);
/// - timestamps going backwards are rejected: both published traces are non-decreasing,
///   and replaying out of order would silently reorder arrivals;
/// - arrival times are seconds since the first row.
///
/// ```swift
/// let summary = try TraceWorkload.check(path: path)
/// var trace = try TraceWorkload(path: path)
/// while let request = trace.next() { submit(request) }
/// ```
public struct TraceWorkload: WorkloadSource {
    public let path: String
    public let format: TraceFormat
    /// Set if `next()` stopped at a malformed row (only possible when `check` was skipped).
    public private(set) var error: WorkloadError?
    private var reader: LineReader
    private var firstTime: Double?
    private var lastTime = -Double.infinity
    private var nextID = 0

    public init(path: String) throws(WorkloadError) {
        self.path = path
        format = try TraceFormat.detect(path: path)
        reader = try LineReader(path: path)
        if format == .azureCSV { skipHeader() }
    }

    public mutating func next() -> RequestSpec? {
        guard error == nil else { return nil }
        do {
            return try nextChecked()
        } catch {
            self.error = error
            return nil
        }
    }

    /// Like `next()`, but throws `file:line: problem` for a malformed row.
    public mutating func nextChecked() throws(WorkloadError) -> RequestSpec? {
        while let line = reader.nextLine() {
            let row: TraceRow?
            do { row = try TraceRowParser.parse(line, format: format) } catch {
                throw WorkloadError.at(path, reader.lineNumber, error.message)
            }
            guard let row else { continue }
            if row.time < lastTime {
                throw WorkloadError.at(
                    path, reader.lineNumber, "timestamp goes backwards (\(row.time) s after \(lastTime) s)")
            }
            lastTime = row.time
            let origin = firstTime ?? row.time
            firstTime = origin
            defer { nextID += 1 }
            return RequestSpec(
                id: nextID, arrival: row.time - origin, promptTokens: row.promptTokens,
                outputTokens: max(1, row.outputTokens), prefixHashes: row.hashIDs,
                prefixBlockTokens: TraceFormat.mooncakeBlockTokens)
        }
        return nil
    }

    private mutating func skipHeader() {
        while let line = reader.nextLine() {
            if !String(decoding: line, as: UTF8.self).trimmingWhitespace.isEmpty { return }
        }
    }

    /// Scans the whole trace; throws the first problem as `file:line: problem`.
    @discardableResult
    public static func check(path: String) throws(WorkloadError) -> TraceSummary {
        var trace = try TraceWorkload(path: path)
        var summary = TraceSummary(format: trace.format)
        var seenBlocks = Set<UInt64>()  // membership only; never iterated, so order is moot
        var reusedTokens = 0
        while let request = try trace.nextChecked() {
            summary.requests += 1
            summary.promptTokens += request.promptTokens
            summary.outputTokens += request.outputTokens
            summary.durationSeconds = request.arrival
            var leadingSeen = 0
            while leadingSeen < request.prefixHashes.count, seenBlocks.contains(request.prefixHashes[leadingSeen]) {
                leadingSeen += 1
            }
            reusedTokens += min(leadingSeen * request.prefixBlockTokens, request.promptTokens)
            seenBlocks.formUnion(request.prefixHashes)
        }
        if summary.requests == 0 { throw WorkloadError("\(path): the trace has no requests") }
        summary.idealPrefixReuse = Double(reusedTokens) / Double(summary.promptTokens)
        return summary
    }
}

/// What ``TraceWorkload/check(path:)`` learned about a trace.
public struct TraceSummary: Sendable, Equatable {
    public var format: TraceFormat
    public var requests = 0
    public var promptTokens = 0
    public var outputTokens = 0
    /// Arrival time of the last request, seconds after the first.
    public var durationSeconds = 0.0
    /// The prefix-cache hit rate an unbounded cache would reach: the share of prompt tokens
    /// covered by a leading run of blocks seen earlier in the trace (a prefix cache can
    /// only reuse a leading run), 512 tokens per Mooncake block, capped at the prompt length.
    public var idealPrefixReuse = 0.0

    init(format: TraceFormat) { self.format = format }
}
