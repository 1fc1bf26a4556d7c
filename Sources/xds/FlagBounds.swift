import ArgumentParser
import Foundation
import PodModel
import ServingEngine
import SimKit

/// A number as typed on the command line, kept as text until a ``FlagRange`` checks it.
///
/// Every numeric flag has this type and `parsing: .unconditional`, so `--rate -4`, `--rate=-4`,
/// `nan`, `1e308`, `9223372036854775808`, `abc` and `""` all reach the same range check and get
/// one line naming the flag, its range and the value — not ArgumentParser's "missing value" (a
/// leading `-` read as the next flag) or a bare "invalid value" for numbers outside Int.
struct CLINumber: ExpressibleByArgument, ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral, Sendable,
    CustomStringConvertible
{
    let text: String
    init(argument: String) { text = argument }
    init(integerLiteral value: Int) { text = String(value) }
    init(floatLiteral value: Double) { text = String(value) }
    var description: String { text }
    var defaultValueDescription: String { text }

    /// The value, or nil when the text is not a number at all. Decimal only: Swift's
    /// `Double(String)` also reads hexadecimal, so `--port 0x50` bound port 80 and `--rate 0x1p4`
    /// ran at 16/s, where the command language (`rate 0x10`) and the trace readers refuse it.
    /// A nonzero numeral that underflows to 0 (`--rate 1e-400`) is none either: it ran as `--rate 0`,
    /// no arrivals at all, as the command language's `rate 1e-400` did.
    var number: Double? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard !trimmed.contains(where: { $0 == "x" || $0 == "X" }), let value = Double(trimmed),
              !CommandLimits.underflowsToZero(trimmed, value: value) else { return nil }
        // `-0` is the number 0: taken as typed, `--rate -0` reported `"rate_per_s" : -0`.
        return value == 0 ? 0 : value
    }
    /// The text as shown in a message: short, so a pasted megabyte stays one readable line.
    var shown: String { text.count > 40 ? "\(text.prefix(40))…" : text }
    var quoted: String { "'\(shown)'" }
}

/// The allowed range of one numeric flag, stated once and named in the refusal:
/// `--rate must be between 0 and 10000 requests/s, got 1e308`.
struct FlagRange: Sendable {
    let flag: String
    let lower: Double
    let upper: Double
    /// False for "positive" ranges: the lower bound itself is refused (a zero SLO, batch, …).
    let includesLower: Bool
    let unit: String
    /// A count: refused unless a whole number.
    let whole: Bool
    /// Decimal places allowed past the point (nil: any): an average such as requests per die is
    /// written to a few places, and a figure of no one's making (`1e-300`) is refused.
    let decimals: Int?

    init(_ flag: String, _ range: ClosedRange<Double>, positive: Bool = false, unit: String = "", whole: Bool = false,
         decimals: Int? = nil) {
        self.flag = flag
        lower = range.lowerBound
        upper = range.upperBound
        includesLower = !positive
        self.unit = unit
        self.whole = whole
        self.decimals = decimals
    }

    /// "between 0 and 10000 requests/s", "positive and at most 3600 s": also used in `--help`.
    var allowed: String {
        let u = unit.isEmpty ? "" : " \(unit)"
        let places = decimals.map { ", with at most \($0) decimal places" } ?? ""
        return (includesLower ? "between \(Self.text(lower)) and \(Self.text(upper))\(u)"
                              : "positive and at most \(Self.text(upper))\(u)") + places
    }

    func contains(_ x: Double) -> Bool {
        // NaN fails every comparison, so it is refused here too.
        (includesLower ? x >= lower : x > lower) && x <= upper && (!whole || x.rounded() == x)
            && decimals.map { Self.hasAtMost($0, decimalPlaces: x) } ?? true
    }

