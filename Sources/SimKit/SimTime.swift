import Foundation

/// Simulated time in seconds since the start of a run.
///
/// A plain `Double` keeps arithmetic cheap and readable in the engine; the helpers below
/// make unit conversions explicit at the call site.
///
/// ```swift
/// let t: SimTime = .milliseconds(49.4)   // 0.0494 s
/// print(t.milliseconds)                  // 49.4
/// ```
public typealias SimTime = Double

extension SimTime {
    /// `value` milliseconds as seconds.
    @inlinable public static func milliseconds(_ value: Double) -> SimTime { value / 1_000 }
    /// `value` microseconds as seconds.
    @inlinable public static func microseconds(_ value: Double) -> SimTime { value / 1_000_000 }
    /// `value` minutes as seconds.
    @inlinable public static func minutes(_ value: Double) -> SimTime { value * 60 }
    /// This time in milliseconds.
    @inlinable public var milliseconds: Double { self * 1_000 }
    /// This time in microseconds.
    @inlinable public var microseconds: Double { self * 1_000_000 }
}

extension SimTime {
    /// The longest duration (and the latest time) operators can write: 10^10 s, about 317
    /// years. Far beyond any run, yet small enough that a Double still resolves
    /// microseconds at that distance, so engine arithmetic stays meaningful.
    public static let maxDuration: SimTime = 1e10

    /// Why a duration did not parse; `message` is one line and names the allowed range.
    public struct DurationError: Error, Sendable, Equatable, CustomStringConvertible {
        /// What was wrong, so a caller with a narrower range or its own wording (a preview's
        /// 1s…1h, a flag's name) can word the same refusal its way.
        public enum Reason: Sendable, Equatable {
            /// Not a time at all (`soon`, `5x`, `inf`).
            case malformed
            /// A time, but negative or beyond ``SimTime/maxDuration``.
            case outOfRange
            /// A unit named twice or after a smaller one (`1h1h`, `30m1h`).
            case unitOrder
        }
        public var message: String
        public var reason: Reason = .malformed
        public var description: String { message }
    }

    /// The form of a compound time, named in the refusal of one that repeats or reorders units.
    public static let compoundForm = "each of h, m, s, ms at most once, largest first (like 1h30m or 2m30s)"

    /// Parses a duration as operators write it: `90`, `90s`, `500ms`, `10m`, `1h`, `1.5h`,
    /// `1h30m`. Returns nil for anything else, including negative values, `nan`, `inf` and
    /// durations beyond ``maxDuration``; ``checkedDuration(_:)`` says why.
    ///
    /// ```swift
    /// SimTime.parseDuration("10m")     // 600
    /// ```
    public static func parseDuration(_ text: String) -> SimTime? {
        try? checkedDuration(text)
    }

    /// Like ``parseDuration(_:)``, but a refusal says what was wrong:
    /// `expected a time like 90s, 10m or 1h, got 'soon'` or
    /// `time '1e12s' is out of range; expected 0 to 10000000000 s (about 317 years)`.
    public static func checkedDuration(_ text: String) throws(DurationError) -> SimTime {
        let s = text.trimmingCharacters(in: .whitespaces).lowercased()
        // Echoed on one line: control, line-separator and bidi characters become '?', long input is cut.
        let shown = String(String.UnicodeScalarView(s.unicodeScalars.prefix(40).map { scalar in
            let v = scalar.value
            let unsafe = v < 0x20 || (0x7F...0x9F).contains(v) || v == 0x2028 || v == 0x2029
                || (0x202A...0x202E).contains(v) || (0x2066...0x2069).contains(v)
            return unsafe ? "?" : scalar
        })) + (s.unicodeScalars.count > 40 ? "…" : "")
        let malformed = DurationError(message: "expected a time like 90s, 10m or 1h, got '\(shown)'")
        let outOfRange = DurationError(message: "time '\(shown)' is out of range; expected 0 to 10000000000 s (about 317 years)",
                                       reason: .outOfRange)
        // `1h1h` was summed to 2h and `30m1h` to 1h30m: a repeated or reordered unit is more
        // likely a typo than a sum anyone meant, so it is refused naming the form.
        let unitOrder = DurationError(message: "time '\(shown)' repeats a unit or puts a smaller one first; write \(compoundForm)",
                                      reason: .unitOrder)
        // A nonzero numeral that underflows to 0 (`1e-400s`) was read as 0 s: a scenario step
        // `at = "1e-400s"` ran at the start. Refused, as the flags and commands refuse `1e-400`.
        let underflow = DurationError(message: "time '\(shown)' underflows to 0; write 0 if 0 is meant", reason: .outOfRange)
        func underflows(_ numeral: String, _ value: Double) -> Bool {
            value == 0 && numeral.prefix { $0 != "e" }.contains { ("1"..."9").contains($0) }
        }
        guard !s.isEmpty, s.utf8.count <= 256 else { throw malformed }
        // A negative time (`at = "-5s"`, `at = -5`) is a time below the range, not a malformed
        // one: say the range, as for one above it (it was told only "expected a time like 90s").
        if s.hasPrefix("-"), let magnitude = parseDuration(String(s.dropFirst())) {
            // `-0` is zero, which is in range: TOML's `at = -0.0` was refused as "out of range;
            // expected 0 to …", naming a range the value is in.
            if magnitude == 0 { return 0 }
            throw outOfRange
        }
        var total = 0.0
        var number = ""
        var rest = Substring(s)
        // Matched in this order (`ms` before `m`, `min` before `m`); the third field ranks the
        // unit, largest first: each may follow only a larger one. `min` is the preview's old
        // spelling of a minute (`for 10min`), kept now that previews read times here.
        let units: [(String, Double, Int)] = [("ms", 0.001, 3), ("min", 60, 1), ("h", 3600, 0), ("m", 60, 1), ("s", 1, 2)]
        var lastRank = -1
        while let c = rest.first {
            if c.isASCII && (c.isNumber || c == ".") {
                number.append(c)
                rest = rest.dropFirst()
                if rest.first == "e", let after = rest.dropFirst().first, after.isASCII && (after.isNumber || after == "+" || after == "-") {
                    // An exponent: 1e3, 2.5e-1.
                    number.append("e")
                    number.append(after)
                    rest = rest.dropFirst(2)
                }
                continue
            }
            guard let value = Double(number), let unit = units.first(where: { rest.hasPrefix($0.0) }) else { throw malformed }
            if underflows(number, value) { throw underflow }
            guard unit.2 > lastRank else { throw unitOrder }
            lastRank = unit.2
            total += value * unit.1
            rest = rest.dropFirst(unit.0.count)
            number = ""
        }
        if !number.isEmpty {
            // A plain number: seconds.
            guard total == 0, s == number, let plain = Double(number) else { throw malformed }
            if underflows(number, plain) { throw underflow }
            total = plain
        }
        guard total.isFinite, total >= 0, total <= maxDuration else { throw outOfRange }
        return total
    }
}
