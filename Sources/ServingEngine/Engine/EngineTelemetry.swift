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
    /// Device-seconds held by the roles, up to ``deviceTimeSince`` (the throughputs' "per die"
    /// and "per chip" divide by these over the run, not by the layout at its end).
    var deviceTime = DeviceCounts<Double>()
    var deviceTimeSince: SimTime = 0
    /// The devices held since ``deviceTimeSince``.
    var devices = DeviceCounts<Int>()

    /// Latencies in microseconds, whole run and current telemetry interval.
    var ttft = LatencyHistogram()
    var tpot = LatencyHistogram()
    var e2e = LatencyHistogram()
    /// Per-interval latencies only feed sparkline p99s: a small HdrHistogram, cheap to reset.
    var intervalTTFT = IntervalLatency()
    var intervalTPOT = IntervalLatency()
    var intervalE2E = IntervalLatency()
    /// Output tokens produced (fractional with MTP) in the current interval.
    var intervalOutputTokens = 0.0
    /// Output tokens step observers were told of beyond what requests cut short produced
    /// (``ServingEngine/noteCutShort(_:)``), taken off the next steps' credit.
    var generationCreditOwed = 0.0
    var intervalPrefillTokens = 0.0
    var lastOutputRate = 0.0
    var lastPrefillRate = 0.0

    /// The sparkline points, each array holding at least the last ``seriesCapacity`` (up to
    /// ``seriesSlack`` more): trimming one point per tick moved the whole array every tick (4% of
    /// an Azure code replay); trimming a slack's worth at once moves each point once.
    private var seriesStore: Series
    var seriesCapacity: Int
    /// Points an array may run past ``seriesCapacity`` before it is trimmed back to it.
    private var seriesSlack: Int { max(16, min(seriesCapacity, 1_024)) }
    /// The last ``seriesCapacity`` points of each series (what a snapshot shows).
    var series: Series {
        var s = seriesStore
        let capacity = seriesCapacity
        func last(_ a: inout [Double]) { if a.count > capacity { a.removeFirst(a.count - capacity) } }
        last(&s.outputTokensPerSecond)
        last(&s.ttftP99Ms)
        last(&s.tpotP99Ms)
        last(&s.e2eP99Ms)
        last(&s.kvUsage)
        last(&s.imbalance)
        last(&s.running)
        last(&s.waiting)
        return s
    }
    var ring: Deque<EngineEvent> = []
    var ringCapacity: Int
    /// Events logged so far: the ordinal of the next one (``ring`` holds the last
    /// ``ring.count`` ordinals, so an ordinal below ``logged - ring.count`` has left it).
    var logged = 0
    /// The last ``landmarkCapacity`` events of the ``landmarkKinds``, with their ordinals. A flood
    /// of refused requests (thousands a simulated second at 3,000 req/s) pushed a fault's
    /// detection and recovery out of the ring between two snapshots, so no face ever saw them;
    /// this ring is not flooded, and a snapshot carries those that left the main one.
    var landmarks: Deque<(ordinal: Int, event: EngineEvent)> = []
    static let landmarkCapacity = 256
    /// What happened to the pod and what an operator did, not what happened to one request.
    static let landmarkKinds: Set<EngineEvent.Kind> = [
        .fault, .faultDetected, .recovery, .heal, .drain, .undrain, .command, .commandRejected,
    ]
    var recent = RecentRequests()
    /// The last few hundred requests that left, for a face's request detail (RequestTimes.swift).
    var finished = FinishedRequestRing()
    /// Faces' callbacks (EngineObservers.swift); observe only.
    var observers = EngineObservers()
    /// The decode side's per-die expert load as the last snapshot computed it, with the
    /// popularity and placement it came from: it changes only when they do (a rebalance, a
    /// drift), and comparing them is cheap while they are the same buffers.
    var dieLoadsCache: (popularity: ExpertPopularity, placement: ExpertPlacement, loads: [Double])?
    /// Per die, the layer-0 experts it hosts, for the placement it came from: a new one only after
    /// a rebalance (rebuilding 320 small arrays was a sixth of a saturated snapshot).
    var hostedExpertsCache: (placement: ExpertPlacement, hosted: [[Int]])?

    init(seriesInterval: Double, seriesCapacity: Int, eventCapacity: Int) {
        seriesStore = Series()
        seriesStore.intervalSeconds = seriesInterval
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
        if Self.landmarkKinds.contains(event.kind) {
            if landmarks.count >= Self.landmarkCapacity { landmarks.removeFirst() }
            landmarks.append((logged, event))
        }
        logged += 1
        observers.event?(event)
    }

    /// The landmark events that have left ``ring``, oldest first; nil when none has (a
    /// snapshot then encodes as before).
    var landmarksBeforeRing: [EngineEvent]? {
        let firstInRing = logged - ring.count
        guard let first = landmarks.first, first.ordinal < firstInRing else { return nil }
        return landmarks.prefix { $0.ordinal < firstInRing }.map(\.event)
    }

    mutating func remember(_ status: consuming RequestStatus) { recent.append(status) }

    /// A request that left from TE `te`'s DP group `group`: its location is written out when read.
    mutating func remember(_ status: consuming RequestStatus, te: String, group: Int) {
        recent.append(status, te: te, group: group)
    }

    /// Appends one point to every sparkline series, dropping the oldest beyond capacity.
    mutating func appendPoint(imbalance: Double, kvUsage: Double, running: Double, waiting: Double, interval: Double) {
        lastOutputRate = intervalOutputTokens / interval
        lastPrefillRate = intervalPrefillTokens / interval
        let capacity = seriesCapacity, limit = seriesCapacity + seriesSlack
        func push(_ array: inout [Double], _ value: Double) {
            if array.count >= limit { array.removeFirst(array.count - capacity + 1) }
            array.append(value)
        }
        push(&seriesStore.outputTokensPerSecond, lastOutputRate)
        push(&seriesStore.ttftP99Ms, intervalTTFT.p99Ms)
        push(&seriesStore.tpotP99Ms, intervalTPOT.p99Ms)
        push(&seriesStore.e2eP99Ms, intervalE2E.p99Ms)
        push(&seriesStore.kvUsage, kvUsage)
        push(&seriesStore.imbalance, imbalance)
        push(&seriesStore.running, running)
        push(&seriesStore.waiting, waiting)
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
        let capacity = seriesCapacity, limit = seriesCapacity + seriesSlack
        func push(_ array: inout [Double], _ value: Double) {
            // Trimmed to the capacity before the new points go in only when they would pass the
            // slack; either way the last `capacity` points are what ``series`` shows.
            if array.count + n > limit {
                let keep = max(0, min(array.count, capacity - n))
                array.removeFirst(array.count - keep)
            }
            array.append(contentsOf: repeatElement(value, count: n))
        }
        push(&seriesStore.outputTokensPerSecond, 0)
        push(&seriesStore.ttftP99Ms, 0)
        push(&seriesStore.tpotP99Ms, 0)
        push(&seriesStore.e2eP99Ms, 0)
        push(&seriesStore.kvUsage, kvUsage)
        push(&seriesStore.imbalance, imbalance)
        push(&seriesStore.running, running)
        push(&seriesStore.waiting, waiting)
    }
}

