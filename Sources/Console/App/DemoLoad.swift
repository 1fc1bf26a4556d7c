import Foundation
import PodModel
import ServingEngine

/// The console's default demo when no `--rate` and no `--scenario` are given: a daily-cycle-like
/// synthetic arrival rate with bursts, as a scenario of `rate R` steps, so queues, KV and experts
/// move and the header shows what comes next. Deterministic: the same steps every run.
///
/// The rate follows `mean + swing · sin(2π t / period − π/2)` (a trough at t = 0, a peak half a
/// period later), sampled every `step` seconds; every `burstEvery` seconds from `firstBurst` it is
/// `burstFactor`× higher for `burstLength` seconds.
///
/// Those rates are sized for `superpod` (its SLO holds 99.8% at 40 req/s and starts to slip near
/// 150: `xds run --rate R --duration 300s`). Another deployment's
/// demo scales them by its decode capacity over the superpod's (``scale(for:)``), so two A100s
/// get a fraction of a request per second instead of drowning in 25–55.
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
    /// Steps cover a simulated day (72 cycles, 5,761 steps); the last rate then stays. Two hours
    /// ran out in 72 s of a demo at `speed 100`, and the load went flat ("all steps done").
    public static let horizon = 86_400.0

    /// The requested arrival rate (requests/s) at simulated time `t`, 0.1 req/s resolution on the
    /// superpod's scale, times `scale`.
    public static func rate(at t: Double, scale: Double = 1) -> Double {
        let phase = 2 * Double.pi * t / period - Double.pi / 2
        var r = mean + swing * sin(phase)
        let sinceFirst = t - firstBurst
        if sinceFirst >= 0, sinceFirst.truncatingRemainder(dividingBy: burstEvery) < burstLength { r *= burstFactor }
        let rounded = (r * 10).rounded() / 10
        guard scale != 1 else { return rounded }
        // Never below the slowest rate the command language takes (a deployment millions of times
        // smaller than the superpod would otherwise get a step `rate` refuses).
        let scaled = threeDigits(rounded * scale)
        return scaled > 0 ? max(scaled, CommandLimits.minNonzeroRate) : scaled
    }

    /// `x` to three significant digits, as the decimal reads (n / 10ᵏ, both exact), so a `rate`
    /// step says `rate 0.283`, not `rate 0.28254643`.
    static func threeDigits(_ x: Double) -> Double {
        guard x.isFinite, x > 0 else { return x }
        let k = 2 - Int(Foundation.log10(x).rounded(.down))
        if k <= 0 {
            let unit = Foundation.pow(10, Double(-k))
            return (x / unit).rounded() * unit
        }
        let unit = Foundation.pow(10, Double(k))
        return (x * unit).rounded() / unit
    }

    public static var scenario: Scenario { scenario(scale: 1) }

    /// The demo with every rate times `scale` (``scale(for:)``); `scale` 1 is the superpod's.
    public static func scenario(scale: Double) -> Scenario {
        let scale = scale.isFinite && scale > 0 ? scale : 1
        var steps: [Scenario.Step] = []
        var last: Double?
        var t = 0.0
        while t <= horizon {
            let r = rate(at: t, scale: scale)
            if r != last { steps.append(Scenario.Step(at: t, command: .rate(requestsPerSecond: r))) }
            last = r
            t += step
        }
        let range = "\(compact((mean - swing) * scale))…\(compact((mean + swing) * scale)) req/s"
        return Scenario(name: "demo: daily cycle \(range), bursts ×\(Format.fixed(burstFactor, 1))", steps: steps)
    }

    /// How this deployment's decode capacity compares with the superpod's
    /// (``Bench/decodeCapacityScale(for:)``).
    public static func scale(for deployment: Deployment) -> Double {
        Bench.decodeCapacityScale(for: deployment)
    }

    /// A rate for the header: whole requests from 10/s, tenths from 1/s, hundredths below.
    static func compact(_ r: Double) -> String {
        r >= 9.95 ? "\(Int(r.rounded()))" : r >= 0.995 ? Format.fixed(r, 1) : Format.fixed(r, 2)
    }
}
