import Dispatch
import Foundation
import SimKit
import Synchronization

/// The what-if preview (issue 16): two forks of the engine run ahead on the same traffic (the
/// same random streams), one as it is and one with a command applied at the fork's start; each
/// side reports the previewed window only. The engine itself is never touched: forks copy it.
/// Scenario steps still to come in the window (a scenario file's, the console's demo rate cycle)
/// are applied on both sides at their times, as the live run will apply them.
///
/// ```swift
/// let request = try PreviewRequest.parse("preview drain node 20 for 10m").get()
/// let result = try engine.preview(request)          // engine unchanged
/// print(result.withCommand.latencyMs.ttft.p99, result.baseline.latencyMs.ttft.p99)
/// ```
/// A host forks on the engine thread with ``startPreview(_:)`` and runs the returned
/// ``PreviewRun`` on another thread, so the live engine keeps running meanwhile.
public struct PreviewResult: Sendable, Equatable, Codable {
    /// One side of the preview: the run report's keys over the previewed window only. Counts
    /// are of the window (`arrived`, `completed`, `failed`, `rejected` and the reasons);
    /// `in_flight` is what is in the system at the window's end, `in_flight_at_start` what was
    /// at its start (the two reconcile the counts); latencies and SLO attainment
    /// are of the requests that completed in the window; `kv.peak_usage` is the decode KV peak
    /// in the window and `prefix_hit_rate` the window's.
    public struct Side: Sendable, Equatable, Codable {
        public var requests = RunReport.Requests()
        public var latencyMs = RunReport.Latency()
        public var slo = RunReport.SLO()
        public var throughput = RunReport.Throughput()
        public var kv = RunReport.KV()
        /// Failed plus rejected in the window: requests the action would lose.
        public var lost: Int { requests.failed + requests.rejected }

        public init() {}

        enum CodingKeys: String, CodingKey {
            case requests, slo, throughput, kv
            case latencyMs = "latency_ms"
        }
    }

    /// A scheduled scenario step that fell inside the window and was applied on both sides at its
    /// time; a side that refused it says why (as the live run would have refused it there).
    public struct ScheduledStep: Sendable, Equatable, Codable {
        public var atSeconds: Double
        public var command: String
        /// The baseline side's refusal, nil when it took the step.
        public var baselineRefused: String?
        /// The `with_command` side's refusal, nil when it took the step.
        public var withCommandRefused: String?

        public init(atSeconds: Double, command: String, baselineRefused: String? = nil, withCommandRefused: String? = nil) {
            self.atSeconds = atSeconds
            self.command = command
            self.baselineRefused = baselineRefused
            self.withCommandRefused = withCommandRefused
        }

        enum CodingKeys: String, CodingKey {
            case command
            case atSeconds = "at_s"
            case baselineRefused = "baseline_refused"
            case withCommandRefused = "with_command_refused"
        }
    }

    /// The command previewed, as the engine prints it.
    public var command = ""
    public var durationSeconds = 0.0
    /// Simulated time of the fork (the window is `from_s … from_s + duration_s`).
    public var fromSeconds = 0.0
    /// What the engine answered to the command on the `with_command` side.
    public var reply = ""
    public var baseline = Side()
    public var withCommand = Side()
    /// Wall-clock seconds the preview took; the engine never reads the clock, so the face fills it.
    public var wallSeconds = 0.0
    /// Simulated seconds the two sides covered: `duration_s`, unless the run was stopped early.
    public var coveredSeconds = 0.0
    /// Why the run stopped before the window's end (one line naming the simulated time reached);
    /// nil when it covered the whole window. Both sides then cover `from_s … from_s + covered_s`.
    public var stopped: String?
    /// The scheduled steps applied inside the covered window, in time order (empty: none were due).
    public var scheduledSteps: [ScheduledStep] = []
    /// A scale the command started that had not finished when the window ended, in one line
    /// ("the scale-up finishes at +328.5 s, after the 10m window; …"); nil otherwise. Without it
    /// a scale-up loading for longer than the window showed two identical sides and no reason.
    public var unfinished: String?

    public init() {}

    /// True when both sides ran to the window's end.
    public var isComplete: Bool { stopped == nil }

    /// The engine's reply when it is the only reason there is: the command was accepted, the two
    /// sides came out the same, and no stop or unfinished scale explains it (e.g. `autoscale slo`
    /// on a deployment with nothing it can scale printed two equal sides, the reason only in the
    /// JSON's `reply`). Nil otherwise, or when the reply is empty.
    public var noChangeReply: String? {
        guard stopped == nil, unfinished == nil, baseline == withCommand, !reply.isEmpty else { return nil }
        return reply
    }

