import Foundation
import PodModel
import ServingEngine
import SimKit
import Synchronization

/// What the host needs of a deterministic engine; `ServingEngine` provides it.
public protocol SimulationCore: AnyObject {
    var simTime: SimTime { get }
    /// The pod the core simulates, read once when a host starts: command lines are parsed
    /// against it, so a bad node, NPU or die number names this pod's range. Nil: not known.
    var podTopology: PodTopology? { get }
    /// Processes every event up to and including `time`, then sets the clock to `time`.
    func run(until time: SimTime)
    func apply(_ command: OperatorCommand) -> CommandReply
    func snapshot() -> Snapshot
    /// A request from outside the workload (HTTP): taken in now; returns its id.
    func submitExternal(promptTokens: Int, maxTokens: Int) -> Int
    /// As above with vLLM's length semantics and the prompt's prefix keys (see
    /// ``CompletionRequest``). Cores that only size requests keep the default, which drops them.
    func submitExternal(_ request: CompletionRequest) -> Int
    func cancelExternal(id: Int)
    /// The client's stop string ended the reply: the request finishes as completed. Cores without
    /// it keep the default, a cancel.
    func stopExternal(id: Int)
    /// Progress of external requests since the last call.
    func takeStreamUpdates() -> [StreamUpdate]
    /// When only periodic bookkeeping lies ahead, the time of the next real event (`.infinity`
    /// if none); nil otherwise. Lets an unpaced host cross an idle stretch in one call.
    var quietUntil: SimTime? { get }
}

extension SimulationCore {
    public var podTopology: PodTopology? { nil }
    public var quietUntil: SimTime? { nil }
    public func stopExternal(id: Int) { cancelExternal(id: id) }
    public func submitExternal(_ request: CompletionRequest) -> Int {
        submitExternal(promptTokens: request.promptTokens, maxTokens: request.maxTokens)
    }
}

/// Runs an engine on a thread of its own, paced against the wall clock (architecture.md, Threads).
///
/// Commands enter through a locked queue and are applied between events, stamped with the
/// simulated time at which they took effect (the command log that makes a session replayable);
/// snapshots leave through a single-slot mailbox, so readers never block the engine.
///
/// The liveness contract (issue 10): every answer comes in bounded time, whatever the engine
/// does. A command not applied within ``Bounds/command`` is answered with an error and withdrawn
/// (it never applies later); a request not taken in within ``Bounds/admission`` is answered 503;
/// ``stop(timeout:)`` waits at most its timeout. ``liveness()`` says whether simulated time
/// moves and queued work is taken in, which is what `/ready` reports.
///
/// ```swift
/// let host = EngineHost(core: engine, speed: 1)
/// host.start()
/// host.send(commandLine: "drain node 3")
/// let s = host.latestSnapshot()
/// host.stop()
/// ```
public final class EngineHost: EngineLink, CompletionBackend, @unchecked Sendable {
    // Touched only on the engine thread (after start) — the reason for @unchecked Sendable.
    let core: SimulationCore
    private var pacer: Pacer

    private let inbox = Mutex<[PendingCommand]>([])
    /// Previews waiting for the engine thread to fork the engine (EngineHost+Preview).
    let previewInbox = Mutex<[PendingPreview]>([])
    /// Previews computing now (``Bounds/previews`` at most).
    let previewsRunning = Atomic<Int>(0)
    /// The tokens of previews queued or computing, cancelled when the host stops.
    let previewCancellations = Mutex<[ObjectIdentifier: PreviewCancellation]>([:])
    /// Request-table questions waiting for the engine thread (EngineHost+RequestQuery).
    let queryInbox = Mutex<[PendingQuery]>([])
    /// Completion requests from the HTTP face, and the streams of those the engine took in (locked:
    /// the watchdog fails them if the engine stalls for ``Bounds/abandon``).
    private let requestInbox = Mutex<[HostRequest]>([])
    private let streams = Mutex<[Int: AsyncStream<CompletionEvent>.Continuation]>([:])
    public let modelName: String
    /// The core's pod (``SimulationCore/podTopology``): commands are parsed against it.
    let podTopology: PodTopology?

