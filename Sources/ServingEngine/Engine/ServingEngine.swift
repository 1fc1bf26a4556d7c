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
    let topology: PodTopology
    let cost: CostModel
    /// Tokens a decode step yields per request on average: 1 + MTP acceptance (system.md §4).
    let tokensPerStep: Double

    var workload: any WorkloadSource
    var queue = EventQueue<EngineEventKind>()
    public private(set) var now: SimTime = 0
    var arrivalPending = false
    var requests: [Int: RequestState] = [:]
    var instances: [InstanceState] = []
    var channels: [TransferChannel] = []
    /// Channel index by prefill instance × decode instance.
    var channelIndex: [Int: Int] = [:]
    var telemetry: EngineTelemetry
    var drainedNodes: Set<Int> = []
    /// Injected faults, heartbeat and recovery state (Faults/).
    var faults = FaultModel()
    /// Pacer state, recorded for snapshots only (speed/pause/resume are the pacer's business).
    var speed: Double? = 1
    var paused = false
    var commandsApplied = 0
    /// Requests submitted from outside (HTTP) whose progress is streamed: tokens reported so far.
    var watched: [Int: Int] = [:]
    /// Progress of watched requests since the face last took it (``takeStreamUpdates()``).
    var streamUpdates: [StreamUpdate] = []
    var nextExternalID = ServingEngine.firstExternalID
    /// Output lengths of external requests (a stream of its own: HTTP traffic never shifts the workload).
    lazy var externalLengths = RandomStreams(seed: configuration.seed).stream("external-lengths")
    /// Popularity of the model's experts under the current traffic (nil for dense models).
    var expertTraffic: ExpertTraffic?
    var expertStats = ExpertStats()
    /// The pooled DRAM tier (EMS) behind every prefill DP group's prefix cache.
    var pool: PooledKVTier?
    var poolHitTokens = 0
    var poolCapacityBytes = 0.0
    /// Recent prompt tokens of long and short prompts, for the JE's long/short split.
    var recentPromptTokens = (long: 0.0, short: 0.0)
    /// Smallest DP-group KV (blocks) on each side: a request larger than this can never run.
    var prefillGroupBlocks = Int.max
    var decodeGroupBlocks = Int.max

    /// An engine over an explicit workload (a trace, a synthetic source, or a test fixture).
    public init(configuration: EngineConfiguration, workload: some WorkloadSource) throws {
        self.configuration = configuration
        let deployment = configuration.deployment
        model = try deployment.modelSpec()
        hardware = try deployment.hardwareProfile()
        topology = try deployment.topology()
        cost = CostModel(model: model, hardware: hardware)
        tokensPerStep = 1 + (model.mtpModules > 0 ? configuration.mtpAcceptance : 0)
        self.workload = workload
        telemetry = EngineTelemetry(seriesInterval: configuration.snapshotInterval,
                                    seriesCapacity: configuration.seriesCapacity,
                                    eventCapacity: configuration.eventCapacity)
        faults.policy = try RecoveryPolicies.named(configuration.recoveryPolicy)
        try buildInstances()
        setUpExperts()
        if configuration.poolBytesPerNode > 0 {
            poolCapacityBytes = configuration.poolBytesPerNode * Double(topology.nodes)
            let blockBytes = model.kvBytesPerToken * Double(configuration.kvBlockTokens)
            pool = PooledKVTier(capacityBlocks: max(1, Int(poolCapacityBytes / blockBytes)))
        }
        for instance in instances {
            let smallest = instance.dp.map(\.kv.totalBlocks).min() ?? 0
            if instance.hasPrefill { prefillGroupBlocks = min(prefillGroupBlocks, smallest) }
            if instance.hasDecode { decodeGroupBlocks = min(decodeGroupBlocks, smallest) }
        }
        guard instances.contains(where: \.hasPrefill), instances.contains(where: \.hasDecode) else {
            throw ConfigError("deployment '\(deployment.name)' needs prefill and decode capacity")
        }
        queue.schedule(at: configuration.snapshotInterval, .telemetryTick)
        startHeartbeats()
        scheduleNextArrival()
    }

    /// An engine that builds its workload from ``EngineConfiguration/workload``.
    public convenience init(configuration: EngineConfiguration) throws {
        switch configuration.workload {
        case .synthetic:
            var synthetic = SyntheticWorkload.Configuration(ratePerSecond: configuration.syntheticRate,
                                                            arrivalCV: configuration.arrivalCV)
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
            try self.init(configuration: configuration, workload: try TraceWorkload(path: path))
        }
    }

    // MARK: Running

    /// Processes events until simulated time `limit` (events at `limit` included), then sets
    /// the clock to `limit`.
    public func run(until limit: SimTime) {
        while let next = queue.peekTime(), next <= limit { step() }
        now = max(now, limit)
    }

    /// Processes one event; returns false when nothing is scheduled.
    @discardableResult
    public func step() -> Bool {
        guard let (time, event) = queue.popNext() else { return false }
        now = time
        telemetry.events += 1
        switch event {
        case .arrival(let spec): arrive(spec)
        case .stepEnd(let instance): endStep(instance)
        case .transferDone(let channel): finishTransfer(channel)
        case .telemetryTick: telemetryTick()
        case .fault(let timer): handleFaultTimer(timer)
        case .expertSwap(let instance): advanceEPLB(instance)
        }
        return true
    }

    /// Runs until the workload is exhausted and every request has left the system, or until
    /// `limit`. Returns true when everything finished. For finite workloads (tests, traces).
    @discardableResult
    public func runToCompletion(limit: SimTime = .infinity) -> Bool {
        while arrivalPending || telemetry.inFlight > 0 {
            guard let next = queue.peekTime(), next <= limit else { return false }
            step()
        }
        return true
    }

    /// Time of the next event, if any (lets a pacer sleep until then).
    public func nextEventTime() -> SimTime? { queue.peekTime() }

    // MARK: Arrival and the JE

    func scheduleNextArrival() {
        guard !arrivalPending, let spec = workload.next() else { return }
        arrivalPending = true
        queue.schedule(at: max(now, spec.arrival), .arrival(spec))
    }

    func arrive(_ spec: RequestSpec) {
        arrivalPending = false
        scheduleNextArrival()
        admit(spec)
    }

    /// The JE takes a request in: rejected (admission), failed (can never fit) or placed on a
    /// prefill TE. Every outcome is counted and, unless placed, has a reason in the event log.
    func admit(_ spec: RequestSpec) {
        telemetry.arrived += 1
        telemetry.promptTokens += spec.promptTokens
        noteTrafficClass(spec.tag)
        let keys = PrefixHashes.rebase(spec.prefixHashes, fromBlockTokens: spec.prefixBlockTokens,
                                       toBlockTokens: configuration.kvBlockTokens)
        var request = RequestState(spec: spec, blockKeys: keys, chainedKeys: PrefixHashes.chain(keys))
        guard requests[spec.id] == nil else {
            reject(spec, reason: "request id \(spec.id) is already in flight")
            return
        }
        if let reason = neverFits(request) {
            requests[spec.id] = request
            fail(spec.id, reason: reason, status: 400)
            return
        }
        guard let target = pickPrefillInstance(for: request) else {
            let reason = instances.contains(where: { $0.hasPrefill && $0.available })
                ? "every prefill TE has \(configuration.maxWaitingPerPrefillInstance) requests waiting"
                : "no prefill TE accepts work (all drained or out of service)"
            reject(spec, reason: reason)
            return
        }
        if watched[spec.id] != nil { streamUpdates.append(StreamUpdate(id: spec.id, kind: .accepted)) }
        request.prefillInstance = target
        requests[spec.id] = request
        placeOnPrefillGroup(spec.id, instance: target)
    }

    /// Admission control turned the request away; it never held any resource.
    func reject(_ spec: RequestSpec, reason: String) {
        if watched.removeValue(forKey: spec.id) != nil {
            streamUpdates.append(StreamUpdate(id: spec.id, kind: .failed(reason: reason, status: 429)))
        }
        telemetry.rejected += 1
        telemetry.log(EngineEvent(time: now, kind: .requestRejected, severity: .warning,
                                  message: "request \(spec.id) rejected: \(reason)", requestId: spec.id))
        telemetry.remember(RequestStatus(id: spec.id, arrivedAt: spec.arrival, stage: .rejected,
                                         promptTokens: spec.promptTokens, outputTokens: spec.outputTokens,
                                         finishedAt: now, reason: reason))
    }

    /// Why a request can never be served: its KV does not fit one DP group on either side.
    func neverFits(_ request: RequestState) -> String? {
        let blockTokens = configuration.kvBlockTokens
        if (request.spec.promptTokens + blockTokens - 1) / blockTokens > prefillGroupBlocks {
            return "prompt of \(request.spec.promptTokens) tokens exceeds the \(prefillGroupBlocks * blockTokens)-token KV of a prefill DP group"
        }
        if (request.totalTokens + blockTokens - 1) / blockTokens > decodeGroupBlocks {
            return "\(request.totalTokens) tokens exceed the \(decodeGroupBlocks * blockTokens)-token KV of a decode DP group"
        }
        return nil
    }

    /// The JE (system.md §1.5): among prefill TEs that accept work and are under the admission
    /// bound, long prompts go to the long-prompt TEs and short ones to the rest (when there are
    /// at least two; system.md §4: long prompts straggle a whole barrier). The long side gets a
    /// share of the TEs that follows the long prompts' recent share of prompt tokens, so a
    /// long-heavy trace does not crowd onto a fixed few. Then the TE that would finish the
    /// request soonest: its queued tokens plus this prompt's tokens not already in its cache.
    func pickPrefillInstance(for request: RequestState) -> Int? {
        let candidates = instances.indices.filter {
            instances[$0].hasPrefill && instances[$0].available
                && instances[$0].waiting < configuration.maxWaitingPerPrefillInstance
        }
        guard !candidates.isEmpty else { return nil }
        var pool = candidates
        let all = instances.indices.filter { instances[$0].hasPrefill }
        let isLong = request.spec.promptTokens > configuration.longPromptTokens
        // Recent prompt tokens by side, decaying per arrival (a window of roughly 1,000 requests).
        recentPromptTokens.long *= 0.999
        recentPromptTokens.short *= 0.999
        if isLong { recentPromptTokens.long += Double(request.spec.promptTokens) } else {
            recentPromptTokens.short += Double(request.spec.promptTokens)
        }
        if all.count >= 2 {
            let share = recentPromptTokens.long / max(1, recentPromptTokens.long + recentPromptTokens.short)
            let longCount = min(all.count - 1, max(1, Int((share * Double(all.count)).rounded())))
            let longTEs = Set(all.suffix(longCount))
            let side = candidates.filter { longTEs.contains($0) == isLong }
            if !side.isEmpty { pool = side }
        }
        var best = pool[0]
        var bestCost = Int.max
        for index in pool {
            var hits = 0
            var load = 0
            // Indexed access: iterating the groups by value would copy their block tables' handles.
            for g in instances[index].dp.indices where !instances[index].dp[g].drained {
                if !request.chainedKeys.isEmpty {
                    hits = max(hits, instances[index].dp[g].kv.cachedPrefixTokens(
                        promptTokens: request.spec.promptTokens, chainedHashes: request.chainedKeys))
                }
                load += instances[index].dp[g].queuedTokens
            }
            let cost = load + request.spec.promptTokens - hits
            if cost < bestCost {
                best = index
                bestCost = cost
            }
        }
        return best
    }

    // MARK: Failure

    /// Fails a request that holds no KV anywhere, with a reason in the event log.
    func fail(_ id: Int, reason: String, status: Int = 503) {
        guard let request = requests.removeValue(forKey: id) else { return }
        if watched.removeValue(forKey: id) != nil {
            streamUpdates.append(StreamUpdate(id: id, kind: .failed(reason: reason, status: status)))
        }
        telemetry.failed += 1
        telemetry.log(EngineEvent(time: now, kind: .requestFailed, severity: .warning,
                                  message: "request \(id) failed: \(reason)", requestId: id))
        telemetry.remember(RequestStatus(id: id, arrivedAt: request.spec.arrival, stage: .failed,
                                         promptTokens: request.spec.promptTokens,
                                         outputTokens: request.spec.outputTokens, finishedAt: now, reason: reason))
    }

    /// Conservation problems, empty when consistent: every block manager's audit, and
    /// `arrived == completed + failed + rejected + in_flight` with in-flight matching the
    /// requests the engine holds.
    public func audit() -> [String] {
        var problems: [String] = []
        for instance in instances {
            for (index, group) in instance.dp.enumerated() {
                problems += group.kv.audit().map { "\(instance.name)/dp\(index): \($0)" }
            }
        }
        if telemetry.inFlight != requests.count {
            problems.append("in flight \(telemetry.inFlight) but the engine holds \(requests.count) requests")
        }
        if telemetry.inFlight < 0 { problems.append("negative in-flight count") }
        return problems
    }
}
