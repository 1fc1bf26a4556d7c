import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// What a reader made of one fuzz input: a value, or a typed error with its message.
public enum FuzzOutcome: Sendable {
    case value
    case error(String)
}

/// One input the harness judged wrong, with why.
public struct FuzzFailure: Sendable, CustomStringConvertible {
    public var target: String
    public var input: [UInt8]
    public var problem: String
    public var description: String { "\(target): \(problem); input \(FuzzHarness.literal(input, limit: 300))" }
}

/// What a fuzz run did.
public struct FuzzReport: Sendable {
    public var target: String
    public var inputs = 0
    public var values = 0
    public var errors = 0
    public var seconds = 0.0
    public var slowest = 0.0
    public var failures: [FuzzFailure] = []
}

/// A seeded, bounded fuzz harness for the readers of outside input (deployment TOML, traces,
/// scenarios, the command language, HTTP bodies).
///
/// Each target runs its regression corpus and seeds first, then mutations of them
/// (``FuzzMutator``) until `iterations` inputs or `seconds` of wall time, whichever comes
/// first. Every input must give a value or a typed error whose message is non-empty and one
/// line, within `perInputSeconds`. A trap cannot be caught in-process, so a crash handler
/// prints the input that was running before the process dies, and a watchdog thread ends
/// the process with the input printed if one input runs longer than `hangSeconds` (a hang
/// would otherwise wedge CI).
///
/// Environment: `XDS_FUZZ_SEED` (default 1), `XDS_FUZZ_SECONDS` (wall budget per target;
/// default 0.5 s, raise it for a soak: `XDS_FUZZ_SECONDS=120 swift test --filter Fuzz`),
/// `XDS_FUZZ_ITERATIONS` (cap per target; default 400, or unbounded when
/// `XDS_FUZZ_SECONDS` is set).
///
/// ```swift
/// let report = FuzzHarness.run(target: "command", seeds: ["rate 5"], corpus: []) { bytes in
///     switch OperatorCommand.parse(String(decoding: bytes, as: UTF8.self)) {
///     case .success: .value
///     case .failure(let e): .error(e.message)
///     }
/// }
/// #expect(report.failures.isEmpty)
/// ```
public enum FuzzHarness {
    public struct Configuration: Sendable {
        public var seed: UInt64
        public var iterations: Int
        public var seconds: Double
        public var perInputSeconds: Double
        public var hangSeconds: Double
        public var maxBytes: Int
        /// One mutation in this many is a huge repeat up to `maxBytes`.
        public var hugeEvery: Int
        /// An `XDS_FUZZ_…` variable that was set but not readable, said as one line; each run
        /// reports it as a failure (`XDS_FUZZ_SECONDS=2m` ran the default half second, green).
        public var environmentProblems: [String] = []

        public init(
            seed: UInt64 = 1, iterations: Int = 400, seconds: Double = 0.5, perInputSeconds: Double = 2,
            hangSeconds: Double = 60, maxBytes: Int = 8_192, hugeEvery: Int = 200
        ) {
            self.seed = seed
            self.iterations = iterations
            self.seconds = seconds
            self.perInputSeconds = perInputSeconds
            self.hangSeconds = hangSeconds
            self.maxBytes = maxBytes
            self.hugeEvery = hugeEvery
        }

        /// The defaults, overridden by `XDS_FUZZ_SEED`, `XDS_FUZZ_SECONDS`, `XDS_FUZZ_ITERATIONS`.
        public static func fromEnvironment(
            iterations: Int = 400, seconds: Double = 0.5, maxBytes: Int = 8_192, hugeEvery: Int = 200,
            environment env: [String: String] = ProcessInfo.processInfo.environment
        ) -> Configuration {
            var c = Configuration(iterations: iterations, seconds: seconds, maxBytes: maxBytes, hugeEvery: hugeEvery)
            func refuse(_ name: String, _ expected: String) {
                let text = env[name] ?? ""
                c.environmentProblems.append("\(name) must be \(expected), got '\(text.prefix(40))'; the default was used")
            }
            if let text = env["XDS_FUZZ_SEED"] {
                if let s = UInt64(text) { c.seed = s } else { refuse("XDS_FUZZ_SEED", "a whole number between 0 and \(UInt64.max)") }
            }
            if let text = env["XDS_FUZZ_SECONDS"] {
                // Plain seconds, as the README's `XDS_FUZZ_SECONDS=120`; at most a day.
                if let s = Double(text), s.isFinite, s > 0, s <= 86_400 {
                    c.seconds = s
                    c.iterations = .max
                } else {
                    refuse("XDS_FUZZ_SECONDS", "a number of seconds above 0 and at most 86400")
                }
            }
            if let text = env["XDS_FUZZ_ITERATIONS"] {
                if let n = Int(text), n > 0 { c.iterations = n } else { refuse("XDS_FUZZ_ITERATIONS", "a whole number above 0") }
            }
            return c
        }
    }

