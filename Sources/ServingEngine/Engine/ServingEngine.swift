import PodModel
import SimKit

/// The headless serving engine: the deterministic, single-threaded core of architecture.md.
///
/// Requests flow arrival → JE (pick a prefill TE) → prefill leader (pick a DP group) →
/// chunked prefill batches → KV transfer, pulled by decode when it has free blocks → decode DP
/// group (skip full groups, lowest KV usage including reserved output space) → continuous
/// batching with MTP → completion. Faces drive it with ``apply(_:)`` and read ``snapshot()``
/// and ``report()``; nothing here reads the wall clock, a global RNG or the terminal.
///
/// Simplifications, for now: a request's decode progress is computed at join (steps to finish
/// from its output length at `1 + acceptance` tokens per step), so decode KV is held as prompt
/// blocks plus a reservation for the output rather than grown token by token; the reservation
/// uses the request's real output length as its `max_tokens`; MoE routing is not sampled
/// (expert imbalance 1); `xdeepserve-ma` decodes as one TE of 480 attention DP groups. Faults,
/// heartbeats and recovery live in Faults/ and hook in with one-line calls.
///
/// ```swift
/// let engine = try ServingEngine(configuration: EngineConfiguration(deployment: .superpod),
///                                workload: SyntheticWorkload(seed: 1))
/// engine.run(until: 60)
/// print(engine.report().requests.completed)
/// ```
public final class ServingEngine {
    public let configuration: EngineConfiguration
    let model: ModelSpec
    let hardware: HardwareProfile
    public let topology: PodTopology
    let cost: CostModel
    /// Tokens a decode step yields per request on average: 1 + MTP acceptance (system.md §4).
    let tokensPerStep: Double

    var workload: any WorkloadSource
    /// Whether `workload` is the synthetic generator (the only kind a `rate` command re-times);
    /// fixed at init, as the workload's kind never changes. Testing the existential per arrival
    /// copied it (a retain of its box and a dynamic-type lookup, ~0.5% of a saturated superpod).
    let workloadIsSynthetic: Bool
    var queue = EngineEventQueue()
    public private(set) var now: SimTime = 0
    var arrivalPending = false
    var requests = RequestTable()
    var instances: [InstanceState] = []
    /// KV transfer channels, prefill → decode (``KVTransfer``: the only writer of their state).
    /// A `let` (set in the inits only): a call into it from a `var` was wrapped in a retain and
    /// release of it, seven times per request (issue 12).
    let kvTransfer: KVTransfer
    var telemetry: EngineTelemetry
    /// The hardware map, node drains and placement eligibility (``ClusterManager``); a `let`, so
    /// passing it to the JE and the pool per call retains nothing.
    let cluster: ClusterManager
    /// Injected faults, heartbeats and recovery (``FaultSystem``). A `let`, as ``kvTransfer``.
    let faults: FaultSystem
    /// Pacer state, recorded for snapshots only (speed/pause/resume are the pacer's business).
    var speed: Double? = 1
    var paused = false
    var commandsApplied = 0
    /// Streams of requests submitted from outside (HTTP): ids, output lengths, progress (``ClientStreams``).
    let streams: ClientStreams
    /// Expert popularity, routing and EPLB of every MoE TE, and the expert figures (``ExpertSystem``).
    /// A `let` (set in the inits only): a call into it from a step is not wrapped in a retain and
    /// release of it, as a `var`'s is (issue 12: every step's load factor).
    let experts: ExpertSystem
    /// The pooled DRAM tier (EMS), its hits and the KV block budget (``KVCacheStore``).
    let kvStore: KVCacheStore
    /// The JE: admission, routing and decode placement with their policies (JobExecutor.swift).
    /// A `let`, as ``kvTransfer`` (its policies change inside it).
    let je: JobExecutor