    enum CodingKeys: String, CodingKey {
        case command, reply, baseline, stopped, unfinished
        case durationSeconds = "duration_s"
        case fromSeconds = "from_s"
        case withCommand = "with_command"
        case wallSeconds = "wall_seconds"
        case coveredSeconds = "covered_s"
        case scheduledSteps = "scheduled_steps"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        command = try c.decode(String.self, forKey: .command)
        durationSeconds = try c.decode(Double.self, forKey: .durationSeconds)
        fromSeconds = try c.decodeIfPresent(Double.self, forKey: .fromSeconds) ?? 0
        reply = try c.decodeIfPresent(String.self, forKey: .reply) ?? ""
        baseline = try c.decode(Side.self, forKey: .baseline)
        withCommand = try c.decode(Side.self, forKey: .withCommand)
        wallSeconds = try c.decodeIfPresent(Double.self, forKey: .wallSeconds) ?? 0
        // A server from before `covered_s` always covered the whole window.
        coveredSeconds = try c.decodeIfPresent(Double.self, forKey: .coveredSeconds) ?? durationSeconds
        stopped = try c.decodeIfPresent(String.self, forKey: .stopped)
        // A server from before `scheduled_steps` applied none.
        scheduledSteps = try c.decodeIfPresent([ScheduledStep].self, forKey: .scheduledSteps) ?? []
        unfinished = try c.decodeIfPresent(String.self, forKey: .unfinished)
    }
}

