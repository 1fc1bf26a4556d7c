extension Deployment {
    /// Checks that the layout can exist; throws one ``ConfigError`` naming the first problem.
    public func validate() throws {
        let model = try modelSpec()
        let hw = try hardwareProfile()
        guard nodes > 0 else { throw ConfigError("deployment '\(name)': nodes must be positive, got \(nodes)") }
        let topo = try topology()
        if hw.name == HardwareProfile.ascend910C.name, nodes > PodTopology.cloudMatrix384.nodes {
            throw ConfigError("deployment '\(name)': \(nodes) nodes, but a CloudMatrix384 pod has 48")
        }
        guard !groups.isEmpty || moeAttention != nil else {
            throw ConfigError("deployment '\(name)': no instances (add a [[prefill]], [[decode]] or [[colocated]] group)")
        }
        var owner = [Int: String]()
        for g in groups {
            let label = "deployment '\(name)', \(g.role.rawValue) group"
            for (field, value) in [("count", g.count), ("npus", g.npusEach), ("tp", g.tp), ("dp", g.dp), ("ep", g.ep)]
            where value <= 0 {
                throw ConfigError("\(label): \(field) must be positive, got \(value)")
            }
            if g.redundantExperts < 0 || g.sharedExpertDies < 0 || g.batchLimit < 0 || g.firstNPU < 0 {
                throw ConfigError("\(label): first_npu, redundant_experts, shared_expert_dies and batch_limit must not be negative")
            }
            let groupHW = try g.hardware.map(HardwareProfile.named) ?? hw
            let dies = g.npusEach * groupHW.diesPerDevice
            if g.tp * g.dp != dies {
                throw ConfigError("\(label): tp \(g.tp) × dp \(g.dp) = \(g.tp * g.dp) dies, but \(g.npusEach) NPUs have \(dies) dies")
            }
            if g.role != .prefill && g.batchLimit == 0 {
                throw ConfigError("\(label): batch_limit must be positive for a \(g.role.rawValue) group")
            }
            try validateExperts(g, model: model, dies: dies, label: label)
            if g.external { continue }
            for i in 0..<g.count {
                for npu in g.npus(ofInstance: i) {
                    guard npu < topo.npuCount else {
                        throw ConfigError("\(label): instance \(i) needs NPU \(npu), but the pod has \(topo.npuCount) NPUs (\(topo.dieCount) dies)")
                    }
                    if let other = owner[npu] {
                        throw ConfigError("\(label): NPU \(npu) is used twice (also by \(other))")
                    }
                    owner[npu] = "\(g.role.rawValue) \(i)"
                }
            }
        }
        if let ma = moeAttention {
            try validateMoEAttention(ma, model: model, topology: topo, owner: owner)
        }
    }

    private func validateExperts(_ g: InstanceGroup, model: ModelSpec, dies: Int, label: String) throws {
        guard let moe = model.moe else {
            if g.ep != 1 { throw ConfigError("\(label): \(model.name) is dense; ep must be 1, got \(g.ep)") }
            return
        }
        if g.ep > dies { throw ConfigError("\(label): ep \(g.ep) is more than the instance's \(dies) dies") }
        if g.sharedExpertDies >= g.ep {
            throw ConfigError("\(label): shared_expert_dies \(g.sharedExpertDies) leaves no die for routed experts (ep \(g.ep))")
        }
        let routedDies = g.ep - g.sharedExpertDies
        let slots = moe.routedExperts + g.redundantExperts
        if slots % routedDies != 0 {
            throw ConfigError("\(label): ep \(g.ep) does not divide the experts: \(moe.routedExperts) routed + "
                + "\(g.redundantExperts) redundant = \(slots) slots over \(routedDies) expert dies")
        }
    }

    private func validateMoEAttention(_ ma: MoEAttentionLayout, model: ModelSpec, topology topo: PodTopology,
                                      owner: [Int: String]) throws {
        let label = "deployment '\(name)', moe_attention"
        guard let moe = model.moe else { throw ConfigError("\(label): \(model.name) is dense; MoE–attention needs an MoE model") }
        for (field, value) in [("expert_dies", ma.expertDies), ("attention_domains", ma.attentionDomains),
                               ("dp_per_domain", ma.dpPerDomain), ("microbatches", ma.microbatches),
                               ("batch_limit", ma.batchLimit)] where value <= 0 {
            throw ConfigError("\(label): \(field) must be positive, got \(value)")
        }
        let routedDies = ma.expertDies - ma.sharedExpertDies
        guard routedDies > 0, routedDies % moe.routedExperts == 0 || moe.routedExperts % routedDies == 0 else {
            throw ConfigError("\(label): \(routedDies) routed-expert dies do not divide \(moe.routedExperts) experts")
        }
        let dies = ma.expertDies + ma.attentionDies
        let firstDie = ma.firstNPU * topo.diesPerNPU
        if firstDie + dies > topo.dieCount {
            throw ConfigError("\(label): needs \(dies) dies from NPU \(ma.firstNPU), more dies than the pod has (\(topo.dieCount))")
        }
        if ma.trampolineDies > ma.expertDies {
            throw ConfigError("\(label): trampoline_dies \(ma.trampolineDies) exceeds expert_dies \(ma.expertDies)")
        }
        let npus = (dies + topo.diesPerNPU - 1) / topo.diesPerNPU
        for npu in ma.firstNPU..<(ma.firstNPU + npus) {
            if let other = owner[npu] { throw ConfigError("\(label): NPU \(npu) is used twice (also by \(other))") }
        }
    }
}
