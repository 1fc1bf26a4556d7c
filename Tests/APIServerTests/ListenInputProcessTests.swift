import Foundation
import Testing

/// Where `serve` and `console` listen or connect, as a user types it: ports, the terminal check
/// before anything starts, `--connect` URLs and the read timeouts' forms.
@Suite(.serialized, .timeLimit(.minutes(10)), .ownThread("ListenInputProcessTests"),
       .enabled(if: BuiltBinary.xds != nil, "needs the built xds binary"))
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

    /// `serve --port 0080` bound port 80 (and `console --listen 127.0.0.1:0080` too): a port
    /// written with leading zeros reads as octal to some tools (0080 is no octal number, 010 is
    /// 8), so which port was meant is a guess. Refused in one line naming the flag; plain `0`
    /// (a free port) is still taken.
    @Test func aPortWithLeadingZerosIsRefused() async throws {
        for value in ["0080", "00", "08000", "065535"] {
            let r = try await refusal(["serve", "--port", value, "--admin-token", "t", "--deployment", Self.tiny])
            #expect(r.status == 1 && r.out.isEmpty, "--port \(value): \(r)")
            #expect(r.err == "xds: --port must be a whole number between 0 and 65535 written in digits with no leading zero, "
                + "got '\(value)'\n", "--port \(value): \(r.err)")
        }
        for address in ["127.0.0.1:0080", "[::1]:00"] {
            let r = try await refusal(["console", "--listen", address, "--token", "t", "--deployment", Self.tiny])
            #expect(r.status == 1 && r.out.isEmpty, "--listen \(address): \(r)")
            let port = String(address[address.index(after: address.lastIndex(of: ":")!)...])
            #expect(r.err == "xds: --listen: the port must be a whole number between 0 and 65535 written in digits "
                + "with no leading zero, got '\(port)'\n", "--listen \(address): \(r.err)")
        }
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

    /// `console --connect http://127.0.0.1:8000/v1?x=1#f` was taken: the path, query and
    /// fragment were appended to or dropped from every admin request, and the console showed a
    /// link that could not connect ("not found"). xds serve answers at the root: the URL is the
    /// server's address only, and anything more is refused in one line.
    @Test func aConnectURLWithMoreThanTheServersAddressIsRefused() async throws {
        for url in ["http://127.0.0.1:8000/v1", "http://127.0.0.1:8000/admin/", "http://127.0.0.1:8000?token=x",
                    "http://127.0.0.1:8000/#top", "http://user:pw@127.0.0.1:8000", "http://127.0.0.1:8000/?"] {
            let r = try await refusal(["console", "--connect", url, "--token", "t"])
            #expect(r.status == 1 && r.out.isEmpty, "\(url): \(r)")
            #expect(r.err == "xds: --connect: expected the server's address only, like http://127.0.0.1:8000 "
                + "(xds serve answers at the root: no path, query, fragment or user), got '\(url)'\n", "\(url): \(r.err)")
        }
        // The address alone, with or without the last slash, gets as far as the terminal.
        for url in ["http://127.0.0.1:9", "http://127.0.0.1:9/", "HTTP://[::1]:9"] {
            let r = try await refusal(["console", "--connect", url, "--token", "t"])
            #expect(r.status == 1 && r.err == "xds console: no terminal to draw on (is stdout a tty and TERM set?)\n",
                    "\(url): \(r.err)")
        }
    }

    /// `console --connect http://:8000` (no host) was taken: Foundation reads the host as "", not
    /// absent, and the console retried a link to nowhere. Refused with the malformed URL's line.
    @Test func aConnectURLWithAnEmptyHostIsRefused() async throws {
        for url in ["http://:8000", "http://:8000/", "http://"] {
            let r = try await refusal(["console", "--connect", url, "--token", "t"])
            #expect(r.status == 1 && r.out.isEmpty, "\(url): \(r)")
            #expect(r.err == "xds: --connect: expected a plain-HTTP URL like http://127.0.0.1:8000 (port 1…65535), got '\(url)'\n",
                    "\(url): \(r.err)")
        }
    }

    /// `serve --header-timeout 10s` was refused as "must be a number", where every other time
    /// flag (`--duration 10m`, preview durations) takes a unit. The timeouts take both plain
    /// seconds, as documented, and a time with a unit; the range is the same.
    @Test func readTimeoutsTakeATimeWithAUnit() async throws {
        for (flag, value) in [("--header-timeout", "3601s"), ("--body-timeout", "50ms"), ("--keep-alive-timeout", "2h"),
                              ("--header-timeout", "1h1h"), ("--body-timeout", "10 s"), ("--keep-alive-timeout", "-5s")] {
            let r = try await refusal(["serve", "--port", "0", "--deployment", Self.tiny, flag, value])
            #expect(r.status == 1 && r.out.isEmpty, "\(flag) \(value): \(r)")
            #expect(r.err.split(separator: "\n").count == 1 && r.err.hasPrefix("xds: \(flag) must be")
                && r.err.contains("between 0.1 and 3600 s"), "\(flag) \(value): \(r.err)")
        }
        let child = try ChildProcess(try #require(BuiltBinary.xds),
                                     ["serve", "--port", "0", "--admin-token", "t", "--deployment", Self.tiny,
                                      "--header-timeout", "10s", "--body-timeout", "1m", "--keep-alive-timeout", "1500ms"])
        defer { child.kill() }
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline && child.process.isRunning && !child.stdout.contains("http://") {
            try await Task.sleep(for: .milliseconds(50))
        }
        let banner = try #require(child.stdout.range(of: #"127\.0\.0\.1:[0-9]+"#, options: .regularExpression),
                                  "\(child.stdout) \(child.stderr)")
        let port = try #require(Int(child.stdout[banner].split(separator: ":")[1]))
        // 1500ms reached the server: an idle kept-alive connection is closed about 1.5 s after its answer.
        let (text, closed, waited) = try await ServeProcessTests.idleClose(port: port)
        #expect(closed && text.hasPrefix("HTTP/1.1 200"), "\(text)")
        #expect(waited >= 1.4 && waited < 10, "closed \(waited) s after the answer, not 1.5 s")
        let help = try runBuiltXDS(["serve", "--help"])
        // Each timeout's help names both forms (words rejoined: the help is wrapped to the width).
        let words = help.out.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        for flag in ["--header-timeout", "--body-timeout", "--keep-alive-timeout"] {
            let from = try #require(words.range(of: flag + " <"), "\(flag): \(words)")
            #expect(words[from.upperBound...].prefix(220).contains("plain seconds or a time like 10s"), "\(flag): \(words)")
        }
    }
}
