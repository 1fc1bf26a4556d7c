import PodModel
import SimKit

/// The trace formats `--workload FILE` understands, recognised by content (interfaces.md).
///
/// ```swift
/// let format = try TraceFormat.detect(path: "traces/mooncake_conversation.jsonl")  // .mooncake
/// ```
public enum TraceFormat: String, Sendable, Equatable {
    /// Azure LLM inference trace CSV (2023 and 2024): `TIMESTAMP,ContextTokens,GeneratedTokens`.
    case azureCSV = "azure-csv"
    /// BurstGPT CSV: `Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type`.
    case burstGPT = "burstgpt-csv"
    /// Mooncake JSONL: `timestamp` (ms), `input_length`, `output_length`, `hash_ids`.
    case mooncake = "mooncake-jsonl"

    /// Mooncake's hash ids each stand for one 512-token block (Mooncake FAST'25 trace README).
    public static let mooncakeBlockTokens = 512

    /// Looks at the first non-empty line of the file.
    public static func detect(path: String) throws(WorkloadError) -> TraceFormat {
        var reader = try LineReader(path: path)
        return try detect(&reader).format
    }

    /// The format, and for a CSV the columns its header names.
    static func detect(_ reader: inout LineReader) throws(WorkloadError) -> (format: TraceFormat, columns: CSVColumns?) {
        let path = reader.path
        while let line = try reader.nextLine() {
            // A compressed or UTF-16 file read as text failed on whatever its bytes happened to
            // hold (a gzip file with a 0x0D in it was told it had classic Mac line endings).
            if reader.lineNumber == 1, let encoding = Self.unreadableEncoding(line) {
                throw WorkloadError("\(path):1: \(encoding)")
            }
            let bytes = line.dropByteOrderMark
            let text = String(decoding: bytes, as: UTF8.self).trimmingWhitespace
            if text.isEmpty { continue }
            // Classic Mac line endings: the whole file reads as one line, which would be refused
            // as an unknown format or a broken first row without saying why. Only when what comes
            // before the first carriage return is a trace's first line: a binary file (an
            // executable, random bytes) with a 0x0D in its first "line" was told to convert its
            // line endings, where it is no trace at all.
            if (bytes.last == 0x0D ? bytes.dropLast() : bytes).contains(0x0D), Self.isFirstLine(bytes.prefix { $0 != 0x0D }) {
                throw WorkloadError(
                    "\(path):\(reader.lineNumber): lines end in a bare carriage return (classic Mac line endings); "
                        + "convert them to newlines first, e.g. tr '\\r' '\\n' < IN > OUT")
            }
            if text.hasPrefix("{"), text.contains("\"input_length\"") { return (.mooncake, nil) }
            if case .fields(let fields)? = try? CSVRecord.split(bytes), let columns = CSVColumns(header: fields) {
                if let twice = columns.repeated {
                    throw WorkloadError("\(path):\(reader.lineNumber): the header names \(twice.name) twice (columns "
                        + "\(twice.first + 1) and \(twice.second + 1)); which one holds the field is ambiguous, so remove or rename one")
                }
                return (columns.format, columns)
            }
            throw WorkloadError(
                "\(path):\(reader.lineNumber): unknown trace format; expected an Azure LLM CSV header "
                    + "'TIMESTAMP,ContextTokens,GeneratedTokens', a BurstGPT CSV header "
                    + "'Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type' "
                    + "or Mooncake JSONL with input_length")
        }
        throw WorkloadError("\(path): empty trace file")
    }
}

extension TraceFormat {
    /// True if `line` opens a trace of a known format: a Mooncake row or a known CSV header.
    static func isFirstLine(_ line: ArraySlice<UInt8>) -> Bool {
        let text = String(decoding: line, as: UTF8.self).trimmingWhitespace
        if text.hasPrefix("{"), text.contains("\"input_length\"") { return true }
        if case .fields(let fields)? = try? CSVRecord.split(line), CSVColumns(header: fields) != nil { return true }
        return false
    }

