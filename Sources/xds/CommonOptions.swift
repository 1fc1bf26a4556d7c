import ArgumentParser
import Foundation
import PodModel
import ServingEngine
import SimKit

/// The options console, serve and run share (interfaces.md, "Common options"). `xds run` also
/// reads them in ``RunFastPath``: an option added here is added there.
struct CommonOptions: ParsableArguments {
    @OptionGroup var deployment: DeploymentOption

    @Option(help: "synthetic, or a trace file (Azure LLM CSV, BurstGPT CSV or Mooncake JSONL, recognised by content).")
    var workload: String = RunDefaults.workload

    /// `--workload synthetic` in any ASCII case, as every other named word of the command line
    /// (`--mix CHAT`, `--eplb ON`, `--speed MAX`, `--deployment SUPERPOD`) is taken: `SYNTHETIC`
    /// was looked up as a trace file and refused as missing. A file of that name is `./SYNTHETIC`.
    var isSyntheticWorkload: Bool { PolicyNames.folded(workload) == RunDefaults.workload }

    @Option(parsing: .unconditional, help: ArgumentHelp(
        "Synthetic arrival rate in requests/s: \(FlagLimits.rateAllowed).",
        discussion: "Default: run 10, serve 0, console its demo cycle (40 with --scenario), sized for superpod and "
            + "scaled to another deployment's decode capacity (a report's workload.rate_per_s says what ran)."))
    var rate: CLINumber?

    // Optional, so that giving one with a trace is refused rather than ignored (as --rate is).
    @Option(help: "Synthetic traffic: mixed (70% chat, 30% reasoning), chat, or reasoning (default: mixed).")
    var mix: EngineConfiguration.TrafficMix?

    @Option(parsing: .unconditional,
            help: "Burstiness of synthetic arrivals: coefficient of variation of the gaps (1 = Poisson), \(FlagLimits.burstiness.allowed) (default: 1).")
    var burstiness: CLINumber?

    // `bench preview` and `bench snapshot` share these options but apply no scenario step
    // (``refuseScenario(in:)``): their help listed --scenario as if they took it.
    @Option(help: "Scenario file (TOML): commands applied at given simulated times (run, serve and console; bench preview and snapshot refuse it).")
    var scenario: String?

    @Option(parsing: .unconditional, help: "Seed of every random stream; same seed + config + commands = same result.")
    var seed: CLINumber = RunDefaults.seed

    @Option(name: .customLong("slo-ttft-ms"), parsing: .unconditional,
            help: "Time-to-first-token SLO in ms, \(FlagLimits.sloTTFTMs.allowed).")
    var sloTTFTMs: CLINumber = RunDefaults.sloTTFTMs

    @Option(name: .customLong("slo-tpot-ms"), parsing: .unconditional,
            help: "Time-per-output-token SLO in ms, \(FlagLimits.sloTPOTMs.allowed).")
    var sloTPOTMs: CLINumber = RunDefaults.sloTPOTMs

    // Optional, so that giving one for a dense model (no experts) is refused rather than taken
    // and ignored, as `bench decode` and `bench prefill` refuse it.
    @Option(name: .customLong("eplb"), help: "Expert load balancing of an MoE model: off, on or perfect (default: on).")
    var eplbGiven: EPLBMode?
    var eplb: EPLBMode { eplbGiven ?? RunDefaults.eplb }

    @Option(help: "Fault recovery policy (default: the deployment's [policies] recovery, else fine-grained): \(Policies.help(Policies.recovery)).")
    var recoveryPolicy: String?

    @Option(help: "JE routing of requests to prefill TEs: \(Policies.help(Policies.routing)).")
    var jeRouting: String?

    @Option(help: "Decode DP load balancing: \(Policies.help(Policies.decodeBalancing)).")
    var dpBalancing: String?

    @Option(help: "EPLB planner (the mode is --eplb): \(Policies.help(Policies.eplbPlanner)).")
    var eplbPlanner: String?

    @Option(help: "Autoscaler (default: the deployment's [policies] autoscaler or [scaling] autoscale, else off): \(Policies.help(Policies.autoscaler)).")
    var autoscale: String?

    @Option(parsing: .unconditional,
            help: ArgumentHelp("Pre-warmed spares: TEs' worth of spare NPUs whose hosts keep the weights in DRAM (warm ≈5 s loads), "
                + "\(FlagLimits.prewarmedSpares.allowed) and at most what the deployment's spare NPUs hold (its spare NPUs "
                + "over the NPUs of its smallest TE: 6 on superpod; a larger value is refused naming the bound) "
                + "(default: the deployment's)."))
    var prewarmedSpares: CLINumber?

    @Flag(help: "When decode needs NPUs and the spare pool is empty, kill a prefill TE and use its NPUs.")
    var killPrefillToPreserveDecode = false

    @Flag(help: "Cut a trace's prompts that are longer than the model's context window to the window (prompt + output ≤ window, as Vidur does) instead of refusing the trace.")
    var clipToContext = false