    /// The pending telemetry tick and heartbeat round, which an idle skip moves
    /// (ServingEngine+IdleSkip).
    var telemetryTickEvent: (id: EventID, time: SimTime)?
    var heartbeatEvent: (id: EventID, time: SimTime)?
    /// No idle skip is worth trying before this time (the last try found the stretch too short).
    var noSkipBefore = -SimTime.infinity
    /// Idle skipping on (the default); tests turn it off to compare with tick-by-tick runs.
    public var idleSkipEnabled = true
    /// Periodic events (ticks, heartbeat rounds) applied in closed form by idle skips instead of
    /// one by one; not counted in ``RunReport/events``.
    public internal(set) var skippedPeriodicEvents = 0
    /// Events processed at the current simulated instant (1 after the clock moves). The clock
    /// cannot stop by construction (every delay is positive, arrivals have a floor), so a large
    /// value means a pathological burst; ``run(until:)`` yields after
    /// ``maxEventsPerInstantPerCall`` of them so its caller stays responsive and can tell.
    public internal(set) var eventsAtCurrentInstant = 0
    /// Consecutive arrivals at the same instant, and that instant (the arrival floor).
    var arrivalsAtInstant = 0
    var lastArrivalAt = -SimTime.infinity
    /// The synthetic arrival scheduled and not yet taken in, which a rate change re-times. Its
    /// request stays in the event queue (``EngineEventQueue/cancelArrival(_:)`` hands it back):
    /// a copy here made this optional a generic tuple of references, destroyed through runtime
    /// metadata three times an arrival (2.4% of a saturated superpod).
    var scheduledArrival: (event: EventID, at: SimTime)?
    /// The arrival held back while the synthetic rate is 0, with its remaining wait in mean
    /// gaps (the residual of a Poisson gap, which a rate change rescales; memoryless).
    var parkedArrival: (spec: RequestSpec, remainingGaps: Double)?

    /// An engine over an explicit workload (a trace, a synthetic source, or a test fixture).
    public init(configuration: EngineConfiguration, workload: some WorkloadSource) throws {
        if let problem = configuration.validationProblem() ?? configuration.scaling.validationProblem() {
            throw ConfigError(problem)
        }
        self.configuration = configuration
        let deployment = configuration.deployment
        model = try deployment.modelSpec()
        hardware = try deployment.hardwareProfile()
        topology = try deployment.topology()
        cost = CostModel(model: model, hardware: hardware)
        tokensPerStep = 1 + (model.mtpModules > 0 ? configuration.mtpAcceptance : 0)
        self.workload = workload
        workloadIsSynthetic = workload is SyntheticWorkload
        cluster = ClusterManager(npusPerNode: topology.npusPerNode, diesPerNPU: topology.diesPerNPU)
        faults = FaultSystem(settings: configuration.faults)
        kvTransfer = KVTransfer()
        experts = ExpertSystem(mode: configuration.eplb, intervalSeconds: configuration.eplbIntervalSeconds,
                               topK: model.moe?.topK ?? 8)
        streams = ClientStreams(seed: configuration.seed)
        telemetry = EngineTelemetry(seriesInterval: configuration.snapshotInterval,
                                    seriesCapacity: configuration.seriesCapacity,
                                    eventCapacity: configuration.eventCapacity)
        // The pooled DRAM cache is CloudMatrix's EMS, reached from every NPU over UB (system.md §4),
        // and its loads are priced on the UB plane: a GPU cluster has no such tier. It was built
        // there too (the KV view showed "DRAM pool 0.51 TB" on an A100 node, and pooled prefixes
        // loaded at NVLink speed from host DRAM).
        let poolBytes = hardware.deviceKind == "NPU" && configuration.poolBytesPerNode > 0
            ? configuration.poolBytesPerNode * Double(topology.nodes) : 0
        kvStore = KVCacheStore(blockTokens: configuration.kvBlockTokens, kvBytesPerToken: model.kvBytesPerToken,
                               poolCapacityBytes: poolBytes)
        je = try Self.makeJobExecutor(configuration)
        try installPolicies()
        try buildInstances()
        setUpExperts()
        je.noteGroupBlocks(of: instances.indices, instances: instances, kv: kvStore)
        guard instances.contains(where: \.hasPrefill), instances.contains(where: \.hasDecode) else {
            // Which role is missing, placed at the first group there is (or [moe_attention]): a
            // deployment file's reader names that line, as it does for its other refusals.
            let missing = instances.contains(where: \.hasPrefill) ? "decode or colocated" : "prefill or colocated"
            throw ConfigError("deployment '\(deployment.name)' needs prefill and decode capacity: it has no \(missing) group",
                              at: deployment.groups.isEmpty ? .moeAttention(nil) : .group(0, nil))
        }
        scheduleTelemetryTick(at: configuration.snapshotInterval)
        startHeartbeats()
        scheduleNextArrival()
        try setUpScaling()
    }

