/// Where in a deployment a refusal's value sits: a file's reader turns it into the line of the
/// key, or of the group's table when the check spans several keys. Public because the engine
/// refuses some layouts only as it builds them (weights that leave no HBM for KV): its
/// ``ConfigError`` carries the group, and the command that read the file names the line.
public enum DeploymentPlace: Equatable, Sendable {
    /// A top-level key (`nodes`, `model`), or the deployment as a whole (nil).
    case top(String?)
    /// The group at this index of ``Deployment/groups``; a key of it, or the whole table (nil).
    case group(Int, String?)
    /// A key of `[moe_attention]`, or the whole table (nil).
    case moeAttention(String?)
    case scaling(String)
}

extension Deployment {
    /// Most requests one DP group may batch: 16 × the papers' 96 per die at TP16. Larger limits
    /// mean nothing the cost model was calibrated for and only grow per-group arrays.
    public static let maxBatchLimit = 16_384
    /// Most redundant expert slots per instance: enough for one slot per die of a whole-pod
    /// EP768 over DeepSeek's 256 experts (512) with room to spare. The greedy EPLB placement
    /// grows faster than linearly in slots: 4,096 took over 20 s to place in a debug build.
    public static let maxRedundantExperts = 1_024
    /// Most micro-batches a MoE–attention decode step may be cut into.
    public static let maxMicrobatches = 64

    /// Checks that the layout can exist; throws one ``ConfigError`` naming the first problem.
    ///
    /// Every number is checked against its range *before* any arithmetic or loop uses it, so a
    /// hostile file (`nodes = 1000000000000`, `count = 9223372036854775807`) gets one line naming
    /// the field and its range instead of an overflow trap or a loop over 10^12 NPUs.
    /// The refusal comes without its place: a preset, an inline spec or a layout fitted to
    /// `--model` has no file whose line it could name.
    public func validate() throws {
        do { try check() } catch let e as ConfigError { throw ConfigError(e.description) }
    }

    /// Runs `body`, placing a ``ConfigError`` it throws (a catalogue lookup, a bound) at `place`.
    private static func at<T>(_ place: DeploymentPlace, _ body: () throws -> T) throws -> T {
        do { return try body() } catch let e as ConfigError { throw ConfigError(e.description, at: place) }
    }

    /// ``validate()`` with the place of each refusal (``ConfigError/place``), which a file's
    /// reader turns into the line of the key, or of the group's table when the check spans
    /// several keys (``placed(_:source:text:)``): the built deployment keeps no positions, the
    /// refusal keeps which field it was, as the engine's own refusals of a layout do.
    func check() throws {
        let model = try Self.at(.top("model")) { try modelSpec() }
        let hw = try Self.at(.top("hardware")) { try hardwareProfile() }
        let pod = hw.name == HardwareProfile.ascend910C.name
            ? "a CloudMatrix384 pod has \(hw.maxNodes) nodes"
            : "the most one \(hw.name) deployment may span"
        try Self.bound(nodes, "deployment '\(name)': nodes", 1...hw.maxNodes, why: pod, at: .top("nodes"))
        let topo = try Self.at(.top("hardware")) { try topology() }
        guard !groups.isEmpty || moeAttention != nil else {
            throw ConfigError("deployment '\(name)': no instances (add a [[prefill]], [[decode]] or [[colocated]] group)", at: .top(nil))
        }
        var owner = [Int: String]()
        // Devices of external groups so far, by hardware profile: each group was bounded alone,
        // so 200 groups of 1,024 external instances were taken and a 10 s run did not end.
        var externalDevices = [String: Int]()
        for (index, g) in groups.enumerated() {
            let label = "deployment '\(name)', \(g.role.rawValue) group"
            let groupHW = try Self.at(.group(index, "hardware")) { try g.hardware.map(HardwareProfile.named) ?? hw }
            try checkBounds(g, index: index, label: label, topology: topo, hardware: groupHW)
            if g.external {
                // Each term is at most maxDevices (checkBounds), so the sum cannot overflow.
                let total = externalDevices[groupHW.name, default: 0] + g.count * g.npusEach
                if total > groupHW.maxDevices {
                    throw ConfigError("\(label): external \(groupHW.name) groups would use \(total) devices in all, more than the "
                        + "\(groupHW.maxDevices) \(groupHW.name) devices external groups may use together", at: .group(index, nil))
                }
                externalDevices[groupHW.name] = total
            }
            let dies = g.npusEach * groupHW.diesPerDevice
            if g.tp * g.dp != dies {
                throw ConfigError("\(label): tp \(g.tp) × dp \(g.dp) = \(g.tp * g.dp) dies, but \(g.npusEach) NPUs have \(dies) dies",
                              at: .group(index, nil))
            }
            try Self.at(.group(index, "tp")) { try Self.checkHeadsSplit(g.tp, model: model, label: label) }
            if g.role != .prefill && g.batchLimit == 0 {
                throw ConfigError("\(label): batch_limit must be positive for a \(g.role.rawValue) group", at: .group(index, "batch_limit"))
            }
            try validateExperts(g, index: index, model: model, dies: dies, label: label)
            if g.external { continue }
            // Bounds above keep this product small (≤ NPUs in the pod squared), so it cannot trap.
            let end = g.firstNPU + g.count * g.npusEach
            if end > topo.npuCount {
                // The first instance that runs past the pod, and the NPUs it would take.
                let instance = (max(topo.npuCount, g.firstNPU) - g.firstNPU) / g.npusEach
                let first = g.firstNPU + instance * g.npusEach
                throw ConfigError("\(label): instance \(instance) would take NPUs \(first)…\(first + g.npusEach - 1), "
                    + "but the pod has NPUs 0…\(topo.npuCount - 1) (\(topo.npuCount) NPUs, \(topo.dieCount) dies); "
                    + "lower count or first_npu, or raise nodes", at: .group(index, nil))
            }
            for i in 0..<g.count {
                for npu in g.npus(ofInstance: i) {
                    if let other = owner[npu] {
                        throw ConfigError("\(label): NPU \(npu) is used twice (also by \(other))", at: .group(index, nil))
                    }
                    owner[npu] = "\(g.role.rawValue) \(i)"
                }
            }
        }
        if let ma = moeAttention {
            try validateMoEAttention(ma, model: model, topology: topo, owner: owner)
        }
        // What the spares can hold, not only the file format's 0…64: more was cut to the spares
        // the pod has without a word.
        if prewarmedSpareTEs != 0, let room = prewarmRoom(), !(0...room.most).contains(prewarmedSpareTEs) {
            throw ConfigError("deployment '\(name)': [scaling] prewarmed_spare_tes must be between 0 and \(room.most) "
                + "on this layout (\(room.reason)), got \(prewarmedSpareTEs)", at: .scaling("prewarmed_spare_tes"))
        }
    }