    @Option(parsing: .unconditional,
            help: "Replay a trace's arrivals K times faster (\(FlagLimits.traceSpeedup.allowed); below 1 slows them down).")
    var traceSpeedup: CLINumber?

    @Flag(help: "drain node N migrates the node's running decode requests to other DP groups (KV copied over UB).")
    var drainMigratesDecode = false

    @Option(parsing: .unconditional,
            help: "Seconds between heartbeat rounds (control plane → TE-shell → DP masters), \(FlagLimits.heartbeatInterval.allowed).")
    var heartbeatInterval: CLINumber = RunDefaults.heartbeatInterval

    @Option(parsing: .unconditional,
            help: "Silent heartbeat rounds before a TE is declared stuck, \(FlagLimits.heartbeatMisses.allowed).")
    var heartbeatMisses: CLINumber = RunDefaults.heartbeatMisses

    /// The engine configuration, with every input checked first (a bad trace line stops here).
    /// The numeric flags are checked before anything is read, each against its range in
    /// ``FlagLimits``, so a bad one is one line and nothing has been built yet.
    /// The engine for `config`. What only the engine finds wrong with a deployment file (no
    /// prefill or decode capacity, weights that leave no HBM for KV) names the file and the line
    /// of the group it is about, as every other problem with it does
    /// (`x.toml:5: llama-3-70b weights leave no HBM for KV cache on the colocated group: …`).
    func makeEngine(_ config: EngineConfiguration) throws -> ServingEngine {
        do {
            return try ServingEngine(configuration: config)
        } catch let error as ConfigError {
            let path = deployment.deployment
            guard path.hasSuffix(".toml") else {
                // A preset or inline layout fitted to `--model` is changed in a file of its own.
                guard deployment.model != nil else { throw error }
                throw ConfigError("\(error.description) (start a file from this layout with --print-config)")
            }
            guard !error.description.hasPrefix(path) else { throw error }
            // The file read again for the line (the engine has no I/O and the deployment keeps no
            // positions); unreadable now, the refusal names the file alone.
            let text = try? TOMLDocument.read(path: path, what: "deployment file")
            throw config.deployment.placed(error, source: path, text: text)
        }
    }

    /// `defaultRate`: the synthetic rate without `--rate`, sized for `superpod`; another deployment
    /// gets it scaled to its decode capacity (``Bench/defaultRate(_:for:)``), as the console's demo.
    func engineConfiguration(defaultRate: Double) throws -> EngineConfiguration {
        try engineSetup(defaultRate: defaultRate).config
    }

