import PodModel

/// An immutable picture of the engine, published a few times per second.
///
/// Faces (console, HTTP, batch CLI) read only this and ``EngineEvent``s; they never reach
/// into engine internals (architecture.md principle 2). Everything is a value type so a
/// snapshot can cross threads freely.
///
/// ```swift
/// let s = link.latestSnapshot
/// print(s.simTime, s.requests.running, s.latency.ttftP99Ms)
/// ```
public struct Snapshot: Sendable, Equatable, Codable {
    public var simTime: Double = 0
    /// Simulated seconds per wall second the pacer aims for; `nil` = as fast as possible.
    public var speed: Double? = 1
    public var paused = false
    public var deploymentName = ""
    public var modelName = ""
    public var hardwareName = ""
    /// Synthetic arrival rate in requests/s (0 for trace replay).
    public var arrivalRate: Double = 0
    public var outputTokensPerSecond: Double = 0
    public var prefillTokensPerSecond: Double = 0
    public var requests = RequestCounts()
    public var latency = LatencySummary()
    public var slo = SLOTargets()
    public var kv = KVSummary()
    /// One entry per NPU of the pod (384 for CloudMatrix384), in NPU-id order.
    public var npus: [NPUStatus] = []
    public var instances: [InstanceStatus] = []
    public var experts = ExpertSummary()
    public var activeFaults: [FaultStatus] = []
    public var drainedNodes: [Int] = []
    public var drainingNodes: [Int] = []
    /// Requests left on each drained node (0 once it is drained).
    public var drainProgress: [DrainProgress] = []
    /// Time series for sparklines, oldest first, one point per series interval.
    public var series = Series()
    /// Requests in flight (bounded: the oldest few hundred) and recently finished ones.
    public var inFlight: [RequestStatus] = []
    public var recent: [RequestStatus] = []
    /// The newest events (bounded ring), oldest first.
    public var events: [EngineEvent] = []
    /// Faults, detections, recoveries, heals, drains, undrains, commands and refused commands
    /// that have left ``events``, oldest first (the engine's last 256 of them): under a flood of
    /// refused requests they leave the ring between two snapshots. Nil when none has left it,
    /// and from engines that predate it.
    public var earlierEvents: [EngineEvent]?
    public var histograms = LatencyHistograms()
    /// Set by a remote link when its connection to `xds serve` is down ("reconnecting…"); nil
    /// when the snapshot is live.
    public var linkStatus: String?
    /// The policy in each slot, by slot key (`je_routing`, `dp_balancing`, …); nil from an
    /// engine that predates policies by name.
    public var policies: PolicyNames?
    /// The autoscaler policy by name (`off`, `slo`); nil from engines without scaling.
    public var autoscaler: String?

    public init() {}
}

extension Snapshot {
    /// The pod this snapshot pictures, as far as it says: its NPU list (one entry per NPU of the
    /// pod) over its hardware profile's NPUs per node and dies per NPU. A face that parses command
    /// lines away from the engine (a remote console, a preview) parses against it, so a bad index
    /// names the pod's range (`the pod has nodes 0…47`) as the engine's own parse does. Nil before
    /// the first snapshot, or for hardware this build does not know.
    public var podTopology: PodTopology? {
        guard !npus.isEmpty, let hardware = try? HardwareProfile.named(hardwareName), hardware.devicesPerNode > 0,
              npus.count % hardware.devicesPerNode == 0 else { return nil }
        return PodTopology(nodes: npus.count / hardware.devicesPerNode, npusPerNode: hardware.devicesPerNode,
                           diesPerNPU: hardware.diesPerDevice)
    }
}

public struct RequestCounts: Sendable, Equatable, Codable {
    public var arrived = 0
    public var completed = 0
    public var failed = 0
    public var rejected = 0
    public var inFlight = 0
    /// In flight and not in a decode batch: queued for prefill, in a prefill batch, waiting for
    /// a KV transfer or a decode seat (the console header's "wait"). `/metrics`
    /// `vllm:num_requests_waiting` leaves out the ones in a prefill batch, as vLLM does.
    public var waiting = 0
    /// In a decode batch (the console header's "run"; `vllm:num_requests_running` adds the
    /// requests in prefill batches, each TE's ``InstanceStatus/running``).
    public var running = 0
    public init() {}
}

