import Foundation
import Testing

/// Where `serve` and `console` listen or connect, as a user types it: ports, the terminal check
/// before anything starts, `--connect` URLs and the read timeouts' forms.
@Suite(.serialized, .timeLimit(.minutes(10)), .enabled(if: BuiltBinary.xds != nil, "needs the built xds binary"))
struct ListenInputProcessTests {
    static let tiny = ServeProcessTests.tiny

    /// Runs `xds arguments` with stdin /dev/null; at most 20 s, then killed (a server that
    /// started where it should have refused does not end by itself). Exit status (nil: still
    /// running at the deadline), stdout, stderr.
    func refusal(_ arguments: [String]) async throws -> (status: Int32?, out: String, err: String) {
        let child = try ChildProcess(try #require(BuiltBinary.xds), arguments)
        defer { child.kill() }
        let exited = child.waitForExit(within: 20)
        // The pipe's reader thread may not have caught up with a process that exited at once.
        let read = Date().addingTimeInterval(10)
        while exited && child.stderr.isEmpty && Date() < read { try await Task.sleep(for: .milliseconds(20)) }
        return (exited ? child.process.terminationStatus : nil, child.stdout, child.stderr)
    }

    /// `serve --port -0` and `console --listen [::1]:-0` were read as port 0 and bound a random
    /// port; `--port +80`, `80.0` and `8e1` bound port 80. A port is written in digits: anything
    /// else is refused in one line naming the flag, and nothing starts.
    @Test func aPortWrittenWithASignPointOrExponentIsRefused() async throws {
        for value in ["-0", "+0", "+8000", "80.0", "8e1", "-0.0"] {
            let r = try await refusal(["serve", "--port", value, "--admin-token", "t", "--deployment", Self.tiny])
            #expect(r.status == 1 && r.out.isEmpty, "--port \(value): \(r)")
            #expect(r.err == "xds: --port must be a whole number between 0 and 65535 written in digits, got '\(value)'\n",
                    "--port \(value): \(r.err)")
        }
        for address in ["127.0.0.1:-0", "[::1]:-0", "127.0.0.1:+80", "[::1]:+0", "127.0.0.1: 80"] {
            let r = try await refusal(["console", "--listen", address, "--token", "t", "--deployment", Self.tiny])
            #expect(r.status == 1 && r.out.isEmpty, "--listen \(address): \(r)")
            let port = String(address[address.index(after: address.lastIndex(of: ":")!)...])
            #expect(r.err == "xds: --listen: the port must be a whole number between 0 and 65535 written in digits, "
                + "got '\(port)'\n", "--listen \(address): \(r.err)")
        }
        // Out of range keeps its message (port 0 in digits is still taken: startServe binds it).
        let far = try await refusal(["serve", "--port", "-1", "--deployment", Self.tiny])
        #expect(far.err == "xds: --port must be a whole number between 0 and 65535, got -1\n", "\(far.err)")
    }

    /// `console --listen 127.0.0.1:0 </dev/null` started the API, printed "API on …, admin token
    /// T" and only then said there was no terminal: a server was up (and its token out) for a
    /// console that could never run. The terminal is checked first: one line, nothing started.
    @Test func noTerminalIsSaidBeforeTheAPIStarts() async throws {
        for extra in [["--listen", "127.0.0.1:0"], ["--listen", "127.0.0.1:0", "--token", "t"], []] {
            let r = try await refusal(["console", "--deployment", Self.tiny, "--rate", "1"] + extra)
            #expect(r.status == 1 && r.out.isEmpty, "\(extra): \(r)")
            #expect(r.err == "xds console: no terminal to draw on (is stdout a tty and TERM set?)\n", "\(extra): \(r.err)")
        }
    }
}