    /// What a file that starts with `first` (its first line) is, when it is not UTF-8 text a
    /// trace reader can read: compressed (by its magic number) or UTF-16 (by its byte-order
    /// mark); the message says how to make it readable. Nil for anything else.
    static func unreadableEncoding(_ first: ArraySlice<UInt8>) -> String? {
        let compressed: [(magic: [UInt8], kind: String, tool: String)] = [
            ([0x1F, 0x8B], "gzip", "gunzip"), ([0x28, 0xB5, 0x2F, 0xFD], "zstd", "unzstd"),
            // "BZh" and then a block-size digit 1…9 (a text header starting so is not a trace's).
            ([0x42, 0x5A, 0x68], "bzip2", "bunzip2"), ([0xFD, 0x37, 0x7A, 0x58, 0x5A, 0x00], "xz", "unxz"),
        ]
        for c in compressed where first.starts(with: c.magic)
            && (c.kind != "bzip2" || first.dropFirst(3).first.map { (0x31...0x39).contains($0) } == true) {
            return "the file is \(c.kind)-compressed; decompress it first (\(c.tool) -k FILE)"
        }
        if first.starts(with: [0x50, 0x4B, 0x03, 0x04]) {
            return "the file is a zip archive; extract the trace from it first (unzip FILE)"
        }
        if first.starts(with: [0xFF, 0xFE]) || first.starts(with: [0xFE, 0xFF]) {
            return "the file is UTF-16 text; save it as UTF-8 (e.g. iconv -f UTF-16 -t UTF-8 IN > OUT)"
        }
        return nil
    }
}

/// Where a CSV trace keeps each field, from its header (names compared without case, spaces or
/// underscores; columns in any order; other columns are ignored, but every row has as many
/// fields as the header).
struct CSVColumns: Equatable {
    var format: TraceFormat
    var count: Int
    var timestamp: Int
    var prompt: Int
    var output: Int
    /// BurstGPT's `Total tokens`, checked to be prompt + output when present.
    var total: Int?
    /// Header names as written, for messages.
    var names: [String]

    init?(header: [ArraySlice<UInt8>]) {
        let raw = header.map { String(decoding: $0, as: UTF8.self) }
        names = raw.map { InputEcho.clean($0) }
        let keys = raw.map { String($0.lowercased().filter { !$0.isWhitespace && $0 != "_" }) }
        func column(_ key: String) -> Int? { keys.firstIndex(of: key) }
        count = header.count
        guard let time = column("timestamp") else { return nil }
        timestamp = time
        if let p = column("contexttokens"), let o = column("generatedtokens") {
            format = .azureCSV
            (prompt, output, total) = (p, o, nil)
        } else if let p = column("requesttokens"), let o = column("responsetokens") {
            format = .burstGPT
            (prompt, output, total) = (p, o, column("totaltokens"))
        } else {
            return nil
        }
        // A field read from one of two same-named columns is a guess (the first was read, and the
        // other ignored): the header is refused instead.
        for used in [timestamp, prompt, output] + (total.map { [$0] } ?? []) {
            if let again = keys.indices.first(where: { $0 != used && keys[$0] == keys[used] }) {
                repeated = RepeatedColumn(name: names[used], first: min(used, again), second: max(used, again))
                break
            }
        }
    }

    /// A column the trace is read from whose name the header repeats: its name as written and
    /// the two column indices (0-based).
    var repeated: RepeatedColumn?

    struct RepeatedColumn: Equatable {
        var name: String
        var first: Int
        var second: Int
    }
}

