import Foundation
import TOMLKit

/// Deployments as TOML files, with the same fields as the presets.
///
/// ```swift
/// let text = Deployment.superpod.toml()          // what `xds run --print-config` prints
/// let back = try Deployment(toml: text, source: "superpod.toml")
/// ```
extension Deployment {
    /// Longest deployment name (a file name, when `name` is absent, is at most 255 bytes).
    public static let maxNameCharacters = 256

    static let topKeys: Set<String> = ["name", "model", "hardware", "nodes", "prefill", "decode", "colocated", "moe_attention", "policies", "scaling"]
    /// The tables a deployment file takes, as their headers are written, for a refusal of another.
    static let tablesTaken = "a deployment's tables are [[prefill]], [[decode]], [[colocated]], [moe_attention], [policies] and [scaling]"
    static let scalingKeys: Set<String> = ["autoscale", "prewarmed_spare_tes"]
    static let groupKeys: Set<String> = ["count", "npus", "first_npu", "tp", "dp", "ep", "redundant_experts",
                                         "shared_expert_dies", "batch_limit", "external", "hardware"]
    static let maKeys: Set<String> = ["first_npu", "expert_dies", "shared_expert_dies", "attention_domains",
                                      "dp_per_domain", "trampoline_dies", "microbatches", "batch_limit"]

    public static func load(path: String) throws -> Deployment {
        try Deployment(toml: TOMLDocument.read(path: path, what: "deployment file"), source: path)
    }

