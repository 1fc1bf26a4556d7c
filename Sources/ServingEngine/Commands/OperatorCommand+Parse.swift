extension OperatorCommand {
    /// Parses one line; keywords are case-insensitive and any run of spaces or tabs
    /// separates words. A rejected line changes nothing, and the error says what was expected.
    public static func parse(_ line: String) -> Result<OperatorCommand, CommandParseError> {
        var words = CommandWords(line)
        do {
            let command = try parseCommand(&words)
            try words.expectEnd(after: command.description)
            return .success(command)
        } catch {
            return .failure(error)
        }
    }

    private static func parseCommand(_ words: inout CommandWords) throws(CommandParseError) -> OperatorCommand {
        guard let keyword = words.next() else {
            throw CommandParseError("empty command; expected one of: \(keywords.joined(separator: ", "))")
        }
        switch keyword.lowercased() {
        case "drain":
            try words.expectKeyword("node", after: "drain")
            return .drain(node: try words.index(after: "drain node", what: "a node number"))
        case "undrain":
            try words.expectKeyword("node", after: "undrain")
            return .undrain(node: try words.index(after: "undrain node", what: "a node number"))
        case "fault": return try parseFault(&words)
        case "heal":
            guard let target = words.peek else { throw CommandParseError("expected a fault id or 'all' after 'heal'") }
            if target.lowercased() == "all" {
                _ = words.next()
                return .healAll
            }
            return .heal(faultID: try words.index(after: "heal", what: "a fault id or 'all'"))
        case "rebalance": return .rebalance
        case "rate":
            return .rate(requestsPerSecond: try words.number(after: "rate", what: "a rate ≥ 0 (requests/s)") { $0 >= 0 })
        case "speed":
            if words.peek?.lowercased() == "max" {
                _ = words.next()
                return .speedMax
            }
            return .speed(try words.number(after: "speed", what: "a speed > 0 or 'max'") { $0 > 0 })
        case "pause": return .pause
        case "resume": return .resume
        default:
            throw CommandParseError(
                "unknown command '\(keyword)'; expected one of: \(keywords.joined(separator: ", "))")
        }
    }

    private static func parseFault(_ words: inout CommandWords) throws(CommandParseError) -> OperatorCommand {
        let kinds = "die, npu, node, link, straggler, hbm, glitch"
        guard let kind = words.next() else { throw CommandParseError("expected one of \(kinds) after 'fault'") }
        switch kind.lowercased() {
        case "die": return .faultDie(try words.index(after: "fault die", what: "a die number"))
        case "npu": return .faultNPU(try words.index(after: "fault npu", what: "an NPU number"))
        case "node": return .faultNode(try words.index(after: "fault node", what: "a node number"))
        case "glitch": return .faultGlitch
        case "hbm":
            try words.expectKeyword("die", after: "fault hbm")
            return .faultHBM(die: try words.index(after: "fault hbm die", what: "a die number"))
        case "straggler":
            try words.expectKeyword("die", after: "fault straggler")
            let die = try words.index(after: "fault straggler die", what: "a die number")
            guard words.peek != nil else { return .faultStraggler(die: die, slowdown: nil) }
            try words.expectKeyword("slowdown", after: "fault straggler die \(die)")
            let factor = try words.number(after: "slowdown", what: "a slowdown factor > 1") { $0 > 1 }
            return .faultStraggler(die: die, slowdown: factor)
        case "link":
            guard let pair = words.next() else { throw CommandParseError("expected 'A-B' (two NPU numbers) after 'fault link'") }
            let ends = pair.split(separator: "-", omittingEmptySubsequences: false)
            guard ends.count == 2, let a = Int(ends[0]), let b = Int(ends[1]), a >= 0, b >= 0 else {
                throw CommandParseError("expected 'A-B' (two NPU numbers) after 'fault link', got '\(pair)'")
            }
            guard a != b else { throw CommandParseError("expected two different NPUs in 'fault link', got '\(pair)'") }
            guard words.peek != nil else { return .faultLink(from: a, to: b, degrade: nil) }
            try words.expectKeyword("degrade", after: "fault link \(pair)")
            let factor = try words.number(after: "degrade", what: "a degrade factor > 1") { $0 > 1 }
            return .faultLink(from: a, to: b, degrade: factor)
        default:
            throw CommandParseError("unknown fault '\(kind)'; expected one of: \(kinds)")
        }
    }
}

/// The words of a command line, consumed left to right.
struct CommandWords {
    private var words: [Substring]
    private var position = 0

    init(_ line: String) {
        words = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
    }

    var peek: String? { position < words.count ? String(words[position]) : nil }

    mutating func next() -> String? {
        defer { position += 1 }
        return peek
    }

    mutating func expectKeyword(_ keyword: String, after context: String) throws(CommandParseError) {
        guard let word = next() else { throw CommandParseError("expected '\(keyword)' after '\(context)'") }
        guard word.lowercased() == keyword else {
            throw CommandParseError("expected '\(keyword)' after '\(context)', got '\(word)'")
        }
    }

    /// A non-negative integer (node, NPU, die or fault id).
    mutating func index(after context: String, what: String) throws(CommandParseError) -> Int {
        guard let word = next() else { throw CommandParseError("expected \(what) after '\(context)'") }
        guard let value = Int(word), value >= 0 else {
            throw CommandParseError("expected \(what) after '\(context)', got '\(word)'")
        }
        return value
    }

    mutating func number(
        after context: String, what: String, valid: (Double) -> Bool
    ) throws(CommandParseError) -> Double {
        guard let word = next() else { throw CommandParseError("expected \(what) after '\(context)'") }
        guard let value = Double(word), value.isFinite, valid(value) else {
            throw CommandParseError("expected \(what) after '\(context)', got '\(word)'")
        }
        return value
    }

    func expectEnd(after canonical: String) throws(CommandParseError) {
        if let extra = peek {
            throw CommandParseError("unexpected '\(extra)' after '\(canonical)'; expected end of command")
        }
    }
}
