import ArgumentParser
import Foundation
import PodModel
import ServingEngine
import SimKit

/// Its options are also read by ``RunFastPath`` (a new one is added there too).
struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Headless run; prints a report at the end (JSON with --json).",
        discussion: "A trace run lasts until every request has finished unless --duration is given; a synthetic run lasts 10 minutes of simulated time by default.")

    @OptionGroup var common: CommonOptions
    @Option(parsing: .unconditional, help: "Simulated time to run, e.g. 90s, 10m, 1h (at least 1ms, at most 10 years).")
    var duration: String?
    @Option(parsing: .unconditional, help: "max (default), or simulated seconds per wall second (\(FlagLimits.speed.allowed)).")
    var speed: String = RunDefaults.speed
    @Flag(help: "Print the report as JSON.") var json = false
    @Option(help: "Also write the JSON report to this file.") var out: String?
    @Option(help: "Write one row per request that left the system to this file: JSON Lines, or CSV with a header if the name ends in .csv.")
    var requestsOut: String?
    @Option(help: "Write a timeline of instance steps, KV transfers, faults, drains, rebalances and commands to this file (Chrome trace JSON; Perfetto opens it).")
    var timelineOut: String?
    @Flag(help: "No progress line on stderr.") var quiet = false
    @Flag(help: "Print the deployment as TOML (a starting point for --deployment FILE.toml) and exit.")
    var printConfig = false

    func run() throws {
        if printConfig {
            let d = try common.deploymentWithPolicies()
            // The file holds the layout and the policies, nothing else: `--print-config --eplb off`
            // printed a file that runs with EPLB on, and `--out cfg.toml`, `--json`, `--rate 5`
            // were taken and ignored. Refused after the held flags' own checks.
            let unheld = GivenOptions.names(in: Array(CommandLine.arguments.dropFirst()), valued: RunFastPath.valued)
                .filter { !Self.heldByPrintConfig.contains($0) && $0 != "print-config" && $0 != "quiet" }
            if !unheld.isEmpty {
                let list = unheld.map { "--\($0)" }.joined(separator: ", ")
                throw ConfigError("--print-config prints a deployment file, which cannot hold \(list); leave "
                    + "\(unheld.count == 1 ? "it" : "them") out and give \(unheld.count == 1 ? "it" : "them") to the run that reads the file")
            }
            print(d.toml(), terminator: "")
            return
        }
        // Flags first (FlagLimits), then files: a bad number is refused before anything is read.
        var limit = try duration.map(FlagLimits.duration)
        let pace = try FlagLimits.pace(speed)
        if let out { try Self.checkWritable(out) }
        if let requestsOut { try Self.checkWritable(requestsOut, flag: "--requests-out") }
        if let timelineOut { try Self.checkWritable(timelineOut, flag: "--timeline-out") }
        try Self.checkOutputsAreNew(
            outputs: [("--out", out), ("--requests-out", requestsOut), ("--timeline-out", timelineOut)],
            inputs: [("--workload", common.isSyntheticWorkload ? nil : common.workload), ("--scenario", common.scenario),
                     ("--deployment", common.deployment.deployment.hasSuffix(".toml") ? common.deployment.deployment : nil)])
        let config = try common.engineConfiguration(defaultRate: 10)
        let scenario = try common.loadScenario(for: config.deployment)
        if case .synthetic = config.workload, limit == nil { limit = 600 }
        if let limit, let scenario, let note = Self.lateStepsNote(scenario, runEnds: limit) {
            StandardError.write(Data("xds: \(common.scenario ?? "--scenario"): \(note)\n".utf8))
        }
        if let scenario, let note = Self.pacingStepsNote(scenario) {
            StandardError.write(Data("xds: \(common.scenario ?? "--scenario"): \(note)\n".utf8))
        }
        let engine = try common.makeEngine(config)
        if let note = engine.autoscalerNote { StandardError.write(Data("xds: \(note)\n".utf8)) }
        // Observers only read: the run is the same with or without these files.
        let rows = try requestsOut.map {
            RequestRowWriter(file: try OutputFile(path: $0, flag: "--requests-out"), csv: RequestRowWriter.writesCSV($0))
        }
        let timeline = try timelineOut.map { TimelineWriter(file: try OutputFile(path: $0, flag: "--timeline-out")) }
        engine.observers = EngineObservers(requestFinished: rows.map { rows in { rows.add($0) } },
                                           step: timeline.map { timeline in { timeline.add($0) } },
                                           event: timeline.map { timeline in { timeline.add($0) } })
        engine.observers.transfer = timeline.map { timeline in { timeline.add($0) } }
        defer {
            rows?.close()
            timeline?.close()
        }
        let driver = RunDriver(engine: engine, scenario: scenario, limit: limit, pace: pace,
                               progress: !quiet && isatty(STDERR_FILENO) == 1)
        var report = driver.run()
        report.wallSeconds = driver.wallSeconds
        // A trace run without --duration ends with its last request, a time not known before the
        // run: steps timed after it were dropped without a word (the report's `commands` was the
        // only trace), where a --duration run names them before it starts.
        if limit == nil, let scenario, let note = Self.unreachedStepsNote(scenario, stepsRun: driver.stepsRun, runEnded: engine.now) {
            StandardError.write(Data("xds: \(common.scenario ?? "--scenario"): \(note)\n".utf8))
        }
        let encoder = JSONOutput.encoder(pretty: true)
        let data = try encoder.encode(report)
        // The report reaches stdout before any file: a full disk must not throw the run away.
        if json {
            print(String(decoding: data, as: UTF8.self))
        } else {
            // With prefill and decode on the same dies there is no "decode die" to count per.
            let colocated = config.deployment.moeAttention == nil && config.deployment.group(.decode) == nil
            // EPLB on a layout it cannot change (one expert per die, no redundant slot): said,
            // so that "rebalances 0" beside an imbalance of 3.8 does not read as a planner that failed.
            let nothingToMove = config.eplb == .on && engine.expertPlacementFixed
            print(ReportSummary.text(report, colocated: colocated, benchFlags: benchFlags(config),
                                     eplbHasNothingToMove: nothingToMove,
                                     moeAttention: config.deployment.moeAttention != nil))
        }
        // `xds run --json > report.json` on a full disk exited 0 with the report lost (an empty
        // file): stdout that did not take the report fails the run, as `--out` does. Checked here,
        // before the output files, not only when run() returns (Main), which it never does.
        try ReportOutput.flush()
        var outFailure: String?
        if let out {
            do { try OutputFile.write(data + Data("\n".utf8), to: out, flag: "--out") } catch {
                outFailure = (error as? ConfigError)?.description ?? "\(error)"
            }
        }
        rows?.close()
        timeline?.close()
        if let failure = outFailure ?? rows?.failure ?? timeline?.failure { throw ConfigError(failure) }
        // The pre-run check passed but the replay met a bad row (the file changed since):
        // the report covers only the requests before it, so the run must not look complete.
        if let stop = engine.workloadError {
            throw ConfigError("\(stop); the trace changed after its check and its replay stopped at this line")
        }
        // Done, and everything written: leave without tearing the engine down object by object
        // (a saturated superpod's requests, KV tables and event queue were 5% of a 60 s run's
        // instructions; the OS takes the memory back at once).
        fflush(nil)  // every C stream, stdout included (print writes through it)
        Foundation.exit(EXIT_SUCCESS)
    }

    /// The flags `bench decode` needs to price this run's decode step, in the summary's
    /// `bench decode …` line: the options of this run whose bench default differs (the bench
    /// runs superpod, its own model, EPLB on and seed 1 by default, so a run on any other
    /// deployment got a line that priced superpod's step). A dense model takes neither `--eplb`
    /// nor `--seed` in bench (nothing to balance or route), so neither is written for one.
    func benchFlags(_ config: EngineConfiguration) -> String {
        var flags = ""
        if common.deployment.deployment != RunDefaults.deployment {
            flags += " --deployment \(ShellWord.quoted(common.deployment.deployment).terminalSafe)"
        }
        if let model = common.deployment.model { flags += " --model \(ShellWord.quoted(model).terminalSafe)" }
        guard (try? config.deployment.modelSpec())?.isMoE ?? false else { return flags }
        if config.eplb != RunDefaults.eplb { flags += " --eplb \(config.eplb.rawValue)" }
        if config.seed != 1 { flags += " --seed \(config.seed)" }
        return flags
    }
}

