import PodModel
import SimKit

/// The end-of-run report of `xds run --json` (interfaces.md): exactly its keys, snake_case,
/// plus a few extras (`hardware`, `commands`).
///
/// ```swift
/// var report = engine.report()
/// report.wallSeconds = elapsed          // the face fills what the engine cannot know
/// let json = try JSONEncoder().encode(report)
/// ```
public struct RunReport: Sendable, Equatable, Codable {
    public struct Requests: Sendable, Equatable, Codable {
        public var arrived = 0, completed = 0, failed = 0, rejected = 0, inFlight = 0
        /// Failed requests by reason, e.g. `"hbm fault on die 12": 3` or `"cancelled": 1`;
        /// numbers that belong to one request are left out of the reason so equal causes add up
        /// (at most 64 reasons, the rest under "other reasons"). Sums to `failed`.
        public var failureReasons: [String: Int] = [:]
        /// Rejected requests by reason (admission control); sums to `rejected`.
        public var rejectionReasons: [String: Int] = [:]
        /// Requests found by walking the engine's queues, channels and batches at the end
        /// (``ServingEngine/inFlightCensus()``). `in_flight` is arrived − completed − failed −
        /// rejected, so only this count lets a reader check conservation for real.
        public var inFlightWalked: Int?
        /// A window's report only (a what-if preview's side): requests already in the system when
        /// the window began, so that `in_flight_at_start + arrived = completed + failed + rejected
        /// + in_flight` reconciles. Absent from a whole run's report, which starts empty.
        public var inFlightAtStart: Int?

        public init(arrived: Int = 0, completed: Int = 0, failed: Int = 0, rejected: Int = 0, inFlight: Int = 0,
                    failureReasons: [String: Int] = [:], rejectionReasons: [String: Int] = [:]) {
            (self.arrived, self.completed, self.failed, self.rejected, self.inFlight) =
                (arrived, completed, failed, rejected, inFlight)
            self.failureReasons = failureReasons
            self.rejectionReasons = rejectionReasons
        }

        enum CodingKeys: String, CodingKey {
            case arrived, completed, failed, rejected
            case inFlight = "in_flight"
            case failureReasons = "failure_reasons"
            case rejectionReasons = "rejection_reasons"
            case inFlightWalked = "in_flight_walked"
            case inFlightAtStart = "in_flight_at_start"
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            arrived = try c.decode(Int.self, forKey: .arrived)
            completed = try c.decode(Int.self, forKey: .completed)
            failed = try c.decode(Int.self, forKey: .failed)
            rejected = try c.decode(Int.self, forKey: .rejected)
            inFlight = try c.decode(Int.self, forKey: .inFlight)
            // Reports written before the reasons existed lack them.
            failureReasons = try c.decodeIfPresent([String: Int].self, forKey: .failureReasons) ?? [:]
            rejectionReasons = try c.decodeIfPresent([String: Int].self, forKey: .rejectionReasons) ?? [:]
            inFlightWalked = try c.decodeIfPresent(Int.self, forKey: .inFlightWalked)
            inFlightAtStart = try c.decodeIfPresent(Int.self, forKey: .inFlightAtStart)
        }

