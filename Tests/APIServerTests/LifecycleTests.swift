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

    @Test func cancellingRunStopsTheServerAndEndsOpenStreams() async throws {
        let backend = FakeCompletionBackend(outputTokens: 100_000, tokenInterval: .milliseconds(5))
        let server = APIServer(
            configuration: .init(adminToken: "t"), link: RecordingEngineLink(), backend: backend)
        let running = Task { try await server.run() }
        let port = try await server.boundPort()
        #expect(try await server.boundPort() == port)  // asking again answers at once
        let connection = try RawConnection(port: port, readTimeout: 15)  // a busy machine is slow
        connection.post("/v1/completions", json: #"{"prompt": "x", "stream": true, "max_tokens": 100000}"#)
        #expect(await connection.read(until: "data: ").contains("200 OK"))
        running.cancel()
        _ = await running.result
        // The open stream's request was cancelled in the engine, not left producing tokens.
        #expect(await eventually { backend.cancelledIDs == [1] })
        connection.close()
        #expect(throws: (any Error).self) { try RawConnection(port: port) }
    }
}