/// A word as a POSIX shell reads it back: as is when it holds only characters no shell treats
/// specially, else in single quotes (a deployment file's path may hold spaces).
enum ShellWord {
    static func quoted(_ word: String) -> String {
        let plain = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._/:+-,=@%")
        if !word.isEmpty, word.allSatisfy({ plain.contains($0) }) { return word }
        return "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }
}

extension Run {
    /// The options `--print-config` carries into the file it prints (``CommonOptions/deploymentWithPolicies()``).
    static let heldByPrintConfig: Set<String> = [
        "deployment", "model", "je-routing", "dp-balancing", "eplb-planner", "recovery-policy", "autoscale", "prewarmed-spares",
    ]

    /// A note for steps that pace a live clock (`pause`, `resume`, `speed`): `xds run` keeps the
    /// pace of its `--speed`, so they are logged and counted but change nothing; nil when none.
    static func pacingStepsNote(_ scenario: Scenario) -> String? {
        let pacing = scenario.steps.filter {
            switch $0.command {
            case .pause, .resume, .speed, .speedMax: true
            default: false
            }
        }
        guard let first = pacing.first else { return nil }
        let count = pacing.count == 1 ? "1 step paces" : "\(pacing.count) steps pace"
        return "\(count) the clock of a console or server (the first: '\(first.command)' at \(Format.stepTime(first.at))); "
            + "xds run keeps its own pace (--speed), so \(pacing.count == 1 ? "it changes" : "they change") nothing here"
    }

