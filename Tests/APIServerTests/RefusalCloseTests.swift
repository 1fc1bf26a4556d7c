import Foundation
import Testing

@testable import APIServer

/// A request refused before the server read all of it (its head over the decoder's limits, or a
/// head that does not parse with more bytes behind it) gets its answer and then a clean close
/// (FIN), not a TCP reset: the server closed with the rest of the request unread in its socket,
/// so the kernel sent a reset, and a client that read after it (or that the reset reached first)
/// saw "connection reset by peer" instead of the 431 or 400.
@Suite(.serialized, .timeLimit(.minutes(3)))
struct RefusalCloseTests {
    /// A client that writes its whole request, then reads (Python's http.client, curl).
    private func sendThenRead(_ request: String, port: Int) async throws -> (sent: Bool, text: String, ending: RawConnection.Ending) {
        let connection = try RawConnection(port: port, readTimeout: 15)  // a busy machine is slow
        defer { connection.close() }
        let sent = await connection.sendAllOffPool(Array(request.utf8))
        // The server answers and closes while the client is still busy: read only afterwards.
        try await Task.sleep(for: .milliseconds(300))
        let (text, ending) = await connection.readToEnd()
        return (sent, text, ending)
    }

    @Test func fiveThousandHeadersGetThe431AndACleanClose() async throws {
        var request = "GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        for index in 0..<5_000 { request += "X-Header-\(index): value\r\n" }
        request += "\r\n"
        try await LiveServer.with { server in
            let (sent, text, ending) = try await sendThenRead(request, port: server.port)
            #expect(sent, "the server stopped taking the request's bytes")
            #expect(text.hasPrefix("HTTP/1.1 431"), "\(text.prefix(200))")
            #expect(text.contains(#""code":"request_header_fields_too_large""#), "\(text.prefix(300))")
            #expect(ending == .closed, "the 431 ended in \(ending), not a clean close")
        }
    }

    @Test func aMalformedHeadWithABodyBehindItGetsThe400AndACleanClose() async throws {
        let body = String(repeating: "x", count: 200_000)
        let request = "POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            + "Content-Length: 2\r\nContent-Length: 3\r\n\r\n" + body
        try await LiveServer.with { server in
            let (sent, text, ending) = try await sendThenRead(request, port: server.port)
            #expect(sent, "the server stopped taking the request's bytes")
            #expect(text.hasPrefix("HTTP/1.1 400"), "\(text.prefix(200))")
            #expect(text.contains(#""code":"malformed_request""#), "\(text.prefix(300))")
            #expect(ending == .closed, "the 400 ended in \(ending), not a clean close")
            #expect(server.backend.submitted.isEmpty)
        }
    }
}