/// Latencies of one telemetry interval, enough for a sparkline's p99: HdrHistogram's
/// `valueAtPercentile(99)` at one significant digit (16 slots per doubling, 3-6% wide),
/// microseconds like ``LatencyHistogram``.
///
/// The interval's samples are kept as they come, and the percentile is found once, when the
/// tick asks: the slot holding the rank-th smallest sample is the slot where a histogram's
/// running count reaches the rank (slots are ordered as values are), so selecting that sample
/// gives the histogram's answer without counting each sample into slots. Recorded into a
/// one-digit histogram, each completion's three latencies cost ~130 instructions apiece and
/// every tick a reset of its counts (11 M of a saturated superpod's 120 s); appended, ~15, and a
/// selection (not a sort: the standard one took 160 instructions a sample) per tick.
struct IntervalLatency {
    /// The interval's samples in µs, in arrival order (emptied, keeping the room, every tick).
    private var samples: [UInt64] = []
    /// HdrHistogram's slots at one digit, as ``LatencyHistogram(digits:binTotals:)`` lays them out.
    private let layout = HdrLayout(highestTrackableValue: LatencyHistogram.highestTrackable, digits: .one)
    #if DEBUG
    /// The same samples in a one-digit ``LatencyHistogram`` (what this stands in for), for tests.
    private var histogram = LatencyHistogram(digits: .one, binTotals: true)
    #endif