    /// Whether `x` is written with at most `places` decimals, as far as a Double holds one
    /// (1.0001 is 10000.999999999998 ten-thousandths). The slack is absolute, a millionth of the
    /// last place: a Double's error at the flags' sizes (4096 × 10⁴) is under 10⁻⁸ of a unit, and
    /// a slack relative to the value let five places through from about 50 on (95.12345).
    static func hasAtMost(_ places: Int, decimalPlaces x: Double) -> Bool {
        let scaled = x * pow(10, Double(places))
        return abs(scaled - scaled.rounded()) <= 1e-6
    }

    func value(_ n: CLINumber) throws -> Double {
        guard let x = n.number else {
            let what = includesLower ? "a number \(allowed)" : "a positive number at most \(Self.text(upper))\(unit.isEmpty ? "" : " \(unit)")"
            throw ConfigError("\(flag) must be \(what), got \(n.quoted)")
        }
        guard contains(x) else {
            // "a whole number between 1 and 4096", "a whole number, positive and at most 4096".
            let what = whole ? (includesLower ? "a whole number \(allowed)" : "a whole number, \(allowed)") : allowed
            throw ConfigError("\(flag) must be \(what), got \(n.shown)")
        }
        return x
    }

    /// A time flag's value in seconds: plain seconds (`10`, as documented) or a time with a unit
    /// (`10s`, `500ms`, `2m`) as `--duration` and previews read it. `--header-timeout 10s` was
    /// refused as "must be a number". The range is the same either way.
    func seconds(_ n: CLINumber) throws -> Double {
        if n.number != nil { return try value(n) }
        guard let x = try? SimTime.checkedDuration(n.text) else {
            throw ConfigError("\(flag) must be a number \(allowed) (plain seconds or a time like 10s), got \(n.quoted)")
        }
        guard contains(x) else { throw ConfigError("\(flag) must be \(allowed), got \(n.shown)") }
        return x
    }

    /// The value as an Int; the range check comes first, so `Int(x)` cannot trap.
    func int(_ n: CLINumber) throws -> Int { Int(try value(n)) }

    static func text(_ x: Double) -> String {
        x.rounded() == x && abs(x) < 1e15 ? String(Int(x)) : String(x)
    }
}

/// Every numeric flag's range, in one table (run, serve, console, bench).
enum FlagLimits {
    /// "0 (no synthetic arrivals) or between 0.0001 and 10000 requests/s": the command
    /// language's rates (``CommandLimits/allowedRates``), one range for `--rate`, `rate R`,
    /// scenarios and the admin API; also used in `--help`.
    static var rateAllowed: String { CommandLimits.allowedRates }