    enum HostRequest: Sendable {
        case submit(CompletionRequest, AsyncStream<CompletionEvent>.Continuation, Ticket)
        case cancel(Int)
        /// The reply hit a stop string: the request ends as completed (``SimulationCore/stopExternal(id:)``).
        case stop(Int)
    }
    /// The latest snapshot, built on the engine thread (a superpod's costs well under a
    /// millisecond: ServingEngine+Snapshot keeps its statistics incrementally).
    private let mailbox: Mutex<Snapshot>
    /// ``takeArrivalLead(requestID:)``'s entries (requests whose metrics nobody read, e.g.
    /// rejected at admission, are dropped wholesale at ``maxArrivalLeads``).
    private let arrivalLeads = Mutex<[Int: Double]>([:])
    static let maxArrivalLeads = 65_536
    private let log = Mutex<[LoggedCommand]>([])
    /// Signalled whenever work is queued for the engine thread, which sleeps on it between turns:
    /// queued work is taken in at once, not after the rest of a sleep (``wakeEngine()``).
    private let wake = DispatchSemaphore(value: 0)
    private let stopping = Atomic<Bool>(false)
    private let finished = DispatchSemaphore(value: 0)
    private let started = Atomic<Bool>(false)
    private let exited = Atomic<Bool>(false)
    /// Uptime nanoseconds when simulated time last moved (or stood where the pacer wanted it),
    /// and when the loop last finished a turn. Written by the engine thread, read by anyone.
    private let lastProgress = Atomic<UInt64>(0)
    private let lastTurn = Atomic<UInt64>(0)
    private let pausedNow = Atomic<Bool>(false)
    public let bounds: Bounds

    /// Wall-clock bounds of the liveness contract, in seconds.
    public struct Bounds: Sendable, Equatable {
        /// Unpaused and simulated time has not moved for longer than this: `stalled`.
        public var stall: Double
        /// A command or request has waited longer than this to be taken in: `backlogged`.
        public var backlog: Double
        /// ``EngineHost/send(commandLine:)`` answers with an error after this long.
        public var command: Double
        /// A completion request not taken in after this long is answered 503.
        public var admission: Double
        /// Requests in flight are answered 503 once the engine has been stalled this long
        /// (their clients would otherwise wait for an engine that may never move again).
        public var abandon: Double
        /// Previews computing at once; one more is refused until one finishes. Each forks the
        /// engine twice and runs both copies flat out on a thread of its own (a saturated pod's
        /// fork holds ~200 MB): unbounded, a few requests held a server's memory and cores for
        /// minutes. A cancelled preview (its client hung up) stops within a slice and frees its place.
        public var previews: Int
        /// Wall-clock seconds a preview may compute: then it stops at its next 15 s slice of
        /// simulated time and answers with the window so far, saying where it stopped and why
        /// (`preview rate 10000 for 1h` ran for minutes before). A preview that finishes in time
        /// answers exactly as without the budget.
        public var previewWall: Double

        public init(stall: Double = 2, backlog: Double = 2, command: Double = 5, admission: Double = 10,
                    abandon: Double = 15, previews: Int = 2, previewWall: Double = 30) {
            self.stall = stall
            self.backlog = backlog
            self.command = command
            self.admission = admission
            self.abandon = abandon
            self.previews = previews
            self.previewWall = previewWall
        }
    }
    public let capabilities: Set<EngineCapability>
    /// Wall seconds between published snapshots.
    public let publishInterval: Double

    public struct LoggedCommand: Sendable, Equatable {
        public var simTime: SimTime
        public var line: String
    }

    /// A command on its way to the engine thread; `reply` is written by whoever holds the ticket
    /// (the engine after claiming it) before `done` is signalled.
    final class PendingCommand: @unchecked Sendable {
        let command: OperatorCommand
        let line: String
        let ticket = Ticket()
        let done = DispatchSemaphore(value: 0)
        var reply = CommandReply(accepted: false, message: "engine stopped")
        init(command: OperatorCommand, line: String) {
            self.command = command
            self.line = line
        }
    }

    /// Scenario steps not yet applied, in time order (a preview's forks apply those in its window).
    /// A slice, so taking the next one off the front is O(1): an array shifted every remaining
    /// step down per step, quadratic in a scenario file's steps (100,000 allowed; the console's
    /// demo has 5,761).
    private(set) var scenarioSteps: ArraySlice<Scenario.Step>

