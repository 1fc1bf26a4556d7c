import CNcursesw
import Dispatch
import Foundation
import ServingEngine
import Synchronization

/// Set from signal handlers (which may not capture context); the UI loop polls it.
private let stopRequested = Atomic<Bool>(false)
/// True while the UI thread has the terminal in curses mode.
private let terminalActive = Atomic<Bool>(false)
/// SIGTSTP arrived (`kill -TSTP`; Ctrl-Z is a key in raw mode): the UI thread hands the terminal
/// back (paste mode off, modes restored), stops, and takes it again on SIGCONT.
private let suspendRequested = Atomic<Bool>(false)
/// Set by SIGCONT while the console is suspended.
private let continued = Atomic<Bool>(false)

/// How the console starts: theme, colour and where it logs.
public struct ConsoleOptions: Sendable {
    /// A theme file name from `themes/` (e.g. "light"); `nil` = dark.
    public var themeName: String?
    /// Overrides the `themes/` lookup (see ``ThemeCatalog/findDirectory(cwd:)``).
    public var themesDirectory: String?
    /// Attributes only, no colour. Defaults to whether `NO_COLOR` is set.
    public var monochrome: Bool
    /// The console never writes to the screen it draws on; diagnostics go here.
    public var logPath: String
    /// `false` (`--yes`): destructive keys act at once, without the y/n question.
    public var confirmDestructive = true
    /// The scenario the engine is running, for the header's "scenario: … · next: …" line.
    public var scenario: Scenario?
    /// Shown in the footer at start (e.g. which scenarios exist); fades like any status.
    public var startHint: String?

    public init(
        themeName: String? = nil, themesDirectory: String? = nil,
        monochrome: Bool = ProcessInfo.processInfo.environment["NO_COLOR"] != nil,
        logPath: String = ConsoleOptions.defaultLogPath
    ) {
        self.themeName = themeName
        self.themesDirectory = themesDirectory
        self.monochrome = monochrome
        self.logPath = logPath
    }