/// The ranges every trace field must fall in; messages name them.
public enum TraceLimits {
    /// Ceiling on a token count: ten million. No model's context window comes near it; the
    /// caller passes the model's own window (``TraceWorkload/check(path:maxContextTokens:)``),
    /// which is normally far smaller.
    public static let maxTokens = 10_000_000
    /// What a count beyond ``maxTokens`` is told. --clip-to-context cuts counts up to it to the
    /// window; beyond it a row is refused even then (a count no model comes near is a broken row,
    /// and the old wording, "within the model's context window", read as if clipping applied).
    static let tokenCountRange = "expected a token count within the model's context window "
        + "(at most 10000000 even with --clip-to-context, which cuts counts up to that to the window)"
    /// Latest Mooncake `timestamp`: 10^13 ms, the simulator's longest time
    /// (``SimKit/SimTime/maxDuration``, about 317 years).
    public static let maxMooncakeTimestampMs = 1e13
    /// Azure TIMESTAMP years accepted.
    public static let years = 1900...9999
    /// Largest `hash_ids` entry: UInt64's largest. Ids are read as integers from their digits (a
    /// Double rounds 2^53 + 1 to 2^53: two ids in the file became one, and a refusal echoed a
    /// number the file never held). One written with a fraction or exponent (`1e3`) is read as a
    /// Double and taken when it is a whole number up to ``maxExactHashID``, where it is exact.
    public static let maxHashID = UInt64.max
    /// Largest `hash_ids` entry taken when written with a fraction or exponent: 2^53 − 1.
    public static let maxExactHashID = 9_007_199_254_740_991.0
}

/// One parsed trace row before ids and relative times are assigned.
struct TraceRow {
    var time: Double  // seconds, absolute within the file's own clock
    var promptTokens: Int
    var outputTokens: Int
    var hashIDs: [UInt64]
    /// A row the trace's own service failed (BurstGPT, 0 response tokens): not replayed.
    var failedInSource = false
    /// A row --clip-to-context cut to the model's window.
    var clipped = false
}

