import Foundation
import DequeModule
import Histogram
import SimKit

/// Counters, latency histograms, sparkline series and the event ring, all updated
/// incrementally (architecture.md principle 4).
struct EngineTelemetry {
    var arrived = 0
    var completed = 0
    var failed = 0
    var rejected = 0
    var promptTokens = 0
    var generatedTokens = 0
    /// Prompt tokens actually computed by prefill (prefix hits excluded).
    var prefillComputedTokens = 0
    var sloMet = 0
    var events = 0
    var peakDecodeUsage = 0.0

    /// Latencies in microseconds, whole run and current telemetry interval.
    var ttft = LatencyHistogram()
    var tpot = LatencyHistogram()
    var e2e = LatencyHistogram()
    /// Per-interval latencies only feed sparkline p99s: a small log-bucket counter, cheap to
    /// reset every interval (HdrHistogram's generic reset showed up in profiles).
    var intervalTTFT = IntervalLatency()
    var intervalTPOT = IntervalLatency()
    var intervalE2E = IntervalLatency()
    /// Output tokens produced (fractional with MTP) in the current interval.
    var intervalOutputTokens = 0.0
    var intervalPrefillTokens = 0.0
    var lastOutputRate = 0.0
    var lastPrefillRate = 0.0

    var series: Series
    var seriesCapacity: Int
    var ring: Deque<EngineEvent> = []
    var ringCapacity: Int
    var recent: Deque<RequestStatus> = []
    /// The last few hundred requests that left, for a face's request detail (RequestTimes.swift).
    var finished = FinishedRequestRing()
    /// Faces' callbacks (EngineObservers.swift); observe only.
    var observers = EngineObservers()

    init(seriesInterval: Double, seriesCapacity: Int, eventCapacity: Int) {
        series = Series()
        series.intervalSeconds = seriesInterval
        self.seriesCapacity = seriesCapacity
        ringCapacity = eventCapacity
    }

    var inFlight: Int { arrived - completed - failed - rejected }

    /// Failed and rejected requests by reason (the reason without request-specific numbers):
    /// the report's `requests.failure_reasons` and `requests.rejection_reasons`.
    var failureReasons: [String: Int] = [:]
    var rejectionReasons: [String: Int] = [:]
    /// Distinct reasons kept per map; further ones are counted under ``otherReasons``.
    static let maxReasons = 64
    static let otherReasons = "other reasons"

    func count(_ reasons: inout [String: Int], _ reason: String) {
        let key = reasons[reason] != nil || reasons.count < Self.maxReasons - 1 ? reason : Self.otherReasons
        reasons[key, default: 0] += 1
    }

    mutating func log(_ event: EngineEvent) {
        if ring.count >= ringCapacity { ring.removeFirst() }
        ring.append(event)
        observers.event?(event)
    }

    mutating func remember(_ status: RequestStatus) {
        if recent.count >= 50 { recent.removeFirst() }
        recent.append(status)
    }

    /// Appends one point to every sparkline series, dropping the oldest beyond capacity.
    mutating func appendPoint(imbalance: Double, kvUsage: Double, running: Double, waiting: Double, interval: Double) {
        lastOutputRate = intervalOutputTokens / interval
        lastPrefillRate = intervalPrefillTokens / interval
        func push(_ array: inout [Double], _ value: Double) {
            if array.count >= seriesCapacity { array.removeFirst(array.count - seriesCapacity + 1) }
            array.append(value)
        }
        push(&series.outputTokensPerSecond, lastOutputRate)
        push(&series.ttftP99Ms, intervalTTFT.p99Ms)
        push(&series.tpotP99Ms, intervalTPOT.p99Ms)
        push(&series.e2eP99Ms, intervalE2E.p99Ms)
        push(&series.kvUsage, kvUsage)
        push(&series.imbalance, imbalance)
        push(&series.running, running)
        push(&series.waiting, waiting)
        intervalTTFT.reset()
        intervalTPOT.reset()
        intervalE2E.reset()
        intervalOutputTokens = 0
        intervalPrefillTokens = 0
    }

    /// `count` points for intervals in which nothing happened (an idle skip,
    /// ServingEngine+IdleSkip): zero rates and latencies, constant levels. Only the last
    /// `seriesCapacity` points are kept, so a long stretch costs no more than a full series.
    mutating func appendQuietPoints(count: Double, imbalance: Double, kvUsage: Double, running: Double, waiting: Double) {
        guard count >= 1 else { return }
        lastOutputRate = 0
        lastPrefillRate = 0
        let n = Int(min(count, Double(seriesCapacity)))
        func push(_ array: inout [Double], _ value: Double) {
            let keep = max(0, min(array.count, seriesCapacity - n))
            if array.count > keep { array.removeFirst(array.count - keep) }
            array.append(contentsOf: repeatElement(value, count: n))
        }
        push(&series.outputTokensPerSecond, 0)
        push(&series.ttftP99Ms, 0)
        push(&series.tpotP99Ms, 0)
        push(&series.e2eP99Ms, 0)
        push(&series.kvUsage, kvUsage)
        push(&series.imbalance, imbalance)
        push(&series.running, running)
        push(&series.waiting, waiting)
    }
}

