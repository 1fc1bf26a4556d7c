import PodModel
extension OperatorCommand {
    /// Parses one line; keywords are case-insensitive and any run of spaces or tabs
    /// separates words. A rejected line changes nothing, and the error says what was expected.
    public static func parse(_ line: String) -> Result<OperatorCommand, CommandParseError> {
        parse(line, on: nil)
    }

    /// As ``parse(_:)``, for a line that will run on `pod` (nil: not known): a node, NPU or die
    /// word that is not a number in range is refused naming the pod's range (`expected a node
    /// number after 'drain node', got '-1'; the pod has nodes 0…47`), not the grammar's 0…999,999,
    /// and a bad fault id says how faults are numbered. What parses is the same either way; a
    /// number the pod lacks (`drain node 60`) is the engine's to refuse, in the same words.
    public static func parse(_ line: String, on pod: PodTopology?) -> Result<OperatorCommand, CommandParseError> {
        var words = CommandWords(line, pod: pod)
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
        typealias L = CommandLimits
        switch keyword.lowercased() {
        case "drain":
            try words.expectKeyword("node", after: "drain")
            return .drain(node: try words.index(after: "drain node", .node))
        case "undrain":
            try words.expectKeyword("node", after: "undrain")
            return .undrain(node: try words.index(after: "undrain node", .node))
        case "fault": return try parseFault(&words)
        case "heal":
            guard words.peek?.lowercased() == "all" else {
                return .heal(faultID: try words.index(after: "heal", .faultID, orWord: "'all'"))
            }
            _ = words.next()
            return .healAll
        case "rebalance": return .rebalance
        case "rate":
            let rate = try words.number(after: "rate", what: "a rate of \(L.allowedRates)") { L.isAllowedRate($0) }
            return .rate(requestsPerSecond: rate)
        case "speed":
            if words.peek?.lowercased() == "max" {
                _ = words.next()
                return .speedMax
            }
            return .speed(try words.number(
                after: "speed", what: "a speed between \(L.format(L.minSpeed)) and \(L.format(L.maxSpeed)) or 'max'"
            ) { $0 >= L.minSpeed && $0 <= L.maxSpeed })
        case "pause": return .pause
        case "resume": return .resume
        case "preview":
            // A what-if is asked of the host (it forks the engine), never applied as a step.
            throw CommandParseError(
                "'preview' is a what-if, not a command: ask it from the console's : line or POST /admin/preview")
        case "policy": return try parsePolicy(&words)
        case "scale": return try parseScale(&words)
        case "autoscale":
            let names = Policies.autoscaler.names.joined(separator: ", ")
            guard let name = words.next() else { throw CommandParseError("expected one of \(names) after 'autoscale'") }
            // Words are lower-cased as every keyword is, then looked up as every face looks names up.
            guard let registered = Policies.autoscaler.canonicalName(name.lowercased()) else {
                throw CommandParseError("unknown autoscaler \(InputEcho.quoted(name)); expected one of: \(names)")
            }
            return .autoscale(registered)
        default:
            throw CommandParseError(
                "unknown command \(InputEcho.quoted(keyword)); expected one of: \(keywords.joined(separator: ", "))")
        }
    }

    private static func parsePolicy(_ words: inout CommandWords) throws(CommandParseError) -> OperatorCommand {
        let slots = Policies.catalogs.map(\.slot.command).joined(separator: ", ")
        guard let slot = words.next()?.lowercased() else {
            throw CommandParseError("expected a policy slot (\(slots)) after 'policy'")
        }
        guard let catalog = Policies.catalog(command: slot) else {
            throw CommandParseError("unknown policy slot \(InputEcho.quoted(slot)); expected one of: \(slots)")
        }
        let names = catalog.names.joined(separator: ", ")
        guard let name = words.next()?.lowercased() else {
            throw CommandParseError("expected a \(catalog.slot.title) policy (\(names)) after 'policy \(slot)'")
        }
        guard let registered = catalog.canonicalName(name) else {
            throw CommandParseError("unknown \(catalog.slot.title) policy \(InputEcho.quoted(name)); expected one of: \(names)")
        }
        return .policy(slot: slot, name: registered)
    }