    /// Parses a deployment; every problem is one line naming `source` (and the line, when TOML
    /// itself is malformed).
    public init(toml text: String, source: String) throws {
        let table = try TOMLDocument.parse(text, source: source)
        let r = TOMLReader(table: table, source: source, context: "", text: text)
        try r.rejectUnknown(Self.topKeys, tables: Self.tablesTaken)
        var groups: [InstanceGroup] = []
        for role in InstanceRole.allCases {
            for (i, t) in try r.tables(role.rawValue).enumerated() {
                let g = r.child(t, name: role.rawValue, entry: i + 1, context: "[[\(role.rawValue)]] #\(i + 1): ")
                try g.rejectUnknown(Self.groupKeys)
                // A prefill TE batches by tokens, not by a request limit: a limit there was ignored.
                if role == .prefill, try g.int("batch_limit", default: 0) != 0 {
                    throw g.fail(key: "batch_limit", "batch_limit applies to decode and colocated groups (a prefill batch is bounded by tokens); "
                        + "leave it out or set 0")
                }
                groups.append(InstanceGroup(
                    role: role, count: try g.int("count", default: 1), npusEach: try g.int("npus"),
                    firstNPU: try g.int("first_npu", default: 0), tp: try g.int("tp", default: 1),
                    dp: try g.int("dp", default: 1), ep: try g.int("ep", default: 1),
                    redundantExperts: try g.int("redundant_experts", default: 0),
                    sharedExpertDies: try g.int("shared_expert_dies", default: 0),
                    batchLimit: try g.int("batch_limit", default: role == .prefill ? 0 : 96),
                    external: try g.bool("external", default: false), hardware: try g.optionalString("hardware")))
            }
        }
        var ma: MoEAttentionLayout?
        if let t = try r.table("moe_attention") {
            let m = r.child(t, name: "moe_attention", context: "[moe_attention]: ")
            try m.rejectUnknown(Self.maKeys)
            ma = MoEAttentionLayout(
                firstNPU: try m.int("first_npu", default: 0), expertDies: try m.int("expert_dies"),
                sharedExpertDies: try m.int("shared_expert_dies", default: 0),
                attentionDomains: try m.int("attention_domains"), dpPerDomain: try m.int("dp_per_domain"),
                trampolineDies: try m.int("trampoline_dies", default: 0), microbatches: try m.int("microbatches", default: 2),
                batchLimit: try m.int("batch_limit", default: 96))
        }
        // The file name without NSString path helpers (corelibs Foundation traps on some
        // non-ASCII paths).
        let fileName = source.split(separator: "/").last.map(String.init) ?? source
        let name = try r.optionalString("name") ?? fileName
        // A blank name left the header reading "xds run ·  · deepseek-r1".
        if name.trimmingCharacters(in: .whitespaces).isEmpty {
            throw r.fail(key: "name", "name must not be empty (leave it out to use the file's name)")
        }
        // The name is shown in the console header, reports and messages: no terminal controls.
        if name.unicodeScalars.contains(where: \.isTerminalControl) {
            throw r.fail(key: "name", "name \(InputEcho.quoted(name)) must not contain control characters")
        }
        // ... and every message about the deployment quotes it: a 16 KB name made 16 KB lines.
        guard name.count <= Self.maxNameCharacters else {
            throw r.fail(key: "name", "name must be at most \(Self.maxNameCharacters) characters, got \(name.count) "
                + "(\(InputEcho.quoted(name)))")
        }
        self.init(name: name,
                  model: try r.optionalString("model") ?? "deepseek-r1",
                  hardware: try r.optionalString("hardware") ?? "ascend-910c",
                  nodes: try r.int("nodes", default: 48), groups: groups, moeAttention: ma)
        policies = try Self.readPolicies(r, text: text)
        if let t = try r.table("scaling") {
            let s = r.child(t, name: "scaling", context: "[scaling]: ")
            try s.rejectUnknown(Self.scalingKeys)
            if let given = try s.optionalString("autoscale") {
                // Any ASCII case, as `--autoscale` and the `autoscale` command take it; kept as
                // the registered (lower-case) name.
                let name = PolicyNames.folded(given)
                guard ["off", "slo"].contains(name) else {
                    throw s.fail(key: "autoscale", "autoscale must be off or slo, got \(InputEcho.quoted(given))")
                }
                // Two spellings of one setting (the slot came later): differing, one would be
                // dropped without a word.
                if let slot = policies["autoscaler"], PolicyNames.folded(slot) != name {
                    throw s.fail(key: "autoscale", "autoscale \(InputEcho.quoted(given)) disagrees with [policies] autoscaler "
                        + "\(InputEcho.quoted(slot)); name the autoscaler in one place")
                }
                autoscale = name
            }
            let warm = try s.int("prewarmed_spare_tes", default: 0)
            guard (0...Self.maxPrewarmedSpareTEs).contains(warm) else {
                throw s.fail(key: "prewarmed_spare_tes", "prewarmed_spare_tes must be between 0 and \(Self.maxPrewarmedSpareTEs), got \(warm)")
            }
            prewarmedSpareTEs = warm
        }
        // The range checks run on the built deployment (presets and inline specs too); its
        // refusal says which key or table, and that is found in the file for `file:LINE:`, as
        // for the engine's refusals of the layout.
        do { try check() } catch let e as ConfigError { throw placed(e, source: source, text: text) }
    }

    /// A refusal of this deployment, read from the file `source` whose text is `text`, as the
    /// file's other refusals read: `source:LINE: message`, the line of the group or key the
    /// refusal's ``ConfigError/place`` names (its `[[colocated]]` header for the engine's "weights
    /// leave no HBM for KV cache on the colocated group"), else `source: message`. For what only
    /// the engine finds as it builds the layout: the engine has no file, its refusal the place.
    public func placed(_ refusal: ConfigError, source: String, text: String?) -> ConfigError {
        let line = refusal.place.flatMap { place in text.flatMap { Self.line(of: place, groups: groups, text: $0) } }
        return ConfigError("\(source)\(line.map { ":\($0)" } ?? ""): \(refusal.description)")
    }

