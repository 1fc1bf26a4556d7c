import ServingEngine

/// The latency window the Latency view shows (`w` cycles): the snapshot's histograms count
/// everything since start, so the console keeps cumulative samples and subtracts.
public enum LatencyWindow: String, Sendable, CaseIterable {
    case oneMinute = "last 1 min"
    case tenMinutes = "last 10 min"
    case all = "since start"

    /// Simulated seconds covered; `nil` = since start.
    public var seconds: Double? {
        switch self {
        case .oneMinute: 60
        case .tenMinutes: 600
        case .all: nil
        }
    }
}

/// The cumulative histograms at one simulated time.
public struct HistogramSample: Sendable, Equatable {
    public var simTime: Double
    public var histograms: LatencyHistograms
    /// Requests arrived by then (the header's measured rate when nothing sets one).
    public var arrived = 0
}

/// A fault as the console has seen it: the engine's status while it is active, and when it
/// left the snapshot (healed). Kept until `:clear faults`, so `heal all` does not wipe the story.
public struct FaultRecord: Sendable, Equatable {
    public var status: FaultStatus
    /// Simulated time it ended (healed, or a glitch over): the time of its last event line (its
    /// heal, or the recovery that ended a glitch) after the last snapshot that showed it active,
    /// else that of the first snapshot without it. Snapshots come a few times a wall second, so at
    /// speed 50 the first one without it can be seconds of simulated time after the heal (the
    /// Faults panel said "healed 0:02:31" beside the Events view's "0:02:30.0 heal").
    public var healedAt: Double?
    /// Simulated time of the last snapshot that showed it active.
    public var lastSeenActive = 0.0
    /// The engine's counts (``FaultStatus/requestsReprefilled``, ``FaultStatus/requestsFailed``).
    public var reprefilled = 0
    public var failed = 0
}

/// What the console saw of one request: the simulated time it first saw each stage and place.
/// Snapshot granularity (a few per second of wall time), so short stages can be missed.
public struct RequestTimeline: Sendable, Equatable {
    public struct Step: Sendable, Equatable {
        public var simTime: Double
        public var stage: RequestStage
        public var location: String
    }
    public var steps: [Step] = []
    /// Wall-independent age for eviction: the simulated time it was last in a snapshot.
    public var lastSeen: Double = 0
}

/// History the console derives from consecutive snapshots (none of it is in one snapshot).
/// Bounded: histogram samples cover 11 minutes, timelines only requests still listed.
public struct ConsoleMemory: Sendable, Equatable {
    public var histogramSamples: [HistogramSample] = []
    public var faults: [FaultRecord] = []
    public var timelines: [Int: RequestTimeline] = [:]
    /// Events that left the engine's ring (its last 1,000) and say what happened: faults,
    /// detections, recoveries, heals, drains, commands and refusals, not the routine lines
    /// (rebalances, the demo's rate steps) that fill the ring in a few simulated hours. After
    /// a long run at speed the Events view had lost every fault while the Faults panel still
    /// listed them; the view lists these before the ring's. Oldest first, bounded.
    public var keptEvents: [EngineEvent] = []
    /// The engine's ring as the last snapshot held it, to see which events have left it.
    var lastRing: [EngineEvent] = []
    /// ``Snapshot/earlierEvents`` as the last snapshot held them (unchanged, nothing to merge).
    var lastEarlier: [EngineEvent] = []
    public static let maxKeptEvents = 1_000

    /// One histogram sample per this many simulated seconds.
    public static let sampleSeconds = 5.0
    static let sampleHorizon = 660.0

    public init() {}

    /// Requests per simulated second that arrived over about the last minute, from the samples;
    /// `nil` until the samples span ``sampleSeconds``. What the header shows when no synthetic rate
    /// is set: a trace replay (or `xds serve` taking only HTTP requests) has a snapshot
    /// `arrivalRate` of 0, and the header said "0.0 req/s" beside 20 running requests.
    public func observedArrivalRate(_ s: Snapshot) -> Double? {
        guard let from = histogramSamples.first(where: { s.simTime - $0.simTime <= 60 + Self.sampleSeconds }),
            s.simTime - from.simTime >= Self.sampleSeconds, s.requests.arrived >= from.arrived
        else { return nil }
        return Double(s.requests.arrived - from.arrived) / (s.simTime - from.simTime)
    }