public struct LatencySummary: Sendable, Equatable, Codable {
    public var ttftP50Ms: Double = 0, ttftP90Ms: Double = 0, ttftP99Ms: Double = 0, ttftMeanMs: Double = 0
    public var tpotP50Ms: Double = 0, tpotP90Ms: Double = 0, tpotP99Ms: Double = 0, tpotMeanMs: Double = 0
    public var e2eP50Ms: Double = 0, e2eP90Ms: Double = 0, e2eP99Ms: Double = 0, e2eMeanMs: Double = 0
    /// Share of completed requests that met both SLOs.
    public var sloAttainment: Double = 0
    public init() {}
}

public struct SLOTargets: Sendable, Equatable, Codable {
    public var ttftMs: Double = 2000
    public var tpotMs: Double = 35
    public init() {}
}

/// A histogram as bucket upper bounds (ms) and counts, for drawing.
public struct HistogramBins: Sendable, Equatable, Codable {
    public var upperBoundsMs: [Double] = []
    public var counts: [Int] = []
    /// Each bin split in `subBins` equal parts (to the histogram's resolution: the engine's
    /// parts end on its slots, 3 significant digits), their counts bin-major, `counts.count ×
    /// subBins` of them; 0 and empty where there are none. The engine's bins double (1, 2, 4 …
    /// ms), so samples within one of them drew as one bar; the console resolves a narrow spread
    /// with the parts.
    public var subBins = 0
    public var subCounts: [Int] = []
    /// Any sample at all: before the first one a percentile is unknown, not 0 ms.
    public var hasSamples: Bool { counts.contains { $0 > 0 } }
    public init() {}
    public init(upperBoundsMs: [Double], counts: [Int], subBins: Int = 0, subCounts: [Int] = []) {
        self.upperBoundsMs = upperBoundsMs
        self.counts = counts
        self.subBins = subBins
        self.subCounts = subCounts
    }

    private enum CodingKeys: String, CodingKey { case upperBoundsMs, counts, subBins, subCounts }

    /// Without parts the JSON is what it was before they existed (no `subBins`/`subCounts` keys).
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(upperBoundsMs, forKey: .upperBoundsMs)
        try c.encode(counts, forKey: .counts)
        if subBins > 0 {
            try c.encode(subBins, forKey: .subBins)
            try c.encode(subCounts, forKey: .subCounts)
        }
    }

    /// The parts are optional on the wire: a snapshot from an engine without them decodes.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        upperBoundsMs = try c.decode([Double].self, forKey: .upperBoundsMs)
        counts = try c.decode([Int].self, forKey: .counts)
        subBins = try c.decodeIfPresent(Int.self, forKey: .subBins) ?? 0
        subCounts = try c.decodeIfPresent([Int].self, forKey: .subCounts) ?? []
    }
}

public struct LatencyHistograms: Sendable, Equatable, Codable {
    public var ttft = HistogramBins()
    public var tpot = HistogramBins()
    public var e2e = HistogramBins()
    public init() {}
}

public struct KVSummary: Sendable, Equatable, Codable {
    /// Used share (0…1) of KV blocks over all decode DP groups.
    public var decodeUsage: Double = 0
    public var peakUsage: Double = 0
    public var prefixHitRate: Double = 0
    /// Pooled DRAM tier (EMS): bytes used and capacity.
    public var poolUsedBytes: Double = 0
    public var poolCapacityBytes: Double = 0
    /// KV transfers registered but not yet pulled by decode (back-pressure).
    public var transferQueue = 0
    public var transfersInProgress = 0
    /// One entry per decode DP group: used share 0…1 (including reserved output space).
    public var decodeGroups: [Double] = []
    /// One entry per prefill TE: used share 0…1.
    public var prefillInstances: [Double] = []
    public init() {}
}

public enum NPURole: String, Sendable, Equatable, Codable, CaseIterable {
    case prefill, decode, attention, expert, colocated, spare
}

