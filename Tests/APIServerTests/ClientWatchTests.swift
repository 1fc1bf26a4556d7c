import NIOCore
import NIOPosix
import Testing

@testable import APIServer

/// A client that reset its connection before its completion's first wait is a client that left
/// (499, the engine told), not a server error: the watch could not find or put its handler on the
/// closed connection's pipeline, and that error came out as a 500 (`internal_error`), as 2 of 60
/// whole completions reset within a second were counted.
@Suite struct ClientWatchTests {
    @Test func aConnectionClosedBeforeTheWatchIsAClientThatLeft() async throws {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(host: "127.0.0.1", port: 0).get()
        try await channel.close()
        await #expect(throws: CancellationError.self) {
            try await ClientWatch.run(on: channel) { 1 }
        }
    }
}
