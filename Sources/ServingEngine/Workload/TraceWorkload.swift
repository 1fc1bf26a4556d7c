import Foundation
import SimKit

/// Replays an Azure LLM CSV (2023 or 2024), BurstGPT CSV or Mooncake JSONL trace, streaming it
/// line by line (``TraceFormat``).
///
/// Rules (interfaces.md: bad input gives one clear line and never half-runs):
/// - run ``check(path:maxContextTokens:)`` first; it scans the whole file and throws
///   `file:line: problem` for the first malformed row, so a run never starts on a bad trace;
/// - every field is checked against a stated range (``TraceLimits``): token counts up to the
///   model's context window (`maxContextTokens`, at most 10 million), Mooncake timestamps
///   0…10^13 ms, Azure years 1900–9999, a trace spanning at most ``SimKit/SimTime/maxDuration``
///   (10^10 s), `hash_ids` integers 0…2^64 − 1 (read from their digits) and no more of them than the prompt has 512-token
///   blocks; lines up to 1 MiB. Long idle gaps (10^12 ms) are fine;
/// - a prompt of 0 tokens is rejected (there is nothing to prefill); an output of 0 tokens
///   is accepted and replayed as 1, because every request produces at least its first token
///   (TTFT is defined by it). BurstGPT is the exception: its README marks a request the traced
///   service failed by 0 response tokens, so such a row is skipped (counted in
///   ``TraceSummary/failedInSourceRows``), not replayed; its `Log Type` (conversation or API)
///   and `Model` are not used (the deployment serves one model), and `Total tokens`, when
///   present, must be the sum of the other two;
/// - timestamps going backwards are rejected: both published traces are non-decreasing,
///   and replaying out of order would silently reorder arrivals;
/// - arrival times are seconds since the first row.
///
/// ```swift
/// let summary = try TraceWorkload.check(path: path, maxContextTokens: 163_840)
/// var trace = try TraceWorkload(path: path)
/// while let request = trace.next() { submit(request) }
/// ```
public struct TraceWorkload: WorkloadSource {
    public let path: String
    public let format: TraceFormat
    /// Set if `next()` stopped at a malformed row: `check` was skipped, or the file changed
    /// after it (a sped-up or over-``CheckedTrace/maxBytes`` run reads it again). The engine
    /// logs it and exposes it (``ServingEngine/workloadError``); `xds run` exits non-zero on it.
    public private(set) var error: WorkloadError?
    /// Longest prompt (and output) accepted, in tokens: the model's context window.
    public let maxContextTokens: Int
    /// Prompts longer than the window are cut to it instead of refused (``TraceRowParser``).
    public let clipsToContext: Bool
    private var reader: LineReader
    /// A CSV trace's columns, from its header.
    private let columns: CSVColumns?
    private var clock = WallClockTimestamp()
    /// The fields of the last quote-free CSV record, reused from row to row (``CSVRecord/splitUnquoted(_:into:)``).
    private var unquotedFields: [ArraySlice<UInt8>] = []
    /// BurstGPT rows the original service failed (0 response tokens), skipped so far.
    public private(set) var failedInSourceRows = 0
    /// Rows asking for 0 output tokens so far (served as 1: ``TraceSummary/zeroOutputRows``).
    public private(set) var zeroOutputRows = 0
    /// Rows cut to the model's window so far (--clip-to-context: ``TraceSummary/clippedRows``).
    public private(set) var clippedRows = 0
    private var firstTime: Double?
    private var lastTime = -Double.infinity
    /// Arrivals come this many times faster than the trace's timestamps (`--trace-speedup K`,
    /// K > 0; K < 1 slows them down). Only arrival times change.
    public var speedup = 1.0
    private var nextID = 0

    /// Opens a trace; `maxContextTokens` is the model's context window (rows with a longer
    /// prompt are refused), capped at ``TraceLimits/maxTokens``.
    public init(path: String, maxContextTokens: Int = TraceLimits.maxTokens, clipToContext: Bool = false) throws(WorkloadError) {
        self.path = path
        self.maxContextTokens = max(1, min(maxContextTokens, TraceLimits.maxTokens))
        clipsToContext = clipToContext
        var probe = try LineReader(path: path)
        (format, columns) = try TraceFormat.detect(&probe)
        reader = try LineReader(path: path)
        try skipHeaderIfCSV()
    }