    /// `--rate`: 0, or from ``CommandLimits/minNonzeroRate`` up to the command language's
    /// ceiling. Below that minimum a run sees no arrival at all (`1e-300` is one every 1e300 s),
    /// which `--rate 0` says plainly.
    static func rateValue(_ n: CLINumber) throws -> Double {
        guard let x = n.number, CommandLimits.isAllowedRate(x) else {
            throw ConfigError("--rate must be \(rateAllowed), got \(n.number == nil ? n.quoted : n.shown)")
        }
        return x
    }
    /// `--at` of `bench preview` and `bench snapshot`: 0 (no warm-up), or a millisecond up to an
    /// hour. A nonzero warm-up under a millisecond is shorter than any engine step, so it ran as
    /// 0 all the same, and the preview echoed it raw
    /// (`--at 1e-320` printed "at 1e-320s"); `--at 0` says "no warm-up" plainly.
    static let warmUpAllowed = "0 (no warm-up) or between 0.001 and 3600 s"
    static func warmUp(_ n: CLINumber) throws -> Double {
        guard let x = n.number, x == 0 || (0.001...3_600).contains(x) else {
            throw ConfigError("--at must be \(warmUpAllowed), got \(n.number == nil ? n.quoted : n.shown)")
        }
        return x
    }
    /// Coefficient of variation of the arrival gaps (1 = Poisson); far outside 0.1…10 the gamma
    /// sampler produces gaps of 0 or of centuries, which no traffic looks like.
    static let burstiness = FlagRange("--burstiness", 0.1...10)
    static let sloTTFTMs = FlagRange("--slo-ttft-ms", 0...3_600_000, positive: true, unit: "ms")
    static let sloTPOTMs = FlagRange("--slo-tpot-ms", 0...60_000, positive: true, unit: "ms")
    /// Below 10 ms the heartbeat rounds alone would be most of the simulated events.
    static let heartbeatInterval = FlagRange("--heartbeat-interval", 0.01...3_600, unit: "s")
    /// 0.001 itself is allowed (the README's range): as a "positive" range it was refused with a
    /// message saying "must be positive", which 0.001 and 0.0005 are.
    static let traceSpeedup = FlagRange("--trace-speedup", 0.001...1_000_000)
    static let heartbeatMisses = FlagRange("--heartbeat-misses", 1...1_000, whole: true)
    static let prewarmedSpares = FlagRange("--prewarmed-spares", 0...Double(Deployment.maxPrewarmedSpareTEs), whole: true)
    /// A year at a low rate is a legitimate soak; ten years bounds what anyone means.
    static let maxDurationSeconds: Double = 10 * 365 * 86_400
    /// One microbatch or two (the papers' two-microbatch overlap); the bench picks the faster by default.
    static let microbatches = FlagRange("--microbatches", 1...2, whole: true)
    /// A TCP port; 0 asks the system for a free one.
    static let port = FlagRange("--port", 0...65_535, unit: "", whole: true)
    /// `--port` as typed: in range (the range's own message), then written in digits. `-0` read
    /// as port 0 and bound a random port; `+80`, `80.0` and `8e1` bound port 80. A port is no
    /// quantity to write as a signed or decimal number: such text is a typo, refused.
    static func portValue(_ n: CLINumber) throws -> Int {
        let value = try port.int(n)
        guard isPortDigits(n.text) else {
            throw ConfigError("--port must be a whole number between 0 and 65535 written in digits, got \(n.quoted)")
        }
        guard !hasLeadingZero(n.text) else { throw ConfigError("--port \(leadingZeroRule), got \(n.quoted)") }
        return value
    }
    /// Whether `text` is a port as written: ASCII digits only (no sign, point, exponent or space).
    static func isPortDigits(_ text: some StringProtocol) -> Bool {
        !text.isEmpty && text.utf8.allSatisfy { $0 >= 48 && $0 <= 57 }
    }
    /// Whether a port's digits start with a zero that is not the whole port. `--port 0080` bound
    /// port 80, where some tools read 0080 as octal (and 010 as 8): which port was meant is a
    /// guess, so the text is refused (`0` alone, a free port, stays).
    static func hasLeadingZero(_ text: some StringProtocol) -> Bool {
        text.utf8.count > 1 && text.utf8.first == UInt8(ascii: "0")
    }
    static let leadingZeroRule = "must be a whole number between 0 and 65535 written in digits with no leading zero"
    /// How long `xds serve` waits for a client's bytes (``APIServer/ReadTimeouts``): under 0.1 s
    /// a client on a slow link could not send a head at all; an hour is far past any client's
    /// own timeout.
    static let headerTimeout = FlagRange("--header-timeout", 0.1...3_600, unit: "s")
    static let bodyTimeout = FlagRange("--body-timeout", 0.1...3_600, unit: "s")
    static let keepAliveTimeout = FlagRange("--keep-alive-timeout", 0.1...3_600, unit: "s")
    /// The command language's `speed` range (``CommandLimits``), so `--speed` and `speed S` agree.
    static let speed = FlagRange("--speed", CommandLimits.minSpeed...CommandLimits.maxSpeed,
                                 unit: "simulated seconds per wall second")
    /// 4096 requests per die is 40× the papers' decode batch of 96; KV capacity refuses far less.
    /// An average over the dies of a DP group and over the groups (half a request per GPU is one
    /// per TP2 pair; `xds run` ends at 5.19 per die on TP16), to four places: a step runs whole
    /// requests, and a hundredth of a request per die is already one request on a hundred dies.
    static let batchPerDie = FlagRange("--batch-per-die", 0...4_096, positive: true, unit: "requests per die",
                                       decimals: Bench.batchPerDieDecimals)
    /// Counts: a batch has whole tokens.
    static let tokensPerNPU = FlagRange("--tokens-per-npu", 0...1_048_576, positive: true, unit: "tokens per die", whole: true)
    static let mtpAcceptance = FlagRange("--mtp-acceptance", 0...1)
    static let contextCV = FlagRange("--context-cv", 0...Bench.maxContextCV)
    static let eventCount = FlagRange("--count", 1...50_000_000, unit: "events", whole: true)
    static let benchRepeat = FlagRange("--repeat", 1...100, unit: "runs", whole: true)
    /// `bench preview --wall-budget`: at least a tenth of a second (a slice of a busy pod takes
    /// that), at most an hour, as a run's other wall-clock bounds.
    static let previewWallBudget = FlagRange("--wall-budget", 0.1...3_600, unit: "s")
    static let frames = FlagRange("--frames", 1...100_000, unit: "frames", whole: true)