    /// A copy of `other`'s immutable parts, clock and sinks; ``fork()`` (ServingEngine+Fork)
    /// copies the rest of its state.
    init(forking other: ServingEngine, workload: any WorkloadSource) {
        configuration = other.configuration
        model = other.model
        hardware = other.hardware
        topology = other.topology
        cost = other.cost
        tokensPerStep = other.tokensPerStep
        self.workload = workload
        workloadIsSynthetic = workload is SyntheticWorkload
        streams = other.streams.copy()
        telemetry = other.telemetry
        // A fork observes nothing: its requests and steps never reach the live engine's feeds.
        telemetry.observers = EngineObservers()
        je = other.je.copy()
        cluster = other.cluster.copy()
        faults = other.faults.copy()
        kvTransfer = other.kvTransfer.copy()
        kvStore = other.kvStore.copy()
        experts = other.experts.copy()
        now = other.now
    }

    /// An engine that builds its workload from ``EngineConfiguration/workload``.
    public convenience init(configuration: EngineConfiguration) throws {
        switch configuration.workload {
        case .synthetic:
            var synthetic = SyntheticWorkload.Configuration(ratePerSecond: configuration.syntheticRate,
                                                            arrivalCV: configuration.arrivalCV)
            synthetic.contextWindow = try configuration.deployment.modelSpec().contextWindow
            switch configuration.trafficMix {
            case .mixed: break
            case .chat: synthetic.classes = [.chat]
            case .reasoning:
                // Reasoning traffic alone, no shared system prompts: short prompts, long outputs —
                // the load that fills decode rather than prefill.
                synthetic.classes = [.reasoning]
                synthetic.systemPromptShare = 0
            }
            let workload = SyntheticWorkload(seed: configuration.seed, configuration: synthetic)
            try self.init(configuration: configuration, workload: workload)
        case .trace(let path):
            let window = try configuration.deployment.modelSpec().contextWindow
            // (A sped-up replay reads the file again: the check kept the recorded times.)
            if let checked = configuration.checkedTrace, configuration.traceSpeedup == 1,
               checked.matches(path: path, maxContextTokens: window, clipsToContext: configuration.clipTracePromptsToContext) {
                try self.init(configuration: configuration, workload: CheckedTraceWorkload(checked))
                return
            }
            var trace = try TraceWorkload(
                path: path, maxContextTokens: configuration.deployment.modelSpec().contextWindow,
                clipToContext: configuration.clipTracePromptsToContext)
            trace.speedup = configuration.traceSpeedup
            try self.init(configuration: configuration, workload: trace)
        }
    }

    // MARK: Running

    /// Most events ``run(until:)`` processes at one simulated instant before it yields.
    public static let maxEventsPerInstantPerCall = 1_000_000

    /// Processes events until simulated time `limit` (events at `limit` included), then sets
    /// the clock to `limit`. Stretches with nothing but periodic bookkeeping cost O(1)
    /// (ServingEngine+IdleSkip). Should a burst put ``maxEventsPerInstantPerCall`` events at one
    /// instant, it returns early with the clock at that instant (``eventsAtCurrentInstant`` says
    /// so); calling it again continues.
    public func run(until limit: SimTime) {
        run(until: limit, stopWhenDone: false)
    }

    /// As ``run(until:)``; with `stopWhenDone` it also stops, the clock at that event, once the
    /// last request has left and no arrival is due (``hasWork`` false): a run of a trace ends when
    /// its work does, not at the end of the driver's slice (a 0.18 s trace reported 1 s, and a
    /// throughput of that).
    public func run(until limit: SimTime, stopWhenDone: Bool) {
        var atOneInstant = 0
        while let (next, periodic) = queue.peekHead(), next <= limit {
            if periodic, next >= noSkipBefore, skipQuietStretch(before: limit) { continue }
            let before = now
            step()
            if stopWhenDone && !hasWork { return }
            atOneInstant = now == before ? atOneInstant + 1 : 0
            if atOneInstant >= Self.maxEventsPerInstantPerCall { return }
        }
        now = max(now, limit)
    }

