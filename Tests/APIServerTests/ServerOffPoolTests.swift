import Foundation
import Synchronization
import Testing
import XDSTestSupport

@testable import APIServer

/// A live test server binds, answers and its client reads while every thread of Swift's
/// cooperative pool is busy. In a full `swift test` the pool's two threads are shared by every
/// suite, and under load `fiveThousandHeadersGetThe431AndACleanClose` and
/// `connectIsRefused405WithABodyAndTheConnectionCloses` (0.1-0.4 s alone) went past their 3-minute
/// limits: their suites run on threads of their own, but the server's tasks and the client's
/// pause (`Task.sleep`, woken through the pool) waited for a pool thread.
@Suite(.serialized, .timeLimit(.minutes(10)), .ownThread("ServerOffPoolTests"))
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

/// A stopping server's own unstructured tasks (Hummingbird's and ServiceLifecycle's `Task {}`,
/// which run on Swift's pool whatever executor the server prefers) go ahead of the jobs queued
/// there. In a full `swift test` that queue is every other suite's test body: a test server took
/// 277 s to stop (RequestHeadCheckTests went past its time limit in CI) though it stops in
/// milliseconds alone.
@Suite(.serialized, .timeLimit(.minutes(10)), .ownThread("ServerStopQueueTests"))
struct ServerStopQueueTests {
    /// Jobs queued on the pool at the priority test bodies run at, each spinning for a while:
    /// the pool's threads stay busy and its queue long until they have all run.
    final class QueuedPoolWork: Sendable {
        let count: Int
        private let finished = Atomic<Int>(0)

        /// `perThread` jobs per cooperative thread, each spinning for `each`.
        init(perThread: Int, each: Duration) {
            count = perThread * ProcessInfo.processInfo.activeProcessorCount
            for _ in 0..<count {
                Task.detached(priority: .medium) { [self] in
                    let end = ContinuousClock.now + each
                    while ContinuousClock.now < end {}
                    finished.add(1, ordering: .relaxed)
                }
            }
        }

        /// Jobs that have run to their end.
        var done: Int { finished.load(ordering: .relaxed) }
    }

    // Each test asks that the server stopped while most of the jobs queued before its stop were
    // still waiting: ahead of them it waits for the jobs running then (one per thread), behind
    // them for all but the last few. Said as a count, not a time, so that the other suites' work
    // on the pool in a full run (which delays both alike) cannot decide it; alone the server
    // stops in milliseconds and the queue takes 5 s.

    @Test func aServerStopsAheadOfTheJobsQueuedOnThePool() async throws {
        var queued: QueuedPoolWork?
        try await LiveServer.with { server in
            let reply = try await server.get("/health")
            #expect(reply.status == 200, "\(reply.text)")
            queued = QueuedPoolWork(perThread: 20, each: .milliseconds(250))
        }
        let work = try #require(queued)
        let doneAtStop = work.done
        #expect(doneAtStop <= work.count / 2, "the server stopped after \(doneAtStop) of the \(work.count) jobs queued before its stop")
    }

    /// The same for a server run from a task of an ordinary priority, without ``LiveServer``: the
    /// server's own tasks outrank the work queued on the pool whoever runs it.
    @Test func aServerRunAtMediumPriorityStopsAheadOfTheQueueToo() async throws {
        var configuration = APIServer.Configuration(adminToken: LiveServer.token)
        configuration.taskExecutor = ServerThreads.shared
        let server = APIServer(
            configuration: configuration, link: RecordingEngineLink(), backend: FakeCompletionBackend())
        let running = Task(executorPreference: ServerThreads.shared, priority: .medium) { try await server.run() }
        _ = try await server.boundPort()
        let work = QueuedPoolWork(perThread: 20, each: .milliseconds(250))
        running.cancel()
        try? await running.value
        let doneAtStop = work.done
        #expect(doneAtStop <= work.count / 2, "the server stopped after \(doneAtStop) of the \(work.count) jobs queued before its stop")
    }
}

/// The live servers' threads grow: a job never waits behind jobs that block. A fixed four threads
/// shared by every test server (48c17f7) stalled three CI tests for minutes once handlers blocked.
@Suite(.timeLimit(.minutes(10)), .ownThread("ServerThreadsTests"))
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
