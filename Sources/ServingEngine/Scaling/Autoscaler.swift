import PodModel
import SimKit

/// What an autoscaler sees at one evaluation: the TEs of each role and the load signals,
/// measured over the evaluation interval.
public struct ClusterLoad: Sendable, Equatable {
    public struct Role: Sendable, Equatable {
        public var inService = 0
        public var starting = 0
        public var draining = 0
        /// In service but out for a fault's recovery (restarting, forking) or a drain's
        /// migration: not counted in `inService`, and its idleness is not room (its queue is
        /// empty because it takes no work), so no scale-in while any is out.
        public var recovering = 0
        /// NPUs one TE of the role takes (0: the role cannot be scaled in this deployment).
        public var npusPerTE = 0
        public init() {}
    }
    public var prefill = Role()
    public var decode = Role()
    public var spareNPUs = 0
    /// Uncached prompt tokens waiting in prefill queues.
    public var queuedPrefillTokens = 0
    /// Estimated wait of a new prompt behind them: queued tokens over the prefill capacity
    /// measured over the interval (computed tokens over ``prefillGroupBusyShare``).
    public var prefillQueueWaitSeconds = 0.0
    /// Mean busy share of the in-service prefill TEs over the interval: the share of time a TE
    /// had a batch running. A poor load measure on its own: a TE steps whenever any one of its
    /// DP groups has a prompt, so it is 60–80% busy at 40 req/s on the default pod with a sixth
    /// of its token throughput in use. It turns the tokens computed into a capacity (tokens per
    /// busy second) for ``prefillQueueWaitSeconds``.
    public var prefillUtilization = 0.0
    /// Mean share of the in-service prefill TEs' DP-group time spent prefilling over the
    /// interval (each batch's seconds × the share of the TE's DP groups with work in it): how
    /// much of the prefill side is in use. On the default pod about 0.1–0.2 at 40 req/s, near 1
    /// when prompts back up in every group. Nil when no TE was in service for a whole interval
    /// (the autoscaler then falls back to ``prefillUtilization``).
    public var prefillGroupBusyShare: Double?
    /// TTFT p90 of the most recently finished requests (nil: none yet).
    public var recentTTFTp90Ms: Double?
    /// Time per output token of the in-service decode TEs' last steps (step time over tokens
    /// per step), the largest of them.
    public var decodeTPOTMs = 0.0
    /// Decode KV occupancy including the space reserved for expected outputs, 0–1.
    public var decodeKVUsage = 0.0
    /// SLO attainment of the requests completed over the interval (nil: none completed).
    public var windowAttainment: Double?
    public var sloTTFTMs = 2_000.0
    public var sloTPOTMs = 35.0
    public init() {}
}

/// One step an autoscaler asks for: `delta` TEs of `role`, and why.
public struct ScalingDecision: Sendable, Equatable {
    public var role: InstanceRole
    public var delta: Int
    public var reason: String
    public init(role: InstanceRole, delta: Int, reason: String) {
        self.role = role
        self.delta = delta
        self.reason = reason
    }
}

/// An autoscaler policy. Value types: the engine owns one and copies it with itself.
public protocol Autoscaler: Sendable {
    var name: String { get }
    /// Seconds between evaluations.
    var intervalSeconds: Double { get }
    mutating func evaluate(_ load: ClusterLoad, now: SimTime) -> [ScalingDecision]
}

/// `autoscale off`: the layout changes only by command.
public struct OffAutoscaler: Autoscaler {
    public var name: String { "off" }
    public var intervalSeconds: Double { 0 }
    public init() {}
    public mutating func evaluate(_ load: ClusterLoad, now: SimTime) -> [ScalingDecision] { [] }
}

