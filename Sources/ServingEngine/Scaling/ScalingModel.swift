import PodModel
import SimKit

/// How a starting TE gets its weights (system.md §4 "Fast scaling", DeepServe). Ordered
/// fastest first in the usual case; the platform takes the fastest one available.
public enum LoadPath: String, Sendable, Equatable, Codable, CaseIterable {
    /// Weights copied from a running TE of the same model over UB (NPU-fork).
    case npuFork = "npu-fork"
    /// Warm: weights already in the host DRAM of the spare NPUs' nodes (pre-warmed spares).
    case dram
    /// From the pooled DRAM cache of the pod.
    case pool
    /// Cold: from object storage.
    case objectStore = "object-store"

    /// The slowest of `paths` (cases run fastest to slowest); nil for none. A scale operation
    /// reports the slowest path among its TEs.
    static func slowest(_ paths: some Sequence<LoadPath>) -> LoadPath? {
        paths.max { allCases.firstIndex(of: $0)! < allCases.firstIndex(of: $1)! }
    }
}

/// Where a TE is in its life: the phases of a start, service, and a scale-in.
public enum InstancePhase: String, Sendable, Equatable, Codable {
    case allocating
    case loading
    case warmingUp = "warming-up"
    case inService = "in-service"
    /// Scaled in: takes no new work, finishes what it holds, then gives its NPUs back.
    case draining
    /// Its NPUs are back in the spare pool; the TE no longer exists (kept for its index).
    case retired

    var isStarting: Bool { self == .allocating || self == .loading || self == .warmingUp }
}

/// Knobs of elastic scaling. The anchors are system.md §4's published times for the 671 GB
/// INT8 DeepSeek model: object storage ≈ 2,560 s, pooled cache ≈ 320 s, warm DRAM→NPU ≈ 5 s;
/// other models scale by their weight bytes over the same bandwidths.
///
/// ```swift
/// var config = EngineConfiguration(deployment: .superpod)
/// config.scaling.prewarmedSpareTEs = 2      // two prefill TEs' worth of spares hold weights in DRAM
/// config.scaling.autoscale = "slo"
/// ```
public struct ScalingSettings: Sendable, Equatable {
    /// Bytes of the published anchor model (DeepSeek-R1/V3 INT8).
    public static let anchorModelBytes = 671e9
    /// Object-storage read bandwidth of one TE's load: 671 GB in 2,560 s ≈ 262 MB/s.
    public var objectStoreBytesPerSecond = anchorModelBytes / 2_560
    /// Pooled DRAM cache → NPU: 671 GB in 320 s ≈ 2.1 GB/s.
    public var poolBytesPerSecond = anchorModelBytes / 320
    /// Host DRAM → NPU on pre-warmed spares: 671 GB in 5 s ≈ 134 GB/s.
    public var dramBytesPerSecond = anchorModelBytes / 5
    /// Pre-warmed spares: this many TEs' worth (of the smallest TE shape of the deployment) of
    /// spare NPUs, whole nodes first, keep the model's weights in their hosts' DRAM. 0: none
    /// (the default; DeepServe's pre-warmed pods are a platform option).
    public var prewarmedSpareTEs = 0
    /// NPU-fork from a running TE is allowed (DeepServe's default; off to compare paths).
    public var npuForkEnabled = true
    /// The model's weights are held in the pooled DRAM cache (our default: the pool exists on
    /// every pod we model, and a serving pod keeps its model there).
    public var modelInPool = true
    /// Allocating NPUs to a new TE (scheduling a pre-warmed pod). Not published; 1 s is our
    /// choice, in line with "64 instances in seconds".
    public var allocateSeconds = 1.0
    /// Warm-up after the weights are in HBM (graph capture, HCCL setup, a dummy batch). Not
    /// published; 2 s is our choice.
    public var warmUpSeconds = 2.0
    /// The autoscaler policy by name (``Policies/autoscaler``: `off` or `slo`); nil: the
    /// deployment's, else `off` (``EngineConfiguration/autoscalerName`` is what runs).
    public var autoscale: String?
    /// Parameters of the `slo` policy.
    public var slo = SLOAutoscalerParameters()

    /// Ranges of the settings that enter from outside (flags, TOML).
    public static let maxPrewarmedSpareTEs = 64

    /// Seconds to stream `bytes` of weights by `path`: the bytes over the path's bandwidth (object
    /// store, pooled cache, host DRAM). Nil for NPU-fork, whose time is the fabric's: it depends on
    /// the source and target TEs' dies (``ServingEngine`` prices it). `xds validate` reads the
    /// published anchors back through this, as a scale-up does.
    public func streamSeconds(_ path: LoadPath, bytes: Double) -> Double? {
        switch path {
        case .objectStore: bytes / objectStoreBytesPerSecond
        case .pool: bytes / poolBytesPerSecond
        case .dram: bytes / dramBytesPerSecond
        case .npuFork: nil
        }
    }

    public init() {}

