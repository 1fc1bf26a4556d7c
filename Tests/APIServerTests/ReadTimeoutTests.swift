import Foundation
import Synchronization
import Testing
import XDSTestSupport

@testable import APIServer

/// A client that sends half a request, stalls its body or keeps an idle connection is not held for
/// ever (nginx's client_header_timeout, client_body_timeout, keepalive_timeout), and a connection
/// streaming an answer is never cut by those timeouts, however quiet the stream.
/// On its own thread: the tests time the server's cut, and on the cooperative pool their own
/// reading waited behind the suite's long synchronous tests (CI: a 1 s header timeout measured
/// as 147 s, the 408 long since sent).
@Suite(.serialized, .timeLimit(.minutes(10)), .ownThread("ReadTimeoutTests"))
struct ReadTimeoutTests {
    /// Short, so the suite stays fast; each test's waits are a few of these.
    static let timeouts = APIServer.ReadTimeouts(header: .seconds(1), body: .seconds(1), keepAlive: .milliseconds(1500))
    /// Generous upper bound for "closed in time": parallel suites share two cores.
    static let late = 10.0

    static func seconds(since start: ContinuousClock.Instant) -> Double {
        let (whole, attoseconds) = (ContinuousClock.now - start).components
        return Double(whole) + Double(attoseconds) / 1e18
    }

    static let json = #"{"prompt": "hello there", "max_tokens": 2}"#

    static func postHead(_ path: String = "/v1/completions", contentLength: Int) -> String {
        "POST \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: \(contentLength)\r\n\r\n"
    }

    /// The 408's body is the usual OpenAI error shape.
    static func expect408(_ text: String, naming what: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(text.hasPrefix("HTTP/1.1 408"), "\(text)", sourceLocation: sourceLocation)
        #expect(text.lowercased().contains("connection: close"), "\(text)", sourceLocation: sourceLocation)
        #expect(text.contains(#""code":"request_timeout""#) && text.contains(what), "\(text)", sourceLocation: sourceLocation)
    }

    /// Runs `body` with a live server on the short timeouts and a connection to it that has just
    /// sent `raw` (nothing if empty), given the moment it was sent.
    static func sending(
        _ raw: String, backend: FakeCompletionBackend = FakeCompletionBackend(),
        _ body: (LiveServer, RawConnection, ContinuousClock.Instant) async throws -> Void
    ) async throws {
        try await LiveServer.with(backend: backend, readTimeouts: timeouts) { server in
            let connection = try RawConnection(port: server.port, readTimeout: 15)
            defer { connection.close() }
            if !raw.isEmpty { connection.write(raw: raw) }
            try await body(server, connection, ContinuousClock.now)
        }
    }