/// Parameters of the `slo` autoscaler, defaults chosen for the default `superpod` (8 prefill
/// TEs of 16 NPUs, one decode TE of 160, 96 spare NPUs) under the synthetic mix; none is
/// published.
///
/// Why these signals. TTFT alone is a poor trigger: on the default pod its p90 comes near 1.6 s
/// at 40 req/s with a tenth of the prefill side in use (long prompts take long to prefill
/// however idle the TEs are), and the recent-TTFT window is of *finished* requests, so it lags
/// the queue by the decode time. A TE's plain busy share is poor too (60–80% at 40 req/s: it
/// steps whenever one of its DP groups has a prompt). More prefill TEs help when prefill is the
/// bottleneck: its DP groups are busy (``ClusterLoad/prefillGroupBusyShare``, measured ≈0.1 at
/// 40 req/s, ≈0.4 at 120, 0.7–0.9 at 250 on the default pod) and prompts wait. So scale-up
/// needs a busy prefill side *and* latency at risk (TTFT p90 or the wait behind the queue);
/// scale-down looks at what the TEs left would carry, with TTFT only as a veto.
public struct SLOAutoscalerParameters: Sendable, Equatable {
    /// Evaluate every 5 s (a few prefill batches; long enough for the signals to settle).
    public var intervalSeconds = 5.0

    // Prefill scale-up: `upBusyShare` AND (`upTTFTShare` OR `upQueueWaitShare`).
    /// Prefill is the bottleneck when its DP groups were prefilling more than this share of the
    /// evaluation interval (``ClusterLoad/prefillGroupBusyShare``); a prefill side with room is
    /// never scaled up, whatever TTFT.
    public var upBusyShare = 0.5
    /// …and latency is at risk: the TTFT p90 of the recently finished requests passes this
    /// share of the TTFT SLO, …
    public var upTTFTShare = 0.8
    /// …or a new prompt would wait more than this share of the TTFT SLO behind the queued
    /// prompt tokens (the leading signal: TTFT of finished requests lags it).
    public var upQueueWaitShare = 0.25

    // Prefill scale-down: queue empty AND one TE fewer under `downBusyShare`, unless vetoed.
    /// The queue counts as empty when the wait behind it is under this share of the TTFT SLO
    /// (the prompts of the batches being computed are not a backlog).
    public var downQueueWaitShare = 0.1
    /// The TEs left after removing one would be busy less than this share (the DP-group busy
    /// share × n / (n − 1)); not above `upBusyShare`, so a scale-down does not make prefill
    /// the bottleneck.
    public var downBusyShare = 0.5
    /// Veto: no scale-down while the recent TTFT p90 is above this share of the SLO. Well
    /// under `upTTFTShare`: a TTFT band between the two keeps it from shrinking to the edge of
    /// the scale-up condition (on the daily cycle a veto at 0.8 let it go from 8 TEs to 3 at
    /// 40 req/s, and the surge then found 3).
    public var downTTFTVetoShare = 0.5

    // Decode: short when its KV (with reservations) passes `upKVUsage` or TPOT passes
    // `upTPOTShare` of the SLO; room under `downKVUsage` with TPOT under half the SLO.
    public var upKVUsage = 0.85
    public var upTPOTShare = 0.9
    public var downKVUsage = 0.3

    /// Hysteresis: consecutive evaluations a condition must hold before acting (up fast: 10 s;
    /// down slow: 60 s of room).
    public var upEvaluations = 2
    public var downEvaluations = 12
    /// Cooldown after any decision for the same role: 15 s before a scale-up (a fork start
    /// takes seconds; the new TEs must show in the signals), 60 s before a scale-down (the
    /// shrunk layout must show its load before the next TE goes).
    public var upCooldownSeconds = 15.0
    public var downCooldownSeconds = 60.0
    /// Largest step, in TEs, of one scale-up (a quarter of the role, more when the shortfall is
    /// deeper, at least 1, at most this). Scale-downs are one TE at a time.
    public var maxStepTEs = 4
    /// Never fewer TEs of a role (the issue's floor is one).
    public var minTEsPerRole = 1