    /// A trace held in memory, reported as `name` (tests and the fuzz harness).
    init(bytes: [UInt8], name: String, maxContextTokens: Int = TraceLimits.maxTokens,
         clipToContext: Bool = false) throws(WorkloadError) {
        path = name
        self.maxContextTokens = max(1, min(maxContextTokens, TraceLimits.maxTokens))
        clipsToContext = clipToContext
        var probe = LineReader(bytes: bytes, name: name)
        (format, columns) = try TraceFormat.detect(&probe)
        reader = LineReader(bytes: bytes, name: name)
        try skipHeaderIfCSV()
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
        while let next = try nextRow() {
            let (row, line) = next
            if row.time < lastTime {
                // By how much, not the two clock readings: an Azure row's are seconds since 1970
                // ("1700158623.25 s after 1700158624.5 s"), which no one reads off the file.
                let back = ((lastTime - row.time) * 1e6).rounded() / 1e6
                // Under half a microsecond rounds to 0, and "0 s before" reads as no step back.
                let amount = back > 0 ? "\(OperatorCommand.format(back)) s" : "less than 0.000001 s"
                throw WorkloadError.at(
                    path, line, "timestamp goes backwards: \(amount) before the previous row's (rows must be in time order)")
            }
            if row.failedInSource {
                // Not replayed; its time still has to be in order (a misplaced row is a broken file).
                lastTime = row.time
                failedInSourceRows += 1
                continue
            }
            let origin = firstTime ?? row.time
            let arrival = (row.time - origin) / speedup
            if arrival > SimTime.maxDuration {
                throw WorkloadError.at(
                    path, line,
                    "timestamp is \(OperatorCommand.format(arrival)) s after the first row\(speedup == 1 ? "" : " (after the speedup)"); a trace spans at most 10000000000 s (about 317 years)")
            }
            lastTime = row.time
            firstTime = origin
            if row.outputTokens == 0 { zeroOutputRows += 1 }
            if row.clipped { clippedRows += 1 }
            defer { nextID += 1 }
            return RequestSpec(
                id: nextID, arrival: arrival, promptTokens: row.promptTokens,
                outputTokens: max(1, row.outputTokens), prefixHashes: row.hashIDs,
                prefixBlockTokens: TraceFormat.mooncakeBlockTokens)
        }
        return nil
    }

    /// The next non-blank row and the line it starts on, or nil at the end of the file.
    private mutating func nextRow() throws(WorkloadError) -> (TraceRow, Int)? {
        while var text = try reader.nextLine() {
            let start = reader.lineNumber
            do {
                guard let columns else {
                    // A BOM starts the file only (editors on Windows add one); detection skipped it too.
                    let line = start == 1 ? text.dropByteOrderMark : text
                    // Further down, one comes from a file joined on with cat: it was told
                    // "expected '{' …, found '{"timesta'", the mark invisible in the echo.
                    if start != 1, text.first == 0xEF, text.starts(with: [0xEF, 0xBB, 0xBF]) {
                        throw TraceRowParser.RowProblem(
                            "this line starts with a byte-order mark (U+FEFF), which only a file's first line may carry; "
                                + "remove it (files joined with cat keep each file's mark)")
                    }
                    guard let row = try TraceRowParser.parseMooncakeLine(line, maxContext: maxContextTokens, clip: clipsToContext)
                    else { continue }
                    return (row, start)
                }
                let fields: [ArraySlice<UInt8>]
                if CSVRecord.splitUnquoted(text, into: &unquotedFields) {
                    fields = unquotedFields
                } else {
                    // A quoted field may hold line breaks: the record goes on on the next lines.
                    var split = try CSVRecord.split(text)
                    while case .continues = split {
                        guard let more = try reader.nextLine() else {
                            throw TraceRowParser.RowProblem("a quoted field is not closed before the end of the file")
                        }
                        guard text.count + 1 + more.count <= LineReader.maxLineBytes else {
                            throw TraceRowParser.RowProblem(
                                "a quoted field runs over more than \(LineReader.maxLineBytes) bytes; is a closing quote missing?")
                        }
                        text = (Array(text) + [UInt8(ascii: "\n")] + Array(more))[...]
                        split = try CSVRecord.split(text)
                    }
                    guard case .fields(let quoted) = split else { continue }
                    fields = quoted
                }
                guard let row = try TraceRowParser.parseCSV(fields, columns: columns, clock: &clock,
                                                            maxContext: maxContextTokens, clip: clipsToContext)
                else { continue }
                return (row, start)
            } catch let problem as TraceRowParser.RowProblem {
                throw WorkloadError.at(path, start, problem.message)
            } catch let problem as CSVRecord.Problem {
                throw WorkloadError.at(path, start, problem.message)
            } catch let error as WorkloadError {
                throw error
            } catch {
                throw WorkloadError.at(path, start, "\(error)")
            }
        }
        return nil
    }

    /// A copy reading the trace through its own file handle, from the next unread line.
    public func fork() throws -> any WorkloadSource {
        var copy = self
        do { copy.reader = try reader.forked() } catch { throw WorkloadError("\(path): cannot reopen the trace to fork it") }
        return copy
    }

    private mutating func skipHeaderIfCSV() throws(WorkloadError) {
        guard columns != nil else { return }
        while let line = try reader.nextLine() {
            if !String(decoding: line, as: UTF8.self).trimmingWhitespace.isEmpty { return }
        }
    }

