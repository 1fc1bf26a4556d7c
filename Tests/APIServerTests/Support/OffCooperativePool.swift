import Foundation
import Testing

/// Runs a suite's tests off Swift's cooperative thread pool.
///
/// Why: `swift test` starts every test at once on the cooperative pool, which has one thread per
/// core (two here). A synchronous test body (an engine run of seconds) or one that blocks its
/// thread (waiting for a child `xds` to exit) holds a pool thread for its whole length, and every
/// other test's next step queues behind it. Swift Testing's `.timeLimit` counts that queueing: on
/// a loaded CI machine five HTTP tests and even two that do no I/O at all (FinishReasonCountingTests)
/// went past their 2 and 3 minute limits (now 10, README "Time limits") at 424 s into the run, though
/// they take under a second.
/// A suite with this trait runs its tests (the test bodies and Swift Testing's own steps for them,
/// time limits included) on threads of its own instead, through a task executor preference:
/// the pool is left to the tests that only await, and to the servers they talk to.
struct OffCooperativePool: SuiteTrait, TestTrait, TestScoping {
    let executor: any TaskExecutor

    /// Reaches each test of a suite given it, besides the suite itself.
    var isRecursive: Bool { true }

    /// Around the suite (its tests, started inside, inherit the preference, and so do Swift
    /// Testing's own tasks for them, the time limit's among them) and again around each test case:
    /// the per-case one is what is certain to hold for the test's own body.
    func scopeProvider(for test: Test, testCase: Test.Case?) -> Self? {
        if test.isSuite { return testCase == nil ? self : nil }
        return testCase == nil ? nil : self
    }

    func provideScope(for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void)
        async throws {
        try await withTaskExecutorPreference(executor) { try await function() }
    }
}

extension Trait where Self == OffCooperativePool {
    /// CPU-bound suites (long synchronous engine runs) share these threads, one per core, in
    /// the order their tests come: the CPU work runs as it did on the pool (at most one engine per
    /// core, so no more memory at once), only without holding the pool.
    static var cpuBound: Self { Self(executor: ThreadsExecutor.cpuLane) }

    /// A suite whose tests block a thread while waiting (for a child process to exit) gets a
    /// thread of its own: its waiting holds neither the pool nor the CPU suites' threads.
    static func ownThread(_ name: String) -> Self { Self(executor: ThreadsExecutor(name: name, threads: 1)) }
}

/// A task executor with `threads` plain threads (not libdispatch, not the cooperative pool) that
/// run its jobs in the order they were enqueued.
final class ThreadsExecutor: TaskExecutor, @unchecked Sendable {
    static let cpuLane = ThreadsExecutor(name: "cpu-lane", threads: max(2, ProcessInfo.processInfo.activeProcessorCount))

    /// Guards `jobs`; its threads wait on it for work.
    private let condition = NSCondition()
    private var jobs: [UnownedJob] = []

    let name: String

    /// The executor whose thread runs the caller, if one does (a thread-specific value: Foundation's
    /// `Thread.current.name` proved unreliable for this on Linux).
    static var current: ThreadsExecutor? {
        pthread_getspecific(key).map { Unmanaged<ThreadsExecutor>.fromOpaque($0).takeUnretainedValue() }
    }
    private static let key: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key, nil)
        return key
    }()

    init(name: String, threads: Int) {
        self.name = name
        for _ in 0..<threads {
            Thread.detachNewThread { [self] in
                pthread_setspecific(Self.key, Unmanaged.passUnretained(self).toOpaque())
                work()
            }
        }
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        condition.lock()
        jobs.append(job)
        condition.signal()
        condition.unlock()
    }

    /// Runs jobs forever: the executors live as long as the test process.
    private func work() {
        while true {
            condition.lock()
            while jobs.isEmpty { condition.wait() }
            let job = jobs.removeFirst()
            condition.unlock()
            job.runSynchronously(on: asUnownedTaskExecutor())
        }
    }
}
