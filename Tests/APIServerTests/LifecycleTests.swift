import ServingEngine
import APIServer
import Foundation
import Testing
import XDSTestSupport

/// Starting, learning the port, failing to bind, stopping.
@Suite(.serialized, .timeLimit(.minutes(10)))
struct LifecycleTests {
    @Test func defaultsAreLoopbackAndAnEphemeralPort() {
        let configuration = APIServer.Configuration(adminToken: "t")
        #expect(configuration.host == "127.0.0.1")
        #expect(configuration.port == 0)
        #expect(configuration.maxBodyBytes == 1 << 20)
        #expect(configuration.defaultMaxTokens == 256)
        #expect(configuration.maxTokensCap == 16_384)
    }

    @Test func aTakenPortFailsRunAndBoundPortInsteadOfHanging() async throws {
        try await LiveServer.with { first throws in
            let second = APIServer(
                configuration: .init(port: first.port, adminToken: "t"), link: RecordingEngineLink(),
                backend: FakeCompletionBackend())
            await #expect(throws: (any Error).self) { try await second.run() }
            await #expect(throws: APIServerError.notListening) { try await second.boundPort() }
            // The first server is unaffected.
            #expect(try await first.get("/health").status == 200)
        }
    }

    /// Stopping ends every connection on its own, each with a proper end, before the grace runs
    /// out and anything is cancelled: a streamed completion gets the shutdown error and `[DONE]`,
    /// a whole one a 503, an events stream its last chunk; their requests are cancelled in the
    /// engine, not left producing tokens.
    @Test func cancellingRunStopsTheServerAndEndsOpenStreams() async throws {
        let backend = FakeCompletionBackend(outputTokens: 100_000, tokenInterval: .milliseconds(5))
        // Every connection must end on its own; the grace only bounds how long that may take,
        // and the suite's other tests, sharing two cores, could hold it past the default 2 s
        // (the stream was then cut, not ended). Longer here, it still cannot pass a connection
        // that never ends: that one would be cut at 12 s and fail the checks below.
        var configuration = APIServer.Configuration(adminToken: "t")
        configuration.shutdownGrace = .seconds(12)
        let server = APIServer(configuration: configuration, link: RecordingEngineLink(), backend: backend)
        let running = Task { try await server.run() }
        let port = try await server.boundPort()
        #expect(try await server.boundPort() == port)  // asking again answers at once
        // A busy machine is slow: reads wait up to 15 s (none should wait near that).
        let streamed = try RawConnection(port: port, readTimeout: 15)
        streamed.post("/v1/completions", json: #"{"prompt": "x", "stream": true, "max_tokens": 100000}"#)
        #expect(await streamed.read(until: "data: ").contains("200 OK"))
        let whole = try RawConnection(port: port, readTimeout: 15)
        whole.post("/v1/completions", json: #"{"prompt": "x", "max_tokens": 100000}"#)
        #expect(await eventually { backend.submitted.count == 2 })
        let events = try RawConnection(port: port, readTimeout: 15)
        events.write(raw: "GET /admin/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer t\r\n\r\n")
        #expect(await events.read(until: "event: snapshot").contains("200 OK"))
        running.cancel()
        let (streamEnd, streamClosed) = await streamed.readUntilClosed()
        #expect(streamClosed)
        #expect(streamEnd.contains(#""code":"server_shutting_down""#) && streamEnd.contains("data: [DONE]"),
                "\(streamEnd.suffix(400))")
        // The chunked body's last chunk: the stream was finished, not cut.
        #expect(streamEnd.hasSuffix("0\r\n\r\n"), "\(streamEnd.suffix(200))")
        let (answer, wholeClosed) = await whole.readUntilClosed()
        #expect(wholeClosed && answer.hasPrefix("HTTP/1.1 503"), "\(answer)")
        #expect(answer.contains("the server is shutting down; the request was cancelled"), "\(answer)")
        let (eventsEnd, eventsClosed) = await events.readUntilClosed()
        #expect(eventsClosed && eventsEnd.hasSuffix("0\r\n\r\n"), "\(eventsEnd.suffix(200))")
        _ = await running.result
        #expect(await eventually { Set(backend.cancelledIDs) == [1, 2] }, "\(backend.cancelledIDs)")
        for connection in [streamed, whole, events] { connection.close() }
        #expect(throws: (any Error).self) { try RawConnection(port: port) }
    }
}