/// Latencies of one telemetry interval in logarithmic buckets (8 per doubling, about 9% wide,
/// from 0.1 ms to about 10 hours), enough for a sparkline's p99.
struct IntervalLatency {
    private static let bucketsPerDoubling = 8.0
    private static let floorMs = 0.1
    private var counts = [Int](repeating: 0, count: 232)
    private var lowest = Int.max
    private var highest = -1
    private(set) var count = 0

    mutating func record(seconds: Double) {
        let ms = max(Self.floorMs, seconds * 1_000)
        let b = max(0, min(counts.count - 1, Int(saturating: (log2(ms / Self.floorMs) * Self.bucketsPerDoubling).rounded(.down))))
        counts[b] += 1
        count += 1
        lowest = min(lowest, b)
        highest = max(highest, b)
    }

    mutating func reset() {
        guard count > 0 else { return }
        for b in lowest...highest { counts[b] = 0 }
        count = 0
        lowest = .max
        highest = -1
    }

    /// Upper bound of the bucket holding the 99th percentile, in ms (0 when empty).
    var p99Ms: Double {
        guard count > 0 else { return 0 }
        let rank = Int((Double(count) * 0.99).rounded(.up))
        var seen = 0
        for b in lowest...highest {
            seen += counts[b]
            if seen >= rank { return Self.floorMs * exp2(Double(b + 1) / Self.bucketsPerDoubling) }
        }
        return Self.floorMs * exp2(Double(highest + 1) / Self.bucketsPerDoubling)
    }
}

/// An HdrHistogram of latencies in microseconds (3 significant digits, up to 10 hours).
struct LatencyHistogram {
    private var histogram: Histogram<UInt64>

    init(digits: SignificantDigits = .three) {
        histogram = Histogram<UInt64>(highestTrackableValue: 36_000_000_000, numberOfSignificantValueDigits: digits)
    }

    /// Changes with every record and reset: the key of ``summary()``'s cache.
    private var version: UInt64 = 0
    private var cachedVersion: UInt64 = .max
    private var cached = Summary()

    /// Samples per occupied bucket (keyed by the bucket's lowest value), mirroring `histogram`'s
    /// counts: ``meanMs`` sums over these few buckets in ascending order, exactly as
    /// `Histogram.mean` does over all ~26,000 of its slots through an unspecialised generic
    /// iterator (12% of an Azure code replay's instructions, for three report means).
    private var occupied: [UInt64: UInt64] = [:]

    mutating func record(seconds: Double) {
        let micros = UInt64(max(1, min(35_999_999_999, (seconds * 1_000_000).rounded())))
        _ = histogram.record(micros)
        occupied[histogram.lowestEquivalentForValue(micros), default: 0] += 1
        version &+= 1
    }
    mutating func reset() {
        if histogram.totalCount > 0 { histogram.reset() }
        occupied.removeAll(keepingCapacity: true)
        version &+= 1
    }

    /// What a snapshot shows of the histogram.
    struct Summary {
        var meanMs = 0.0, p50Ms = 0.0, p90Ms = 0.0, p99Ms = 0.0
        var bins = HistogramBins()
    }

    /// Mean, percentiles and bins, recomputed only when samples arrived since the last call
    /// (a snapshot of an idle or paused engine costs nothing here; they were 10 ms each).
    mutating func summary() -> Summary {
        if cachedVersion != version {
            cached = Summary(meanMs: meanMs, p50Ms: p50Ms, p90Ms: p90Ms, p99Ms: p99Ms, bins: bins())
            cachedVersion = version
        }
        return cached
    }
    var count: UInt64 { histogram.totalCount }
    /// `Histogram.mean` to the bit: Σ median-equivalent value × count over occupied buckets in
    /// ascending order, divided by the total count.
    var meanMs: Double {
        guard count > 0 else { return 0 }
        var total = 0.0
        for bucket in occupied.keys.sorted() {
            total += Double(histogram.medianEquivalentForValue(bucket)) * Double(occupied[bucket]!)
        }
        return total / Double(count) / 1_000
    }
    func percentileMs(_ p: Double) -> Double { count == 0 ? 0 : Double(histogram.valueAtPercentile(p)) / 1_000 }
    var p50Ms: Double { percentileMs(50) }
    var p90Ms: Double { percentileMs(90) }
    var p99Ms: Double { percentileMs(99) }

    /// Logarithmic bins (ms) for drawing: upper bounds 1, 2, 4, … ms.
    func bins() -> HistogramBins {
        guard count > 0 else { return HistogramBins() }
        var bounds: [Double] = []
        var counts: [Int] = []
        var upper: UInt64 = 1_000
        var below: UInt64 = 0
        while below < count && bounds.count < 40 {
            let inBin = histogram.count(within: 0...upper)
            bounds.append(Double(upper) / 1_000)
            counts.append(Int(inBin - below))
            below = inBin
            upper *= 2
        }
        return HistogramBins(upperBoundsMs: bounds, counts: counts)
    }
}