        // Encoding is synthesized: the reason maps come out in key order because every writer
        // takes its encoder from JSONOutput (`.sortedKeys`), which sorts every object anyway.
    }
    public struct Tokens: Sendable, Equatable, Codable {
        public var prompt = 0, generated = 0
    }
    public struct Throughput: Sendable, Equatable, Codable {
        public var outputTokensPerS = 0.0
        /// Per die ("per NPU" means per die everywhere, interfaces.md), over the dies of the
        /// devices that decode (decode, colocated, MoE–attention instances).
        public var outputTokensPerSPerNPU = 0.0
        /// Prompt tokens computed by prefill (prefix hits excluded) per die of the devices that prefill.
        public var prefillTokensPerSPerNPU = 0.0
        /// Over the chips (devices, two dies each on Ascend 910C) that host decoding instances.
        public var outputTokensPerSPerChip = 0.0
        enum CodingKeys: String, CodingKey {
            case outputTokensPerS = "output_tokens_per_s"
            case outputTokensPerSPerNPU = "output_tokens_per_s_per_npu"
            case prefillTokensPerSPerNPU = "prefill_tokens_per_s_per_npu"
            case outputTokensPerSPerChip = "output_tokens_per_s_per_chip"
        }
        public init(outputTokensPerS: Double = 0, outputTokensPerSPerNPU: Double = 0, prefillTokensPerSPerNPU: Double = 0,
                    outputTokensPerSPerChip: Double = 0) {
            self.outputTokensPerS = outputTokensPerS
            self.outputTokensPerSPerNPU = outputTokensPerSPerNPU
            self.prefillTokensPerSPerNPU = prefillTokensPerSPerNPU
            self.outputTokensPerSPerChip = outputTokensPerSPerChip
        }
        /// Reports written before the per-chip figure still decode (it reads 0).
        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            outputTokensPerS = try c.decode(Double.self, forKey: .outputTokensPerS)
            outputTokensPerSPerNPU = try c.decode(Double.self, forKey: .outputTokensPerSPerNPU)
            prefillTokensPerSPerNPU = try c.decode(Double.self, forKey: .prefillTokensPerSPerNPU)
            outputTokensPerSPerChip = try c.decodeIfPresent(Double.self, forKey: .outputTokensPerSPerChip) ?? 0
        }
    }
    public struct Percentiles: Sendable, Equatable, Codable {
        public var mean = 0.0, p50 = 0.0, p90 = 0.0, p99 = 0.0
        /// No sample was taken (every figure 0): printed as "no samples", not as 0 ms.
        public var isEmpty: Bool { mean == 0 && p50 == 0 && p90 == 0 && p99 == 0 }
    }
    public struct Latency: Sendable, Equatable, Codable {
        public var ttft = Percentiles(), tpot = Percentiles(), e2e = Percentiles()
    }
    public struct SLO: Sendable, Equatable, Codable {
        public var ttftMs = 2000.0, tpotMs = 35.0
        /// Share of completed requests that met both targets.
        public var attainment = 0.0
        enum CodingKeys: String, CodingKey {
            case ttftMs = "ttft_ms"
            case tpotMs = "tpot_ms"
            case attainment
        }
    }
    public struct KV: Sendable, Equatable, Codable {
        public var peakUsage = 0.0, prefixHitRate = 0.0
        enum CodingKeys: String, CodingKey {
            case peakUsage = "peak_usage"
            case prefixHitRate = "prefix_hit_rate"
        }
    }
    public struct Experts: Sendable, Equatable, Codable {
        /// Max over mean of per-die MoE load in decode, averaged over decode steps.
        public var imbalance = 1.0
        /// Expert rebalances (four-phase swaps) finished by decode and colocated TEs, the same scope
        /// as `imbalance`; prefill TEs rebalance too, and those show only in the event log.
        public var rebalances = 0
        /// Decode steps' MoE part (experts, dispatch, combine over every layer and microbatch), ms
        /// per step, and its share of the step time (streams overlap, so the share can pass 1
        /// with two microbatches). Nil in reports written before it existed or without decode steps.
        public var moeMsPerStep: Double?
        public var moeShareOfStep: Double?
        enum CodingKeys: String, CodingKey {
            case imbalance, rebalances
            case moeMsPerStep = "moe_ms_per_step", moeShareOfStep = "moe_share_of_step"
        }
    }
    /// `recovered` counts faults recovery handled (and faults kept until healed that the operator
    /// healed after detection); a fault the operator healed before anything detected it is not
    /// recovered but counted in `healedBeforeDetection`, written (`healed_before_detection`) only
    /// when there is one, so reports of runs without such a heal keep their exact bytes.
    public struct Faults: Sendable, Equatable, Codable {
        public var injected = 0, detected = 0, recovered = 0
        public var healedBeforeDetection = 0

        public init(injected: Int = 0, detected: Int = 0, recovered: Int = 0, healedBeforeDetection: Int = 0) {
            self.injected = injected
            self.detected = detected
            self.recovered = recovered
            self.healedBeforeDetection = healedBeforeDetection
        }

        enum CodingKeys: String, CodingKey {
            case injected, detected, recovered
            case healedBeforeDetection = "healed_before_detection"
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            injected = try c.decode(Int.self, forKey: .injected)
            detected = try c.decode(Int.self, forKey: .detected)
            recovered = try c.decode(Int.self, forKey: .recovered)
            healedBeforeDetection = try c.decodeIfPresent(Int.self, forKey: .healedBeforeDetection) ?? 0
        }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(injected, forKey: .injected)
            try c.encode(detected, forKey: .detected)
            try c.encode(recovered, forKey: .recovered)
            if healedBeforeDetection > 0 { try c.encode(healedBeforeDetection, forKey: .healedBeforeDetection) }
        }
    }
    /// The decode batch as it stands at the report (the end of a run: a saturated run's steady
    /// state, not its ramp-up), in `xds bench decode`'s terms, so the engine's step can be priced
    /// by the bench at its own batch and context: `--batch-per-die requests_per_die --context
    /// mean_context --context-cv context_cv`. `context_cv` is the spread the dispatch barrier (A2E in
    /// a MoE–attention layout, whose attention dies are the groups) sees: the standard deviation of
    /// the DP groups' KV totals (requests × mean KV length) over their mean, times √(requests per
    /// group) — the within-group coefficient of variation of KV lengths that would give groups of
    /// equal size that spread (``ServingEngine/decodeBatchNow()``); null where the bench models no
    /// spread (a dense model: its groups meet at no barrier). `step_ms` is the last decode step the
    /// engine priced, averaged over the TEs that decode.
    public struct DecodeBatch: Sendable, Equatable, Codable {
        public var requestsPerDie: Double
        public var meanContext: Double
        /// Null written out, not left out: the key is always there.
        @NullWhenAbsent public var contextCV: Double?
        public var stepMs: Double
        /// Requests per die of the TEs whose steps `step_ms` averages, the batch `bench decode`
        /// prices that step at; written only where it differs from `requests_per_die`, which
        /// counts idle decode TEs' dies too (one busy A100 pair of four: 0.5, not 0.125).
        public var benchBatchPerDie: Double? = nil
        /// Of `step_ms`, the prefill chunks colocated TEs mixed into those decode steps (averaged
        /// the same way); written only when a step at the end held one. `bench decode` prices the
        /// decode part, `step_ms` − `prefill_ms`.
        public var prefillMs: Double? = nil
        /// The hottest expert die's load over the mean that `step_ms` was priced at (its TEs'
        /// mean), `bench decode --moe-load-factor`: EPLB plans from the last window's counts while
        /// the hot experts move, so the engine's balance swings between a fresh plan's (what the
        /// bench prices by default) and a stale one's. Written for a MoE model unless `--eplb perfect`.
        public var moeLoadFactor: Double? = nil
        /// The same for equal groups of MoE layers in load order (four), whose mean is
        /// `moe_load_factor` (or a little over it at a small batch, where a group's routing noise
        /// takes it under 1 and it is priced, and written, at 1): a layer's time is convex in its load, and a stale plan leaves a few
        /// layers with a hot expert it did not replicate, which one mean prices short (a saturated
        /// superpod's step 7% over the bench at the mean). `bench decode --moe-load-factor` takes
        /// them as a comma-separated list. Written with `moe_load_factor` where the step had groups.
        public var moeLoadFactors: [Double]? = nil
        enum CodingKeys: String, CodingKey {
            case requestsPerDie = "requests_per_die", meanContext = "mean_context", contextCV = "context_cv"
            case stepMs = "step_ms", benchBatchPerDie = "bench_batch_per_die", prefillMs = "prefill_ms"
            case moeLoadFactor = "moe_load_factor", moeLoadFactors = "moe_load_factors"
        }
    }

    public var deployment = ""
    public var model = ""
    public var hardware = ""
    public var seed: UInt64 = 0
    public var simSeconds = 0.0
    /// Wall-clock duration; the engine never reads the clock, so the face fills it (0 here).
    public var wallSeconds = 0.0
    public var events = 0
    public var commands = 0
    public var requests = Requests()
    public var tokens = Tokens()
    public var throughput = Throughput()
    public var latencyMs = Latency()
    public var slo = SLO()
    public var kv = KV()
    public var experts = Experts()
    public var faults = Faults()
    /// One entry per injected fault: time to detect and recover, requests failed and re-prefilled.
    public var faultDetails: [FaultDetail] = []
    public var recoveryPolicy = ""
    /// The policy in each slot at the end of the run, by slot key (`je_routing`, `dp_balancing`,
    /// `eplb_planner`, `recovery`, `autoscaler`); nil in reports written before policies had names
    /// (and without `autoscaler` in reports written before it was added).
    public var policies: PolicyNames?
    /// Scale operations (interfaces.md additions): commands and autoscaler decisions. Always
    /// set by ``ServingEngine/report()``; optional so reports written before it still decode.
    public var scaling: ScalingReport?
    /// The offered load: where requests came from and at what rate. Nil in reports written before
    /// it was added.
    public var workload: Workload?
    /// Set only when the trace replay ended at an error met during the run (the file changed
    /// after its check): `file:line: problem`. Absent from a run that read its whole workload.
    public var workloadStopped: String?
    /// Nil when no decode batch runs at the end (nothing decoding, or reports written before it).
    public var decodeBatchAtEnd: DecodeBatch?

    public init() {}

    /// The report's `workload` section: a run's numbers mean little without the load offered.
    public struct Workload: Codable, Sendable, Equatable {
        /// `synthetic` or `trace`.
        public var source: String
        /// Synthetic: requests/s at the start (after any `rate` at time 0) and at the end (`rate`
        /// commands and scenario steps change it), the highest in between, and the traffic mix.
        public var ratePerSecond: Double?
        public var rateAtEndPerSecond: Double?
        public var rateMaxPerSecond: Double?
        public var mix: String?
        /// Trace: the file as given, and how many times faster than recorded it was replayed.
        public var file: String?
        public var speedup: Double?

        public init(source: String) { self.source = source }

        enum CodingKeys: String, CodingKey {
            case source, mix, file, speedup
            case ratePerSecond = "rate_per_s"
            case rateAtEndPerSecond = "rate_at_end_per_s"
            case rateMaxPerSecond = "rate_max_per_s"
        }
    }

    enum CodingKeys: String, CodingKey {
        case deployment, model, hardware, seed, events, commands, requests, tokens, throughput, slo, kv, experts, faults
        case policies, scaling, workload
        case workloadStopped = "workload_stopped"
        case decodeBatchAtEnd = "decode_batch_at_end"
        case simSeconds = "sim_seconds"
        case wallSeconds = "wall_seconds"
        case latencyMs = "latency_ms"
        case faultDetails = "fault_details"
        case recoveryPolicy = "recovery_policy"
    }
}