    /// Processes one event; returns false when nothing is scheduled.
    @discardableResult
    public func step() -> Bool {
        guard let popped = queue.popNextEvent() else { return false }
        let time = popped.time
        eventsAtCurrentInstant = time == now ? eventsAtCurrentInstant + 1 : 1
        now = time
        telemetry.events += 1
        switch popped.payload {
        case .arrival(let spec): arrive(spec)
        case .stepEnd(let instance): endStep(instance)
        case .transferDone(let channel): finishTransfer(channel)
        case .telemetryTick: telemetryTick()
        case .fault(let timer): handleFaultTimer(timer)
        case .expertSwap(let instance): advanceEPLB(instance)
        case .scaling(let timer): handleScalingTimer(timer)
        }
        return true
    }

    /// Runs until the workload is exhausted and every request has left the system, or until
    /// `limit`. Returns true when everything finished. For finite workloads (tests, traces).
    @discardableResult
    public func runToCompletion(limit: SimTime = .infinity) -> Bool {
        while arrivalPending || telemetry.inFlight > 0 {
            guard let (next, periodic) = queue.peekHead(), next <= limit else { return false }
            if periodic, next >= noSkipBefore, skipQuietStretch(before: limit) { continue }
            step()
        }
        return true
    }

    /// Time of the next event, if any (lets a pacer sleep until then).
    public func nextEventTime() -> SimTime? { queue.peekTime() }

    // MARK: Arrival and the JE

    /// Most arrivals at one instant before the floor below applies.
    static let maxArrivalsPerInstant = 10_000
    /// The floor on arrival gaps once ``maxArrivalsPerInstant`` requests arrived at one instant.
    static let minimumArrivalGap: SimTime = 1e-6

    /// Schedules the workload's next request. The clock never stops here: a source whose
    /// arrivals stop advancing (a rate so high that gaps fall below the clock's resolution, gaps
    /// of a degenerate burstiness) gets ``maxArrivalsPerInstant`` arrivals at one instant, then
    /// the next one ``minimumArrivalGap`` later (its arrival time moved with it). Traces with
    /// ordinary bursts of equal timestamps are untouched.
    func scheduleNextArrival() {
        guard !arrivalPending else { return }
        guard var spec = workload.next() else {
            // A trace that changed after its check ends here; say so instead of just stopping
            // arrivals (the faces print it too: ``workloadError``). A trace returns nil once.
            if let stop = workloadError {
                telemetry.log(EngineEvent(time: now, kind: .info, severity: .error,
                                          message: "trace replay stopped: \(stop)"))
            }
            return
        }
        arrivalPending = true
        var at = max(now, spec.arrival)
        if at.isNaN { at = now }
        // A request due at infinity never arrives (and would stop the clock there).
        guard at.isFinite else {
            arrivalPending = false
            return
        }
        if at <= lastArrivalAt {
            arrivalsAtInstant += 1
            if arrivalsAtInstant >= Self.maxArrivalsPerInstant {
                at = lastArrivalAt.after(Self.minimumArrivalGap)
                spec.arrival = at
            }
        }
        if at > lastArrivalAt {
            lastArrivalAt = at
            arrivalsAtInstant = 0
        }
        let event = queue.schedule(at: at, .arrival(consume spec))
        if workloadIsSynthetic { scheduledArrival = (event, at) }
    }

    /// Why the workload ended before its last request, if it did: a trace that changed (or
    /// turned bad) between its check and the run. nil for a workload read to its end.
    public var workloadError: WorkloadError? { (workload as? TraceWorkload)?.error }

    func arrive(_ spec: consuming RequestSpec) {
        arrivalPending = false
        scheduledArrival = nil
        scheduleNextArrival()
        admit(spec)
    }

