import Foundation
import PodModel
import ServingEngine

/// A file written line by line as the run goes (`--requests-out`, `--timeline-out`), buffered so
/// that a million rows cost a few hundred writes, not a million.
final class OutputFile {
    let path: String
    let flag: String
    private let handle: FileHandle
    private var buffer = Data()
    /// The first write error (a full disk, a closed pipe); later rows are dropped, and the run
    /// reports it once at the end instead of trapping mid-run.
    private(set) var failure: String?

    init(path: String, flag: String) throws {
        try Run.checkWritable(path, flag: flag)
        self.handle = try Self.openForWriting(path, flag: flag)
        self.path = path
        self.flag = flag
    }

    /// Opens `path` for writing, truncated, the way a shell's `>` does. Not
    /// `FileManager.createFile`: that writes a temporary file and renames it over the path, which
    /// replaced `/dev/null` or `/dev/stdout` with a regular file (as root) and cannot write to a
    /// FIFO.
    static func openForWriting(_ path: String, flag: String) throws -> FileHandle {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw ConfigError("\(flag) \(path.isEmpty ? "''" : path): cannot write there (\(String(cString: strerror(errno))))")
        }
        return FileHandle(fileDescriptor: fd, closeOnDealloc: true)
    }

    /// Writes `data` to `path` in one go (see ``openForWriting(_:flag:)``).
    static func write(_ data: Data, to path: String, flag: String) throws {
        let handle = try openForWriting(path, flag: flag)
        defer { try? handle.close() }
        if let reason = writeAll(data, to: handle.fileDescriptor) {
            throw ConfigError("\(flag) \(path): writing failed (\(reason))")
        }
    }

    /// Writes all of `data` to `fd`, or returns the system's reason it could not (`No space left
    /// on device`, `Bad file descriptor`), not Foundation's "NSCocoaErrorDomain error 512".
    static func writeAll(_ data: Data, to fd: Int32) -> String? {
        data.withUnsafeBytes { (bytes: UnsafeRawBufferPointer) -> String? in
            guard var next = bytes.baseAddress else { return nil }
            var left = bytes.count
            while left > 0 {
                let n = Foundation.write(fd, next, left)
                if n < 0 {
                    if errno == EINTR { continue }
                    return String(cString: strerror(errno))
                }
                if n == 0 { return "the file accepts no more bytes" }
                next += n
                left -= n
            }
            return nil
        }
    }

    func write(_ data: Data) {
        buffer.append(data)
        if buffer.count >= 1 << 20 { flush() }
    }

    func flush() {
        guard !buffer.isEmpty else { return }
        if failure == nil {
            if let reason = Self.writeAll(buffer, to: handle.fileDescriptor) {
                failure = "\(flag) \(path): writing failed (\(reason)); the file is incomplete"
            }
        }
        buffer.removeAll(keepingCapacity: true)
    }

    private(set) var closed = false

    /// Idempotent: the run closes its files before it reports a write failure, and a `defer`
    /// closes them again on every other way out.
    func close() {
        guard !closed else { return }
        closed = true
        flush()
        try? handle.close()
    }
}

/// `--requests-out FILE.jsonl` (or `FILE.csv`, CSV rows): one JSON object per request that left the system, in the order
/// they left (interfaces.md "Additions"). Times in milliseconds except `arrival_s`; a value that
/// does not apply (no first token, no decode instance) is `null`, so every row has every column.
final class RequestRowWriter {
    struct Row: Encodable {
        var id: Int
        var arrivalS: Double
        var stage: String
        var promptTokens: Int
        var outputTokens: Int
        var cachedTokens: Int
        @NullWhenAbsent var ttftMs: Double?
        @NullWhenAbsent var tpotMs: Double?
        var e2eMs: Double
        @NullWhenAbsent var prefillInstance: String?
        @NullWhenAbsent var decodeInstance: String?
        @NullWhenAbsent var reason: String?