    var count: Int { samples.count }

    mutating func record(seconds: Double) { record(micros: LatencyHistogram.micros(seconds)) }

    /// ``record(seconds:)`` of a latency already in ``LatencyHistogram/micros(_:)``.
    mutating func record(micros: UInt64) {
        samples.append(micros)
        #if DEBUG
        histogram.record(micros: micros)
        #endif
    }

    mutating func reset() {
        samples.removeAll(keepingCapacity: true)
        #if DEBUG
        histogram.reset()
        #endif
    }

    /// The interval's 99th percentile in ms (0 when empty): HdrHistogram's `valueAtPercentile`,
    /// the highest value of the slot holding it, within the recorded samples — as
    /// ``LatencyHistogram/percentileMs(_:)``: its rank (1 ulp below 99 %, times the count,
    /// rounded up), the rank-th smallest sample's slot, clamped to the smallest and largest sample.
    var p99Ms: Double {
        guard !samples.isEmpty else { return 0 }
        var lowest = UInt64.max, highest: UInt64 = 0
        for sample in samples {
            lowest = Swift.min(lowest, sample)
            highest = Swift.max(highest, sample)
        }
        let requested = Swift.min(Swift.max((99.0).nextDown, 0.0), 100.0)
        let rank = Swift.max(1, UInt64(((requested * Double(samples.count)) / 100.0).rounded(.up)))
        var scratch = samples
        let slot = layout.slot(of: Self.select(Int(Swift.min(rank, UInt64(samples.count))) - 1, in: &scratch))
        return Double(Swift.max(Swift.min(slot.lowest + slot.size - 1, highest), lowest)) / 1_000
    }

    /// The `k`-th smallest (from 0) of `values`, which it reorders: Hoare's selection, each round
    /// partitioning around the middle value and keeping the side that holds position `k`.
    static func select(_ k: Int, in values: inout [UInt64]) -> UInt64 {
        precondition(k >= 0 && k < values.count, "a position among the values")
        return values.withUnsafeMutableBufferPointer { v in
            var low = 0, high = v.count - 1
            while low < high {
                let pivot = v[low + (high - low) / 2]
                var i = low, j = high
                while i <= j {
                    while v[i] < pivot { i += 1 }
                    while v[j] > pivot { j -= 1 }
                    if i <= j {
                        v.swapAt(i, j)
                        i += 1
                        j -= 1
                    }
                }
                // Now v[low...j] ≤ pivot ≤ v[i...high], and anything between equals the pivot.
                if k <= j {
                    high = j
                } else if k >= i {
                    low = i
                } else {
                    return v[k]
                }
            }
            return v[k]
        }
    }

    #if DEBUG
    /// The library's own answer, for tests.
    var referenceP99Ms: Double { histogram.count == 0 ? 0 : histogram.referenceSummary().p99Ms }
    /// A one-digit ``LatencyHistogram``'s walk over the same samples, for tests.
    var histogramP99Ms: Double { histogram.count == 0 ? 0 : histogram.percentileMs(99) }
    #endif
}

