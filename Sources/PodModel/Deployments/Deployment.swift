/// The role of a group of serving instances (task executors).
public enum InstanceRole: String, Sendable, Equatable, CaseIterable {
    /// Prefill only; hands KV caches to decode (system.md §1.1).
    case prefill
    /// Decode only; attention and experts colocated on its dies (DP = EP).
    case decode
    /// Prefill and decode share the instance (PD-colocated, chunked prefill mixed into decode).
    case colocated
}

/// A group of identical instances: `count` instances of `npusEach` NPUs from `firstNPU` on.
///
/// ```swift
/// let p = InstanceGroup(role: .prefill, count: 8, npusEach: 16, firstNPU: 0, tp: 4, dp: 8, ep: 32,
///                       redundantExperts: 32)
/// ```
public struct InstanceGroup: Sendable, Equatable {
    public var role: InstanceRole
    public var count: Int
    public var npusEach: Int
    /// First NPU of the first instance; instances are laid out back to back. Ignored when external.
    public var firstNPU: Int
    /// Attention tensor-parallel degree and data-parallel groups per instance (tp × dp = dies).
    public var tp: Int
    public var dp: Int
    /// Expert-parallel degree (dies holding experts) per instance; 1 for dense models.
    public var ep: Int
    /// Extra expert slots for replicas of hot experts (EPLB), per instance.
    public var redundantExperts: Int
    /// Dies holding only shared-expert copies (decode: 32 of EP320); 0 = a copy on every die.
    public var sharedExpertDies: Int
    /// Most requests a DP group decodes at once (continuous-batching limit).
    public var batchLimit: Int
    /// Outside the pod, reached over RoCE (system.md §2: older 910B prefill servers).
    public var external: Bool
    /// Hardware of an external group when it differs from the pod's.
    public var hardware: String?

    public init(role: InstanceRole, count: Int, npusEach: Int, firstNPU: Int, tp: Int, dp: Int, ep: Int,
                redundantExperts: Int = 0, sharedExpertDies: Int = 0, batchLimit: Int = 96,
                external: Bool = false, hardware: String? = nil) {
        self.role = role
        self.count = count
        self.npusEach = npusEach
        self.firstNPU = firstNPU
        self.tp = tp
        self.dp = dp
        self.ep = ep
        self.redundantExperts = redundantExperts
        self.sharedExpertDies = sharedExpertDies
        self.batchLimit = batchLimit
        self.external = external
        self.hardware = hardware
    }

    /// NPUs of instance `index` of this group (empty when external).
    public func npus(ofInstance index: Int) -> Range<Int> {
        external ? 0..<0 : (firstNPU + index * npusEach)..<(firstNPU + (index + 1) * npusEach)
    }
    /// Routed-expert slots per instance: every expert once plus the redundant replicas.
    public func routedSlots(for model: ModelSpec) -> Int { (model.moe?.routedExperts ?? 0) + redundantExperts }
}

/// MoE–attention disaggregation for decode (system.md §1.2): expert dies and attention dies in
/// DP domains that take turns talking to the experts.
public struct MoEAttentionLayout: Sendable, Equatable {
    public var firstNPU: Int
    public var expertDies: Int
    public var sharedExpertDies: Int
    public var attentionDomains: Int
    public var dpPerDomain: Int
    public var trampolineDies: Int
    public var microbatches: Int
    public var batchLimit: Int
    public var attentionDies: Int { attentionDomains * dpPerDomain }
    public init(firstNPU: Int, expertDies: Int, sharedExpertDies: Int, attentionDomains: Int, dpPerDomain: Int,
                trampolineDies: Int, microbatches: Int, batchLimit: Int) {
        self.firstNPU = firstNPU
        self.expertDies = expertDies
        self.sharedExpertDies = sharedExpertDies
        self.attentionDomains = attentionDomains
        self.dpPerDomain = dpPerDomain
        self.trampolineDies = trampolineDies
        self.microbatches = microbatches
        self.batchLimit = batchLimit
    }
}

