import SimKit

/// A generated DeepSeek-R1-style workload: chat and reasoning traffic, Poisson or bursty
/// arrivals, shared system prompts and multi-turn sessions for prefix reuse.
///
/// The papers leave arrival and length distributions open (system.md §5); the defaults in
/// ``Configuration`` are documented choices, all settable.
///
/// Randomness comes from named streams "arrivals", "lengths" and "prefix", so changing how
/// prefixes are drawn does not move arrival times.
///
/// ```swift
/// var load = SyntheticWorkload(seed: 1, configuration: .init(ratePerSecond: 20))
/// let first = load.next()!
/// load.setRate(40, at: first.arrival)   // the `rate 40` operator command
/// ```
public struct SyntheticWorkload: WorkloadSource {
    /// One traffic class with its share of requests and token-length distributions.
    public struct TrafficClass: Sendable {
        public var name: String
        public var share: Double
        public var promptTokens: any Distribution
        public var outputTokens: any Distribution
        public init(name: String, share: Double, promptTokens: any Distribution, outputTokens: any Distribution) {
            self.name = name
            self.share = share
            self.promptTokens = promptTokens
            self.outputTokens = outputTokens
        }

        /// Chat: prompts lognormal mean 1,500 (cv 1), outputs mean 400 (cv 0.8) — typical of
        /// ShareGPT-like conversational traffic; a documented default, not a paper figure.
        public static let chat = TrafficClass(
            name: "chat", share: 0.7, promptTokens: LogNormal(mean: 1_500, coefficientOfVariation: 1),
            outputTokens: LogNormal(mean: 400, coefficientOfVariation: 0.8))
        /// Reasoning (R1 thinking traces): shorter prompts, long outputs, mean 2,000 (cv 0.8).
        public static let reasoning = TrafficClass(
            name: "reasoning", share: 0.3, promptTokens: LogNormal(mean: 1_000, coefficientOfVariation: 1),
            outputTokens: LogNormal(mean: 2_000, coefficientOfVariation: 0.8))
    }

    public struct Configuration: Sendable {
        /// Mean arrival rate, requests/s.
        public var ratePerSecond: Double = 10
        /// Coefficient of variation of inter-arrival gaps: 1 = Poisson, >1 = bursty (gamma).
        public var arrivalCV: Double = 1
        /// Classes; shares are normalised. Default 70% chat, 30% reasoning.
        public var classes: [TrafficClass] = [.chat, .reasoning]
        /// Share of fresh requests that start with one of the shared system prompts.
        public var systemPromptShare: Double = 0.5
        /// Lengths of the shared system prompts (1–4K tokens); picked Zipf(1.0) by rank.
        public var systemPromptTokens: [Int] = [1_024, 2_048, 3_072, 4_096]
        /// Share of requests that are a follow-up turn of an open session (the previous
        /// turn's prompt + output becomes the prefix).
        public var followUpShare: Double = 0.3
        /// Probability that a session ends after a turn (mean 1/p turns).
        public var sessionEndProbability: Double = 1.0 / 3.0
        /// Tokens per prefix block in `prefixHashes`.
        public var prefixBlockTokens: Int = 128
        /// Caps on lengths: DeepSeek-R1 deployments commonly cap context near 32K.
        public var maxPromptTokens: Int = 32_768
        public var maxOutputTokens: Int = 16_384
        /// The model's context window (prompt plus output): a prompt is cut to one token less and
        /// an output to what the window leaves after its prompt, as `--clip-to-context` cuts a
        /// trace. nil: no window. DeepSeek's 128K never binds under the caps above; Llama-2-7B's
        /// 4K does (its synthetic reasoning prompts reached 14,770 tokens without it).
        public var contextWindow: Int?
        /// Stop after this many requests (nil: endless).
        public var maxRequests: Int?

        public init(ratePerSecond: Double = 10, arrivalCV: Double = 1) {
            self.ratePerSecond = ratePerSecond
            self.arrivalCV = arrivalCV
        }
    }

    struct Session {
        var keys: [UInt64]
        var contextTokens: Int
        let sessionKey: UInt64
    }

