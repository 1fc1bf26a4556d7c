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
