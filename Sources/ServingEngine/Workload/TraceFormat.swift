import PodModel
import SimKit

/// The trace formats `--workload FILE` understands, recognised by content (interfaces.md).
///
/// ```swift
/// let format = try TraceFormat.detect(path: "traces/mooncake_conversation.jsonl")  // .mooncake
/// ```
public enum TraceFormat: String, Sendable, Equatable {
    /// Azure LLM inference trace CSV: `TIMESTAMP,ContextTokens,GeneratedTokens`.
    case azureCSV = "azure-csv"
    /// Mooncake JSONL: `timestamp` (ms), `input_length`, `output_length`, `hash_ids`.
    case mooncake = "mooncake-jsonl"

    /// Mooncake's hash ids each stand for one 512-token block (Mooncake FAST'25 trace README).
    public static let mooncakeBlockTokens = 512

    /// Looks at the first non-empty line of the file.
    public static func detect(path: String) throws(WorkloadError) -> TraceFormat {
        var reader = try LineReader(path: path)
        return try detect(&reader)
    }

    static func detect(_ reader: inout LineReader) throws(WorkloadError) -> TraceFormat {
        let path = reader.path
        while let line = try reader.nextLine() {
            let text = String(decoding: line.dropByteOrderMark, as: UTF8.self).trimmingWhitespace
            if text.isEmpty { continue }
            if text.replacingSpaces.lowercased().hasPrefix("timestamp,contexttokens,generatedtokens") { return .azureCSV }
            if text.hasPrefix("{"), text.contains("\"input_length\"") { return .mooncake }
            throw WorkloadError(
                "\(path):\(reader.lineNumber): unknown trace format; expected an Azure LLM CSV header "
                    + "'TIMESTAMP,ContextTokens,GeneratedTokens' or Mooncake JSONL with input_length")
        }
        throw WorkloadError("\(path): empty trace file")
    }
}

/// The ranges every trace field must fall in; messages name them.
public enum TraceLimits {
    /// Ceiling on a token count: ten million. No model's context window comes near it; the
    /// caller passes the model's own window (``TraceWorkload/check(path:maxContextTokens:)``),
    /// which is normally far smaller.
    public static let maxTokens = 10_000_000
    /// Latest Mooncake `timestamp`: 10^13 ms, the simulator's longest time
    /// (``SimKit/SimTime/maxDuration``, about 317 years).
    public static let maxMooncakeTimestampMs = 1e13
    /// Azure TIMESTAMP years accepted.
    public static let years = 1900...9999
    /// Largest `hash_ids` entry: 2^53, the largest integer a JSON number holds exactly.
    public static let maxHashID = 9_007_199_254_740_992.0
}

/// One parsed trace row before ids and relative times are assigned.
struct TraceRow {
    var time: Double  // seconds, absolute within the file's own clock
    var promptTokens: Int
    var outputTokens: Int
    var hashIDs: [UInt64]
}

