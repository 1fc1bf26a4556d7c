import APIServer
import ArgumentParser
import EngineRuntime
import Foundation
import PodModel
import ServingEngine
import Synchronization

struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Headless engine paced in real time, with the OpenAI-compatible API, /metrics and the admin API.",
        discussion: "Admin token: --admin-token, else XDS_ADMIN_TOKEN, else a random one printed once. Binds to 127.0.0.1 unless --host says otherwise.")

    @OptionGroup var common: CommonOptions
    @Option(help: "Address to bind.") var host: String = "127.0.0.1"
    @Option(parsing: .unconditional, help: "Port (0 picks a free one, printed at start), \(FlagLimits.port.allowed).")
    var port: CLINumber = 8000
    @Option(help: "Bearer token for /admin.") var adminToken: String?
    @Option(parsing: .unconditional, help: "Simulated seconds per wall second (\(FlagLimits.speed.allowed)), or max.")
    var speed: String = "1"
    @Option(parsing: .unconditional,
            help: "Seconds a request head may take to arrive whole, else 408; \(FlagLimits.headerTimeout.allowed) (plain seconds or a time like 10s).")
    var headerTimeout: CLINumber = 60
    @Option(parsing: .unconditional,
            help: "Seconds a request body may go without new bytes, else 408; \(FlagLimits.bodyTimeout.allowed) (plain seconds or a time like 10s).")
    var bodyTimeout: CLINumber = 60
    @Option(parsing: .unconditional,
            help: "Seconds an idle kept-alive connection stays open, \(FlagLimits.keepAliveTimeout.allowed) (plain seconds or a time like 10s).")
    var keepAliveTimeout: CLINumber = 75

    func run() throws {
        let port = try FlagLimits.portValue(port)
        let readTimeouts = APIServer.ReadTimeouts(
            header: .seconds(try FlagLimits.headerTimeout.seconds(headerTimeout)),
            body: .seconds(try FlagLimits.bodyTimeout.seconds(bodyTimeout)),
            keepAlive: .seconds(try FlagLimits.keepAliveTimeout.seconds(keepAliveTimeout)))
        let bindHost = try parseBindHost(host, option: "--host")
        let pace = try FlagLimits.pace(speed)
        let (token, tokenWasGenerated) = try AdminToken.resolve(
            flag: adminToken, environment: ProcessInfo.processInfo.environment["XDS_ADMIN_TOKEN"])
        // Only HTTP traffic unless --rate or --workload asks for background load.
        let config = try common.engineConfiguration(defaultRate: 0)
        let engine = try common.makeEngine(config)
        // Every request that leaves the engine (HTTP or background load) feeds the vllm: metrics.
        let finished = EngineFeed()
        finished.observe(engine)
        let host = EngineHost(core: engine, speed: pace, scenario: try common.loadScenario(for: config.deployment),
                              capabilities: [.drain, .speed, .rebalance, .faults])
        // Read before the engine thread starts (it owns the engine from then on).
        if let note = engine.autoscalerNote { StandardError.write(Data("xds serve: \(note)\n".utf8)) }
        host.start()
        let server = APIServer(configuration: .init(host: bindHost, port: port, adminToken: token,
                                                      maxModelLen: try config.deployment.modelSpec().contextWindow,
                                                      readTimeouts: readTimeouts), link: host, backend: host,
                               engineFeed: finished)
        _ = server.bootstrapMetricsSystem()
        do {
            try runUntilSignal(name: "xds serve") {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask { try await server.run() }
                    let bound: Int
                    do { bound = try await server.boundPort() } catch {
                        // The run's own error says why (a port in use); boundPort's only that it ended.
                        try await group.next()
                        throw error
                    }
                    // Once the server listens, as the console says it: said before, it came before
                    // each refusal (`--host 0.0.0.0 --rate -1`, or `--host 10.255.255.1`, an address
                    // of no interface here, were two lines: "listening on …" and the error, with
                    // nothing listening).
                    if let warning = exposureWarning(host: bindHost) { StandardError.write(Data("xds serve: \(warning)\n".utf8)) }
                    var banner = "xds serve: \(config.deployment.name) · \(host.modelName) on \(httpURL(host: bindHost, port: bound))  (Ctrl-C stops)\n"
                    if tokenWasGenerated { banner += "admin token: \(token)\n" }
                    // Flushed at once, so a script reading the port sees it; and checked: on a full
                    // disk `FileHandle.write` trapped ("Fatal error", a stack trace, exit 132).
                    print(banner, terminator: "")
                    try ReportOutput.flush(what: "the banner")
                    try await group.next()
                }
            }
        } catch let error as ServerFailure {
            stopEngine(host, name: "xds serve")
            // The banner stdout did not take is said as such, not as "could not serve".
            if let said = error.underlying as? ConfigError { throw said }
            throw ConfigError(error.describe(url: httpURL(host: bindHost, port: port)))
        }
        stopEngine(host, name: "xds serve")
    }
}