    /// A note for scenario steps timed after the run's end (they never run), or nil. Not an
    /// error: running the first minutes of a long scenario is a fair thing to do.
    static func lateStepsNote(_ scenario: Scenario, runEnds limit: SimTime) -> String? {
        let late = scenario.steps.filter { $0.at > limit }
        guard let first = late.first else { return nil }
        let count = late.count == 1 ? "1 step comes" : "\(late.count) steps come"
        // Times as written (a step at 1.5 s after a 1.2 s run read "ends at 0:00:01 … at 0:00:01").
        return "\(count) after the run ends at \(Format.stepTime(limit)) and will not run "
            + "(the first: '\(first.command)' at \(Format.stepTime(first.at))); raise --duration to include them"
    }

    /// A note for scenario steps a run without `--duration` never reached (its trace's requests
    /// had all finished first), or nil when every step ran.
    static func unreachedStepsNote(_ scenario: Scenario, stepsRun: Int, runEnded end: SimTime) -> String? {
        let unreached = scenario.steps.dropFirst(stepsRun)
        guard let first = unreached.first else { return nil }
        let count = unreached.count == 1 ? "1 step did" : "\(unreached.count) steps did"
        return "\(count) not run: the trace's requests had all finished at \(Format.clock(end, milliseconds: true)) "
            + "(the first: '\(first.command)' at \(Format.stepTime(first.at))); give --duration to run on to them"
    }

    /// Refuses an `--out` that cannot be written before the run, not after an hour of it.
    static func checkWritable(_ path: String, flag: String = "--out") throws {
        let shown = path.isEmpty ? "''" : path
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) {
            guard !isDirectory.boolValue, FileManager.default.isWritableFile(atPath: path) else {
                throw ConfigError("\(flag) \(shown): cannot write there")
            }
            return
        }
        guard !path.isEmpty else { throw ConfigError("\(flag) '': cannot write there (an empty path)") }
        // Not there yet: create it and take it away again, as writing it will. Asking whether
        // the parent is writable said yes for `/proc/x` and for a path under a regular file
        // (`report.toml/x.json`), and `--out` then failed after the whole run (the other outputs
        // are opened before it and failed at once).
        // (Through a link that points nowhere yet: writing it creates its target.)
        let target = resolvingLinks(path)
        let fd = open(target, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw ConfigError("\(flag) \(shown): cannot write there (\(String(cString: strerror(errno))))")
        }
        close(fd)
        unlink(target)
    }
}

