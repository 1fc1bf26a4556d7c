import Foundation
import Testing

/// The test harness's own child processes (``ChildProcess``): what the process suites rely on.
@Suite(.timeLimit(.minutes(10)), .ownThread("ChildProcessTests"))
struct ChildProcessTests {
    /// A child started while another child's pipes are open inherits none of them (only 0, 1, 2):
    /// with Foundation's `Process` the second child held a descriptor of the first's (`ls` of its
    /// fds printed "0 1 2 35"), so a pipe stayed open after the process that wrote it had exited.
    @Test func aChildInheritsNoOtherChildsPipe() throws {
        let holder = try ChildProcess(URL(fileURLWithPath: "/bin/sleep"), ["30"])
        defer { holder.kill() }
        let lister = try ChildProcess(URL(fileURLWithPath: "/bin/sh"), ["-c", "ls /proc/$$/fd"])
        defer { lister.kill() }
        #expect(lister.waitForExit(within: 60))
        #expect(lister.process.terminationStatus == 0, "\(lister.stderr)")
        #expect(lister.stdout.split(separator: "\n") == ["0", "1", "2"], "\(lister.stdout)")
        #expect(holder.process.isRunning)
    }

    /// An exit and a signal are told apart, as `Process.TerminationReason` tells them.
    @Test func anExitAndASignalAreToldApart() throws {
        let exits = try ChildProcess(URL(fileURLWithPath: "/bin/sh"), ["-c", "echo out; echo err >&2; exit 3"])
        defer { exits.kill() }
        #expect(exits.waitForExit(within: 60))
        #expect(exits.process.terminationReason == .exit && exits.process.terminationStatus == 3)
        #expect(exits.stdout == "out\n" && exits.stderr == "err\n", "\(exits.stdout) \(exits.stderr)")

        let signalled = try ChildProcess(URL(fileURLWithPath: "/bin/sh"), ["-c", "kill -TERM $$"])
        defer { signalled.kill() }
        #expect(signalled.waitForExit(within: 60))
        #expect(signalled.process.terminationReason == .uncaughtSignal && signalled.process.terminationStatus == SIGTERM)

        // A child that does not end by itself is killed and reaped: SIGKILL, not "still running".
        let sleeper = try ChildProcess(URL(fileURLWithPath: "/bin/sleep"), ["30"])
        #expect(!sleeper.waitForExit(within: 0.1))
        sleeper.kill()
        #expect(!sleeper.process.isRunning)
        #expect(sleeper.process.terminationReason == .uncaughtSignal && sleeper.process.terminationStatus == SIGKILL)
    }

    /// A child that writes more than a pipe holds (64 KiB) is read as it writes, so it is never
    /// stuck on a full pipe, and every byte arrives.
    @Test func moreThanAPipeHoldsArrivesWhole() throws {
        let child = try ChildProcess(URL(fileURLWithPath: "/bin/sh"), ["-c", "head -c 300000 /dev/zero | tr '\\0' x"])
        defer { child.kill() }
        #expect(child.waitForExit(within: 60))
        #expect(child.stdout.utf8.count == 300_000 && child.stdout.allSatisfy { $0 == "x" })
    }
}
