import SimKit

/// Idle time is free (issue 10): work on a fixed simulated cadence — telemetry ticks (with the
/// expert-popularity drift, EPLB cadence and heat window they carry) and heartbeat rounds — must
/// not turn a long stretch in which nothing else happens into millions of events.
///
/// A stretch qualifies when the periodic work is *steady*: the last telemetry interval with any
/// activity has been closed, no fault waits on a heartbeat to be detected, KV probes and drain
/// announcements have nothing new to say, and no expert swap is under way. Then, up to the next
/// event that is not periodic (an arrival, a step or transfer end, a fault timer) or the caller's
/// limit, every tick and heartbeat round but the last is applied at once:
///
/// - heartbeat rounds change nothing (their effect in a steady state is a no-op);
/// - a telemetry tick closes an empty interval: utilisation decays in closed form, the KV peak
///   is unchanged, sparkline points are zero rates at constant KV usage, running and waiting
///   counts, and the expected expert imbalance after the drift;
/// - popularity does not drift in an interval with no traffic (its drift clock moves on, and
///   nothing random is drawn), and the heat window closes once (later windows are empty);
/// - the EPLB's automatic cadence does not fire inside the stretch: a stretch starts only once
///   every collection window with counts has been planned from (no tokens are routed inside it,
///   so there are no new counts); the cadence fires at the first tick after it.
///
/// The events are moved to their grid times just before the end of the stretch, so the clock,
/// the report and the console see the same cadence as before, and the skipped events are
/// counted as if processed. A quiet tick processed on its own (``telemetryTick()``) takes the
/// same closed form with a count of 1, so the result never depends on how a driver slices time
/// (a console at 1×, `xds run`, a replay of the console's command log all agree: determinism).
/// Stretches shorter than ``idleSkipMinimumSeconds`` are simply ticked.
extension ServingEngine {
    /// Shortest stretch skipped at once (simulated seconds): shorter ones cost a few hundred
    /// cheap events and stay exactly as they always were.
    public static let idleSkipMinimumSeconds: SimTime = 60

    /// When nothing but periodic bookkeeping happens before the engine's next real event (an
    /// arrival, the end of a step or transfer, a fault timer), the time of that event
    /// (`.infinity` if none is scheduled); nil while the periodic work still has something to
    /// do (an interval with activity not yet closed, a fault not yet detected…). A batch driver
    /// may run to this time in one call: the stretch costs O(1) events, not one per tick.
    public var quietUntil: SimTime? {
        guard periodicWorkIsSteady() else { return nil }
        return queue.earliestTime { !$0.isPeriodic } ?? .infinity
    }

    /// Schedules the next telemetry tick, remembering it so an idle skip can move it.
    func scheduleTelemetryTick(at time: SimTime) {
        telemetryTickEvent = (queue.schedule(at: time, .telemetryTick), time)
    }

    /// Schedules the next heartbeat round, remembering it so an idle skip can move it.
    func scheduleHeartbeatRound(at time: SimTime) {
        heartbeatEvent = (queue.schedule(at: time, .fault(.heartbeatRound)), time)
    }

    /// Whether ticking the periodic events would change nothing that ``skipQuietStretch(before:)``
    /// does not compute in closed form. Cheap when the engine is busy (the first test fails).
    func periodicWorkIsSteady() -> Bool {
        // A telemetry interval with activity in it is still open.
        guard telemetry.intervalOutputTokens == 0, telemetry.intervalPrefillTokens == 0,
              experts.intervalSteps == 0, telemetry.intervalTTFT.count == 0,
              telemetry.intervalTPOT.count == 0, telemetry.intervalE2E.count == 0 else { return false }
        // Heartbeats still have something to find: silent rounds being counted, a glitch redo, a
        // fault not yet detected (a straggler is found only once its TE steps).
        guard faults.silentRounds.isEmpty, faults.redoPending.isEmpty else { return false }
        for record in faults.records where record.active && record.detectedAt == nil {
            guard case .straggler(let die, _) = record.kind, let (i, _) = cluster.locate(die: die), !instances[i].stepping
            else { return false }
        }
        // KV probes: a "delayed" episode starts or ends on the next round.
        for d in instances.indices where instances[d].role == .decode {
            let waiting = !(instances[d].decode?.transferQueue.isEmpty ?? true)
            if waiting != faults.delayedChannels.contains(d) && (!waiting || !isHalted(d)) { return false }
        }
        // A drained node the next round would announce empty.
        if cluster.hasUnannouncedDrains,
           drainProgress().contains(where: { $0.requestsLeft == 0 && !cluster.isAnnouncedEmpty($0.node) }) {
            return false
        }
        // An expert swap advances on ticks; so does an automatic EPLB with counts still to plan
        // from (its window closes on its own cadence, whatever the stretch).
        if experts.hasPendingWork { return false }
        return true
    }