    /// Half a head, or a body that stops: 408 once the header (or body) timeout has passed, then
    /// the connection closes, and the backend never sees the request.
    @Test(arguments: [
        ("POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Le", "request head did not arrive within 1 s"),
        (postHead(contentLength: 1000) + #"{"prompt": "#, "request body made no progress for 1 s"),
    ])
    func anUnfinishedRequestIs408AndClosed(sent: String, naming: String) async throws {
        try await Self.sending(sent) { server, connection, start in
            let (text, closed) = await connection.readUntilClosed()
            let waited = Self.seconds(since: start)
            #expect(closed)
            Self.expect408(text, naming: naming)
            #expect(waited >= 0.9 && waited < Self.late, "\(waited) s")
            #expect(server.backend.submitted.isEmpty)
            // Answered below the router, and still counted on /metrics, by the part that was late.
            let metrics = PrometheusText(try await server.get("/metrics").text)
            let part = naming.contains("head") ? "head" : "body"
            #expect(metrics.sum("xds_http_read_timeouts_total", containing: [#"part="\#(part)""#]) == 1)
            #expect(metrics.sum("xds_http_read_timeouts_total", containing: []) == 1)
        }
    }

    /// The 408 for a stalled body echoes the request's `X-Request-Id`, as every other answer does
    /// (it went out below the router, which adds it, and came back without it).
    @Test func aBodyTimeoutEchoesTheRequestID() async throws {
        for (id, echoed) in [("stalled-7 x", true)] {
            let head = "POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                + "X-Request-Id: \(id)\r\nContent-Length: 1000\r\n\r\n{\"prompt\": "
            try await Self.sending(head) { _, connection, _ in
                let (text, closed) = await connection.readUntilClosed()
                #expect(closed)
                Self.expect408(text, naming: "request body made no progress for 1 s")
                #expect(text.contains("\r\nX-Request-Id: \(id)\r\n") == echoed, "\(text)")
            }
        }
    }

    /// Slowloris: a head that keeps coming a line at a time is still cut at the header timeout,
    /// which counts from its first byte, not from its last.
    @Test func aHeadSentALineAtATimeIsCutAtTheHeaderTimeout() async throws {
        try await Self.sending("GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n") { _, connection, start in
            let linesSent = Mutex(0)
            let drip = Task {
                for line in 0..<40 {
                    try await Task.sleep(for: .milliseconds(200))
                    connection.write(raw: "X-Line-\(line): 1\r\n")
                    linesSent.withLock { $0 += 1 }
                }
            }
            defer { drip.cancel() }
            let (text, closed) = await connection.readUntilClosed()
            let waited = Self.seconds(since: start)
            let sentBeforeCut = linesSent.withLock { $0 }
            #expect(closed)
            Self.expect408(text, naming: "request head did not arrive within 1 s")
            // Cut before the drip (40 lines, 200 ms apart) ended: a timer that restarted at each
            // line would have waited for all of them. Counted in lines, not seconds, so a loaded
            // machine that slows the drip and the server alike does not fail it.
            #expect(waited >= 0.9, "\(waited) s")
            #expect(sentBeforeCut < 40, "the head was cut only after all \(sentBeforeCut) lines, \(waited) s")
        }
    }

    /// The body timeout is the time between reads: a body that keeps coming, slower in total
    /// than the timeout, is served.
    @Test func aSlowBodyThatKeepsComingIsServed() async throws {
        let head = Self.postHead(contentLength: Self.json.utf8.count)
        try await Self.sending(head, backend: FakeCompletionBackend(outputTokens: 2)) { _, connection, start in
            let body = Array(Self.json.utf8)
            let pieces = stride(from: 0, to: body.count, by: 6).map {
                String(decoding: body[$0..<min($0 + 6, body.count)], as: UTF8.self)
            }
            // Dripped from a thread of its own: other suites can hold the cooperative pool for
            // seconds, and a piece held back past the 1 s body timeout made a stalled body this
            // test does not mean to send (a loaded full run got the 408 once).
            await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
                Thread {
                    for piece in pieces {
                        Thread.sleep(forTimeInterval: 0.3)
                        connection.write(raw: piece)
                    }
                    done.resume()
                }.start()
            }
            #expect(Self.seconds(since: start) > 2, "the body took longer than the timeouts in total")
            let answer = await connection.read(until: #""finish_reason""#)
            #expect(answer.hasPrefix("HTTP/1.1 200"), "\(answer)")
        }
    }

    @Test func anIdleKeptAliveConnectionIsClosedAfterTheKeepAliveTimeout() async throws {
        try await Self.sending("GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n") { _, connection, start in
            let (text, closed) = await connection.readUntilClosed()
            let waited = Self.seconds(since: start)
            #expect(closed)
            // The answer, then nothing: no 408 to a client that asked for nothing.
            #expect(text.hasPrefix("HTTP/1.1 200") && !text.contains("408"), "\(text)")
            #expect(waited >= 1.4 && waited < Self.late, "\(waited) s")
        }
    }

    @Test func aConnectionThatSendsNothingIsClosedAfterTheHeaderTimeout() async throws {
        try await Self.sending("") { _, connection, start in
            let (text, closed) = await connection.readUntilClosed()
            let waited = Self.seconds(since: start)
            #expect(closed && text.isEmpty, "\(text)")
            #expect(waited >= 0.9 && waited < Self.late, "\(waited) s")
        }
    }

    /// Tokens 2 s apart, longer than every timeout: the stream is whole and the connection then
    /// serves another request.
    @Test func aQuietStreamIsNotCut() async throws {
        let backend = FakeCompletionBackend(outputTokens: 3, tokenInterval: .seconds(2))
        let streamed = #"{"prompt": "hi", "max_tokens": 3, "stream": true}"#
        try await Self.sending(Self.postHead(contentLength: streamed.utf8.count) + streamed, backend: backend) {
            _, connection, _ in
            let stream = await connection.read(until: "data: [DONE]")
            #expect(stream.hasPrefix("HTTP/1.1 200") && stream.contains("data: [DONE]"), "\(stream)")
            #expect(stream.components(separatedBy: #""text""#).count - 1 >= 3, "\(stream)")
            connection.write(raw: "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            // What follows the stream's last chunk, then the answer.
            let next = await connection.read(until: "HTTP/1.1 200")
            #expect(next.contains("HTTP/1.1 200"), "the connection still serves: \(next)")
        }
    }

    /// A request pipelined behind a quiet stream, whose body stalls: the stream is not cut; the
    /// stalled request gets its 408 once the stream has ended and its body timeout passed.
    @Test func aStalledPipelinedBodyDoesNotCutTheStreamBeforeIt() async throws {
        let backend = FakeCompletionBackend(outputTokens: 3, tokenInterval: .seconds(2))
        let streamed = #"{"prompt": "hi", "max_tokens": 3, "stream": true}"#
        let pipelined = Self.postHead(contentLength: streamed.utf8.count) + streamed
            + Self.postHead(contentLength: 1000) + #"{"prompt": "#
        try await Self.sending(pipelined, backend: backend) { _, connection, _ in
            let (text, closed) = await connection.readUntilClosed()
            #expect(closed)
            let done = try #require(text.range(of: "data: [DONE]"), "the stream was cut: \(text)")
            #expect(text.components(separatedBy: #""text""#).count - 1 >= 3, "\(text)")
            let after = text[done.upperBound...]
            let refusal = try #require(after.range(of: "HTTP/1.1 "), "no answer after the stream: \(text)")
            Self.expect408(String(after[refusal.lowerBound...]), naming: "request body made no progress for 1 s")
        }
    }
}
