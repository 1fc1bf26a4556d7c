import Foundation
import PodModel
import SimKit
import TOMLKit

/// A scenario file (interfaces.md): commands to apply at given simulated times.
///
/// ```toml
/// name = "NPU loss under load"
/// [[step]]
/// at = "30s"
/// command = "fault npu 37"
/// ```
///
/// ```swift
/// let scenario = try Scenario.load(path: "scenarios/npu-loss.toml")
/// for step in scenario.steps { print(step.at, step.command) }
/// ```
public struct Scenario: Sendable, Equatable {
    public struct Step: Sendable, Equatable {
        public var at: SimTime
        public var command: OperatorCommand
        public init(at: SimTime, command: OperatorCommand) {
            self.at = at
            self.command = command
        }
    }

    public var name: String
    public var description: String?
    /// Steps in time order (stable for equal times: file order).
    public var steps: [Step]

    public init(name: String, description: String? = nil, steps: [Step]) {
        self.name = name
        self.description = description
        self.steps = steps
    }

    /// Reads and checks a scenario file. With `topology`, every step is also checked against
    /// the pod it will run on (see ``validate(against:source:)``), so a step naming a node,
    /// NPU, die or fault that does not exist stops the run before it starts.
    ///
    /// ```swift
    /// let scenario = try Scenario.load(path: "npu-loss.toml", topology: try deployment.topology())
    /// ```
    public static func load(path: String, topology: PodTopology? = nil) throws -> Scenario {
        try Scenario(toml: TOMLDocument.read(path: path, what: "scenario file"), source: path, topology: topology)
    }