    /// The JE takes a request in: rejected (admission), failed (can never fit) or placed on a
    /// prefill TE. Every outcome is counted and, unless placed, has a reason in the event log.
    func admit(_ spec: consuming RequestSpec) {
        telemetry.arrived += 1
        telemetry.promptTokens = Saturating.add(telemetry.promptTokens, max(0, spec.promptTokens))
        noteTrafficClass(spec.tag)
        // The workload's keys leave the spec here (the request keeps only their chain): read from
        // the spec, they were retained and released around the rebase.
        var flatKeys: [UInt64] = []
        swap(&flatKeys, &spec.prefixHashes)
        // A prompt without keys is not chained (seven in ten of a saturated superpod's).
        let chained = flatKeys.isEmpty ? [] : kvStore.chained(PrefixHashes.rebase(
            flatKeys, fromBlockTokens: spec.prefixBlockTokens, toBlockTokens: configuration.kvBlockTokens))
        let id = spec.id
        // The spec moves into the request (its last use): the rejections below read the request's
        // copy (a rejection needs no prefix keys), so the spec is not copied per arrival.
        let request = RequestState(spec: consume spec, chainedKeys: chained)
        let probesPrefix = request.hasPrefixKeys
        guard requests.index(forKey: id) == nil else {
            reject(request.spec, reason: "request id \(id) is already in flight", kind: "request id already in flight")
            return
        }
        if cluster.hasUnplaceableGroups, let reason = noDecodeTEBackSoon() {
            reject(request.spec, reason: reason, kind: "no decode TE accepts work")
            return
        }
        let target: Int
        var holding = false
        switch je.admit(request, instances: instances, cluster: cluster, kv: kvStore) {
        case .neverFits(let reason, let kind):
            requests[id] = request
            fail(id, reason: reason, kind: kind, status: 400)
            return
        case .refused(let reason):
            let none = !instances.indices.contains { instances[$0].hasPrefill && cluster.hasPlaceableGroup(te: $0) }
            // No prefill TE takes work, but one is back from its recovery within the TTFT SLO (an
            // NPU-fork of a fraction of a second): the request waits in its queue, as a request
            // the same fault re-queued does (``requeue(_:reasonIfNowhere:)``), instead of being
            // turned away for a 0.1 s gap. Its queue's admission bound still holds. The wait ends
            // with the outage, whose end is known: ``endOutage(_:)`` sends what waited on to a TE
            // in service, or fails it with the reason, if the TE comes back unable to serve.
            if none, let back = prefillTEBackWithinSLO(), instances[back].waiting < je.maxWaitingPerPrefillTE {
                target = back
                holding = true
                break
            }
            // With no prefill TE taking work the reason says what is down and when one is back;
            // the report counts it under the JE's reason (no figures in a kind).
            reject(request.spec, reason: none ? noPrefillTEReason() : reason, kind: reason)
            return
        case .placed(let te): target = te
        }
        streams.accepted(id)
        // Stored as built (the prefill TE is noted on it in place there): a request changed here
        // first was copied for the JE's call and again into the table.
        requests.insertNew(consume request, forKey: id)
        if holding {
            // The JE routed nothing (its probe log is an earlier decision's): no probe to hand on.
            faults.noteArrivalWaiting(id, on: target)
            placeOnPrefillGroup(id, instance: target, holding: true)
            return
        }
        // A request without prefix keys has no probe to hand on (seven arrivals in ten under load).
        placeOnPrefillGroup(id, instance: target, routedProbe: probesPrefix ? je.routedProbe(of: target) : nil)
    }

    /// Why a request is turned away at the door when prefill and decode are apart and no decode
    /// TE takes work: taken in, it would be prefilled and then wait for one to return (five
    /// minutes under a pd-failover restart, a client hanging on all along). A decode TE due back
    /// within the TTFT SLO (a restart or NPU-fork about to end) is waited for: the request can
    /// still meet its SLO. Nil when a decode TE takes work, the pod has none (colocated), or one
    /// is back soon.
    func noDecodeTEBackSoon() -> String? {
        guard let wait = decodeTEBackIn(), wait > configuration.sloTTFTMs / 1_000 else { return nil }
        return Self.noDecodeTE(backIn: wait)
    }

    /// "no decode TE accepts work (…)", with when the first is back if one is coming back.
    static func noDecodeTE(backIn wait: SimTime) -> String {
        "no decode TE accepts work (all restarting, drained or out of service"
            + (wait.isFinite ? "; the first is back in \(OperatorCommand.format((wait * 10).rounded(.up) / 10)) s)" : ")")
    }

    /// Seconds until the first decode TE takes work again (infinity: none is coming back by
    /// itself: drained, or out of service until repaired); nil when one takes work now or the
    /// pod has no decode TE (colocated).
    private func decodeTEBackIn() -> SimTime? {
        var hasDecodeTE = false
        var soonest = SimTime.infinity
        for index in instances.indices where instances[index].role == .decode && !isRetired(index) {
            hasDecodeTE = true
            if cluster.hasPlaceableGroup(te: index) { return nil }
            switch faults.outage(of: index) {
            case .restarting(let until)?, .forking(let until, _)?, .migrating(let until)?: soonest = min(soonest, until)
            default: break
            }
        }
        return hasDecodeTE ? soonest - now : nil
    }

