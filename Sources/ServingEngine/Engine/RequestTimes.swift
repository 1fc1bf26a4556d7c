import DequeModule
import SimKit

/// When a request passed the stages after its first prefill chunk (``RequestState/times``),
/// stamped where the engine already handles it; the engine never reads them back, so they
/// change nothing in a run. A face's request detail shows them (``RequestDetail``).
struct RequestTimes {
    /// The current attempt's first prefill chunk (``RequestState/prefillStartedAt`` keeps the
    /// first attempt's for queue-time metrics) and its last one.
    var prefillStartedAt: SimTime?
    var prefillEndedAt: SimTime?
    /// The KV transfer over its channel (after waiting for room on the decode side).
    var transferStartedAt: SimTime?
    var transferEndedAt: SimTime?
    /// Joined the decode batch at a step boundary.
    var decodeJoinedAt: SimTime?
    /// Taken off failed hardware and prefilled again; the last time it went back to the queue.
    var reprefills = 0
    var requeuedAt: SimTime?

    /// A request put back in the queue (fault or drain) starts its stages over; the count and
    /// the time it was put back stay.
    func requeued(at time: SimTime) -> RequestTimes {
        var t = RequestTimes()
        t.reprefills = reprefills
        t.requeuedAt = time
        return t
    }
}

/// The last requests that left the engine, for ``ServingEngine/requestDetail(id:)``: the
/// request's own state as it left (no strings are built until someone asks).
struct FinishedRequestRing {
    struct Entry {
        var request: RequestState
        var stage: RequestStage
        var finishedAt: SimTime
        var outputTokens: Int
        var reason: String?
    }
    static let capacity = 512
    private(set) var entries: Deque<Entry> = []

    mutating func append(_ entry: Entry) {
        if entries.count >= Self.capacity { entries.removeFirst() }
        entries.append(entry)
    }

    func find(_ id: Int) -> Entry? { entries.last { $0.request.spec.id == id } }
}