    /// Parses and checks every step; the first problem is one line naming the file, the line
    /// (when found) and the step (numbered in file order from 1).
    public init(toml text: String, source: String, topology: PodTopology? = nil) throws {
        let table: TOMLTable
        do { table = try TOMLDocument.parse(text, source: source) } catch let error as ConfigError {
            throw ConfigError(Self.oneLine(error.description))
        }
        // `file:LINE` of a top-level key (or, for `step`, its `[step]` table): the parsed table
        // keeps no positions, so the line is found in the text, as a deployment file's are.
        func at(_ key: String) -> String {
            let line = TOMLDocument.line(ofKey: key, inTable: "", text: text) ?? TOMLDocument.line(ofTable: key, text: text)
            return line.map { "\(source):\($0)" } ?? source
        }
        // ... and of a key of step `index` (from 0): the key's line, else its `[[step]]` header.
        func at(step index: Int, _ key: String?) -> String {
            let line = key.flatMap { TOMLDocument.line(ofKey: $0, inTable: "step", entry: index + 1, text: text) }
                ?? TOMLDocument.line(ofTable: "step", entry: index + 1, text: text)
                ?? TOMLDocument.line(ofKey: key, inInlineEntry: index + 1, ofArray: "step", text: text)
            return "\(line.map { "\(source):\($0)" } ?? source): step \(index + 1)"
        }
        // A key written as a table (a misspelt `[[stepp]]`) has no `key = …` line: it is refused
        // as a table, at its header's line (it named the file alone).
        func unknown(_ key: String, step index: Int? = nil) -> String {
            if let header = TOMLDocument.header(ofKey: key, inTable: index == nil ? "" : "step", entry: index.map { $0 + 1 }, text: text) {
                let step = index.map { ": step \($0 + 1)" } ?? ""
                return "\(source):\(header.line)\(step): unknown table \(InputEcho.clean(header.written, limit: 80))"
            }
            return "\(index.map { at(step: $0, key) } ?? at(key)): unknown field \(InputEcho.quoted(key))"
        }
        if let key = TOMLDocument.unknownKey(in: table, known: ["name", "description", "step"]) {
            throw ConfigError("\(unknown(key)); expected name, description and [[step]] tables")
        }
        guard let nameValue = table["name"] else { throw ConfigError("\(source): missing 'name' (a string)") }
        guard let name = nameValue.string else { throw ConfigError("\(at("name")): 'name' must be a string") }
        if name.trimmingCharacters(in: .whitespaces).isEmpty {
            throw ConfigError("\(at("name")): 'name' must not be empty (the console and reports show it)")
        }
        if InputEcho.hasControlCharacters(name) {
            throw ConfigError("\(at("name")): 'name' must not contain control characters, got \(InputEcho.quoted(name))")
        }
        if let value = table["description"], value.string == nil {
            throw ConfigError("\(at("description")): 'description' must be a string")
        }
        let description = table["description"]?.string
        if let description, InputEcho.hasControlCharacters(description, allowing: ["\n", "\t"]) {
            throw ConfigError("\(at("description")): 'description' must not contain control characters other than newlines and tabs")
        }
        guard let stepArray = table["step"]?.array else {
            if table["step"] != nil {
                throw ConfigError("\(at("step")): 'step' must be an array of tables: write each step as [[step]] (double brackets), not [step] or step = ...")
            }
            throw ConfigError("\(source): no steps; add [[step]] tables with 'at' and 'command'")
        }
        // `step = []` is no steps too: it was taken as a scenario that does nothing, where a file
        // without `step` is refused (nothing documents an empty scenario as meant).
        guard !stepArray.isEmpty else {
            throw ConfigError("\(at("step")): no steps; add [[step]] tables with 'at' and 'command'")
        }
        guard stepArray.count <= Self.maxSteps else {
            // At the first [[step]] past the limit (its header), not "step 100001:" before the count.
            let line = TOMLDocument.line(ofTable: "step", entry: Self.maxSteps + 1, text: text).map { ":\($0)" } ?? ""
            throw ConfigError("\(source)\(line): \(stepArray.count) steps; a scenario holds at most \(Self.maxSteps)")
        }
        var steps: [Step] = []
        for (i, item) in stepArray.enumerated() {
            guard let step = item.table else { throw ConfigError("\(at("step")): step \(i + 1): must be a [[step]] table") }
            if let key = TOMLDocument.unknownKey(in: step, known: ["at", "command"]) {
                throw ConfigError("\(unknown(key, step: i)); expected 'at' and 'command'")
            }
            // A key given with the wrong type is named as such: `at = true` or `command = 5` were
            // reported "missing", sending the author to look for a line that is there.
            guard let atValue = step["at"] else {
                throw ConfigError("\(at(step: i, nil)): missing 'at'; expected a time like \"30s\", \"2m\" or \"1h\"")
            }
            guard let atText = atValue.string ?? atValue.int.map({ "\($0)" }) ?? atValue.double.map({ "\($0)" }) else {
                throw ConfigError("\(at(step: i, "at")): 'at' must be a time like \"30s\", \"2m\" or \"1h\" (or a number of seconds)")
            }
            let time: SimTime
            do { time = try SimTime.checkedDuration(atText) } catch { throw ConfigError("\(at(step: i, "at")): 'at': \(error.message)") }
            guard let commandValue = step["command"] else { throw ConfigError("\(at(step: i, nil)): missing 'command' (a string)") }
            guard let line = commandValue.string else {
                throw ConfigError("\(at(step: i, "command")): 'command' must be a string, such as \"drain node 5\"")
            }
            switch OperatorCommand.parse(line, on: topology) {
            case .success(let command): steps.append(Step(at: time, command: command))
            case .failure(let error): throw ConfigError("\(at(step: i, "command")): \(error.message)")
            }
        }
        // Stable sort: equal times keep file order.
        let order = steps.indices.sorted { (steps[$0].at, $0) < (steps[$1].at, $1) }
        if let topology {
            // The label (a scan of the text for the step's line) only for the step refused: made
            // for every step, it made a valid 1,000-step file take 100 s to load (a scan each).
            try Self.check(order.map { steps[$0] }, against: topology) { at(step: order[$0], "command") }
        }
        self.init(name: name, description: description, steps: order.map { steps[$0] })
    }