    /// The line in `text` of a refusal's place: the key's line, else (a group or
    /// `[moe_attention]` key left at its default, or a check across the table's keys) the
    /// table's header; nil for the deployment as a whole or what the scan does not find.
    static func line(of place: DeploymentPlace, groups: [InstanceGroup], text: String) -> Int? {
        switch place {
        case .top(let key):
            return key.flatMap { TOMLDocument.line(ofKey: $0, inTable: "", text: text) }
        case .group(let index, let key):
            guard groups.indices.contains(index) else { return nil }
            let role = groups[index].role.rawValue
            // Groups are read role by role, each role's tables in file order.
            let entry = groups[..<index].filter { $0.role == groups[index].role }.count + 1
            return key.flatMap { TOMLDocument.line(ofKey: $0, inTable: role, entry: entry, text: text) }
                ?? TOMLDocument.line(ofTable: role, entry: entry, text: text)
        case .moeAttention(let key):
            return key.flatMap { TOMLDocument.line(ofKey: $0, inTable: "moe_attention", text: text) }
                ?? TOMLDocument.line(ofTable: "moe_attention", text: text)
        case .scaling(let key):
            return TOMLDocument.line(ofKey: key, inTable: "scaling", text: text)
                ?? TOMLDocument.line(ofTable: "scaling", text: text)
        }
    }

    /// The deployment as TOML, fields in a stable order.
    public func toml() -> String {
        var out = "# xds deployment (fields: see README, 'Deployments')\n"
        out += "name = \(Self.quoted(name))\nmodel = \(Self.quoted(model))\nhardware = \(Self.quoted(hardware))\nnodes = \(nodes)\n"
        for g in groups {
            out += "\n[[\(g.role.rawValue)]]\ncount = \(g.count)\nnpus = \(g.npusEach)\nfirst_npu = \(g.firstNPU)\n"
            out += "tp = \(g.tp)\ndp = \(g.dp)\nep = \(g.ep)\nredundant_experts = \(g.redundantExperts)\n"
            out += "shared_expert_dies = \(g.sharedExpertDies)\nbatch_limit = \(g.batchLimit)\n"
            if g.external { out += "external = true\n" }
            if let hw = g.hardware { out += "hardware = \(Self.quoted(hw))\n" }
        }
        if let ma = moeAttention {
            out += "\n[moe_attention]\nfirst_npu = \(ma.firstNPU)\nexpert_dies = \(ma.expertDies)\n"
            out += "shared_expert_dies = \(ma.sharedExpertDies)\nattention_domains = \(ma.attentionDomains)\n"
            out += "dp_per_domain = \(ma.dpPerDomain)\ntrampoline_dies = \(ma.trampolineDies)\n"
            out += "microbatches = \(ma.microbatches)\nbatch_limit = \(ma.batchLimit)\n"
        }
        if autoscale != nil || prewarmedSpareTEs > 0 {
            out += "\n[scaling]\n" + (autoscale.map { "autoscale = \(Self.quoted($0))\n" } ?? "")
            out += "prewarmed_spare_tes = \(prewarmedSpareTEs)\n"
        }
        return out + policiesTOML()
    }

    /// A TOML basic string: quotes, backslashes and control characters escaped, so a name read
    /// from one file (`name = "a\"b"`, or one holding ESC) prints back as TOML that parses to it
    /// and never reaches the terminal raw (C1 too: 0x9B is a CSI on some terminals).
    static func quoted(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\r": out += "\\r"
            case _ where scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value):
                out += "\\u" + String(repeating: "0", count: 4 - String(scalar.value, radix: 16).count)
                    + String(scalar.value, radix: 16, uppercase: true)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}