enum TraceRowParser {
    /// Checks a parsed row; throws a message without location. Token counts are checked against
    /// `maxContext` (the model's window, at most ``TraceLimits/maxTokens``).
    /// With `clip`, a prompt longer than the window is cut to it and the output to what the
    /// window leaves (prompt + output ≤ window, as Vidur replays such traces), keeping the hash
    /// ids of the blocks that remain; without it such a row is refused.
    static func checked(
        _ parsed: TraceRow, names: (prompt: String, output: String), maxContext: Int = TraceLimits.maxTokens,
        clip: Bool = false
    ) throws(RowProblem) -> TraceRow {
        var row = parsed
        // A row asking for no output is served one token (a prefill always yields the first), and
        // the window holds what is served: `4096,0` on a 4,096-token window was replayed as 4,097
        // tokens while `4096,1`, the same request, was refused.
        if clip, row.promptTokens >= 1, row.outputTokens >= 0, row.promptTokens + max(1, row.outputTokens) > maxContext {
            // At least one token of the window is left for the output (a request generates one).
            row.promptTokens = min(row.promptTokens, max(1, maxContext - 1))
            row.outputTokens = min(row.outputTokens, max(0, maxContext - row.promptTokens))
            let kept = (row.promptTokens + TraceFormat.mooncakeBlockTokens - 1) / TraceFormat.mooncakeBlockTokens
            if row.hashIDs.count > kept { row.hashIDs.removeLast(row.hashIDs.count - kept) }
            row.clipped = true
        }
        if row.promptTokens < 1 {
            throw RowProblem("prompt length must be at least 1, got \(names.prompt) \(row.promptTokens); expected 1…\(maxContext) tokens")
        }
        if row.outputTokens < 0 {
            throw RowProblem("output length must not be negative, got \(names.output) \(row.outputTokens); expected 0…\(maxContext) tokens")
        }
        if row.promptTokens > maxContext {
            throw RowProblem(
                "\(names.prompt) \(row.promptTokens) is longer than the model's context window; expected 1…\(maxContext) tokens "
                    + "(--clip-to-context cuts such prompts to the window)")
        }
        if row.outputTokens > maxContext {
            throw RowProblem(
                "\(names.output) \(row.outputTokens) is longer than the model's context window; expected 0…\(maxContext) tokens")
        }
        // Prompt and output share the window (the HTTP API and the synthetic traffic hold to it):
        // such a row was replayed as it was, past the window.
        let served = max(1, row.outputTokens)
        if row.promptTokens + served > maxContext {
            let asked = row.outputTokens == 0 ? " (served as 1: a prefill always yields the first token)" : ""
            throw RowProblem(
                "\(names.prompt) \(row.promptTokens) + \(names.output) \(row.outputTokens)\(asked) = \(row.promptTokens + served) "
                    + "tokens is longer than the model's context window of \(maxContext) (--clip-to-context cuts such rows to the window)")
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

    /// One JSONL line: nil when blank.
    static func parseMooncakeLine(
        _ line: ArraySlice<UInt8>, maxContext: Int = TraceLimits.maxTokens, clip: Bool = false
    ) throws(RowProblem) -> TraceRow? {
        if line.allSatisfy({ $0 == 32 || $0 == 9 }) { return nil }
        return try checked(try parseMooncake(line), names: ("input_length", "output_length"), maxContext: maxContext, clip: clip)
    }

    /// One CSV record's fields: nil when blank. A BurstGPT row with 0 response tokens is a request
    /// the original service failed (BurstGPT's README); it comes back marked ``TraceRow/failedInSource``.
    static func parseCSV(
        _ fields: [ArraySlice<UInt8>], columns: CSVColumns, clock: inout WallClockTimestamp,
        maxContext: Int = TraceLimits.maxTokens, clip: Bool = false
    ) throws(RowProblem) -> TraceRow? {
        if fields.count == 1, fields[0].isEmpty { return nil }
        guard fields.count == columns.count else {
            if let header = headerProblem(fields, columns: columns) { throw header }
            throw RowProblem("expected \(columns.count) comma-separated fields as the header has, got \(fields.count)")
        }
        let names = (columns.names[columns.prompt], columns.names[columns.output])
        let prompt: Int, output: Int, time: Double
        do throws(RowProblem) {
            prompt = try tokenCount(fields[columns.prompt], field: names.0)
            output = try tokenCount(fields[columns.output], field: names.1)
            time = try timestamp(fields[columns.timestamp], columns: columns, clock: &clock)
            // BurstGPT's `Total tokens` is checked to be the sum, not held to a count's ceiling: it
            // was, and a row whose `Request tokens` passed the window by millions was refused
            // naming `Total tokens` as out of range, not the count at fault.
            if let t = columns.total {
                let total = try tokenCount(fields[t], field: columns.names[t], upTo: .max)
                guard total == prompt + output else {
                    throw RowProblem("\(columns.names[t]) \(total) is not \(names.0) + \(names.1) (\(prompt) + \(output))")
                }
            }
        } catch {
            // Read in the order that is quickest for a good row; a refused one is told its first
            // bad field in column order (`,,` was blamed on ContextTokens, though TIMESTAMP, before
            // it, is as empty), or that it is a header.
            throw headerProblem(fields, columns: columns) ?? firstBadField(fields, columns: columns, clock: clock) ?? error
        }
        var row = TraceRow(time: time, promptTokens: prompt, outputTokens: output, hashIDs: [])
        if columns.format == .burstGPT, output == 0 {
            // Skipped, but still a row of the file: a negative count is a broken row, not a
            // request the traced service failed (the same count in a replayed row is refused).
            guard prompt >= 0 else {
                throw RowProblem("prompt length must not be negative, got \(names.0) \(prompt); a token count is a whole number "
                    + "from 0 (a row with 0 \(names.1), a request the traced service failed, is skipped, but its fields are checked)")
            }
            row.failedInSource = true
            return row
        }
        row = try checked(row, names: names, maxContext: maxContext, clip: clip)
        return row
    }

    /// A row's time: BurstGPT's seconds from the trace's start, else an Azure wall-clock
    /// TIMESTAMP read by `clock`.
    static func timestamp(_ field: ArraySlice<UInt8>, columns: CSVColumns, clock: inout WallClockTimestamp) throws(RowProblem) -> Double {
        let name = columns.names[columns.timestamp]
        if columns.format == .burstGPT { return try relativeSeconds(field, field: name) }
        do { return try clock.seconds(field) } catch {
            let text = String(decoding: field, as: UTF8.self)
            if error.mixedOffsets {
                throw RowProblem(
                    "\(name) \(InputEcho.quoted(text)) "
                        + "mixes UTC offsets with the rows before it (some rows give an offset such as +00:00 or Z, "
                        + "some none, and a time with none is taken as UTC); give every row an offset, or none")
            }
            throw RowProblem(
                "\(name) is not 'YYYY-MM-DD HH:MM:SS[.fraction][Z|±HH:MM]' (a real date and time) "
                    + "with a year \(TraceLimits.years.lowerBound)–\(TraceLimits.years.upperBound): \(InputEcho.quoted(text))")
        }
    }

    /// The problem of the first field of a refused row, in column order, that does not read on
    /// its own (nil when each does: the refusal is about them together). `clock` is a copy: the
    /// row is refused, and the clock goes on from the row before.
    static func firstBadField(_ fields: [ArraySlice<UInt8>], columns: CSVColumns, clock: WallClockTimestamp) -> RowProblem? {
        var clock = clock
        for column in ([columns.timestamp, columns.prompt, columns.output] + (columns.total.map { [$0] } ?? [])).sorted() {
            do throws(RowProblem) {
                if column == columns.timestamp {
                    _ = try timestamp(fields[column], columns: columns, clock: &clock)
                } else {
                    _ = try tokenCount(fields[column], field: columns.names[column],
                                       upTo: column == columns.total ? .max : TraceLimits.maxTokens)
                }
            } catch { return error }
        }
        return nil
    }

    /// A row that is a header line (files joined with `cat` repeat theirs partway down): the
    /// first field read from it was told bad ("ContextTokens is not an integer: 'ContextTokens'"),
    /// as if one field of a data row were wrong. Nil for any other row. Asked only of a row
    /// already refused (a header's prompt column holds no integer), so a good row pays nothing.
    static func headerProblem(_ fields: [ArraySlice<UInt8>], columns: CSVColumns) -> RowProblem? {
        // A file joined on with its byte-order mark repeats its header behind one: the first
        // name read "\u{FEFF}TIMESTAMP", no header's, and the row was told a bad data row.
        var fields = fields
        if let first = fields.first { fields[0] = first.dropByteOrderMark }
        guard let header = CSVColumns(header: fields) else { return nil }
        let line = InputEcho.quoted(header.names.joined(separator: ","), limit: 100)
        if header.format == columns.format, header.names.count == columns.names.count {
            return RowProblem("this line repeats the header (\(line)), it is not a data row; a trace has one header, "
                + "on its first line: remove this one (files joined with cat keep each file's header)")
        }
        return RowProblem("this line is a header (\(line)), not a data row; a trace has one header, on its first line: "
            + "remove this one (files joined with cat keep each file's header)")
    }

    /// BurstGPT's `Timestamp`: seconds since the trace began, a plain decimal (digits, with an
    /// optional fraction), at most ``SimKit/SimTime/maxDuration``.
    static func relativeSeconds(_ bytes: ArraySlice<UInt8>, field: String) throws(RowProblem) -> Double {
        let text = String(decoding: bytes, as: UTF8.self)
        let parts = text.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        guard let whole = parts.first, !whole.isEmpty, parts.allSatisfy({ !$0.isEmpty && $0.utf8.allSatisfy { $0 >= 48 && $0 <= 57 } }),
              let value = Double(text), value <= SimTime.maxDuration
        else {
            throw RowProblem("\(field) is not a plain decimal number of seconds (digits, optional fraction) between 0 and 10000000000: \(InputEcho.quoted(text))")
        }
        return value
    }

    /// A decimal integer field; one beyond `limit` (or beyond Int) gets a message naming the
    /// range rather than "not an integer".
    static func tokenCount(_ bytes: ArraySlice<UInt8>, field: String, upTo limit: Int = TraceLimits.maxTokens) throws(RowProblem) -> Int {
        // Every row takes this path: 1 to 7 plain digits (below TraceLimits.maxTokens) are read
        // from the bytes; anything else (signs, spaces, long or bad fields) goes the String way
        // below, which words the messages. (The String way was 5% of an Azure code replay.)
        if !bytes.isEmpty, bytes.count <= 7 {
            var value = 0
            var plain = true
            for c in bytes {
                guard c >= 48 && c <= 57 else { plain = false; break }
                value = value * 10 + Int(c - 48)
            }
            if plain { return value }
        }
        let text = String(decoding: bytes, as: UTF8.self)
        func isDigits(_ s: Substring) -> Bool { !s.isEmpty && s.utf8.allSatisfy { $0 >= 48 && $0 <= 57 } }
        // Plain digits, or a minus before them (a negative count is a number, told its range
        // by `checked`). A plus sign or spaces inside the field (`"+3180"`, `" 3180"` quoted,
        // `3180` and a no-break space) were trimmed away and read as 3180: a count is written
        // in plain digits, and a field written otherwise is one the file did not mean as one.
        // (Spaces around an unquoted field are the CSV's, not the field's: CSVRecord drops them.)
        guard isDigits(text.hasPrefix("-") ? text.dropFirst() : Substring(text)) else {
            let trimmed = text.trimmingWhitespace
            if isDigits(trimmed.hasPrefix("-") || trimmed.hasPrefix("+") ? trimmed.dropFirst() : Substring(trimmed)) {
                throw RowProblem("\(field) must be written in plain digits (no sign or spaces), got \(InputEcho.quoted(text))")
            }
            throw RowProblem("\(field) is not an integer: \(InputEcho.quoted(text)); expected a whole number of tokens up to "
                + "the model's context window (at most \(TraceLimits.maxTokens))")
        }
        // Compared, not abs(): abs(Int.min) traps.
        guard let value = Int(text), value >= -limit, value <= limit else {
            let range = limit == TraceLimits.maxTokens ? TraceLimits.tokenCountRange
                : "expected the sum of the row's two token counts"
            throw RowProblem("\(field) \(InputEcho.clean(text)) is out of range; \(range)")
        }
        return value
    }

    private static let mooncakeNames = ["timestamp", "input_length", "output_length", "hash_ids"]
    private static let mooncakeKeys = JSONLine.keys(mooncakeNames)
    /// What each of ``mooncakeNames`` takes, for a message about a value of the wrong kind: "must
    /// be a number" or "NaN … is not a JSON number" left the reader to guess the range.
    private static let mooncakeRanges = [
        "a number of ms from 0 to \(Int(TraceLimits.maxMooncakeTimestampMs))",
        "a whole number of tokens from 1 to the model's context window (at most \(TraceLimits.maxTokens))",
        "a whole number of tokens from 0 to the model's context window (at most \(TraceLimits.maxTokens))",
        "an array of integers from 0 to \(TraceLimits.maxHashID)",
    ]

    /// A line in the published trace's own layout, `{"timestamp": T, "input_length": P,
    /// "output_length": O, "hash_ids": [H, H, …]}` with plain integers (1 to 15 digits, no
    /// leading zero) and nothing else on the line, read in one pass with no intermediate values;
    /// nil for any other text (other spacing or key order, signs, fractions, exponents, escapes,
    /// a value out of range), which ``parseMooncake(_:)``'s JSON reader then reads, or words the
    /// problem of. A line this accepts, the JSON reader reads to the same row: an integer of at
    /// most 15 digits is exact as a Double (so the same numbers), and every range it checks holds
    /// (issue 12: the general reader cost ~10 K instructions per row, 4% of a Mooncake hour).
    static func parseCanonicalMooncake(_ line: ArraySlice<UInt8>) -> TraceRow? {
        line.withUnsafeBufferPointer { bytes -> TraceRow? in
            var scan = CanonicalScan(bytes: bytes)
            guard scan.skip("{\"timestamp\": "), let ms = scan.integer(), Double(ms) <= TraceLimits.maxMooncakeTimestampMs,
                  scan.skip(", \"input_length\": "), let prompt = scan.integer(), prompt <= TraceLimits.maxTokens,
                  scan.skip(", \"output_length\": "), let output = scan.integer(), output <= TraceLimits.maxTokens,
                  scan.skip(", \"hash_ids\": [")
            else { return nil }
            // Each id takes at least three bytes (a digit and ", ") but the last, which the "]}" pays for.
            let room = (bytes.count - scan.index) / 3 + 1
            let hashes = withUnsafeTemporaryAllocation(of: UInt64.self, capacity: room) { ids -> [UInt64]? in
                var count = 0
                if !scan.skip("]") {
                    // The row's bulk: ids and ", " read straight off the bytes (`integer()` and
                    // `skip(_:)` written out: ~110 instructions an id through them).
                    guard let base = bytes.baseAddress else { return nil }
                    let n = bytes.count
                    var i = scan.index
                    while true {
                        let start = i
                        var id: UInt64 = 0
                        if let short = Self.shortInteger(base + i, available: n &- i) {
                            // Up to 7 digits, read eight bytes at a time.
                            id = short.value
                            i &+= short.digits
                        } else {
                            while i < n {
                                let digit = base[i] &- 0x30
                                guard digit < 10 else { break }
                                id = id &* 10 &+ UInt64(digit)
                                i &+= 1
                            }
                        }
                        // 1 to 15 digits, no leading zero: within 0…TraceLimits.maxHashID.
                        let digits = i &- start
                        guard digits >= 1, digits <= 15, digits == 1 || base[start] != 0x30, count < room
                        else { return nil }
                        ids[count] = StableHash.mix(id)
                        count &+= 1
                        guard n &- i >= 2, base[i] == 0x2C, base[i &+ 1] == 0x20 else { break }
                        i &+= 2
                    }
                    scan.index = i
                    guard scan.skip("]") else { return nil }
                }
                return Array(UnsafeBufferPointer(rebasing: ids[0..<count]))
            }
            guard let hashes, scan.skip("}"), scan.index == bytes.count else { return nil }
            return TraceRow(time: Double(ms) / 1_000, promptTokens: prompt, outputTokens: output, hashIDs: hashes)
        }
    }

    /// The run of decimal digits at `bytes` when it is shorter than 8 and 8 bytes can be read:
    /// its value and length (0 when `bytes` starts with no digit); nil otherwise, for the
    /// caller's byte-by-byte loop. A hash id has 5 digits on average: word-wide, this took a
    /// third of the instructions the byte loop spent on it (issue 12).
    @inline(__always)
    static func shortInteger(_ bytes: UnsafePointer<UInt8>, available: Int) -> (value: UInt64, digits: Int)? {
        guard available >= 8 else { return nil }
        // Byte k of the word is bytes[k]; XOR maps the digits '0'…'9' to 0…9 and every other byte above 9.
        let word = UInt64(littleEndian: UnsafeRawPointer(bytes).loadUnaligned(as: UInt64.self)) ^ 0x3030_3030_3030_3030
        // High bit set in each byte above 9: either it has it already, or adding 0x76 carries into it.
        // A carry out of a byte (≥ 0x8A, not a digit) only reaches the bytes after it: the first
        // flagged byte is the first non-digit.
        let nonDigits = ((word &+ 0x7676_7676_7676_7676) | word) & 0x8080_8080_8080_8080
        guard nonDigits != 0 else { return nil }
        let digits = nonDigits.trailingZeroBitCount >> 3
        guard digits > 0 else { return (0, 0) }
        // The digits moved to the word's top bytes, zeros below them (leading zeros), then
        // neighbouring bytes, pairs and quads combined: the first digit is the most significant.
        var v = word << UInt64(64 &- 8 &* digits)
        v = (v &* (10 << 8 &+ 1)) >> 8 & 0x00FF_00FF_00FF_00FF
        v = (v &* (100 << 16 &+ 1)) >> 16 & 0x0000_FFFF_0000_FFFF
        v = (v &* (10_000 << 32 &+ 1)) >> 32
        return (v, digits)
    }

    /// ``parseCanonicalMooncake(_:)``'s reader: fixed text and plain integers, nothing else.
    private struct CanonicalScan {
        let bytes: UnsafeBufferPointer<UInt8>
        var index = 0

        /// Steps over `text` if the line goes on with it.
        @inline(__always)
        mutating func skip(_ text: StaticString) -> Bool {
            let count = text.utf8CodeUnitCount
            guard bytes.count - index >= count else { return false }
            let expected = text.utf8Start
            for k in 0..<count where bytes[index &+ k] != expected[k] { return false }
            index &+= count
            return true
        }

        /// 1 to 15 decimal digits, no leading zero (JSON's grammar; a Double holds them exactly).
        @inline(__always)
        mutating func integer() -> Int? {
            let start = index
            var value = 0
            while index < bytes.count {
                let digit = bytes[index] &- 0x30
                guard digit < 10 else { break }
                value = value &* 10 &+ Int(digit)
                index &+= 1
            }
            let digits = index - start
            guard digits >= 1, digits <= 15, digits == 1 || bytes[start] != 0x30 else { return nil }
            return value
        }
    }

    /// A number read from a line, for a message. A JSON number beyond a Double's range (`1e400`)
    /// reads as infinite, and was echoed "got inf", which the file never said.
    static func shown(_ n: Double) -> String {
        guard n.isInfinite else { return OperatorCommand.format(n) }
        return n > 0 ? "a number too large to read (over 1.8e308)" : "a number too large to read (under -1.8e308)"
    }

    static func parseMooncake(_ line: ArraySlice<UInt8>) throws(RowProblem) -> TraceRow {
        if let row = parseCanonicalMooncake(line) { return row }
        return try parseMooncakeJSON(line)
    }

    /// Any JSON object line: its members checked and read by ``JSONLine``.
    static func parseMooncakeJSON(_ line: ArraySlice<UInt8>) throws(RowProblem) -> TraceRow {
        let values: [JSONLine.Value?]
        do { values = try JSONLine.uniqueMembers(line, keys: mooncakeKeys) } catch {
            throw RowProblem(error.message + (error.member.map { "; expected \(mooncakeRanges[$0])" } ?? ""))
        }
        func number(_ slot: Int) throws(RowProblem) -> Double {
            let key = mooncakeNames[slot]
            guard let value = values[slot] else { throw RowProblem("missing \"\(key)\"") }
            guard case .number(let n) = value else { throw RowProblem("\"\(key)\" must be a number; expected \(mooncakeRanges[slot])") }
            return n
        }
        func integer(_ slot: Int) throws(RowProblem) -> Int {
            let key = mooncakeNames[slot]
            let n = try number(slot)
            guard n.isFinite else {
                throw RowProblem("\"\(key)\" is out of range: \(Self.shown(n)); \(TraceLimits.tokenCountRange)")
            }
            guard n == n.rounded() else {
                throw RowProblem("\"\(key)\" must be an integer, got \(OperatorCommand.format(n)); expected \(mooncakeRanges[slot])")
            }
            guard abs(n) <= Double(TraceLimits.maxTokens) else {
                throw RowProblem("\"\(key)\" \(OperatorCommand.format(n)) is out of range; \(TraceLimits.tokenCountRange)")
            }
            return Int(n)
        }
        // Checked in the trace's own field order (hash_ids last): a line bad in several fields
        // was blamed on hash_ids, read first.
        let ms = try number(0)
        guard ms.isFinite, ms >= 0, ms <= TraceLimits.maxMooncakeTimestampMs else {
            throw RowProblem("\"timestamp\" must be between 0 and 10000000000000 ms, got \(Self.shown(ms))")
        }
        let prompt = try integer(1), output = try integer(2)
        var hashes: [UInt64] = []
        if let value = values[3] {
            guard case .numbers(let ids) = value else {
                throw RowProblem("\"hash_ids\" must be an array of integers; expected \(mooncakeRanges[3])")
            }
            hashes.reserveCapacity(ids.count)
            for (i, id) in ids.enumerated() {
                let value = id.value
                let exact = id.integer
                    ?? (value == value.rounded() && value >= 0 && value <= TraceLimits.maxExactHashID ? UInt64(value) : nil)
                guard let exact else {
                    // The id as the file writes it (a JSON number's text is ASCII), cut if long.
                    let text = line.dropFirst(id.text.lowerBound).prefix(id.text.count)
                    // 1e19 is a whole number in range, but a Double's: exact only up to 2^53.
                    let inRange = value == value.rounded() && value > 0 && value < 18_446_744_073_709_551_616.0
                    throw RowProblem(
                        "\"hash_ids\"[\(i)] must be an integer between 0 and \(TraceLimits.maxHashID), got "
                            + InputEcho.clean(String(decoding: text, as: UTF8.self))
                            + (inRange ? " (write an id above \(Int(TraceLimits.maxExactHashID)) in plain digits)" : ""))
                }
                hashes.append(StableHash.mix(exact))
            }
        }
        return TraceRow(time: ms / 1_000, promptTokens: prompt, outputTokens: output, hashIDs: hashes)
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