    public static var defaultLogPath: String {
        let dir = ProcessInfo.processInfo.environment["TMPDIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
        return (dir as NSString).appendingPathComponent("xds-console.log")
    }
}

/// The operations console: wires an ``EngineLink``, the state machine, the views and the
/// ncurses backend together.
///
/// ```swift
/// let status = ConsoleApp.run(link: engine.link, options: ConsoleOptions(themeName: "light"))
/// exit(status)
/// ```
///
/// All curses calls happen on one dedicated thread (swift-notes.md §1.4); the calling
/// thread waits for it. `q`, Ctrl-C, SIGTERM, SIGINT and SIGHUP all restore the terminal
/// and return 0; 1 means there was no terminal to draw on. If the UI thread does not end within
/// ``quitGraceSeconds`` of a signal (it waits on a command to a stuck engine), the calling
/// thread restores the terminal itself and returns 0, so the process can exit.
public enum ConsoleApp {
    public static func run(link: any EngineLink, options: ConsoleOptions = ConsoleOptions()) -> Int32 {
        let log = ConsoleLog(path: options.logPath)
        let directory =
            options.themesDirectory.map { URL(fileURLWithPath: $0) } ?? ThemeCatalog.findDirectory()
        var catalog = ThemeCatalog.load(directory: directory)
        log.write("console start; themes from \(directory?.path ?? "(built-in)")")
        for problem in catalog.problems { log.write("theme skipped: \(problem)") }
        if options.monochrome {
            catalog.themes = [catalog.themes.first { $0.monochrome } ?? .builtinMono]
        }
        var themeIndex = 0
        if let name = options.themeName {
            if let index = catalog.index(named: name) {
                themeIndex = index
            } else {
                log.write("no theme named \(name); using \(catalog.themes[0].name)")
            }
        }
        stopRequested.store(false, ordering: .relaxed)
        for sig in [SIGTERM, SIGINT, SIGHUP] {
            signal(sig) { _ in stopRequested.store(true, ordering: .relaxed) }
        }
        // Installed before the terminal opens, so ncurses leaves SIGTSTP to us (its own handler
        // would restore its modes but leave bracketed paste on for the shell).
        suspendRequested.store(false, ordering: .relaxed)
        signal(SIGTSTP) { _ in suspendRequested.store(true, ordering: .relaxed) }
        let result = Mutex<Int32>(0)
        let done = DispatchSemaphore(value: 0)
        let themes = catalog.themes
        let monochrome = options.monochrome
        let initialTheme = themeIndex
        let startup = (options.confirmDestructive, options.scenario, options.startHint)
        let thread = Thread {
            let status = uiLoop(
                link: link, themes: themes, themeIndex: initialTheme, monochrome: monochrome, log: log,
                startup: startup)
            result.withLock { $0 = status }
            done.signal()
        }
        thread.name = "xds-console"
        thread.start()
        var signalledAt: UInt64?
        while done.wait(timeout: .now() + .milliseconds(50)) == .timedOut {
            guard stopRequested.load(ordering: .relaxed) else { continue }
            let t = now()
            if signalledAt == nil { signalledAt = t }
            if let since = signalledAt, t &- since > UInt64(quitGraceSeconds * 1e9) {
                // The UI thread is stuck outside curses (a command to a stuck engine): restore the
                // terminal from here; the caller exits the process right after.
                if terminalActive.exchange(false, ordering: .acquiringAndReleasing) {
                    NcursesTerminal.bracketedPaste(false)
                    endwin()
                }
                for sig in [SIGTERM, SIGINT, SIGHUP, SIGTSTP] { signal(sig, SIG_DFL) }
                log.write("console exit 0 (forced: the UI thread did not stop within \(quitGraceSeconds) s)")
                return 0
            }
        }
        for sig in [SIGTERM, SIGINT, SIGHUP, SIGTSTP] { signal(sig, SIG_DFL) }
        let status = result.withLock { $0 }
        log.write("console exit \(status)")
        return status
    }

    /// How long a signal waits for the UI thread before the terminal is restored without it.
    public static let quitGraceSeconds = 2.0

    /// Applies a message, performs its effects against the link and feeds the replies back
    /// in: the whole Elm loop minus the terminal, so tests drive exactly what runs live.
    public static func dispatch(
        _ message: ConsoleMessage, to state: ConsoleState, link: any EngineLink,
        log: ((String) -> Void)? = nil
    ) -> ConsoleState {
        var (next, effects) = ConsoleUpdate.update(state, message)
        while !effects.isEmpty {
            let effect = effects.removeFirst()
            if case .send(let line) = effect {
                let reply = link.send(commandLine: line)
                log?("command \"\(line)\" → \(reply.accepted ? "accepted" : "rejected"): \(reply.message)")
                let (after, more) = ConsoleUpdate.update(next, .reply(reply, commandLine: line))
                next = after
                effects += more
            } else if case .preview(let line) = effect {
                log?("\(line) (computing off the UI thread)")
                PreviewRunner.shared.start(line, link: link)
            } else if case .cancelPreview(let line) = effect {
                log?("\(line) cancelled")
                PreviewRunner.shared.cancel(line)
            } else {
                RequestQueryRunner.shared.perform(effect, link: link)
            }
        }
        return next
    }

    private static func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