extension Run {
    /// Refuses an output file that is also an input or another output: `--requests-out` naming
    /// the `--workload` trace truncated the trace (it was gone after the run), and two outputs on
    /// one file interleave. Only regular files count (`--out /dev/null --requests-out /dev/null`
    /// is fine); an existing file is matched by device and inode, so `./t.jsonl` is `t.jsonl`.
    static func checkOutputsAreNew(outputs: [(flag: String, path: String?)], inputs: [(flag: String, path: String?)]) throws {
        func identity(_ path: String) -> String? {
            var info = stat()
            guard stat(path, &info) == 0 else { return Self.futureIdentity(path) }
            return (info.st_mode & S_IFMT) == S_IFREG ? "file:\(info.st_dev):\(info.st_ino)" : nil
        }
        var seen: [String: String] = [:]
        for (flag, path) in inputs {
            if let path, let id = identity(path), seen[id] == nil { seen[id] = flag }
        }
        for (flag, path) in outputs {
            guard let path, let id = identity(path) else { continue }
            if let earlier = seen[id] {
                let what = earlier.hasSuffix("-out") ? "also written by \(earlier)" : "the \(earlier) file"
                throw ConfigError("\(flag) \(InputEcho.quoted(path, limit: 200)) is \(what); write to another file")
            }
            seen[id] = flag
        }
    }

    /// Where a file not there yet will be created: its directory's device and inode and its
    /// name, through a symbolic link that points nowhere yet (`./r.json` and `/tmp/r.json` in
    /// /tmp are one file, and so is a link to it; compared as strings they were two, and one
    /// output silently overwrote the other).
    static func futureIdentity(_ path: String) -> String {
        let target = resolvingLinks(path)
        let name = target.lastIndex(of: "/").map { String(target[target.index(after: $0)...]) } ?? target
        var parent = stat()
        guard stat(directoryPart(target), &parent) == 0 else { return "new:" + target }
        return "new:\(parent.st_dev):\(parent.st_ino)/\(name)"
    }