        /// In the order of interfaces.md, which is also the CSV's column order.
        enum CodingKeys: String, CodingKey, CaseIterable {
            case id, arrivalS = "arrival_s", stage, promptTokens = "prompt_tokens", outputTokens = "output_tokens"
            case cachedTokens = "cached_tokens", ttftMs = "ttft_ms", tpotMs = "tpot_ms", e2eMs = "e2e_ms"
            case prefillInstance = "prefill_instance", decodeInstance = "decode_instance", reason
        }

        init(_ r: FinishedRequest) {
            id = r.id
            arrivalS = r.arrival
            // The contract's three stages: a request its client cancelled failed ("cancelled").
            stage = r.stage == .completed ? "completed" : r.stage == .rejected ? "rejected" : "failed"
            promptTokens = r.promptTokens
            outputTokens = r.outputTokens
            cachedTokens = r.cachedTokens
            // A request that failed after its first token still had that first token: its TTFT
            // is a fact. Its TPOT is not (it stopped mid-stream), so that stays completed-only.
            ttftMs = r.ttft.map { $0 * 1_000 }
            tpotMs = r.stage == .completed ? r.tpot.map { $0 * 1_000 } : nil
            e2eMs = r.endToEnd * 1_000
            prefillInstance = r.prefillInstance
            decodeInstance = r.decodeInstance
            reason = r.reason
        }
    }

    private let file: OutputFile
    private let encoder = JSONOutput.encoder()
    /// CSV rows instead of JSON Lines: a FILE.csv got JSON Lines, which `pandas.read_csv` (or a
    /// spreadsheet) reads as one garbled column per key.
    private let csv: Bool
    private(set) var rows = 0

    /// `csv` (see ``writesCSV(_:)``): a header line of the JSON keys, then one line per request
    /// in the same order, an empty field where the JSON has `null`.
    init(file: OutputFile, csv: Bool = false) {
        self.file = file
        self.csv = csv
        if csv { file.write(Data((Self.columns.joined(separator: ",") + "\n").utf8)) }
    }

    /// Whether `path` asks for CSV rows (its extension is `.csv`, in any case).
    static func writesCSV(_ path: String) -> Bool { (path as NSString).pathExtension.lowercased() == "csv" }

    /// The columns: the JSON keys, in the order of interfaces.md.
    static let columns = Row.CodingKeys.allCases.map(\.stringValue)

    func add(_ request: FinishedRequest) {
        let row = Row(request)
        if csv {
            file.write(Data((Self.csvLine(row) + "\n").utf8))
            rows += 1
            return
        }
        // Encoding a row of numbers and short strings cannot fail.
        guard let data = try? encoder.encode(row) else { return }
        file.write(data + Data("\n".utf8))
        rows += 1
    }

    /// One CSV line (RFC 4180): a text field with a comma, quote or line break is quoted, its
    /// quotes doubled; numbers in Swift's shortest round-trip form (the same values as the JSON's,
    /// though a whole number reads "0.0" where the JSON has 0).
    static func csvLine(_ r: Row) -> String {
        func text(_ s: String?) -> String {
            guard let s else { return "" }
            guard s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return s }
            return "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\""
        }
        func number(_ x: Double?) -> String { x.map { "\($0)" } ?? "" }
        return [String(r.id), number(r.arrivalS), text(r.stage), String(r.promptTokens), String(r.outputTokens),
                String(r.cachedTokens), number(r.ttftMs), number(r.tpotMs), number(r.e2eMs), text(r.prefillInstance),
                text(r.decodeInstance), text(r.reason)].joined(separator: ",")
    }

    func close() { file.close() }
    var failure: String? { file.failure }
}

/// `--timeline-out FILE.json`: Chrome trace event format (`{"traceEvents": [...]}`), which
/// Perfetto and chrome://tracing open. One track per instance with its steps as slices (a prefill
/// batch, a decode step with its batch size, a colocated mixed step), one per prefill → decode
/// pair with its KV transfers as slices (request, tokens, plane); faults, detections,
/// recoveries, drains, rebalances and operator commands (scale among them) as instants on an
/// "operations" track. Times in microseconds of simulated time.
final class TimelineWriter {
    /// Slices kept at most; a longer run keeps its first slices and says so in a final instant.
    static let maxSlices = 2_000_000
    private static let pid = 1
    private static let operationsTrack = 0

