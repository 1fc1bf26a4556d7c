import Testing

@testable import EngineRuntime

/// The one SSE reader: the event-stream rules the remote link and the server tests rely on,
/// whatever size the network pieces arrive in.
@Suite(.timeLimit(.minutes(10)))
struct ServerSentEventReaderTests {
    typealias Event = ServerSentEventReader.Event

    /// Feeds `text` in pieces of `size` bytes and returns every event, in order.
    func read(_ text: String, pieces size: Int) -> [Event] {
        var reader = ServerSentEventReader()
        let bytes = Array(text.utf8)
        var events: [Event] = []
        for start in stride(from: 0, to: bytes.count, by: size) {
            events += reader.feed(bytes[start..<min(start + size, bytes.count)])
        }
        return events
    }

    @Test(arguments: [1, 2, 3, 7, 1000])
    func eventsSurviveAnySplit(size: Int) {
        let text = "event: snapshot\ndata: {\"a\":1}\n\n"
            + ": a comment\ndata: first\ndata:second\n\n"  // no space after the colon is fine too
            + "event: event\r\ndata: crlf\r\n\r\n"
            + "data: cr\r\r"
            + "event: lonely\n\n"  // no data: not an event
            + "id: 7\nretry: 10\ndata: after id\n\n"
            + "data: cut off"  // no blank line yet: not an event
        #expect(read(text, pieces: size) == [
            Event(name: "snapshot", data: #"{"a":1}"#),
            Event(name: nil, data: "first\nsecond"),
            Event(name: "event", data: "crlf"),
            Event(name: nil, data: "cr"),
            Event(name: nil, data: "after id"),
        ])
    }

    @Test func onlyOneLeadingSpaceIsDropped() {
        #expect(read("data:  two spaces \ndata\n\n", pieces: 100) == [Event(name: nil, data: " two spaces \n")])
    }

    @Test func theNameDoesNotLeakIntoTheNextEvent() {
        #expect(read("event: snapshot\ndata: 1\n\ndata: [DONE]\n\n", pieces: 5)
            == [Event(name: "snapshot", data: "1"), Event(name: nil, data: "[DONE]")])
    }

    @Test func aMultiByteCharacterSplitAcrossPiecesIsKept() {
        #expect(read("data: ünïcödé 🚀\n\n", pieces: 1) == [Event(name: nil, data: "ünïcödé 🚀")])
    }
}
