import Foundation
import Synchronization
import Testing

/// A live test server starts and answers while every thread of Swift's cooperative pool is busy.
/// In a full `swift test` under load the pool's two threads are shared by every test, and two HTTP
/// tests that take under a second alone (`fiveThousandHeadersGetThe431AndACleanClose`,
/// `connectIsRefused405WithABodyAndTheConnectionCloses`) went past their 3-minute limits: their
/// suites run off the pool, but the server's own tasks (its service group, started as an
/// unstructured task that took no executor preference) queued on it.
@Suite(.serialized, .timeLimit(.minutes(3)), .ownThread("BusyPoolTests"))
struct BusyPoolTests {
    /// Spins on every cooperative thread (twice the pool's width, so none is left) until
    /// ``release()``, for at most `seconds`. Spinning, not blocking: Dispatch's pool on Linux adds
    /// threads when its threads block, not when they compute, as long synchronous tests do.
    final class PoolHog: Sendable {
        let released = Atomic<Bool>(false)
        let spinning = Atomic<Int>(0)
        let width = ProcessInfo.processInfo.activeProcessorCount

        init(seconds: Int) {
            for _ in 0..<(2 * width) {
                Task.detached { [self] in
                    spinning.add(1, ordering: .relaxed)
                    let end = ContinuousClock.now + .seconds(seconds)
                    while !released.load(ordering: .relaxed) && ContinuousClock.now < end {}
                }
            }
        }

        func release() { released.store(true, ordering: .relaxed) }
    }

    @Test func aServerStartsAndAnswersWhileThePoolIsBusy() async throws {
        let hog = PoolHog(seconds: 20)
        defer { hog.release() }
        // The pool is taken before the server starts (or it was already full: no wait is needed).
        // A blocking sleep on the suite's own thread, not Task.sleep: a sleeping task is woken
        // through the pool.
        for _ in 0..<200 where hog.spinning.load(ordering: .relaxed) < hog.width { usleep(10_000) }
        let started = ContinuousClock.now
        try await LiveServer.with { server in
            let connection = try RawConnection(port: server.port, readTimeout: 30)
            defer { connection.close() }
            connection.write(raw: "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            let (text, _) = await connection.readToEnd()
            let waited = ContinuousClock.now - started
            // Stopping the server goes through Hummingbird's own unstructured tasks: give it the pool.
            hog.release()
            #expect(text.hasPrefix("HTTP/1.1 200"), "\(text.prefix(200))")
            // Alone it takes milliseconds; the hog holds the pool for 20 s.
            #expect(waited < .seconds(8), "the server started and answered after \(waited) with the pool busy")
        }
    }
}