/// Reading and parsing the project's TOML files (deployments, scenarios), with one-line errors.
public enum TOMLDocument {
    public static func read(path: String, what: String) throws -> String {
        // An empty path would print as ": cannot read …".
        let shown = path.isEmpty ? "''" : path
        // Why, in a word: a missing file, a folder and a binary file all read "cannot read
        // deployment file", where `--workload` says which.
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw ConfigError("\(shown): cannot read \(what) (no such file)")
        }
        if isDirectory.boolValue { throw ConfigError("\(shown): cannot read \(what) (it is a directory)") }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigError("\(shown): cannot read \(what)")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw ConfigError("\(shown): cannot read \(what) (not UTF-8 text)")
        }
        return text
    }

    /// Characters of the TOML library's own message shown in ours.
    static let maxParserMessage = 300

    /// The table, or an error naming `source` and the line of the first TOML syntax error.
    /// Text that TOML forbids and the TOML library would abort on is refused first (``TOMLPreflight``).
    public static func parse(_ text: String, source: String) throws -> TOMLTable {
        if let (line, message) = TOMLPreflight.problem(in: text) { throw ConfigError("\(source):\(line): \(message)") }
        do { return try TOMLTable(string: text) } catch let e as TOMLParseError {
            // The parser quotes the input it stopped at (a newline, a bidi override, a 16 KB line):
            // escaped and cut, so the message stays one readable line.
            throw ConfigError("\(source):\(e.source.begin.line): malformed TOML: "
                + InputEcho.clean(e.description, limit: maxParserMessage))
        }
    }

    /// The line (from 1) where `key` is written in table `[table]` of `text`, or as the dotted
    /// key `table.key` at the top level; nil when this scan does not find it (an inline table, a
    /// key inside a multi-line string's look-alike is not told apart). For messages only: the
    /// parsed table keeps no positions, and a refusal without a line left the author to search.
    /// `entry` (from 1) picks one table of an array of tables (`[[prefill]]` #2): the key is
    /// looked for only after that table's header, before the next.
    public static func line(ofKey key: String, inTable table: String, entry: Int? = nil, text: String) -> Int? {
        var current = ""
        // How many `[[table]]` headers have been seen, for `entry`.
        var entries = 0
        for (index, raw) in lines(of: text).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces.union(CharacterSet(charactersIn: "\r")))
            if line.hasPrefix("[") {
                // `[name]` or `[[name]]`, maybe followed by a comment.
                let inside = line.drop { $0 == "[" }.prefix { $0 != "]" }
                current = path(inside)
                if line.hasPrefix("[["), current == table { entries += 1 }
                continue
            }
            guard !line.hasPrefix("#"), let equals = line.firstIndex(of: "=") else { continue }
            let written = path(line[..<equals])
            // `key = …`, or `key.sub = …`: a key holding a table written as dotted keys is at its
            // first such line (`decode.npus = 1` where `[[decode]]` belongs had no line).
            func writes(_ name: String) -> Bool { written == name || written.hasPrefix(name + ".") }
            if let entry {
                if current == table && entries == entry && writes(key) { return index + 1 }
                continue
            }
            if (current == table && writes(key)) || (current.isEmpty && writes("\(table).\(key)")) { return index + 1 }
        }
        return nil
    }

    /// The line (from 1) of entry `entry` (from 1) of the top-level array `array` when its
    /// entries are written as inline tables, `step = [{at = "1s", command = "pause"}, …]` (TOML
    /// allows it; the scans above look for `[[array]]` headers and `key = …` lines, and such an
    /// entry's refusal named the file alone): the line of its `key = …`, else of its opening
    /// brace. Nil when `array` is not written so. Strings and comments are skipped (a `}` in one
    /// is text).
    public static func line(ofKey key: String?, inInlineEntry entry: Int, ofArray array: String, text: String) -> Int? {
        guard let first = Self.line(ofKey: array, inTable: "", text: text) else { return nil }
        let bytes = Array(text.utf8)
        let n = bytes.count
        var line = 1
        var i = 0
        while i < n, line < first {
            if bytes[i] == UInt8(ascii: "\n") { line += 1 }
            i += 1
        }
        // After `array =`, the array's `[`.
        while i < n, bytes[i] != UInt8(ascii: "=") { i += 1 }
        i += 1
        while i < n, bytes[i] == UInt8(ascii: " ") || bytes[i] == UInt8(ascii: "\t") { i += 1 }
        guard i < n, bytes[i] == UInt8(ascii: "[") else { return nil }
        func isBareKeyByte(_ b: UInt8) -> Bool {
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(b) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(b)
                || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(b) || b == UInt8(ascii: "_") || b == UInt8(ascii: "-")
        }
        var depth = 0  // brackets and braces open, the array's own included
        var entries = 0  // inline tables begun in the array
        var braceLine: Int?  // of the entry's opening brace, once seen
        var expectsKey = false  // in the entry, where a key begins
        while i < n {
            let byte = bytes[i]
            switch byte {
            case UInt8(ascii: "\n"):
                line += 1
            case UInt8(ascii: "#"):
                while i + 1 < n, bytes[i + 1] != UInt8(ascii: "\n") { i += 1 }
            case UInt8(ascii: "\""), UInt8(ascii: "'"):
                // A key is read as written between its quotes; multi-line strings (tripled quotes)
                // count their lines; a basic string's `\` escapes the byte after it.
                let triple = i + 2 < n && bytes[i + 1] == byte && bytes[i + 2] == byte
                let start = i + (triple ? 3 : 1)
                var j = start
                while j < n {
                    if byte == UInt8(ascii: "\""), bytes[j] == UInt8(ascii: "\\") { j += 2; continue }
                    if bytes[j] == UInt8(ascii: "\n") { line += 1 }
                    if bytes[j] == byte, !triple || (j + 2 < n && bytes[j + 1] == byte && bytes[j + 2] == byte) { break }
                    j += 1
                }
                if expectsKey, depth == 2, entries == entry, key == String(decoding: bytes[start..<min(j, n)], as: UTF8.self) {
                    return line
                }
                expectsKey = false
                i = min(n, j + (triple ? 2 : 0))
            case UInt8(ascii: "["), UInt8(ascii: "{"):
                depth += 1
                if depth == 2, byte == UInt8(ascii: "{") {
                    entries += 1
                    if entries == entry {
                        guard key != nil else { return line }
                        braceLine = line
                        expectsKey = true
                    }
                }
            case UInt8(ascii: "]"), UInt8(ascii: "}"):
                depth -= 1
                if depth == 1, let braceLine { return braceLine }  // the entry closed without the key
                if depth == 0 { return nil }  // the array closed before the entry
            case UInt8(ascii: ","):
                if depth == 2, entries == entry { expectsKey = true }
            default:
                guard expectsKey, isBareKeyByte(byte) else { break }
                expectsKey = false
                var j = i
                while j < n, isBareKeyByte(bytes[j]) { j += 1 }
                if depth == 2, key == String(decoding: bytes[i..<j], as: UTF8.self) { return line }
                i = j - 1
            }
            i += 1
        }
        return braceLine
    }

    /// The line (from 1) of the header `[table]` in `text` or, with `entry` (from 1), of the
    /// `entry`th `[[table]]`; nil when this scan does not find it (a table written only as dotted
    /// keys or inline has no header). For a refusal about several keys of one table at once
    /// (`tp × dp` against `npus`), where no single key's line is the answer.
    public static func line(ofTable table: String, entry: Int? = nil, text: String) -> Int? {
        var entries = 0
        for header in headers(in: text) where header.name == table {
            if let entry {
                if header.isArray { entries += 1 }
                if header.isArray && entries == entry { return header.line }
            } else if !header.isArray {
                return header.line
            }
        }
        return nil
    }

    /// Where `key` of table `table` (`""` for the top level; in an array of tables, its `entry`th,
    /// from 1) is written as a table header (`[[decod]]`, `[decode.extra]`) and not as `key = …`:
    /// the header's line and text. A misspelt `[[decod]]` was refused naming the file alone, where
    /// every other refusal says `file:LINE`. Nil when the key has a `key = …` line or no header.
    public static func header(ofKey key: String, inTable table: String, entry: Int? = nil,
                              text: String) -> (line: Int, written: String)? {
        guard line(ofKey: key, inTable: table, entry: entry, text: text) == nil else { return nil }
        return header(ofTable: table.isEmpty ? key : "\(table).\(key)", parent: table, entry: entry, text: text)
    }

    /// The first table header naming `table` (`[table]`, `[[table]]` or `[table.sub]`) in `text`,
    /// after the `entry`th `[[parent]]` header when `entry` is given (and before the next): its
    /// line (from 1) and the header as written, without a comment after it.
    static func header(ofTable table: String, parent: String = "", entry: Int? = nil,
                       text: String) -> (line: Int, written: String)? {
        var entries = 0
        for header in headers(in: text) {
            if let entry {
                if header.isArray, header.name == parent { entries += 1 }
                guard entries == entry else { continue }
            }
            // `[table.sub]` alone makes `table` a table too.
            guard header.name == table || header.name.hasPrefix(table + "."),
                  let close = header.written.lastIndex(of: "]") else { continue }
            return (header.line, String(header.written[...close]))
        }
        return nil
    }

    /// The table headers of `text` in order: the line (from 1), the line as written (trimmed),
    /// the table's path, and whether it is an array of tables (`[[…]]`). The two header scans
    /// above each took a file's lines apart the same way.
    private static func headers(in text: String) -> [(line: Int, written: Substring, name: String, isArray: Bool)] {
        lines(of: text).enumerated().compactMap { index, raw in
            let line = raw.trimmingCharacters(in: .whitespaces.union(CharacterSet(charactersIn: "\r")))
            guard line.hasPrefix("[") else { return nil }
            return (index + 1, Substring(line), path(line.drop { $0 == "[" }.prefix { $0 != "]" }), line.hasPrefix("[["))
        }
    }

    /// The lines of `text`, split where TOML counts them (at `\n`). Not `split(separator: "\n")`:
    /// Swift reads CRLF as one Character, which that never matches, and a file saved with CRLF
    /// line ends was one line to every scan here, so its refusals had no line.
    private static func lines(of text: String) -> [Substring] {
        text.split(omittingEmptySubsequences: false) { $0 == "\n" || $0 == "\r\n" }
    }

    /// A key path as written (`a . "b"`), its parts unquoted and joined by dots.
    private static func path(_ written: Substring) -> String {
        written.split(separator: ".", omittingEmptySubsequences: false).map { part in
            let p = part.trimmingCharacters(in: .whitespaces)
            let quoted = p.count >= 2 && (p.first == "\"" && p.last == "\"" || p.first == "'" && p.last == "'")
            return quoted ? String(p.dropFirst().dropLast()) : p
        }.joined(separator: ".")
    }

    /// The first key of `table` (in the table's order) that is not one of `known`, if any: a
    /// misspelt field is an error in every file of the project (deployments, scenarios, themes),
    /// not a default quietly used.
    public static func unknownKey(in table: TOMLTable, known: some Sequence<String>) -> String? {
        let known = Set(known)
        return table.keys.first { !known.contains($0) }
    }
}