    public init() {}

    func validationProblem() -> String? {
        let shares = [upBusyShare, upQueueWaitShare, upTTFTShare, downQueueWaitShare, downBusyShare, downTTFTVetoShare,
                      upKVUsage, upTPOTShare, downKVUsage]
        guard shares.allSatisfy({ $0.isFinite && $0 > 0 && $0 <= 10 }) else { return "autoscaler: shares must be in (0, 10]" }
        guard intervalSeconds.isFinite, intervalSeconds >= 0.5, intervalSeconds <= 3_600 else {
            return "autoscaler: interval must be between 0.5 and 3600 s, got \(intervalSeconds)"
        }
        guard [upCooldownSeconds, downCooldownSeconds].allSatisfy({ $0.isFinite && $0 >= 0 && $0 <= 86_400 }) else {
            return "autoscaler: cooldowns must be between 0 and 86400 s"
        }
        guard (1...1_000).contains(upEvaluations), (1...1_000).contains(downEvaluations), (1...64).contains(maxStepTEs),
              (1...64).contains(minTEsPerRole) else {
            return "autoscaler: evaluations 1…1000, step 1…64 TEs, minimum 1…64 TEs"
        }
        return nil
    }
}

/// `autoscale slo`: scales prefill when it is the bottleneck (busy TEs and latency at risk) and
/// back in when the TEs left would still have room; decode on KV headroom and TPOT; with
/// hysteresis (a condition must hold for several evaluations), a cooldown per role, never below
/// ``SLOAutoscalerParameters/minTEsPerRole`` and never beyond the spare pool. One step at a
/// time per role: nothing while TEs of the role are starting or (for a scale-down) draining.
public struct SLOAutoscaler: Autoscaler {
    public var parameters: SLOAutoscalerParameters
    public var name: String { "slo" }
    public var intervalSeconds: Double { parameters.intervalSeconds }
    /// Consecutive evaluations each condition held, and the last decision per role.
    var streak: [String: Int] = [:]
    var lastDecision: [InstanceRole: SimTime] = [:]

    public init(parameters: SLOAutoscalerParameters = .init()) { self.parameters = parameters }

    public mutating func evaluate(_ load: ClusterLoad, now: SimTime) -> [ScalingDecision] {
        let p = parameters
        var decisions: [ScalingDecision] = []
        let ttft = load.recentTTFTp90Ms ?? 0
        let slo = load.sloTTFTMs
        // Prefill (nothing until its TEs have been measured over a whole interval).
        let busy = load.prefillGroupBusyShare ?? 0
        let measured = load.prefillGroupBusyShare != nil
        let waitShare = load.prefillQueueWaitSeconds * 1_000 / slo
        let bottleneck = busy > p.upBusyShare
        let latencyAtRisk = ttft > p.upTTFTShare * slo || waitShare > p.upQueueWaitShare
        let prefillShort = measured && bottleneck && latencyAtRisk
        let n = load.prefill.inService
        let projected = n > 1 ? busy * Double(n) / Double(n - 1) : .infinity
        let vetoed = ttft > p.downTTFTVetoShare * slo
        let prefillIdle = measured && waitShare < p.downQueueWaitShare && projected < p.downBusyShare && !vetoed
        let pressure = max(waitShare / p.upQueueWaitShare, ttft / (p.upTTFTShare * slo))
        let busyPct = Self.percent(busy)
        if let d = decide(role: .prefill, load.prefill, short: prefillShort, idle: prefillIdle, spare: load.spareNPUs, now: now,
                          pressure: pressure, why: prefillShort
                            ? "prefill DP groups \(busyPct)% busy, queued prompt tokens \(load.queuedPrefillTokens) ≈ "
                                + "\(Self.ms(load.prefillQueueWaitSeconds * 1_000)) ms of prefill, TTFT p90 \(Self.ms(ttft)) ms "
                                + "(SLO \(Self.ms(slo)) ms)"
                            : "prefill queue empty, DP groups \(busyPct)% busy; one TE fewer would be "
                                + "\(Self.percent(min(projected, 9.99)))% busy; TTFT p90 \(Self.ms(ttft)) ms (SLO \(Self.ms(slo)) ms)") {
            decisions.append(d)
        }
        // Decode.
        let decodeShort = load.decodeKVUsage > p.upKVUsage || load.decodeTPOTMs > p.upTPOTShare * load.sloTPOTMs
        let decodeIdle = load.decodeKVUsage < p.downKVUsage && load.decodeTPOTMs < 0.5 * load.sloTPOTMs
            && load.decode.inService > 1
        if let d = decide(role: .decode, load.decode, short: decodeShort, idle: decodeIdle, spare: load.spareNPUs, now: now,
                          why: "decode KV \(Self.percent(load.decodeKVUsage))% (with reservations), "
                            + "TPOT \(Self.ms(load.decodeTPOTMs)) ms (SLO \(Self.ms(load.sloTPOTMs)) ms)") {
            decisions.append(d)
        }
        return decisions
    }