/// Why a preview was refused: a bad duration, a command the engine would reject, a trace that
/// cannot be reopened. One line.
public struct PreviewRefusal: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Tells a running preview that nobody waits for it any more (its client hung up, the server is
/// stopping): the run stops at its next slice (``PreviewRun/run(progress:cancellation:)``).
/// Cancelling is for good and may come from any thread.
///
/// Or that its time is up (the face's wall-clock budget; the engine never reads the clock):
/// ``stop(reason:)`` ends the run at its next slice too, but it answers with the window so far.
public final class PreviewCancellation: Sendable {
    private let cancelled = Atomic<Bool>(false)
    private let stopReason = Mutex<String?>(nil)
    public init() {}
    public func cancel() { cancelled.store(true, ordering: .releasing) }
    public var isCancelled: Bool { cancelled.load(ordering: .acquiring) }

    /// Ends the run at its next slice with a partial answer; `reason` says why (e.g. "the preview
    /// budget of 30 s of wall-clock time ran out"). The first reason given stays.
    public func stop(reason: String) {
        stopReason.withLock { if $0 == nil { $0 = reason } }
    }
    /// Why the run was told to stop early, if it was.
    public var stoppedBecause: String? { stopReason.withLock { $0 } }
}

/// A preview forked and ready to run: owns its two engines, touched by one thread at a time.
/// Running it never touches the engine it was forked from.
public final class PreviewRun: @unchecked Sendable {
    public let request: PreviewRequest
    let baseline: ServingEngine
    let withCommand: ServingEngine
    let baselineMark: ServingEngine.WindowMark
    let withCommandMark: ServingEngine.WindowMark
    let reply: String
    /// The scale operation the command opened on the `with_command` side, if it opened one.
    let scaleOperation: Int?
    public let from: SimTime
    public var end: SimTime { from + request.duration }
    /// The scheduled steps due by the window's end, applied on each side at their times; each
    /// side keeps its own place in them and its answers (one thread touches a side at a time).
    let scheduled: [Scenario.Step]
    private var baselineSteps: ScheduledSteps
    private var withCommandSteps: ScheduledSteps

    init(request: PreviewRequest, baseline: ServingEngine, withCommand: ServingEngine,
         baselineMark: ServingEngine.WindowMark, withCommandMark: ServingEngine.WindowMark, reply: String,
         scheduled: [Scenario.Step] = [], scaleOperation: Int? = nil) {
        self.scaleOperation = scaleOperation
        self.request = request
        self.baseline = baseline
        self.withCommand = withCommand
        self.baselineMark = baselineMark
        self.withCommandMark = withCommandMark
        self.reply = reply
        from = baseline.now
        let end = from + request.duration
        // A step due at the window's very end is applied there, as `xds run --duration` applies one
        // due at its end (a fault then fails requests inside the window).
        self.scheduled = scheduled.filter { $0.at <= end }
        baselineSteps = ScheduledSteps(steps: self.scheduled)
        withCommandSteps = ScheduledSteps(steps: self.scheduled)
    }

    /// One side's progress through the scheduled steps and what it answered to each.
    struct ScheduledSteps {
        let steps: [Scenario.Step]
        var next = 0
        var replies: [CommandReply] = []

        /// Runs `engine` to `time`, stopping at each step due by then to apply it at its exact
        /// time (after the events of that instant, as the live host and `xds run` do). A step
        /// the side refuses is refused there, as it would be live.
        mutating func run(_ engine: ServingEngine, until time: SimTime) {
            while next < steps.count, steps[next].at <= time {
                PreviewRun.advance(engine, to: steps[next].at)
                replies.append(engine.apply(steps[next].command))
                next += 1
            }
            PreviewRun.advance(engine, to: time)
        }
    }

    /// Simulated seconds per slice between progress reports.
    static let slice: SimTime = 15

    /// Runs both sides to the window's end, reporting progress (0…1) between slices, and
    /// returns both sides' window reports (`wall_seconds` 0: the caller times it).
    ///
    /// The two sides are independent engines (their buffers are shared copy-on-write with the
    /// engine they were forked from, whose reference counts are atomic), so they run at once:
    /// the baseline on the calling thread, the `with_command` side on a thread of its own.
    /// Each side runs exactly as it would alone, so the numbers do not depend on the threads.
    /// Progress is reported when both sides have passed a slice.
    public func run(progress: (Double) -> Void = { _ in }) -> PreviewResult {
        // A token nobody holds is never cancelled: the run always ends with a result.
        run(progress: progress, cancellation: PreviewCancellation())!
    }

    /// As ``run(progress:)``, but stops once `cancellation` is cancelled: each side looks at it
    /// before every slice, so a cancelled run does at most one more slice of simulated work per
    /// side (the `with_command` side ends at most two slices past the last progress report), and
    /// answers nil (its numbers would be of a partial window). Returns only when both sides have
    /// stopped. Uncancelled, the slices and so the numbers are those of ``run(progress:)``.
    public func run(progress: (Double) -> Void = { _ in }, cancellation: PreviewCancellation) -> PreviewResult? {
        var cuts: [SimTime] = []
        var t = from
        while t < end {
            t = min(end, t + Self.slice)
            cuts.append(t)
        }
        let sliceDone = DispatchSemaphore(value: 0)
        let workerDone = DispatchSemaphore(value: 0)
        // The `with_command` side runs at most one slice ahead of the baseline's last report, so a
        // cancellation seen there is seen by both sides within a slice. (Signalled up, not created
        // with a count: libdispatch traps on freeing a semaphore below its initial count.)
        let mayRun = DispatchSemaphore(value: 0)
        mayRun.signal()
        mayRun.signal()
        // Set when the run is told to stop early: the cuts from this index on are not started
        // (the worker may be inside one already; the baseline then catches up to it).
        let stopBefore = Atomic<Int>(Int.max)
        let worker = Thread { [self, cuts] in
            for (i, cut) in cuts.enumerated() {
                mayRun.wait()
                // Cancelled, the slices left are skipped but still counted off, so no wait below hangs.
                if !cancellation.isCancelled, i < stopBefore.load(ordering: .acquiring) { withCommandSteps.run(withCommand, until: cut) }
                sliceDone.signal()
            }
            workerDone.signal()
        }
        // The engine's own thread sizes: the step loop does not recurse, but stay generous.
        worker.stackSize = 8 << 20
        worker.start()
        var reported = 0
        var stoppedBecause: String?
        for cut in cuts {
            if cancellation.isCancelled { break }
            // Time's up: at least one slice is done, so there is a window to answer with.
            if reported > 0, let reason = cancellation.stoppedBecause {
                stoppedBecause = reason
                stopBefore.store(reported, ordering: .releasing)
                break
            }
            baselineSteps.run(baseline, until: cut)
            sliceDone.wait()
            progress((cut - from) / request.duration)
            reported += 1
            mayRun.signal()
        }
        // Stopped early: let the worker count off the slices it has not yet been let into.
        for _ in reported..<cuts.count { mayRun.signal() }
        workerDone.wait()
        // The flag only ever goes up: if either side skipped a slice, it is up now.
        if cancellation.isCancelled { return nil }
        var result = PreviewResult()
        result.command = request.command.description
        result.durationSeconds = request.duration
        result.coveredSeconds = request.duration
        result.fromSeconds = from
        result.reply = reply
        if let reason = stoppedBecause {
            // The worker may have been inside a later slice when told: both sides end at the same time.
            let reached = max(baseline.now, withCommand.now)
            baselineSteps.run(baseline, until: reached)
            withCommandSteps.run(withCommand, until: reached)
            result.coveredSeconds = reached - from
            result.stopped = "stopped at \(PreviewRequest.format(duration: reached - from)) of the "
                + "\(PreviewRequest.format(duration: request.duration)) window: \(reason)"
        }
        if let scaleOperation {
            result.unfinished = withCommand.unfinishedScale(operation: scaleOperation, from: from,
                                                            window: result.coveredSeconds)
        }
        result.baseline = baseline.windowSide(since: baselineMark)
        result.withCommand = withCommand.windowSide(since: withCommandMark)
        // Both sides ran to the same time, so they applied the same steps.
        result.scheduledSteps = zip(baselineSteps.steps, zip(baselineSteps.replies, withCommandSteps.replies)).map { step, replies in
            PreviewResult.ScheduledStep(atSeconds: step.at, command: step.command.description,
                                        baselineRefused: replies.0.accepted ? nil : replies.0.message,
                                        withCommandRefused: replies.1.accepted ? nil : replies.1.message)
        }
        return result
    }

    /// `run(until:)` returns early after a pathological burst at one instant; keep going.
    static func advance(_ engine: ServingEngine, to time: SimTime) {
        while engine.now < time { engine.run(until: time) }
    }
}

extension ServingEngine {
    /// Forks the engine twice and applies `request.command` to one fork at its start; the
    /// engine is not changed. Refused for a duration out of range or a command the engine
    /// would reject (the engine's reason is given). Call on the engine thread, between events.
    ///
    /// `scheduled`: the scenario steps the live run has still to apply (in time order); those due
    /// by the window's end are applied on both forks at their times, after the command on the
    /// `with_command` side, so both sides see the traffic and events the live run will.
    public func startPreview(_ request: PreviewRequest, scheduled: [Scenario.Step] = []) throws(PreviewRefusal) -> PreviewRun {
        guard request.duration.isFinite, PreviewRequest.durationRange.contains(request.duration) else {
            throw PreviewRefusal("a preview runs from 1s to 1h of simulated time; got \(OperatorCommand.format(request.duration)) s")
        }
        switch request.command {
        case .speed, .speedMax, .pause, .resume:
            throw PreviewRefusal("'\(request.command)' changes only the pace of the live run; nothing to preview")
        default: break
        }
        let baseline: ServingEngine, withCommand: ServingEngine
        do {
            baseline = try fork()
            withCommand = try fork()
        } catch {
            throw PreviewRefusal("cannot fork the engine: \(error)")
        }
        let baselineMark = baseline.beginWindow()
        let withCommandMark = withCommand.beginWindow()
        let operations = withCommand.scaling.details.count
        let reply = withCommand.apply(request.command)
        guard reply.accepted else {
            throw PreviewRefusal("the engine would reject '\(request.command)': \(reply.message)")
        }
        return PreviewRun(request: request, baseline: baseline, withCommand: withCommand,
                          baselineMark: baselineMark, withCommandMark: withCommandMark, reply: reply.message,
                          scheduled: scheduled,
                          scaleOperation: withCommand.scaling.details.count > operations ? operations : nil)
    }

    /// ``startPreview(_:scheduled:)`` and ``PreviewRun/run(progress:)`` in one call (tests, offline use).
    public func preview(_ request: PreviewRequest, scheduled: [Scenario.Step] = []) throws(PreviewRefusal) -> PreviewResult {
        try startPreview(request, scheduled: scheduled).run()
    }

    /// Scale operation `index`, opened at `from`, if it had not finished by now (a preview window
    /// of `window` seconds ended): when its last TE comes into service, or how many still drain.
    /// Nil when it finished or came to nothing (its starts all lost or cancelled).
    func unfinishedScale(operation index: Int, from: SimTime, window: Double) -> String? {
        guard scaling.details.indices.contains(index) else { return nil }
        let op = scaling.details[index]
        guard op.readyS == nil, op.to != op.from else { return nil }
        let lives = scaling.lifecycle.filter { $0.value.detail == index }.map(\.value)
        let inWindow = "the \(PreviewRequest.format(duration: window)) window"
        if op.to < op.from {
            let draining = lives.filter { $0.phase == .draining }.count
            guard draining > 0 else { return nil }
            return "the scale-in had not finished at the end of \(inWindow): \(Self.counted(draining, "TE")) still "
                + "finishing what \(draining == 1 ? "it holds" : "they hold") before returning NPUs"
        }
        let starting = lives.filter(\.phase.isStarting)
        guard !starting.isEmpty else { return nil }
        // A TE loading is in service a warm-up after its load; one still allocating has no load
        // time yet (its path is picked when the allocation ends), so the finish is not known.
        let warmUp = configuration.scaling.warmUpSeconds
        var last: SimTime? = from
        for life in starting {
            switch (life.phase, life.phaseEndsAt) {
            case (.warmingUp, let end?): last = last.map { max($0, end) }
            case (.loading, let end?): last = last.map { max($0, end + warmUp) }
            default: last = nil
            }
        }
        var phases: [String] = []
        for (phase, words) in [(InstancePhase.allocating, "allocating"), (.loading, "loading weights"), (.warmingUp, "warming up")] {
            let count = starting.filter { $0.phase == phase }.count
            if count > 0 { phases.append("\(count) \(words)") }
        }
        let path = op.loadPath.map { "; load path \($0.rawValue)" } ?? ""
        let when = last.map { "finishes at +\(OperatorCommand.format(((($0 - from) * 10).rounded(.up)) / 10)) s, after" }
            ?? "does not finish within"
        return "the scale-up \(when) \(inWindow): \(starting.count) of its \(Self.counted(op.to - op.from, "new TE")) "
            + "not in service yet (\(phases.joined(separator: ", "))\(path))"
    }

    /// The counters at a window's start, to report the window alone.
    struct WindowMark {
        var at: SimTime
        var arrived = 0, completed = 0, failed = 0, rejected = 0, inFlight = 0
        var promptTokens = 0, generatedTokens = 0, prefillComputedTokens = 0, sloMet = 0
        var failureReasons: [String: Int] = [:], rejectionReasons: [String: Int] = [:]
        var prefix = PrefixCacheStats()
        var deviceTime = DeviceCounts<Double>()
    }

    /// Starts a reporting window: takes the counters and clears the whole-run latency histograms
    /// and the KV peak (so a report of this engine from here on covers the window for those).
    /// Used on forks; on a live engine it would reset its report's latencies.
    func beginWindow() -> WindowMark {
        let t = telemetry
        let mark = WindowMark(at: now, arrived: t.arrived, completed: t.completed, failed: t.failed,
                              rejected: t.rejected, inFlight: t.inFlight, promptTokens: t.promptTokens, generatedTokens: generatedSoFar(),
                              prefillComputedTokens: t.prefillComputedTokens, sloMet: t.sloMet,
                              failureReasons: t.failureReasons, rejectionReasons: t.rejectionReasons,
                              prefix: prefixStats(), deviceTime: deviceTimeSoFar())
        telemetry.ttft.reset()
        telemetry.tpot.reset()
        telemetry.e2e.reset()
        telemetry.peakDecodeUsage = decodeKVUsage()
        return mark
    }

    /// The report's `requests`, `latency_ms`, `slo`, `throughput` and `kv` over the window
    /// begun at `mark`.
    func windowSide(since mark: WindowMark) -> PreviewResult.Side {
        let whole = report()
        let t = telemetry
        func delta(_ now: [String: Int], _ then: [String: Int]) -> [String: Int] {
            var d: [String: Int] = [:]
            for (reason, count) in now where count - (then[reason] ?? 0) > 0 { d[reason] = count - (then[reason] ?? 0) }
            return d
        }
        var side = PreviewResult.Side()
        let completed = t.completed - mark.completed
        side.requests = .init(arrived: t.arrived - mark.arrived, completed: completed, failed: t.failed - mark.failed,
                              rejected: t.rejected - mark.rejected, inFlight: whole.requests.inFlight,
                              failureReasons: delta(t.failureReasons, mark.failureReasons),
                              rejectionReasons: delta(t.rejectionReasons, mark.rejectionReasons))
        side.requests.inFlightWalked = whole.requests.inFlightWalked
        side.requests.inFlightAtStart = mark.inFlight
        // As report() counts them (it once divided by chips and called it per die, with no per-chip figure).
        side.throughput = throughput(generatedTokens: generatedSoFar() - mark.generatedTokens,
                                     prefillComputedTokens: t.prefillComputedTokens - mark.prefillComputedTokens,
                                     from: mark.at, deviceTimeAtStart: mark.deviceTime)
        side.latencyMs = whole.latencyMs
        side.slo = whole.slo
        side.slo.attainment = completed == 0 ? 0 : Double(t.sloMet - mark.sloMet) / Double(completed)
        let prefix = prefixStats()
        var windowPrefix = PrefixCacheStats()
        windowPrefix.queriedTokens = prefix.queriedTokens - mark.prefix.queriedTokens
        windowPrefix.hitTokens = prefix.hitTokens - mark.prefix.hitTokens
        side.kv = .init(peakUsage: whole.kv.peakUsage, prefixHitRate: windowPrefix.hitRate)
        return side
    }
}