    /// `path` with the symbolic links it names followed (up to 8), as far as they lead; the path
    /// itself when it is no link.
    static func resolvingLinks(_ path: String) -> String {
        var target = path
        for _ in 0..<8 {
            var info = stat()
            guard lstat(target, &info) == 0, (info.st_mode & S_IFMT) == S_IFLNK else { break }
            var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
            let n = readlink(target, &buffer, buffer.count - 1)
            guard n > 0 else { break }
            let link = String(decoding: buffer[..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
            target = link.hasPrefix("/") ? link : directoryPart(target) + "/" + link
        }
        return target
    }

    /// The directory part of a path ("." for a bare name). Not NSString.deletingLastPathComponent:
    /// corelibs Foundation traps on some non-ASCII names (`--out ٣` crashed a hostile trial).
    static func directoryPart(_ path: String) -> String {
        path.lastIndex(of: "/").map { path[..<$0].isEmpty ? "/" : String(path[..<$0]) } ?? "."
    }
}

/// Drives a batch run: scenario steps at their times, optional pacing, a progress line.
final class RunDriver {
    /// Whether a step names the autoscaler (`autoscale NAME`, `policy autoscaler NAME`).
    static func switchesAutoscaler(_ command: OperatorCommand) -> Bool {
        switch command {
        case .autoscale: true
        case .policy(let slot, _): slot == Policies.autoscaler.slot.command
        default: false
        }
    }

    let engine: ServingEngine
    let steps: [Scenario.Step]
    let limit: SimTime?
    let pace: Double?
    let progress: Bool
    private(set) var wallSeconds = 0.0
    /// Scenario steps applied (accepted or refused), in order: the rest never came due.
    private(set) var stepsRun = 0

    init(engine: ServingEngine, scenario: Scenario?, limit: SimTime?, pace: Double?, progress: Bool) {
        self.engine = engine
        self.steps = scenario?.steps ?? []
        self.limit = limit
        self.pace = pace
        self.progress = progress
    }

    func run() -> RunReport {
        let started = Date()
        var lastProgress = started
        var nextStep = 0
        let slice: SimTime = 1
        while true {
            let end = limit ?? .infinity
            if engine.now >= end { break }
            if limit == nil, !engine.hasWork { break }
            var target = min(end, engine.now + slice)
            // Idle stretches cost nothing: when only periodic bookkeeping (telemetry ticks,
            // heartbeats) lies before the next real event, jump straight to it (a trace gap of
            // days, a year at a low rate); the engine applies the skipped ticks in closed form.
            let nextEvent = engine.quietUntil ?? engine.nextEventTime() ?? .infinity
            if nextEvent > target { target = min(end, nextEvent) }
            if nextStep < steps.count { target = min(target, steps[nextStep].at) }
            // Nothing scheduled, no limit: running "until infinity" would set the clock to inf.
            if !target.isFinite { break }
            // Without a duration the run ends with its work (a trace's last request), not at the
            // end of the slice that work ended in; steps still to come do not hold it open (a
            // trace's run takes no step that adds work: `rate` is refused), or a scenario step
            // timed after the last request stretched the run to the end of that slice.
            engine.run(until: target, stopWhenDone: limit == nil)
            while nextStep < steps.count, steps[nextStep].at <= engine.now {
                let reply = engine.apply(steps[nextStep].command)
                // A refused step is in the event log and the timeline; say so where the run is
                // watched too, or a scenario that did less than it reads looks like it ran.
                if !reply.accepted {
                    let step = steps[nextStep]
                    let line = "xds: scenario step at \(Format.stepTime(step.at)) '\(step.command)' refused: \(reply.message)\n"
                    StandardError.write(Data(((progress ? "\r\u{1B}[K" : "") + line).utf8))
                } else if Self.switchesAutoscaler(steps[nextStep].command), let note = engine.autoscalerNote {
                    // Taken, and it will scale nothing here: the reply says why, but only in the
                    // event log (as `--autoscale` says it at the start).
                    let step = steps[nextStep]
                    let line = "xds: scenario step at \(Format.stepTime(step.at)) '\(step.command)': \(note)\n"
                    StandardError.write(Data(((progress ? "\r\u{1B}[K" : "") + line).utf8))
                }
                nextStep += 1
            }
            if let pace {
                let due = started.addingTimeInterval(engine.now / pace)
                let wait = due.timeIntervalSinceNow
                if wait > 0 { Thread.sleep(forTimeInterval: wait) }
            }
            if progress, Date().timeIntervalSince(lastProgress) > 0.5 {
                lastProgress = Date()
                let s = engine.snapshot()
                let line = String(format: "\r sim %@  arrived %d  done %d  in flight %d  %.0f tok/s ",
                                  Format.clock(engine.now), s.requests.arrived, s.requests.completed,
                                  s.requests.inFlight, s.outputTokensPerSecond)
                StandardError.write(Data(line.utf8))
            }
        }
        if progress { StandardError.write(Data("\r\u{1B}[K".utf8)) }
        stepsRun = nextStep
        wallSeconds = Date().timeIntervalSince(started)
        return engine.report()
    }
}

enum Format {
    /// A scenario step's time as its file wrote it: `H:MM:SS` and the fraction the step has, to
    /// the nanosecond (a step at 10.5 s read "0:00:10", rounded down to a time the file never
    /// wrote, and two steps in one second read alike).
    static func stepTime(_ t: Double) -> String {
        guard t.isFinite, abs(t) < 1e15 else { return "—" }
        var whole = t.rounded(.towardZero)
        var nanoseconds = Int(((t - whole) * 1e9).rounded())
        if nanoseconds >= 1_000_000_000 { whole += 1; nanoseconds -= 1_000_000_000 }
        guard nanoseconds > 0 else { return clock(whole) }
        let digits = String(format: "%09d", nanoseconds).reversed().drop { $0 == "0" }.reversed()
        return clock(whole) + "." + String(digits)
    }

    static func clock(_ t: Double, milliseconds: Bool = false) -> String {
        // Int(t) traps on NaN, infinity and beyond Int's range; no run gets near 10^15 s.
        guard t.isFinite, abs(t) < 1e15 else { return "—" }
        let s = Int(t)
        let whole = String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60)
        // A run that ends with its trace's last request ends between seconds: 0.177 s read "0:00:00".
        let ms = Int(((t - Double(s)) * 1_000).rounded(.down))
        return milliseconds && ms > 0 ? whole + String(format: ".%03d", ms) : whole
    }
}

enum ReportSummary {
    /// `colocated`: prefill and decode share every die (PD-colocated replicas), so the
    /// throughput is per die, not per decode or prefill die.
    /// `eplbHasNothingToMove`: EPLB is on and the decode layout leaves it nothing to move
    /// (``ExpertSummary/placementFixed``): the experts line says so.
    /// `moeAttention`: MoE and attention on separate dies, where the decode batch is counted per
    /// attention die (as `bench decode --batch-per-die` takes it), not per die of the layout as
    /// the throughput beside it is.
    static func text(_ r: RunReport, colocated: Bool = false, benchFlags: String = "",
                     eplbHasNothingToMove: Bool = false, moeAttention: Bool = false) -> String {
        // No sample is not 0 ms: a run where nothing completed said "0.0" and "0.0% attained".
        func ms(_ p: RunReport.Percentiles, none: String) -> String {
            p.isEmpty ? "— (\(none))"
                : String(format: "mean %8.1f  p50 %8.1f  p90 %8.1f  p99 %8.1f", p.mean, p.p50, p.p90, p.p99)
        }
        let noneCompleted = "no request completed"
        // The SLO targets as given (`--slo-tpot-ms 35.5`), not rounded: attainment is measured
        // against them exactly, and "TPOT 36 ms" (or "0 ms" for 0.4) named another target.
        let attained = r.requests.completed == 0 ? "— (\(noneCompleted))"
            : String(format: "%.1f%% of completed requests attained", r.slo.attainment * 100)
                // Failed and rejected requests missed their SLO too: the share is of completions
                // (as `slo.attainment` is), so a run that turns most arrivals away says so.
                + (r.requests.failed + r.requests.rejected > 0
                   ? " (\(r.requests.failed + r.requests.rejected) of \(r.requests.arrived) arrived failed or were rejected)" : "")
        // A one-die GPU is its own die and chip: "3.0 per die (3.0 per chip)" on an A100 named two
        // parts it does not have, side by side. Ascend keeps both scopes (a 910C chip has two dies).
        let dieWord = (try? HardwareProfile.named(r.hardware))?.dieWord ?? "die"
        let perDie = dieWord == "die"
            ? "die (\(String(format: "%.1f", r.throughput.outputTokensPerSPerChip)) per chip),"
            : "\(dieWord),"
        let healed = r.faults.healedBeforeDetection
        let healedEarly = healed > 0 ? ", healed before detection \(healed)" : ""
        return """
            xds run · \(r.deployment.terminalSafe) · \(r.model) · seed \(r.seed)
              simulated \(Format.clock(r.simSeconds, milliseconds: true)) in \(String(format: "%.2f", r.wallSeconds)) s wall (\(String(format: "%.0f", r.simSeconds / max(r.wallSeconds, 1e-9)))× real time), \(r.events) events
              load      \(load(r.workload))
              requests  arrived \(r.requests.arrived)  completed \(r.requests.completed)  failed \(r.requests.failed)  rejected \(r.requests.rejected)  in flight \(r.requests.inFlight)\(reasons("failed", r.requests.failureReasons))\(reasons("rejected", r.requests.rejectionReasons))
              tokens    prompt \(r.tokens.prompt)  generated \(r.tokens.generated)
              throughput \(String(format: "%.0f", r.throughput.outputTokensPerS)) output tok/s, \(String(format: "%.1f", r.throughput.outputTokensPerSPerNPU)) per \(colocated ? "" : "decode ")\(perDie) \(String(format: "%.1f", r.throughput.prefillTokensPerSPerNPU)) prefill tok/s per \(colocated ? "" : "prefill ")\(dieWord) (computed: prefix-cache hits not counted)
              TTFT ms   \(ms(r.latencyMs.ttft, none: "no first token yet"))
              TPOT ms   \(ms(r.latencyMs.tpot, none: "no samples"))
              E2E ms    \(ms(r.latencyMs.e2e, none: noneCompleted))
              SLO       TTFT \(FlagRange.text(r.slo.ttftMs)) ms, TPOT \(FlagRange.text(r.slo.tpotMs)) ms: \(attained)
              KV        peak usage \(String(format: "%.1f", r.kv.peakUsage * 100))%, prefix hit rate \(String(format: "%.1f", r.kv.prefixHitRate * 100))%
              experts   \(experts(r))\(eplbHasNothingToMove ? " (EPLB on, nothing to move: one expert per routed die, no redundant slot)" : "")\(decodeBatch(r.decodeBatchAtEnd, benchFlags: benchFlags, dieWord: moeAttention ? "attention \(dieWord)" : dieWord))
              faults    injected \(r.faults.injected), detected \(r.faults.detected), recovered \(r.faults.recovered)\(healedEarly) (policy \(r.recoveryPolicy))
            """ + r.faultDetails.map { faultLine($0, hardware: try? HardwareProfile.named(r.hardware)) }.joined()
            + scaling(r.scaling)
    }