/// An HdrHistogram of latencies in microseconds (3 significant digits, up to 17 years), with
/// what a snapshot shows of it kept up to date as samples arrive (issue 12: a snapshot under
/// 1 ms on a saturated superpod). The library's accessors each walk its whole counts array
/// (about 28,000 slots) in generic code, the bins once per bin: 8 of a saturated superpod's
/// 14 million instructions per snapshot. Here a sample also adds to
/// - the exact sum of the slot midpoints HdrHistogram's `mean` adds up (so the mean is its mean),
/// - counts per snapshot bin (upper bounds 1, 2, 4, … ms, at the histogram's resolution, as
///   `count(within: 0...upper)` draws them), each split in ``subBins`` by slot,
/// and a percentile walks only the slots of the one sub-bin that holds it, with the library's
/// own rank and clamping. The slot counts themselves are kept here in the library's layout
/// (``HdrLayout``). Values are equal to the library's (LatencyHistogramTests; debug builds
/// feed a library histogram the same samples to compare with).
struct LatencyHistogram {
    /// HdrHistogram's layout at this histogram's precision; the counts are kept here, not in
    /// the library's `Histogram` (one bucket computation per sample, HdrLayout.swift).
    private let layout: HdrLayout
    /// Samples per HdrHistogram slot.
    private var slotCounts: [UInt64]
    private var total: UInt64 = 0
    private var maxValue: UInt64 = 0
    private var minNonZeroValue: UInt64 = .max
    /// Sample counts per (bin, sub-bin), bin-major; a slot belongs wholly to one sub-bin.
    private var subCounts: [UInt64]
    /// Sample counts per bin (the sum of its sub-bins), kept only by histograms that answer a
    /// percentile about as often as they record (``IntervalLatency``'s debug twin; a sparkline's
    /// interval now keeps its samples instead): the walk then skips whole bins and
    /// reads at most 40 + 16 counts instead of up to 640. Whole-run histograms are asked once a
    /// snapshot and record far more often, so they keep no totals (empty) and walk the sub-bins.
    private var binCounts: [UInt64]
    private var keepsBinTotals: Bool { !binCounts.isEmpty }
    /// Sum of HdrHistogram's `medianEquivalentForValue` over the samples.
    private var midpointSum: UInt64 = 0
    /// Per bin: the lowest value it holds and how many values it spans (slot-aligned).
    private let binStarts: [UInt64]
    private let binWidths: [UInt64]
    /// Per slot, its index into ``subCounts``: one load per sample instead of a bin search and
    /// a division (``subBin(ofSlotAt:)``, what the table is built to equal; issue 12).
    private let subBinOfSlot: [UInt16]
    #if DEBUG
    /// The library's histogram fed the same samples: what tests compare with.
    private var reference: Histogram<UInt64>
    private let emptyReference: Histogram<UInt64>
    #endif

    static let binCount = 40
    static let subBins = 16
    /// The highest value tracked, in µs: the top of the last doubling bin, 1000·2^39 µs (17.4
    /// years), past the longest run `--duration` allows (10 years). At 10 hours, a request slowed
    /// longer than that (a 1000× straggler: 19.5 h end to end) was counted at 10 h, and the
    /// report's E2E percentiles and mean disagreed with its own `--requests-out` row. Values
    /// below the old ceiling sit in the same slots as before (the slot layout does not depend
    /// on it), so every other report is unchanged.
    static let highestTrackable: UInt64 = 549_755_813_888_000

