import Foundation
import SimKit

/// One fault in the `xds run --json` report (`fault_details`): what it was, when it was found
/// and handled, and what it cost.
///
/// ```swift
/// for f in engine.report().faultDetails { print(f.id, f.timeToDetectS ?? .nan, f.requestsReprefilled) }
/// ```
public struct FaultDetail: Sendable, Equatable, Codable {
    public var id: Int
    public var command: String
    public var injectedAt: Double
    public var detectedAt: Double?
    public var recoveredAt: Double?
    public var healedAt: Double?
    public var timeToDetectS: Double?
    /// From injection to recovery.
    public var timeToRecoverS: Double?
    public var detection: String
    public var recovery: String
    public var requestsFailed: Int
    public var requestsReprefilled: Int
    /// The operator healed it before anything detected it: `recovered_at` stays null (no
    /// recovery acted). Written (`healed_before_detection: true`) only when true, so the entries
    /// of every other fault keep their exact bytes.
    public var healedBeforeDetection = false

    enum CodingKeys: String, CodingKey {
        case id, command, detection, recovery
        case healedBeforeDetection = "healed_before_detection"
        case injectedAt = "injected_at"
        case detectedAt = "detected_at"
        case recoveredAt = "recovered_at"
        case healedAt = "healed_at"
        case timeToDetectS = "time_to_detect_s"
        case timeToRecoverS = "time_to_recover_s"
        case requestsFailed = "requests_failed"
        case requestsReprefilled = "requests_reprefilled"
    }

    /// Times not reached yet are written as null, so every entry has every key.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(command, forKey: .command)
        try c.encode(injectedAt, forKey: .injectedAt)
        try c.encode(detectedAt, forKey: .detectedAt)
        try c.encode(recoveredAt, forKey: .recoveredAt)
        try c.encode(healedAt, forKey: .healedAt)
        try c.encode(timeToDetectS, forKey: .timeToDetectS)
        try c.encode(timeToRecoverS, forKey: .timeToRecoverS)
        try c.encode(detection, forKey: .detection)
        try c.encode(recovery, forKey: .recovery)
        try c.encode(requestsFailed, forKey: .requestsFailed)
        try c.encode(requestsReprefilled, forKey: .requestsReprefilled)
        if healedBeforeDetection { try c.encode(true, forKey: .healedBeforeDetection) }
    }

    public init(id: Int, command: String, injectedAt: Double, detectedAt: Double?, recoveredAt: Double?, healedAt: Double?,
                timeToDetectS: Double?, timeToRecoverS: Double?, detection: String, recovery: String,
                requestsFailed: Int, requestsReprefilled: Int, healedBeforeDetection: Bool = false) {
        self.id = id
        self.command = command
        self.injectedAt = injectedAt
        self.detectedAt = detectedAt
        self.recoveredAt = recoveredAt
        self.healedAt = healedAt
        self.timeToDetectS = timeToDetectS
        self.timeToRecoverS = timeToRecoverS
        self.detection = detection
        self.recovery = recovery
        self.requestsFailed = requestsFailed
        self.requestsReprefilled = requestsReprefilled
        self.healedBeforeDetection = healedBeforeDetection
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(id: try c.decode(Int.self, forKey: .id), command: try c.decode(String.self, forKey: .command),
                  injectedAt: try c.decode(Double.self, forKey: .injectedAt),
                  detectedAt: try c.decodeIfPresent(Double.self, forKey: .detectedAt),
                  recoveredAt: try c.decodeIfPresent(Double.self, forKey: .recoveredAt),
                  healedAt: try c.decodeIfPresent(Double.self, forKey: .healedAt),
                  timeToDetectS: try c.decodeIfPresent(Double.self, forKey: .timeToDetectS),
                  timeToRecoverS: try c.decodeIfPresent(Double.self, forKey: .timeToRecoverS),
                  detection: try c.decode(String.self, forKey: .detection), recovery: try c.decode(String.self, forKey: .recovery),
                  requestsFailed: try c.decode(Int.self, forKey: .requestsFailed),
                  requestsReprefilled: try c.decode(Int.self, forKey: .requestsReprefilled),
                  healedBeforeDetection: try c.decodeIfPresent(Bool.self, forKey: .healedBeforeDetection) ?? false)
    }
}

