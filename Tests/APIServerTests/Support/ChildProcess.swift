import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// A child process the tests start, without Foundation's `Process` or `FileHandle`'s
/// `readabilityHandler`: on Linux those run on libdispatch (a SIGCHLD source, a dispatch source
/// per pipe), and a full `swift test` once died with SIGSEGV in libdispatch's manager thread
/// (`_dispatch_event_loop_drain`) while a test waited here for an `xds` to exit. This starts the
/// child with `posix_spawn`, reads its pipes on a plain thread with `poll()`, and reaps it with
/// `waitpid`: nothing of it goes through dispatch.
///
/// The API is the one the tests used on `Process` (`isRunning`, `processIdentifier`,
/// `terminationStatus`, `terminationReason`), so their assertions read the same.
final class SpawnedProcess: Sendable {
    let processIdentifier: pid_t
    /// The raw wait status once the child has been reaped.
    private let waitStatus = Mutex<Int32?>(nil)

    init(processIdentifier: pid_t) { self.processIdentifier = processIdentifier }

    /// Reaps the child if it has ended (`block`: waits until it does); its raw wait status, or nil
    /// while it runs. Only this object reaps this pid, so the status is never taken by another.
    @discardableResult
    func reap(block: Bool) -> Int32? {
        waitStatus.withLock { known in
            if let known { return known }
            var status: Int32 = 0
            while true {
                let pid = waitpid(processIdentifier, &status, block ? 0 : WNOHANG)
                if pid == processIdentifier {
                    known = status
                    return status
                }
                if pid < 0 && errno == EINTR { continue }
                return nil  // 0: still running (WNOHANG); -1 ECHILD cannot happen for our own child
            }
        }
    }

    var isRunning: Bool { reap(block: false) == nil }

    /// Exited (its exit status) or ended by a signal (the signal), as `Process` tells them apart.
    var terminationReason: Process.TerminationReason {
        guard let status = reap(block: false) else { return .exit }
        return status & 0x7f == 0 ? .exit : .uncaughtSignal
    }

    /// The exit status, or the signal's number if a signal ended it (as `Process` gives it); -1
    /// while it still runs (where `Process` would trap), which every test's assertion rejects.
    var terminationStatus: Int32 {
        guard let status = reap(block: false) else { return -1 }
        return status & 0x7f == 0 ? (status >> 8) & 0xff : status & 0x7f
    }
}

/// A running `xds` (or `sh`) child with its stdout and stderr collected; SIGKILLed and reaped when
/// the test lets go of it, whatever happened.
final class ChildProcess: Sendable {
    /// Where one of the child's output streams goes.
    enum Output: Sendable {
        /// A pipe this object reads (``ChildProcess/stdout``, ``ChildProcess/stderr``).
        case pipe
        /// A file opened for writing as the child's stream (no truncation: as a `FileHandle(forWritingTo:)`).
        case file(String)
    }

    let process: SpawnedProcess

    /// Bytes read from one pipe, by the reader thread as they come and by the test once the
    /// process has exited. Every read is non-blocking and made under the lock, so the bytes keep
    /// their order, and the fd is closed under the same lock, so no read ever reaches a number the
    /// process has reused for another file.
    final class Collected: Sendable {
        private struct State {
            var data = Data()
            var fd: Int32
            var ended = false
        }
        private let state: Mutex<State>

        init(fd: Int32) {
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            state = Mutex(State(fd: fd))
        }

        var text: String { state.withLock { String(decoding: $0.data, as: UTF8.self) } }
        var fd: Int32 { state.withLock { $0.ended ? -1 : $0.fd } }

        /// Reads what the pipe holds now; false once it reached its end (the fd is closed then).
        @discardableResult
        func drain() -> Bool {
            state.withLock { state in
                guard !state.ended else { return false }
                var buffer = [UInt8](repeating: 0, count: 65_536)
                while true {
                    let count = read(state.fd, &buffer, buffer.count)
                    if count > 0 { state.data.append(contentsOf: buffer[0..<count]); continue }
                    if count < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) { return true }
                    close(state.fd)
                    state.ended = true
                    return false
                }
            }
        }

