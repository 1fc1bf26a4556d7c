import SimKit

/// When a request passed the stages after its first prefill chunk (``RequestState/times``),
/// stamped where the engine already handles it; the engine never reads them back, so they
/// change nothing in a run. A face's request detail shows them (``RequestDetail``).
struct RequestTimes {
    // Stored as plain times with NaN for "not yet" (the engine's clock is never NaN): an
    // optional time takes 16 bytes in the in-flight table, this 8 (a saturated hour holds
    // hundreds of thousands of requests). Read and written as optionals.
    private var stamps: (prefillStarted: SimTime, prefillEnded: SimTime, transferStarted: SimTime,
                         transferEnded: SimTime, decodeJoined: SimTime, requeued: SimTime)
        = (.nan, .nan, .nan, .nan, .nan, .nan)
    /// Taken off failed hardware and prefilled again; the last time it went back to the queue.
    var reprefills = 0

    /// The current attempt's first prefill chunk (``RequestState/prefillStartedAt`` keeps the
    /// first attempt's for queue-time metrics) and its last one.
    var prefillStartedAt: SimTime? {
        get { Self.time(stamps.prefillStarted) }
        set { stamps.prefillStarted = newValue ?? .nan }
    }
    var prefillEndedAt: SimTime? {
        get { Self.time(stamps.prefillEnded) }
        set { stamps.prefillEnded = newValue ?? .nan }
    }
    /// The KV transfer over its channel (after waiting for room on the decode side).
    var transferStartedAt: SimTime? {
        get { Self.time(stamps.transferStarted) }
        set { stamps.transferStarted = newValue ?? .nan }
    }
    var transferEndedAt: SimTime? {
        get { Self.time(stamps.transferEnded) }
        set { stamps.transferEnded = newValue ?? .nan }
    }
    /// Joined the decode batch at a step boundary.
    var decodeJoinedAt: SimTime? {
        get { Self.time(stamps.decodeJoined) }
        set { stamps.decodeJoined = newValue ?? .nan }
    }
    var requeuedAt: SimTime? {
        get { Self.time(stamps.requeued) }
        set { stamps.requeued = newValue ?? .nan }
    }

    /// A stored stamp as an optional (NaN = not passed yet).
    static func time(_ stamp: SimTime) -> SimTime? { stamp.isNaN ? nil : stamp }

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
        /// What its schedulers held as it left (they gave the records back).
        var placement: RequestPlacement
        var stage: RequestStage
        var finishedAt: SimTime
        var outputTokens: Int
        var reason: String?
    }
    static let capacity = 512
    private(set) var entries = LastValues<Entry>(capacity: FinishedRequestRing.capacity)

    /// Keeps `entry` (moved in: a request's state is not copied on its way out).
    mutating func append(_ entry: consuming Entry) { entries.append(entry) }

    func find(_ id: Int) -> Entry? { entries.last { $0.request.spec.id == id } }
}
