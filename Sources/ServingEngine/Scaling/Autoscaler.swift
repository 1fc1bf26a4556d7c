import PodModel
import SimKit

/// What an autoscaler sees at one evaluation: the TEs of each role and the load signals,
/// measured over the evaluation interval.
public struct ClusterLoad: Sendable, Equatable {
    public struct Role: Sendable, Equatable {
        public var inService = 0
        public var starting = 0
        public var draining = 0
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
    /// measured over the interval (computed tokens per busy second).
    public var prefillQueueWaitSeconds = 0.0
    /// Mean busy share of the in-service prefill TEs over the interval.
    public var prefillUtilization = 0.0
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
public struct SLOAutoscalerParameters: Sendable, Equatable {
    /// Evaluate every 5 s (a few prefill batches; long enough for the signals to settle).
    public var intervalSeconds = 5.0
    /// Prefill is short when a new prompt would wait more than this share of the TTFT SLO
    /// behind the queued tokens, or recent TTFT p90 passes `upTTFTShare` of the SLO.
    public var upQueueWaitShare = 0.25
    public var upTTFTShare = 0.8
    /// Prefill has room when TTFT p90 is under this share of the SLO, the queue is near empty
    /// and the TEs left would run below `downUtilization` busy.
    public var downTTFTShare = 0.3
    public var downUtilization = 0.5
    /// Decode is short when its KV (with reservations) passes this share, or TPOT passes
    /// `upTPOTShare` of the SLO; it has room under `downKVUsage` with TPOT under half the SLO.
    public var upKVUsage = 0.85
    public var upTPOTShare = 0.9
    public var downKVUsage = 0.3
    /// Hysteresis: consecutive evaluations a condition must hold before acting (up fast, down slow).
    public var upEvaluations = 2
    public var downEvaluations = 12
    /// Cooldown after a decision for the same role: 15 s before another scale-up (a fork
    /// start takes seconds), 120 s before a scale-down (never shrink right after a surge).
    public var upCooldownSeconds = 15.0
    public var downCooldownSeconds = 120.0
    /// Largest step, in TEs, of one scale-up (a quarter of the role, at least 1, at most this).
    public var maxStepTEs = 4
    /// Never fewer TEs of a role (the issue's floor is one).
    public var minTEsPerRole = 1

    public init() {}

