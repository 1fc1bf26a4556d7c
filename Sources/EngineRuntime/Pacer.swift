import ServingEngine
import SimKit

/// Maps simulated time to wall time: paused, a multiple of real time, or as fast as possible.
///
/// Pure arithmetic over wall-clock readings the host passes in, so it is tested without a clock.
///
/// ```swift
/// var pacer = Pacer(speed: 1)
/// pacer.start(wall: 0, sim: 0)
/// pacer.target(wall: 2.5)          // 2.5 simulated seconds
/// pacer.setSpeed(10, wall: 2.5, sim: 2.5)
/// pacer.target(wall: 3.5)          // 12.5
/// ```
public struct Pacer: Sendable, Equatable {
    /// Simulated seconds per wall second; `nil` runs as fast as possible.
    public private(set) var speed: Double?
    public private(set) var paused = false
    private var anchorWall = 0.0
    private var anchorSim = 0.0

    /// Speeds the console steps through with `+` / `-` (issue 4: 0.1× … 1000×, then max).
    public static let ladder: [Double] = [0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000]

    /// Paced speeds the host accepts (`speed S`, `--speed S`); beyond it only `max` (unpaced).
    /// Below the range simulated time would stand still in all but name; above it a pacer
    /// target is no limit at all.
    public static let speedRange: ClosedRange<Double> = CommandLimits.minSpeed...CommandLimits.maxSpeed

    /// The one-line refusal for a speed outside ``speedRange`` (nil when it is inside).
    public static func speedProblem(_ speed: Double) -> String? {
        guard !speedRange.contains(speed) else { return nil }
        return "speed must be within \(format(speedRange.lowerBound))…\(format(speedRange.upperBound)) "
            + "(simulated seconds per wall second) or 'max', got \(speed.isFinite ? format(speed) : String(speed))"
    }

    /// Shortest text for a speed or a bound: integers without ".0".
    public static func format(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int(value)) : String(value)
    }

    public init(speed: Double?) { self.speed = speed }

    public mutating func start(wall: Double, sim: SimTime) {
        anchorWall = wall
        anchorSim = sim
    }

    /// Where simulated time should be at this wall time (`nil`: no limit).
    public func target(wall: Double) -> SimTime? {
        if paused { return anchorSim }
        guard let speed else { return nil }
        return anchorSim + (wall - anchorWall) * speed
    }

    public mutating func setSpeed(_ newSpeed: Double?, wall: Double, sim: SimTime) {
        speed = newSpeed
        start(wall: wall, sim: sim)
    }

    public mutating func pause(wall: Double, sim: SimTime) {
        paused = true
        start(wall: wall, sim: sim)
    }

    public mutating func resume(wall: Double, sim: SimTime) {
        paused = false
        start(wall: wall, sim: sim)
    }

    /// The engine fell behind (too much work for this speed): forget the debt rather than sprint.
    public mutating func rebase(wall: Double, sim: SimTime) { start(wall: wall, sim: sim) }
}