/// Strict field access over a TOML table: wrong types and unknown keys are errors, not defaults.
struct TOMLReader {
    let table: TOMLTable
    let source: String
    let context: String
    /// Where the table is in the file, for a refusal's line: the file's text, the table's name
    /// (`""` for the top level) and, in an array of tables, its entry from 1. No text, no line.
    var text: String? = nil
    var tableName = ""
    var entry: Int? = nil

    func fail(_ message: String) -> ConfigError { ConfigError("\(source): \(context)\(message)") }

    /// A refusal about one key: `file:LINE: …` when the key's line is found (the parsed table keeps
    /// no positions), or the line of its header when the file writes the key as a table (`[decode]`
    /// where `[[decode]]` belongs), else as ``fail(_:)``.
    func fail(key: String, _ message: String) -> ConfigError {
        guard let text, let line = TOMLDocument.line(ofKey: key, inTable: tableName, entry: entry, text: text)
                ?? TOMLDocument.header(ofKey: key, inTable: tableName, entry: entry, text: text)?.line else {
            return fail(message)
        }
        return ConfigError("\(source):\(line): \(context)\(message)")
    }

    /// A reader of the sub-table `name` (an entry of an array of tables when `entry` is given).
    func child(_ table: TOMLTable, name: String, entry: Int? = nil, context: String) -> TOMLReader {
        TOMLReader(table: table, source: source, context: context, text: text,
                   tableName: tableName.isEmpty ? name : "\(tableName).\(name)", entry: entry)
    }