/// Devices (chips) and dies held by the TEs that decode and by those that prefill; as counts
/// (the layout now) or as device-seconds (held over a span).
struct DeviceCounts<Count: Numeric & Equatable>: Equatable {
    var decodeChips: Count = 0, decodeDies: Count = 0, prefillDies: Count = 0
}

extension ServingEngine {
    /// The devices the layout holds now. Instances list the devices (chips) they run on; a die
    /// is a chip's share, of the TE's own hardware (external prefill may run on other chips:
    /// xdeepserve-ma's one-die 910Bs were counted as two-die 910Cs, halving its per-die figure).
    /// Dies the control plane knows are dead serve nothing and are not counted (nor a chip all
    /// of whose dies are): a TE shrunk around a dead die keeps its NPU until repaired, and the
    /// per-die figures divided by it as if it still served.
    func deviceCounts() -> DeviceCounts<Int> {
        var counts = DeviceCounts<Int>()
        for (i, instance) in instances.enumerated() {
            var chips = instance.external ? instance.groupSpec.npusEach : cluster.npus(of: i).count
            var dies = chips * max(1, instance.cost.hardware.diesPerDevice)
            if !instance.external && !faults.knownDead.isEmpty {
                let dead = knownDeadHardware(of: i)
                (chips, dies) = (chips - dead.chips, dies - dead.dies)
            }
            if instance.hasDecode { counts.decodeChips += chips; counts.decodeDies += dies }
            if instance.hasPrefill { counts.prefillDies += dies }
        }
        return counts
    }

