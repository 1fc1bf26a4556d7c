import PodModel
import SimKit

extension ServingEngine {
    /// Builds one ``InstanceState`` per TE of the deployment, with a KV block manager per DP
    /// group sized from the HBM left after weights, and one transfer channel per prefill–decode
    /// pair.
    ///
    /// `xdeepserve-ma` (MoE–attention disaggregation) is treated, for now, as one decode TE whose
    /// DP groups are the 480 attention dies and whose experts are the 288 expert dies; the three
    /// DP domains taking turns are not modelled yet.
    func buildInstances() throws {
        let deployment = configuration.deployment
        var perRole: [InstanceRole: Int] = [:]
        for group in deployment.groups {
            let hw = try group.hardware.map { try HardwareProfile.named($0) } ?? hardware
            for index in 0..<group.count {
                let ordinal = perRole[group.role, default: 0]
                perRole[group.role] = ordinal + 1
                let npus = Array(group.npus(ofInstance: index))
                try addInstance(role: group.role, name: "\(group.role.rawValue)-\(ordinal)", spec: group, hardware: hw,
                                npus: npus, firstDie: 0)
            }
        }
        if let ma = deployment.moeAttention {
            let dies = ma.expertDies + ma.attentionDies
            let npuCount = (dies + topology.diesPerNPU - 1) / topology.diesPerNPU
            let routed = model.moe?.routedExperts ?? 0
            let spec = InstanceGroup(role: .decode, count: 1, npusEach: npuCount, firstNPU: ma.firstNPU, tp: 1,
                                     dp: ma.attentionDies, ep: ma.expertDies,
                                     redundantExperts: max(0, ma.expertDies - ma.sharedExpertDies - routed),
                                     sharedExpertDies: ma.sharedExpertDies, batchLimit: ma.batchLimit)
            let ordinal = perRole[.decode, default: 0]
            perRole[.decode] = ordinal + 1
            // Expert dies first, then attention dies (our layout choice).
            try addInstance(role: .decode, name: "decode-\(ordinal)", spec: spec, hardware: hardware,
                            npus: Array(ma.firstNPU..<(ma.firstNPU + npuCount)), firstDie: ma.expertDies,
                            attentionOnly: true)
        }
        for p in instances.indices where instances[p].role == .prefill {
            for d in instances.indices where instances[d].role == .decode {
                kvTransfer.connect(prefill: p, decode: d, plane: instances[p].plane)
            }
        }
    }

    func addInstance(role: InstanceRole, name: String, spec: InstanceGroup, hardware hw: HardwareProfile,
                             npus: [Int], firstDie: Int, attentionOnly: Bool = false) throws {
        let blocks = try kvBlocksPerGroup(spec, hardware: hw, attentionOnly: attentionOnly)
        // The TE's number in the hardware map and the KV store is its index in `instances`.
        guard let te = kvStore.addTE(groups: spec.dp, blocksEach: blocks) else {
            throw ConfigError("deployment '\(configuration.deployment.name)': its KV caches would need "
                + "\(kvStore.blocksBuilt) blocks of \(configuration.kvBlockTokens) tokens (at \(name)); the engine holds at most "
                + "\(Self.maxKVBlocks) — use larger blocks or a smaller layout")
        }
        precondition(te == instances.count, "the KV store's TEs follow the engine's")
        cluster.layOutTE(npus: npus, groups: spec.dp, tp: spec.tp, firstDie: firstDie, hardwareDiesPerNPU: hw.diesPerDevice)
        instances.append(InstanceState(role: role, name: name, groupSpec: spec, external: spec.external,
                                       cost: CostModel(model: model, hardware: hw), groups: spec.dp))
    }

    /// KV blocks of one DP group: its dies' HBM share for KV minus the weights each die holds
    /// (attention and dense weights split over TP, routed experts spread over the expert dies).
    func kvBlocksPerGroup(_ spec: InstanceGroup, hardware hw: HardwareProfile, attentionOnly: Bool) throws -> Int {
        var perDieWeights = model.weightBytes / Double(spec.tp)
        if let moe = model.moe {
            let expertBytes = Double((model.moeLayers + model.mtpModules) * moe.routedExperts) * model.expertParameters
                * model.weightType.bytes
            let nonExpert = model.weightBytes - expertBytes
            let routedDies = max(1, spec.ep - spec.sharedExpertDies)
            let slotsPerDie = Double(spec.routedSlots(for: model)) / Double(routedDies)
            perDieWeights = nonExpert / Double(spec.tp)
                + (attentionOnly ? 0 : expertBytes / Double(moe.routedExperts) * slotsPerDie)
        }
        let kvBytesPerDie = hw.hbmBytesPerDie * configuration.kvMemoryFraction - perDieWeights
        let blockBytes = model.kvBytesPerToken * Double(configuration.kvBlockTokens)
        let blocks = Int(saturating: kvBytesPerDie * Double(spec.tp) / blockBytes)
        guard blocks > 0 else {
            throw ConfigError("\(model.name) weights leave no HBM for KV cache on a \(spec.role.rawValue) DP group of "
                + "\(spec.tp) \(hw.name) dies (EP\(spec.ep)); use more dies")
        }
        return blocks
    }

    /// Role of every NPU of the pod and the instance it belongs to (-1: spare).
    func npuLayout() -> (roles: [NPURole], instance: [Int]) {
        var roles = Array(repeating: NPURole.spare, count: topology.npuCount)
        var owner = Array(repeating: -1, count: topology.npuCount)
        for (index, instance) in instances.enumerated() {
            for npu in cluster.npus(of: index) where npu < roles.count {
                owner[npu] = index
                switch instance.role {
                case .prefill: roles[npu] = .prefill
                case .colocated: roles[npu] = .colocated
                case .decode: roles[npu] = .decode
                }
            }
        }
        if let ma = configuration.deployment.moeAttention {
            let expertNPUs = (ma.expertDies + topology.diesPerNPU - 1) / topology.diesPerNPU
            for npu in ma.firstNPU..<min(roles.count, ma.firstNPU + expertNPUs) { roles[npu] = .expert }
            for npu in (ma.firstNPU + expertNPUs)..<roles.count where owner[npu] >= 0 { roles[npu] = .attention }
        }
        return (roles, owner)
    }
}
