import ArgumentParser
import Foundation
import PodModel
import ServingEngine
import SimKit

/// The options console, serve and run share (interfaces.md, "Common options").
struct CommonOptions: ParsableArguments {
    @OptionGroup var deployment: DeploymentOption

    @Option(help: "synthetic, or a trace file (Azure LLM CSV or Mooncake JSONL, recognised by content).")
    var workload: String = "synthetic"

    @Option(help: "Synthetic arrival rate in requests/s.")
    var rate: Double?

    @Option(help: "Synthetic traffic: mixed (70% chat, 30% reasoning), chat, or reasoning.")
    var mix: EngineConfiguration.TrafficMix = .mixed

    @Option(help: "Burstiness of synthetic arrivals: coefficient of variation of the gaps (1 = Poisson).")
    var burstiness: Double = 1

    @Option(help: "Scenario file (TOML): commands applied at given simulated times.")
    var scenario: String?

    @Option(help: "Seed of every random stream; same seed + config + commands = same result.")
    var seed: UInt64 = 1

    @Option(name: .customLong("slo-ttft-ms"), help: "Time-to-first-token SLO in ms.")
    var sloTTFTMs: Double = 2000

    @Option(name: .customLong("slo-tpot-ms"), help: "Time-per-output-token SLO in ms.")
    var sloTPOTMs: Double = 35

    @Option(help: "Expert load balancing: off, on or perfect.")
    var eplb: EPLBMode = .on

    @Option(help: "Fault recovery policy: fine-grained (default), pd-failover or restart-world.")
    var recoveryPolicy: String = RecoveryPolicies.defaultName

    @Flag(help: "When decode needs NPUs and the spare pool is empty, kill a prefill TE and use its NPUs.")
    var killPrefillToPreserveDecode = false

    @Flag(help: "drain node N migrates the node's running decode requests to other DP groups (KV copied over UB).")
    var drainMigratesDecode = false

    @Option(help: "Seconds between heartbeat rounds (control plane → TE-shell → DP masters).")
    var heartbeatInterval: Double = 1

    @Option(help: "Silent heartbeat rounds before a TE is declared stuck.")
    var heartbeatMisses: Int = 3

    /// The engine configuration, with every input checked first (a bad trace line stops here).
    func engineConfiguration(defaultRate: Double) throws -> EngineConfiguration {
        let d = try deployment.resolve()
        var config = EngineConfiguration(deployment: d, seed: seed)
        if let rate {
            guard rate >= 0, rate.isFinite else { throw ConfigError("--rate must be a non-negative number, got \(rate)") }
        }
        config.syntheticRate = rate ?? defaultRate
        guard burstiness > 0, burstiness.isFinite else { throw ConfigError("--burstiness must be positive, got \(burstiness)") }
        config.trafficMix = mix
        config.eplb = eplb
        config.arrivalCV = burstiness
        guard sloTTFTMs > 0, sloTPOTMs > 0 else { throw ConfigError("--slo-ttft-ms and --slo-tpot-ms must be positive") }
        config.sloTTFTMs = sloTTFTMs
        config.sloTPOTMs = sloTPOTMs
        guard RecoveryPolicies.names.contains(recoveryPolicy) else {
            throw ConfigError("--recovery-policy: unknown policy '\(recoveryPolicy)'; expected one of: "
                + RecoveryPolicies.names.joined(separator: ", "))
        }
        config.recoveryPolicy = recoveryPolicy
        config.faults.killPrefillToPreserveDecode = killPrefillToPreserveDecode
        config.faults.migrateDecodeOnDrain = drainMigratesDecode
        guard heartbeatInterval > 0, heartbeatInterval.isFinite, heartbeatMisses >= 1 else {
            throw ConfigError("--heartbeat-interval must be positive and --heartbeat-misses at least 1")
        }
        config.faults.heartbeatIntervalSeconds = heartbeatInterval
        config.faults.missedHeartbeatsToDeclare = heartbeatMisses
        if workload != "synthetic" {
            guard FileManager.default.fileExists(atPath: workload) else {
                throw ConfigError("\(workload): no such workload file (expected 'synthetic' or a trace file)")
            }
            _ = try TraceWorkload.check(path: workload)
            if rate != nil { throw ConfigError("--rate applies to the synthetic workload, not to a trace") }
            config.workload = .trace(path: workload)
        }
        return config
    }

    func loadScenario() throws -> Scenario? {
        guard let scenario else { return nil }
        return try Scenario.load(path: scenario)
    }
}