    private static func parseScale(_ words: inout CommandWords) throws(CommandParseError) -> OperatorCommand {
        let maxTEs = CommandLimits.maxScaleTEs
        let roles = "prefill, decode, colocated"
        guard let roleWord = words.next() else { throw CommandParseError("expected one of \(roles) after 'scale'") }
        guard let role = InstanceRole(rawValue: roleWord.lowercased()) else {
            throw CommandParseError("unknown role \(InputEcho.quoted(roleWord)) after 'scale'; expected one of: \(roles)")
        }
        let context = "scale \(role.rawValue)"
        let expected = "expected a TE count N between 1 and \(maxTEs), or +K / -K with K between 1 and \(maxTEs), after '\(context)'"
        guard let amount = words.next() else { throw CommandParseError(expected) }
        let change: ScaleChange
        if let sign = amount.first, sign == "+" || sign == "-" {
            guard let k = CommandLimits.index(amount.dropFirst()), (1...maxTEs).contains(k) else {
                throw CommandParseError("\(expected), got \(InputEcho.quoted(amount))")
            }
            change = .by(sign == "+" ? k : -k)
        } else {
            guard let n = CommandLimits.index(Substring(amount)), (1...maxTEs).contains(n) else {
                throw CommandParseError("\(expected), got \(InputEcho.quoted(amount))")
            }
            change = .to(n)
        }
        guard words.peek != nil else { return .scale(role: role, change: change, from: nil) }
        try words.expectKeyword("from", after: "\(context) \(amount)")
        let paths = LoadPath.allCases.map(\.rawValue).joined(separator: ", ")
        guard let pathWord = words.next() else { throw CommandParseError("expected one of \(paths) after 'from'") }
        guard let path = LoadPath(rawValue: pathWord.lowercased()) else {
            throw CommandParseError("unknown load path \(InputEcho.quoted(pathWord)); expected one of: \(paths)")
        }
        return .scale(role: role, change: change, from: path)
    }

    private static func parseFault(_ words: inout CommandWords) throws(CommandParseError) -> OperatorCommand {
        typealias L = CommandLimits
        let kinds = "die, npu, node, link, straggler, hbm, glitch"
        guard let kind = words.next() else { throw CommandParseError("expected one of \(kinds) after 'fault'") }
        switch kind.lowercased() {
        case "die": return .faultDie(try words.index(after: "fault die", .die))
        case "npu": return .faultNPU(try words.index(after: "fault npu", .npu))
        case "node": return .faultNode(try words.index(after: "fault node", .node))
        case "glitch": return .faultGlitch
        case "hbm":
            try words.expectKeyword("die", after: "fault hbm")
            return .faultHBM(die: try words.index(after: "fault hbm die", .die))
        case "straggler":
            try words.expectKeyword("die", after: "fault straggler")
            let die = try words.index(after: "fault straggler die", .die)
            guard words.peek != nil else { return .faultStraggler(die: die, slowdown: nil) }
            try words.expectKeyword("slowdown", after: "fault straggler die \(die)")
            let factor = try words.number(after: "slowdown", what: "a slowdown factor \(L.factorRange)") {
                $0 > 1 && $0 <= L.maxFactor
            }
            return .faultStraggler(die: die, slowdown: factor)
        case "link":
            let range = words.pod == nil ? " between 0 and \(L.maxIndex)" : ""
            let expected = "expected 'A-B' (two NPU numbers\(range)) after 'fault link'"
            guard let pair = words.next() else { throw CommandParseError(expected + words.podRange(.npu)) }
            let ends = pair.split(separator: "-", omittingEmptySubsequences: false)
            guard ends.count == 2, let a = L.index(ends[0]), let b = L.index(ends[1]) else {
                throw CommandParseError("\(expected), got \(InputEcho.quoted(pair))\(words.podRange(.npu))")
            }
            guard a != b else { throw CommandParseError("expected two different NPUs in 'fault link', got '\(pair)'") }
            guard words.peek != nil else { return .faultLink(from: a, to: b, degrade: nil) }
            try words.expectKeyword("degrade", after: "fault link \(pair)")
            let factor = try words.number(after: "degrade", what: "a degrade factor \(L.factorRange)") {
                $0 > 1 && $0 <= L.maxFactor
            }
            return .faultLink(from: a, to: b, degrade: factor)
        default:
            throw CommandParseError("unknown fault \(InputEcho.quoted(kind)); expected one of: \(kinds)")
        }
    }
}