    /// TE `i`'s dies the control plane knows are dead, and its chips with every die so.
    private func knownDeadHardware(of i: Int) -> (chips: Int, dies: Int) {
        var dead = (chips: 0, dies: 0)
        let perChip = topology.diesPerNPU
        for npu in cluster.npus(of: i) {
            let count = (0..<perChip).filter { faults.knownDead.contains(npu * perChip + $0) }.count
            dead.dies += count
            if count == perChip { dead.chips += 1 }
        }
        return dead
    }

    /// The dies and chips in service changed with the fault state (a dead die found, a TE back
    /// on a spare, a heal): the time so far is charged to what served until now.
    func noteDevicesInService() {
        if deviceCounts() != telemetry.devices { layoutChanged() }
    }

    /// The layout gained or gave up devices now (a TE laid out or retired, NPUs given away):
    /// the time so far is charged to the devices held until now, the rest to the new count.
    func layoutChanged() {
        telemetry.deviceTime = deviceTimeSoFar()
        telemetry.deviceTimeSince = now
        telemetry.devices = deviceCounts()
    }

    /// Device-seconds held from the start of the run to now.
    func deviceTimeSoFar() -> DeviceCounts<Double> {
        let dt = max(0, now - telemetry.deviceTimeSince), held = telemetry.devices
        var t = telemetry.deviceTime
        t.decodeChips += dt * Double(held.decodeChips)
        t.decodeDies += dt * Double(held.decodeDies)
        t.prefillDies += dt * Double(held.prefillDies)
        return t
    }

