import Hummingbird
import ServiceLifecycle
import ServingEngine
import Synchronization

/// `GET /admin/events`: what a remote console consumes. Server-sent events, every `interval`:
/// - `event: snapshot` with the newest snapshot as JSON (``AdminWire``);
/// - one `event: event` per engine event not sent before (the whole ring on connect).
///
/// The stream runs until the client leaves (a write fails) or the server stops: it ends cleanly
/// as soon as a graceful shutdown starts (looked at every ``shutdownCheck`` while it waits).
/// At most ``maxConcurrentStreams`` run at once (``EventStreamSlots``); past that a stream is
/// refused with 503 before any frame is written.
///
/// ```
/// event: snapshot
/// data: {"simTime":12.5,"requests":{…},…}
///
/// event: event
/// data: {"time":12.4,"kind":"drain","severity":"info","message":"drain node 5"}
/// ```
struct AdminEventStream: Sendable {
    let link: any EngineLink
    let interval: Duration
    /// Shared by every stream of the server, so a snapshot is encoded once, not once per stream.
    var snapshotJSON = SnapshotJSONCache()

    /// Streams one server runs at once. Each holds a connection and a task that writes every
    /// interval; uncapped, a script that opened streams and never read them held hundreds. A
    /// remote console needs one, so 64 leaves room for many consoles and scripts.
    static let maxConcurrentStreams = 64

    /// How often a waiting stream looks for the server stopping.
    static let shutdownCheck = Duration.milliseconds(50)

    /// The 503 past ``maxConcurrentStreams``.
    static let tooManyStreams = APIError(
        status: .serviceUnavailable,
        message: "too many /admin/events streams open (at most \(maxConcurrentStreams) at once); close one and retry",
        type: "service_unavailable_error", param: nil, code: "too_many_streams")

    /// A stream holding `slot`, released when the stream's body is done with (written to the end,
    /// failed, or never written because the client left first).
    func response(for request: Request, holding slot: EventStreamSlots.Slot) -> Response {
        let body = ResponseBody { writer in
            withExtendedLifetime(slot) {}
            var follower = EventRingFollower()
            do {
                frames: while !Task.isCancelled && !Task.isShuttingDownGracefully {
                    let snapshot = link.latestSnapshot()
                    var frame = ServerSentEvent.named("snapshot", snapshotJSON.json(for: snapshot))
                    for event in follower.newEvents(in: snapshot.events) {
                        frame += ServerSentEvent.named("event", AdminWire.string(event))
                    }
                    try await writer.write(ByteBuffer(string: frame))
                    var waited = Duration.zero
                    while waited < interval {
                        if Task.isShuttingDownGracefully { break frames }
                        let step = min(Self.shutdownCheck, interval - waited)
                        try await Task.sleep(for: step)
                        waited += step
                    }
                }
                try await writer.finish(nil)
            } catch {
                // Client gone or server stopping: there is nobody left to finish the body for.
            }
        }
        return Response(
            status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"], body: body)
    }
}

/// The `/admin/events` streams open on one server, counted against
/// ``AdminEventStream/maxConcurrentStreams``.
final class EventStreamSlots: Sendable {
    private let open = Atomic<Int>(0)
    let limit: Int

    init(limit: Int = AdminEventStream.maxConcurrentStreams) { self.limit = limit }

    /// Streams open now (tests).
    var count: Int { open.load(ordering: .relaxed) }

    /// A place for one more stream, or nil when `limit` are open.
    func take() -> Slot? {
        while true {
            let now = open.load(ordering: .relaxed)
            guard now < limit else { return nil }
            if open.compareExchange(expected: now, desired: now + 1, ordering: .acquiringAndReleasing).exchanged {
                return Slot(owner: self)
            }
        }
    }

    /// One stream's place; given back when the last reference to it goes (its response body
    /// closure, whichever way the stream ended), so no path can leak it.
    final class Slot: Sendable {
        private let owner: EventStreamSlots
        fileprivate init(owner: EventStreamSlots) { self.owner = owner }
        deinit { owner.open.subtract(1, ordering: .acquiringAndReleasing) }
    }
}

/// The newest snapshot's JSON, encoded once for all the `/admin/events` streams that send it.
///
/// Each stream encoded the snapshot itself, every interval: the superpod's is about 600 KB, a
/// tenth of a second of a core, so a few remote consoles (or a script that opened streams and
/// never read them) took the server's cores from the engine, and `/ready` stopped answering
/// within 30 s with 300 streams open. Streams poll the same published snapshot, so one encoding
/// serves them all; a snapshot that differs (or holds a NaN, which compares unequal) is encoded
/// afresh. Comparing is cheap: copies of one published snapshot share their arrays' storage.
final class SnapshotJSONCache: Sendable {
    private let last = Mutex<(snapshot: Snapshot, json: String)?>(nil)
    /// Encodings done so far (tests: one per distinct snapshot, whatever the number of streams).
    let encodings = Atomic<Int>(0)

    func json(for snapshot: Snapshot) -> String {
        if let hit = last.withLock({ cached in cached.flatMap { $0.snapshot == snapshot ? $0.json : nil } }) {
            return hit
        }
        let json = AdminWire.string(snapshot)
        encodings.add(1, ordering: .relaxed)
        last.withLock { $0 = (snapshot, json) }
        return json
    }
}

/// Follows the snapshot's bounded event ring and returns each event once.
///
/// Events carry no sequence number, and the ring drops its oldest entries as new ones arrive, so the
/// new events are what follows the longest overlap between the end of the previously seen ring and
/// the start of the current one. If nothing overlaps (more events arrived than the ring holds), the
/// whole ring is new.
///
/// ```swift
/// var follower = EventRingFollower()
/// follower.newEvents(in: [a, b])      // [a, b]
/// follower.newEvents(in: [b, c, d])   // [c, d]
/// ```
struct EventRingFollower: Sendable {
    private var previous: [EngineEvent] = []

    mutating func newEvents(in ring: [EngineEvent]) -> ArraySlice<EngineEvent> {
        defer { previous = ring }
        if ring == previous { return [] }
        var overlap = min(previous.count, ring.count)
        while overlap > 0 && previous.suffix(overlap).elementsEqual(ring.prefix(overlap)) == false {
            overlap -= 1
        }
        return ring.dropFirst(overlap)
    }
}