    /// A KV length no longer than the model's context window, and of one token at least: a
    /// decode request holds its prompt's KV (a prompt has a token at least), so a step over
    /// none is no request's (`--context 0` was priced).
    static func context(_ model: ModelSpec) -> FlagRange {
        FlagRange("--context", 0...Double(model.contextWindow), positive: true,
                  unit: "tokens (\(model.name)'s context window)", whole: true)
    }
    static func promptLen(_ model: ModelSpec) -> FlagRange {
        FlagRange("--prompt-len", 0...Double(model.contextWindow), positive: true,
                  unit: "tokens (\(model.name)'s context window)", whole: true)
    }

    static func seed(_ n: CLINumber, flag: String = "--seed") throws -> UInt64 {
        guard let s = UInt64(n.text.trimmingCharacters(in: .whitespaces)) else {
            throw ConfigError("\(flag) must be a whole number between 0 and \(UInt64.max), got \(n.quoted)")
        }
        return s
    }

    /// `90s`, `10m`, `1h30m` or plain seconds: a millisecond at least, ten years at most.
    /// Shorter than any engine step, `--duration 1e-320` ran no event and reported
    /// `"sim_seconds": 1e-320` and "0× real time" (as `bench preview --at` echoed it).
    static func duration(_ text: String) throws -> SimTime {
        let years = Int(maxDurationSeconds / (365 * 86_400))
        // Quoted only for a message: echoing input safely costs a millisecond of start-up.
        var quoted: String { CLINumber(argument: text).quoted }
        let d: SimTime
        do {
            d = try SimTime.checkedDuration(text)
        } catch {
            switch error.reason {
            // A negative time is below the range: say the range (`--duration -5s` was told only
            // "expected a time like 90s").
            case .outOfRange:
                throw ConfigError("--duration must be at least 1ms and at most \(years) years (\(Int(maxDurationSeconds)) s), got \(quoted)")
            // `--duration 1h1h` ran two hours: the one reader of times refuses it, naming the form.
            case .unitOrder:
                throw ConfigError("--duration: \(quoted) repeats a unit or puts a smaller one first; write \(SimTime.compoundForm)")
            case .malformed:
                throw ConfigError("--duration: expected a time like 90s, 10m or 1h (at most \(years) years), got \(quoted)")
            }
        }
        guard d >= 0.001, d <= maxDurationSeconds else {
            throw ConfigError("--duration must be at least 1ms and at most \(years) years (\(Int(maxDurationSeconds)) s), got \(quoted)")
        }
        return d
    }

    /// `max` (nil: as fast as possible) or a pace within the console's ladder.
    static func pace(_ text: String) throws -> Double? {
        // Any ASCII case, as the `speed max` command takes it.
        if PolicyNames.folded(text) == "max" { return nil }
        guard let x = CLINumber(argument: text).number, speed.contains(x) else {
            throw ConfigError("--speed must be 'max' or \(speed.allowed), got \(CLINumber(argument: text).quoted)")
        }
        return x
    }
}