    /// Most steps a scenario file may hold.
    public static let maxSteps = 100_000

    /// Checks the steps against the pod they will run on, as the engine will when it applies
    /// them: nodes, NPUs and dies must exist, and `heal N` must name a fault an earlier step
    /// can have created (the engine numbers faults 1, 2, 3… in injection order; a fault
    /// command creates at most one, none when the engine refuses it), `heal all` needs an
    /// earlier fault step. Throws one line naming `source`, the step's time and command.
    public func validate(against topology: PodTopology, source: String) throws {
        try Self.check(steps, against: topology) { "\(source): step at \(OperatorCommand.format(steps[$0].at)) s '\(steps[$0].command)'" }
    }

    /// `steps` in run order; `label(i)` names step `i` in a refusal.
    private static func check(_ steps: [Step], against topology: PodTopology, label labelOf: (Int) -> String) throws {
        var possibleFaults = 0
        var faultsSinceHealAll = 0
        var healed = Set<Int>()
        for (i, step) in steps.enumerated() {
            if let problem = stepProblem(step.command, topology: topology, possibleFaults: possibleFaults) {
                throw ConfigError("\(labelOf(i)): \(problem)")
            }
            switch step.command {
            case .heal(let id):
                // A fault healed once is no longer active; the engine refuses a second heal.
                guard healed.insert(id).inserted else {
                    throw ConfigError("\(labelOf(i)): heal \(id): an earlier step already heals fault \(id)")
                }
            case .healAll:
                guard faultsSinceHealAll > 0 else {
                    throw ConfigError("\(labelOf(i)): heal all: no fault step since the previous 'heal all'")
                }
                faultsSinceHealAll = 0
            default:
                if step.command.createsFault {
                    possibleFaults += 1
                    faultsSinceHealAll += 1
                }
            }
        }
    }

    /// What the engine would refuse about `command` whatever state the pod is in, or nil.
    static func stepProblem(_ command: OperatorCommand, topology: PodTopology, possibleFaults: Int) -> String? {
        func node(_ n: Int) -> String? {
            n < topology.nodes ? nil : PodTopology.missing("node", n, count: topology.nodes)
        }
        func npu(_ n: Int) -> String? {
            n < topology.npuCount ? nil : PodTopology.missing("NPU", n, count: topology.npuCount)
        }
        func die(_ d: Int) -> String? {
            d < topology.dieCount ? nil : PodTopology.missing("die", d, count: topology.dieCount)
        }
        switch command {
        case .drain(let n), .undrain(let n), .faultNode(let n): return node(n)
        case .faultNPU(let n): return npu(n)
        case .faultLink(let a, let b, _): return npu(a) ?? npu(b)
        case .faultDie(let d), .faultStraggler(let d, _), .faultHBM(let d): return die(d)
        case .heal(let id):
            guard id > possibleFaults else { return nil }
            return possibleFaults == 0
                ? "heal \(id): no earlier step injects a fault (fault ids are 1, 2, 3… in injection order)"
                : "heal \(id): earlier steps inject at most \(possibleFaults) fault\(possibleFaults == 1 ? "" : "s") "
                    + "(ids 1…\(possibleFaults), in injection order)"
        case .healAll:
            return possibleFaults == 0 ? "heal all: no earlier step injects a fault" : nil
        case .faultGlitch, .rebalance, .rate, .speed, .speedMax, .pause, .resume, .policy, .scale, .autoscale: return nil
        }
    }

    /// TOML parser messages can span lines; ours never do.
    private static func oneLine(_ text: String) -> String {
        InputEcho.clean(text.split(whereSeparator: \.isNewline).joined(separator: " "), limit: 400)
    }
}

extension OperatorCommand {
    /// Whether the engine gives this command a fault id when it accepts it.
    var createsFault: Bool {
        switch self {
        case .faultDie, .faultNPU, .faultNode, .faultLink, .faultStraggler, .faultHBM, .faultGlitch: true
        default: false
        }
    }
}