public struct NPUStatus: Sendable, Equatable, Codable {
    public var id: Int
    public var node: Int
    public var role: NPURole
    /// Name of the instance (TE) the NPU belongs to, e.g. "prefill-3", "decode-0"; empty for spare.
    public var instance: String
    /// DP groups (one per die for decode; TP groups share one) hosted by this NPU's two dies.
    public var dpGroups: [Int]
    /// Busy share of the last interval, 0…1.
    public var utilization: Double
    public var hbmUsedBytes: Double
    public var hbmCapacityBytes: Double
    public var kvUsage: Double
    /// Logical expert ids hosted on this NPU's dies (both dies).
    public var experts: [Int]
    /// Relative MoE load of the NPU's dies (1 = pod mean).
    public var expertLoad: Double
    public var requestsInFlight: Int
    public var drained: Bool
    public var draining: Bool
    public var faulted: Bool
    public init(
        id: Int, node: Int, role: NPURole, instance: String = "", dpGroups: [Int] = [],
        utilization: Double = 0, hbmUsedBytes: Double = 0, hbmCapacityBytes: Double = 0,
        kvUsage: Double = 0, experts: [Int] = [], expertLoad: Double = 0, requestsInFlight: Int = 0,
        drained: Bool = false, draining: Bool = false, faulted: Bool = false
    ) {
        self.id = id
        self.node = node
        self.role = role
        self.instance = instance
        self.dpGroups = dpGroups
        self.utilization = utilization
        self.hbmUsedBytes = hbmUsedBytes
        self.hbmCapacityBytes = hbmCapacityBytes
        self.kvUsage = kvUsage
        self.experts = experts
        self.expertLoad = expertLoad
        self.requestsInFlight = requestsInFlight
        self.drained = drained
        self.draining = draining
        self.faulted = faulted
    }
}

public struct InstanceStatus: Sendable, Equatable, Codable {
    public var name: String
    public var kind: String  // "prefill", "decode", "colocated"
    public var npus: Int
    public var queued: Int
    public var running: Int
    public var kvUsage: Double
    public var stepMs: Double
    /// Lifecycle (elastic scaling): `allocating`, `loading`, `warming-up`, `in-service`,
    /// `draining` (scaled in, finishing its work) or `retired`; nil from engines without scaling.
    public var state: String?
    /// Seconds left in a starting TE's current phase, and how it loads its weights.
    public var phaseSecondsLeft: Double?
    public var loadPath: String?
    /// KV blocks of the DP groups the TE runs (a group a shrink fenced off is not counted), the
    /// blocks its requests hold in them, and the blocks reserved for the rest of their replies
    /// (held by none yet). `kvUsage` is the held share alone; the KV view's strip draws held +
    /// reserved per group, and a TE's figure beside it needs the reserve to be of that scope.
    /// Optional: nil from a server older than these keys (the remote console decodes its JSON).
    public var kvBlocksTotal: Int?
    public var kvBlocksHeld: Int?
    public var kvBlocksReserved: Int?
    public init(name: String, kind: String, npus: Int, queued: Int = 0, running: Int = 0,
                kvUsage: Double = 0, stepMs: Double = 0) {
        self.name = name
        self.kind = kind
        self.npus = npus
        self.queued = queued
        self.running = running
        self.kvUsage = kvUsage
        self.stepMs = stepMs
    }

    /// Held plus reserved share of the TE's KV blocks, at most 1 as a strip group's (the strip
    /// clamps each group where reservations overcommit); nil without the block counts.
    public var kvHeldPlusReservedShare: Double? {
        guard let total = kvBlocksTotal, let held = kvBlocksHeld, let reserved = kvBlocksReserved else { return nil }
        return total > 0 ? min(1, Double(held + reserved) / Double(total)) : 0
    }
}

public struct ExpertSummary: Sendable, Equatable, Codable {
    /// Max over mean of per-die MoE load in decode.
    public var imbalance: Double = 1
    public var rebalances = 0
    public var rebalanceInProgress = false
    /// Rows = MoE layers, columns = logical experts; relative load (1 = mean).
    public var heat: [[Double]] = []
    /// Relative MoE load per expert die of the decode instance (1 = mean).
    public var dieLoad: [Double] = []
    /// Hottest (layer, expert, relative load), hottest first.
    public var hottest: [HotExpert] = []
    /// Physical slots currently loading weights (die indices).
    public var loadingDies: [Int] = []
    /// Decode steps' MoE part (experts, dispatch, combine), ms per step averaged over the run;
    /// nil before the first decode step.
    public var moeMsPerStep: Double?
    /// The run's `--eplb` mode (nil from an engine that does not send it): with `off` the
    /// placement never moves by itself, and "placement stable" read as EPLB keeping it balanced.
    public var eplb: EPLBMode?
    /// Whether the decode TE's layout leaves EPLB nothing to move: one slot per routed die and
    /// as many dies as experts (no redundant slot), so every placement gives each die the load
    /// it has (colocated-288, xdeepserve-ma). True then, nil otherwise (and from an engine that
    /// does not send it). With
    /// EPLB on, "placement stable" and "rebalances 0" beside an imbalance of 3.8 read as a
    /// planner that failed.
    public var placementFixed: Bool?
    public init() {}
}