    /// Applies every periodic event of a steady stretch at once (see the type's notes), up to the
    /// next real event or `limit`, whichever is first. Returns false, changing nothing, when the
    /// stretch is not steady or too short to bother.
    func skipQuietStretch(before limit: SimTime) -> Bool {
        guard idleSkipEnabled, let tick = telemetryTickEvent, let beat = heartbeatEvent,
              queue.isPending(tick.id), queue.isPending(beat.id) else { return false }
        guard periodicWorkIsSteady() else { return false }
        let horizon = min(limit, queue.earliestTime { !$0.isPeriodic } ?? .infinity)
        guard horizon.isFinite, horizon - min(tick.time, beat.time) >= Self.idleSkipMinimumSeconds else {
            // Nothing to gain before `horizon`: do not ask again until then.
            noSkipBefore = horizon
            return false
        }
        let interval = configuration.snapshotInterval
        let beatInterval = configuration.faults.heartbeatIntervalSeconds
        let ticks = Self.gridSteps(from: tick.time, every: interval, before: horizon)
        let beats = Self.gridSteps(from: beat.time, every: beatInterval, before: horizon)
        guard ticks.count >= 1 || beats.count >= 1 else {
            noSkipBefore = horizon
            return false
        }
        if ticks.count >= 1 {
            closeQuietIntervals(count: ticks.count, first: tick.time)
            queue.cancel(tick.id)
            // Ticks keep to their grid (``telemetryTick()``), as rounds do below.
            let onGrid = ticks.next.nearestOnGrid(every: interval)
            scheduleTelemetryTick(at: onGrid > tick.time && onGrid < horizon ? onGrid : ticks.next)
        }
        if beats.count >= 1 {
            queue.cancel(beat.id)
            // Rounds keep to their grid (ServingEngine.heartbeatRound); k·step added to the last
            // one is off it by rounding.
            let onGrid = beats.next.nearestOnGrid(every: beatInterval)
            scheduleHeartbeatRound(at: onGrid > beat.time && onGrid < horizon ? onGrid : beats.next)
        }
        let skipped = Int(saturating: ticks.count + beats.count)
        skippedPeriodicEvents = Saturating.add(skippedPeriodicEvents, skipped)
        // Counted as processed: the report's event count must not depend on the driver's slicing.
        telemetry.events = Saturating.add(telemetry.events, skipped)
        return true
    }

    /// Events of a cadence of `step` seconds from `start` that a skip to `horizon` applies at
    /// once, and when the cadence's next event then lands: the last grid point `start + k·step`
    /// strictly before `horizon`. Where the clock cannot resolve the grid (astronomically late
    /// times) the next event lands just before `horizon` instead. `count` is a Double: late in
    /// a very long run it exceeds `Int`. (0, start) when nothing can be skipped.
    static func gridSteps(from start: SimTime, every step: SimTime,
                          before horizon: SimTime) -> (count: Double, next: SimTime) {
        guard step > 0, start < horizon, horizon.isFinite else { return (0, start) }
        var k = ((horizon - start) / step).rounded(.down)
        if !(start + k * step < horizon) { k -= 1 }
        if k >= 1, start + k * step < horizon, start + k * step > start { return (k, start + k * step) }
        guard horizon - start >= step, start + step == start || k >= 1 else { return (0, start) }
        let next = horizon.nextDown
        guard next > start else { return (0, start) }
        return (max(1, ((next - start) / step).rounded(.down)), next)
    }

    /// `count` telemetry ticks at `first`, `first + interval`, … over intervals in which nothing
    /// happened, in closed form (see the type's notes).
    func closeQuietIntervals(count k: Double, first t0: SimTime) {
        let interval = configuration.snapshotInterval
        for index in instances.indices {
            (instances[index].utilization, instances[index].busySeconds) =
                Self.decayUtilization(busy: instances[index].busySeconds, utilization: instances[index].utilization,
                                      ticks: k, interval: interval)
        }
        let usage = decodeKVUsage()
        telemetry.peakDecodeUsage = max(telemetry.peakDecodeUsage, usage)
        skipExpertTicks(count: k, first: t0)
        let imbalance = configuration.eplb == .perfect ? 1 : experts.decodeExpectedImbalance
        let counts = requestCounts()
        telemetry.appendQuietPoints(count: k, imbalance: imbalance, kvUsage: usage, running: Double(counts.running),
                                    waiting: Double(counts.waiting))
    }

    /// Utilisation and carried-over busy time after `ticks` ticks with no new work: each tick
    /// reports min(1, busy/interval) and carries the rest. Tick by tick for the first few (as
    /// ``telemetryTick()`` computes it), in closed form beyond.
    static func decayUtilization(busy: Double, utilization: Double, ticks: Double,
                                 interval: Double) -> (utilization: Double, busy: Double) {
        var busy = busy, utilization = utilization, done = 0.0
        while done < ticks && done < 64 {
            utilization = min(1, busy / interval)
            busy = max(0, busy - interval)
            done += 1
            if busy == 0 { break }
        }
        guard done < ticks else { return (utilization, busy) }
        if busy == 0 { return (0, 0) }
        let remaining = ticks - done
        utilization = min(1, max(0, busy - (remaining - 1) * interval) / interval)
        return (utilization, max(0, busy - remaining * interval))
    }

    /// The expert part of `k` quiet ticks (``ExpertSystem/skipQuietTicks(count:first:interval:)``).
    private func skipExpertTicks(count k: Double, first t0: SimTime) {
        experts.skipQuietTicks(count: k, first: t0, interval: configuration.snapshotInterval)
    }
}

extension EngineEventKind {
    /// Bookkeeping on a fixed cadence (telemetry ticks, heartbeat rounds), which an idle skip
    /// may move; everything else is a real event that bounds the skip.
    var isPeriodic: Bool {
        switch self {
        case .telemetryTick, .fault(.heartbeatRound): true
        default: false
        }
    }
}
