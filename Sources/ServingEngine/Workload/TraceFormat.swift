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
        while let line = reader.nextLine() {
            let text = String(decoding: line, as: UTF8.self).trimmingWhitespace
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

/// One parsed trace row before ids and relative times are assigned.
struct TraceRow {
    var time: Double  // seconds, absolute within the file's own clock
    var promptTokens: Int
    var outputTokens: Int
    var hashIDs: [UInt64]
}

enum TraceRowParser {
    /// Parses one data line; nil for a blank line; throws a message without location.
    static func parse(_ line: ArraySlice<UInt8>, format: TraceFormat) throws(RowProblem) -> TraceRow? {
        if line.allSatisfy({ $0 == 32 || $0 == 9 }) { return nil }
        let row = format == .azureCSV ? try parseAzure(line) : try parseMooncake(line)
        if row.promptTokens <= 0 { throw RowProblem("prompt length must be at least 1, got \(row.promptTokens)") }
        if row.outputTokens < 0 { throw RowProblem("output length must not be negative, got \(row.outputTokens)") }
        return row
    }

    struct RowProblem: Error { let message: String; init(_ m: String) { message = m } }

    static func parseAzure(_ line: ArraySlice<UInt8>) throws(RowProblem) -> TraceRow {
        let fields = line.split(separator: UInt8(ascii: ","), omittingEmptySubsequences: false)
        guard fields.count == 3 else { throw RowProblem("expected 3 comma-separated fields, got \(fields.count)") }
        let time = try azureTimestamp(String(decoding: fields[0], as: UTF8.self).trimmingWhitespace)
        guard let prompt = Int(String(decoding: fields[1], as: UTF8.self).trimmingWhitespace) else {
            throw RowProblem("ContextTokens is not an integer: '\(String(decoding: fields[1], as: UTF8.self))'")
        }
        guard let output = Int(String(decoding: fields[2], as: UTF8.self).trimmingWhitespace) else {
            throw RowProblem("GeneratedTokens is not an integer: '\(String(decoding: fields[2], as: UTF8.self))'")
        }
        return TraceRow(time: time, promptTokens: prompt, outputTokens: output, hashIDs: [])
    }

    /// `2023-11-16 18:17:03.9799600` → seconds since 1970-01-01 (UTC is assumed; only
    /// differences matter). Parsed by hand: DateFormatter is slow and locale-sensitive.
    static func azureTimestamp(_ text: String) throws(RowProblem) -> Double {
        let bad = RowProblem("TIMESTAMP is not 'YYYY-MM-DD HH:MM:SS[.fraction]': '\(text)'")
        let parts = text.split(separator: " ")
        guard parts.count == 2 else { throw bad }
        let date = parts[0].split(separator: "-").map { Int($0) }
        let clock = parts[1].split(separator: ":")
        guard date.count == 3, clock.count == 3, let year = date[0], let month = date[1], let day = date[2],
            let hour = Int(clock[0]), let minute = Int(clock[1]), let second = Double(clock[2]),
            (1...12).contains(month), (1...31).contains(day), (0...23).contains(hour), (0...59).contains(minute),
            second >= 0, second < 61
        else { throw bad }
        return Double(daysFromCivil(year: year, month: month, day: day)) * 86_400
            + Double(hour * 3_600 + minute * 60) + second
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
            guard n == n.rounded(), abs(n) < 1e15 else { throw RowProblem("\"\(key)\" must be an integer, got \(n)") }
            return Int(n)
        }
        var hashes: [UInt64] = []
        if let value = fields["hash_ids"] {
            guard case .numbers(let ids) = value else { throw RowProblem("\"hash_ids\" must be an array of integers") }
            hashes = ids.map { StableHash.mix(UInt64(bitPattern: Int64($0))) }
        }
        return TraceRow(
            time: try number("timestamp") / 1_000, promptTokens: try integer("input_length"),
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