    private mutating func decide(role: InstanceRole, _ r: ClusterLoad.Role, short: Bool, idle: Bool, spare: Int,
                                 now: SimTime, pressure: Double = 1, why: String) -> ScalingDecision? {
        let p = parameters
        guard r.npusPerTE > 0 else { return nil }
        let up = "\(role.rawValue)-up", down = "\(role.rawValue)-down"
        streak[up] = short ? streak[up, default: 0] + 1 : 0
        streak[down] = idle && !short && r.recovering == 0 ? streak[down, default: 0] + 1 : 0
        let since = now - (lastDecision[role] ?? -.infinity)
        if streak[up]! >= p.upEvaluations, r.starting == 0, since >= p.upCooldownSeconds {
            // A quarter more TEs, more when the shortfall is deeper (`pressure` is how many times
            // over its threshold the worst signal is), capped by the step and the spare pool.
            let wanted = Int((Double(r.inService) * min(1, 0.25 * max(1, pressure))).rounded(.up))
            let step = min(p.maxStepTEs, max(1, wanted), spare / r.npusPerTE)
            guard step > 0 else { return nil }
            streak[up] = 0
            lastDecision[role] = now
            return ScalingDecision(role: role, delta: step, reason: why)
        }
        if streak[down]! >= p.downEvaluations, r.starting == 0, r.draining == 0, since >= p.downCooldownSeconds,
           r.inService > p.minTEsPerRole {
            streak[down] = 0
            lastDecision[role] = now
            return ScalingDecision(role: role, delta: -1, reason: why)
        }
        return nil
    }

    static func ms(_ value: Double) -> String { String(Int(value.rounded())) }
    static func percent(_ share: Double) -> String { String(Int((share * 100).rounded())) }
}

extension ServingEngine {
    /// The autoscaler named `name` (``Policies/autoscaler``), with the configured parameters.
    func makeAutoscaler(_ name: String) throws(ConfigError) -> any Autoscaler {
        try Policies.autoscaler.make(name, PolicyContext(autoscaler: configuration.scaling.slo))
    }

    /// `autoscale off|slo` (also `policy autoscaler NAME`).
    func applyAutoscale(_ name: String) -> CommandReply {
        guard name != scaling.autoscalerName || !Policies.autoscaler.names.contains(name) else {
            return CommandReply(accepted: false, message: "the autoscaler is already \(name)")
        }
        do {
            scaling.swapAutoscaler(try makeAutoscaler(name))
        } catch {
            return CommandReply(accepted: false, message: error.description)
        }
        if name != "off" { scheduleAutoscaleTick() }
        return CommandReply(accepted: true, message: "autoscaler \(name)"
            + (name == "slo" ? " (evaluates every \(OperatorCommand.format(configuration.scaling.slo.intervalSeconds)) s)" : "")
            + (name != "off" ? autoscalerScalesNothing().map { "; \($0)" } ?? "" : ""))
    }