        /// Closes the read end (the reader is done with it); what was read stays.
        func finish() {
            state.withLock { state in
                guard !state.ended else { return }
                close(state.fd)
                state.ended = true
            }
        }
    }

    /// glibc's `posix_spawn_file_actions_addclosefrom_np` (2.34 on), which its Swift module does
    /// not declare; nil where the C library has none (the close-on-exec pipes still hold then).
    private static let addCloseFrom: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32)? =
        dlsym(nil, "posix_spawn_file_actions_addclosefrom_np").map { unsafeBitCast($0, to: (@convention(c) (
            UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32).self) }

    /// Held from a spawn's pipe() to its posix_spawn (see `init`).
    private static let spawning = NSLock()

    private let output: Collected?
    private let errors: Collected?
    /// Set when the test lets go of the child: the reader thread stops even if some other process
    /// still holds a write end open.
    private let stopReading = Atomic<Bool>(false)

    init(_ binary: URL, _ arguments: [String], stdout: Output = .pipe, stderr: Output = .pipe) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        // Both ends of each pipe are close-on-exec, so a child another test spawns meanwhile
        // inherits neither: with Foundation's Process it inherited our write ends and held a pipe
        // open long after this child exited. The dup2 onto 1 and 2 below gives this child its
        // copies without the flag. (Glibc's module has no pipe2: pipe() then FD_CLOEXEC, with
        // every spawn of this process under `spawning`, so no spawn falls between the two.)
        var parentEnds: [Int32] = []
        var childEnds: [Int32] = []
        defer { for fd in childEnds { close(fd) } }
        func wire(_ target: Int32, _ output: Output) throws -> Int32? {
            switch output {
            case .file(let path):
                posix_spawn_file_actions_addopen(&actions, target, path, O_WRONLY, 0)
                return nil
            case .pipe:
                var fds: [Int32] = [-1, -1]
                guard pipe(&fds) == 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
                for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
                parentEnds.append(fds[0])
                childEnds.append(fds[1])
                posix_spawn_file_actions_adddup2(&actions, fds[1], target)
                return fds[0]
            }
        }
        Self.spawning.lock()
        defer { Self.spawning.unlock() }
        let outFD: Int32?, errFD: Int32?
        do {
            outFD = try wire(1, stdout)
            errFD = try wire(2, stderr)
        } catch {
            for fd in parentEnds { close(fd) }
            throw error
        }
        // Nor does it inherit any other test's descriptor that lacks close-on-exec (a raw client
        // socket kept open in a child would hide "the client left" from a server under test).
        // After the dup2s above: the actions run in order, and this closes the pipes' originals.
        if let closeFrom = Self.addCloseFrom { _ = closeFrom(&actions, 3) }

        // The child starts with no signal blocked and every signal at its default, whatever this
        // thread blocks or the test process ignores (SIGPIPE): `xds serve` is signalled in tests.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        var allSignals = sigset_t()
        sigfillset(&allSignals)
        sigdelset(&allSignals, SIGKILL)
        sigdelset(&allSignals, SIGSTOP)
        posix_spawnattr_setsigdefault(&attributes, &allSignals)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        let argv: [UnsafeMutablePointer<CChar>?] = ([binary.path] + arguments).map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, binary.path, &actions, &attributes, argv, environ)
        guard rc == 0 else {
            for fd in parentEnds { close(fd) }
            throw POSIXError(POSIXErrorCode(rawValue: rc) ?? .EIO)
        }
        process = SpawnedProcess(processIdentifier: pid)
        output = outFD.map(Collected.init(fd:))
        errors = errFD.map(Collected.init(fd:))
        // A plain thread (not dispatch) drains both pipes as the child writes, so a child that
        // writes more than a pipe holds never blocks on a full pipe.
        let pipes = [output, errors].compactMap { $0 }
        guard !pipes.isEmpty else { return }
        let stop = StopFlag(self)
        Thread.detachNewThread { Self.readPipes(pipes, until: stop) }
    }

    /// Lets the reader see the test let go of the child without keeping the child alive itself.
    private final class StopFlag: Sendable {
        private weak let child: ChildProcess?
        init(_ child: ChildProcess) { self.child = child }
        var isSet: Bool { child?.stopReading.load(ordering: .acquiring) ?? true }
    }

    /// Polls the pipes (50 ms at a time, to notice `stop`) and drains whichever has something,
    /// until every pipe has reached its end or the test let go of the child.
    private static func readPipes(_ pipes: [Collected], until stop: StopFlag) {
        while !stop.isSet {
            var fds = pipes.map { pollfd(fd: $0.fd, events: Int16(POLLIN), revents: 0) }
            if fds.allSatisfy({ $0.fd < 0 }) { return }
            let ready = poll(&fds, nfds_t(fds.count), 50)
            if ready < 0 && errno != EINTR { break }
            for (pipe, polled) in zip(pipes, fds) where polled.fd >= 0 && polled.revents != 0 { pipe.drain() }
        }
        for pipe in pipes { pipe.drain(); pipe.finish() }
    }

    deinit {
        stopReading.store(true, ordering: .releasing)
        kill()
    }

    var stdout: String { output?.text ?? "" }
    var stderr: String { errors?.text ?? "" }

    /// Waits up to `seconds` for the process to exit; returns whether it did. Once it has, what it
    /// wrote is read at once (``waitForOutputEnd(within:)``): a test that read stderr right after
    /// the exit saw it empty on a loaded machine, the reader thread not having run yet.
    func waitForExit(within seconds: Double) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        guard !process.isRunning else { return false }
        waitForOutputEnd(within: 10)
        return true
    }

    /// Reads what the process wrote and the reader has not read yet. Once it has exited that is
    /// all of it (its writes are in the pipes), so this does not wait; before, it reads what is there.
    func waitForOutputEnd(within seconds: Double) {
        output?.drain()
        errors?.drain()
    }

    /// SIGKILL if it still runs, then reaps it (a killed process ends at once), so its status is
    /// known and no zombie is left.
    func kill() {
        guard process.isRunning else { return }
        Glibc.kill(process.processIdentifier, SIGKILL)
        process.reap(block: true)
    }
}
