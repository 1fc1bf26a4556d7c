import ArgumentParser
import Foundation
import PodModel
#if canImport(Glibc)
import Glibc
#endif

/// `xds bench replay`: issue 12's speed targets in one run. Each case is a whole `xds run`
/// process (this binary, spawned), so the wall time includes start-up, the trace check and the
/// report, as a user sees it; peak RSS is the child's own (`wait4`'s rusage). The minimum of
/// `--repeat` runs is printed per case.
///
/// ```
/// xds bench replay                                   # every default case, traces from ../shared/traces
/// xds bench replay --case mooncake --case saturated --repeat 1
/// xds bench replay --traces /work/shared/traces --json
/// ```
struct BenchReplay: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Whole-process speed of the issue-12 replay cases: simulated s, wall s, ratio, peak RSS.",
        discussion: "Cases: \(ReplayCase.all.map(\.name).joined(separator: ", ")) "
            + "(default: all but \(ReplayCase.all.filter { !$0.byDefault }.map(\.name).joined(separator: ", "))). "
            + "Targets: mooncake ≥ 10,000× real time, saturated ≥ 500×, azure-N ≥ 300× faster than Vidur, "
            + "peak RSS < 400 MB saturated hour, < 100 MB idle.")

    @Option(name: .customLong("case"), help: "A case to run (repeatable; default: the default set).")
    var cases: [String] = []
    @Option(help: "Directory of the shared traces (default: ../shared/traces relative to the working directory).")
    var traces: String?
    static let defaultTraces = "../shared/traces"
    @Option(parsing: .unconditional, help: "Runs per case; the minimum wall time counts, \(FlagLimits.benchRepeat.allowed).")
    var `repeat`: CLINumber = 3
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        let repeats = try FlagLimits.benchRepeat.int(`repeat`)
        var chosen: [ReplayCase] = []
        for name in cases {
            // Bad input exits 1 with one line, as every other refused value does (not 64, usage).
            // Any case, as --deployment, --model, --eplb and the other named values take it.
            guard let c = ReplayCase.all.first(where: { $0.name == name.lowercased() }) else {
                throw ConfigError("--case: unknown case '\(name)'; expected one of: "
                    + ReplayCase.all.map(\.name).joined(separator: ", "))
            }
            // A case named twice runs once.
            if !chosen.contains(where: { $0.name == c.name }) { chosen.append(c) }
        }
        if chosen.isEmpty { chosen = ReplayCase.all.filter(\.byDefault) }
        // A --traces that was given is checked as given: `--traces ''` was told to give --traces.
        if let given = self.traces {
            guard !given.isEmpty else {
                throw ConfigError("--traces: empty; give the directory of the shared traces (e.g. --traces /work/shared/traces)")
            }
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: given, isDirectory: &isDirectory) else {
                throw ConfigError("--traces: no directory \(InputEcho.quoted(given))")
            }
            guard isDirectory.boolValue else { throw ConfigError("--traces: \(InputEcho.quoted(given)) is not a directory") }
        }
        let traces = self.traces ?? Self.defaultTraces
        for c in chosen {
            if let file = c.trace {
                let path = (traces as NSString).appendingPathComponent(file)
                guard FileManager.default.fileExists(atPath: path) else {
                    if let given = self.traces {
                        throw ConfigError("--traces: case \(c.name) needs \(file), which is not in \(InputEcho.quoted(given))")
                    }
                    throw ConfigError("case \(c.name) needs \(path), which is missing (give the traces directory with --traces)")
                }
            }
        }
        let exe = try Self.executablePath()
        let out = FileManager.default.temporaryDirectory
            .appendingPathComponent("xds-bench-replay-\(getpid()).json").path
        // The child's stderr goes to a file (not a pipe: nothing to drain while it runs), read
        // only when a case fails so its reason is shown rather than just an exit status.
        let errors = out + ".stderr"
        defer {
            try? FileManager.default.removeItem(atPath: out)
            try? FileManager.default.removeItem(atPath: errors)
        }
        var results: [ReplayResult] = []
        // The header waits for the first row: a first case that fails leaves stdout empty (the
        // reason is on stderr), not a header over nothing that reads as a run with no cases.
        var headerPrinted = false
        func printRow(_ row: String) {
            if !headerPrinted {
                print(Self.header)
                headerPrinted = true
            }
            print(row)
        }
        for (index, c) in chosen.enumerated() {
            var best: (wall: Double, cpu: Double, rss: Double, sim: Double)?
            for _ in 0..<repeats {
                let args = ["run"] + c.arguments(traces: traces) + ["--quiet", "--out", out]
                let (wall, cpu, rssKB, status) = try Self.spawn(exe, args, stderrTo: errors)
                guard status == 0 else {
                    let notRun = chosen[(index + 1)...].map(\.name)
                    // Rows already printed: the table says this case failed, so stdout alone does
                    // not read as a complete run of fewer cases.
                    if !json, headerPrinted {
                        printRow(Self.paddedName(c.name) + " failed (xds run exited \(status); reason on stderr)"
                            + (notRun.isEmpty ? "" : "; not run: " + notRun.joined(separator: ", ")))
                    }
                    // The command as the user would rerun it (the report file it was given is gone).
                    throw ConfigError("case \(c.name): \(c.commandLine(traces: traces)) exited \(status)"
                        + Self.childReason(errors)
                        + (notRun.isEmpty ? "" : " (cases not run: " + notRun.joined(separator: ", ") + ")"))
                }
                let sim = try Self.simSeconds(out)
                let rss = Double(rssKB) / 1024
                if best == nil || wall < best!.wall { best = (wall, min(cpu, best?.cpu ?? cpu), max(rss, best?.rss ?? 0), sim) }
                else { best!.rss = max(best!.rss, rss); best!.cpu = min(best!.cpu, cpu) }
            }
            guard let b = best else { continue }
            var note = ""
            if let vidur = c.vidurSeconds {
                note = String(format: "%.0f× (wall), %.0f× (CPU) faster than Vidur's %.1f s (target ≥ 300×)",
                              vidur / b.wall, vidur / max(b.cpu, 1e-9), vidur)
            } else if let target = c.targetRatio {
                note = String(format: "target ≥ %.0f×", target)
            }
            if let rssTarget = c.rssTargetMB { note += (note.isEmpty ? "" : "; ") + String(format: "RSS target < %.0f MB", rssTarget) }
            results.append(ReplayResult(
                case: c.name, simSeconds: b.sim, wallSeconds: b.wall, cpuSeconds: b.cpu,
                ratio: b.sim / max(b.wall, 1e-9), cpuRatio: b.sim / max(b.cpu, 1e-9), peakRSSMB: b.rss,
                command: c.commandLine(traces: traces)))
            if !json {
                printRow(Self.paddedName(c.name) + String(format: " %12.1f %9.3f %14.0f %8.3f %13.0f %13.1f   ", b.sim, b.wall,
                                    b.sim / max(b.wall, 1e-9), b.cpu, b.sim / max(b.cpu, 1e-9), b.rss) + note)
            }
        }
        if json {
            try printJSON(ReplayReport(cases: results, repeat: repeats))
        }
    }

    static let header = "case             simulated s    wall s   ×real (wall)    CPU s   ×real (CPU)   peak RSS MB   note"

    /// A case name in the table's first column.
    static func paddedName(_ name: String) -> String {
        name.padding(toLength: max(15, name.count), withPad: " ", startingAt: 0)
    }

    /// This binary (the cases run it as child processes).
    static func executablePath() throws -> String {
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        if n > 0 { return String(decoding: buffer[..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) }
        guard let path = Bundle.main.executablePath else { throw ConfigError("cannot locate the xds executable") }
        return path
    }

    /// What a failed child said on stderr, on the error's one line: its last few non-blank
    /// lines, each cut (``maxReasonLines`` × ``maxReasonLineLength``); empty if it said nothing.
    static func childReason(_ path: String) -> String {
        guard let data = FileManager.default.contents(atPath: path) else { return "" }
        let lines = String(decoding: data, as: UTF8.self).split(whereSeparator: \.isNewline)
            .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            .suffix(maxReasonLines)
            .map { $0.count > maxReasonLineLength ? String($0.prefix(maxReasonLineLength)) + "…" : $0 }
        return lines.isEmpty ? "" : ": " + lines.joined(separator: " | ")
    }
    static let maxReasonLines = 3
    static let maxReasonLineLength = 300

    /// Runs `exe args` with stdout to /dev/null and stderr to `stderrTo` (truncated); wall
    /// seconds, CPU seconds (user + system: on a shared machine the one-core figure), peak RSS
    /// (KB), exit status.
    static func spawn(_ exe: String, _ args: [String], stderrTo errors: String = "/dev/null") throws
        -> (wall: Double, cpu: Double, rssKB: Int, status: Int32) {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, errors, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        let argv = ([exe] + args).map { strdup($0) } + [nil]
        defer { for p in argv { free(p) } }
        var pid: pid_t = 0
        let start = DispatchTime.now().uptimeNanoseconds
        let rc = posix_spawn(&pid, exe, &actions, nil, argv, environ)
        guard rc == 0 else { throw ConfigError("cannot start \(exe): error \(rc)") }
        var status: Int32 = 0
        var usage = rusage()
        while wait4(pid, &status, 0, &usage) < 0 {
            guard errno == EINTR else { throw ConfigError("wait4 failed: errno \(errno)") }
        }
        let wall = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        let exited = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        let cpu = Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec)
            + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
        return (wall, cpu, usage.ru_maxrss, exited)
    }

    static func simSeconds(_ report: String) throws -> Double {
        let data = try Data(contentsOf: URL(fileURLWithPath: report))
        guard let object = try JSONSerialization.jsonObject(with: data) as? [String: Any],
              let sim = (object["sim_seconds"] as? NSNumber)?.doubleValue else {
            throw ConfigError("\(report): no sim_seconds in the report")
        }
        return sim
    }
}