    /// The offered load: the synthetic rate (at the start and, if commands changed it, at the end)
    /// and mix, or the trace file and its speed-up.
    static func load(_ w: RunReport.Workload?) -> String {
        guard let w else { return "—" }
        // Shortest text that reads back as the same number, integers without ".0".
        func rate(_ r: Double) -> String { r == r.rounded() && abs(r) < 1e15 ? String(Int(r)) : String(r) }
        if w.source == "trace" {
            // Under 1 the replay is slower: "0.001× faster" said it backwards.
            let speedup = w.speedup.map { k in
                k == 1 ? "as recorded" : k > 1 ? "\(rate(k))× faster than recorded"
                    : "\(String(format: "%g", 1 / k))× slower than recorded (--trace-speedup \(rate(k)))"
            }
            return "trace \((w.file ?? "").terminalSafe)" + (speedup.map { " (arrivals \($0))" } ?? "")
        }
        guard let start = w.ratePerSecond else { return w.source }
        var text = "synthetic \(rate(start)) req/s"
        let end = w.rateAtEndPerSecond ?? start
        if end != start { text += " at the start, \(rate(end)) at the end" }
        // A surge that ended before the run did (scenarios/load-paths.toml: 10 → 200 → 40) is the
        // load the run mostly saw; the start and end rates alone would hide it.
        if let highest = w.rateMaxPerSecond, highest > max(start, end) { text += ", \(rate(highest)) at most" }
        return text + (w.mix.map { " (\($0) traffic)" } ?? "")
    }

