import ArgumentParser
import EngineRuntime
import Foundation
import PodModel
import ServingEngine
import SimKit

/// `xds bench preview`: wall time of a what-if preview (issue 16) on a warmed-up engine, the
/// figure behind "a 10-minute preview of drain node N on the default pod finishes in about a
/// second". The engine runs to `--at` first (untimed), then the preview is timed: forking both
/// copies, and running them ahead.
///
/// ```
/// xds bench preview --rate 40 --at 120 --command "drain node 20" --for 10m
/// ```
struct BenchPreview: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "preview", abstract: "Wall time of a what-if preview (fork twice, run both ahead)")

    @OptionGroup var common: CommonOptions
    @Option(help: "The command to preview (operator command language).")
    var command = "drain node 20"
    // Unconditional, as every number and time flag: `--for -1s` was taken for the next flag
    // (exit 64, "Missing value for '--for <for>'") where the range was to be said.
    @Option(name: .customLong("for"), parsing: .unconditional, help: "Simulated time to preview, 1s…1h (e.g. 90s, 10m).")
    var duration = "10m"
    @Option(parsing: .unconditional, help: "Simulated seconds to run before the preview (warm-up, untimed): \(FlagLimits.warmUpAllowed).")
    var at: CLINumber = 120
    // `bench preview --rate 2000 --for 1h` computed for minutes with no end in sight, where the
    // console's and the admin API's previews stop at their wall-clock budget and answer with the
    // window so far. Same budget, same partial answer and the same "stopped at …" line here; a
    // benchmark that means to time a longer preview raises it.
    @Option(name: .customLong("wall-budget"), parsing: .unconditional,
            help: "Wall-clock seconds the preview may compute, \(FlagLimits.previewWallBudget.allowed) (the console's and the admin API's budget); then it stops at its next slice and reports the window so far, saying so. The warm-up to --at has the same budget; past it the bench stops, saying where it got to.")
    var wallBudget = CLINumber(argument: FlagRange.text(EngineHost.Bounds().previewWall))
    @Flag(help: "Print the preview as JSON (with wall_seconds).") var json = false

    func run() throws {
        let warmUp = try FlagLimits.warmUp(at)
        let budget = try FlagLimits.previewWallBudget.value(wallBudget)
        try common.refuseScenario(in: "bench preview")
        let config = try common.engineConfiguration(defaultRate: 40)
        let request: PreviewRequest
        // Each refusal names its own flag: "--command/--for: expected a command to preview, e.g.
        // 'preview drain node 20 for 10m'" left the user to guess which, in the console's syntax.
        if command.allSatisfy({ $0 == " " || $0 == "\t" }) {
            throw ConfigError("--command: empty; give the command to preview, e.g. --command 'drain node 20'")
        }
        if case .failure(let error) = PreviewRequest.parseDuration(duration) { throw ConfigError("--for: \(error.message)") }
        // Against the deployment's pod, so a bad index names its range as the engine does.
        switch PreviewRequest.parse(command: command, duration: duration, on: try config.deployment.topology()) {
        case .failure(let error): throw ConfigError("--command: \(error.message)")
        case .success(let parsed): request = parsed
        }
        let engine = try common.makeEngine(config)
        func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }
        try Self.warmUp(engine, to: warmUp, budget: budget, now: now)
        let began = now()
        let run: PreviewRun
        do { run = try engine.startPreview(request) } catch { throw ConfigError(error.message) }
        let forked = now()
        let cancellation = PreviewCancellation()
        let timeUp = DispatchWorkItem {
            cancellation.stop(reason: "it used up its \(FlagRange.text(budget)) s wall-clock budget (--wall-budget)")
        }
        DispatchQueue.global().asyncAfter(deadline: .now() + budget, execute: timeUp)
        // Never cancelled (only stopped), so the run answers, with the window so far at worst.
        guard var result = run.run(cancellation: cancellation) else { throw ConfigError("preview cancelled") }
        timeUp.cancel()
        let ended = now()
        result.wallSeconds = ended - began
        if json {
            try printJSON(result)
            return
        }
        let b = result.baseline, w = result.withCommand
        print("preview \(result.command) for \(PreviewRequest.format(duration: request.duration)) at \(PreviewRequest.format(duration: warmUp))"
              + " on \(config.deployment.name) \(config.workloadPhrase)")
        print(String(format: "wall %.3f s (fork %.3f s, run %.3f s)", result.wallSeconds, forked - began, ended - forked))
        // No sample is not 0 ms (as the run summary says): a window where nothing completed read
        // "TTFT p99 0 ms", the best figure there is.
        func p99(_ p: RunReport.Percentiles) -> String {
            p.isEmpty ? "— (no samples)" : "\(Int(p.p99)) ms"
        }
        print("baseline:     completed \(b.requests.completed), lost \(b.lost), TTFT p99 \(p99(b.latencyMs.ttft)), TPOT p99 \(p99(b.latencyMs.tpot))")
        print("with command: completed \(w.requests.completed), lost \(w.lost), TTFT p99 \(p99(w.latencyMs.ttft)), TPOT p99 \(p99(w.latencyMs.tpot))")
        // Stopped by the budget: the figures are of the window so far, and the wall time is the budget's.
        if let stopped = result.stopped { print("note: \(stopped)") }
        // Two equal sides are no verdict when the scale had not come into service in the window.
        if let unfinished = result.unfinished { print("note: \(unfinished)") }
        // Equal sides and no other reason: the engine's reply says why (it was only in the JSON).
        if let reply = result.noChangeReply { print("note: no change; the engine replied: \(reply.terminalSafe)") }
    }

    /// Simulated seconds per warm-up slice between looks at the wall clock: a slice of a saturated
    /// superpod takes well under a second of wall time, so the warm-up stops soon after its budget.
    static let warmUpSlice: SimTime = 0.25

    /// Runs `engine` to `time` (the warm-up), in slices, within `budget` wall-clock seconds (the
    /// preview's own budget, given to the warm-up too). `--at 3600 --rate 2000` ran an hour of a
    /// saturated pod before the preview's budget even started, printing nothing for as long as it
    /// took; past the budget it now stops with one line naming where it got to. The engine's run
    /// does not depend on its slicing, so a warm-up within budget ends exactly where one call did.
    static func warmUp(_ engine: ServingEngine, to time: SimTime, budget: Double, now: () -> Double) throws {
        let started = now()
        // `run(until:)` may also return early after a pathological burst at one instant: go on.
        while engine.now < time {
            if now() - started > budget {
                throw ConfigError("the warm-up to --at \(PreviewRequest.format(duration: time)) stopped at "
                    + "\(PreviewRequest.format(duration: engine.now)) of simulated time: it used up its "
                    + "\(FlagRange.text(budget)) s wall-clock budget (--wall-budget); nothing was previewed "
                    + "(lower --at or --rate, or raise --wall-budget)")
            }
            // An idle stretch costs nothing (only periodic bookkeeping before the next real
            // event): crossed in one call, as `xds run` does, not a slice at a time.
            var target = min(time, engine.now + warmUpSlice)
            if let quiet = engine.quietUntil, quiet > target { target = min(time, quiet) }
            engine.run(until: target)
        }
    }
}