    /// `speed` outside ``Pacer/speedRange`` is brought into it (callers check user input first).
    public init(core: SimulationCore, speed: Double?, publishInterval: Double = 0.2, scenario: Scenario? = nil,
                capabilities: Set<EngineCapability> = [.drain, .speed], bounds: Bounds = Bounds()) {
        self.core = core
        self.scenarioSteps = (scenario?.steps ?? [])[...]
        let speed = speed.map { $0.isNaN ? 1 : min(max($0, Pacer.speedRange.lowerBound), Pacer.speedRange.upperBound) }
        self.pacer = Pacer(speed: speed)
        self.bounds = bounds
        self.publishInterval = publishInterval
        self.capabilities = capabilities
        var first = core.snapshot()
        self.modelName = first.modelName
        self.podTopology = core.podTopology
        first.speed = speed
        self.mailbox = Mutex(first)
    }

    public func start() {
        guard !started.exchange(true, ordering: .acquiringAndReleasing) else { return }
        let now = Self.uptime()
        lastProgress.store(now, ordering: .releasing)
        lastTurn.store(now, ordering: .releasing)
        let thread = Thread { [self] in
            loop()
            exited.store(true, ordering: .releasing)
            finished.signal()
        }
        thread.name = "xds-engine"
        thread.start()
        let dog = Thread { [weak self] in
            while true {
                Thread.sleep(forTimeInterval: 0.5)
                guard let host = self, !host.stopping.load(ordering: .acquiring) else { return }
                host.checkInFlight()
            }
        }
        dog.name = "xds-engine-watchdog"
        dog.start()
    }

    /// The watchdog's turn: requests in flight on an engine stalled beyond ``Bounds/abandon`` are
    /// answered 503, and their cancellation is queued for when the engine moves again.
    private func checkInFlight() {
        let l = liveness()
        guard l.state == .stalled || l.state == .backlogged,
              max(l.secondsSinceProgress, l.oldestWaitingSeconds) > bounds.abandon else { return }
        let ids = failStreams(reason: "the engine stopped advancing (\(l.reason)); request abandoned")
        if !ids.isEmpty {
            requestInbox.withLock { q in q += ids.map { .cancel($0) } }
            wakeEngine()
        }
    }

    /// Ends every stream the engine holds with a 503; returns their request ids.
    @discardableResult
    private func failStreams(reason: String) -> [Int] {
        let taken = streams.withLock { all in defer { all.removeAll() }; return all }
        for (_, continuation) in taken {
            continuation.yield(.failed(reason: reason, status: 503))
            continuation.finish()
        }
        return taken.keys.sorted()
    }

    /// Asks the engine thread to stop and waits for it at most `timeout` seconds. Queued commands
    /// get "engine stopped" and queued requests a 503 at once, whether or not the thread ends in
    /// time. Returns false if the thread is still inside the engine after `timeout` (stuck in a
    /// step): the caller should then exit anyway. Safe to call more than once, from any thread.
    @discardableResult
    public func stop(timeout: Double = 3) -> Bool {
        guard started.load(ordering: .acquiring) else { return true }
        stopping.store(true, ordering: .releasing)
        wakeEngine()
        withdrawQueued(reason: "engine stopped")
        cancelRunningPreviews()
        if exited.load(ordering: .acquiring) { return true }
        guard finished.wait(timeout: .now() + max(0, timeout)) == .success else {
            failStreams(reason: "engine stopped")  // the thread is stuck: answer its clients from here
            return false
        }
        finished.signal()  // let any other waiter through too
        withdrawQueued(reason: "engine stopped")
        return true
    }

    /// Answers everything still queued for the engine thread, which will now skip it.
    private func withdrawQueued(reason: String) {
        for pending in inbox.withLock({ q in defer { q.removeAll() }; return q }) where pending.ticket.withdraw() {
            pending.reply = CommandReply(accepted: false, message: "\(pending.line): not applied, \(reason)")
            pending.done.signal()
        }
        for item in requestInbox.withLock({ q in defer { q.removeAll() }; return q }) {
            if case let .submit(_, continuation, ticket) = item, ticket.withdraw() {
                continuation.yield(.failed(reason: reason, status: 503))
                continuation.finish()
            }
        }
    }