    /// One line naming the field, its allowed range (and why), and the value.
    static func bound(_ value: Int, _ field: String, _ range: ClosedRange<Int>, why: String? = nil) throws {
        guard !range.contains(value) else { return }
        let reason = why.map { " (\($0))" } ?? ""
        throw ConfigError("\(field) must be between \(range.lowerBound) and \(range.upperBound)\(reason), got \(value)")
    }

    /// ``bound(_:_:_:why:)``, the refusal placed at the field's key.
    static func bound(_ value: Int, _ field: String, _ range: ClosedRange<Int>, why: String? = nil,
                      at place: DeploymentPlace) throws {
        try at(place) { try bound(value, field, range, why: why) }
    }

    /// A TP degree must split the attention into whole heads: `tp 3` over Llama-2-7B's 32 heads,
    /// or `tp 64` over them, has no real layout, and the cost model would price fractions of a head.
    static func checkHeadsSplit(_ tp: Int, model: ModelSpec, label: String) throws {
        let heads = model.attention.heads
        guard heads % tp != 0 else { return }
        let choices = (1...heads).filter { heads % $0 == 0 }.map(String.init).joined(separator: ", ")
        throw ConfigError("\(label): tp \(tp) does not divide \(model.name)'s \(heads) attention heads "
            + "(each die holds whole heads); use one of \(choices)")
    }

    /// The ranges of one group's fields. An internal group must fit in the pod; an external one
    /// (outside the pod, over RoCE) in the largest cluster its hardware profile allows.
    private func checkBounds(_ g: InstanceGroup, index: Int, label: String, topology topo: PodTopology,
                             hardware groupHW: HardwareProfile) throws {
        let devices = g.external ? groupHW.maxDevices : topo.npuCount
        let place = g.external ? "\(groupHW.name) devices an external group may use" : "NPUs in the pod"
        try Self.bound(g.count, "\(label): count", 1...devices, why: place, at: .group(index, "count"))
        try Self.bound(g.npusEach, "\(label): npus", 1...devices, why: place, at: .group(index, "npus"))
        if !g.external {
            try Self.bound(g.firstNPU, "\(label): first_npu", 0...(devices - 1), why: "NPU indices of the pod",
                           at: .group(index, "first_npu"))
        }
        if g.external, g.count * g.npusEach > devices {
            throw ConfigError("\(label): count \(g.count) × npus \(g.npusEach) = \(g.count * g.npusEach) devices, "
                + "more than the \(devices) \(place)", at: .group(index, nil))
        }
        let dies = g.npusEach * groupHW.diesPerDevice
        for (field, value) in [("tp", g.tp), ("dp", g.dp), ("ep", g.ep)] {
            try Self.bound(value, "\(label): \(field)", 1...dies, why: "dies of one instance", at: .group(index, field))
        }
        try Self.bound(g.sharedExpertDies, "\(label): shared_expert_dies", 0...dies, why: "dies of one instance",
                       at: .group(index, "shared_expert_dies"))
        try Self.bound(g.redundantExperts, "\(label): redundant_experts", 0...Self.maxRedundantExperts,
                       at: .group(index, "redundant_experts"))
        try Self.bound(g.batchLimit, "\(label): batch_limit", 0...Self.maxBatchLimit, why: "requests per DP group",
                       at: .group(index, "batch_limit"))
    }