    public private(set) var configuration: Configuration
    private var arrivals: RandomStream
    private var lengths: RandomStream
    private var prefix: RandomStream
    private var clock: SimTime = 0
    private var nextID = 0
    private var sessions: [Session] = []
    private let systemPromptRank: Zipf
    private let classPicker: Empirical
    /// Each class's prompt and output distributions when they are lognormals (``configuration``'s
    /// classes never change after init), drawn without the existential: ``drawLengths(_:_:_:using:)``.
    private let lengthLogNormals: [(prompt: LogNormal?, output: LogNormal?)]
    /// Each shared system prompt's keys, by rank - 1: the same for every session that starts with
    /// it, so made once here instead of hashed into a new array per such session (``configuration``'s
    /// prompt lengths and block size never change after init). Sessions share the arrays
    /// (copy-on-write: one that is cut copies its own).
    private let systemPromptKeys: [[UInt64]]
    /// `StableHash.mixedChild(i)` for the first 512 key positions of a session (a default session's
    /// context holds at most 384 blocks: a 32K prompt and a 16K output, in 128-token blocks).
    private static let sessionKeyChildren: [UInt64] = (0..<512).map { StableHash.mixedChild(UInt64($0)) }

    public init(seed: UInt64, configuration: Configuration = Configuration()) {
        precondition(!configuration.classes.isEmpty && configuration.prefixBlockTokens > 0)
        precondition(!configuration.systemPromptTokens.isEmpty)
        self.configuration = configuration
        startRatePerSecond = Self.clamped(configuration.ratePerSecond)
        highestRatePerSecond = startRatePerSecond
        let streams = RandomStreams(seed: seed)
        arrivals = streams.stream("arrivals")
        lengths = streams.stream("lengths")
        prefix = streams.stream("prefix")
        systemPromptRank = Zipf(n: configuration.systemPromptTokens.count, exponent: 1)
        classPicker = Empirical(
            values: configuration.classes.indices.map(Double.init), weights: configuration.classes.map(\.share))
        lengthLogNormals = configuration.classes.map { ($0.promptTokens as? LogNormal, $0.outputTokens as? LogNormal) }
        let block = configuration.prefixBlockTokens
        systemPromptKeys = configuration.systemPromptTokens.indices.map { index in
            let systemKey = StableHash.combine(parent: 0x5157_e111, UInt64(index + 1))
            return (0..<max(0, configuration.systemPromptTokens[index] / block)).map { StableHash.combine(parent: systemKey, UInt64($0)) }
        }
    }

    public var ratePerSecond: Double { configuration.ratePerSecond }

    /// The rate the run started at: the configured one, or what commands at time 0 set before any
    /// arrival (a scenario's `rate 40` at 0 s), since that is the rate the first arrivals follow.
    public private(set) var startRatePerSecond: Double
    /// The highest rate in effect at any time after 0 (the report's `rate_max_per_s`): a
    /// scenario's surge between two equal rates leaves no trace in the start and end rates.
    public private(set) var highestRatePerSecond: Double

    /// Arrival coefficients of variation the generator honours (`--burstiness`): outside it
    /// the gamma's shape 1/cv² underflows to 0 or overflows, so values are clamped into it.
    public static let arrivalCVRange = 0.01...100.0

    /// Changes the arrival rate from simulated time `now` on. Gaps are redrawn from `now`,
    /// which for Poisson arrivals is exact (memoryless). At rate 0, `next()` returns nil
    /// until the rate is raised again. A rate outside 0…``CommandLimits/maxRate`` (or not a
    /// number) is clamped into it; the command parser refuses such rates before they get here.
    public mutating func setRate(_ ratePerSecond: Double, at now: SimTime) {
        configuration.ratePerSecond = Self.clamped(ratePerSecond)
        if now.isFinite { clock = max(clock, now) }
        if now <= 0 {
            startRatePerSecond = configuration.ratePerSecond
            highestRatePerSecond = configuration.ratePerSecond
        } else {
            highestRatePerSecond = max(highestRatePerSecond, configuration.ratePerSecond)
        }
    }

    /// A rate brought into 0…``CommandLimits/maxRate`` (not a number: 0).
    private static func clamped(_ rate: Double) -> Double {
        rate.isNaN ? 0 : min(max(rate, 0), CommandLimits.maxRate)
    }