public struct HotExpert: Sendable, Equatable, Codable {
    public var layer: Int
    public var expert: Int
    public var load: Double
    public init(layer: Int, expert: Int, load: Double) {
        self.layer = layer
        self.expert = expert
        self.load = load
    }
}

public struct FaultStatus: Sendable, Equatable, Codable {
    public var id: Int
    public var description: String
    public var injectedAt: Double
    public var detectedAt: Double?
    public var recoveredAt: Double?
    /// Requests its recovery failed and re-prefilled so far (the engine's own counts, as in the
    /// report's `fault_details`); nil from an engine that does not send them.
    public var requestsFailed: Int?
    public var requestsReprefilled: Int?
    /// What the fault does to the chips it touches, and which chips (NPU or GPU numbers,
    /// ascending): the engine's own record, so that a grid marks them without reading the
    /// description's words. Nil for a fault that touches no chip (a network glitch), and from an
    /// engine that does not send them.
    public var effect: FaultEffect?
    public var chips: [Int]?
    public init(id: Int, description: String, injectedAt: Double, detectedAt: Double? = nil,
                recoveredAt: Double? = nil) {
        self.id = id
        self.description = description
        self.injectedAt = injectedAt
        self.detectedAt = detectedAt
        self.recoveredAt = recoveredAt
    }
}

/// What an active fault does to a chip it touches (``FaultStatus/effect``).
public enum FaultEffect: String, Sendable, Equatable, Codable {
    /// A die, chip or node that stopped answering.
    case dead
    /// A straggler die: it answers, slower.
    case slow
    /// An uncorrectable HBM error: the region is masked, the chip serves on.
    case hbm
    /// One end of a link that is down or degraded.
    case link
}

public struct Series: Sendable, Equatable, Codable {
    /// Seconds of simulated time between points.
    public var intervalSeconds: Double = 1
    public var outputTokensPerSecond: [Double] = []
    public var ttftP99Ms: [Double] = []
    public var tpotP99Ms: [Double] = []
    public var e2eP99Ms: [Double] = []
    public var kvUsage: [Double] = []
    public var imbalance: [Double] = []
    public var running: [Double] = []
    public var waiting: [Double] = []
    public init() {}
}

public enum RequestStage: String, Sendable, Equatable, Codable, CaseIterable {
    case queued, prefill, transfer, decode, completed, failed, rejected, cancelled
}

public struct RequestStatus: Sendable, Equatable, Codable {
    public var id: Int
    public var arrivedAt: Double
    public var stage: RequestStage
    public var promptTokens: Int
    public var outputTokens: Int
    public var generatedTokens: Int
    /// Where it runs, e.g. "prefill-2/dp5" or "decode-0/dp117".
    public var location: String
    public var ttftMs: Double?
    public var finishedAt: Double?
    /// Why it failed or was rejected.
    public var reason: String?
    public init(id: Int, arrivedAt: Double, stage: RequestStage, promptTokens: Int, outputTokens: Int,
                generatedTokens: Int = 0, location: String = "", ttftMs: Double? = nil,
                finishedAt: Double? = nil, reason: String? = nil) {
        self.id = id
        self.arrivedAt = arrivedAt
        self.stage = stage
        self.promptTokens = promptTokens
        self.outputTokens = outputTokens
        self.generatedTokens = generatedTokens
        self.location = location
        self.ttftMs = ttftMs
        self.finishedAt = finishedAt
        self.reason = reason
    }
}

/// The typed event log (architecture.md): what happened, when, in simulated time.
public struct EngineEvent: Sendable, Equatable, Codable {
    public enum Kind: String, Sendable, Equatable, Codable, CaseIterable {
        case requestFinished, requestFailed, requestRejected, requestCancelled
        case queueThreshold, command, commandRejected
        case drain, undrain, fault, faultDetected, recovery, heal, rebalance, scenario, info, scaling
    }
    public enum Severity: String, Sendable, Equatable, Codable { case info, warning, error }
    public var time: Double
    public var kind: Kind
    public var severity: Severity
    public var message: String
    public var requestId: Int?
    /// The fault a line is about, when it is about one: its injection, its recovery, its heal.
    /// The console dates a fault's end by it (a snapshot only shows that the fault is gone).
    public var faultId: Int?
    public init(time: Double, kind: Kind, severity: Severity = .info, message: String, requestId: Int? = nil,
                faultId: Int? = nil) {
        self.time = time
        self.kind = kind
        self.severity = severity
        self.message = message
        self.requestId = requestId
        self.faultId = faultId
    }
}