    private func validateExperts(_ g: InstanceGroup, index: Int, model: ModelSpec, dies: Int, label: String) throws {
        guard let moe = model.moe else {
            if g.ep != 1 { throw ConfigError("\(label): \(model.name) is dense; ep must be 1, got \(g.ep)", at: .group(index, "ep")) }
            // No experts to hold: a file's `redundant_experts = 5` or `shared_expert_dies = 1` on
            // a dense model was taken, printed back by --print-config and changed nothing.
            for (field, value) in [("redundant_experts", g.redundantExperts), ("shared_expert_dies", g.sharedExpertDies)]
            where value != 0 {
                throw ConfigError("\(label): \(model.name) is dense (no experts); \(field) must be 0, got \(value)", at: .group(index, field))
            }
            return
        }
        if g.sharedExpertDies >= g.ep {
            throw ConfigError("\(label): shared_expert_dies \(g.sharedExpertDies) leaves no die for routed experts (ep \(g.ep))",
                          at: .group(index, nil))
        }
        let routedDies = g.ep - g.sharedExpertDies
        let slots = moe.routedExperts + g.redundantExperts
        if slots % routedDies != 0 {
            // Name both numbers the EP degree splits into, so "ep 320" beside "288 dies" reads.
            let dies = g.sharedExpertDies > 0
                ? "\(routedDies) routed-expert dies (ep \(g.ep) − \(g.sharedExpertDies) shared-expert dies)"
                : "\(routedDies) expert dies"
            throw ConfigError("\(label): ep \(g.ep) does not divide the experts: \(moe.routedExperts) routed + "
                + "\(g.redundantExperts) redundant = \(slots) slots over \(dies)", at: .group(index, nil))
        }
    }

    private func validateMoEAttention(_ ma: MoEAttentionLayout, model: ModelSpec, topology topo: PodTopology,
                                      owner: [Int: String]) throws {
        let label = "deployment '\(name)', moe_attention"
        guard let moe = model.moe else {
            throw ConfigError("\(label): \(model.name) is dense; MoE–attention needs an MoE model", at: .moeAttention(nil))
        }
        let dies = topo.dieCount
        try Self.bound(ma.firstNPU, "\(label): first_npu", 0...(topo.npuCount - 1), why: "NPU indices of the pod",
                       at: .moeAttention("first_npu"))
        for (field, value) in [("expert_dies", ma.expertDies), ("attention_domains", ma.attentionDomains),
                               ("dp_per_domain", ma.dpPerDomain)] {
            try Self.bound(value, "\(label): \(field)", 1...dies, why: "dies in the pod", at: .moeAttention(field))
        }
        try Self.bound(ma.sharedExpertDies, "\(label): shared_expert_dies", 0...ma.expertDies, why: "expert_dies",
                       at: .moeAttention("shared_expert_dies"))
        try Self.bound(ma.trampolineDies, "\(label): trampoline_dies", 0...ma.expertDies, why: "expert_dies",
                       at: .moeAttention("trampoline_dies"))
        try Self.bound(ma.microbatches, "\(label): microbatches", 1...Self.maxMicrobatches, at: .moeAttention("microbatches"))
        try Self.bound(ma.batchLimit, "\(label): batch_limit", 1...Self.maxBatchLimit, why: "requests per DP group",
                       at: .moeAttention("batch_limit"))
        let routedDies = ma.expertDies - ma.sharedExpertDies
        guard routedDies > 0, routedDies % moe.routedExperts == 0 || moe.routedExperts % routedDies == 0 else {
            throw ConfigError("\(label): \(routedDies) routed-expert dies do not divide \(moe.routedExperts) experts", at: .moeAttention(nil))
        }
        // Each factor is at most the pod's die count, so the product cannot overflow.
        let needed = ma.expertDies + ma.attentionDies
        let firstDie = ma.firstNPU * topo.diesPerNPU
        if firstDie + needed > topo.dieCount {
            throw ConfigError("\(label): needs \(needed) dies from NPU \(ma.firstNPU), more dies than the pod has (\(topo.dieCount))",
                          at: .moeAttention(nil))
        }
        let npus = (needed + topo.diesPerNPU - 1) / topo.diesPerNPU
        for npu in ma.firstNPU..<(ma.firstNPU + npus) {
            if let other = owner[npu] {
                throw ConfigError("\(label): NPU \(npu) is used twice (also by \(other))", at: .moeAttention(nil))
            }
        }
    }
}