/// Progress of a drain: requests still holding something on the node.
public struct DrainProgress: Sendable, Equatable, Codable {
    public var node: Int
    public var requestsLeft: Int
    public init(node: Int, requestsLeft: Int) {
        self.node = node
        self.requestsLeft = requestsLeft
    }
}

extension ServingEngine {
    /// Per-fault details, in id order. A recovery scheduled for later (a glitch redo) counts
    /// only once it has happened.
    func faultDetails() -> [FaultDetail] {
        faults.records.map { r in
            let detected = r.detectedAt.flatMap { $0 <= now ? $0 : nil }
            let recovered = r.recoveredAt.flatMap { $0 <= now ? $0 : nil }
            return FaultDetail(id: r.id, command: r.label, injectedAt: r.injectedAt, detectedAt: detected,
                               recoveredAt: recovered, healedAt: r.healedAt,
                               timeToDetectS: detected.map { $0 - r.injectedAt },
                               timeToRecoverS: recovered.map { $0 - r.injectedAt }, detection: r.detection,
                               recovery: r.recovery, requestsFailed: r.requestsFailed,
                               requestsReprefilled: r.requestsReprefilled, healedBeforeDetection: r.healedBeforeDetection)
        }
    }

    /// `faults.injected/detected/recovered` (and `healed_before_detection`) of the report.
    func faultCounts() -> RunReport.Faults {
        let details = faultDetails()
        return RunReport.Faults(injected: details.count, detected: details.filter { $0.detectedAt != nil }.count,
                                recovered: details.filter { $0.recoveredAt != nil }.count,
                                healedBeforeDetection: details.filter(\.healedBeforeDetection).count)
    }

    /// Faults not yet healed, for the console (a recovered fault stays listed until healed).
    func activeFaultStatuses() -> [FaultStatus] {
        faults.records.filter(\.active).map { r in
            var text = r.listing
            if case .straggler(let die, let factor) = r.kind { text = "straggler \(hardware.dieName(die)) (\(OperatorCommand.format(factor))× slower)" }
            if let detected = r.detectedAt, detected <= now {
                text += " · detected in \(String(format: "%.1f", detected - r.injectedAt)) s"
            }
            if let recovered = r.recoveredAt, recovered <= now {
                text += " · recovered in \(String(format: "%.1f", recovered - r.injectedAt)) s"
            } else if r.detectedAt != nil && r.kind.isPerformance {
                text += " · kept until healed"
            }
            var status = FaultStatus(id: r.id, description: text, injectedAt: r.injectedAt, detectedAt: r.detectedAt,
                                     recoveredAt: r.recoveredAt.flatMap { $0 <= now ? $0 : nil })
            (status.requestsFailed, status.requestsReprefilled) = (r.requestsFailed, r.requestsReprefilled)
            (status.effect, status.chips) = touchedChips(r.kind)
            return status
        }
    }

    /// The chips a fault touches and what it does to them (``FaultStatus/effect``); none for a glitch.
    func touchedChips(_ kind: FaultKind) -> (FaultEffect?, [Int]?) {
        let perChip = topology.diesPerNPU
        switch kind {
        case .dead(let dies): return (.dead, Array(Set(dies.map { $0 / perChip })).sorted())
        case .straggler(let die, _): return (.slow, [die / perChip])
        case .hbm(let die): return (.hbm, [die / perChip])
        case .link(let a, let b, _): return (.link, a == b ? [a] : [min(a, b), max(a, b)])
        case .glitch: return (nil, nil)
        }
    }

    /// Marks NPUs with a dead die, a straggler die or an HBM fault.
    func markFaultedNPUs(_ npus: inout [NPUStatus]) {
        var faulted = Set(faults.deadDies.keys.map { $0 / topology.diesPerNPU })
        faulted.formUnion(faults.stragglers.keys.map { $0 / topology.diesPerNPU })
        for r in faults.records where r.active {
            if case .hbm(let die) = r.kind { faulted.insert(die / topology.diesPerNPU) }
        }
        for npu in faulted where npu < npus.count { npus[npu].faulted = true }
    }
}
