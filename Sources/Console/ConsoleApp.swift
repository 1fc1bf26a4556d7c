import Dispatch
import Foundation
import ServingEngine
import Synchronization

/// Set from signal handlers (which may not capture context); the UI loop polls it.
private let stopRequested = Atomic<Bool>(false)
/// True while the UI thread has the terminal in curses mode.
private let terminalActive = Atomic<Bool>(false)
/// SIGTSTP arrived (`kill -TSTP`), or Ctrl-Z was typed (a key in raw mode, ``ConsoleEffect/suspend``): the UI thread hands the terminal
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
        monochrome: Bool = ConsoleOptions.noColor(ProcessInfo.processInfo.environment),
        logPath: String = ConsoleOptions.defaultLogPath
    ) {
        self.themeName = themeName
        self.themesDirectory = themesDirectory
        self.monochrome = monochrome
        self.logPath = logPath
    }

    /// `NO_COLOR` as no-color.org defines it: set and not empty (`NO_COLOR=` leaves colour on).
    public static func noColor(_ environment: [String: String]) -> Bool {
        environment["NO_COLOR"].map { !$0.isEmpty } ?? false
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
    /// What the console says when it has no terminal to draw on.
    public static let noTerminalLine = "xds console: no terminal to draw on (is stdout a tty and TERM set?)"

    /// Whether the console could open its terminal (``NcursesTerminal/isAvailable``), checked
    /// without taking the screen. Callers ask before they start anything a console without a
    /// terminal would leave behind: `console --listen` started the API and printed its admin
    /// token before "no terminal".
    public static var terminalAvailable: Bool { NcursesTerminal.isAvailable }

    public static func run(link: any EngineLink, options: ConsoleOptions = ConsoleOptions()) -> Int32 {
        let log = ConsoleLog(path: options.logPath)
        let directory =
            options.themesDirectory.map { URL(fileURLWithPath: $0) } ?? ThemeCatalog.findDirectory()
        let catalog = ThemeCatalog.load(directory: directory)
        log.write("console start; themes from \(directory?.path ?? "(built-in)")")
        for problem in catalog.problems { log.write("theme skipped: \(problem)") }
        let start = catalog.start(named: options.themeName, noColor: options.monochrome, logPath: log.path)
        if let notice = start.notice { log.write(notice) }
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
        let themes = start.themes
        let monochrome = start.monochrome
        let initialTheme = start.index
        // A theme that could not be used says so on screen (it went only to the log, and
        // `--theme solarized` quietly showed the dark theme).
        let startup = (options.confirmDestructive, options.scenario, start.notice.map { ($0, true) } ?? options.startHint.map { ($0, false) })
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
                    NcursesTerminal.restoreFromAnotherThread()
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
    ///
    /// With a `fold` (one burst of input, see ``dispatchBurst(_:to:link:log:limit:next:)``),
    /// `pause`/`resume` are held back in it instead of sent; any other command, a preview or
    /// quitting sends the held one first, so the engine sees commands in the order typed.
    public static func dispatch(
        _ message: ConsoleMessage, to state: ConsoleState, link: any EngineLink,
        log: ((String) -> Void)? = nil, fold: PauseFold? = nil
    ) -> ConsoleState {
        var (next, effects) = ConsoleUpdate.update(state, message)
        while !effects.isEmpty {
            let effect = effects.removeFirst()
            if let fold {
                if case .send(let line) = effect, PauseFold.folds(line) {
                    fold.hold(line)
                    continue
                }
                switch effect {
                case .send, .preview, .cancelPreview, .suspend, .quit: next = release(fold, next, link: link, log: log)
                case .queryRequests, .queryRequestDetail: break  // read-only: order does not matter
                }
            }
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
            } else if case .suspend = effect {
                // The UI loop stops at its next turn, the way it does on SIGTSTP.
                suspendRequested.store(true, ordering: .relaxed)
            } else {
                RequestQueryRunner.shared.perform(effect, link: link)
            }
        }
        return next
    }

    /// `pause` and `resume` held back during one burst of input. They only set the engine's
    /// state, so of a run of them only the last matters: 200 space presses read in one loop turn
    /// were 200 round trips to the engine (each publishing a snapshot: 1.2 s in a debug build,
    /// 0.6 s over `--connect`) before the next frame; now they are one. The last is always sent,
    /// even when the run ends where it began: the console's idea of "paused" may lag the engine.
    public final class PauseFold {
        public private(set) var held: String?
        /// Commands replaced by a later one in the same run.
        public private(set) var folded = 0
        public init() {}

        static func folds(_ line: String) -> Bool { line == "pause" || line == "resume" }

        func hold(_ line: String) {
            if held != nil { folded += 1 }
            held = line
        }

        func take() -> (line: String, folded: Int)? {
            defer { (held, folded) = (nil, 0) }
            return held.map { ($0, folded) }
        }
    }

    /// Sends the command held in `fold`, if any, and applies the engine's answer.
    public static func release(
        _ fold: PauseFold, _ state: ConsoleState, link: any EngineLink, log: ((String) -> Void)? = nil
    ) -> ConsoleState {
        guard let (line, folded) = fold.take() else { return state }
        if folded > 0 { log?("\(folded + 1) pause/resume in one burst of keys: only the last, \"\(line)\", is sent") }
        let reply = link.send(commandLine: line)
        log?("command \"\(line)\" → \(reply.accepted ? "accepted" : "rejected"): \(reply.message)")
        return dispatch(.reply(reply, commandLine: line), to: state, link: link, log: log)
    }

    /// One loop turn's input: `first`, then whatever `next` has ready (what was already typed or
    /// pasted, key repeat), at most `limit` more, before the frame is drawn. Pause/resume runs
    /// are folded (``PauseFold``); everything else acts exactly as if dispatched one by one.
    public static func dispatchBurst(
        _ first: ConsoleMessage, to state: ConsoleState, link: any EngineLink, log: ((String) -> Void)? = nil,
        limit: Int = 64, next: () -> ConsoleMessage?
    ) -> ConsoleState {
        let fold = PauseFold()
        var s = dispatch(first, to: state, link: link, log: log, fold: fold)
        var burst = 0
        while burst < limit, !s.quitting, let more = next() {
            s = dispatch(more, to: s, link: link, log: log, fold: fold)
            burst += 1
        }
        return release(fold, s, link: link, log: log)
    }

    private static func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

    private static func uiLoop(
        link: any EngineLink, themes: [Theme], themeIndex: Int, monochrome: Bool,
        log: ConsoleLog, startup: (confirm: Bool, scenario: Scenario?, hint: (text: String, isError: Bool)?)
    ) -> Int32 {
        guard let terminal = NcursesTerminal(monochrome: monochrome) else {
            // `try?`: `write(_:)` traps when stderr cannot take the line (exit 132, not 1).
            try? FileHandle.standardError.write(
                contentsOf: Data((noTerminalLine + "\n").utf8))
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
        state.canSuspend = JobControl.available()
        state.scenario = startup.scenario
        if let hint = startup.hint { state.status = StatusLine(hint.text, isError: hint.isError, seconds: 20) }
        let monochromeTheme = themes.first(where: \.monochrome) ?? .builtinMono
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
                // The whole process group stops, as the terminal's Ctrl-Z stops a job: a parent
                // in our group (`swift run`, `sh -c '…; …'`) stopped too is what tells the shell
                // its job stopped. Stopping ourselves alone left the shell waiting on a running
                // parent: no prompt, and `fg` typed into a frozen screen. Without job control
                // (no shell to resume the group) only this process stops, for a `kill -CONT`.
                kill(state.canSuspend ? 0 : getpid(), SIGSTOP)
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
                // Take everything already typed before drawing (key repeat, scripted keys).
                state = dispatchBurst(message, to: state, link: link, log: logLine) { terminal.read(timeoutMs: 0) }
                dirty = true
            }
            for message in PreviewRunner.shared.take() + RequestQueryRunner.shared.take() {
                state = dispatch(message, to: state, link: link, log: logLine)
                dirty = true
            }
            state = dispatch(.clock(wallSeconds: Double(now()) / 1e9), to: state, link: link)
            let latest = link.latestSnapshot()
            if latest != snapshot {
                state = dispatch(.tick(latest), to: state, link: link)
                dirty = true
            }
            // Kept even when equal: a republished snapshot with the same contents has new array
            // buffers, and comparing against the old ones walked all of them (384 NPUs, 200
            // requests) ten times a second while paused; the mailbox's own buffers compare by
            // identity.
            snapshot = latest
            let t = now()
            if t &- lastRender >= idleRedraw { dirty = true }
            if dirty && t &- lastRender >= frameInterval && !state.quitting {
                // A terminal without colours gets the mono theme, whichever is picked: its
                // glyphs carry what colours would (the load bands), a colour theme's do not.
                let picked = themes[state.themeIndex % themes.count]
                let theme = terminal.depth == .monochrome && !picked.monochrome ? monochromeTheme : picked
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

/// Whether this process can be stopped and resumed by the shell that started it.
enum JobControl {
    /// A stopped process comes back only on SIGCONT, which a job-control shell sends on `fg`. The
    /// process group has such a shell when some ancestor in the same session sits in another
    /// process group (the shell leads its own): up the parents while they share our group (a
    /// `swift run` in front of us does), then look. Run straight by tmux, a script's `setsid` or
    /// a service manager, the first parent outside our group is in another session (or there is
    /// none): POSIX calls the group orphaned, and a stop there lasts for ever.
    static func available() -> Bool {
        let group = getpgrp(), session = getsid(0)
        var pid = getpid()
        for _ in 0..<16 {
            let parent = pid == getpid() ? getppid() : parentOf(pid)
            guard parent > 1 else { return false }
            let parentGroup = getpgid(parent), parentSession = getsid(parent)
            guard parentGroup >= 0, parentSession >= 0, parentSession == session else { return false }
            if parentGroup != group { return true }
            pid = parent
        }
        return false
    }

    /// The parent of `pid`, from `/proc/PID/stat` (its fourth field, after the parenthesised name,
    /// which may itself hold blanks and parentheses); 0 when it cannot be read.
    static func parentOf(_ pid: pid_t) -> pid_t {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")")
        else { return 0 }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        return fields.count > 1 ? pid_t(fields[1]) ?? 0 : 0
    }
}
