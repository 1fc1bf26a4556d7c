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
}

/// A fault as the console has seen it: the engine's status while it is active, and when it
/// left the snapshot (healed). Kept until `:clear faults`, so `heal all` does not wipe the story.
public struct FaultRecord: Sendable, Equatable {
    public var status: FaultStatus
    /// Simulated time of the first snapshot without it (it was healed).
    public var healedAt: Double?
    /// From the recovery events ("N requests re-prefilled", "M failed").
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
    /// The newest event already read (time, and how many events at exactly that time).
    var lastEventTime = -Double.infinity
    var eventsAtLastTime = 0

    /// One histogram sample per this many simulated seconds.
    public static let sampleSeconds = 5.0
    static let sampleHorizon = 660.0

    public init() {}

    public mutating func absorb(_ s: Snapshot) {
        // Time went backwards: a different engine (reconnect) or a restart; start over.
        if let last = histogramSamples.last, s.simTime < last.simTime { self = ConsoleMemory() }
        if histogramSamples.last.map({ s.simTime - $0.simTime >= Self.sampleSeconds }) ?? true {
            histogramSamples.append(HistogramSample(simTime: s.simTime, histograms: s.histograms))
            let horizon = s.simTime - Self.sampleHorizon
            if let keep = histogramSamples.firstIndex(where: { $0.simTime >= horizon }), keep > 1 {
                histogramSamples.removeFirst(keep - 1)
            }
        }
        absorbFaults(s)
        absorbTimelines(s)
    }

    mutating func absorbFaults(_ s: Snapshot) {
        let active = Set(s.activeFaults.map(\.id))
        for f in s.activeFaults {
            if let i = faults.firstIndex(where: { $0.status.id == f.id }) {
                faults[i].status = f
                faults[i].healedAt = nil
            } else {
                faults.append(FaultRecord(status: f))
            }
        }
        for i in faults.indices where faults[i].healedAt == nil && !active.contains(faults[i].status.id) {
            faults[i].healedAt = s.simTime
        }
        // New events since the last snapshot: recovery outcomes per fault.
        let fresh = s.events.filter { $0.time > lastEventTime }
        let same = s.events.filter { $0.time == lastEventTime }.dropFirst(eventsAtLastTime)
        for e in Array(same) + fresh where e.kind == .recovery {
            guard let (ids, counts) = Self.recoveryCounts(e.message) else { continue }
            for id in ids {
                guard let i = faults.firstIndex(where: { $0.status.id == id }) else { continue }
                faults[i].reprefilled += counts.reprefilled
                faults[i].failed += counts.failed
                break  // the engine counts a shared recovery on the first fault of the group
            }
        }
        if let newest = s.events.last?.time {
            if newest != lastEventTime { eventsAtLastTime = 0 }
            lastEventTime = newest
            eventsAtLastTime = s.events.filter { $0.time == newest }.count
        }
    }

    /// "fault 3: … 2 requests re-prefilled, 1 failed" → ([3], (2, 1)); `nil` without counts.
    static func recoveryCounts(_ message: String) -> ([Int], (reprefilled: Int, failed: Int))? {
        guard let colon = message.firstIndex(of: ":") else { return nil }
        let head = message[..<colon]
        guard head.hasPrefix("fault") else { return nil }
        let ids = head.split(whereSeparator: { $0 == " " || $0 == "," }).compactMap { Int($0) }
        let words = message[colon...].split(whereSeparator: { $0 == " " || $0 == "," || $0 == ";" })
        var reprefilled = 0, failed = 0, found = false
        for i in words.indices.dropFirst() {
            let w = words[i]
            guard let n = Int(words[i - 1]) else { continue }
            if w == "requests", i + 1 < words.count, words[i + 1] == "re-prefilled" { reprefilled += n; found = true }
            if w == "of", i + 3 < words.count, words[i + 2] == "requests", words[i + 3] == "re-queued" {
                reprefilled += n
                found = true
            }
            if w == "failed" { failed += n; found = true }
        }
        guard found, !ids.isEmpty else { return nil }
        return (ids, (reprefilled: reprefilled, failed: failed))
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

    static func subtract(_ a: HistogramBins, _ b: HistogramBins) -> HistogramBins {
        guard a.upperBoundsMs == b.upperBoundsMs, a.counts.count == b.counts.count else { return a }
        return HistogramBins(upperBoundsMs: a.upperBoundsMs, counts: zip(a.counts, b.counts).map { max(0, $0 - $1) })
    }

    /// The q-quantile of binned samples, interpolated linearly inside the bin that reaches it
    /// (so it is an estimate, good to a bin's width).
    public static func quantile(_ bins: HistogramBins, _ q: Double) -> Double? {
        let total = bins.counts.reduce(0, +)
        guard total > 0 else { return nil }
        let target = Double(total) * q
        var seen = 0
        for (i, c) in bins.counts.enumerated() where i < bins.upperBoundsMs.count {
            if c > 0 && Double(seen + c) >= target {
                let lower = i > 0 ? bins.upperBoundsMs[i - 1] : 0
                let within = max(0, min(1, (target - Double(seen)) / Double(c)))
                return lower + (bins.upperBoundsMs[i] - lower) * within
            }
            seen += c
        }
        return bins.upperBoundsMs.last
    }
}
