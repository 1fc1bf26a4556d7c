import Foundation
import Synchronization

/// Whether the engine thread is doing its job, as `/ready` and `/health` report it.
///
/// The engine thread promises two things (issue 10, the liveness contract): while unpaused it
/// keeps simulated time moving, and it takes queued commands and requests in within a bound.
/// ``EngineHost`` records wall-clock stamps of both (atomics, read without locks), and
/// ``EngineHost/liveness()`` turns them into one of these states.
///
/// | state | meaning | `/ready` |
/// |---|---|---|
/// | `running` | simulated time moves (or is where the pacer wants it) | 200 |
/// | `paused` | the operator paused it; time stands still on purpose | 503 "the engine is paused" |
/// | `stalled` | unpaused, but simulated time has not moved for longer than the bound (or, paused, the loop has not turned) | 503 |
/// | `backlogged` | a command or request has waited longer than the bound to be taken in | 503 |
/// | `notStarted`, `stopped` | no engine thread | 503 |
public struct EngineLiveness: Sendable, Equatable {
    public enum State: String, Sendable, Equatable {
        case notStarted = "not_started"
        case running, paused, stalled, backlogged, stopped
    }

    public var state: State
    /// One sentence for an operator: what is wrong and since when (or "running").
    public var reason: String
    /// Wall seconds since simulated time last moved, or was where the pacer wanted it.
    public var secondsSinceProgress: Double
    /// Wall seconds since the engine loop last completed a turn.
    public var secondsSinceTurn: Double
    /// Wall seconds the oldest queued command or request has waited (0 when none waits).
    public var oldestWaitingSeconds: Double

    /// True when the engine thread keeps its promises (paused counts: it still takes commands in).
    public var isLive: Bool { state == .running || state == .paused }
}

/// A command or request handed to the engine thread, claimed exactly once: either the engine
/// takes it in, or the sender withdraws it (timeout, stop) and the engine must skip it.
final class Ticket: Sendable {
    private static let queued: UInt8 = 0, claimed: UInt8 = 1, withdrawn: UInt8 = 2
    private let state = Atomic<UInt8>(Ticket.queued)
    /// When it was queued (uptime nanoseconds).
    let queuedAt: UInt64

    init(queuedAt: UInt64 = DispatchTime.now().uptimeNanoseconds) { self.queuedAt = queuedAt }

    /// The engine takes it; false if it was withdrawn first.
    func claim() -> Bool {
        state.compareExchange(expected: Ticket.queued, desired: Ticket.claimed, ordering: .acquiringAndReleasing).exchanged
    }

    /// The sender gives up on it; false if the engine already took it.
    func withdraw() -> Bool {
        state.compareExchange(expected: Ticket.queued, desired: Ticket.withdrawn, ordering: .acquiringAndReleasing).exchanged
    }
}
