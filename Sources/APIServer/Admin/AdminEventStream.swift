import Hummingbird
import ServingEngine

/// `GET /admin/events`: what a remote console consumes. Server-sent events, every `interval`:
/// - `event: snapshot` with the newest snapshot as JSON (``AdminWire``);
/// - one `event: event` per engine event not sent before (the whole ring on connect).
///
/// The stream runs until the client leaves (a write fails) or the server stops (cancellation).
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

    func response(for request: Request) -> Response {
        let body = ResponseBody { writer in
            var follower = EventRingFollower()
            do {
                while !Task.isCancelled {
                    let snapshot = link.latestSnapshot()
                    var frame = ServerSentEvent.named("snapshot", AdminWire.string(snapshot))
                    for event in follower.newEvents(in: snapshot.events) {
                        frame += ServerSentEvent.named("event", AdminWire.string(event))
                    }
                    try await writer.write(ByteBuffer(string: frame))
                    try await Task.sleep(for: interval)
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