    /// Whether the engine thread keeps the liveness contract right now (see ``EngineLiveness``).
    public func liveness() -> EngineLiveness {
        let now = Self.uptime()
        func ago(_ stamp: UInt64) -> Double { stamp == 0 || stamp > now ? 0 : Double(now - stamp) / 1e9 }
        let oldest = min(inbox.withLock { $0.first?.ticket.queuedAt ?? now },
                         requestInbox.withLock { q in
                             q.lazy.compactMap { item -> UInt64? in
                                 if case let .submit(_, _, ticket) = item { return ticket.queuedAt }
                                 return nil
                             }.min() ?? now
                         })
        var l = EngineLiveness(state: .running, reason: "running",
                               secondsSinceProgress: ago(lastProgress.load(ordering: .acquiring)),
                               secondsSinceTurn: ago(lastTurn.load(ordering: .acquiring)),
                               oldestWaitingSeconds: ago(oldest))
        let simTime = latestSnapshot().simTime
        if !started.load(ordering: .acquiring) {
            (l.state, l.reason) = (.notStarted, "the engine has not started")
        } else if stopping.load(ordering: .acquiring) || exited.load(ordering: .acquiring) {
            (l.state, l.reason) = (.stopped, "the engine is stopping")
        } else if l.oldestWaitingSeconds > bounds.backlog {
            (l.state, l.reason) = (.backlogged, "the engine has not taken in queued commands or requests for "
                + "\(Self.seconds(l.oldestWaitingSeconds)) (bound \(Self.seconds(bounds.backlog)))")
        } else if l.secondsSinceProgress > bounds.stall && pausedNow.load(ordering: .acquiring) {
            // Paused, time stands still on purpose, but the loop stamps progress every turn:
            // a stale stamp means the thread is stuck (inside a command).
            (l.state, l.reason) = (.stalled, "the engine loop has not turned for "
                + "\(Self.seconds(l.secondsSinceTurn)) while paused (bound \(Self.seconds(bounds.stall)))")
        } else if pausedNow.load(ordering: .acquiring) {
            (l.state, l.reason) = (.paused, "the engine is paused")
        } else if l.secondsSinceProgress > bounds.stall {
            (l.state, l.reason) = (.stalled, "the engine has not advanced simulated time for "
                + "\(Self.seconds(l.secondsSinceProgress)) while unpaused (stuck at t=\(Self.seconds(simTime)) "
                + "simulated; bound \(Self.seconds(bounds.stall)))")
        }
        return l
    }

    /// `/ready` answers 503 with this while the engine thread breaks its liveness contract; a
    /// paused engine is reported from the snapshot instead ("the engine is paused").
    public var unavailableReason: String? {
        let l = liveness()
        return l.isLive ? nil : l.reason
    }

    private static func seconds(_ value: Double) -> String { String(format: "%.1f s", value) }

    public func latestSnapshot() -> Snapshot { mailbox.withLock { $0 } }

    /// Started and not stopping: commands and previews are taken in.
    var isRunning: Bool { started.load(ordering: .acquiring) && !stopping.load(ordering: .acquiring) }

    /// The commands applied so far, with the simulated time each took effect.
    public var commandLog: [LoggedCommand] { log.withLock { $0 } }

    public func send(commandLine: String) -> CommandReply {
        let command: OperatorCommand
        switch OperatorCommand.parse(commandLine, on: podTopology) {
        case .failure(let error): return CommandReply(accepted: false, message: error.message)
        case .success(let c): command = c
        }
        if let problem = Self.hostProblem(command) { return CommandReply(accepted: false, message: problem) }
        guard started.load(ordering: .acquiring), !stopping.load(ordering: .acquiring) else {
            return CommandReply(accepted: false, message: "engine is not running")
        }
        let pending = PendingCommand(command: command, line: command.description)
        inbox.withLock { $0.append(pending) }
        wakeEngine()
        // The engine applies commands between events, within one loop turn (a few ms). If it has
        // not taken the command by the bound, the command is withdrawn: it never applies later.
        if pending.done.wait(timeout: .now() + bounds.command) == .success { return pending.reply }
        if pending.ticket.withdraw() {
            inbox.withLock { q in q.removeAll { $0 === pending } }
            return CommandReply(accepted: false, message: Self.notApplied(bounds.command)
                + "\(pending.line) (withdrawn; it will not apply later)")
        }
        // The engine took it and is applying it now: give it a moment more, then say so.
        if pending.done.wait(timeout: .now() + 1) == .success { return pending.reply }
        return CommandReply(accepted: false, message: Self.notApplied(bounds.command)
            + "\(pending.line) (the engine is still inside it and may apply it when it returns)")
    }