    /// ``engineConfiguration(defaultRate:)`` and the deployment's decode capacity scale
    /// (``Bench/decodeCapacityScale(for:)``) where it was worked out for the default rate (no
    /// `--rate` on the synthetic workload), else nil: the console scales its demo by the same
    /// figure, and worked it out twice at start-up.
    func engineSetup(defaultRate: Double) throws -> (config: EngineConfiguration, capacityScale: Double?) {
        let rate = try self.rate.map(FlagLimits.rateValue)
        let arrivalCV = try FlagLimits.burstiness.value(burstiness ?? RunDefaults.burstiness)
        let seed = try FlagLimits.seed(seed)
        let sloTTFTMs = try FlagLimits.sloTTFTMs.value(sloTTFTMs)
        let sloTPOTMs = try FlagLimits.sloTPOTMs.value(sloTPOTMs)
        let heartbeatInterval = try FlagLimits.heartbeatInterval.value(heartbeatInterval)
        let heartbeatMisses = try FlagLimits.heartbeatMisses.int(heartbeatMisses)
        let prewarmed = try prewarmedSpares.map { try FlagLimits.prewarmedSpares.int($0) }
        let policies = try policyFlags()
        let traceSpeedup = try self.traceSpeedup.map(FlagLimits.traceSpeedup.value)
        if isSyntheticWorkload, traceSpeedup != nil {
            throw ConfigError("--trace-speedup applies to a trace, not to the synthetic workload (use --rate)")
        }
        // Accepted and ignored, it read as if synthetic prompts were clipped (they are drawn
        // within the window already).
        if isSyntheticWorkload, clipToContext {
            throw ConfigError("--clip-to-context applies to a trace, not to the synthetic workload (its prompts fit the window)")
        }
        if !isSyntheticWorkload {
            for (flag, given) in [("--rate", rate != nil), ("--mix", mix != nil), ("--burstiness", burstiness != nil)] where given {
                throw ConfigError("\(flag) applies to the synthetic workload, not to a trace")
            }
        }
        let d = try deployment.resolve()  // checks the file's `[policies]` names too
        try refuseExpertFlags(onDense: d.modelSpec())
        var config = EngineConfiguration(deployment: d, seed: seed)
        // Worked out only when used (two bench steps): a trace replay's process is measured whole.
        let capacityScale = rate == nil && isSyntheticWorkload ? Bench.decodeCapacityScale(for: d) : nil
        config.syntheticRate = rate ?? capacityScale.map { Bench.defaultRate(defaultRate, scale: $0) } ?? defaultRate
        config.trafficMix = mix ?? RunDefaults.mix
        config.eplb = eplb
        config.arrivalCV = arrivalCV
        config.sloTTFTMs = sloTTFTMs
        config.sloTPOTMs = sloTPOTMs
        config.policies = policies
        config.faults.killPrefillToPreserveDecode = killPrefillToPreserveDecode
        config.faults.migrateDecodeOnDrain = drainMigratesDecode
        config.scaling.prewarmedSpareTEs = try checkedPrewarmedSpares(prewarmed, on: d) ?? d.prewarmedSpareTEs
        config.faults.heartbeatIntervalSeconds = heartbeatInterval
        config.faults.missedHeartbeatsToDeclare = heartbeatMisses
        if !isSyntheticWorkload {
            guard FileManager.default.fileExists(atPath: workload) else {
                throw ConfigError("\(workload.isEmpty ? "''" : workload): no such workload file (expected 'synthetic' or a trace file)")
            }
            // One parse: the checked requests are replayed (kept for traces up to 64 MB).
            let checked = try TraceWorkload.checkKeepingRequests(
                path: workload, maxContextTokens: d.modelSpec().contextWindow, clipToContext: clipToContext,
                speedup: traceSpeedup ?? 1)
            config.checkedTrace = checked.trace
            // Notes on stderr carry the `xds: ` prefix, as every other line xds writes there.
            if checked.summary.failedInSourceRows > 0 {
                let n = checked.summary.failedInSourceRows
                StandardError.write(Data(("xds: \(workload): \(n) row\(n == 1 ? "" : "s") with 0 response "
                    + "tokens (requests the traced service failed) \(n == 1 ? "is" : "are") not replayed\n").utf8))
            }
            if checked.summary.zeroOutputRows > 0 {
                let n = checked.summary.zeroOutputRows
                StandardError.write(Data(("xds: \(workload): \(n) row\(n == 1 ? " asks" : "s ask") for 0 output "
                    + "tokens; \(n == 1 ? "it is" : "each is") served as 1 (a prefill always yields the first token)\n").utf8))
            }
            if checked.summary.clippedRows > 0 {
                let n = checked.summary.clippedRows
                StandardError.write(Data(("xds: \(workload): \(n) row\(n == 1 ? " is" : "s are") longer than "
                    + "the model's context window (\(try d.modelSpec().contextWindow) tokens) and cut to it (--clip-to-context)\n").utf8))
            }
            config.clipTracePromptsToContext = clipToContext
            config.traceSpeedup = traceSpeedup ?? 1
            config.workload = .trace(path: workload)
        }
        return (config, capacityScale)
    }

    /// `--prewarmed-spares` (already within its 0…64) checked against what `d`'s spare NPUs hold:
    /// more was cut to the spares the pod has without a word. Nil when the flag is not given.
    func checkedPrewarmedSpares(_ value: Int?, on d: Deployment) throws -> Int? {
        guard let value else { return nil }
        if value > 0, let room = d.prewarmRoom(), value > room.most {
            throw ConfigError("--prewarmed-spares must be between 0 and \(room.most) on deployment '\(d.name.terminalSafe)' "
                + "(\(room.reason)), got \(value)")
        }
        return value
    }

    /// A dense model has no experts to balance: `--eplb perfect` (or an EPLB planner) on one was
    /// taken, exit 0, and the run was the same as without it. Refused with `bench`'s wording.
    func refuseExpertFlags(onDense model: ModelSpec) throws {
        guard !model.isMoE else { return }
        let given = [eplbGiven.map { _ in "--eplb" }, eplbPlanner.map { _ in "--eplb-planner" }].compactMap { $0 }
        guard let flag = given.first else { return }
        throw ConfigError("\(flag): \(model.name) is a dense model with no experts to balance or route; "
            + "leave \(given.joined(separator: ", ")) out")
    }

    /// Refuses `--scenario` in a command that only drives the engine itself (`bench snapshot`,
    /// `bench preview`): their warm-up and timed loop apply no scenario step, so a scenario given
    /// there was taken, not even read (a missing file passed), and the figures were those of the
    /// workload alone.
    func refuseScenario(in command: String) throws {
        guard scenario != nil else { return }
        throw ConfigError("--scenario applies to run, serve and console; \(command) applies no scenario step "
            + "(leave --scenario out)")
    }

    /// The scenario, each step checked against the pod it will run on (a node, NPU, die or
    /// fault id that does not exist is refused here, before the run starts).
    /// `deployment` is the configuration's (resolved once: resolving prints `--model`'s changes).
    func loadScenario(for deployment: Deployment) throws -> Scenario? {
        guard let scenario else { return nil }
        return try Scenario.load(path: scenario, topology: deployment.topology())
    }
}