    /// The decode batch at the end, with the bench command that prices the same step (nothing
    /// when no batch ran at the end). `dieWord` as the throughput line says it: "0.7 requests per
    /// die" on an A100 named a part the throughput beside it calls a GPU (the flag keeps its name).
    static func decodeBatch(_ b: RunReport.DecodeBatch?, benchFlags: String = "", dieWord: String = "die") -> String {
        guard let b else { return "" }
        let context = String(format: "%.0f", b.meanContext)
        let cv = b.contextCV.map { String(format: "%.2f", $0) }
        // The step is the busy TEs' (idle ones' dies count in requests per die), and may hold a
        // prefill chunk, which a bench of pure decode does not price: both said, with the figures.
        let busy = b.benchBatchPerDie.map { " (\(String(format: "%.1f", $0)) on the TEs decoding)" } ?? ""
        let prefill = b.prefillMs.map { " (\(String(format: "%.1f", $0)) ms of it a prefill chunk mixed in)" } ?? ""
        return "\n  decode    at the end: \(String(format: "%.1f", b.requestsPerDie)) requests per \(dieWord)\(busy), mean context "
            + "\(context) tokens\(cv.map { " (spread cv \($0))" } ?? ""), step \(String(format: "%.1f", b.stepMs)) ms\(prefill); "
            + "bench decode\(benchFlags) --batch-per-die \(Bench.batchPerDieText(b.benchBatchPerDie ?? b.requestsPerDie)) "
            + "--context \(context)" + (cv.map { " --context-cv \($0)" } ?? "")
            // The experts' balance at that step: the bench's default is a fresh plan's.
            + ((b.moeLoadFactors ?? b.moeLoadFactor.map { [$0] }).map { factors in
                " --moe-load-factor " + factors.map { String(format: "%.3f", $0) }.joined(separator: ",") } ?? "")
            + (b.prefillMs == nil ? " prices that step" : " prices its decode part")
    }

