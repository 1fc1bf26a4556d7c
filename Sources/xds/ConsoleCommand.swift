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
    @Option(parsing: .unconditional,
            help: "Simulated seconds per wall second (\(FlagLimits.speed.allowed); the console's +/- keys step 0.1…1000), or max.")
    var speed: String = "1"
    @Option(help: "Attach to a running xds serve at this URL instead of embedding an engine.") var connect: String?
    @Option(help: "Admin token for --connect, or of the API --listen serves (else XDS_ADMIN_TOKEN; with --listen, else a random one, printed).")
    var token: String?
    @Flag(help: "Destructive keys (d drain, f fault) act at once, without asking y/n (for scripted use).")
    var yes = false
    @Option(help: "Also serve the HTTP API of the embedded engine on HOST:PORT (e.g. 127.0.0.1:8000).")
    var listen: String?

    func run() throws {
        // Before the engine, the connection and the terminal: `--theme nope` with no terminal said
        // only "no terminal to draw on", and on one it quietly fell back to another theme.
        try Self.checkTheme(theme)
        if let connect { return try attach(to: connect) }
        // With neither, no admin API is spoken to or served: the token was taken and ignored.
        if token != nil, listen == nil {
            throw ConfigError("--token applies to --connect (the server's admin token) or --listen (the token of the API "
                + "it serves); leave --token out")
        }
        let pace = try FlagLimits.pace(speed)
        // A moderate built-in load on the superpod (interfaces.md); with no --rate and no --scenario
        // the demo below replaces it with rates scaled to the deployment.
        let (config, capacityScale) = try common.engineSetup(defaultRate: 40)
        // No --rate and no --scenario on the synthetic workload: the demo's daily cycle with bursts
        // (DemoLoad), as a scenario of `rate` steps the header names; --rate R keeps R constant.
        // Its rates are scaled by the figure the default rate was (two bench steps, once).
        let demo = common.rate == nil && common.scenario == nil && common.isSyntheticWorkload
        let scenario = demo ? DemoLoad.scenario(scale: capacityScale ?? DemoLoad.scale(for: config.deployment))
            : try common.loadScenario(for: config.deployment)
        let listenAt = try listen.map(Self.parseListen)
        let token = try listenAt.map { _ in
            try AdminToken.resolve(flag: self.token, environment: ProcessInfo.processInfo.environment["XDS_ADMIN_TOKEN"],
                                   flagName: "--token").token
        }
        let engine = try common.makeEngine(config)
        // The terminal before anything starts: with none, `--listen` started the API and printed
        // its admin token, then said "no terminal". Every flag is checked by now.
        try Self.requireTerminal()
        let finished = EngineFeed()  // whole-engine vllm: metrics for --listen
        finished.observe(engine)
        // Commands typed at the console wait at most 3 s for a stuck engine (the UI waits with them).
        let host = EngineHost(core: engine, speed: pace, scenario: scenario, capabilities: [.drain, .speed, .rebalance, .faults],
                              bounds: EngineHost.Bounds(command: 3))
        host.start()
        var serverTask: Task<Void, Never>?
        if let (address, port) = listenAt, let token {
            let server = APIServer(configuration: .init(host: address, port: port, adminToken: token,
                                                      maxModelLen: try config.deployment.modelSpec().contextWindow), link: host, backend: host,
                                   engineFeed: finished)
            _ = server.bootstrapMetricsSystem()
            // Listening before the console starts: a port in use ends the run with one line
            // (the engine stopped first), and port 0 is printed as the port it became.
            let listening: (task: Task<Void, Never>, port: Int)
            do { listening = try startListening(server) } catch let error as ServerFailure {
                stopEngine(host, name: "xds console")
                throw ConfigError(error.describe(url: httpURL(host: address, port: port)))
            }
            serverTask = listening.task
            let bound = listening.port
            // The token goes to the log file, not the screen the console is about to own. Once
            // listening: said before, an address of no interface here (`--listen 10.255.255.1:8000`)
            // was two lines, "listening on …" and the error, with nothing listening.
            if let warning = exposureWarning(host: address) {
                StandardError.write(Data("xds console: \(warning)\n".utf8))
            }
            StandardError.write(Data("xds console: API on \(httpURL(host: address, port: bound)), admin token \(token)\n".utf8))
        }
        var options = ConsoleOptions(themeName: theme)
        options.confirmDestructive = !yes
        options.scenario = scenario
        if demo || scenario == nil {
            options.startHint = "try a story: xds console --scenario scenarios/npu-loss.toml (also flapping-link, rolling-drain) · ? help"
        }
        let status = ConsoleApp.run(link: host, options: options)
        serverTask?.cancel()
        // The terminal is restored by now; a stuck engine must not keep the process alive.
        stopEngine(host, name: "xds console")
        if status != 0 { throw ExitCode(status) }
    }

    private func attach(to url: String) throws {
        // Plain http only: xds serve speaks no TLS, and the link's client (NIO, no TLS stack) neither.
        // The port too: `http://127.0.0.1:99999` passed and the console then showed only a link
        // that never connects ("not a usable URL").
        // An empty host (`http://:8000`) is none: Foundation gives "" where no host was written.
        guard let base = URL(string: url), base.scheme?.lowercased() == "http", base.host?.isEmpty == false,
              (1...65_535).contains(base.port ?? 80)
        else {
            throw ConfigError(
                "--connect: expected a plain-HTTP URL like http://127.0.0.1:8000 (port 1…65535), got \(InputEcho.quoted(url))")
        }
        // xds serve answers at the root, and the link adds each /admin path to the URL as given:
        // `http://127.0.0.1:8000/v1?x=1` was taken and the console showed a link that never
        // connected (a path and query before /admin/events). The server's address only.
        let parts = URLComponents(url: base, resolvingAgainstBaseURL: false)
        guard base.path.isEmpty || base.path == "/", parts?.percentEncodedQuery == nil, parts?.percentEncodedFragment == nil,
              parts?.percentEncodedUser == nil, parts?.percentEncodedPassword == nil
        else {
            throw ConfigError("--connect: expected the server's address only, like http://127.0.0.1:8000 "
                + "(xds serve answers at the root: no path, query, fragment or user), got \(InputEcho.quoted(url))")
        }
        // The server's engine runs as `xds serve` set it up: `--connect URL --rate 5` (or
        // --deployment, --scenario, --speed, --listen, …) was taken, exit 0, and did nothing.
        let ignored = Self.embeddedEngineOptions(in: Array(CommandLine.arguments.dropFirst()))
        if !ignored.isEmpty {
            let list = ignored.joined(separator: ", ")
            throw ConfigError("\(list) \(ignored.count == 1 ? "sets" : "set") up the embedded engine; with --connect the console "
                + "shows the server's (give \(ignored.count == 1 ? "it" : "them") to xds serve, or leave --connect out)")
        }
        // An empty token (`--token ''`, `XDS_ADMIN_TOKEN=`) is none: every admin request would be
        // refused and the console would retry for ever, showing only a lost connection.
        guard let token = token ?? ProcessInfo.processInfo.environment["XDS_ADMIN_TOKEN"], !token.isEmpty else {
            throw ConfigError("--connect needs the server's admin token: --token T or XDS_ADMIN_TOKEN (not empty)")
        }
        try Self.requireTerminal()
        let link = RemoteEngineLink(baseURL: base, token: token)
        link.start()
        defer { link.stop() }
        var options = ConsoleOptions(themeName: theme)
        options.confirmDestructive = !yes
        let status = ConsoleApp.run(link: link, options: options)
        if status != 0 { throw ExitCode(status) }
    }

    /// Ends the run with the console's own "no terminal" line (exit 1) when there is none.
    static func requireTerminal() throws {
        guard ConsoleApp.terminalAvailable else {
            StandardError.write(Data((ConsoleApp.noTerminalLine + "\n").utf8))
            throw ExitCode(1)
        }
    }

    /// The options in `arguments` (the command line after `xds`) that only an embedded engine
    /// reads, each once in the order typed: all but --connect, --token, --theme and --yes.
    static func embeddedEngineOptions(in arguments: [String]) -> [String] {
        let attached: Set<String> = ["connect", "token", "theme", "yes", "help", "version"]
        return GivenOptions.names(in: arguments, valued: RunFastPath.valued.union(["theme", "speed", "connect", "token", "listen"]))
            .filter { !attached.contains($0) }.map { "--\($0)" }
    }

    /// `--theme NAME` against the themes the console will find (``ThemeCatalog``, as it loads them):
    /// an unknown name is refused with the names there are; a file of that name that did not load
    /// says why.
    static func checkTheme(_ name: String?) throws {
        guard let name else { return }
        let catalog = ThemeCatalog.load(directory: ThemeCatalog.findDirectory())
        guard catalog.index(named: name) == nil else { return }
        let broken = catalog.problems.first { problem in
            (String(problem.prefix { $0 != ":" }) as NSString).lastPathComponent == name + ".toml"
        }
        throw ConfigError("--theme: no theme named \(InputEcho.quoted(name))"
            + (broken.map { " (its file did not load: \($0))" } ?? "")
            + "; themes: \(catalog.themes.map(\.name).joined(separator: ", "))")
    }

    /// `HOST:PORT`, `[IPv6]:PORT` (e.g. `[::1]:8000`).
    static func parseListen(_ text: String) throws -> (String, Int) {
        let problem = ConfigError("--listen: expected HOST:PORT like 127.0.0.1:8000 or [::1]:8000 (port 0…65535), "
            + "got \(InputEcho.quoted(text))")
        guard let colon = text.lastIndex(of: ":") else { throw problem }
        let hostPart = String(text[..<colon])
        let portText = text[text.index(after: colon)...]
        // A number that is no port as written (`-0`, `+80`, `80.0`, ` 80`) is named as
        // `serve --port` names it: `[::1]:-0` was read as port 0 and bound a random port.
        let digits = "--listen: the port must be a whole number between 0 and 65535 written in digits, got \(InputEcho.quoted(String(portText)))"
        guard let port = Int(portText) else {
            if Double(portText.trimmingCharacters(in: .whitespaces)) != nil { throw ConfigError(digits) }
            throw problem
        }
        // A port out of range is named as `xds serve --port` names it ("expected HOST:PORT" alone
        // did not say what was wrong with 127.0.0.1:70000).
        guard (0...65_535).contains(port) else {
            throw ConfigError("--listen: the port must be a whole number between 0 and 65535, got \(port)")
        }
        guard FlagLimits.isPortDigits(portText) else { throw ConfigError(digits) }
        guard !FlagLimits.hasLeadingZero(portText) else {
            throw ConfigError("--listen: the port \(FlagLimits.leadingZeroRule), got \(InputEcho.quoted(String(portText)))")
        }
        // A bare IPv6 address needs brackets, or its last group would read as the port.
        if hostPart.contains(":") && !hostPart.hasPrefix("[") { throw problem }
        guard let host = try? parseBindHost(hostPart, option: "--listen") else { throw problem }
        return (host, port)
    }
}
