import Foundation
import Testing

@testable import APIServer

/// Request heads that parse but that HTTP/1.1 says the server must refuse (RFC 9112): CONNECT
/// (no route takes it, and NIO's codec turns the connection into a tunnel after it), a 1.1
/// request without exactly one `Host`, a transfer coding other than chunked. Each gets one
/// answer with `Connection: close` and a clean close (FIN), and nothing after it on the
/// connection is answered.
@Suite(.serialized, .timeLimit(.minutes(10)), .ownThread("RequestHeadCheckTests"))
struct RequestHeadCheckTests {
    /// Sends `request` and reads to the end (a hang shows as `.quiet` after `readTimeout`).
    private func exchange(_ request: String, port: Int) async throws -> (text: String, ending: RawConnection.Ending) {
        let connection = try RawConnection(port: port, readTimeout: 8)  // a busy machine is slow
        defer { connection.close() }
        connection.write(raw: request)
        return await connection.readToEnd()
    }

    /// Every HTTP status line in `text` (at its start or a line's): how many answers the connection carried.
    private func answers(_ text: String) -> Int {
        (text.hasPrefix("HTTP/1.") ? 1 : 0) + text.components(separatedBy: "\nHTTP/1.").count - 1
    }

    @Test func connectIsRefused405WithABodyAndTheConnectionCloses() async throws {
        try await LiveServer.with { server in
            let (text, ending) = try await exchange(
                "CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: 127.0.0.1:22\r\n\r\n"
                    + "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", port: server.port)
            #expect(text.hasPrefix("HTTP/1.1 405"), "\(text.prefix(200))")
            #expect(text.contains("Connection: close"), "\(text.prefix(300))")
            #expect(text.contains(#""code":"method_not_allowed""#), "\(text.prefix(400))")
            #expect(text.contains("CONNECT"), "\(text.prefix(400))")
            // The body is framed: its length is announced and every byte of it arrived.
            let parts = text.components(separatedBy: "\r\n\r\n")
            let length = parts.first?.split(separator: "\r\n").first { $0.lowercased().hasPrefix("content-length:") }
                .flatMap { Int($0.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) }
            #expect(length != nil && length == parts.dropFirst().joined(separator: "\r\n\r\n").utf8.count, "\(text)")
            #expect(answers(text) == 1, "the pipelined request after CONNECT was answered: \(text)")
            #expect(ending == .closed, "the 405 ended in \(ending), not a clean close")
        }
    }

    /// A 1.1 request with `Connection: close` is answered with `Connection: close` (RFC 9112 §9.6:
    /// the server closes after that answer, and says so in it). Without it the answer looked
    /// reusable: Python's http.client decides from the answer alone (`will_close` was False), kept
    /// the closed socket, and its next request on the same HTTPConnection failed with
    /// RemoteDisconnected instead of reconnecting.
    @Test func anHTTP11RequestWithConnectionCloseIsAnsweredWithConnectionClose() async throws {
        try await LiveServer.with { server in
            for (path, header) in [("/health", "Connection: close"), ("/v1/models", "Connection: Close"),
                                   ("/nowhere", "Connection: close")] {
                let (text, ending) = try await exchange(
                    "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\n\(header)\r\n\r\n", port: server.port)
                let head = text.components(separatedBy: "\r\n\r\n").first ?? ""
                #expect(text.hasPrefix("HTTP/1.1 "), "\(path): \(text.prefix(200))")
                #expect(head.lowercased().contains("\r\nconnection: close"), "\(path), \(header): \(head)")
                #expect(ending == .closed, "\(path): the answer ended in \(ending), not a clean close")
            }
            // A request that keeps the connection is not told to close.
            let connection = try RawConnection(port: server.port, readTimeout: 8)
            defer { connection.close() }
            connection.write(raw: "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            let text = await connection.read(until: "}")
            #expect(text.hasPrefix("HTTP/1.1 200"), "\(text.prefix(200))")
            #expect(!text.lowercased().contains("connection: close"), "\(text.prefix(300))")
        }
    }