/// An address to bind: `[::1]` is taken as `::1`; empty is refused. An IP literal must be one
/// (`999.1.1.1` and `127.0.0.1:80`, a port in the address, were handed to the resolver and
/// failed as "could not listen there"); a name (`localhost`) is left to the resolver.
func parseBindHost(_ text: String, option: String) throws -> String {
    var host = text.trimmingCharacters(in: .whitespaces)
    if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
    let problem = ConfigError("\(option): expected an address like 127.0.0.1, ::1 or 0.0.0.0 (the port is a "
        + "separate option), got \(InputEcho.quoted(text))")
    guard !host.isEmpty, !host.contains(where: { $0.isWhitespace || $0 == "/" || $0 == "[" || $0 == "]" }) else {
        throw problem
    }
    var address = in6_addr()
    if host.contains(":") {
        guard inet_pton(AF_INET6, host, &address) == 1 else { throw problem }
    } else if host.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == ".") }) {
        guard inet_pton(AF_INET, host, &address) == 1 else { throw problem }
    }
    return host
}

/// `http://HOST:PORT`, with an IPv6 address in brackets (`http://[::1]:8000`).
func httpURL(host: String, port: Int) -> String {
    host.contains(":") ? "http://[\(host)]:\(port)" : "http://\(host):\(port)"
}

/// Whether an address is only reachable from this machine.
func isLoopback(_ host: String) -> Bool {
    let h = host.lowercased()
    return h == "localhost" || h == "::1" || h == "0:0:0:0:0:0:0:1" || h.hasPrefix("127.")
        || h.hasPrefix("::ffff:127.")
}

/// The one-line warning for an address other machines can reach (nil on loopback).
func exposureWarning(host: String) -> String? {
    guard !isLoopback(host) else { return nil }
    return "warning: listening on \(host), reachable from other machines; the OpenAI API (/v1/*) and /metrics "
        + "have no authentication (only /admin needs the token)"
}

/// Stops the engine thread with a bound; if it is stuck inside a step, says so and exits anyway.
func stopEngine(_ host: EngineHost, name: String, timeout: Double = 2) {
    guard host.stop(timeout: timeout) else {
        StandardError.write(Data(
            "\(name): the engine thread did not stop within \(Pacer.format(timeout)) s (stuck inside a step); exiting anyway\n".utf8))
        exit(1)
    }
}

/// The HTTP server ended with an error (it could not bind, most often).
struct ServerFailure: Error {
    var underlying: any Error

    /// One line for the operator, without Swift or NIO error dumps.
    func describe(url: String) -> String {
        let text = String(describing: underlying)
        let known: [(String, String)] = [
            ("Address already in use", "the port is already in use"),
            ("Cannot assign requested address", "the address is not one of this machine's"),
            ("Permission denied", "permission denied (ports below 1024 need privileges)"),
            ("Name or service not known", "the host name does not resolve"),
            ("No address associated", "the host name does not resolve"),
            ("Address family not supported", "this machine does not support that address family"),
        ]
        let why = known.first { text.contains($0.0) }?.1 ?? "the server could not listen there"
        return "could not serve on \(url): \(why)"
    }
}