    public mutating func absorb(_ s: Snapshot) {
        // Time went backwards: a different engine (reconnect) or a restart; start over.
        if let last = histogramSamples.last, s.simTime < last.simTime { self = ConsoleMemory() }
        if histogramSamples.last.map({ s.simTime - $0.simTime >= Self.sampleSeconds }) ?? true {
            histogramSamples.append(HistogramSample(simTime: s.simTime, histograms: s.histograms, arrived: s.requests.arrived))
            let horizon = s.simTime - Self.sampleHorizon
            if let keep = histogramSamples.firstIndex(where: { $0.simTime >= horizon }), keep > 1 {
                histogramSamples.removeFirst(keep - 1)
            }
        }
        absorbFaults(s)
        absorbTimelines(s)
    }

    /// Keeps the events of `ring` that left it since the last snapshot and pass `keep`. The
    /// ring drops its oldest first, so what left is what came before the oldest event still
    /// held; when nothing overlaps (more new events than the ring holds) all of the last ring left.
    ///
    /// `earlier` are the engine's own such events that left the ring (``Snapshot/earlierEvents``):
    /// under a flood of refused requests a fault's detection and recovery came and went between
    /// two snapshots, so the console never saw them. Those it does not hold yet join the kept
    /// ones in time order (they all came before the ring's).
    mutating func absorbEvents(_ ring: [EngineEvent], earlier: [EngineEvent] = [], keep: (EngineEvent) -> Bool) {
        defer {
            lastRing = ring
            mergeEarlier(earlier.filter(keep))
        }
        guard !lastRing.isEmpty, lastRing != ring else { return }
        var left = lastRing.count
        if let first = ring.first {
            for i in lastRing.indices where lastRing[i] == first && lastRing.count - i <= ring.count {
                if lastRing[i...].elementsEqual(ring.prefix(lastRing.count - i)) {
                    left = i
                    break
                }
            }
        }
        keptEvents += lastRing.prefix(left).filter(keep)
        trimKept()
    }

    /// Inserts the events of `earlier` (oldest first) that ``keptEvents`` lacks, each after the
    /// kept events of its time or before: the engine logs in time order, and an event the
    /// console kept itself equals the engine's copy of it.
    private mutating func mergeEarlier(_ earlier: [EngineEvent]) {
        guard let first = earlier.first, lastEarlier != earlier else { return }
        defer { lastEarlier = earlier }
        // Kept events older than the engine's oldest cannot be among them.
        var from = keptEvents.endIndex
        while from > keptEvents.startIndex, keptEvents[from - 1].time >= first.time { from -= 1 }
        var added = false
        for e in earlier where !keptEvents[from...].contains(e) {
            var at = keptEvents.endIndex
            while at > from, keptEvents[at - 1].time > e.time { at -= 1 }
            keptEvents.insert(e, at: at)
            added = true
        }
        if added { trimKept() }
    }

    /// Over the bound, the oldest request's failure or refusal goes before any change of state.
    private mutating func trimKept() {
        let request: Set<EngineEvent.Kind> = [.requestFailed, .requestRejected, .requestCancelled, .requestFinished]
        while keptEvents.count > Self.maxKeptEvents {
            keptEvents.remove(at: keptEvents.firstIndex { request.contains($0.kind) } ?? 0)
        }
    }

    mutating func absorbFaults(_ s: Snapshot) {
        let active = Set(s.activeFaults.map(\.id))
        for f in s.activeFaults {
            let i = faults.firstIndex { $0.status.id == f.id } ?? faults.endIndex
            if i == faults.endIndex { faults.append(FaultRecord(status: f)) }
            faults[i].status = f
            faults[i].healedAt = nil
            faults[i].lastSeenActive = s.simTime
            // The engine's own counts for the fault (its recovery moved or failed them); they
            // only grow while it is active and stay as last seen once it is healed.
            faults[i].reprefilled = f.requestsReprefilled ?? 0
            faults[i].failed = f.requestsFailed ?? 0
        }
        for i in faults.indices where faults[i].healedAt == nil && !active.contains(faults[i].status.id) {
            let id = faults[i].status.id, since = faults[i].lastSeenActive
            // The engine's kept events too: a flood of refusals can push the heal out of the ring.
            let ended = ((s.earlierEvents ?? []) + s.events).lazy.filter { $0.faultId == id && $0.time > since && $0.time <= s.simTime }.map(\.time).max()
            faults[i].healedAt = ended ?? s.simTime
        }
    }

    mutating func absorbTimelines(_ s: Snapshot) {
        for r in s.inFlight + s.recent {
            var t = timelines[r.id] ?? RequestTimeline()
            if t.steps.isEmpty && r.stage != .queued {
                // First seen past the queue: the arrival is known from the request itself.
                t.steps.append(.init(simTime: r.arrivedAt, stage: .queued, location: ""))
            }
            if t.steps.last.map({ $0.stage != r.stage || $0.location != r.location }) ?? true {
                let at = r.finishedAt.map { min($0, s.simTime) } ?? (t.steps.isEmpty ? r.arrivedAt : s.simTime)
                t.steps.append(.init(simTime: at, stage: r.stage, location: r.location))
            }
            t.lastSeen = s.simTime
            timelines[r.id] = t
        }
        // Requests no longer listed anywhere are forgotten (the detail view says so).
        if timelines.count > (s.inFlight.count + s.recent.count) * 2 + 64 {
            timelines = timelines.filter { $0.value.lastSeen >= s.simTime }
        }
    }

