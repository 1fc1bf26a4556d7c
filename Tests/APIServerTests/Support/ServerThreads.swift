import Foundation

/// The threads the live test servers' Swift tasks run on (``APIServer/Configuration/taskExecutor``):
/// a server binds, accepts, answers and stops without waiting for Swift's cooperative pool, whose
/// two threads (one per core) the other suites of a full `swift test` hold for seconds at a time.
///
/// Unlike ``ThreadsExecutor`` it never makes a job wait behind another: a job enqueued while no
/// thread is idle gets a new thread. A fixed four threads shared by every test server (48c17f7,
/// reverted in be76672) stalled three servers in CI for minutes: a job that blocks (a handler
/// waiting on its engine) held one of the four for everyone, where the pool on Linux adds
/// threads when its threads block. Threads idle for ``idleLife`` end, so a process with hundreds
/// of tests holds only the threads its busiest moment needed.
final class ServerThreads: TaskExecutor, @unchecked Sendable {
    static let shared = ServerThreads(name: "live-servers")

    let name: String
    /// How long a thread with nothing to run waits for a job before it ends.
    let idleLife: TimeInterval
    /// Most threads at once: a bound for a runaway (every job blocked), far over what the tests use.
    let maxThreads: Int

    /// Guards everything below; idle threads wait on it.
    private let condition = NSCondition()
    private var jobs: [UnownedJob] = []
    /// Threads waiting for a job that no enqueue has claimed yet.
    private var idle = 0
    /// Idle threads an enqueue claimed (and signalled) that have not woken yet.
    private var wakes = 0
    private var threads = 0

    init(name: String, idleLife: TimeInterval = 5, maxThreads: Int = 256) {
        self.name = name
        self.idleLife = idleLife
        self.maxThreads = maxThreads
    }

    /// Threads alive now (running a job or idle).
    var threadCount: Int {
        condition.lock()
        defer { condition.unlock() }
        return threads
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        condition.lock()
        jobs.append(job)
        let spawn: Bool
        if idle > 0 {
            idle -= 1
            wakes += 1
            condition.signal()
            spawn = false
        } else {
            spawn = threads < maxThreads
            if spawn { threads += 1 }
        }
        condition.unlock()
        if spawn {
            let thread = Thread { [self] in work() }
            thread.name = name
            thread.start()
        }
    }

    private func work() {
        condition.lock()
        while true {
            if !jobs.isEmpty {
                let job = jobs.removeFirst()
                condition.unlock()
                job.runSynchronously(on: asUnownedTaskExecutor())
                condition.lock()
                continue
            }
            idle += 1
            let deadline = Date(timeIntervalSinceNow: idleLife)
            var timedOut = false
            while wakes == 0 && !timedOut { timedOut = !condition.wait(until: deadline) }
            if wakes > 0 {
                wakes -= 1  // claimed by an enqueue: its job is in `jobs` (or a busy thread took it)
            } else {
                idle -= 1  // nobody claimed this thread in its idle life
                threads -= 1
                condition.unlock()
                return
            }
        }
    }
}