/// Starts `server` and waits until it listens: the serving task and the bound port, or
/// ``ServerFailure`` with the server's own error (a port in use) if it could not listen. Before,
/// `xds console --listen` started the server unawaited with its error dropped: on a port taken by
/// another process it printed "API on http://…" and ran without an API, while clients of that URL
/// reached the other process; with port 0 it printed port 0.
func startListening(_ server: APIServer) throws -> (task: Task<Void, Never>, port: Int) {
    final class Outcome: Sendable {
        let runFailure = Mutex<(any Error)?>(nil)
        let listening = Mutex<Result<Int, any Error>?>(nil)
        let settled = DispatchSemaphore(value: 0)
    }
    let outcome = Outcome()
    let task = Task {
        do { try await server.run() } catch { outcome.runFailure.withLock { $0 = error } }
    }
    Task {
        do {
            let port = try await server.boundPort()
            outcome.listening.withLock { $0 = .success(port) }
        } catch {
            await task.value  // the run's error is stored by then
            let failure = outcome.runFailure.withLock { $0 } ?? error
            outcome.listening.withLock { $0 = .failure(failure) }
        }
        outcome.settled.signal()
    }
    outcome.settled.wait()
    switch outcome.listening.withLock({ $0 }) {
    case .success(let port): return (task, port)
    case .failure(let error): throw ServerFailure(underlying: error)
    case nil: throw ServerFailure(underlying: CancellationError())
    }
}

/// Runs `body` until it ends or SIGINT/SIGTERM arrives. On the first signal the body is cancelled
/// and given `grace` seconds to wind down (open connections close); after that, or at a second
/// signal, this returns anyway so the caller can stop the engine (with a bound) and exit. A body
/// that fails on its own throws ``ServerFailure``.
func runUntilSignal(name: String, grace: Double = 3, _ body: @escaping @Sendable () async throws -> Void) throws {
    let failure = Mutex<(any Error)?>(nil)
    let ended = Atomic<Bool>(false)
    let wake = DispatchSemaphore(value: 0)
    let running = Mutex<Task<Void, Never>?>(nil)
    let signals = Atomic<Int>(0)
    // Handlers first: the body prints the banner, and a script may signal as soon as it reads it.
    signal(SIGINT, SIG_IGN)
    signal(SIGTERM, SIG_IGN)
    let sources = [SIGINT, SIGTERM].map { sig in
        let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
        source.setEventHandler {
            signals.add(1, ordering: .relaxed)
            running.withLock { $0 }?.cancel()
            wake.signal()
        }
        source.resume()
        return source
    }
    let task = Task {
        do { try await body() } catch is CancellationError {} catch { failure.withLock { $0 = error } }
        ended.store(true, ordering: .releasing)
        wake.signal()
    }
    running.withLock { $0 = task }
    if signals.load(ordering: .relaxed) > 0 { task.cancel() }
    defer {
        sources.forEach { $0.cancel() }
        signal(SIGINT, SIG_DFL)
        signal(SIGTERM, SIG_DFL)
    }
    while !ended.load(ordering: .acquiring) && signals.load(ordering: .relaxed) == 0 { wake.wait() }
    if signals.load(ordering: .relaxed) > 0 {
        // Signalled: wait for the body to end, at most `grace` seconds, and not past a second signal.
        let deadline = DispatchTime.now() + grace
        while !ended.load(ordering: .acquiring) && signals.load(ordering: .relaxed) < 2 && DispatchTime.now() < deadline {
            _ = wake.wait(timeout: min(deadline, .now() + 0.05))
        }
        if !ended.load(ordering: .acquiring) {
            StandardError.write(Data("\(name): open connections did not close in time; exiting\n".utf8))
        }
        return
    }
    if let error = failure.withLock({ $0 }) { throw ServerFailure(underlying: error) }
}