    /// The report's `throughput` for tokens made from `start` to now: decode tokens per die and
    /// per chip of the devices that decode, prefill tokens per die of those that prefill, each
    /// over the time its devices were held (dividing by the layout at the end made a scale-in
    /// at 59 s of 60 read 8× the per-die rate). `deviceTimeAtStart` is ``deviceTimeSoFar()`` as
    /// it was at `start`. The run's report and a preview's window both use it, so their "per
    /// die" and "per chip" agree.
    func throughput(generatedTokens: Int, prefillComputedTokens: Int, from start: SimTime,
                    deviceTimeAtStart: DeviceCounts<Double>) -> RunReport.Throughput {
        let seconds = max(now - start, 1e-9)
        let output = Double(generatedTokens) / seconds, prefill = Double(prefillComputedTokens) / seconds
        // A layout that held still over the span divides by its counts (the same figures, to
        // the bit, as before device time was kept).
        guard telemetry.deviceTimeSince > start else {
            let held = telemetry.devices
            return .init(outputTokensPerS: output,
                         outputTokensPerSPerNPU: output / Double(max(1, held.decodeDies)),
                         prefillTokensPerSPerNPU: prefill / Double(max(1, held.prefillDies)),
                         outputTokensPerSPerChip: output / Double(max(1, held.decodeChips)))
        }
        let total = deviceTimeSoFar()
        // Mean devices held over the span.
        func mean(_ total: Double, _ atStart: Double) -> Double { max((total - atStart) / seconds, 1e-9) }
        return .init(outputTokensPerS: output,
                     outputTokensPerSPerNPU: output / mean(total.decodeDies, deviceTimeAtStart.decodeDies),
                     prefillTokensPerSPerNPU: prefill / mean(total.prefillDies, deviceTimeAtStart.prefillDies),
                     outputTokensPerSPerChip: output / mean(total.decodeChips, deviceTimeAtStart.decodeChips))
    }