enum TraceRowParser {
    /// Parses one data line; nil for a blank line; throws a message without location.
    /// Token counts are checked against `maxContext` (the model's window, at most
    /// ``TraceLimits/maxTokens``).
    /// With `clip`, a prompt longer than the window is cut to it and the output to what the
    /// window leaves (prompt + output ≤ window, as Vidur replays such traces), keeping the hash
    /// ids of the blocks that remain; without it such a row is refused.
    static func parse(
        _ line: ArraySlice<UInt8>, format: TraceFormat, maxContext: Int = TraceLimits.maxTokens, clip: Bool = false
    ) throws(RowProblem) -> TraceRow? {
        if line.allSatisfy({ $0 == 32 || $0 == 9 }) { return nil }
        let names = format == .azureCSV ? ("ContextTokens", "GeneratedTokens") : ("input_length", "output_length")
        var row = format == .azureCSV ? try parseAzure(line) : try parseMooncake(line)
        if clip, row.promptTokens >= 1, row.outputTokens >= 0, row.promptTokens + row.outputTokens > maxContext {
            // At least one token of the window is left for the output (a request generates one).
            row.promptTokens = min(row.promptTokens, max(1, maxContext - 1))
            row.outputTokens = min(row.outputTokens, max(0, maxContext - row.promptTokens))
            let kept = (row.promptTokens + TraceFormat.mooncakeBlockTokens - 1) / TraceFormat.mooncakeBlockTokens
            if row.hashIDs.count > kept { row.hashIDs.removeLast(row.hashIDs.count - kept) }
        }
        if row.promptTokens < 1 {
            throw RowProblem("prompt length must be at least 1, got \(names.0) \(row.promptTokens)")
        }
        if row.outputTokens < 0 {
            throw RowProblem("output length must not be negative, got \(names.1) \(row.outputTokens)")
        }
        if row.promptTokens > maxContext {
            throw RowProblem(
                "\(names.0) \(row.promptTokens) is longer than the model's context window; expected 1…\(maxContext) tokens "
                    + "(--clip-to-context cuts such prompts to the window)")
        }
        if row.outputTokens > maxContext {
            throw RowProblem(
                "\(names.1) \(row.outputTokens) is longer than the model's context window; expected 0…\(maxContext) tokens")
        }
        let blocks = (row.promptTokens + TraceFormat.mooncakeBlockTokens - 1) / TraceFormat.mooncakeBlockTokens
        if row.hashIDs.count > blocks {
            throw RowProblem(
                "hash_ids has \(row.hashIDs.count) entries but input_length \(row.promptTokens) fills at most \(blocks) "
                    + "block\(blocks == 1 ? "" : "s") of \(TraceFormat.mooncakeBlockTokens) tokens")
        }
        return row
    }

    struct RowProblem: Error { let message: String; init(_ m: String) { message = m } }

    static func parseAzure(_ line: ArraySlice<UInt8>) throws(RowProblem) -> TraceRow {
        let fields = line.split(separator: UInt8(ascii: ","), omittingEmptySubsequences: false)
        guard fields.count == 3 else { throw RowProblem("expected 3 comma-separated fields, got \(fields.count)") }
        let time = try azureTimestamp(String(decoding: fields[0], as: UTF8.self).trimmingWhitespace)
        let prompt = try tokenCount(fields[1], field: "ContextTokens")
        let output = try tokenCount(fields[2], field: "GeneratedTokens")
        return TraceRow(time: time, promptTokens: prompt, outputTokens: output, hashIDs: [])
    }

