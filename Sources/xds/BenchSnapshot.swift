import ArgumentParser
import Foundation
import ServingEngine

/// `xds bench snapshot`: what one ``ServingEngine/snapshot()`` costs on a loaded engine (issue
/// 12: under 1 ms on a saturated superpod). The engine runs to `--at` (untimed), then takes
/// `--count` snapshots, each after `--every` simulated seconds more (so every snapshot has new
/// samples and nothing is served from a cache); only the snapshot calls are timed.
///
/// ```
/// xds bench snapshot --mix reasoning            # saturated superpod (--rate 400 is the default)
/// xds bench snapshot --rate 40 --count 50
/// ```
struct BenchSnapshot: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "snapshot", abstract: "Wall time of one engine snapshot on a loaded engine (mean, median, max)")

    @OptionGroup var common: CommonOptions
    @Option(parsing: .unconditional, help: "Simulated seconds to run before the first snapshot (untimed): \(FlagLimits.warmUpAllowed).")
    var at: CLINumber = 120
    @Option(parsing: .unconditional, help: "Snapshots to take, 1…10000.")
    var count: CLINumber = 100
    @Option(parsing: .unconditional, help: "Simulated seconds between snapshots (untimed), 0.01…60.")
    var every: CLINumber = 0.5
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        let warmUp = try FlagLimits.warmUp(at)
        let gap = try FlagRange("--every", 0.01...60, unit: "s").value(every)
        let n = try FlagRange("--count", 1...10_000, whole: true).int(count)
        try common.refuseScenario(in: "bench snapshot")
        let config = try common.engineConfiguration(defaultRate: 400)
        let engine = try common.makeEngine(config)
        engine.run(until: warmUp)
        func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }
        var times: [Double] = []
        var t = engine.now
        var inFlight = 0
        var busiest = 0
        for _ in 0..<n {
            t += gap
            engine.run(until: t)
            let began = now()
            let snapshot = engine.snapshot()
            times.append(Double(now() - began) / 1e6)
            inFlight = snapshot.requests.inFlight
            busiest = max(busiest, inFlight)
        }
        // No request in flight at any snapshot (`--rate 0`, a trace over by `--at`, a rate too
        // low to arrive in time): the times are an idle engine's, cheaper than the loaded one's
        // the bench is for, and were printed as if they were.
        let idle = busiest == 0
        let sorted = times.sorted()
        let mean = times.reduce(0, +) / Double(times.count)
        // The median of an even count is the mean of the middle two: `sorted[count / 2]` alone
        // was the upper one, so two snapshots showed their max as the median.
        let middle = sorted.count / 2
        let median = sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
        let worst = sorted.last ?? 0
        if json {
            try printJSON(SnapshotBenchResult(snapshots: n, meanMs: mean, medianMs: median, maxMs: worst, inFlight: inFlight,
                                              idle: idle))
        } else {
            print("\(n) snapshot\(n == 1 ? "" : "s") of \(config.deployment.name) \(config.workloadPhrase), "
                  + "\(inFlight) requests in flight at the end")
            print(String(format: "snapshot: mean %.3f ms, median %.3f ms, max %.3f ms (target < 1 ms)", mean, median, worst))
            if idle {
                let hint = config.workload == .synthetic ? "raise --rate" : "take an --at before the trace ends"
                print("idle engine: no request was in flight at any snapshot, so these are an idle engine's times, "
                      + "not a loaded one's (\(hint))")
            }
        }
    }
}

/// `xds bench snapshot --json`.
struct SnapshotBenchResult: Encodable {
    var snapshots: Int
    var meanMs, medianMs, maxMs: Double
    var inFlight: Int
    /// True when no request was in flight at any snapshot: the times are an idle engine's.
    var idle: Bool
    enum CodingKeys: String, CodingKey {
        case snapshots, meanMs = "mean_ms", medianMs = "median_ms", maxMs = "max_ms", inFlight = "in_flight", idle
    }
}

extension EngineConfiguration {
    /// What the bench's engine serves, for its one-line summary: "at 400.0 req/s (mixed)" for the
    /// synthetic workload, "replaying FILE" (and its speed-up) for a trace. A trace run said
    /// "at 400.0 req/s (mixed)", the synthetic default it never ran.
    var workloadPhrase: String {
        switch workload {
        case .synthetic:
            return "at \(syntheticRate) req/s (\(trafficMix))"
        case .trace(let path):
            let name = URL(fileURLWithPath: path).lastPathComponent
            return "replaying \(name)" + (traceSpeedup == 1 ? "" : " ×\(FlagRange.text(traceSpeedup))")
        }
    }
}
