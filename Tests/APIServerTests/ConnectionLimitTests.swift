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
/// closes.
@Suite(.timeLimit(.minutes(5)))
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
}
