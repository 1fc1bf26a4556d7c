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

    public static func load(path: String) throws -> Scenario {
        try Scenario(toml: TOMLDocument.read(path: path, what: "scenario file"), source: path)
    }

    /// Parses and checks every step; the first problem is one line naming the file and the step.
    public init(toml text: String, source: String) throws {
        let table = try TOMLDocument.parse(text, source: source)
        for key in table.keys where !["name", "description", "step"].contains(key) {
            throw ConfigError("\(source): unknown field '\(key)'; expected name, description and [[step]] tables")
        }
        guard let name = table["name"]?.string else { throw ConfigError("\(source): missing 'name'") }
        guard let stepArray = table["step"]?.array else {
            throw ConfigError("\(source): no steps; add [[step]] tables with 'at' and 'command'")
        }
        var steps: [Step] = []
        for (i, item) in stepArray.enumerated() {
            let label = "\(source): step \(i + 1)"
            guard let step = item.table else { throw ConfigError("\(label): must be a [[step]] table") }
            for key in step.keys where !["at", "command"].contains(key) {
                throw ConfigError("\(label): unknown field '\(key)'; expected 'at' and 'command'")
            }
            let atText = step["at"]?.string ?? step["at"]?.int.map { "\($0)" } ?? step["at"]?.double.map { "\($0)" }
            guard let atText, let at = SimTime.parseDuration(atText) else {
                throw ConfigError("\(label): 'at' must be a time like \"30s\", \"2m\" or \"1h\"")
            }
            guard let line = step["command"]?.string else { throw ConfigError("\(label): missing 'command'") }
            switch OperatorCommand.parse(line) {
            case .success(let command): steps.append(Step(at: at, command: command))
            case .failure(let error): throw ConfigError("\(label): \(error.message)")
            }
        }
        // Stable sort: equal times keep file order.
        self.init(name: name, description: table["description"]?.string,
                  steps: steps.enumerated().sorted { ($0.element.at, $0.offset) < ($1.element.at, $1.offset) }.map(\.element))
    }
}