    /// Runs `body` over `corpus` (inputs that once failed), `seeds`, then mutations.
    public static func run(
        target: String, seeds: [String], corpus: [String] = [],
        configuration: Configuration = .fromEnvironment(),
        _ body: ([UInt8]) -> FuzzOutcome
    ) -> FuzzReport {
        run(target: target, seedBytes: seeds.map { Array($0.utf8) }, corpusBytes: corpus.map { Array($0.utf8) },
            configuration: configuration, body)
    }

    public static func run(
        target: String, seedBytes: [[UInt8]], corpusBytes: [[UInt8]] = [],
        configuration c: Configuration = .fromEnvironment(),
        _ body: ([UInt8]) -> FuzzOutcome
    ) -> FuzzReport {
        CrashReporter.install()
        let slot = CrashReporter.acquire(target: target)
        defer { CrashReporter.release(slot) }
        let watchdog = Watchdog(target: target, limit: c.hangSeconds)
        defer { watchdog.stop() }

        var report = FuzzReport(target: target)
        for problem in c.environmentProblems {
            report.failures.append(FuzzFailure(target: target, input: [], problem: problem))
        }
        // The target name enters the seed so targets explore differently under one XDS_FUZZ_SEED.
        var mutator = FuzzMutator(seed: c.seed ^ stableHash(target), maxBytes: c.maxBytes, hugeEvery: c.hugeEvery)
        let pool = seedBytes + corpusBytes
        let started = DispatchTime.now().uptimeNanoseconds
        func elapsed() -> Double { Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9 }

        func one(_ input: [UInt8]) {
            CrashReporter.set(slot, input: input)
            watchdog.begin(input)
            let t0 = DispatchTime.now().uptimeNanoseconds
            let outcome = body(input)
            let took = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
            watchdog.end()
            report.inputs += 1
            report.slowest = max(report.slowest, took)
            if took > c.perInputSeconds {
                report.failures.append(FuzzFailure(
                    target: target, input: input, problem: "took \(String(format: "%.2f", took)) s (limit \(c.perInputSeconds) s)"))
            }
            switch outcome {
            case .value: report.values += 1
            case .error(let message):
                report.errors += 1
                if let problem = messageProblem(message) {
                    report.failures.append(FuzzFailure(target: target, input: input, problem: problem))
                }
            }
        }

        // Fixed inputs always run in full, whatever the budget.
        for input in corpusBytes + seedBytes { one(input) }
        var i = 0
        while i < c.iterations, elapsed() < c.seconds {
            let base = pool.isEmpty ? [] : pool[mutator.below(pool.count)]
            one(mutator.mutate(base, corpus: pool))
            i += 1
        }
        report.seconds = elapsed()
        if ProcessInfo.processInfo.environment["XDS_FUZZ_VERBOSE"] != nil {
            print("fuzz \(target): \(report.inputs) inputs (\(report.values) values, \(report.errors) errors) in "
                + "\(String(format: "%.2f", report.seconds)) s, slowest \(String(format: "%.3f", report.slowest)) s, "
                + "\(report.failures.count) failures")
        }
        return report
    }

    /// Why an error message is not acceptable (empty, several lines, raw control characters,
    /// Swift error dumps), or nil.
    public static func messageProblem(_ message: String) -> String? {
        if message.trimmingCharacters(in: .whitespaces).isEmpty { return "empty error message" }
        let shown = literal(Array(message.utf8), limit: 160)
        if message.contains(where: { $0.isNewline }) { return "multi-line error message: \(shown)" }
        if message.unicodeScalars.contains(where: {
            $0.value < 0x20 || (0x7F...0x9F).contains($0.value) || (0x202A...0x202E).contains($0.value)
        }) {
            return "raw control character in error message: \(shown)"
        }
        for leak in ["DecodingError", "EncodingError", "Swift.", "Foundation.", "NSError", "Context(codingPath"]
        where message.contains(leak) {
            return "Swift error text in message: \(shown)"
        }
        if message.utf8.count > 2_000 { return "error message of \(message.utf8.count) bytes" }
        return nil
    }

    /// The input as a Swift string literal (bytes that are not UTF-8 as `\u{FFFD}`), cut at
    /// 600 characters, ready to paste into a regression corpus.
    public static func literal(_ bytes: [UInt8], limit: Int = 600) -> String {
        var out = "\""
        var n = 0
        for scalar in String(decoding: bytes, as: UTF8.self).unicodeScalars {
            if n >= limit {
                out += "…(\(bytes.count) bytes)"
                break
            }
            n += 1
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value) || scalar.value == 0x2028
                    || scalar.value == 0x2029 || (0x202A...0x202E).contains(scalar.value)
                {
                    out += "\\u{\(String(scalar.value, radix: 16, uppercase: true))}"
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }

    /// FNV-1a, stable across runs (Swift's Hasher is seeded per process).
    static func stableHash(_ text: String) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in text.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return h
    }
}

/// Ends the process, naming the input, if one input runs past the hang limit.
private final class Watchdog: @unchecked Sendable {
    private let lock = NSLock()
    private var input: [UInt8]?
    private var since = 0.0
    private var stopped = false

