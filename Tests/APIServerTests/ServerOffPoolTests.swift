import Foundation
import Synchronization
import Testing

/// A live test server binds, answers and its client reads while every thread of Swift's
/// cooperative pool is busy. In a full `swift test` the pool's two threads are shared by every
/// suite, and under load `fiveThousandHeadersGetThe431AndACleanClose` and
/// `connectIsRefused405WithABodyAndTheConnectionCloses` (0.1-0.4 s alone) went past their 3-minute
/// limits: their suites run on threads of their own, but the server's tasks and the client's
/// pause (`Task.sleep`, woken through the pool) waited for a pool thread.
@Suite(.serialized, .timeLimit(.minutes(3)), .ownThread("ServerOffPoolTests"))
struct ServerOffPoolTests {
    /// Spins on every cooperative thread (twice the pool's width, so none is left) until
    /// ``release()``, for at most `seconds`. Spinning, not blocking: Dispatch's pool on Linux adds
    /// threads when its threads block, not when they compute, as CPU-bound tests do.
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
            // The pool is taken before the test goes on (or it was full already: then no wait is
            // needed). A blocking sleep on the suite's own thread, not Task.sleep, which the pool wakes.
            for _ in 0..<200 where spinning.load(ordering: .relaxed) < width { usleep(10_000) }
        }

        func release() { released.store(true, ordering: .relaxed) }
    }

    @Test func theFiveThousandHeaderExchangeNeedsNoPoolThread() async throws {
        var request = "GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        for index in 0..<5_000 { request += "X-Header-\(index): value\r\n" }
        request += "\r\n"
        // Held for 15 s at most: past the 8 s the exchange is given, short of the time limit.
        let hog = PoolHog(seconds: 15)
        defer { hog.release() }
        let started = ContinuousClock.now
        try await LiveServer.with { server in
            let (sent, text, ending) = try await RefusalCloseTests.sendThenRead(request, port: server.port)
            let waited = ContinuousClock.now - started
            // Stopping the server goes through Hummingbird's own unstructured tasks: give it the pool.
            hog.release()
            #expect(sent, "the server stopped taking the request's bytes")
            #expect(text.hasPrefix("HTTP/1.1 431"), "\(text.prefix(200))")
            #expect(ending == .closed, "the 431 ended in \(ending), not a clean close")
            // Alone it takes well under a second; the hog holds the pool for 15 s.
            #expect(waited < .seconds(8), "the server started and answered after \(waited) with the pool busy")
        }
    }
}

/// The live servers' threads grow: a job never waits behind jobs that block. A fixed four threads
/// shared by every test server (48c17f7) stalled three CI tests for minutes once handlers blocked.
@Suite(.timeLimit(.minutes(2)), .ownThread("ServerThreadsTests"))
struct ServerThreadsTests {
    @Test func aJobRunsWhileEightOthersBlockTheirThreads() async throws {
        let executor = ServerThreads(name: "server-threads-test", idleLife: 1)
        final class Blockers: Sendable {
            let gate = DispatchSemaphore(value: 0)
            let blocked = Atomic<Int>(0)
        }
        let blockers = Blockers()
        for _ in 0..<8 {
            Task(executorPreference: executor) { [blockers] in
                blockers.blocked.add(1, ordering: .relaxed)
                blockers.gate.wait()
            }
        }
        defer { for _ in 0..<8 { blockers.gate.signal() } }
        for _ in 0..<500 where blockers.blocked.load(ordering: .relaxed) < 8 { usleep(10_000) }
        #expect(blockers.blocked.load(ordering: .relaxed) == 8, "the blocking jobs did not all start")
        let started = ContinuousClock.now
        let ran = await Task(executorPreference: executor) { ContinuousClock.now }.value
        #expect(ran - started < .seconds(2), "the ninth job waited \(ran - started) behind eight blocked ones")
    }
}