    /// The scale operations, one line each, as the report's `scaling.details` has them (nothing
    /// when there were none): a scale-up whose starts were all cancelled or lost came to nothing.
    static func scaling(_ s: ScalingReport?) -> String {
        guard let s, !s.details.isEmpty else { return "" }
        func clock(_ t: Double) -> String { Format.clock(t, milliseconds: true) }
        return "\n  scaling   scale-ups \(s.scaleUps), scale-downs \(s.scaleDowns)" + s.details.map { d in
            var line = "\n    \(d.role.terminalSafe) \(d.from) → \(d.to) TE\(d.to == 1 ? "" : "s") asked at \(clock(d.requestedS)): "
            if d.to < d.from {
                line += d.readyS.map { "done at \(clock($0))" } ?? "still draining"
            } else {
                line += d.readyS.map { "ready at \(clock($0))" } ?? (d.to == d.from ? "came to nothing" : "still starting")
                if d.cancelled > 0 { line += ", \(d.cancelled) start\(d.cancelled == 1 ? "" : "s") cancelled" }
                if d.lost > 0 { line += ", \(d.lost) start\(d.lost == 1 ? "" : "s") lost to faults" }
                if let path = d.loadPath { line += ", weights by \(path.rawValue)" }
            }
            return line
        }.joined()
    }

    /// A dense model has no experts to balance: "none", not an imbalance of 1.00.
    static func experts(_ r: RunReport) -> String {
        if let model = try? ModelSpec.named(r.model), !model.isMoE { return "none (\(model.name) is a dense model)" }
        return String(format: "imbalance %.2f, rebalances %d", r.experts.imbalance, r.experts.rebalances)
    }

    /// Why requests failed or were rejected, most frequent first: `failed: hbm fault on die 12 ×3`.
    static func reasons(_ label: String, _ counts: [String: Int]) -> String {
        guard !counts.isEmpty else { return "" }
        return "\n    \(label): " + counts.sorted { ($0.value, $1.key) > ($1.value, $0.key) }
            .map { "\($0.key.terminalSafe) ×\($0.value)" }.joined(separator: "; ")
    }

    static func faultLine(_ f: FaultDetail, hardware: HardwareProfile?) -> String {
        func seconds(_ value: Double?) -> String { value.map { String(format: "%.2f s", $0) } ?? "—" }
        let part = hardware.flatMap { partNamed(by: f.command, on: $0) }.map { " (\($0))" } ?? ""
        return "\n    #\(f.id) \(f.command.terminalSafe)\(part) at \(Format.clock(f.injectedAt)): detect \(seconds(f.timeToDetectS)), "
            + "recover \(f.healedBeforeDetection ? "— (healed before detection)" : seconds(f.timeToRecoverS)), "
            + "failed \(f.requestsFailed), re-prefilled \(f.requestsReprefilled)"
    }

    /// The part a fault command names, in the hardware's words, where they are not the command's
    /// own: the language keeps `fault npu N` and `fault … die D` on every profile, and on a GPU
    /// cluster the summary and the fault's reasons say "GPU 9". Nil on Ascend (the command says
    /// it) and for commands that name no die or device.
    static func partNamed(by command: String, on hw: HardwareProfile) -> String? {
        guard hw.deviceKind != "NPU", case .success(let parsed) = OperatorCommand.parse(command) else { return nil }
        switch parsed {
        case .faultDie(let die), .faultStraggler(let die, _), .faultHBM(let die): return hw.dieName(die)
        case .faultNPU(let device): return "\(hw.deviceKind) \(device)"
        case .faultLink(let a, let b, _): return "\(hw.deviceKind) \(a) ↔ \(hw.deviceKind) \(b)"
        default: return nil
        }
    }
}