    /// Moves the generator's clock to `time`, the new arrival time of its last request after the
    /// engine re-timed it for a rate change: later gaps are drawn from there.
    public mutating func retimeLastArrival(to time: SimTime) {
        if time.isFinite { clock = time }
    }

    public mutating func next() -> RequestSpec? {
        if let limit = configuration.maxRequests, nextID >= limit { return nil }
        // Clamped like setRate: a configured rate beyond any pod would flood one instant.
        let rate = min(configuration.ratePerSecond, CommandLimits.maxRate)
        guard rate > 0 else { return nil }
        let meanGap = 1 / rate
        let cv = configuration.arrivalCV.isNaN ? 1
            : min(max(configuration.arrivalCV, Self.arrivalCVRange.lowerBound), Self.arrivalCVRange.upperBound)
        let gap =
            cv == 1
            ? Exponential(rate: rate).sample(using: &arrivals)
            : Gamma(mean: meanGap, coefficientOfVariation: cv).sample(using: &arrivals)
        // A rate so small that its gap overflows (`--rate 5e-324`: 1/rate is infinite) puts the next
        // arrival beyond any simulated time: none comes, as at rate 0. Not advancing the clock
        // instead sent every request at the same instant, a flood that froze the run.
        guard gap.isFinite, (clock + gap).isFinite else { return nil }
        if gap > 0 { clock += gap }

        // Drawn through a local copy of the stream: sampling with `&lengths` while reading
        // another property of `self` made the compiler copy the whole generator (twice a request).
        var stream = lengths
        let traffic = Int(classPicker.sample(using: &stream))
        let (promptDraw, outputDraw) = Self.drawLengths(configuration.classes, lengthLogNormals, traffic, using: &stream)
        let newTokens = Self.clampedLength(promptDraw, configuration.maxPromptTokens)
        let drawnOutput = Self.clampedLength(outputDraw, configuration.maxOutputTokens)
        lengths = stream
        let (prompt, output, keys) = shapePrefix(newTokens: newTokens, outputTokens: drawnOutput)
        defer { nextID += 1 }
        return RequestSpec(
            id: nextID, arrival: clock, promptTokens: prompt, outputTokens: output, prefixHashes: keys,
            prefixBlockTokens: configuration.prefixBlockTokens, tag: configuration.classes[traffic].name)
    }

    /// Class `traffic`'s prompt then output length draws, the class read in place (a copy of it
    /// retained and released its name and both distributions per request). A lognormal (every
    /// built-in class's) is drawn by its concrete type from ``lengthLogNormals``, its sampling
    /// inlined here with the stream's draws; any other distribution through the protocol.
    /// Through `any Distribution` each draw went by a witness thunk and projected the box
    /// (issue 12: 27 M instructions for the 96 k draws of a saturated superpod's two minutes).
    /// The same operations in the same order: the same values.
    private static func drawLengths(_ classes: [TrafficClass], _ logNormals: [(prompt: LogNormal?, output: LogNormal?)],
                                    _ traffic: Int, using stream: inout RandomStream) -> (prompt: Double, output: Double) {
        let fast = logNormals[traffic]
        let prompt: Double
        if let logNormal = fast.prompt {
            prompt = logNormal.sample(using: &stream)
        } else {
            prompt = classes[traffic].promptTokens.sample(using: &stream)
        }
        if let logNormal = fast.output { return (prompt, logNormal.sample(using: &stream)) }
        return (prompt, classes[traffic].outputTokens.sample(using: &stream))
    }

    /// A draw as a token count in 1…max(1, cap): `max(1, Int(x.rounded()))` below the cap,
    /// rounded without libm's `round` where it can (a call per draw, issue 12: 4.3 M instructions
    /// a saturated superpod's two minutes).
    static func clampedLength(_ x: Double, _ cap: Int) -> Int {
        guard x.isFinite else { return x > 0 ? max(1, cap) : 1 }
        if x >= Double(cap) { return max(1, cap) }
        guard x >= 1 else { return 1 }  // any draw below 1, however far (no conversion to trap on)
        return Int(roundingSmallNonNegative: x) ?? Int(x.rounded())
    }

