import EngineRuntime
import Foundation
import ServingEngine
import SimKit
import Synchronization

/// A ``SimulationCore`` for host tests: it keeps time, records the commands it applied, takes
/// every request in at once (an `.accepted` update, then no token ever), and can be wedged:
/// while wedged, `run(until:)` (or, with ``wedgeApply()``, the next `apply`) blocks, as an engine
/// stuck in an endless step would, until ``release()``. A snapshot can be given a cost in wall
/// time (``snapshotSeconds``) and is counted (``snapshotsBuilt``).
///
/// ```swift
/// let core = WedgeableCore()
/// let host = EngineHost(core: core, speed: 1)
/// host.start()
/// core.wedge()          // the engine thread is now stuck inside run(until:)
/// core.release()
/// ```
public final class WedgeableCore: SimulationCore, @unchecked Sendable {
    private struct State {
        var time: SimTime = 0
        var applied: [OperatorCommand] = []
        var submitted = 0
        var updates: [StreamUpdate] = []
        var snapshots = 0
    }
    private let state = Mutex(State())
    private let wedged = Atomic<Bool>(false)
    private let applyWedged = Atomic<Bool>(false)
    private let gate = DispatchSemaphore(value: 0)
    /// Set while a call is blocked inside `run(until:)` or `apply`.
    public let inside = Atomic<Bool>(false)
    /// What ``snapshot()`` returns, with the clock set.
    private let base: Snapshot
    private let acceptsRequests: Bool
    /// Wall seconds each ``snapshot()`` takes (slept on the calling thread).
    public let snapshotSeconds: Double

    /// `acceptsRequests: false`: a submission gets an id but no `.accepted` update.
    public init(base: Snapshot = Snapshot(), acceptsRequests: Bool = true, snapshotSeconds: Double = 0) {
        self.base = base
        self.acceptsRequests = acceptsRequests
        self.snapshotSeconds = snapshotSeconds
    }

    public var simTime: SimTime { state.withLock { $0.time } }
    public var applied: [OperatorCommand] { state.withLock { $0.applied } }
    public var submitted: Int { state.withLock { $0.submitted } }
    public var snapshotsBuilt: Int { state.withLock { $0.snapshots } }

    public func wedge() { wedged.store(true, ordering: .releasing) }
    /// The next `apply` blocks until released (a command that never returns).
    public func wedgeApply() { applyWedged.store(true, ordering: .releasing) }
    public func release() {
        wedged.store(false, ordering: .releasing)
        applyWedged.store(false, ordering: .releasing)
        gate.signal()
    }

    private func block() {
        inside.store(true, ordering: .releasing)
        gate.wait()
        inside.store(false, ordering: .releasing)
    }

    public func run(until time: SimTime) {
        if wedged.load(ordering: .acquiring) { block() }
        state.withLock { $0.time = max($0.time, time) }
    }
    public func apply(_ command: OperatorCommand) -> CommandReply {
        if applyWedged.load(ordering: .acquiring) { block() }
        state.withLock { $0.applied.append(command) }
        return CommandReply(accepted: true, message: "\(command)")
    }
    public func snapshot() -> Snapshot {
        if snapshotSeconds > 0 { Thread.sleep(forTimeInterval: snapshotSeconds) }
        var s = base
        s.simTime = state.withLock { state in
            state.snapshots += 1
            return state.time
        }
        return s
    }
    public func submitExternal(promptTokens: Int, maxTokens: Int) -> Int {
        state.withLock {
            $0.submitted += 1
            if acceptsRequests { $0.updates.append(StreamUpdate(id: $0.submitted, kind: .accepted)) }
            return $0.submitted
        }
    }
    public func cancelExternal(id: Int) {}
    public func takeStreamUpdates() -> [StreamUpdate] { state.withLock { s in defer { s.updates = [] }; return s.updates } }
}
