import APIServer
import ArgumentParser
import Console
import EngineRuntime
import Foundation
import PodModel
import ServingEngine

struct ConsoleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "console",
        abstract: "The operations console over an embedded engine (the default command), or attached to xds serve.")

    @OptionGroup var common: CommonOptions
    @Option(help: "Theme name from themes/ (dark, light, high-contrast, mono).") var theme: String?
    @Option(help: "Simulated seconds per wall second (0.1…1000), or max.") var speed: String = "1"
    @Option(help: "Attach to a running xds serve at this URL instead of embedding an engine.") var connect: String?
    @Option(help: "Admin token for --connect (else XDS_ADMIN_TOKEN).") var token: String?
    @Option(help: "Also serve the HTTP API of the embedded engine on HOST:PORT (e.g. 127.0.0.1:8000).")
    var listen: String?

    func run() throws {
        if let connect { return try attach(to: connect) }
        let pace = try parseSpeed(speed)
        // A moderate built-in load (interfaces.md): about half of superpod's decode capacity.
        let config = try common.engineConfiguration(defaultRate: 40)
        let scenario = try common.loadScenario()
        let listenAt = try listen.map(Self.parseListen)
        let engine = try ServingEngine(configuration: config)
        let host = EngineHost(core: engine, speed: pace, scenario: scenario, capabilities: [.drain, .speed, .rebalance, .faults])
        host.start()
        defer { host.stop() }
        var serverTask: Task<Void, Never>?
        if let (address, port) = listenAt {
            let token = self.token ?? ProcessInfo.processInfo.environment["XDS_ADMIN_TOKEN"] ?? AdminToken.generate()
            let server = APIServer(configuration: .init(host: address, port: port, adminToken: token), link: host, backend: host)
            _ = server.bootstrapMetricsSystem()
            // The token goes to the log file, not the screen the console is about to own.
            FileHandle.standardError.write(Data("xds console: API on http://\(address):\(port), admin token \(token)\n".utf8))
            serverTask = Task { try? await server.run() }
        }
        let status = ConsoleApp.run(link: host, options: ConsoleOptions(themeName: theme))
        serverTask?.cancel()
        if status != 0 { throw ExitCode(status) }
    }

    private func attach(to url: String) throws {
        guard let base = URL(string: url), base.scheme == "http" || base.scheme == "https", base.host != nil else {
            throw ConfigError("--connect: expected a URL like http://127.0.0.1:8000, got '\(url)'")
        }
        guard let token = token ?? ProcessInfo.processInfo.environment["XDS_ADMIN_TOKEN"] else {
            throw ConfigError("--connect needs the server's admin token: --token T or XDS_ADMIN_TOKEN")
        }
        let link = RemoteEngineLink(baseURL: base, token: token)
        link.start()
        defer { link.stop() }
        let status = ConsoleApp.run(link: link, options: ConsoleOptions(themeName: theme))
        if status != 0 { throw ExitCode(status) }
    }

    static func parseListen(_ text: String) throws -> (String, Int) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, let port = Int(parts[1]), (0...65_535).contains(port) else {
            throw ConfigError("--listen: expected HOST:PORT like 127.0.0.1:8000, got '\(text)'")
        }
        return (String(parts[0]), port)
    }
}