    /// Highest synthetic arrival rate the host passes on (requests/s). Superpod serves on the
    /// order of 100 requests/s; at 10^6 and beyond the engine spends unbounded time generating
    /// arrivals for one instant of simulated time, so the host refuses such rates outright.
    public static let maxRate = CommandLimits.maxRate

    /// Why the host refuses a command the parser let through (nil: pass it on): speeds the pacer
    /// cannot honour, arrival rates no pod can take.
    static func hostProblem(_ command: OperatorCommand) -> String? {
        switch command {
        case .speed(let s): return Pacer.speedProblem(s)
        case .rate(let r) where !CommandLimits.isAllowedRate(r):
            return "rate must be \(CommandLimits.allowedRates), got \(r.isFinite ? Pacer.format(r) : String(r))"
        default: return nil
        }
    }

    /// The start of the answer to a command that timed out; `POST /admin/commands` answers these 503.
    public static func notApplied(_ seconds: Double) -> String {
        "the engine did not apply the command within \(Pacer.format(seconds)) s: "
    }

    // MARK: Completions (CompletionBackend)

    public func submit(_ request: CompletionRequest) -> AsyncStream<CompletionEvent> {
        let (stream, continuation) = AsyncStream<CompletionEvent>.makeStream()
        guard started.load(ordering: .acquiring), !stopping.load(ordering: .acquiring) else {
            continuation.yield(.failed(reason: "engine is not running", status: 503))
            continuation.finish()
            return stream
        }
        // An engine already stuck for longer than the admission bound would only make the client
        // wait for that bound. (A shorter stall may be a busy machine starving the thread.)
        let live = liveness()
        guard live.isLive || max(live.secondsSinceProgress, live.oldestWaitingSeconds) <= bounds.admission else {
            continuation.yield(.failed(reason: "the engine cannot take requests now: \(live.reason)", status: 503))
            continuation.finish()
            return stream
        }
        let ticket = Ticket()
        requestInbox.withLock { $0.append(.submit(request, continuation, ticket)) }
        wakeEngine()
        let bound = bounds.admission
        DispatchQueue.global().asyncAfter(deadline: .now() + bound) {
            guard ticket.withdraw() else { return }
            continuation.yield(.failed(reason: "the engine did not take the request in within \(Pacer.format(bound)) s",
                                       status: 503))
            continuation.finish()
        }
        return stream
    }

    public func cancel(requestID: Int) {
        requestInbox.withLock { $0.append(.cancel(requestID)) }
        wakeEngine()
    }

    /// Simulated seconds between a request reaching the host (``submit(_:)``) and the engine's
    /// stamp of its arrival (its clock when the engine thread took it in), or nil if none.
    /// Read once: the entry goes. The engine counts TTFT from its own stamp; adding this makes
    /// it run from the request's arrival at the server, as vLLM's does (the wait for the engine
    /// thread is the server's too). Only paced and running: a wall wait has no simulated
    /// length otherwise.
    public func takeArrivalLead(requestID: Int) -> Double? {
        arrivalLeads.withLock { $0.removeValue(forKey: requestID) }
    }

    /// ``takeArrivalLead(requestID:)`` without taking it.
    public func arrivalLead(requestID: Int) -> Double? {
        arrivalLeads.withLock { $0[requestID] }
    }

    /// Engine thread: how far the engine's clock is past where the pacer put it when the request
    /// was submitted (never negative: a clock that lagged then does not shorten the engine's own).
    private func arrivalLead(submittedAt: UInt64) -> Double {
        guard !pacer.paused, pacer.speed != nil,
              let then = pacer.target(wall: Double(submittedAt) / 1e9) else { return 0 }
        return max(0, core.simTime - then)
    }

    public func stop(requestID: Int) {
        requestInbox.withLock { $0.append(.stop(requestID)) }
        wakeEngine()
    }

