import PodModel

/// One line of the operator command language (interfaces.md), the same in the console's
/// `:` prompt, scenario files and `POST /admin/commands`.
///
/// Parsing checks the shape and the ranges in ``CommandLimits`` (the one place the command
/// language's bounds live); whether node 57 exists in this pod is the engine's business (and
/// a scenario's, at load: ``Scenario/init(toml:source:topology:)``). Factor conventions:
/// - `fault link A-B` takes the link down; `degrade F` instead divides its bandwidth by F
///   (1 < F ≤ 1000);
/// - `fault straggler die D slowdown F` makes the die F times slower (1 < F ≤ 1000); without
///   `slowdown` the engine picks its default;
/// - `rate R` needs 0 ≤ R ≤ 100,000 requests/s; `speed S` needs 0.01 ≤ S ≤ 1,000,000
///   (`speed max`: unpaced);
/// - node, NPU and die numbers are 0…999,999, fault ids 1…999,999.
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
    /// `policy SLOT NAME`: the named policy in a slot (``Policies``: `je`, `dp-lb`, `eplb`,
    /// `recovery`) from the next event on. Both words are checked against the registries.
    case policy(slot: String, name: String)
    /// `scale prefill|decode|colocated N|+K|-K [from PATH]`: TEs of a role (Scaling/); the
    /// optional load path forces one (`from object-store`), for comparisons.
    case scale(role: InstanceRole, change: ScaleChange, from: LoadPath?)
    /// `autoscale off|slo`: the autoscaler policy by name.
    case autoscale(String)

    /// The canonical line; parsing it gives back the same command.
    public var description: String { description(namingDie: Self.languageDieName, device: Self.languageDeviceName) }

    /// The line with the die or device it points at named by `namingDie` and `device` in place of
    /// the language's `die D` and `npu N`: the Faults panel lists `fault hbm die 0` as
    /// `fault hbm GPU 0` on a one-die GPU. One formatter for both, so that a listing keeps every
    /// other word of the command (a straggler's ` slowdown F`) as the command says it; the engine's
    /// listing copied those words by hand. Every other command reads as ``description``.
    func description(namingDie: (Int) -> String, device: (Int) -> String) -> String {
        switch self {
        case .drain(let node): "drain node \(node)"
        case .undrain(let node): "undrain node \(node)"
        case .faultDie(let die): "fault \(namingDie(die))"
        case .faultNPU(let npu): "fault \(device(npu))"
        case .faultNode(let node): "fault node \(node)"
        case .faultLink(let a, let b, let degrade):
            "fault link \(a)-\(b)" + (degrade.map { " degrade \(Self.format($0))" } ?? "")
        case .faultStraggler(let die, let slowdown):
            "fault straggler \(namingDie(die))" + (slowdown.map { " slowdown \(Self.format($0))" } ?? "")
        case .faultHBM(let die): "fault hbm \(namingDie(die))"
        case .faultGlitch: "fault glitch"
        case .heal(let id): "heal \(id)"
        case .healAll: "heal all"
        case .rebalance: "rebalance"
        case .rate(let r): "rate \(Self.format(r))"
        case .speed(let s): "speed \(Self.format(s))"
        case .speedMax: "speed max"
        case .pause: "pause"
        case .resume: "resume"
        case .policy(let slot, let name): "policy \(slot) \(name)"
        case .scale(let role, let change, let path):
            "scale \(role.rawValue) " + {
                switch change {
                case .to(let n): String(n)
                case .by(let k): k >= 0 ? "+\(k)" : String(k)
                }
            }() + (path.map { " from \($0.rawValue)" } ?? "")
        case .autoscale(let name): "autoscale \(name)"
        }
    }

    /// A die and a device as the language writes them (`die 3`, `npu 3`), whatever the hardware.
    static func languageDieName(_ die: Int) -> String { "die \(die)" }
    static func languageDeviceName(_ npu: Int) -> String { "npu \(npu)" }

    /// Shortest text that reads back as the same Double (integers without ".0"). Public for the
    /// console, which writes `speed S` commands and speeds in its header with it.
    public static func format(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int(value)) : String(value)
    }

    /// Top-level keywords, in the order error messages list them.
    public static let keywords = ["drain", "undrain", "fault", "heal", "rebalance", "rate", "speed", "pause", "resume",
                                  "scale", "autoscale", "policy"]

    /// Every command's fixed words, for tab completion.
    static let completionPhrases = [
        "drain node ", "undrain node ", "fault die ", "fault npu ", "fault node ", "fault link ",
        "fault straggler die ", "fault hbm die ", "fault glitch", "heal all", "heal ", "rebalance", "rate ",
        "speed max", "speed ", "pause", "resume", "scale prefill ", "scale decode ", "scale colocated ",
    ] + Policies.autoscaler.names.map { "autoscale \($0)" } + policyPhrases

    /// `policy SLOT ` and `policy SLOT NAME` for every slot and name in the registries.
    static let policyPhrases: [String] = Policies.catalogs.flatMap { catalog in
        ["policy \(catalog.slot.command) "] + catalog.names.map { "policy \(catalog.slot.command) \($0)" }
    }

    /// Completions of a partly typed line (case-insensitive), sorted: phrases that extend
    /// `prefix`, e.g. `"fa"` → `["fault die ", "fault glitch", …]`.
    public static func completions(for prefix: String) -> [String] {
        let typed = prefix.lowercased().split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ")
            + (prefix.last == " " ? " " : "")
        return completionPhrases.filter { $0.hasPrefix(typed) && $0 != typed }.sorted()
    }
}

