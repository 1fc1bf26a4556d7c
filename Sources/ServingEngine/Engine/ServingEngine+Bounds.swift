import PodModel
import SimKit

/// The engine's own bounds (issue 10), beside the entry points' parsers: a configuration the
/// engine cannot run is refused with the field and the allowed range, and numbers that arrive
/// through accepted commands (slowdown factors, durations the cost model derives from them) are
/// clamped so no event lands at infinity or at a time the clock cannot leave.
extension ServingEngine {
    /// Longest delay of any scheduled event (a step, a transfer, an outage): about 31.7 years of
    /// simulated time. Longer ones (a straggler slowed 10³⁰⁰×) are clamped to it.
    public static let longestDelay: SimTime = 1e9

    /// Largest slowdown factor of a straggler die or a degraded link, and of the product of
    /// several degraded links on one path. A million times slower is as good as stopped, and
    /// keeps every derived duration finite.
    public static let maxSlowdownFactor = 1e6

    /// Most faults active at once; a further `fault …` is refused until some are healed.
    public static let maxActiveFaults = 1_024

    /// Highest synthetic arrival rate (requests/s) the engine takes, from the configuration or
    /// the `rate` command.
    public static let maxSyntheticRate = CommandLimits.maxRate

    /// Most KV blocks over all DP groups of the engine (each costs a few dozen bytes of
    /// bookkeeping): the `superpod` layout needs about 1 % of it.
    public static let maxKVBlocks = 1 << 25

    /// A duration clamped to 0…``longestDelay`` (NaN → 0).
    static func delay(_ seconds: Double) -> SimTime { Saturating.duration(seconds, limit: longestDelay) }

    /// A slowdown factor clamped to 1…``maxSlowdownFactor`` (NaN → 1).
    static func slowdownFactor(_ factor: Double) -> Double {
        guard factor > 1 else { return 1 }
        return min(factor, maxSlowdownFactor)
    }
}

extension EngineConfiguration {
    /// Problems that would make the engine trap or stop its clock, as one line naming the field
    /// and the allowed range; nil when the configuration can run.
    public func validationProblem() -> String? {
        func range(_ name: String, _ value: Double, _ low: Double, _ high: Double, _ unit: String = "",
                   lowOpen: Bool = false) -> String? {
            let ok = value.isFinite && (lowOpen ? value > low : value >= low) && value <= high
            return ok ? nil : "\(name) is \(value); allowed \(lowOpen ? "above " : "")\(format(low))…\(format(high))\(unit)"
        }
        func range(_ name: String, _ value: Int, _ low: Int, _ high: Int) -> String? {
            (low...high).contains(value) ? nil : "\(name) is \(value); allowed \(low)…\(high)"
        }
        func format(_ x: Double) -> String { x == x.rounded() && abs(x) < 1e15 ? String(Int(x)) : "\(x)" }
        let checks: [String?] = [
            // The command language's rule, one for every way in (a rate just above 0 would put the
            // next arrival centuries away; 0 says "no synthetic arrivals" plainly).
            CommandLimits.isAllowedRate(syntheticRate) ? nil
                : "syntheticRate is \(syntheticRate); allowed \(CommandLimits.allowedRates)",
            // Below 10⁻³ the gamma's scale underflows (SimKit's Gamma traps on a zero scale).
            range("arrivalCV", arrivalCV, 1e-3, 1_000),
            // Above 0, as the CLI's flags: the autoscaler divides by the TTFT SLO (0 made its wait
            // share NaN, and a NaN share never lets it scale down), and an SLO of 0 ms no request meets.
            range("sloTTFTMs", sloTTFTMs, 0, 1e12, " ms", lowOpen: true),
            range("sloTPOTMs", sloTPOTMs, 0, 1e12, " ms", lowOpen: true),
            range("mtpAcceptance", mtpAcceptance, 0, 1),
            range("kvBlockTokens", kvBlockTokens, 1, 1 << 20),
            range("kvMemoryFraction", kvMemoryFraction, 0, 1, lowOpen: true),
            range("prefillTokensPerNPU", prefillTokensPerNPU, 1, 1 << 30),
            range("colocatedChunkTokens", colocatedChunkTokens, 1, 1 << 30),
            range("longPromptTokens", longPromptTokens, 0, Int.max),
            range("maxWaitingPerPrefillInstance", maxWaitingPerPrefillInstance, 0, Int.max),
            range("poolBytesPerNode", poolBytesPerNode, 0, 1e18, " bytes"),
            range("eplbIntervalSeconds", eplbIntervalSeconds, 1e-3, 1e9, " s"),
            range("snapshotInterval", snapshotInterval, 1e-3, 86_400, " s"),
            range("seriesCapacity", seriesCapacity, 1, 1_000_000),
            range("eventCapacity", eventCapacity, 1, 10_000_000),
            range("faults.heartbeatIntervalSeconds", faults.heartbeatIntervalSeconds, 1e-3, 86_400, " s"),
            range("faults.missedHeartbeatsToDeclare", faults.missedHeartbeatsToDeclare, 1, 1_000_000),
            range("faults.componentRestartSeconds", faults.componentRestartSeconds, 0, ServingEngine.longestDelay, " s"),
            range("faults.defaultStragglerSlowdown", faults.defaultStragglerSlowdown, 1, ServingEngine.maxSlowdownFactor),
            Policies.problem(in: deployment.policies, origin: "deployment '\(deployment.name)' [policies] "),
            Policies.problem(in: policies, origin: "policies: "),
        ]
        return checks.compactMap { $0 }.first.map { "engine configuration: \($0)" }
    }
}
