/// One line of the operator command language (interfaces.md), the same in the console's
/// `:` prompt, scenario files and `POST /admin/commands`.
///
/// Parsing checks only the shape and the sign of numbers; whether node 57 exists is the
/// engine's business. Factor conventions:
/// - `fault link A-B` takes the link down; `degrade F` instead divides its bandwidth by F (F > 1);
/// - `fault straggler die D slowdown F` makes the die F times slower (F > 1); without
///   `slowdown` the engine picks its default;
/// - `rate R` needs R ≥ 0 requests/s; `speed S` needs S > 0 (`speed max`: unpaced).
///
/// ```swift
/// switch OperatorCommand.parse("fault link 3-7 degrade 4") {
/// case .success(let command): engine.apply(command)     // .faultLink(from: 3, to: 7, degrade: 4)
/// case .failure(let error): print(error.message)
/// }
/// ```
public enum OperatorCommand: Sendable, Equatable, CustomStringConvertible {
    case drain(node: Int)
    case undrain(node: Int)
    case faultDie(Int)
    case faultNPU(Int)
    case faultNode(Int)
    /// A UB link between two NPUs; `degrade` nil means the link is down.
    case faultLink(from: Int, to: Int, degrade: Double?)
    case faultStraggler(die: Int, slowdown: Double?)
    case faultHBM(die: Int)
    case faultGlitch
    case heal(faultID: Int)
    case healAll
    case rebalance
    case rate(requestsPerSecond: Double)
    case speed(Double)
    case speedMax
    case pause
    case resume

    /// The canonical line; parsing it gives back the same command.
    public var description: String {
        switch self {
        case .drain(let node): "drain node \(node)"
        case .undrain(let node): "undrain node \(node)"
        case .faultDie(let die): "fault die \(die)"
        case .faultNPU(let npu): "fault npu \(npu)"
        case .faultNode(let node): "fault node \(node)"
        case .faultLink(let a, let b, let degrade):
            "fault link \(a)-\(b)" + (degrade.map { " degrade \(Self.format($0))" } ?? "")
        case .faultStraggler(let die, let slowdown):
            "fault straggler die \(die)" + (slowdown.map { " slowdown \(Self.format($0))" } ?? "")
        case .faultHBM(let die): "fault hbm die \(die)"
        case .faultGlitch: "fault glitch"
        case .heal(let id): "heal \(id)"
        case .healAll: "heal all"
        case .rebalance: "rebalance"
        case .rate(let r): "rate \(Self.format(r))"
        case .speed(let s): "speed \(Self.format(s))"
        case .speedMax: "speed max"
        case .pause: "pause"
        case .resume: "resume"
        }
    }

    /// Shortest text that reads back as the same Double (integers without ".0").
    static func format(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int(value)) : String(value)
    }

    /// Top-level keywords, in the order error messages list them.
    public static let keywords = ["drain", "undrain", "fault", "heal", "rebalance", "rate", "speed", "pause", "resume"]

    /// Every command's fixed words, for tab completion.
    static let completionPhrases = [
        "drain node ", "undrain node ", "fault die ", "fault npu ", "fault node ", "fault link ",
        "fault straggler die ", "fault hbm die ", "fault glitch", "heal all", "heal ", "rebalance", "rate ",
        "speed max", "speed ", "pause", "resume",
    ]

    /// Completions of a partly typed line (case-insensitive), sorted: phrases that extend
    /// `prefix`, e.g. `"fa"` → `["fault die ", "fault glitch", …]`.
    public static func completions(for prefix: String) -> [String] {
        let typed = prefix.lowercased().split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ")
            + (prefix.last == " " ? " " : "")
        return completionPhrases.filter { $0.hasPrefix(typed) && $0 != typed }.sorted()
    }
}

/// Why a command line was rejected; `message` says what was expected.
public struct CommandParseError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