    @Test func anHTTP11RequestWithTwoHostsOrNoneIs400() async throws {
        try await LiveServer.with { server in
            for (headers, count) in [("Host: 127.0.0.1\r\nHost: example.com\r\n", "2"), ("", "none")] {
                let (text, ending) = try await exchange(
                    "GET /health HTTP/1.1\r\n\(headers)\r\nGET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
                    port: server.port)
                #expect(text.hasPrefix("HTTP/1.1 400"), "\(count): \(text.prefix(200))")
                #expect(text.contains("Connection: close"), "\(count): \(text.prefix(300))")
                #expect(text.contains(#""code":"malformed_request""#), "\(count): \(text.prefix(400))")
                #expect(text.contains("exactly one Host header; it carried \(count)"), "\(count): \(text.prefix(400))")
                #expect(answers(text) == 1, "\(count): the request after it was answered: \(text)")
                #expect(ending == .closed, "\(count): the 400 ended in \(ending), not a clean close")
            }
            // HTTP/1.0 has no Host requirement.
            let (text, _) = try await exchange("GET /health HTTP/1.0\r\n\r\n", port: server.port)
            #expect(text.hasPrefix("HTTP/1.0 200"), "\(text.prefix(200))")
        }
    }

    @Test func aTransferCodingOtherThanChunkedIs501() async throws {
        try await LiveServer.with { server in
            let json = #"{"model":"deepseek-r1","prompt":"hi","max_tokens":1}"#
            let chunk = String(json.utf8.count, radix: 16) + "\r\n" + json + "\r\n0\r\n\r\n"
            let (text, ending) = try await exchange(
                "POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                    + "Transfer-Encoding: gzip, chunked\r\n\r\n" + chunk, port: server.port)
            #expect(text.hasPrefix("HTTP/1.1 501"), "\(text.prefix(200))")
            #expect(text.contains("Connection: close"), "\(text.prefix(300))")
            #expect(text.contains("Transfer-Encoding 'gzip' is not supported"), "\(text.prefix(400))")
            #expect(text.contains(#""code":"unsupported_transfer_coding""#), "\(text.prefix(400))")
            #expect(ending == .closed, "the 501 ended in \(ending), not a clean close")
            #expect(server.backend.submitted.isEmpty)
        }
    }

    /// A request asking to upgrade (`curl --http2` on an http URL: `Upgrade: h2c`) is answered
    /// as HTTP/1.1, but NIO's decoder stops parsing after it: the answer says `Connection: close`
    /// and the connection closes, instead of a pipelined request behind it hanging unanswered.
    @Test func anUpgradeRequestIsAnsweredAndTheConnectionCloses() async throws {
        try await LiveServer.with { server in
            let (text, ending) = try await exchange(
                "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade, HTTP2-Settings\r\n"
                    + "Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n"
                    + "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", port: server.port)
            #expect(text.hasPrefix("HTTP/1.1 200"), "\(text.prefix(200))")
            #expect(text.lowercased().contains("connection: close"), "\(text.prefix(300))")
            #expect(ending == .closed, "the answer ended in \(ending), not a clean close")
        }
    }

    /// An expectation other than `100-continue` (`Expect: foo`) is one the server cannot meet:
    /// 417 Expectation Failed (RFC 9110 §10.1.1), naming it, before any body is asked for, and the
    /// connection closes (the client may or may not send the body it announced). It was served
    /// as if the header were absent. `100-continue`, in any case and however often it is listed,
    /// is still answered with `100 Continue`.
    @Test func anUnknownExpectationIs417() async throws {
        try await LiveServer.with { server in
            let json = #"{"model":"deepseek-r1","prompt":"hi","max_tokens":1}"#
            for expect in ["foo", "100-continue, foo", "100-continue;x=1"] {
                let (text, ending) = try await exchange(
                    "POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                        + "Content-Length: \(json.utf8.count)\r\nExpect: \(expect)\r\n\r\n" + json
                        + "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", port: server.port)
                #expect(text.hasPrefix("HTTP/1.1 417 Expectation Failed"), "\(expect): \(text.prefix(200))")
                #expect(text.contains("Connection: close"), "\(expect): \(text.prefix(300))")
                #expect(text.contains(#""code":"expectation_failed""#), "\(expect): \(text.prefix(400))")
                #expect(text.contains("only 100-continue"), "\(expect): \(text.prefix(400))")
                #expect(answers(text) == 1, "\(expect): the request after it was answered: \(text)")
                #expect(ending == .closed, "\(expect): the 417 ended in \(ending), not a clean close")
            }
            #expect(server.backend.submitted.isEmpty)
            for expect in ["100-Continue", "100-continue, 100-continue"] {
                let connection = try RawConnection(port: server.port, readTimeout: 5)
                defer { connection.close() }
                connection.write(raw:
                    "POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                        + "Content-Length: \(json.utf8.count)\r\nExpect: \(expect)\r\n\r\n")
                let interim = await connection.read(until: "\r\n\r\n")
                #expect(interim.hasPrefix("HTTP/1.1 100 Continue\r\n"), "\(expect): \(interim)")
                connection.write(raw: json)
                let answer = await connection.read(until: "\"finish_reason\"")
                #expect(answer.hasPrefix("HTTP/1.1 200"), "\(expect): \(answer.prefix(200))")
            }
        }
    }

    /// An HTTP/1.0 request's `Expect: 100-continue` is ignored (RFC 9110 §10.1.1: "MUST ignore"),
    /// and no 1xx goes to an HTTP/1.0 client (§15.2: "MUST NOT send"): it was sent `HTTP/1.1 100
    /// Continue` ahead of its answer, which a 1.0 client reads as the answer itself.
    @Test func anHTTP10ExpectContinueIsIgnored() async throws {
        try await LiveServer.with { server in
            let json = #"{"model":"deepseek-r1","prompt":"hi","max_tokens":1}"#
            let (text, _) = try await exchange(
                "POST /v1/completions HTTP/1.0\r\nContent-Type: application/json\r\n"
                    + "Content-Length: \(json.utf8.count)\r\nExpect: 100-continue\r\n\r\n" + json, port: server.port)
            #expect(text.hasPrefix("HTTP/1.0 200"), "\(text.prefix(200))")
            #expect(!text.contains("100 Continue"), "\(text.prefix(200))")
            #expect(server.backend.submitted.count == 1)
        }
    }

    /// The checks leave ordinary requests alone: pipelined requests on one kept-alive connection
    /// are all answered, chunked bodies included.
    @Test func pipelinedOrdinaryRequestsAreAllAnswered() async throws {
        try await LiveServer.with { server in
            let connection = try RawConnection(port: server.port, readTimeout: 8)
            defer { connection.close() }
            let json = #"{"model":"x"}"#
            let chunk = String(json.utf8.count, radix: 16) + "\r\n" + json + "\r\n0\r\n\r\n"
            connection.write(raw:
                "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
                + "POST /health HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk
                + "GET /health HTTP/1.1\r\nHOST: 127.0.0.1\r\nConnection: close\r\n\r\n")
            let (text, _) = await connection.readToEnd()
            let statuses = text.components(separatedBy: "HTTP/1.1 ").dropFirst().map { $0.prefix(3) }
            #expect(statuses == ["200", "405", "200"], "\(text)")
        }
    }

    /// An HTTP/0.9 request line (`GET /health` and no version, as `printf 'GET /health\r\n' | nc`
    /// sends it) is refused at once, 505 saying HTTP/0.9 is not supported, and the connection
    /// closes cleanly. NIO's parser takes such a line as the start of a 0.9 request and waits for
    /// headers that never come: the client got, 60 s later, a 408 saying "the request head did
    /// not arrive", though it had sent all it meant to. The same line ended by a bare LF, or
    /// followed by headers and a blank line, gets the same answer; a request line that arrives in
    /// pieces is still served.
    @Test func anHTTP09RequestLineIsRefused505AtOnce() async throws {
        try await LiveServer.with { server in
            for request in ["GET /health\r\n", "GET /health\n", "GET /health\r\n\r\n", "GET /v1/models\r\nHost: x\r\n\r\n"] {
                let connection = try RawConnection(port: server.port, readTimeout: 8)
                defer { connection.close() }
                let start = ContinuousClock.now
                connection.write(raw: request)
                let (text, ending) = await connection.readToEnd()
                #expect(ContinuousClock.now - start < .seconds(6), "\(request.debugDescription): no answer at once")
                #expect(text.hasPrefix("HTTP/1.1 505"), "\(request.debugDescription): \(text.prefix(200))")
                #expect(text.contains("Connection: close"), "\(request.debugDescription): \(text.prefix(300))")
                #expect(text.contains("HTTP/0.9 is not supported"), "\(request.debugDescription): \(text.prefix(400))")
                #expect(text.contains(#""code":"http_version_not_supported""#), "\(request.debugDescription): \(text.prefix(400))")
                #expect(answers(text) == 1, "\(request.debugDescription): \(text)")
                #expect(ending == .closed, "\(request.debugDescription): the 505 ended in \(ending), not a clean close")
            }
            // A request line in pieces, its version in the second: served.
            let connection = try RawConnection(port: server.port, readTimeout: 8)
            defer { connection.close() }
            connection.write(raw: "GET /hea")
            try await Task.sleep(for: .milliseconds(200))
            connection.write(raw: "lth HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            let (text, _) = await connection.readToEnd()
            #expect(text.hasPrefix("HTTP/1.1 200"), "\(text.prefix(200))")
        }
    }
}