    init(digits: SignificantDigits = .three, binTotals: Bool = false) {
        let layout = HdrLayout(highestTrackableValue: Self.highestTrackable, digits: digits)
        self.layout = layout
        slotCounts = Array(repeating: 0, count: layout.slotCount)
        #if DEBUG
        reference = Histogram<UInt64>(highestTrackableValue: Self.highestTrackable, numberOfSignificantValueDigits: digits)
        emptyReference = reference
        #endif
        // Bin k holds the slots at or below the slot of 1000·2^k µs (`count(within:)`'s reach).
        let tops = (0..<Self.binCount).map { layout.highestEquivalent(1_000 << UInt64($0)) }
        binStarts = [0] + tops.dropLast().map { $0 + 1 }
        binWidths = zip(tops, binStarts).map { $0 - $1 + 1 }
        subCounts = Array(repeating: 0, count: Self.binCount * Self.subBins)
        binCounts = binTotals ? Array(repeating: 0, count: Self.binCount) : []
        subBinOfSlot = Self.subBinTable(layout: layout, binStarts: binStarts, binWidths: binWidths)
    }

    /// The sub-bin of every slot, filled run by run: sub-bin j of bin k starts at the first slot
    /// whose lowest value is at least binStarts[k] + ⌈j·width/16⌉ (where `subBin(ofSlotAt:)`'s
    /// quotient reaches j), and the last sub-bin runs to the last slot. Slots are consecutive in
    /// value as in index, so each run is a range of indices.
    private static func subBinTable(layout: HdrLayout, binStarts: [UInt64], binWidths: [UInt64]) -> [UInt16] {
        var table = [UInt16](repeating: 0, count: layout.slotCount)
        func firstSlot(ofSubBin sub: Int) -> Int {
            let (k, j) = (sub / subBins, sub % subBins)
            let from = binStarts[k] + (UInt64(j) * binWidths[k] + UInt64(subBins) - 1) / UInt64(subBins)
            let slot = layout.slot(of: from)
            return Swift.min(layout.slotCount, slot.lowest < from ? slot.index + 1 : slot.index)
        }
        let subs = binCount * subBins
        table.withUnsafeMutableBufferPointer { table in
            var start = 0
            for sub in 0..<subs {
                let end = sub + 1 == subs ? layout.slotCount : Swift.max(start, firstSlot(ofSubBin: sub + 1))
                for i in start..<end { table[i] = UInt16(truncatingIfNeeded: sub) }
                start = end
            }
        }
        return table
    }

    /// Changes with every record and reset: the key of ``summary()``'s cache.
    private var version: UInt64 = 0
    private var cachedVersion: UInt64 = .max
    private var cached = Summary()

    /// A latency in whole microseconds, within what the histograms track (1 µs to 17 years,
    /// ``highestTrackable``).
    /// Inlined: three conversions per completion, a few instructions each.
    @inline(__always)
    static func micros(_ seconds: Double) -> UInt64 {
        let x = seconds * 1_000_000
        // `rounded()` without libm's `round` call where it can; other values take the long way.
        if let rounded = Int(roundingSmallNonNegative: x) {
            return UInt64(Swift.max(1, Swift.min(Int(highestTrackable) - 1, rounded)))
        }
        return UInt64(max(1, min(Double(highestTrackable - 1), x.rounded())))
    }

    mutating func record(seconds: Double) { record(micros: Self.micros(seconds)) }

    /// ``record(seconds:)`` of a latency already in ``micros(_:)`` (a completion records each of
    /// its latencies in a whole-run and an interval histogram: converted once for both).
    mutating func record(micros value: UInt64) {
        #if DEBUG
        reference.record(value)
        #endif
        let slot = layout.slot(of: value)
        slotCounts[slot.index] &+= 1
        total &+= 1
        if value > maxValue { maxValue = value }
        if value < minNonZeroValue, value != 0 { minNonZeroValue = value }
        midpointSum &+= slot.lowest + (slot.size >> 1)
        let sub = Int(subBinOfSlot[slot.index])
        subCounts[sub] += 1
        if keepsBinTotals { binCounts[sub / Self.subBins] += 1 }
        if recordedSinceReset < Self.trackedSubBins { touchedSlots.append(Int32(truncatingIfNeeded: slot.index)) }
        recordedSinceReset += 1
        version &+= 1
    }

