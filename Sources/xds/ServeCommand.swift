import APIServer
import ArgumentParser
import EngineRuntime
import Foundation
import PodModel
import ServingEngine
import Synchronization

struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Headless engine paced in real time, with the OpenAI-compatible API, /metrics and the admin API.",
        discussion: "Admin token: --admin-token, else XDS_ADMIN_TOKEN, else a random one printed once. Binds to 127.0.0.1 unless --host says otherwise.")

    @OptionGroup var common: CommonOptions
    @Option(help: "Address to bind.") var host: String = "127.0.0.1"
    @Option(help: "Port (0 picks a free one, printed at start).") var port: Int = 8000
    @Option(help: "Bearer token for /admin.") var adminToken: String?
    @Option(help: "Simulated seconds per wall second, or max.") var speed: String = "1"

    func run() throws {
        guard (0...65_535).contains(port) else { throw ConfigError("--port must be within 0…65535, got \(port)") }
        let pace = try parseSpeed(speed)
        // Only HTTP traffic unless --rate or --workload asks for background load.
        let config = try common.engineConfiguration(defaultRate: 0)
        let engine = try ServingEngine(configuration: config)
        let host = EngineHost(core: engine, speed: pace, scenario: try common.loadScenario(),
                              capabilities: [.drain, .speed, .rebalance, .faults])
        let token = adminToken ?? ProcessInfo.processInfo.environment["XDS_ADMIN_TOKEN"] ?? AdminToken.generate()
        let tokenWasGenerated = adminToken == nil && ProcessInfo.processInfo.environment["XDS_ADMIN_TOKEN"] == nil
        host.start()
        defer { host.stop() }
        let server = APIServer(configuration: .init(host: self.host, port: port, adminToken: token), link: host, backend: host)
        _ = server.bootstrapMetricsSystem()
        let bindHost = self.host
        try runUntilSignal {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await server.run() }
                let bound = try await server.boundPort()
                var banner = "xds serve: \(config.deployment.name) · \(host.modelName) on http://\(bindHost):\(bound)  (Ctrl-C stops)\n"
                if tokenWasGenerated { banner += "admin token: \(token)\n" }
                // Unbuffered, so a script reading the port sees it at once.
                FileHandle.standardOutput.write(Data(banner.utf8))
                try await group.next()
            }
        }
    }
}

func parseSpeed(_ text: String) throws -> Double? {
    if text == "max" { return nil }
    guard let s = Double(text), s > 0, s.isFinite else {
        throw ConfigError("--speed: expected 'max' or a positive number, got '\(text)'")
    }
    return s
}

/// Runs `body` until it ends or SIGINT/SIGTERM arrives (then cancels it and returns normally).
func runUntilSignal(_ body: @escaping @Sendable () async throws -> Void) throws {
    let failure = Mutex<Error?>(nil)
    let done = DispatchSemaphore(value: 0)
    let task = Task {
        do { try await body() } catch is CancellationError {} catch { failure.withLock { $0 = error } }
        done.signal()
    }
    signal(SIGINT, SIG_IGN)
    signal(SIGTERM, SIG_IGN)
    let sources = [SIGINT, SIGTERM].map { sig in
        let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
        source.setEventHandler { task.cancel() }
        source.resume()
        return source
    }
    done.wait()
    sources.forEach { $0.cancel() }
    if let error = failure.withLock({ $0 }) {
        throw ConfigError("server stopped: \(error)")
    }
}