    /// Takes queued submissions and cancellations in, logged like commands (replayable).
    /// Returns whether anything was taken in (the engine's state may have changed).
    @discardableResult
    private func applyRequests() -> Bool {
        let batch = requestInbox.withLock { q in defer { q.removeAll() }; return q }
        for item in batch {
            switch item {
            case let .submit(request, continuation, ticket):
                guard ticket.claim() else { continue }  // answered 503 already (timeout, stop)
                let lead = arrivalLead(submittedAt: ticket.queuedAt)
                let id = core.submitExternal(request)
                if lead > 0 {
                    arrivalLeads.withLock { leads in
                        if leads.count >= Self.maxArrivalLeads { leads.removeAll() }  // never read: bounded
                        leads[id] = lead
                    }
                }
                streams.withLock { $0[id] = continuation }
                log.withLock { $0.append(LoggedCommand(simTime: core.simTime, line: Self.submitLine(request))) }
            case .cancel(let id):
                core.cancelExternal(id: id)
                log.withLock { $0.append(LoggedCommand(simTime: core.simTime, line: "cancel request \(id)")) }
                streams.withLock { $0.removeValue(forKey: id) }?.finish()
            case .stop(let id):
                core.stopExternal(id: id)
                log.withLock { $0.append(LoggedCommand(simTime: core.simTime, line: "stop request \(id)")) }
                streams.withLock { $0.removeValue(forKey: id) }?.finish()
            }
        }
        if !batch.isEmpty { deliverUpdates() }
        return !batch.isEmpty
    }

    /// The command-log line of a submission: `submit prompt N max_tokens M`, then only the fields
    /// that differ from their defaults, in this order: `min_tokens K`, `ignore_eos 1`,
    /// `prefix B h1,h2,…` (B tokens per block, the flat keys in hex). ``parseSubmitLine(_:)`` reads it back.
    public static func submitLine(_ request: CompletionRequest) -> String {
        var line = "submit prompt \(request.promptTokens) max_tokens \(request.maxTokens)"
        if request.minTokens != 0 { line += " min_tokens \(request.minTokens)" }
        if request.ignoreEOS { line += " ignore_eos 1" }
        if !request.prefixHashes.isEmpty, request.prefixBlockTokens > 0 {
            line += " prefix \(request.prefixBlockTokens) "
                + request.prefixHashes.map { String($0, radix: 16) }.joined(separator: ",")
        }
        return line
    }

    /// The request a ``submitLine(_:)`` line describes, or nil for any other line. Throws, with
    /// the range, for a token count outside ``submitCountRange`` and for prefix keys the engine
    /// could not take (``CompletionRequest/prefixKeysProblem``):
    /// `prefix 4611686018427387904 1` was read as it stood, and the engine that took it trapped.
    public static func parseSubmitLine(_ line: String) throws(ConfigError) -> CompletionRequest? {
        let words = line.split(separator: " ").map(String.init)
        guard words.count >= 5, words[0] == "submit", words[1] == "prompt", words[3] == "max_tokens",
              let prompt = Int(words[2]), let maxTokens = Int(words[4]) else { return nil }
        // Checked before anything is built on them: `prompt -5` or `max_tokens 9223372036854775807`
        // was taken as it stood (an `ignore_eos` request of 2^63 tokens). No line the host writes
        // comes near the bound: the HTTP face holds both within the model's window.
        try checkSubmitCount(prompt, "prompt")
        try checkSubmitCount(maxTokens, "max_tokens")
        var request = CompletionRequest(promptTokens: prompt, maxTokens: maxTokens)
        var index = 5
        while index + 1 < words.count {
            switch words[index] {
            case "min_tokens":
                guard let value = Int(words[index + 1]) else { return nil }
                try checkSubmitCount(value, "min_tokens")
                request.minTokens = value
                index += 2
            case "ignore_eos":
                request.ignoreEOS = words[index + 1] == "1"
                index += 2
            case "prefix":
                guard index + 2 < words.count, let block = Int(words[index + 1]) else { return nil }
                let keys = words[index + 2].split(separator: ",").map { UInt64($0, radix: 16) }
                // `prefix B ,` (no key) is no line the host writes, and its B was never checked.
                guard !keys.isEmpty, !keys.contains(nil) else { return nil }
                request.prefixBlockTokens = block
                request.prefixHashes = keys.compactMap { $0 }
                index += 3
            default: return nil
            }
        }
        guard index == words.count else { return nil }
        if !request.prefixHashes.isEmpty, let problem = CompletionRequest.prefixKeysProblem(
            keys: request.prefixHashes.count, blockTokens: request.prefixBlockTokens, promptTokens: request.promptTokens) {
            throw ConfigError("submit line: " + problem)
        }
        return request
    }

    /// Most tokens a `submit` line's `prompt`, `max_tokens` or `min_tokens` may give: a trace's
    /// bound (``TraceLimits/maxTokens``, ten million), far above any model's window.
    public static let submitCountRange = 0...TraceLimits.maxTokens

