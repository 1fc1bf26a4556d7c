import Foundation
import Testing
import XDSTestSupport

@testable import APIServer

#if canImport(Glibc)
    import Glibc
#endif

/// Connections open at once are capped below the process's file-descriptor limit: clients that
/// opened as many connections as it may have descriptors made libdispatch kill `xds serve`
/// (SIGILL: it could not open `/proc` to watch its threads). One past the cap is answered 503
/// `too_many_connections` and closed; the open ones are still served, and a place frees when one
/// closes. On its own thread, as the other socket-timing suites: on the cooperative pool CI once
/// ran it 430 s late, behind the suite's long synchronous tests, and a held connection had been
/// let go meanwhile, so the one past the cap was served.
@Suite(.timeLimit(.minutes(10)), .ownThread("ConnectionLimitTests"))
struct ConnectionLimitTests {
    @Test func theCapLeavesDescriptorsForEverythingElse() {
        #expect(ConnectionLimit.limit(forDescriptors: 256) == 192)
        #expect(ConnectionLimit.limit(forDescriptors: 1024) == 896)
        #expect(ConnectionLimit.limit(forDescriptors: 20_000) == 19_872)
        // At least 32 kept: an idle server holds 17, so a quarter of 64 (16) was too few.
        #expect(ConnectionLimit.limit(forDescriptors: 64) == 32)
        #expect(ConnectionLimit.limit(forDescriptors: 8) == 1)
        #expect(ConnectionLimit.limit(forDescriptors: 0) == 1)
        var limits = rlimit()
        #expect(getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limits) == 0)
        if limits.rlim_cur != rlim_t.max {
            #expect(ConnectionLimit.forThisProcess() < Int(clamping: limits.rlim_cur))
        }
    }

    @Test func oneConnectionPastTheCapIs503AndAPlaceFreesWhenOneCloses() async throws {
        try await LiveServer.with(maxConnections: 4) { server in
            func health(on connection: RawConnection) async -> String {
                connection.write(raw: "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                return await connection.read(until: #""status":"ok"}"#)
            }
            var open: [RawConnection] = []
            defer { open.forEach { $0.close() } }
            for _ in 0..<4 {
                let connection = try RawConnection(port: server.port, readTimeout: 15)  // a busy machine is slow
                open.append(connection)
                let answer = await health(on: connection)
                #expect(answer.hasPrefix("HTTP/1.1 200"), "\(answer)")
            }
            let refused = try RawConnection(port: server.port, readTimeout: 15)
            defer { refused.close() }
            refused.write(raw: "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            let (answer, closed) = await refused.readUntilClosed()
            #expect(answer.hasPrefix("HTTP/1.1 503"), "\(answer)")
            #expect(answer.contains(#""code":"too_many_connections""#), "\(answer)")
            #expect(answer.contains(#""type":"service_unavailable_error""#), "\(answer)")
            #expect(answer.lowercased().contains("connection: close"), "\(answer)")
            #expect(closed, "the refused connection stayed open")
            // The open connections are still served.
            let again = await health(on: open[0])
            #expect(again.hasPrefix("HTTP/1.1 200"), "\(again)")
            // A place frees when a connection closes (the server notices the close a moment later).
            open.removeLast().close()
            var served = false
            let deadline = ContinuousClock.now + .seconds(30)  // generous: a loaded machine is slow
            while !served, ContinuousClock.now < deadline {
                let connection = try RawConnection(port: server.port, readTimeout: 15)
                served = await health(on: connection).hasPrefix("HTTP/1.1 200")
                if served { open.append(connection) } else { connection.close() }
                if !served { try await Task.sleep(for: .milliseconds(50)) }
            }
            #expect(served, "no place freed after a connection closed")
        }
    }

    /// A client sends its request as soon as it connects, before it reads. Refused and closed at
    /// once with that request unread, the server's kernel answered with a TCP reset, and the client
    /// saw "connection reset by peer" (or a broken pipe while still sending) instead of the 503:
    /// 12 of 20 such clients did. Now the refused connection lingers: its request is read and
    /// dropped, and it closes with a FIN after the 503.
    @Test func aRefusedClientThatSendsAtOnceReadsThe503NotAReset() async throws {
        try await LiveServer.with(maxConnections: 1) { server in
            let held = try RawConnection(port: server.port, readTimeout: 15)
            defer { held.close() }
            held.write(raw: "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            #expect(await held.read(until: #""status":"ok"}"#).hasPrefix("HTTP/1.1 200"))
            let body = Array(#"{"prompt": ""#.utf8) + [UInt8](repeating: UInt8(ascii: "a"), count: 100_000)
                + Array(#""}"#.utf8)
            let head = "POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                + "Content-Length: \(body.count)\r\n\r\n"
            for attempt in 0..<8 {
                let refused = try RawConnection(port: server.port, readTimeout: 15)
                defer { refused.close() }
                let sentAll = await refused.sendAllOffPool(Array(head.utf8) + body)
                #expect(sentAll, "attempt \(attempt): the refused request could not be sent whole")
                let (answer, ending) = await refused.readToEnd()
                #expect(answer.hasPrefix("HTTP/1.1 503"), "attempt \(attempt): \(answer.prefix(200))")
                #expect(answer.contains(#""code":"too_many_connections""#), "attempt \(attempt): \(answer.prefix(300))")
                #expect(ending == .closed, "attempt \(attempt): the refused connection ended with \(ending)")
            }
        }
    }

    /// Refused connections linger (``LingeringClose``) but at most a quarter of the cap (8 to 64)
    /// at once, so a flood's refusals cannot use up the descriptors the cap keeps for the rest.
    @Test func refusalsLingerAtMostAQuarterOfTheCap() {
        #expect(ConnectionLimit(limit: 1).lingerLimit == 8)
        #expect(ConnectionLimit(limit: 32).lingerLimit == 8)
        #expect(ConnectionLimit(limit: 100).lingerLimit == 25)
        #expect(ConnectionLimit(limit: 896).lingerLimit == 64)
        let limit = ConnectionLimit(limit: 40)
        #expect((0..<10).allSatisfy { _ in limit.takeLingering() })
        #expect(!limit.takeLingering())
        limit.releaseLingering()
        #expect(limit.lingeringCount == 9 && limit.takeLingering())
    }
}