    /// Refuses the first key not in `known`. One the file writes as a table header (a misspelt
    /// `[[decod]]`) is refused as a table, at its header's line, with `tables`, what this table
    /// takes instead (nil: it takes fields only).
    func rejectUnknown(_ known: Set<String>, tables: String? = nil) throws {
        guard let key = TOMLDocument.unknownKey(in: table, known: known) else { return }
        let fields = known.sorted().joined(separator: ", ")
        if let text, let header = TOMLDocument.header(ofKey: key, inTable: tableName, entry: entry, text: text) {
            throw ConfigError("\(source):\(header.line): \(context)unknown table \(InputEcho.clean(header.written, limit: 80)); "
                + (tables ?? "this table takes fields only: \(fields)"))
        }
        throw fail(key: key, "unknown field \(InputEcho.quoted(key)); expected one of: \(fields)")
    }
    func int(_ key: String, default value: Int? = nil) throws -> Int {
        guard let v = table[key] else {
            if let value { return value }
            // At the table's header (the file has no line of the key): it named the file alone.
            let header = text.flatMap { TOMLDocument.line(ofTable: tableName, entry: entry, text: $0) }
            throw ConfigError("\(source)\(header.map { ":\($0)" } ?? ""): \(context)missing field '\(key)'")
        }
        guard let i = v.int else { throw fail(key: key, "'\(key)' must be an integer, got \(Self.received(v))") }
        return i
    }
    /// A value of the wrong type as a message shows it: `4.5 (a floating-point number)`,
    /// `'48' (a string)`; a table or an array by its kind alone. `nodes = 4.5` was refused with
    /// "'nodes' must be an integer", leaving the user to find which value the file holds.
    static func received(_ v: any TOMLValueConvertible) -> String {
        let kind = v.type.description
        let article = kind.first.map { "aeiou".contains($0) } == true ? "an" : "a"
        switch v.type {
        case .table, .array: return "\(article) \(kind)"
        case .string: return "\(InputEcho.quoted(v.string ?? "")) (\(article) \(kind))"
        default: return "\(InputEcho.clean(v.tomlValue.debugDescription, limit: 40)) (\(article) \(kind))"
        }
    }

    func bool(_ key: String, default value: Bool) throws -> Bool {
        guard let v = table[key] else { return value }
        guard let b = v.bool else { throw fail(key: key, "'\(key)' must be true or false, got \(Self.received(v))") }
        return b
    }
    func optionalString(_ key: String) throws -> String? {
        guard let v = table[key] else { return nil }
        guard let s = v.string else { throw fail(key: key, "'\(key)' must be a string, got \(Self.received(v))") }
        return s
    }
    func table(_ key: String) throws -> TOMLTable? {
        guard let v = table[key] else { return nil }
        guard let t = v.table else { throw fail(key: key, "'\(key)' must be a table, got \(Self.received(v))") }
        return t
    }
    func tables(_ key: String) throws -> [TOMLTable] {
        guard let v = table[key] else { return [] }
        guard let a = v.array else { throw fail(key: key, "'\(key)' must be an array of tables ([[\(key)]])") }
        return try a.map { item in
            guard let t = item.table else { throw fail(key: key, "'\(key)' must be an array of tables ([[\(key)]])") }
            return t
        }
    }
}