/// `xds bench replay --json`: one row per case, best of `repeat` runs.
struct ReplayReport: Encodable {
    var cases: [ReplayResult]
    var `repeat`: Int
}

struct ReplayResult: Encodable {
    var `case`: String
    var simSeconds, wallSeconds, cpuSeconds: Double
    /// Simulated seconds per wall second and per CPU second.
    var ratio, cpuRatio: Double
    var peakRSSMB: Double
    /// The `xds run` command line the case runs.
    var command: String

    enum CodingKeys: String, CodingKey {
        case `case`, command, ratio
        case simSeconds = "sim_seconds", wallSeconds = "wall_seconds", cpuSeconds = "cpu_seconds"
        case cpuRatio = "cpu_ratio", peakRSSMB = "peak_rss_mb"
    }
}

/// One benchmark case: `xds run` arguments and the target.
struct ReplayCase {
    var name: String
    var trace: String?
    var flags: [String]
    var targetRatio: Double?
    var vidurSeconds: Double?
    var rssTargetMB: Double?
    var byDefault = true

    func arguments(traces: String) -> [String] {
        guard let trace else { return flags }
        return ["--workload", (traces as NSString).appendingPathComponent(trace)] + flags
    }

    /// `xds run …` as a user would type it (the JSON's `command`, and a failure's).
    func commandLine(traces: String) -> String { (["xds", "run"] + arguments(traces: traces)).joined(separator: " ") }