/// The ranges every number in the command language must fall in, in one place; messages
/// name them (`expected a rate of 0 (no synthetic arrivals) or between 0.0001 and 10000 requests/s after 'rate', got '1e308'`).
public enum CommandLimits {
    /// `rate R` ceiling, requests/s, for every way a rate enters (`--rate`, the `rate` command,
    /// scenarios, the admin API). The default superpod takes about 150 requests/s of the
    /// synthetic mix before TTFT climbs past its SLO; 10,000/s is a rate no pod can take (even a
    /// 1,024-GPU colocated cluster of a 7B model), and beyond it the arrival queue alone, not the
    /// serving system, would be what the simulation measures.
    public static let maxRate = 10_000.0
    /// The lowest nonzero rate: one arrival every 10,000 s on average (about nine a day). Below
    /// it a run sees no arrival at all (`1e-300` is one every 1e300 s), which `rate 0` says
    /// plainly.
    public static let minNonzeroRate = 0.0001
    /// Whether `rate` is one the command language takes: 0, or ``minNonzeroRate``…``maxRate``.
    public static func isAllowedRate(_ rate: Double) -> Bool {
        rate == 0 || (rate >= minNonzeroRate && rate <= maxRate)
    }
    /// "0 (no synthetic arrivals) or between 0.0001 and 10000 requests/s", for messages.
    public static var allowedRates: String {
        "0 (no synthetic arrivals) or between \(OperatorCommand.format(minNonzeroRate)) and \(OperatorCommand.format(maxRate)) requests/s"
    }
    /// `speed S` range (and `--speed`): from 1/100 of real time up to 100,000× real time, past
    /// which `max` says the same thing.
    public static let minSpeed = 0.01
    public static let maxSpeed = 100_000.0
    /// `slowdown F` and `degrade F` ceiling: 1000× slower is already indistinguishable from
    /// dead for every timeout the engine models.
    public static let maxFactor = 1_000.0
    /// Largest node, NPU, die or fault id the grammar accepts (a pod has at most thousands).
    public static let maxIndex = 999_999
    /// Most TEs of one role a `scale` command may ask for, and the largest relative step: a
    /// CloudMatrix384 holds at most 24 TEs of the smallest shape we model; 64 leaves room for
    /// larger pods without letting a typo ask for millions.
    public static let maxScaleTEs = 64

    static var factorRange: String { "greater than 1 and at most \(format(maxFactor))" }

    static func format(_ value: Double) -> String { OperatorCommand.format(value) }

    /// A non-negative decimal integer of ASCII digits ≤ ``maxIndex``; nil for anything else
    /// (signs, "1.0", "99999999999999999999").
    static func index(_ word: Substring) -> Int? {
        guard !word.isEmpty, word.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }) else { return nil }
        let digits = word.drop(while: { $0 == "0" })
        guard digits.count <= 7, let value = Int(digits.isEmpty ? "0" : digits), value <= maxIndex else { return nil }
        return value
    }

    /// A finite number written in plain decimal (`12`, `0.5`, `1e3`, `-2`); nil for `nan`,
    /// `inf`, hexadecimal and anything that overflows to infinity.
    static func decimal(_ word: String) -> Double? {
        var sawDigit = false
        for c in word.utf8 {
            switch c {
            case 48...57: sawDigit = true
            case UInt8(ascii: "."), UInt8(ascii: "e"), UInt8(ascii: "E"), UInt8(ascii: "-"), UInt8(ascii: "+"): continue
            default: return nil
            }
        }
        guard sawDigit, word.utf8.count <= 64, let value = Double(word), value.isFinite,
              !underflowsToZero(word, value: value) else { return nil }
        return value
    }

    /// Whether `word`, read as `value`, is a nonzero numeral that underflowed to 0 (`1e-400`): such
    /// a number is refused as an overflow is. `rate 1e-400` stopped every arrival as `rate 0`
    /// does, though no such rate was asked for. Zero written any way (`0`, `0.0e5`, `-0`) is 0.
    public static func underflowsToZero(_ word: String, value: Double) -> Bool {
        value == 0 && word.utf8.prefix(while: { $0 != UInt8(ascii: "e") && $0 != UInt8(ascii: "E") })
            .contains(where: { $0 >= 49 && $0 <= 57 })
    }
}

/// Why a command line was rejected; `message` says what was expected.
public struct CommandParseError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