/// What an index word of a command names.
enum CommandIndex {
    case node, npu, die, faultID

    var what: String {
        switch self {
        case .node: "a node number"
        case .npu: "an NPU number"
        case .die: "a die number"
        case .faultID: "a fault id"
        }
    }

    /// The lowest valid value: fault ids start at 1.
    var lowest: Int { self == .faultID ? 1 : 0 }
}

/// The words of a command line, consumed left to right.
struct CommandWords {
    private var words: [Substring]
    private var position = 0
    /// The pod the command will run on, when known: index messages name its ranges.
    let pod: PodTopology?

    init(_ line: String, pod: PodTopology? = nil) {
        // Any whitespace separates words, so a trailing "\r\n" from a file or an HTTP body is
        // harmless and a newline inside a line cannot smuggle a second line into a message.
        words = line.split(whereSeparator: \.isWhitespace)
        self.pod = pod
    }

    /// "; the pod has nodes 0…47" for an index of `kind` on the known pod ("; faults are numbered
    /// …" for a fault id); "" when the pod is not known.
    func podRange(_ kind: CommandIndex) -> String {
        guard let pod else { return "" }
        switch kind {
        case .node: return "; " + PodTopology.has("node", count: pod.nodes)
        case .npu: return "; " + PodTopology.has("NPU", count: pod.npuCount)
        case .die: return "; " + PodTopology.has("die", count: pod.dieCount)
        case .faultID: return "; faults are numbered 1, 2, 3… as they are injected"
        }
    }

    var peek: String? { position < words.count ? String(words[position]) : nil }

    mutating func next() -> String? {
        defer { position += 1 }
        return peek
    }

    mutating func expectKeyword(_ keyword: String, after context: String) throws(CommandParseError) {
        guard let word = next() else { throw CommandParseError("expected '\(keyword)' after '\(context)'") }
        guard word.lowercased() == keyword else {
            throw CommandParseError("expected '\(keyword)' after '\(context)', got \(InputEcho.quoted(word))")
        }
    }

    /// An integer index (node, NPU, die or fault id) between `kind`'s lowest and
    /// ``CommandLimits/maxIndex``, or the message naming the range: the pod's when it is known
    /// (the grammar's 999,999 means nothing to an operator of a 48-node pod).
    mutating func index(
        after context: String, _ kind: CommandIndex, orWord alternative: String? = nil
    ) throws(CommandParseError) -> Int {
        let range = pod == nil ? " between \(kind.lowest) and \(CommandLimits.maxIndex)" : ""
        let expected = "expected \(kind.what)\(range)" + (alternative.map { " or \($0)" } ?? "") + " after '\(context)'"
        guard let word = next() else { throw CommandParseError(expected + podRange(kind)) }
        guard let value = CommandLimits.index(Substring(word)), value >= kind.lowest else {
            throw CommandParseError("\(expected), got \(InputEcho.quoted(word))\(podRange(kind))")
        }
        return value
    }

    /// A finite number that `valid` accepts, or the message naming `what` was expected.
    mutating func number(
        after context: String, what: String, valid: (Double) -> Bool
    ) throws(CommandParseError) -> Double {
        guard let word = next() else { throw CommandParseError("expected \(what) after '\(context)'") }
        guard let value = CommandLimits.decimal(word), valid(value) else {
            throw CommandParseError("expected \(what) after '\(context)', got \(InputEcho.quoted(word))")
        }
        return value
    }

    func expectEnd(after canonical: String) throws(CommandParseError) {
        if let extra = peek {
            throw CommandParseError("unexpected \(InputEcho.quoted(extra)) after '\(canonical)'; expected end of command")
        }
    }
}