    static let all: [ReplayCase] = [
        ReplayCase(name: "mooncake", trace: "mooncake_conversation.jsonl", flags: ["--deployment", "superpod"],
                   targetRatio: 10_000),
        ReplayCase(name: "saturated", flags: ["--deployment", "superpod", "--rate", "400", "--mix", "reasoning",
                                              "--duration", "300s"], targetRatio: 500),
        ReplayCase(name: "azure-1", trace: "azure_llm_2023_code.csv",
                   flags: ["--deployment", "colocated:1:llama-2-7b:nvidia-a100:tp1", "--clip-to-context"], vidurSeconds: 14.7),
        ReplayCase(name: "azure-2", trace: "azure_llm_2023_code.csv",
                   flags: ["--deployment", "colocated:2:llama-2-7b:nvidia-a100:tp1", "--clip-to-context"], vidurSeconds: 16.5),
        ReplayCase(name: "azure-4", trace: "azure_llm_2023_code.csv",
                   flags: ["--deployment", "colocated:4:llama-2-7b:nvidia-a100:tp1", "--clip-to-context"], vidurSeconds: 24.9),
        ReplayCase(name: "idle", flags: ["--deployment", "superpod", "--rate", "0", "--duration", "600s"], rssTargetMB: 100),
        ReplayCase(name: "saturated-hour", flags: ["--deployment", "superpod", "--rate", "400", "--mix", "reasoning",
                                                   "--duration", "3600s"], rssTargetMB: 400, byDefault: false),
    ]
}