    private static func checkSubmitCount(_ value: Int, _ name: String) throws(ConfigError) {
        guard !submitCountRange.contains(value) else { return }
        throw ConfigError("submit line: \(name) must be within \(submitCountRange.lowerBound)…"
            + "\(submitCountRange.upperBound) tokens, got \(value)")
    }

    /// Cuts the engine thread's sleep short: something was queued for it. Several signals
    /// before it wakes only cost it as many quick turns.
    func wakeEngine() { wake.signal() }

    /// Hands the engine's per-request progress to the waiting streams.
    private func deliverUpdates() {
        let updates = core.takeStreamUpdates()
        guard !updates.isEmpty else { return }
        streams.withLock { streams in
            for update in updates {
                // Unknown: cancelled, or abandoned by the watchdog while the engine was stuck.
                guard let continuation = streams[update.id] else { continue }
                switch update.kind {
                case .accepted:
                    continuation.yield(.accepted(requestID: update.id))
                case .tokens(let n):
                    continuation.yield(.tokens(n))
                case .cachedPrompt(let n):
                    continuation.yield(.prefixCacheHit(tokens: n))
                case .finished(let capped):
                    continuation.yield(.finished(reason: capped ? "length" : "stop"))
                    continuation.finish()
                    streams.removeValue(forKey: update.id)
                case let .failed(reason, status):
                    continuation.yield(.failed(reason: reason, status: status))
                    continuation.finish()
                    streams.removeValue(forKey: update.id)
                }
            }
        }
    }

    // MARK: Engine thread

    private static func uptime() -> UInt64 { DispatchTime.now().uptimeNanoseconds }
    private static func wallNow() -> Double { Double(uptime()) / 1e9 }

    private func loop() {
        pacer.start(wall: Self.wallNow(), sim: core.simTime)
        var lastPublish = -Double.infinity
        // What the last snapshot showed: while the clock stands (paused, or idle at a pacer
        // target) and nothing came in, the next one would be the same, so it is not rebuilt
        // (a superpod snapshot walks every TE and expert; a paused console should cost nothing).
        var published: (sim: SimTime, speed: Double?, paused: Bool)?
        var changed = true
        while !stopping.load(ordering: .acquiring) {
            if applyPendingCommands() { lastPublish = Self.wallNow(); changed = true }
            forkPendingPreviews()
            answerPendingQueries()
            if applyRequests() { changed = true }
            advance()
            pausedNow.store(pacer.paused, ordering: .releasing)
            lastTurn.store(Self.uptime(), ordering: .releasing)
            let now = Self.wallNow()
            if now - lastPublish >= publishInterval {
                let state = (sim: core.simTime, speed: pacer.speed, paused: pacer.paused)
                if changed || published.map({ $0.sim != state.sim || $0.speed != state.speed || $0.paused != state.paused }) ?? true {
                    publish()
                    published = state
                    changed = false
                }
                lastPublish = now
            }
            // Between turns the thread sleeps until work is queued (``wakeEngine()``) or the
            // pacer's clock needs moving. Paused, a turn has nothing to do but look at the
            // inboxes, which wake it anyway: 50 ms keeps a paused console near idle.
            if pacer.paused { _ = wake.wait(timeout: .now() + 0.05) }
            else if let speed = pacer.speed {
                // At a pace the clock is moved every 5 ms; when nothing but periodic bookkeeping
                // is due before the next real event (an idle `xds serve`), the thread sleeps
                // until that event's wall time, at most 50 ms (issue 12: idle serve under 1% of
                // a core). Queued work still wakes it at once.
                var nap = 0.005
                if let quiet = core.quietUntil, quiet > core.simTime {
                    nap = min(0.05, max(0.005, (quiet - core.simTime) / speed))
                }
                _ = wake.wait(timeout: .now() + nap)
            }
        }
        publish()
        failStreams(reason: "engine stopped")
        refusePendingPreviews()
        answerPendingQueries(refusing: true)
    }