    /// Prefilled requests queued for a decode TE while no decode TE takes work and none is coming
    /// back by itself (every one drained, or out of service until repaired) fail with that reason:
    /// nothing would ever take them (a review found three still waiting 2,000 simulated seconds
    /// after every decode node was drained, neither finished nor failed). Requests waiting for a
    /// decode TE that is restarting wait for it, as before. Called at each heartbeat round: the
    /// control plane learns there that nothing will take them.
    func failTransfersWithNowhereToGo() {
        guard cluster.hasUnplaceableGroups, let wait = decodeTEBackIn(), wait.isInfinite else { return }
        var stranded: [Int] = []
        for index in instances.indices where instances[index].role == .decode {
            guard let decode = instances[index].decode else { continue }
            stranded += decode.transferQueue
        }
        guard !stranded.isEmpty else { return }
        evict(stranded, outcome: .fail("prefilled, then " + Self.noDecodeTE(backIn: wait)))
    }

    /// Admission control turned the request away; it never held any resource. `kind` is the
    /// reason without request-specific numbers, counted in the report (default: the reason).
    func reject(_ spec: RequestSpec, reason: String, kind: String? = nil, status: Int = 429) {
        streams.failed(spec.id, reason: reason, status: status)
        telemetry.rejected += 1
        telemetry.count(&telemetry.rejectionReasons, kind ?? reason)
        telemetry.log(EngineEvent(time: now, kind: .requestRejected, severity: .warning,
                                  message: "request \(spec.id) rejected: \(reason)", requestId: spec.id))
        telemetry.remember(RequestStatus(id: spec.id, arrivedAt: spec.arrival, stage: .rejected,
                                         promptTokens: spec.promptTokens, outputTokens: spec.outputTokens,
                                         finishedAt: now, reason: reason))
        observeRejected(spec, reason: reason)
    }

    // MARK: Failure

    /// Fails a request that holds no KV anywhere, with a reason in the event log. `kind` is the
    /// reason without request-specific numbers, counted in the report (default: the reason).
    /// `placement`: what its schedulers held, when they already gave it back (an eviction);
    /// otherwise the records it still holds are given back here.
    func fail(_ id: Int, reason: String, kind: String? = nil, status: Int = 503, placement: RequestPlacement? = nil) {
        guard let request = requests.removeValue(forKey: id) else { return }
        // An evicted request's placement comes with it, its decoded tokens credited there.
        let placement = placement ?? { let p = forgetPlacement(of: request); creditDecoded(request, p); return p }()
        streams.failed(id, reason: reason, status: status)
        telemetry.failed += 1
        telemetry.count(&telemetry.failureReasons, kind ?? reason)
        telemetry.log(EngineEvent(time: now, kind: .requestFailed, severity: .warning,
                                  message: "request \(id) failed: \(reason)", requestId: id))
        telemetry.remember(RequestStatus(id: id, arrivedAt: request.spec.arrival, stage: .failed,
                                         promptTokens: request.spec.promptTokens,
                                         outputTokens: request.spec.outputTokens, finishedAt: now, reason: reason))
        observeFinished(request, placement: placement, stage: .failed, outputTokens: 0, reason: reason)
    }

    /// Conservation problems, empty when consistent: every block manager's audit, and
    /// `arrived == completed + failed + rejected + in_flight` with in-flight matching the
    /// requests the engine holds.
    public func audit() -> [String] {
        var problems: [String] = []
        for (te, instance) in instances.enumerated() {
            for index in instance.groups {
                problems += kvStore.audit(GroupRef(te: te, group: index)).map { "\(instance.name)/dp\(index): \($0)" }
            }
            problems += (instance.decode?.problems(te: te, kv: kvStore, placeable: cluster.placeableGroups(of: te)) ?? [])
                .map { "\(instance.name): \($0)" }
        }
        if telemetry.inFlight != requests.count {
            problems.append("in flight \(telemetry.inFlight) but the engine holds \(requests.count) requests")
        }
        if telemetry.inFlight < 0 { problems.append("negative in-flight count") }
        return problems
    }
}
