import ArgumentParser
import ServingEngine

/// `xds run …` read without ArgumentParser, for the plain command lines a replay uses.
///
/// ArgumentParser learns a command's options by reflecting on it at run time, and each Swift
/// type it meets costs a scan of every protocol conformance in the binary (~9,000 records):
/// parsing `run` through the command tree was 35 M of an Azure code replay's 352 M instructions,
/// a tenth of the whole process (issue 12 times whole processes).
///
/// Only a line of `--name value` options (each at most once, values non-empty and not starting
/// with `-`) and bare flags, all of `run`'s own, is read here; anything else (`--help`, `-h`,
/// `--version`, `--name=value`, completion requests, an unknown or repeated name, a value
/// ArgumentParser would refuse) returns nil and goes through ``XDS`` exactly as before, so help,
/// errors and exit codes are ArgumentParser's (interfaces.md). The values go through the same
/// `ExpressibleByArgument` conversions ArgumentParser uses, and omitted options take the
/// declarations' defaults (``RunDefaults``).
///
/// A new option of `run`, ``CommonOptions`` or ``DeploymentOption`` must be added here too: a
/// property left unset traps on first use, and debug builds check every fast parse against
/// ArgumentParser's.
///
/// ```swift
/// RunFastPath.parse(["--deployment", "superpod", "--quiet"])   // a Run
/// RunFastPath.parse(["--help"])                                 // nil: ArgumentParser answers
/// ```
enum RunFastPath {
    /// Options that take a value, by long name.
    static let valued: Set<String> = [
        "deployment", "model", "workload", "rate", "mix", "burstiness", "scenario", "seed", "slo-ttft-ms",
        "slo-tpot-ms", "eplb", "recovery-policy", "je-routing", "dp-balancing", "eplb-planner", "autoscale",
        "prewarmed-spares", "trace-speedup", "heartbeat-interval", "heartbeat-misses",
        "duration", "speed", "out", "requests-out", "timeline-out",
    ]
    /// Flags (no value), by long name.
    static let flags: Set<String> = [
        "kill-prefill-to-preserve-decode", "clip-to-context", "drain-migrates-decode", "json", "quiet", "print-config",
    ]

    /// The command for `arguments` (after `xds run`), or nil when ArgumentParser should read them.
    static func parse(_ arguments: ArraySlice<String>) -> Run? {
        var values: [String: String] = [:]
        var set: Set<String> = []
        var i = arguments.startIndex
        while i < arguments.endIndex {
            let argument = arguments[i]
            guard argument.hasPrefix("--"), !argument.contains("=") else { return nil }
            let name = String(argument.dropFirst(2))
            guard set.insert(name).inserted else { return nil }
            if flags.contains(name) {
                i += 1
                continue
            }
            guard valued.contains(name), i + 1 < arguments.endIndex else { return nil }
            let value = arguments[i + 1]
            guard !value.isEmpty, !value.hasPrefix("-") else { return nil }
            values[name] = value
            i += 2
        }
        return build(values: values, flags: set)
    }

    private static func build(values: [String: String], flags given: Set<String>) -> Run? {
        func number(_ name: String) -> CLINumber? { values[name].map(CLINumber.init(argument:)) }

        var deployment = DeploymentOption()
        deployment.deployment = values["deployment"] ?? RunDefaults.deployment
        deployment.model = values["model"]

        var common = CommonOptions()
        common.deployment = deployment
        common.workload = values["workload"] ?? RunDefaults.workload
        common.rate = number("rate")
        // Every option is assigned, nil included: an option wrapper never assigned traps when read.
        common.mix = nil
        if let text = values["mix"] {
            guard let mix = EngineConfiguration.TrafficMix(argument: text) else { return nil }
            common.mix = mix
        }
        common.burstiness = number("burstiness")
        common.scenario = values["scenario"]
        common.seed = number("seed") ?? RunDefaults.seed
        common.sloTTFTMs = number("slo-ttft-ms") ?? RunDefaults.sloTTFTMs
        common.sloTPOTMs = number("slo-tpot-ms") ?? RunDefaults.sloTPOTMs
        common.eplbGiven = nil
        if let text = values["eplb"] {
            guard let eplb = EPLBMode(argument: text) else { return nil }
            common.eplbGiven = eplb
        }
        common.recoveryPolicy = values["recovery-policy"]
        common.jeRouting = values["je-routing"]
        common.dpBalancing = values["dp-balancing"]
        common.eplbPlanner = values["eplb-planner"]
        common.autoscale = values["autoscale"]
        common.prewarmedSpares = number("prewarmed-spares")
        common.killPrefillToPreserveDecode = given.contains("kill-prefill-to-preserve-decode")
        common.clipToContext = given.contains("clip-to-context")
        common.traceSpeedup = number("trace-speedup")
        common.drainMigratesDecode = given.contains("drain-migrates-decode")
        common.heartbeatInterval = number("heartbeat-interval") ?? RunDefaults.heartbeatInterval
        common.heartbeatMisses = number("heartbeat-misses") ?? RunDefaults.heartbeatMisses

        var run = Run()
        run.common = common
        run.duration = values["duration"]
        run.speed = values["speed"] ?? RunDefaults.speed
        run.json = given.contains("json")
        run.out = values["out"]
        run.requestsOut = values["requests-out"]
        run.timelineOut = values["timeline-out"]
        run.quiet = given.contains("quiet")
        run.printConfig = given.contains("print-config")
        return run
    }
}

/// The defaults `run`'s options declare (``Run``, ``CommonOptions``, ``DeploymentOption``),
/// named once for the declarations and ``RunFastPath``. Options without one are nil or false.
enum RunDefaults {
    static let deployment = "superpod"
    static let workload = "synthetic"
    static let mix = EngineConfiguration.TrafficMix.mixed
    static let burstiness: CLINumber = 1
    static let seed: CLINumber = 1
    static let sloTTFTMs: CLINumber = 2000
    static let sloTPOTMs: CLINumber = 35
    static let eplb = EPLBMode.on
    static let heartbeatInterval: CLINumber = 1
    static let heartbeatMisses: CLINumber = 3
    static let speed = "max"
}
