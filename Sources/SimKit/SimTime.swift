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
    /// Parses a duration as operators write it: `90`, `90s`, `500ms`, `10m`, `1h`, `1.5h`,
    /// `1h30m`. Returns nil for anything else, including negative values.
    ///
    /// ```swift
    /// SimTime.parseDuration("10m")     // 600
    /// ```
    public static func parseDuration(_ text: String) -> SimTime? {
        let s = text.trimmingCharacters(in: .whitespaces).lowercased()
        guard !s.isEmpty else { return nil }
        if let plain = Double(s) { return plain >= 0 && plain.isFinite ? plain : nil }
        var total = 0.0
        var number = ""
        var rest = Substring(s)
        let units: [(String, Double)] = [("ms", 0.001), ("h", 3600), ("m", 60), ("s", 1)]
        while let c = rest.first {
            if c.isNumber || c == "." {
                number.append(c)
                rest = rest.dropFirst()
                continue
            }
            guard let value = Double(number), let unit = units.first(where: { rest.hasPrefix($0.0) }) else { return nil }
            total += value * unit.1
            rest = rest.dropFirst(unit.0.count)
            number = ""
        }
        guard number.isEmpty, total.isFinite else { return nil }
        return total
    }
}