    /// A decimal integer field; one beyond ``TraceLimits/maxTokens`` (or beyond Int) gets a
    /// message naming the range rather than "not an integer".
    static func tokenCount(_ bytes: ArraySlice<UInt8>, field: String) throws(RowProblem) -> Int {
        let text = String(decoding: bytes, as: UTF8.self).trimmingWhitespace
        let digits = text.hasPrefix("-") || text.hasPrefix("+") ? text.dropFirst() : Substring(text)
        guard !digits.isEmpty, digits.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }) else {
            throw RowProblem("\(field) is not an integer: \(InputEcho.quoted(text))")
        }
        // Compared, not abs(): abs(Int.min) traps.
        guard let value = Int(text), value >= -TraceLimits.maxTokens, value <= TraceLimits.maxTokens else {
            throw RowProblem("\(field) \(InputEcho.clean(text)) is out of range; expected 0…\(TraceLimits.maxTokens) tokens")
        }
        return value
    }

    /// `2023-11-16 18:17:03.9799600` → seconds since 1970-01-01 (UTC is assumed; only
    /// differences matter). Parsed by hand: DateFormatter is slow and locale-sensitive.
    static func azureTimestamp(_ text: String) throws(RowProblem) -> Double {
        let bad = RowProblem(
            "TIMESTAMP is not 'YYYY-MM-DD HH:MM:SS[.fraction]' with a year \(TraceLimits.years.lowerBound)–"
                + "\(TraceLimits.years.upperBound): \(InputEcho.quoted(text))")
        guard text.utf8.count <= 64 else { throw bad }
        let parts = text.split(separator: " ")
        guard parts.count == 2 else { throw bad }
        let date = parts[0].split(separator: "-", omittingEmptySubsequences: false).map { plainInt($0) }
        let clock = parts[1].split(separator: ":", omittingEmptySubsequences: false)
        guard date.count == 3, clock.count == 3, let year = date[0], let month = date[1], let day = date[2],
            let hour = plainInt(clock[0]), let minute = plainInt(clock[1]), let second = plainSeconds(clock[2]),
            TraceLimits.years.contains(year), (1...12).contains(month), (1...31).contains(day),
            (0...23).contains(hour), (0...59).contains(minute), second >= 0, second < 61
        else { throw bad }
        return Double(daysFromCivil(year: year, month: month, day: day)) * 86_400
            + Double(hour * 3_600 + minute * 60) + second
    }

    /// 1–4 ASCII digits, or nil.
    private static func plainInt(_ text: Substring) -> Int? {
        guard (1...4).contains(text.utf8.count), text.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }) else { return nil }
        return Int(text)
    }

    /// `SS` or `SS.fraction` in ASCII digits, or nil (no `nan`, `inf`, exponents or hex).
    private static func plainSeconds(_ text: Substring) -> Double? {
        guard !text.isEmpty, text.utf8.first != UInt8(ascii: "."),
            text.utf8.allSatisfy({ ($0 >= 48 && $0 <= 57) || $0 == UInt8(ascii: ".") }),
            text.utf8.filter({ $0 == UInt8(ascii: ".") }).count <= 1
        else { return nil }
        return Double(text)
    }

    /// Days since 1970-01-01 in the proleptic Gregorian calendar (H. Hinnant's algorithm).
    static func daysFromCivil(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    static func parseMooncake(_ line: ArraySlice<UInt8>) throws(RowProblem) -> TraceRow {
        var scanner = FlatJSONScanner(bytes: line)
        var fields: [String: FlatJSONScanner.Value] = [:]
        do { fields = try scanner.object() } catch { throw RowProblem(error.message) }
        func number(_ key: String) throws(RowProblem) -> Double {
            guard let value = fields[key] else { throw RowProblem("missing \"\(key)\"") }
            guard case .number(let n) = value else { throw RowProblem("\"\(key)\" must be a number") }
            return n
        }
        func integer(_ key: String) throws(RowProblem) -> Int {
            let n = try number(key)
            guard n.isFinite, n == n.rounded() else { throw RowProblem("\"\(key)\" must be an integer, got \(OperatorCommand.format(n))") }
            guard abs(n) <= Double(TraceLimits.maxTokens) else {
                throw RowProblem("\"\(key)\" \(OperatorCommand.format(n)) is out of range; expected 0…\(TraceLimits.maxTokens) tokens")
            }
            return Int(n)
        }
        var hashes: [UInt64] = []
        if let value = fields["hash_ids"] {
            guard case .numbers(let ids) = value else { throw RowProblem("\"hash_ids\" must be an array of integers") }
            hashes.reserveCapacity(ids.count)
            for (i, id) in ids.enumerated() {
                guard id.isFinite, id == id.rounded(), id >= 0, id <= TraceLimits.maxHashID else {
                    throw RowProblem(
                        "\"hash_ids\"[\(i)] must be an integer between 0 and \(Int(TraceLimits.maxHashID)), got \(OperatorCommand.format(id))")
                }
                hashes.append(StableHash.mix(UInt64(id)))
            }
        }
        let ms = try number("timestamp")
        guard ms.isFinite, ms >= 0, ms <= TraceLimits.maxMooncakeTimestampMs else {
            throw RowProblem("\"timestamp\" must be between 0 and 10000000000000 ms, got \(OperatorCommand.format(ms))")
        }
        return TraceRow(
            time: ms / 1_000, promptTokens: try integer("input_length"),
            outputTokens: try integer("output_length"), hashIDs: hashes)
    }
}

extension String {
    var trimmingWhitespace: String {
        var s = Substring(self)
        while let c = s.first, c.isWhitespace { s.removeFirst() }
        while let c = s.last, c.isWhitespace { s.removeLast() }
        return String(s)
    }
    var replacingSpaces: String { String(filter { !$0.isWhitespace }) }
}

extension ArraySlice<UInt8> {
    /// Without a leading UTF-8 byte-order mark (spreadsheet exports add one).
    var dropByteOrderMark: ArraySlice<UInt8> {
        starts(with: [0xEF, 0xBB, 0xBF]) ? dropFirst(3) : self
    }
}
