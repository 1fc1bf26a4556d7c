/// Arithmetic that never traps, for quantities that come from outside (trace token counts,
/// operator factors, deployment sizes). Swift's `Int(_: Double)` traps on NaN, ±∞ and values
/// beyond `Int`'s range, and `+`/`*` trap on overflow; an operations tool must not crash on a
/// number it accepted, so the engine converts and multiplies sizes through these helpers.
///
/// ```swift
/// Int(saturating: 1e300)                   // Int.max
/// Int(saturating: .nan)                    // 0
/// Saturating.add(Int.max, 5)               // Int.max
/// Saturating.ceilDiv(Int.max, 128)         // no overflow in (x + 127) / 128
/// ```
extension Int {
    /// `value` truncated towards zero and clamped to `Int.min…Int.max`; NaN becomes `nan`
    /// (0 unless told otherwise). Agrees with `Int(value)` wherever that does not trap.
    @inlinable
    public init(saturating value: Double, nan: Int = 0) {
        if value.isNaN {
            self = nan
        } else if value >= 0x1p63 {
            self = .max
        } else if value <= -0x1p63 {
            self = .min
        } else {
            self = Int(value)
        }
    }

    /// `value.rounded()` (half away from zero) for 0 ≤ value < 2⁵², without libm's `round`
    /// call; nil for any other value (NaN too), which the caller rounds the long way. Below 2⁵²
    /// the fraction `value − ⌊value⌋` is exact, so comparing it with a half rounds as `rounded()`
    /// does. Hot paths round a latency, a drawn length and a share per request (issue 12: a libm
    /// call each).
    @inlinable @inline(__always)
    public init?(roundingSmallNonNegative value: Double) {
        guard value >= 0, value < 0x1p52 else { return nil }
        let whole = Int(value)
        self = value - Double(whole) >= 0.5 ? whole + 1 : whole
    }
}

/// Saturating integer arithmetic and safe time helpers (see ``Swift/Int/init(saturating:nan:)``).
public enum Saturating {
    /// `a + b`, clamped to `Int`'s range.
    @inlinable
    public static func add(_ a: Int, _ b: Int) -> Int {
        let (sum, overflow) = a.addingReportingOverflow(b)
        return overflow ? (b > 0 ? .max : .min) : sum
    }

    /// `a - b`, clamped to `Int`'s range.
    @inlinable
    public static func subtract(_ a: Int, _ b: Int) -> Int {
        let (difference, overflow) = a.subtractingReportingOverflow(b)
        return overflow ? (b < 0 ? .max : .min) : difference
    }

    /// `a * b`, clamped to `Int`'s range.
    @inlinable
    public static func multiply(_ a: Int, _ b: Int) -> Int {
        let (product, overflow) = a.multipliedReportingOverflow(by: b)
        return overflow ? ((a < 0) == (b < 0) ? .max : .min) : product
    }

    /// ⌈x / d⌉ for x ≥ 0 and d > 0 without the overflow of `(x + d - 1) / d`; negative x
    /// gives 0 and d ≤ 0 gives `Int.max` (a size that fits nowhere).
    @inlinable
    public static func ceilDiv(_ x: Int, _ d: Int) -> Int {
        guard d > 0 else { return .max }
        guard x > 0 else { return 0 }
        let (q, r) = x.quotientAndRemainder(dividingBy: d)
        return r == 0 ? q : q + 1
    }

    /// A finite, non-negative duration: NaN and negatives become 0, ∞ and anything beyond
    /// `limit` become `limit`.
    @inlinable
    public static func duration(_ seconds: Double, limit: Double) -> Double {
        guard seconds > 0 else { return 0 }  // also NaN
        return seconds < limit ? seconds : limit
    }
}

extension SimTime {
    /// `self + delay` for a positive `delay`, but never `self` itself: an event rescheduled "one
    /// interval later" must land strictly after now, even where `delay` is below the resolution
    /// of the clock (late in a very long run), or the clock would stop at one instant.
    ///
    /// ```swift
    /// let t: SimTime = 1e300
    /// t.after(0.5) > t       // true (t + 0.5 == t)
    /// ```
    @inlinable
    public func after(_ delay: SimTime) -> SimTime {
        let next = self + delay
        return next > self ? next : nextUp
    }
}

extension SimTime {
    /// The first point of the cadence `0, step, 2·step, …` strictly after `self`, each point
    /// `k·step` rounded to the microsecond. A cadence kept by adding `step` to the last point
    /// drifts off the decimal times people type (ten additions of 0.1 s make 0.9999999999999999,
    /// thirty-three make 3.3000000000000016), so whether a round came before or after an event at
    /// "3.3 s" depended on that drift; on this grid the point is 3.3 itself. Falls back to
    /// ``after(_:)`` where the clock cannot resolve the grid (very late, or a step under 1 µs).
    ///
    /// ```swift
    /// (3.3 as SimTime).nextOnGrid(every: 0.1)   // 3.4, not 3.4000000000000017
    /// ```
    @inlinable
    public func nextOnGrid(every step: SimTime) -> SimTime {
        guard step >= 1e-6, step.isFinite, isFinite, self >= 0, self < 1e9 else { return after(step) }
        var k = (self / step).rounded(.down) + 1
        for _ in 0..<2 {
            let point = (k * step * 1e6).rounded() / 1e6
            if point > self { return point }
            k += 1
        }
        return after(step)
    }
}

extension SimTime {
    /// The point of the cadence `0, step, 2·step, …` nearest `self`, on the microsecond grid of
    /// ``nextOnGrid(every:)`` (`self` itself where that grid does not apply).
    @inlinable
    public func nearestOnGrid(every step: SimTime) -> SimTime {
        guard step >= 1e-6, step.isFinite, isFinite, self >= 0, self < 1e9 else { return self }
        return ((self / step).rounded() * step * 1e6).rounded() / 1e6
    }
}