    /// The slots the first ``trackedSubBins`` samples since the last reset went to (their
    /// sub-bins follow from ``subBinOfSlot``): an interval histogram holds a few samples per
    /// telemetry tick, and its reset then clears those instead of every sub-bin and slot (three
    /// resets a tick were 8% of an Azure replay).
    private var touchedSlots: [Int32] = []
    private var recordedSinceReset = 0
    static let trackedSubBins = 64

    /// Index into ``subCounts`` of the slot whose lowest value is `low` (what ``subBinOfSlot``
    /// holds; the record path reads the table, tests compare it with this).
    func subBin(ofSlotAt low: UInt64) -> Int {
        // First guess from the bounds 1000·2^k, then corrected against the slot-aligned starts.
        let q = low / 1_000
        var k = Swift.min(Self.binCount - 1, q == 0 ? 0 : 64 - q.leadingZeroBitCount)
        while k > 0 && low < binStarts[k] { k -= 1 }
        while k < Self.binCount - 1 && low >= binStarts[k + 1] { k += 1 }
        let j = Swift.min(Self.subBins - 1, Int((low - binStarts[k]) * UInt64(Self.subBins) / binWidths[k]))
        return k * Self.subBins + j
    }

    mutating func reset() {
        if total > 0 {
            #if DEBUG
            reference = emptyReference
            #endif
            // In place: only the touched sub-bins and slots while they are known, else all.
            let known = recordedSinceReset <= Self.trackedSubBins
            slotCounts.withUnsafeMutableBufferPointer { slots in
                if known { for s in touchedSlots { slots[Int(s)] = 0 } } else { slots.update(repeating: 0) }
            }
            subCounts.withUnsafeMutableBufferPointer { counts in
                binCounts.withUnsafeMutableBufferPointer { bins in
                    if known {
                        for s in touchedSlots {
                            let sub = Int(subBinOfSlot[Int(s)])
                            counts[sub] = 0
                            if !bins.isEmpty { bins[sub / Self.subBins] = 0 }
                        }
                    } else {
                        counts.update(repeating: 0)
                        bins.update(repeating: 0)
                    }
                }
            }
            total = 0
            maxValue = 0
            minNonZeroValue = .max
            midpointSum = 0
        }
        touchedSlots.removeAll(keepingCapacity: true)
        recordedSinceReset = 0
        version &+= 1
    }

    /// What a snapshot shows of the histogram.
    struct Summary: Equatable {
        var meanMs = 0.0, p50Ms = 0.0, p90Ms = 0.0, p99Ms = 0.0
        var bins = HistogramBins()
    }

    /// Mean, percentiles and bins, recomputed only when samples arrived since the last call
    /// (a snapshot of an idle or paused engine costs nothing here).
    mutating func summary() -> Summary {
        if cachedVersion != version {
            cached = computeSummary()
            cachedVersion = version
        }
        return cached
    }
    var count: UInt64 { total }
    var meanMs: Double { summary_().meanMs }
    var p50Ms: Double { summary_().p50Ms }
    var p90Ms: Double { summary_().p90Ms }
    var p99Ms: Double { summary_().p99Ms }
    /// The summary without touching the cache (a report reads it once).
    private func summary_() -> Summary { cachedVersion == version ? cached : computeSummary() }

    /// HdrHistogram's `min`: 0 when empty or when 0 was recorded, else the lowest sample.
    private var lowestRecorded: UInt64 { slotCounts[0] > 0 || total == 0 ? 0 : minNonZeroValue }