    private static func uiLoop(
        link: any EngineLink, themes: [Theme], themeIndex: Int, monochrome: Bool,
        log: ConsoleLog, startup: (confirm: Bool, scenario: Scenario?, hint: String?)
    ) -> Int32 {
        guard let terminal = NcursesTerminal(monochrome: monochrome) else {
            FileHandle.standardError.write(
                Data("xds console: no terminal to draw on (is stdout a tty and TERM set?)\n".utf8))
            return 1
        }
        terminalActive.store(true, ordering: .releasing)
        defer { if terminalActive.exchange(false, ordering: .acquiringAndReleasing) { terminal.shutdown() } }
        let (width, height) = terminal.size
        var state = ConsoleState(width: width, height: height, capabilities: link.capabilities)
        state.themeIndex = themeIndex
        state.logPath = log.path
        state.confirmDestructive = startup.confirm
        state.requestQueries = link is RequestQueryLink
        state.scenario = startup.scenario
        if let hint = startup.hint { state.status = StatusLine(hint, seconds: 20) }
        var snapshot = link.latestSnapshot()
        state = dispatch(.tick(snapshot), to: state, link: link)
        let frameInterval: UInt64 = 100_000_000  // ≤ 10 frames/s
        let idleRedraw: UInt64 = 1_000_000_000
        var lastRender: UInt64 = 0
        var dirty = true
        let logLine: (String) -> Void = { log.write($0) }
        while !state.quitting && !stopRequested.load(ordering: .relaxed) {
            if suspendRequested.exchange(false, ordering: .relaxed) {
                log.write("console suspended (SIGTSTP)")
                terminal.suspend()
                // kill returns before every thread has stopped (the stop is delivered
                // asynchronously), so wait for SIGCONT before taking the terminal back.
                continued.store(false, ordering: .relaxed)
                signal(SIGCONT) { _ in continued.store(true, ordering: .relaxed) }
                kill(getpid(), SIGSTOP)
                while !continued.load(ordering: .relaxed) && !stopRequested.load(ordering: .relaxed) {
                    usleep(10_000)
                }
                signal(SIGCONT, SIG_DFL)
                terminal.resume()
                log.write("console resumed")
                dirty = true
            }
            let sinceRender = now() &- lastRender
            let waitMs =
                dirty && sinceRender < frameInterval ? Int32((frameInterval - sinceRender) / 1_000_000) : 100
            if let message = terminal.read(timeoutMs: max(1, waitMs)) {
                state = dispatch(message, to: state, link: link, log: logLine)
                dirty = true
                // Take everything already typed before drawing (pasted commands, key repeat).
                var burst = 0
                while burst < 64, !state.quitting, let more = terminal.read(timeoutMs: 0) {
                    state = dispatch(more, to: state, link: link, log: logLine)
                    burst += 1
                }
            }
            for message in PreviewRunner.shared.take() + RequestQueryRunner.shared.take() {
                state = dispatch(message, to: state, link: link, log: logLine)
                dirty = true
            }
            state = dispatch(.clock(wallSeconds: Double(now()) / 1e9), to: state, link: link)
            let latest = link.latestSnapshot()
            if latest != snapshot {
                snapshot = latest
                state = dispatch(.tick(latest), to: state, link: link)
                dirty = true
            }
            let t = now()
            if t &- lastRender >= idleRedraw { dirty = true }
            if dirty && t &- lastRender >= frameInterval && !state.quitting {
                let theme = themes[state.themeIndex % themes.count]
                let frame = ConsoleScreen.render(
                    state, snapshot, theme: theme, width: state.width, height: state.height)
                terminal.present(frame, theme: theme)
                lastRender = t
                dirty = false
            }
        }
        return 0
    }
}

/// Appends lines to the console's log file; silently does nothing if it cannot.
final class ConsoleLog: Sendable {
    let path: String
    private let handle: Mutex<FileHandle?>

    init(path: String) {
        self.path = path
        if !FileManager.default.fileExists(atPath: path) {
            _ = FileManager.default.createFile(atPath: path, contents: nil)
        }
        let h = FileHandle(forWritingAtPath: path)
        _ = try? h?.seekToEnd()
        handle = Mutex(h)
    }

    func write(_ line: String) {
        let stamp = ISO8601DateFormatter().string(from: Date())
        handle.withLock { h in
            try? h?.write(contentsOf: Data("\(stamp) \(line)\n".utf8))
        }
    }
}
