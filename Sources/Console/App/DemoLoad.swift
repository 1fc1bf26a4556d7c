import Foundation
import ServingEngine

/// The console's default demo when no `--rate` and no `--scenario` are given: a daily-cycle-like
/// synthetic arrival rate with bursts, as a scenario of `rate R` steps, so queues, KV and experts
/// move and the header shows what comes next. Deterministic: the same steps every run.
///
/// The rate follows `mean + swing · sin(2π t / period − π/2)` (a trough at t = 0, a peak half a
/// period later), sampled every `step` seconds; every `burstEvery` seconds from `firstBurst` it is
/// `burstFactor`× higher for `burstLength` seconds.
public enum DemoLoad {
    public static let mean = 40.0
    public static let swing = 15.0
    /// One simulated "day", compressed: 20 minutes.
    public static let period = 1200.0
    public static let step = 15.0
    public static let firstBurst = 240.0
    public static let burstEvery = 300.0
    public static let burstLength = 30.0
    public static let burstFactor = 1.5
    /// Steps cover two hours of simulated time; the last rate then stays.
    public static let horizon = 7200.0

    /// The requested arrival rate (requests/s) at simulated time `t`, 0.1 req/s resolution.
    public static func rate(at t: Double) -> Double {
        let phase = 2 * Double.pi * t / period - Double.pi / 2
        var r = mean + swing * sin(phase)
        let sinceFirst = t - firstBurst
        if sinceFirst >= 0, sinceFirst.truncatingRemainder(dividingBy: burstEvery) < burstLength { r *= burstFactor }
        return (r * 10).rounded() / 10
    }

    public static var scenario: Scenario {
        var steps: [Scenario.Step] = []
        var last: Double?
        var t = 0.0
        while t <= horizon {
            let r = rate(at: t)
            if r != last { steps.append(Scenario.Step(at: t, command: .rate(requestsPerSecond: r))) }
            last = r
            t += step
        }
        return Scenario(
            name: "demo: daily cycle \(Int(mean - swing))…\(Int(mean + swing)) req/s, bursts ×\(Format.fixed(burstFactor, 1))",
            steps: steps)
    }
}
