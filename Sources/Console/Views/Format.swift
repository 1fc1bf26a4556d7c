import ServingEngine

/// Number formatting shared by the views: short, fixed-ish widths, units in the text.
enum Format {
    /// Simulated seconds as h:mm:ss.
    static func clock(_ seconds: Double) -> String {
        let total = seconds.isFinite && seconds > 0 ? Int(min(seconds, 1e12)) : 0
        let h = total / 3600, m = (total / 60) % 60, s = total % 60
        return "\(h):\(pad2(m)):\(pad2(s))"
    }

    /// A span of time, short: "42 s", "1:18 min", "1:02:03 h".
    static func duration(_ seconds: Double) -> String {
        let total = seconds.isFinite && seconds > 0 ? Int(min(seconds, 1e12).rounded()) : 0
        if total < 60 { return "\(total) s" }
        if total < 3600 { return "\(total / 60):\(pad2(total % 60)) min" }
        return "\(clock(Double(total))) h"
    }

    /// h:mm:ss.t for event timestamps.
    static func clockTenths(_ seconds: Double) -> String {
        let fraction = seconds.isFinite ? seconds - seconds.rounded(.down) : 0
        // A hair of tolerance: 600.4 is stored as 600.39999… and must read .4, not .3.
        let tenths = Int((fraction * 10 + 1e-6).rounded(.down))
        return "\(clock(seconds)).\(min(9, max(0, tenths)))"
    }

    static func pad2(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }

    /// One decimal place without Foundation's formatter.
    static func fixed(_ value: Double, _ digits: Int = 1) -> String {
        // Int() traps beyond ±9.2e18; no console number is meaningful that large.
        guard value.isFinite, abs(value) < 1e15 else { return "–" }
        var scale = 1.0
        for _ in 0..<digits { scale *= 10 }
        let scaled = (abs(value) * scale).rounded()
        let whole = Int(scaled / scale)
        let frac = Int(scaled) - whole * Int(scale)
        let sign = value < 0 && scaled > 0 ? "-" : ""
        if digits == 0 { return "\(sign)\(whole)" }
        var f = String(frac)
        while f.count < digits { f = "0" + f }
        return "\(sign)\(whole).\(f)"
    }

    /// A target as the operator gave it (an SLO of 35.5 ms): the fewest decimals from
    /// `minDigits` up to `maxDigits` that write it whole. Rounded to a whole number,
    /// `--slo-tpot-ms 35.5` read "/36ms", and a p99 of 35.7 ms stood red against a target it
    /// looked under.
    static func exact(_ value: Double, minDigits: Int = 0, maxDigits: Int = 3) -> String {
        var scale = 1.0
        for _ in 0..<minDigits { scale *= 10 }
        for digits in minDigits..<max(minDigits, maxDigits) {
            if abs((value * scale).rounded() / scale - value) <= 1e-9 * max(1, abs(value)) { return fixed(value, digits) }
            scale *= 10
        }
        return fixed(value, max(minDigits, maxDigits))
    }

    /// An SLO as ``ms(_:)`` writes a latency ("35.0ms", "2.00s"), with more decimals where it
    /// needs them to be written whole: "35.25ms", "2.555s" (``ms(_:)`` has 151ms for 150.5).
    static func target(_ ms: Double) -> String {
        if ms >= 10_000 { return exact(ms / 1000, minDigits: 1, maxDigits: 4) + "s" }
        if ms >= 1000 { return exact(ms / 1000, minDigits: 2, maxDigits: 4) + "s" }
        if ms >= 100 { return exact(ms) + "ms" }
        return exact(ms, minDigits: 1) + "ms"
    }

    /// An arrival rate in requests/s: tenths from 1 req/s (150.0), hundredths below (0.14), where
    /// a small deployment's rates live: its demo steps 0.144 → 0.251 showed as 0.1 → 0.3.
    static func rate(_ value: Double) -> String { fixed(value, abs(value) < 0.995 ? 2 : 1) }

    /// 812, 24.3k, 1.2M.
    static func count(_ value: Double) -> String {
        let v = abs(value)
        if v >= 1e6 { return fixed(value / 1e6) + "M" }
        if v >= 1e4 { return fixed(value / 1e3) + "k" }
        return fixed(value, 0)
    }

    static func count(_ value: Int) -> String { count(Double(value)) }

    /// 3.1ms, 182ms, 1.82s.
    static func ms(_ value: Double) -> String {
        if value >= 10_000 { return fixed(value / 1000, 1) + "s" }
        if value >= 1000 { return fixed(value / 1000, 2) + "s" }
        if value >= 100 { return fixed(value, 0) + "ms" }
        return fixed(value, 1) + "ms"
    }

    static func percent(_ share: Double) -> String { fixed(share * 100, 0) + "%" }

    static func gigabytes(_ bytes: Double) -> String { fixed(bytes / 1e9, 1) }

    static func speed(_ speed: Double?, paused: Bool) -> String {
        if paused { return "⏸ paused" }
        guard let speed else { return "▶ max" }
        return "▶ \(ConsoleUpdate.formatSpeed(speed))×"
    }

    /// Requested speed with the achieved one beside it: "▶ 1000× (≈312× achieved)".
    static func speed(_ speed: Double?, paused: Bool, achieved: Double?, short: Bool = false) -> String {
        let requested = Self.speed(speed, paused: paused)
        guard !paused, let achieved, achieved.isFinite else { return requested }
        let value =
            achieved >= 100 ? String(Int(achieved.rounded())) : achieved >= 10 ? fixed(achieved, 0) : fixed(achieved, 1)
        return requested + (short ? " (≈\(value)×)" : " (≈\(value)× achieved)")
    }

    /// Left-pads or clips to `width`.
    static func right(_ s: String, _ width: Int) -> String {
        s.count >= width ? String(s.prefix(width)) : String(repeating: " ", count: width - s.count) + s
    }

    static func left(_ s: String, _ width: Int) -> String {
        s.count >= width ? String(s.prefix(width)) : s + String(repeating: " ", count: width - s.count)
    }

    static func roleLetter(_ role: NPURole) -> Character {
        switch role {
        case .prefill: "P"
        case .decode: "D"
        case .attention: "A"
        case .expert: "E"
        case .colocated: "C"
        case .spare: "·"
        }
    }
}