    /// Decides whether the request continues a session, starts with a system prompt, or
    /// neither; returns the full prompt length, the output (`drawnOutput` cut to what the
    /// context window leaves) and the prompt's prefix block keys.
    private mutating func shapePrefix(newTokens: Int, outputTokens drawnOutput: Int) -> (Int, Int, [UInt64]) {
        let block = configuration.prefixBlockTokens
        // Drawn through a local copy of the stream, stored back at the end: drawing from the
        // property called the stream's `next()` out of line (issue 12: 3 M instructions a
        // saturated superpod's two minutes). The same draws in the same order.
        var stream = prefix
        defer { prefix = stream }
        let roll = stream.uniform()
        var session: Session
        var sessionIndex: Int?
        if roll < configuration.followUpShare, !sessions.isEmpty {
            let index = stream.int(in: 0...(sessions.count - 1))
            sessionIndex = index
            session = sessions[index]
            // The stored copy lets go of its keys (the session is written back below), so the
            // keys are held once: a dropped session's become the request's without a copy.
            sessions[index].keys = []
        } else {
            let sessionKey = StableHash.combine(parent: 0x5e55_1011, UInt64(nextID))
            session = Session(keys: [], contextTokens: 0, sessionKey: sessionKey)
            if stream.uniform() < configuration.systemPromptShare {
                let rank = systemPromptRank.sampleRank(using: &stream)
                session.keys = systemPromptKeys[rank - 1]
                session.contextTokens = configuration.systemPromptTokens[rank - 1]
            }
        }
        var maxPrompt = configuration.maxPromptTokens
        if let window = configuration.contextWindow { maxPrompt = min(maxPrompt, max(1, window - 1)) }
        let prompt = min(maxPrompt, session.contextTokens + newTokens)
        let outputTokens = configuration.contextWindow.map { min(drawnOutput, max(1, $0 - prompt)) } ?? drawnOutput
        // The next turn's prefix is this turn's prompt + output.
        session.contextTokens = prompt + outputTokens
        let ends = stream.uniform() < configuration.sessionEndProbability
            || session.contextTokens >= maxPrompt
        // Keys for the next turn only when there is one (a session that ends, or a new one the
        // table has no room for, is dropped): a dropped session's keys become the request's.
        let kept = min(session.keys.count, prompt / block)
        let keys: [UInt64]
        if ends || (sessionIndex == nil && sessions.count >= 256) {
            if kept < session.keys.count { session.keys.removeLast(session.keys.count - kept) }
            keys = session.keys
        } else {
            // The session's keys for its next turn go into a new array, the earlier ones copied
            // and the rest chained from the session key; the earlier array becomes the request's
            // keys as it is (a prompt covers its session's whole context unless cut). Copying the
            // request's keys out and then growing the session's in place cost two arrays per
            // continuing turn (issue 12). The same keys.
            let earlier = session.keys
            let count = earlier.count
            let total = max(count, session.contextTokens / block)
            let sessionKey = session.sessionKey
            // Copied with room for the rest by `reserveCapacity`, which allocates through the
            // path specialised for the element type (`init(unsafeUninitializedCapacity:)` goes
            // through the standard library's unspecialised generic one: ~630 instructions an
            // array against ~280 with the copy, most of it looking up the storage's metadata).
            var grown = earlier
            grown.reserveCapacity(total)
            // Key `i` is `combine(parent: sessionKey, i)`, whose child half depends on `i` alone:
            // taken from a table made once (a mix per key saved), the same bits.
            let children = Self.sessionKeyChildren
            for i in count..<total {
                let child = i < children.count ? children[i] : StableHash.mixedChild(UInt64(i))
                grown.append(StableHash.combine(parent: sessionKey, mixedChild: child))
            }
            session.keys = grown
            keys = kept == count ? earlier : Array(earlier[..<kept])
        }
        if let index = sessionIndex {
            if ends { sessions.remove(at: index) } else { sessions[index] = session }
        } else if !ends, sessions.count < 256 {
            sessions.append(session)
        }
        return (prompt, outputTokens, keys)
    }
}