    /// Why the settings cannot be used, or nil.
    public func validationProblem() -> String? {
        for (name, value) in [("object-store bandwidth", objectStoreBytesPerSecond), ("pool bandwidth", poolBytesPerSecond),
                              ("DRAM bandwidth", dramBytesPerSecond)] where !(value.isFinite && value >= 1e6 && value <= 1e13) {
            return "scaling: \(name) must be between 1 MB/s and 10 TB/s, got \(value) B/s"
        }
        guard (0...Self.maxPrewarmedSpareTEs).contains(prewarmedSpareTEs) else {
            return "scaling: prewarmed spare TEs must be between 0 and \(Self.maxPrewarmedSpareTEs), got \(prewarmedSpareTEs)"
        }
        for (name, value) in [("allocate", allocateSeconds), ("warm-up", warmUpSeconds)]
        where !(value.isFinite && value >= 0 && value <= 3_600) {
            return "scaling: \(name) time must be between 0 and 3600 s, got \(value)"
        }
        if let autoscale, Policies.autoscaler.canonicalName(autoscale) == nil {
            return "scaling: unknown autoscaler '\(autoscale)'; expected one of: \(Policies.autoscaler.names.joined(separator: ", "))"
        }
        return slo.validationProblem()
    }
}

/// One scale operation (a command or an autoscaler decision) for the report.
public struct ScaleDetail: Sendable, Equatable, Codable {
    public var role: String
    public var from: Int
    public var to: Int
    public var requestedS: Double
    /// When the last TE of the operation came into service (scale-up) or gave its NPUs back
    /// (scale-down); nil while it is still under way, and for a scale-up none of whose TEs came
    /// into service (all cancelled).
    public var readyS: Double?
    /// How the new TEs loaded their weights (the slowest path among them, kept when a TE that was
    /// loading is cancelled); nil for a scale-down and for starts cancelled before they loaded.
    public var loadPath: LoadPath?
    /// Starts of this scale-up cancelled by a later scale-down before they came into service
    /// (`to` then counts only the TEs reached or still starting); 0 for a scale-down.
    public var cancelled = 0
    /// Starts of this scale-up that lost their hardware to a fault before coming into service
    /// and found no spare NPUs to start over on (`to` then counts only the TEs reached or still
    /// starting, as for `cancelled`). Without it a scale-up whose every start was lost read
    /// `from` = `to` with nothing saying why.
    public var lost = 0

    public init(role: String, from: Int, to: Int, requestedS: Double, readyS: Double?, loadPath: LoadPath?, cancelled: Int = 0,
                lost: Int = 0) {
        self.role = role
        self.from = from
        self.to = to
        self.requestedS = requestedS
        self.readyS = readyS
        self.loadPath = loadPath
        self.cancelled = cancelled
        self.lost = lost
    }

    enum CodingKeys: String, CodingKey {
        case role, from, to, cancelled, lost
        case requestedS = "requested_s"
        case readyS = "ready_s"
        case loadPath = "load_path"
    }

    /// Always writes `ready_s` and `load_path` (null when not applicable), as interfaces.md lists
    /// them, and `cancelled` (added after them); `lost` only when a start was lost (a fault in
    /// the few seconds of a start is rare, and reports without one keep their bytes).
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(role, forKey: .role)
        try c.encode(from, forKey: .from)
        try c.encode(to, forKey: .to)
        try c.encode(requestedS, forKey: .requestedS)
        try c.encode(readyS, forKey: .readyS)
        try c.encode(loadPath, forKey: .loadPath)
        try c.encode(cancelled, forKey: .cancelled)
        if lost > 0 { try c.encode(lost, forKey: .lost) }
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        role = try c.decode(String.self, forKey: .role)
        from = try c.decode(Int.self, forKey: .from)
        to = try c.decode(Int.self, forKey: .to)
        requestedS = try c.decode(Double.self, forKey: .requestedS)
        readyS = try c.decodeIfPresent(Double.self, forKey: .readyS)
        loadPath = try c.decodeIfPresent(LoadPath.self, forKey: .loadPath)
        // A report from before `cancelled` counted none.
        cancelled = try c.decodeIfPresent(Int.self, forKey: .cancelled) ?? 0
        lost = try c.decodeIfPresent(Int.self, forKey: .lost) ?? 0
    }
}

/// The report's `scaling` section (interfaces.md additions).
public struct ScalingReport: Sendable, Equatable, Codable {
    public var scaleUps = 0
    public var scaleDowns = 0
    public var details: [ScaleDetail] = []
    public init() {}
    enum CodingKeys: String, CodingKey {
        case scaleUps = "scale_ups"
        case scaleDowns = "scale_downs"
        case details
    }
}

/// The life of one TE that was started or scaled in (TEs of the initial layout that were never
/// touched have no entry: they are in service).
struct TELifecycle: Equatable {
    var phase: InstancePhase
    /// When the current phase ends (starting phases only).
    var phaseEndsAt: SimTime?
    var loadPath: LoadPath?
    /// NPU-fork: the running TE the weights are copied from.
    var forkSource: Int?
    /// Index of the operation in ``ScalingController/details``.
    var detail: Int
}

/// Timed steps of scaling, carried by the engine's event queue.
enum ScalingTimer: Equatable {
    /// A starting TE's phase ends (stale when the TE's phase end moved).
    case phaseEnds(instance: Int)
    /// Scaled-in TEs are checked for emptiness.
    case drainCheck
    /// The autoscaler evaluates the load.
    case autoscaleTick
}