    /// The histograms of the window: now minus the newest sample at least `window` old.
    /// Returns the covered seconds too (shorter than asked right after start).
    public func histograms(_ window: LatencyWindow, now: Snapshot) -> (LatencyHistograms, Double) {
        guard let seconds = window.seconds else { return (now.histograms, now.simTime) }
        let cutoff = now.simTime - seconds
        // The run is younger than the window: everything so far is the window.
        if cutoff <= 0 { return (now.histograms, now.simTime) }
        // Otherwise the newest sample at least `seconds` old, or the oldest the console has
        // (it attached later): the window is then shorter, and the view says by how much.
        guard let base = histogramSamples.last(where: { $0.simTime <= cutoff }) ?? histogramSamples.first,
            base.simTime < now.simTime
        else { return (now.histograms, now.simTime) }
        var h = now.histograms
        h.ttft = Self.subtract(h.ttft, base.histograms.ttft)
        h.tpot = Self.subtract(h.tpot, base.histograms.tpot)
        h.e2e = Self.subtract(h.e2e, base.histograms.e2e)
        return (h, now.simTime - base.simTime)
    }

    /// `a` less `b` (an older state of the same histogram), bin by bin and sub-bin by sub-bin.
    /// The engine lists bins up to its highest sample, so an older state may have fewer: they
    /// are the first ones of `a`'s (when the window's samples reached a new bin, the whole run
    /// was shown under "last 1 min"). Anything else is not an older state: `a` unchanged.
    static func subtract(_ a: HistogramBins, _ b: HistogramBins) -> HistogramBins {
        let n = b.counts.count
        guard n <= a.counts.count, b.upperBoundsMs.count == n, Array(a.upperBoundsMs.prefix(n)) == b.upperBoundsMs
        else { return a }
        var out = a
        for i in 0..<n { out.counts[i] = max(0, a.counts[i] - b.counts[i]) }
        if a.hasParts, b.hasParts, a.subBins == b.subBins {
            for i in 0..<b.subCounts.count { out.subCounts[i] = max(0, a.subCounts[i] - b.subCounts[i]) }
        } else {
            (out.subBins, out.subCounts) = (0, [])
        }
        return out
    }

    /// The q-quantile of binned samples, interpolated linearly inside the part (sub-bin where
    /// the bins carry them, else bin) that reaches it: an estimate, good to that part's width.
    public static func quantile(_ bins: HistogramBins, _ q: Double) -> Double? {
        let parts = bins.intervals
        let total = parts.reduce(0) { $0 + $1.count }
        guard total > 0 else { return nil }
        let target = Double(total) * q
        var seen = 0
        for part in parts {
            if part.count > 0 && Double(seen + part.count) >= target {
                let within = max(0, min(1, (target - Double(seen)) / Double(part.count)))
                return part.lower + (part.upper - part.lower) * within
            }
            seen += part.count
        }
        return parts.last?.upper
    }
}

extension HistogramBins {
    /// Whether the sub-bin counts are there and fit the bins.
    var hasParts: Bool { subBins > 0 && subCounts.count == counts.count * subBins && upperBoundsMs.count == counts.count }

    /// Every bin as (lower, upper, count) in ms, bin i from the previous bound (0 for the first).
    var binIntervals: [(lower: Double, upper: Double, count: Int)] {
        (0..<min(counts.count, upperBoundsMs.count)).map { i in
            (i > 0 ? upperBoundsMs[i - 1] : 0, upperBoundsMs[i], counts[i])
        }
    }

    /// The finest parts known: each bin's sub-bins (equal shares of its range) where the bins
    /// carry them, else the bins.
    var intervals: [(lower: Double, upper: Double, count: Int)] {
        guard hasParts else { return binIntervals }
        var out: [(lower: Double, upper: Double, count: Int)] = []
        out.reserveCapacity(subCounts.count)
        for (i, bin) in binIntervals.enumerated() {
            let step = (bin.upper - bin.lower) / Double(subBins)
            for j in 0..<subBins {
                out.append((bin.lower + step * Double(j), j == subBins - 1 ? bin.upper : bin.lower + step * Double(j + 1),
                            subCounts[i * subBins + j]))
            }
        }
        return out
    }
}