    /// Scans the whole trace; throws the first problem as `file:line: problem`.
    /// `maxContextTokens` is the model's context window: a longer prompt is refused.
    @discardableResult
    public static func check(
        path: String, maxContextTokens: Int = TraceLimits.maxTokens, clipToContext: Bool = false
    ) throws(WorkloadError) -> TraceSummary {
        try check(try TraceWorkload(path: path, maxContextTokens: maxContextTokens, clipToContext: clipToContext))
    }

    /// As ``check(path:maxContextTokens:clipToContext:)``, also keeping the parsed requests when
    /// the file is at most ``CheckedTrace/maxBytes`` (nil otherwise), so a run need not parse it
    /// again (``EngineConfiguration/checkedTrace``). `speedup` is the run's `--trace-speedup`: the
    /// check applies it, so a row it pushes beyond the 10¹⁰ s span is refused before the run
    /// (naming its line) instead of ending the replay there without a word. Requests are kept at
    /// speedup 1 only, the one a run replays from memory.
    public static func checkKeepingRequests(
        path: String, maxContextTokens: Int = TraceLimits.maxTokens, clipToContext: Bool = false, speedup: Double = 1
    ) throws(WorkloadError) -> (summary: TraceSummary, trace: CheckedTrace?) {
        var opened = try TraceWorkload(path: path, maxContextTokens: maxContextTokens, clipToContext: clipToContext)
        opened.speedup = speedup
        let size = (try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int
        guard speedup == 1, let size, size <= CheckedTrace.maxBytes else { return (try check(opened), nil) }
        var requests: [RequestSpec]? = []
        let summary = try check(opened, keeping: &requests)
        return (summary, CheckedTrace(path: path, maxContextTokens: opened.maxContextTokens,
                                      clipsToContext: clipToContext, requests: requests ?? []))
    }

    /// Like ``check(path:maxContextTokens:clipToContext:)`` over bytes in memory reported as `name`.
    @discardableResult
    static func check(
        bytes: [UInt8], name: String, maxContextTokens: Int = TraceLimits.maxTokens, clipToContext: Bool = false
    ) throws(WorkloadError) -> TraceSummary {
        try check(try TraceWorkload(bytes: bytes, name: name, maxContextTokens: maxContextTokens, clipToContext: clipToContext))
    }

    private static func check(_ opened: TraceWorkload) throws(WorkloadError) -> TraceSummary {
        var none: [RequestSpec]?
        return try check(opened, keeping: &none)
    }

    private static func check(_ opened: TraceWorkload, keeping kept: inout [RequestSpec]?) throws(WorkloadError) -> TraceSummary {
        var trace = opened
        let path = trace.path
        var summary = TraceSummary(format: trace.format)
        var seenBlocks = SeenBlocks()  // membership only; never iterated
        var reusedTokens = 0
        while let request = try trace.nextChecked() {
            kept?.append(request)
            summary.requests += 1
            // Saturating: each count is ≤ 10^7, so only an absurdly long file could overflow.
            summary.promptTokens = summary.promptTokens.addingReportingOverflow(request.promptTokens).overflow
                ? .max : summary.promptTokens + request.promptTokens
            summary.outputTokens = summary.outputTokens.addingReportingOverflow(request.outputTokens).overflow
                ? .max : summary.outputTokens + request.outputTokens
            summary.durationSeconds = request.arrival
            let leadingSeen = seenBlocks.leadingRunHeld(request.prefixHashes)
            reusedTokens = min(Int.max - TraceLimits.maxTokens, reusedTokens)
                + min(leadingSeen * request.prefixBlockTokens, request.promptTokens)
            // The leading run is held already: only the ids after it can add anything.
            seenBlocks.formUnion(request.prefixHashes, from: leadingSeen)
        }
        summary.failedInSourceRows = trace.failedInSourceRows
        summary.zeroOutputRows = trace.zeroOutputRows
        summary.clippedRows = trace.clippedRows
        if summary.requests == 0 {
            // Rows were there, each one a request the traced service failed: "no requests" alone
            // read as an empty or unread file.
            let failed = summary.failedInSourceRows
            guard failed > 0 else { throw WorkloadError("\(path): the trace has no requests") }
            throw WorkloadError("\(path): the trace has no requests to replay: \(failed == 1 ? "its 1 row has" : "all \(failed) rows have") "
                + "0 response tokens (requests the traced service failed, which are not replayed)")
        }
        summary.idealPrefixReuse = Double(reusedTokens) / Double(summary.promptTokens)
        return summary
    }
}

/// What ``TraceWorkload/check(path:maxContextTokens:)`` learned about a trace.
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
    /// BurstGPT rows with 0 response tokens (failed by the traced service), not replayed.
    public var failedInSourceRows = 0
    /// Rows asking for 0 output tokens: served as 1, since a prefill always yields the first token.
    public var zeroOutputRows = 0
    /// Rows longer than the model's window that --clip-to-context cut to it.
    public var clippedRows = 0

    init(format: TraceFormat) { self.format = format }
}