    private struct Event: Encodable {
        var name: String
        var ph: String
        var ts: Double
        var dur: Double?
        var pid: Int
        var tid: Int
        var s: String?
        var cat: String?
        var args: [String: String]?
    }

    private let file: OutputFile
    private let encoder = JSONOutput.encoder()
    private var tracks: [String: Int] = [:]
    private var first = true
    private(set) var slices = 0
    private var dropped = 0
    private var lastTime = 0.0

    init(file: OutputFile) {
        self.file = file
        file.write(Data("{\"displayTimeUnit\":\"ms\",\"traceEvents\":[\n".utf8))
        emit(Event(name: "process_name", ph: "M", ts: 0, pid: Self.pid, tid: 0, args: ["name": "xds engine"]))
        emit(Event(name: "thread_name", ph: "M", ts: 0, pid: Self.pid, tid: Self.operationsTrack,
                   args: ["name": "operations"]))
    }

    private func emit(_ event: Event) {
        guard let data = try? encoder.encode(event) else { return }
        file.write(first ? data : Data(",\n".utf8) + data)
        first = false
    }

    private func track(_ instance: String) -> Int {
        if let tid = tracks[instance] { return tid }
        let tid = tracks.count + 1
        tracks[instance] = tid
        emit(Event(name: "thread_name", ph: "M", ts: 0, pid: Self.pid, tid: tid, args: ["name": instance]))
        emit(Event(name: "thread_sort_index", ph: "M", ts: 0, pid: Self.pid, tid: tid, args: ["sort_index": String(tid)]))
        return tid
    }

    /// Counts a slice starting at `start` against the file's slice budget; false (and counted as
    /// dropped) once the budget is spent.
    private func takeSlice(at start: Double) -> Bool {
        lastTime = max(lastTime, start)
        guard slices < Self.maxSlices else {
            dropped += 1
            return false
        }
        slices += 1
        return true
    }

    func add(_ step: InstanceStep) {
        guard takeSlice(at: step.start) else { return }
        let name = step.role == "prefill" ? "prefill batch" : step.role == "colocated" ? "mixed step" : "decode step"
        emit(Event(name: name, ph: "X", ts: step.start * 1e6, dur: step.seconds * 1e6, pid: Self.pid,
                   tid: track(step.instance), cat: step.role,
                   args: step.role == "prefill" ? nil : ["decode_batch": String(step.decodeBatch)]))
    }

    /// A KV transfer as a slice on the track of its prefill → decode pair (one transfer at a time
    /// runs on a pair, so the slices of a track never overlap).
    func add(_ transfer: FinishedTransfer) {
        guard takeSlice(at: transfer.start) else { return }
        emit(Event(name: "KV transfer", ph: "X", ts: transfer.start * 1e6, dur: transfer.seconds * 1e6, pid: Self.pid,
                   tid: track("KV \(transfer.from) → \(transfer.to)"), cat: "kv-transfer",
                   args: ["request": String(transfer.requestID), "tokens": String(transfer.tokens), "plane": transfer.plane]))
    }

    /// Operational events; per-request events are left out (the request rows carry them).
    func add(_ event: EngineEvent) {
        lastTime = max(lastTime, event.time)
        switch event.kind {
        case .requestFinished, .requestFailed, .requestRejected, .requestCancelled: return
        default: break
        }
        emit(Event(name: event.kind.rawValue, ph: "i", ts: event.time * 1e6, pid: Self.pid,
                   tid: Self.operationsTrack, s: "g", cat: event.kind.rawValue,
                   args: ["message": event.message, "severity": event.severity.rawValue]))
    }

    func close() {
        guard !file.closed else { return }
        if dropped > 0 {
            emit(Event(name: "timeline truncated", ph: "i", ts: lastTime * 1e6, pid: Self.pid, tid: Self.operationsTrack,
                       s: "g", args: ["message": "\(dropped) later steps not written (at most \(Self.maxSlices) slices)"]))
        }
        file.write(Data("\n]}\n".utf8))
        file.close()
    }

    var failure: String? { file.failure }
}