    init(target: String, limit: Double) {
        let thread = Thread { [self] in
            while true {
                Thread.sleep(forTimeInterval: 0.2)
                lock.lock()
                if stopped {
                    lock.unlock()
                    return
                }
                let running = input
                let started = since
                lock.unlock()
                if let running, Self.now() - started > limit {
                    let line = "fuzz \(target): one input ran longer than \(limit) s (a hang); input "
                        + FuzzHarness.literal(running) + "\n"
                    FileHandle.standardError.write(Data(line.utf8))
                    exit(70)
                }
            }
        }
        thread.start()
    }

    static func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }

    func begin(_ bytes: [UInt8]) {
        lock.lock()
        input = bytes
        since = Self.now()
        lock.unlock()
    }

    func end() {
        lock.lock()
        input = nil
        lock.unlock()
    }

    func stop() {
        lock.lock()
        stopped = true
        lock.unlock()
    }
}

/// On a trap (SIGILL, SIGTRAP, SIGABRT, SIGSEGV, SIGBUS) in a thread that is fuzzing, writes
/// that thread's current input to stderr, then lets the previous handler (Swift's
/// backtracer) run. Only async-signal-safe calls (`write`, `sigaction`, `raise`) in the
/// handler; inputs are copied into preallocated C buffers outside it.
private enum CrashReporter {
    static let slotCount = 32
    static let bufferBytes = 4_096

    struct Slot {
        var thread: pthread_t?
        var buffer: UnsafeMutablePointer<UInt8>
        var length: Int
        var header: UnsafeMutablePointer<UInt8>
        var headerLength: Int
    }

    nonisolated(unsafe) static var slots: UnsafeMutablePointer<Slot> = {
        let p = UnsafeMutablePointer<Slot>.allocate(capacity: slotCount)
        for i in 0..<slotCount {
            p[i] = Slot(thread: nil, buffer: .allocate(capacity: bufferBytes), length: 0,
                        header: .allocate(capacity: 256), headerLength: 0)
        }
        return p
    }()
    static let lock = NSLock()
    /// Previous actions, indexed by signal number (no dictionary lookups in a signal handler).
    nonisolated(unsafe) static var previous: UnsafeMutablePointer<sigaction> = .allocate(capacity: 65)
    nonisolated(unsafe) static var hadPrevious: UnsafeMutablePointer<Bool> = {
        let p = UnsafeMutablePointer<Bool>.allocate(capacity: 65)
        p.initialize(repeating: false, count: 65)
        return p
    }()
    nonisolated(unsafe) static var installed = false
    static let signals: [Int32] = [SIGILL, SIGTRAP, SIGABRT, SIGSEGV, SIGBUS]

    static func install() {
        lock.lock()
        defer { lock.unlock() }
        guard !installed else { return }
        installed = true
        _ = slots
        _ = hadPrevious
        for sig in signals {
            var action = sigaction()
            #if canImport(Glibc)
                action.__sigaction_handler.sa_handler = crashHandler
            #else
                action.__sigaction_u.__sa_handler = crashHandler
            #endif
            sigemptyset(&action.sa_mask)
            action.sa_flags = 0
            var old = sigaction()
            if sigaction(sig, &action, &old) == 0 {
                previous[Int(sig)] = old
                hadPrevious[Int(sig)] = true
            }
        }
    }

    static func acquire(target: String) -> Int? {
        lock.lock()
        defer { lock.unlock() }
        for i in 0..<slotCount where slots[i].thread == nil {
            slots[i].thread = pthread_self()
            let header = Array("\nfuzz \(target): the process died on input ".utf8.prefix(255))
            header.withUnsafeBufferPointer { slots[i].header.update(from: $0.baseAddress!, count: header.count) }
            slots[i].headerLength = header.count
            slots[i].length = 0
            return i
        }
        return nil
    }

    static func set(_ slot: Int?, input: [UInt8]) {
        guard let slot else { return }
        let text = Array((FuzzHarness.literal(input, limit: 1_000) + "\n").utf8.prefix(bufferBytes))
        slots[slot].length = 0
        text.withUnsafeBufferPointer { slots[slot].buffer.update(from: $0.baseAddress!, count: text.count) }
        slots[slot].length = text.count
    }

    static func release(_ slot: Int?) {
        guard let slot else { return }
        lock.lock()
        slots[slot].thread = nil
        slots[slot].length = 0
        lock.unlock()
    }
}

private func crashHandler(_ sig: Int32) {
    let me = pthread_self()
    for i in 0..<CrashReporter.slotCount {
        let slot = CrashReporter.slots[i]
        if let thread = slot.thread, pthread_equal(thread, me) != 0, slot.length > 0 {
            _ = write(2, slot.header, slot.headerLength)
            _ = write(2, slot.buffer, slot.length)
        }
    }
    // Hand the signal to whoever had it before (the Swift runtime's backtracer, or the default).
    if sig >= 0, sig < 65, CrashReporter.hadPrevious[Int(sig)] {
        sigaction(sig, CrashReporter.previous + Int(sig), nil)
    } else {
        signal(sig, SIG_DFL)
    }
    if sig == SIGABRT { raise(sig) }
    // SIGILL, SIGTRAP, SIGSEGV, SIGBUS: returning re-executes the faulting instruction, which
    // now reaches the previous handler with its original context.
}