    /// Why an autoscaler scales nothing on this deployment: it scales prefill and decode TEs,
    /// and `autoscale slo` on colocated replicas was taken and then never acted, whatever the
    /// load. Nil when the deployment has a prefill or decode TE it can scale.
    func autoscalerScalesNothing() -> String? {
        let roles = Set(scalableGroups().map(\.role))
        let decode = roles.contains(.decode) && configuration.deployment.moeAttention == nil
        guard !roles.contains(.prefill), !decode else { return nil }
        return "it scales prefill and decode TEs, and deployment '\(configuration.deployment.name)' has none it can scale"
            + (roles.contains(.colocated) ? " (colocated TEs scale only by command: scale colocated N)" : "")
    }

    /// Why the autoscaler in effect scales nothing on this deployment, for the faces to say when
    /// they start (`xds run` and `xds serve` on stderr): `--autoscale slo` on colocated replicas
    /// said nothing there, since the reason is only in the event log. Nil while it is off or has
    /// a TE it can scale.
    public var autoscalerNote: String? {
        guard scaling.isAutoscaling, let why = autoscalerScalesNothing() else { return nil }
        return "autoscaler \(scaling.autoscalerName): \(why)"
    }

    /// The autoscaler's name, for snapshots and faces.
    public var autoscalerName: String { scaling.autoscalerName }

    func scheduleAutoscaleTick() {
        guard scaling.needsAutoscaleTick else { return }
        var inService: [(te: Int, stepSecondsLeft: Double)] = []
        for i in instances.indices where instances[i].role == .prefill && scaling.phase(i) == .inService {
            inService.append((i, prefillStepSecondsLeft(i)))
        }
        scaling.scheduleAutoscaleTick(now: now, counters: evaluationCounters(), inServicePrefill: inService, queue: &queue)
    }

    /// The telemetry counters the autoscaler measures its interval by, as they stand now.
    func evaluationCounters() -> ScalingController.EvaluationCounters {
        .init(prefillComputedTokens: telemetry.prefillComputedTokens, completed: telemetry.completed, sloMet: telemetry.sloMet)
    }

    func autoscaleTick() {
        scaling.autoscaleTickFired()
        guard scaling.isAutoscaling else { return }
        let load = clusterLoad()
        let decisions = scaling.evaluate(load, now: now)
        for d in decisions {
            let reply = applyScale(role: d.role, change: .by(d.delta), path: nil,
                                   origin: "autoscaler (\(d.delta > 0 ? "short" : "room"): \(d.reason)): ")
            logScaling(reply.accepted ? reply.message : "autoscaler wanted \(d.role.rawValue) \(d.delta > 0 ? "+" : "")\(d.delta) "
                + "(\(d.reason)) but: \(reply.message)", severity: reply.accepted ? .info : .warning)
        }
        scheduleAutoscaleTick()
    }

    /// A step of `seconds` starts on TE `index`: prefill TEs count it towards their busy share
    /// while an autoscaler runs (nothing is kept otherwise).
    func noteBusyForAutoscaler(_ index: Int, seconds: Double) {
        guard instances[index].role == .prefill, scaling.isAutoscaling else { return }
        scaling.recordPrefillStep(te: index, seconds: seconds)
    }

    /// Seconds left of prefill TE `index`'s running step (0: not stepping): what its busy sums,
    /// counted when steps start, hold ahead of now.
    func prefillStepSecondsLeft(_ index: Int) -> Double {
        instances[index].stepping ? max(0, (instances[index].stepEndsAt ?? now) - now) : 0
    }