    /// The report of the run so far (interfaces.md `xds run --json`).
    public func report() -> RunReport {
        var r = RunReport()
        let d = configuration.deployment
        r.deployment = d.name
        r.model = model.name
        r.hardware = hardware.name
        r.seed = configuration.seed
        r.simSeconds = now
        r.events = telemetry.events
        r.commands = commandsApplied
        let counts = requestCounts()
        r.requests = .init(arrived: counts.arrived, completed: counts.completed, failed: counts.failed,
                           rejected: counts.rejected, inFlight: counts.inFlight,
                           failureReasons: telemetry.failureReasons, rejectionReasons: telemetry.rejectionReasons)
        r.requests.inFlightWalked = inFlightCensus().total
        let generated = generatedSoFar()
        r.tokens = .init(prompt: telemetry.promptTokens, generated: generated)
        r.throughput = throughput(generatedTokens: generated, prefillComputedTokens: telemetry.prefillComputedTokens,
                                  from: 0, deviceTimeAtStart: DeviceCounts<Double>())
        func summary(_ h: LatencyHistogram) -> RunReport.Percentiles {
            .init(mean: h.meanMs, p50: h.p50Ms, p90: h.p90Ms, p99: h.p99Ms)
        }
        r.latencyMs = .init(ttft: summary(telemetry.ttft), tpot: summary(telemetry.tpot), e2e: summary(telemetry.e2e))
        r.slo = .init(ttftMs: configuration.sloTTFTMs, tpotMs: configuration.sloTPOTMs,
                      attainment: telemetry.completed == 0 ? 0 : Double(telemetry.sloMet) / Double(telemetry.completed))
        r.faults = faultCounts()
        r.faultDetails = faultDetails()
        r.recoveryPolicy = faults.policy.name
        // Every slot's policy at the end, the autoscaler's too: the report named four of the five
        // slots, so an `slo` run (`--autoscale`, `[scaling]`/`[policies]`, `policy autoscaler`) read
        // as one without. The snapshot's `policies` keeps its four; it has its own `autoscaler`.
        var policies = policyNames
        policies[Policies.autoscaler.slot.key] = autoscalerName
        r.policies = policies
        r.scaling = scalingReport()
        r.workloadStopped = workloadError?.description
        switch configuration.workload {
        case .synthetic:
            var w = RunReport.Workload(source: "synthetic")
            let synthetic = workload as? SyntheticWorkload
            w.ratePerSecond = synthetic?.startRatePerSecond ?? configuration.syntheticRate
            w.rateAtEndPerSecond = synthetic?.ratePerSecond ?? configuration.syntheticRate
            w.rateMaxPerSecond = synthetic?.highestRatePerSecond ?? configuration.syntheticRate
            w.mix = configuration.trafficMix.rawValue
            r.workload = w
        case .trace(let path):
            var w = RunReport.Workload(source: "trace")
            w.file = path
            w.speedup = configuration.traceSpeedup
            r.workload = w
        }
        r.experts = .init(imbalance: experts.meanStepImbalance, rebalances: experts.decodeRebalances,
                          moeMsPerStep: experts.moeMsPerStep, moeShareOfStep: experts.moeShareOfStep)
        r.kv = .init(peakUsage: max(telemetry.peakDecodeUsage, decodeKVUsage()), prefixHitRate: prefixStats().hitRate)
        r.decodeBatchAtEnd = decodeBatchNow()
        return r
    }

    /// Prefix-cache counters of the prefill side (prefill and colocated DP groups).
    func prefixStats() -> PrefixCacheStats {
        var stats = PrefixCacheStats()
        for te in instances.indices where instances[te].hasPrefill {
            for g in instances[te].groups {
                let group = kvStore.prefixStats(GroupRef(te: te, group: g))
                stats.queriedTokens += group.queriedTokens
                stats.hitTokens += group.hitTokens
            }
        }
        return kvStore.prefixStats(groups: stats)
    }
}
