/// The request table on demand (issue 13, "no cap"): a snapshot lists only the oldest few hundred
/// requests in flight, so that it stays cheap on a saturated superpod; a face that wants to page
/// through all of them, or see one request's exact timeline, asks the engine for just that.
///
/// The embedded engine (``EngineHost`` in EngineRuntime) answers on its own thread between events;
/// a remote `xds serve` answers `GET /admin/requests` and `GET /admin/requests/{id}`. A face checks
/// `link as? RequestQueryLink`; links without it fall back to the snapshot's lists.
public protocol RequestQueryLink: AnyObject, Sendable {
    /// One window of the in-flight requests, filtered and sorted the way the query says. Blocks
    /// for one turn of the engine loop (a few ms): call it off a face's drawing thread.
    func requestPage(_ query: RequestQuery) -> Result<RequestPage, RequestQueryRefusal>
    /// The engine-recorded timeline of one request, in flight or recently finished.
    func requestDetail(id: Int) -> Result<RequestDetail, RequestQueryRefusal>
}

/// The column a request list is sorted by. Natural order: oldest, earliest stage, most tokens,
/// lowest id, longest prompt, slowest first token (none yet last); ties by id.
public enum RequestSort: String, Sendable, Equatable, Codable, CaseIterable {
    case age, stage, tokens, id, prompt, ttft
}

/// Which window of the in-flight table to return.
public struct RequestQuery: Sendable, Equatable, Codable {
    public var sort: RequestSort
    /// Reverse the natural order (the console flips the sort column's arrow).
    public var reversed: Bool
    /// Case-insensitive substring of `#id`, the stage or the place ("decode-0/dp12"); empty = all.
    public var filter: String
    /// First row (0-based) of the sorted, filtered list, and how many rows from there.
    public var offset: Int
    public var limit: Int

    /// Bounds every query is checked against (a face's input, an HTTP query string).
    public static let limitRange = 1...1_000
    public static let offsetRange = 0...10_000_000
    public static let maxFilterBytes = 200

    public init(sort: RequestSort = .age, reversed: Bool = false, filter: String = "", offset: Int = 0, limit: Int = 100) {
        self.sort = sort
        self.reversed = reversed
        self.filter = filter
        self.offset = offset
        self.limit = limit
    }

    /// Why the query is out of range (one line), or nil when it may be answered.
    public var problem: String? {
        if !Self.limitRange.contains(limit) {
            return "limit must be within \(Self.limitRange.lowerBound)…\(Self.limitRange.upperBound), got \(limit)"
        }
        if !Self.offsetRange.contains(offset) {
            return "offset must be within \(Self.offsetRange.lowerBound)…\(Self.offsetRange.upperBound), got \(offset)"
        }
        if filter.utf8.count > Self.maxFilterBytes {
            return "filter must be within 0…\(Self.maxFilterBytes) bytes, got \(filter.utf8.count)"
        }
        return nil
    }
}

/// One window of the in-flight table.
public struct RequestPage: Sendable, Equatable, Codable {
    /// The query it answers (the offset clamped to the list).
    public var query: RequestQuery
    /// Simulated time of the engine when it answered.
    public var simTime: Double
    /// Requests in flight in all, and how many of them match the filter.
    public var inFlight: Int
    public var matching: Int
    /// Rows `query.offset ..< query.offset + rows.count` of the sorted, filtered list.
    public var rows: [RequestStatus]

    public init(query: RequestQuery, simTime: Double, inFlight: Int, matching: Int, rows: [RequestStatus]) {
        self.query = query
        self.simTime = simTime
        self.inFlight = inFlight
        self.matching = matching
        self.rows = rows
    }
}

/// One request's life as the engine recorded it (simulated seconds). Times of stages it has not
/// reached are nil. After a fault's re-prefill the prefill, transfer and decode times are those
/// of the current attempt; `reprefills` and `requeuedAt` say that it started over.
public struct RequestDetail: Sendable, Equatable, Codable {
    public var id: Int
    public var stage: RequestStage
    public var arrivedAt: Double
    public var promptTokens: Int
    /// Prompt tokens whose KV came from the prefix cache (local or pooled).
    public var cachedPromptTokens: Int
    /// Output tokens the request will produce, and those produced so far.
    public var outputTokens: Int
    public var generatedTokens: Int
    /// Prefill TE and DP group ("prefill-2", 5).
    public var prefillInstance: String?
    public var prefillGroup: Int?
    public var prefillStartedAt: Double?
    public var prefillEndedAt: Double?
    /// KV transfer to decode: the decode TE it was registered with, and when the bytes moved.
    public var transferStartedAt: Double?
    public var transferEndedAt: Double?
    public var decodeInstance: String?
    public var decodeGroup: Int?
    /// Joined the decode batch (at a step boundary), first output token.
    public var decodeJoinedAt: Double?
    public var firstTokenAt: Double?
    public var finishedAt: Double?
    /// Why it failed, was rejected or cancelled; nil otherwise.
    public var reason: String?
    /// Times a fault took it off its hardware and it was prefilled again; the last time it
    /// went back to the queue.
    public var reprefills: Int
    public var requeuedAt: Double?
    /// Simulated time of the engine when it answered.
    public var simTime: Double

    public init(id: Int, stage: RequestStage, arrivedAt: Double, promptTokens: Int, cachedPromptTokens: Int = 0,
                outputTokens: Int, generatedTokens: Int = 0, simTime: Double) {
        self.id = id
        self.stage = stage
        self.arrivedAt = arrivedAt
        self.promptTokens = promptTokens
        self.cachedPromptTokens = cachedPromptTokens
        self.outputTokens = outputTokens
        self.generatedTokens = generatedTokens
        self.reprefills = 0
        self.simTime = simTime
    }
}

/// Why a request query got no answer: out of range, unknown request, engine not running.
public struct RequestQueryRefusal: Error, Sendable, Equatable {
    public var message: String
    /// The request is unknown (HTTP 404), rather than the query being refused.
    public var notFound: Bool
    public init(_ message: String, notFound: Bool = false) {
        self.message = message
        self.notFound = notFound
    }
}