    private func computeSummary() -> Summary {
        guard total > 0 else { return Summary() }
        // HdrHistogram's mean adds midpoint × count per slot in Doubles; below 2^53 every partial
        // sum is an exact integer, so it equals the integer sum. Beyond, its walk.
        let mean = midpointSum < (1 << 53) ? Double(midpointSum) / Double(total) : slotWalkMean()
        var bounds: [Double] = [], counts: [Int] = [], parts: [Int] = []
        var below: UInt64 = 0
        for k in 0..<Self.binCount where below < total {
            let sub = subCounts[(k * Self.subBins)..<((k + 1) * Self.subBins)]
            let inBin = keepsBinTotals ? binCounts[k] : sub.reduce(0, +)
            bounds.append(Double(1_000 << UInt64(k)) / 1_000)
            counts.append(Int(inBin))
            // The sub-bins too: samples within one doubling bin (a TPOT of 12…15 ms) drew as
            // one full-width bar; the console draws them on a finer linear axis.
            parts.append(contentsOf: sub.lazy.map { Int($0) })
            below += inBin
        }
        return Summary(meanMs: withinRecorded(mean) / 1_000, p50Ms: percentileMs(50), p90Ms: percentileMs(90),
                       p99Ms: percentileMs(99),
                       bins: HistogramBins(upperBoundsMs: bounds, counts: counts, subBins: Self.subBins, subCounts: parts))
    }

    /// A mean (µs) kept within the recorded samples: the slot-midpoint mean can fall outside
    /// them (one sample of 83.801 ms read 83.808, above its own p99); the true mean cannot, so
    /// it is bounded as the percentiles are.
    private func withinRecorded(_ mean: Double) -> Double {
        Swift.min(Swift.max(mean, Double(lowestRecorded)), Double(maxValue))
    }

    /// HdrHistogram's `mean`: each recorded slot's midpoint times its count, added in Doubles in
    /// slot order, over the total.
    func slotWalkMean() -> Double {
        guard total > 0 else { return 0 }
        var sum = 0.0
        for i in slotCounts.indices where slotCounts[i] > 0 {
            let slot = layout.slot(of: layout.lowestValue(ofSlot: i))
            sum += Double(slot.lowest + (slot.size >> 1)) * Double(slotCounts[i])
        }
        return sum / Double(total)
    }

    /// HdrHistogram's `valueAtPercentile(p)` (0 < p < 100) in ms: its rank (1 ulp below p, times
    /// the count, rounded up), the highest value of the slot where the running count reaches
    /// it, clamped to the recorded range; the walk starts at the sub-bin holding that rank.
    /// Needs at least one sample.
    func percentileMs(_ p: Double) -> Double {
        let requested = Swift.min(Swift.max(p.nextDown, 0.0), 100.0)
        let rank = Swift.max(1, UInt64(((requested * Double(total)) / 100.0).rounded(.up)))
        var cumulative: UInt64 = 0
        // The first sub-bin where the running count reaches the rank (the last one if none does):
        // whole bins below it are skipped by their totals, then its bin is walked sub-bin by sub-bin.
        var k = 0, j = 0
        if keepsBinTotals {
            while k < Self.binCount - 1 && cumulative + binCounts[k] < rank {
                cumulative += binCounts[k]
                k += 1
            }
            while j < Self.subBins - 1 && cumulative + subCounts[k * Self.subBins + j] < rank {
                cumulative += subCounts[k * Self.subBins + j]
                j += 1
            }
        } else {
            var sub = 0
            while sub < subCounts.count - 1 && cumulative + subCounts[sub] < rank {
                cumulative += subCounts[sub]
                sub += 1
            }
            (k, j) = (sub / Self.subBins, sub % Self.subBins)
        }
        // The first slot whose lowest value falls in sub-bin j of bin k; then slot by slot (slots
        // are consecutive in value as in index).
        let from = binStarts[k] + (UInt64(j) * binWidths[k] + UInt64(Self.subBins) - 1) / UInt64(Self.subBins)
        var slot = layout.slot(of: from)
        if slot.lowest < from { slot = layout.slot(of: slot.lowest + slot.size) }
        let highest = maxValue
        var value = slot.lowest
        while value <= highest {
            cumulative += slotCounts[slot.index]
            if cumulative >= rank {
                return Double(Swift.max(Swift.min(slot.lowest + slot.size - 1, highest), lowestRecorded)) / 1_000
            }
            value = slot.lowest + slot.size
            slot = layout.slot(of: value)
        }
        return Double(highest) / 1_000  // unreachable: the counts add up to the total
    }