/// Which model runs on which hardware, laid out how: a preset, a TOML file, or inline.
///
/// ```swift
/// let d = try Deployment.resolve("superpod")            // a preset
/// let g = try Deployment.resolve("colocated:4:llama-2-7b:nvidia-a100:tp1")
/// try d.validate()
/// ```
public struct Deployment: Sendable, Equatable {
    public var name: String
    public var model: String
    public var hardware: String
    public var nodes: Int
    public var groups: [InstanceGroup]
    public var moeAttention: MoEAttentionLayout?
    /// Policies named by the deployment file's `[policies]` table (names only; see ``PolicyNames``).
    public var policies = PolicyNames()
    /// Elastic scaling (TOML `[scaling]`): the autoscaler policy by name (nil: `off` unless a
    /// flag says otherwise) and how many TEs' worth of spare NPUs keep the weights in host DRAM.
    public var autoscale: String?
    public var prewarmedSpareTEs = 0
    /// Written as an inline `colocated:N:MODEL:PROFILE:tpK` spec: its only sizing knob is `tpK`
    /// (npus, dp and ep follow from it), so advice on a refused layout names that, not TOML fields.
    public var isInlineColocatedSpec = false
    /// Most pre-warmed TEs a deployment may ask for.
    public static let maxPrewarmedSpareTEs = 64

    public init(name: String, model: String, hardware: String, nodes: Int, groups: [InstanceGroup],
                moeAttention: MoEAttentionLayout? = nil) {
        self.name = name
        self.model = model
        self.hardware = hardware
        self.nodes = nodes
        self.groups = groups
        self.moeAttention = moeAttention
    }

    public func modelSpec() throws -> ModelSpec { try ModelSpec.named(model) }
    public func hardwareProfile() throws -> HardwareProfile { try HardwareProfile.named(hardware) }
    public func topology() throws -> PodTopology {
        let hw = try hardwareProfile()
        return PodTopology(nodes: nodes, npusPerNode: hw.devicesPerNode, diesPerNPU: hw.diesPerDevice)
    }

    /// The first group of a role, if any.
    public func group(_ role: InstanceRole) -> InstanceGroup? { groups.first { $0.role == role } }

    /// NPUs in use inside the pod, in order; the rest of the pod is the spare pool.
    public func usedNPUs() -> [Int] {
        var used: [Int] = []
        for g in groups where !g.external {
            for i in 0..<g.count { used.append(contentsOf: g.npus(ofInstance: i)) }
        }
        if let ma = moeAttention, let topo = try? topology() {
            let dies = ma.expertDies + ma.attentionDies
            let npus = (dies + topo.diesPerNPU - 1) / topo.diesPerNPU
            used.append(contentsOf: ma.firstNPU..<(ma.firstNPU + npus))
        }
        return used
    }

    /// How many pre-warmed spare TEs the pod can hold, and why: its spare NPUs (those
    /// ``usedNPUs()`` leaves) over the NPUs of its smallest TE that runs in the pod (the shape a
    /// scale-up starts; the engine marks `prewarmed_spare_tes` × that many spares), rounded down.
    /// A value above ``most`` used to be cut to what the spares hold without a word.
    public struct PrewarmRoom: Sendable, Equatable {
        public var most: Int
        public var spareNPUs: Int
        /// NPUs of the smallest in-pod TE; nil when no TE runs in the pod (nothing to scale).
        public var npusPerTE: Int?

        public init(most: Int, spareNPUs: Int, npusPerTE: Int?) {
            self.most = most
            self.spareNPUs = spareNPUs
            self.npusPerTE = npusPerTE
        }

        /// What bounds ``most``, for messages: `96 spare NPUs, 16 per TE of its smallest shape`.
        public var reason: String {
            guard let npusPerTE else { return "none of its TEs is one that scales onto spare NPUs inside the pod" }
            let spares = spareNPUs == 0 ? "no spare NPUs" : spareNPUs == 1 ? "1 spare NPU" : "\(spareNPUs) spare NPUs"
            return "\(spares), \(npusPerTE) per TE of its smallest shape"
        }
    }

    /// The pre-warm room of this layout (see ``PrewarmRoom``); nil when the hardware is unknown.
    public func prewarmRoom() -> PrewarmRoom? {
        guard let topo = try? topology() else { return nil }
        let spare = max(0, topo.npuCount - Set(usedNPUs().filter { $0 < topo.npuCount }).count)
        let smallest = groups.filter { !$0.external }.map(\.npusEach).min().flatMap { $0 > 0 ? $0 : nil }
        return PrewarmRoom(most: smallest.map { spare / $0 } ?? 0, spareNPUs: spare, npusPerTE: smallest)
    }
}
