import Foundation
import ServingEngine
import SimKit
import Synchronization

/// What the host needs of a deterministic engine; `ServingEngine` provides it.
public protocol SimulationCore: AnyObject {
    var simTime: SimTime { get }
    /// Processes every event up to and including `time`, then sets the clock to `time`.
    func run(until time: SimTime)
    func apply(_ command: OperatorCommand) -> CommandReply
    func snapshot() -> Snapshot
    /// A request from outside the workload (HTTP): taken in now; returns its id.
    func submitExternal(promptTokens: Int, maxTokens: Int) -> Int
    func cancelExternal(id: Int)
    /// Progress of external requests since the last call.
    func takeStreamUpdates() -> [StreamUpdate]
}

/// Runs an engine on a thread of its own, paced against the wall clock (architecture.md, Threads).
///
/// Commands enter through a locked queue and are applied between events, stamped with the
/// simulated time at which they took effect (the command log that makes a session replayable);
/// snapshots leave through a single-slot mailbox, so readers never block the engine.
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
    private let core: SimulationCore
    private var pacer: Pacer

    private let inbox = Mutex<[PendingCommand]>([])
    /// Completion requests from the HTTP face, and their streams (engine thread only).
    private let requestInbox = Mutex<[HostRequest]>([])
    private var streams: [Int: AsyncStream<CompletionEvent>.Continuation] = [:]
    public let modelName: String

    enum HostRequest: Sendable {
        case submit(CompletionRequest, AsyncStream<CompletionEvent>.Continuation)
        case cancel(Int)
    }
    private let mailbox: Mutex<Snapshot>
    private let log = Mutex<[LoggedCommand]>([])
    private let stopping = Atomic<Bool>(false)
    private let finished = DispatchSemaphore(value: 0)
    private let started = Atomic<Bool>(false)
    public let capabilities: Set<EngineCapability>
    /// Wall seconds between published snapshots.
    public let publishInterval: Double

    public struct LoggedCommand: Sendable, Equatable {
        public var simTime: SimTime
        public var line: String
    }

    final class PendingCommand: @unchecked Sendable {
        let command: OperatorCommand
        let line: String
        let done = DispatchSemaphore(value: 0)
        var reply = CommandReply(accepted: false, message: "engine stopped")
        init(command: OperatorCommand, line: String) {
            self.command = command
            self.line = line
        }
    }

    /// Scenario steps not yet applied, in time order.
    private var scenarioSteps: [Scenario.Step]

    public init(core: SimulationCore, speed: Double?, publishInterval: Double = 0.2, scenario: Scenario? = nil,
                capabilities: Set<EngineCapability> = [.drain, .speed]) {
        self.core = core
        self.scenarioSteps = scenario?.steps ?? []
        self.pacer = Pacer(speed: speed)
        self.publishInterval = publishInterval
        self.capabilities = capabilities
        var first = core.snapshot()
        self.modelName = first.modelName
        first.speed = speed
        self.mailbox = Mutex(first)
    }

    public func start() {
        guard !started.exchange(true, ordering: .acquiringAndReleasing) else { return }
        let thread = Thread { [self] in
            loop()
            finished.signal()
        }
        thread.name = "xds-engine"
        thread.start()
    }

    /// Stops the engine thread and waits for it; pending commands get "engine stopped".
    public func stop() {
        guard started.load(ordering: .acquiring), !stopping.exchange(true, ordering: .acquiringAndReleasing) else { return }
        finished.wait()
        for pending in inbox.withLock({ q in defer { q.removeAll() }; return q }) { pending.done.signal() }
    }

    public func latestSnapshot() -> Snapshot { mailbox.withLock { $0 } }

    /// The commands applied so far, with the simulated time each took effect.
    public var commandLog: [LoggedCommand] { log.withLock { $0 } }

    public func send(commandLine: String) -> CommandReply {
        let command: OperatorCommand
        switch OperatorCommand.parse(commandLine) {
        case .failure(let error): return CommandReply(accepted: false, message: error.message)
        case .success(let c): command = c
        }
        guard started.load(ordering: .acquiring), !stopping.load(ordering: .acquiring) else {
            return CommandReply(accepted: false, message: "engine is not running")
        }
        let pending = PendingCommand(command: command, line: command.description)
        inbox.withLock { $0.append(pending) }
        // The engine applies commands between events, within one loop turn (≤ a few ms).
        if pending.done.wait(timeout: .now() + 5) == .timedOut {
            return CommandReply(accepted: true, message: "\(pending.line): queued")
        }
        return pending.reply
    }

    // MARK: Completions (CompletionBackend)

    public func submit(_ request: CompletionRequest) -> AsyncStream<CompletionEvent> {
        let (stream, continuation) = AsyncStream<CompletionEvent>.makeStream()
        guard started.load(ordering: .acquiring), !stopping.load(ordering: .acquiring) else {
            continuation.yield(.failed(reason: "engine is not running", status: 503))
            continuation.finish()
            return stream
        }
        requestInbox.withLock { $0.append(.submit(request, continuation)) }
        return stream
    }

    public func cancel(requestID: Int) {
        requestInbox.withLock { $0.append(.cancel(requestID)) }
    }

    /// Takes queued submissions and cancellations in, logged like commands (replayable).
    private func applyRequests() {
        let batch = requestInbox.withLock { q in defer { q.removeAll() }; return q }
        for item in batch {
            switch item {
            case let .submit(request, continuation):
                let id = core.submitExternal(promptTokens: request.promptTokens, maxTokens: request.maxTokens)
                streams[id] = continuation
                log.withLock { $0.append(LoggedCommand(simTime: core.simTime,
                                                       line: "submit prompt \(request.promptTokens) max_tokens \(request.maxTokens)")) }
            case .cancel(let id):
                core.cancelExternal(id: id)
                log.withLock { $0.append(LoggedCommand(simTime: core.simTime, line: "cancel request \(id)")) }
                streams.removeValue(forKey: id)?.finish()
            }
        }
        if !batch.isEmpty { deliverUpdates() }
    }

    /// Hands the engine's per-request progress to the waiting streams.
    private func deliverUpdates() {
        for update in core.takeStreamUpdates() {
            guard let continuation = streams[update.id] else { continue }
            switch update.kind {
            case .accepted:
                continuation.yield(.accepted(requestID: update.id))
            case .tokens(let n):
                continuation.yield(.tokens(n))
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

    // MARK: Engine thread

    private static func wallNow() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }

    private func loop() {
        pacer.start(wall: Self.wallNow(), sim: core.simTime)
        var lastPublish = -Double.infinity
        while !stopping.load(ordering: .acquiring) {
            if applyPendingCommands() { lastPublish = Self.wallNow() }
            applyRequests()
            advance()
            let now = Self.wallNow()
            if now - lastPublish >= publishInterval {
                publish()
                lastPublish = now
            }
            if pacer.speed != nil || pacer.paused { Thread.sleep(forTimeInterval: 0.005) }
        }
        publish()
        for (_, continuation) in streams {
            continuation.yield(.failed(reason: "engine stopped", status: 503))
            continuation.finish()
        }
        streams.removeAll()
    }

    private func applyPendingCommands() -> Bool {
        let batch = inbox.withLock { q in defer { q.removeAll() }; return q }
        for pending in batch {
            let wall = Self.wallNow(), sim = core.simTime
            switch pending.command {
            case .speed(let s):
                pacer.setSpeed(s, wall: wall, sim: sim)
                pending.reply = CommandReply(accepted: true, message: "speed \(s)×")
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
    private func advance() {
        let began = Self.wallNow()
        guard let target = pacer.target(wall: began) else {
            // As fast as possible: work for up to 50 ms of wall time per turn.
            while Self.wallNow() - began < 0.05 { runCore(until: core.simTime + 0.25) }
            return
        }
        guard target > core.simTime else { return }
        let slice = max(0.01, (pacer.speed ?? 1) * 0.02)
        while core.simTime < target {
            runCore(until: min(target, core.simTime + slice))
            if Self.wallNow() - began > 0.1 {
                pacer.rebase(wall: Self.wallNow(), sim: core.simTime)
                return
            }
        }
    }

    /// Runs the core, stopping at scenario steps to apply them at their exact simulated time.
    private func runCore(until limit: SimTime) {
        while let step = scenarioSteps.first, step.at <= limit {
            core.run(until: max(core.simTime, step.at))
            scenarioSteps.removeFirst()
            let reply = core.apply(step.command)
            if reply.accepted { log.withLock { $0.append(LoggedCommand(simTime: core.simTime, line: step.command.description)) } }
        }
        core.run(until: limit)
        if !streams.isEmpty { deliverUpdates() }
    }

    private func publish() {
        var s = core.snapshot()
        s.speed = pacer.speed
        s.paused = pacer.paused
        mailbox.withLock { $0 = s }
    }
}