    #if DEBUG
    /// HdrHistogram's own accessors (what ``computeSummary()`` must equal), for tests.
    func referenceSummary() -> Summary {
        guard reference.totalCount > 0 else { return Summary() }
        func ms(_ p: Double) -> Double { Double(reference.valueAtPercentile(p)) / 1_000 }
        var bounds: [Double] = []
        var counts: [Int] = []
        var parts: [Int] = []
        var upper: UInt64 = 1_000
        var below: UInt64 = 0
        while below < reference.totalCount && bounds.count < 40 {
            let inBin = reference.count(within: 0...upper)
            // Sub-bin j of this bin: from the first slot at or above binStart + ⌈j·width/16⌉.
            let k = bounds.count
            let starts = (0...Self.subBins).map { j -> UInt64 in
                guard j < Self.subBins else { return binStarts[k] + binWidths[k] }
                let from = binStarts[k] + (UInt64(j) * binWidths[k] + UInt64(Self.subBins) - 1) / UInt64(Self.subBins)
                let slot = layout.slot(of: from)
                return slot.lowest < from ? slot.lowest + slot.size : slot.lowest
            }
            for j in 0..<Self.subBins {
                parts.append(starts[j] < starts[j + 1] ? Int(reference.count(within: starts[j]...(starts[j + 1] - 1))) : 0)
            }
            bounds.append(Double(upper) / 1_000)
            counts.append(Int(inBin - below))
            below = inBin
            upper *= 2
        }
        // The library's `max` is its slot's highest equivalent value, not the sample itself.
        return Summary(meanMs: withinRecorded(reference.mean) / 1_000, p50Ms: ms(50), p90Ms: ms(90), p99Ms: ms(99),
                       bins: HistogramBins(upperBoundsMs: bounds, counts: counts, subBins: Self.subBins, subCounts: parts))
    }

    /// Every slot's sub-bin as the table holds it and as ``subBin(ofSlotAt:)`` computes it.
    func subBinsOfSlots() -> (table: [Int], computed: [Int]) {
        (subBinOfSlot.map { Int($0) }, (0..<layout.slotCount).map { subBin(ofSlotAt: layout.lowestValue(ofSlot: $0)) })
    }

    /// The library's mean and sample count, for tests of the slot walk.
    var referenceMean: Double { reference.mean }
    var referenceCount: UInt64 { reference.totalCount }
    #endif
}

/// The last ``capacity`` requests that left, for a snapshot's list. A request's location
/// ("decode-0/dp117") is kept as its parts and written out only when read: formatting it for
/// every completion was a string build per request that hardly anyone reads.
struct RecentRequests: Sequence {
    struct Entry {
        var status: RequestStatus
        /// The TE's name and DP group; nil = `status.location` as given.
        var te: String?
        var group: Int32

        var resolved: RequestStatus {
            guard let te else { return status }
            var s = status
            s.location = "\(te)/dp\(group)"
            return s
        }
    }
    static let capacity = 50
    private var entries = LastValues<Entry>(capacity: RecentRequests.capacity)

    var count: Int { entries.count }

    mutating func append(_ status: consuming RequestStatus) { entries.append(Entry(status: status, te: nil, group: 0)) }

    mutating func append(_ status: consuming RequestStatus, te: String, group: Int) {
        entries.append(Entry(status: status, te: te, group: Int32(truncatingIfNeeded: group)))
    }

    /// The latest request matching `predicate`, location written out.
    func last(where predicate: (RequestStatus) -> Bool) -> RequestStatus? {
        entries.last { predicate($0.resolved) }?.resolved
    }

    func makeIterator() -> Iterator { Iterator(inner: entries.makeIterator()) }

    struct Iterator: IteratorProtocol {
        var inner: LastValues<Entry>.Iterator
        mutating func next() -> RequestStatus? { inner.next()?.resolved }
    }
}