    /// The autoscaler's view of the pod now, rates over the interval since the last evaluation.
    func clusterLoad() -> ClusterLoad {
        var load = ClusterLoad()
        load.sloTTFTMs = configuration.sloTTFTMs
        load.sloTPOTMs = configuration.sloTPOTMs
        load.spareNPUs = spareNPUs().count
        let groups = scalableGroups()
        load.prefill.npusPerTE = groups.first { $0.role == .prefill }?.npusEach ?? 0
        load.decode.npusPerTE = groups.first { $0.role == .decode }?.npusEach ?? 0
        var busy = 0.0, prefillTEs = 0
        var measuredBusy = 0.0, measuredGroupBusy = 0.0, measuredTEs = 0
        let interval = scaling.evaluationInterval(now: now)
        var kvUsed = 0.0, kvGroups = 0
        for i in instances.indices {
            let phase = scaling.phase(i)
            let role = instances[i].role == .prefill ? \ClusterLoad.prefill : instances[i].role == .decode ? \ClusterLoad.decode : nil
            // A TE out for a recovery or a migration serves nothing: its empty queue and idle
            // steps are not room, and its KV is not load.
            let recovering = phase == .inService && faults.hasOutage(i)
            if let role {
                if recovering { load[keyPath: role].recovering += 1 }
                else if phase == .inService { load[keyPath: role].inService += 1 }
                if phase.isStarting { load[keyPath: role].starting += 1 }
                if phase == .draining { load[keyPath: role].draining += 1 }
            }
            guard phase == .inService, !recovering else { continue }
            if instances[i].hasPrefill {
                load.queuedPrefillTokens += instances[i].prefill?.totalQueuedTokens ?? 0
                busy += instances[i].utilization
                prefillTEs += 1
                // In service since the last evaluation: its busy share over the whole interval.
                if let shares = scaling.busyShares(te: i, stepSecondsLeft: prefillStepSecondsLeft(i), interval: interval) {
                    measuredBusy += shares.busy
                    measuredGroupBusy += shares.groupBusy
                    measuredTEs += 1
                }
            }
            if instances[i].hasDecode {
                for g in instances[i].groups where !cluster.isOutOfService(te: i, group: g) {
                    kvUsed += kvStore.usageIncludingReserved(GroupRef(te: i, group: g))
                    kvGroups += 1
                }
                if instances[i].runningRequests > 0 {
                    load.decodeTPOTMs = max(load.decodeTPOTMs, instances[i].lastStepSeconds * 1_000 / tokensPerStep)
                }
            }
        }
        // Over the interval where measured; else the last telemetry interval's share.
        load.prefillUtilization = measuredTEs > 0 ? measuredBusy / Double(measuredTEs)
            : prefillTEs > 0 ? busy / Double(prefillTEs) : 0
        load.prefillGroupBusyShare = measuredTEs > 0 ? measuredGroupBusy / Double(measuredTEs) : nil
        load.decodeKVUsage = kvGroups > 0 ? kvUsed / Double(kvGroups) : 0
        let since = scaling.countsSinceEvaluation(evaluationCounters())
        let computed = Double(since.prefillComputedTokens) / interval
        // Capacity: tokens computed per second of DP-group prefilling, times all the groups
        // (steady from 40 to 250 req/s on the default pod, where tokens per busy second of a
        // TE is not: small batches are short).
        let capacity = computed / max(0.05, load.prefillGroupBusyShare ?? load.prefillUtilization)
        load.prefillQueueWaitSeconds = load.queuedPrefillTokens == 0 ? 0
            : capacity > 0 ? Double(load.queuedPrefillTokens) / capacity : Self.longestDelay
        let ttfts = telemetry.recent.compactMap(\.ttftMs).sorted()
        if !ttfts.isEmpty { load.recentTTFTp90Ms = ttfts[min(ttfts.count - 1, Int(Double(ttfts.count) * 0.9))] }
        if since.completed > 0 { load.windowAttainment = Double(since.sloMet) / Double(since.completed) }
        return load
    }
}