    private func applyPendingCommands() -> Bool {
        let batch = inbox.withLock { q in defer { q.removeAll() }; return q }.filter { $0.ticket.claim() }
        for pending in batch {
            let wall = Self.wallNow(), sim = core.simTime
            switch pending.command {
            case .speed(let s):
                pacer.setSpeed(s, wall: wall, sim: sim)
                pending.reply = CommandReply(accepted: true, message: "speed \(Pacer.format(s))×")
            case .speedMax:
                pacer.setSpeed(nil, wall: wall, sim: sim)
                pending.reply = CommandReply(accepted: true, message: "speed max")
            case .pause:
                pacer.pause(wall: wall, sim: sim)
                pending.reply = CommandReply(accepted: true, message: "paused")
            case .resume:
                pacer.resume(wall: wall, sim: sim)
                pending.reply = CommandReply(accepted: true, message: "resumed")
            default:
                pending.reply = core.apply(pending.command)
                if case .rate = pending.command, pending.reply.accepted, let until = nextScenarioRate(after: sim) {
                    pending.reply.message += until
                }
            }
            if pending.reply.accepted { log.withLock { $0.append(LoggedCommand(simTime: sim, line: pending.line)) } }
        }
        guard !batch.isEmpty else { return false }
        // Publish before answering, so a sender that reads the snapshot right after its reply
        // (a test, `POST /admin/commands` then `GET /admin/state`) sees the command's effect.
        publish()
        for pending in batch { pending.done.signal() }
        return true
    }

    /// Moves simulated time towards the pacer's target, in slices so commands and snapshots stay
    /// responsive; if the engine cannot keep up for 100 ms of wall time, the debt is forgiven.
    /// Slices are at most 0.25 simulated seconds whatever the speed, so one call into the engine
    /// never covers an unbounded stretch of simulated time.
    private func advance() {
        let began = Self.wallNow()
        guard let target = pacer.target(wall: began) else {
            // As fast as possible: work for up to 50 ms of wall time per turn, crossing an idle
            // stretch (a trace gap of days) in one call rather than a quarter second at a time.
            while Self.wallNow() - began < 0.05 {
                let slice = core.simTime + 0.25
                if let quiet = core.quietUntil, quiet.isFinite, quiet > slice { runCore(until: quiet) }
                else { runCore(until: slice) }
            }
            return
        }
        guard target > core.simTime else {
            // Where the pacer wants it (or paused on purpose): that is progress too.
            lastProgress.store(Self.uptime(), ordering: .releasing)
            return
        }
        let slice = min(0.25, max(0.01, (pacer.speed ?? 1) * 0.02))
        while core.simTime < target {
            runCore(until: min(target, core.simTime + slice))
            if Self.wallNow() - began > 0.1 {
                pacer.rebase(wall: Self.wallNow(), sim: core.simTime)
                return
            }
        }
    }

    /// How long an operator's `rate` holds when a scenario (the console's demo cycle, a
    /// `--scenario` file) sets the rate again later: " until the scenario's next rate step in
    /// 12.1 s (rate 25.3)", nil when none comes. `rate 10000` in the demo was answered "set to
    /// 10000 requests/s" and silently undone by the cycle's next rate step (seconds later).
    func nextScenarioRate(after now: SimTime) -> String? {
        guard let step = scenarioSteps.first(where: { if case .rate = $0.command { true } else { false } }) else {
            return nil
        }
        let wait = OperatorCommand.format((max(0, step.at - now) * 10).rounded() / 10)
        return " until the scenario's next rate step in \(wait) s (\(step.command))"
    }

    /// Runs the core, stopping at scenario steps to apply them at their exact simulated time.
    private func runCore(until limit: SimTime) {
        let before = core.simTime
        while let step = scenarioSteps.first, step.at <= limit {
            core.run(until: max(core.simTime, step.at))
            scenarioSteps.removeFirst()
            let reply = core.apply(step.command)
            if reply.accepted { log.withLock { $0.append(LoggedCommand(simTime: core.simTime, line: step.command.description)) } }
        }
        core.run(until: limit)
        if core.simTime > before { lastProgress.store(Self.uptime(), ordering: .releasing) }
        if streams.withLock({ !$0.isEmpty }) { deliverUpdates() }
    }

    /// Publishes now, on the engine thread: periodically, and after commands (their sender reads
    /// the effect next). A snapshot costs well under a millisecond even on a saturated superpod,
    /// so admissions and simulated time are not held up by it (DetachedSnapshotTests).
    private func publish() {
        var s = core.snapshot()
        s.speed = pacer.speed
        s.paused = pacer.paused
        // The old snapshot is released after the lock, not while readers wait on it.
        let old = mailbox.withLock { m in defer { m = s }; return m }
        _ = old
    }
}