    func validationProblem() -> String? {
        let shares = [upQueueWaitShare, upTTFTShare, downTTFTShare, downUtilization, upKVUsage, upTPOTShare, downKVUsage]
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

/// `autoscale slo`: scales prefill on queued prompt tokens and TTFT, decode on KV headroom and
/// TPOT, against the SLOs; with hysteresis (a condition must hold for several evaluations),
/// a cooldown per role, never below ``SLOAutoscalerParameters/minTEsPerRole`` and never beyond
/// the spare pool. One step at a time per role: no scale-up while TEs of the role are starting.
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
        // Prefill.
        let waitShare = load.prefillQueueWaitSeconds * 1_000 / load.sloTTFTMs
        let prefillShort = waitShare > p.upQueueWaitShare || ttft > p.upTTFTShare * load.sloTTFTMs
        let n = load.prefill.inService
        let projected = n > 1 ? load.prefillUtilization * Double(n) / Double(n - 1) : .infinity
        let prefillIdle = ttft < p.downTTFTShare * load.sloTTFTMs && waitShare < p.upQueueWaitShare / 4
            && projected < p.downUtilization
        let pressure = max(waitShare / p.upQueueWaitShare, ttft / (p.upTTFTShare * load.sloTTFTMs))
        if let d = decide(role: .prefill, load.prefill, short: prefillShort, idle: prefillIdle, spare: load.spareNPUs, now: now,
                          pressure: pressure, why: prefillShort
                            ? "queued prompt tokens \(load.queuedPrefillTokens) ≈ \(Self.ms(load.prefillQueueWaitSeconds * 1_000)) ms "
                                + "of prefill, TTFT p90 \(Self.ms(ttft)) ms (SLO \(Self.ms(load.sloTTFTMs)) ms)"
                            : "TTFT p90 \(Self.ms(ttft)) ms, prefill \(Int((load.prefillUtilization * 100).rounded()))% busy; "
                                + "one TE fewer would be \(Int((min(projected, 9.99) * 100).rounded()))% busy") {
            decisions.append(d)
        }
        // Decode.
        let decodeShort = load.decodeKVUsage > p.upKVUsage || load.decodeTPOTMs > p.upTPOTShare * load.sloTPOTMs
        let decodeIdle = load.decodeKVUsage < p.downKVUsage && load.decodeTPOTMs < 0.5 * load.sloTPOTMs
            && load.decode.inService > 1
        if let d = decide(role: .decode, load.decode, short: decodeShort, idle: decodeIdle, spare: load.spareNPUs, now: now,
                          why: "decode KV \(Int((load.decodeKVUsage * 100).rounded()))% (with reservations), "
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
        streak[down] = idle && !short ? streak[down, default: 0] + 1 : 0
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
}

/// Autoscaler policies by name (a policy registry elsewhere may take these over).
public enum Autoscalers {
    public static let names = ["off", "slo"]

    static func make(_ name: String, parameters: SLOAutoscalerParameters) -> any Autoscaler {
        switch name {
        case "slo": SLOAutoscaler(parameters: parameters)
        default: OffAutoscaler()
        }
    }
}

extension ServingEngine {
    /// `autoscale off|slo`.
    func applyAutoscale(_ name: String) -> CommandReply {
        guard Autoscalers.names.contains(name) else {
            return CommandReply(accepted: false, message: "unknown autoscaler '\(name)'; expected one of: \(Autoscalers.names.joined(separator: ", "))")
        }
        guard name != scaling.autoscaler.name else {
            return CommandReply(accepted: false, message: "the autoscaler is already \(name)")
        }
        scaling.autoscaler = Autoscalers.make(name, parameters: configuration.scaling.slo)
        if name != "off" { scheduleAutoscaleTick() }
        return CommandReply(accepted: true, message: "autoscaler \(name)"
            + (name == "slo" ? " (evaluates every \(OperatorCommand.format(configuration.scaling.slo.intervalSeconds)) s)" : ""))
    }

    /// The autoscaler's name, for snapshots and faces.
    public var autoscalerName: String { scaling.autoscaler.name }

    func scheduleAutoscaleTick() {
        guard !scaling.autoscaleTickPending, scaling.autoscaler.intervalSeconds > 0 else { return }
        scaling.autoscaleTickPending = true
        scaling.lastEvaluation = now
        scaling.lastPrefillComputedTokens = telemetry.prefillComputedTokens
        scaling.lastCompleted = telemetry.completed
        scaling.lastSLOMet = telemetry.sloMet
        queue.schedule(at: now.after(scaling.autoscaler.intervalSeconds), .scaling(.autoscaleTick))
    }

    func autoscaleTick() {
        scaling.autoscaleTickPending = false
        guard scaling.autoscaler.intervalSeconds > 0 else { return }
        let load = clusterLoad()
        let decisions = scaling.autoscaler.evaluate(load, now: now)
        for d in decisions {
            let reply = applyScale(role: d.role, change: .by(d.delta), path: nil,
                                   origin: "autoscaler (\(d.delta > 0 ? "short" : "room"): \(d.reason)): ")
            logScaling(reply.accepted ? reply.message : "autoscaler wanted \(d.role.rawValue) \(d.delta > 0 ? "+" : "")\(d.delta) "
                + "(\(d.reason)) but: \(reply.message)", severity: reply.accepted ? .info : .warning)
        }
        scheduleAutoscaleTick()
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
        var kvUsed = 0.0, kvGroups = 0
        for i in instances.indices {
            let phase = scaling.phase(i)
            let role = instances[i].role == .prefill ? \ClusterLoad.prefill : instances[i].role == .decode ? \ClusterLoad.decode : nil
            if let role {
                if phase == .inService { load[keyPath: role].inService += 1 }
                if phase.isStarting { load[keyPath: role].starting += 1 }
                if phase == .draining { load[keyPath: role].draining += 1 }
            }
            guard phase == .inService else { continue }
            if instances[i].hasPrefill {
                load.queuedPrefillTokens += instances[i].dp.reduce(0) { $0 + $1.queuedTokens }
                busy += instances[i].utilization
                prefillTEs += 1
            }
            if instances[i].hasDecode {
                for g in instances[i].dp where !g.outOfService {
                    kvUsed += g.kv.usageIncludingReserved
                    kvGroups += 1
                }
                if instances[i].runningRequests > 0 {
                    load.decodeTPOTMs = max(load.decodeTPOTMs, instances[i].lastStepSeconds * 1_000 / tokensPerStep)
                }
            }
        }
        load.prefillUtilization = prefillTEs > 0 ? busy / Double(prefillTEs) : 0
        load.decodeKVUsage = kvGroups > 0 ? kvUsed / Double(kvGroups) : 0
        let interval = max(1e-9, now - scaling.lastEvaluation)
        let computed = Double(telemetry.prefillComputedTokens - scaling.lastPrefillComputedTokens) / interval
        // Capacity: tokens computed per busy second of the prefill side.
        let capacity = computed / max(0.05, load.prefillUtilization)
        load.prefillQueueWaitSeconds = load.queuedPrefillTokens == 0 ? 0
            : capacity > 0 ? Double(load.queuedPrefillTokens) / capacity : Self.longestDelay
        let ttfts = telemetry.recent.compactMap(\.ttftMs).sorted()
        if !ttfts.isEmpty { load.recentTTFTp90Ms = ttfts[min(ttfts.count - 1, Int(Double(ttfts.count) * 0.9))] }
        let completed = telemetry.completed - scaling.lastCompleted
        if completed > 0 { load.windowAttainment = Double(telemetry.sloMet - scaling.lastSLOMet) / Double(completed) }
        return load
    }
}
