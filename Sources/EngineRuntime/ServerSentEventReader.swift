/// The project's one reader of `text/event-stream` bodies (the WHATWG "event stream interpretation"),
/// fed the bytes as they arrive: the remote console link reads the admin stream with it, and the
/// server's tests read both the admin and the OpenAI completion streams with it.
///
/// Lines end with LF, CRLF or CR; `event:` names the event, each `data:` line adds a line to its
/// data, one space after the colon is dropped, a line starting with `:` is a comment, and a blank
/// line dispatches the event (one with no `data:` line is dropped, as the standard says). `id:`
/// and `retry:` are read and ignored: the link reconnects on its own schedule and the admin stream
/// restarts from the current snapshot, so there is nothing to resume.
///
/// Why not the mirrored SSE package, mattt/EventSource 1.1.1: it does not build on Linux
/// (Swift 6.3.1: `EventSource.swift:398: error: value of type 'URLSession' has no member
/// 'bytes'`; FoundationNetworking has no async byte streams), and its `Parser` is an actor fed one
/// byte per `await`, where the link gets whole buffers from its NIO channel.
///
/// ```swift
/// var reader = ServerSentEventReader()
/// reader.feed(Array("event: snapshot\ndata: {}\n".utf8))  // [] (not finished yet)
/// reader.feed(Array("\n".utf8))                             // [Event(name: "snapshot", data: "{}")]
/// ```
public struct ServerSentEventReader: Sendable {
    public struct Event: Equatable, Sendable {
        /// The `event:` field; nil when the stream names none (the standard's "message").
        public var name: String?
        public var data: String

        public init(name: String?, data: String) {
            self.name = name
            self.data = data
        }
    }

    /// Bytes after the last complete line.
    private var pending: [UInt8] = []
    /// How much of `pending` is known to hold no line end: a line that arrives in many pieces is
    /// scanned once, not once per piece.
    private var scanned = 0
    private var name: String?
    private var dataLines: [String] = []
    /// Bytes of the event being read (its data lines and the unfinished line).
    private var eventBytes = 0
    /// The largest event the reader holds; a bigger one is dropped and ``overflowed`` set.
    public let largestEvent: Int
    /// An event grew past ``largestEvent``: its bytes were dropped, and a reader of a stream that
    /// never ends should hang up (a server sending that much without a blank line is broken or
    /// hostile; holding it would grow without bound).
    public private(set) var overflowed = false

    /// `largestEvent` bounds one event's bytes (default 64 MiB, the link's largest HTTP answer;
    /// a superpod snapshot is well under a megabyte).
    public init(largestEvent: Int = 64 << 20) {
        self.largestEvent = max(1, largestEvent)
    }

    /// Appends `bytes` and returns the events they complete, in stream order.
    @discardableResult
    public mutating func feed(_ bytes: some Sequence<UInt8>) -> [Event] {
        guard !overflowed else { return [] }
        pending.append(contentsOf: bytes)
        var events: [Event] = []
        var lineStart = 0
        while let end = pending[max(lineStart, scanned)...].firstIndex(where: { $0 == 0x0A || $0 == 0x0D }) {
            var next = end + 1
            if pending[end] == 0x0D {
                // A CR may be the first half of a CRLF that has not arrived yet: wait for it.
                guard next < pending.count else { scanned = end; break }
                if pending[next] == 0x0A { next += 1 }
            }
            if let event = line(pending[lineStart..<end]) { events.append(event) }
            lineStart = next
            scanned = next
            if overflowed { return events }
        }
        if scanned < pending.count, pending.last != 0x0D { scanned = pending.count }
        pending.removeFirst(lineStart)
        scanned -= lineStart
        if eventBytes + pending.count > largestEvent { overflow() }
        return events
    }

    /// Drops the event being read and stops reading.
    private mutating func overflow() {
        overflowed = true
        pending = []
        scanned = 0
        name = nil
        dataLines = []
        eventBytes = 0
    }

    private mutating func line(_ bytes: ArraySlice<UInt8>) -> Event? {
        guard let first = bytes.first else {
            defer { name = nil; dataLines = []; eventBytes = 0 }
            guard !dataLines.isEmpty else { return nil }
            return Event(name: name, data: dataLines.joined(separator: "\n"))
        }
        if first == UInt8(ascii: ":") { return nil }  // comments (keep-alives) are not part of an event
        eventBytes += bytes.count + 1
        guard eventBytes <= largestEvent else {
            overflow()
            return nil
        }
        let colon = bytes.firstIndex(of: UInt8(ascii: ":")) ?? bytes.endIndex
        var valueStart = colon < bytes.endIndex ? colon + 1 : colon
        if valueStart < bytes.endIndex, bytes[valueStart] == UInt8(ascii: " ") { valueStart += 1 }
        let value = String(decoding: bytes[valueStart...], as: UTF8.self)
        switch String(decoding: bytes[..<colon], as: UTF8.self) {
        case "event": name = value
        case "data": dataLines.append(value)
        default: break  // id, retry, and fields the standard says to ignore
        }
        return nil
    }
}
