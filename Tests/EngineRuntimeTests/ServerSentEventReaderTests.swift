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

    /// A server that never ends its event cannot grow the reader without bound: past the limit the
    /// event is dropped, `overflowed` says so, and nothing more is read.
    @Test func anEventPastTheLimitIsDroppedAndReported() {
        var longLine = ServerSentEventReader(largestEvent: 100)
        #expect(longLine.feed(Array("data: ".utf8) + Array(repeating: UInt8(ascii: "x"), count: 60)).isEmpty)
        #expect(!longLine.overflowed)
        #expect(longLine.feed(Array(repeating: UInt8(ascii: "x"), count: 60)).isEmpty)  // no line end yet
        #expect(longLine.overflowed)
        #expect(longLine.feed(Array("\n\ndata: later\n\n".utf8)).isEmpty)

        var manyLines = ServerSentEventReader(largestEvent: 100)
        let line = Array("data: 0123456789\n".utf8)
        var events: [Event] = []
        for _ in 0..<10 { events += manyLines.feed(line) }
        #expect(events.isEmpty)
        #expect(manyLines.overflowed)
    }

    /// Events under the limit pass whole, however many arrive; comments (keep-alives) and the
    /// blank line that ends an event do not count towards the next one.
    @Test func eventsUnderTheLimitPassAndCommentsDoNotCount() {
        var reader = ServerSentEventReader(largestEvent: 40)
        var events: [Event] = []
        for i in 0..<100 {
            events += reader.feed(Array(": keep-alive\n".utf8))
            events += reader.feed(Array("data: event number \(i)\n\n".utf8))
        }
        #expect(!reader.overflowed)
        #expect(events.count == 100)
        #expect(events.last == Event(name: nil, data: "event number 99"))
    }

    /// The default limit holds what the server sends: a 1 MB event (larger than a superpod
    /// snapshot) read in network-sized pieces.
    @Test func aLargeEventInManyPiecesIsReadWhole() {
        let payload = String(repeating: "y", count: 1 << 20)
        #expect(read("event: snapshot\ndata: \(payload)\n\n", pieces: 65_536) == [Event(name: "snapshot", data: payload)])
    }
}
