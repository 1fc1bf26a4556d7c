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
        // The next ordinal per role (prefill, decode, colocated): three counters, not a dictionary
        // by role, whose first insertion cost the Swift runtime a scan of every protocol
        // conformance in the binary (issue 12: ~530 k instructions every engine start).
        var perRole = [0, 0, 0]
        func roleIndex(_ role: InstanceRole) -> Int {
            switch role {
            case .prefill: 0
            case .decode: 1
            case .colocated: 2
            }
        }
        for (groupIndex, group) in deployment.groups.enumerated() {
            let hw = try group.hardware.map { try HardwareProfile.named($0) } ?? hardware
            for index in 0..<group.count {
                let ordinal = perRole[roleIndex(group.role)]
                perRole[roleIndex(group.role)] = ordinal + 1
                let npus = Array(group.npus(ofInstance: index))
                // A refusal of the group's layout (weights that leave no HBM for KV) says which
                // group: the command that read a deployment file names its line (the engine has
                // no file).
                try Self.placing(.group(groupIndex, nil)) {
                    try addInstance(role: group.role, name: "\(group.role.rawValue)-\(ordinal)", spec: group, hardware: hw,
                                    npus: npus, firstDie: 0)
                }
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
            let ordinal = perRole[roleIndex(.decode)]
            perRole[roleIndex(.decode)] = ordinal + 1
            // Expert dies first, then attention dies (our layout choice).
            try Self.placing(.moeAttention(nil)) {
                try addInstance(role: .decode, name: "decode-\(ordinal)", spec: spec, hardware: hardware,
                                npus: Array(ma.firstNPU..<(ma.firstNPU + npuCount)), firstDie: ma.expertDies,
                                attentionOnly: true)
            }
        }
        for p in instances.indices where instances[p].role == .prefill {
            for d in instances.indices where instances[d].role == .decode {
                kvTransfer.connect(prefill: p, decode: d, plane: instances[p].plane)
            }
        }
    }

    /// Runs `body`, giving a ``ConfigError`` it throws that says no place of its own `place`.
    static func placing(_ place: DeploymentPlace, _ body: () throws -> Void) throws {
        do { try body() } catch var refusal as ConfigError where refusal.place == nil {
            refusal.place = place
            throw refusal
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
        layoutChanged()
    }

    /// KV blocks of one DP group: its dies' HBM share for KV minus the weights each die holds
    /// (attention and dense weights split over TP, routed experts spread over the expert dies).
    func kvBlocksPerGroup(_ spec: InstanceGroup, hardware hw: HardwareProfile, attentionOnly: Bool) throws -> Int {
        let perDieWeights = weightBytesPerDie(tp: spec.tp, routedDies: max(1, spec.ep - spec.sharedExpertDies),
                                              slots: spec.routedSlots(for: model), attentionOnly: attentionOnly)
        let kvBytesPerDie = hw.hbmBytesPerDie * configuration.kvMemoryFraction - perDieWeights
        let blockBytes = model.kvBytesPerToken * Double(configuration.kvBlockTokens)
        // The group's tp dies hold a request's KV once per shard: split over its KV heads, whole
        // on every die for MLA (counting tp shards gave MLA TP groups tp× the KV they have).
        let blocks = Int(saturating: kvBytesPerDie * Double(model.kvShards(tp: spec.tp)) / blockBytes)
        guard blocks > 0 else {
            throw ConfigError(noKVProblem(spec, hardware: hw, attentionOnly: attentionOnly, weightsPerDie: perDieWeights))
        }
        return blocks
    }

    /// Weight bytes on one die: the non-expert weights split over `tp`, plus (unless the die only
    /// attends) its share of the `slots` routed-expert copies spread over `routedDies`.
    private func weightBytesPerDie(tp: Int, routedDies: Int, slots: Int, attentionOnly: Bool) -> Double {
        model.weightBytesPerDie(tp: tp, routedDies: routedDies, routedSlots: slots, attentionOnly: attentionOnly)
    }

    /// What ``noKVProblem(_:hardware:attentionOnly:weightsPerDie:)`` says after the model's name
    /// (``noKVRoomRefusal(for:)`` tells it from the engine's other refusals by it).
    static let noKVRoomWording = " weights leave no HBM for KV cache "

    /// The engine's refusal of `deployment` when its weights leave no HBM for KV (`xds run`'s
    /// line, which says what to change: the tpK of an inline spec, the fields of a file), or nil
    /// when the engine builds it or refuses it for another reason. `bench` and `validate --sweep`
    /// give it in place of their own line, which named only the batch, as if a smaller one could
    /// fit. The engine refuses such a layout as it builds its first instance: cheap.
    public static func noKVRoomRefusal(for deployment: Deployment) -> ConfigError? {
        do { _ = try ServingEngine(configuration: EngineConfiguration(deployment: deployment)) } catch let refusal as ConfigError
            where refusal.description.contains(noKVRoomWording) {
            return refusal
        } catch {}
        return nil
    }

    /// One line for weights that leave no KV cache: how much each die holds against what it
    /// has, and what to change: the smallest TP that fits (it must divide the attention heads
    /// and the instance's dies), or for experts the fewest routed-expert dies that would.
    /// `--model` on a preset meets this (a 70B dense model on one 64 GB die at TP1).
    private func noKVProblem(_ spec: InstanceGroup, hardware hw: HardwareProfile, attentionOnly: Bool,
                             weightsPerDie: Double) -> String {
        let usable = hw.hbmBytesPerDie * configuration.kvMemoryFraction
        let blockBytes = model.kvBytesPerToken * Double(configuration.kvBlockTokens)
        let routedDies = max(1, spec.ep - spec.sharedExpertDies)
        let slots = spec.routedSlots(for: model)
        func gb(_ bytes: Double) -> String { String(format: "%.1f GB", bytes / 1e9) }
        func fits(tp: Int, routedDies: Int) -> Bool {
            (usable - weightBytesPerDie(tp: tp, routedDies: routedDies, slots: slots, attentionOnly: attentionOnly))
                * Double(tp) >= blockBytes
        }
        let place = "\(spec.role.rawValue) group\(spec.external ? " (external)" : "")"
        var held = "tp \(spec.tp)"
        if model.isMoE && !attentionOnly {
            let perDie = slots % routedDies == 0 ? "\(slots / routedDies)" : String(format: "%.1f", Double(slots) / Double(routedDies))
            held += ", \(perDie) expert slots per die on \(routedDies) routed-expert \(routedDies == 1 ? "die" : "dies")"
        }
        let head = "\(model.name)\(Self.noKVRoomWording)on the \(place): \(gb(weightsPerDie)) of weights per "
            + "\(hw.name) die (\(held)), \(gb(usable)) usable per die"
        let heads = model.attention.heads
        if configuration.deployment.isInlineColocatedSpec {
            return head + "; " + colocatedSpecAdvice(spec, hardware: hw, fits: fits)
        }
        let dies = spec.npusEach * hw.diesPerDevice
        let larger = stride(from: spec.tp + 1, through: min(heads, dies), by: 1)
            .filter { heads % $0 == 0 && dies % $0 == 0 }
        if let tp = larger.first(where: { fits(tp: $0, routedDies: routedDies) }) {
            return head + "; use tp \(tp) (dp \(dies / tp)) or more"
        }
        if model.isMoE && !attentionOnly {
            // Expert dies beyond the instance's would need more NPUs per instance.
            let needed = (routedDies + 1...max(routedDies + 1, slots)).first { fits(tp: spec.tp, routedDies: $0) }
            if let needed {
                let need = head + "; its \(slots) expert slots need at least \(needed) routed-expert dies per instance"
                return need + (externalOverflow(spec, hardware: hw, routedDies: needed)
                    ?? ": give each instance more NPUs (npus, dp, ep)")
            }
        }
        return head + "; give each instance more NPUs (npus, dp\(model.isMoE ? ", ep" : "")) or use a smaller model"
    }

    /// For an external group whose instances, grown to `routedDies` routed-expert dies each,
    /// would take more devices than external groups of its hardware may use together (the
    /// fitter's and validation's bound): the rest of the refusal, saying so and what to change.
    /// "Give each instance more NPUs" alone sent the user to a layout validation refuses next
    /// (`--model kimi-k2` on xdeepserve-ma with 60 external prefill instances). Nil otherwise.
    private func externalOverflow(_ spec: InstanceGroup, hardware hw: HardwareProfile, routedDies: Int) -> String? {
        guard spec.external else { return nil }
        let devicesEach = hw.devices(holdingDies: routedDies + spec.sharedExpertDies)
        // This group's own devices are among the external ones counted; each term is bounded by
        // validation, so the sums cannot overflow.
        let external = configuration.deployment.groups
            .filter { $0.external && ((try? $0.hardware.map(HardwareProfile.named)) ?? hardware).name == hw.name }
            .reduce(0) { $0 + $1.count * $1.npusEach }
        let others = external - spec.count * spec.npusEach
        let grown = others + spec.count * devicesEach
        guard grown > hw.maxDevices else { return nil }
        let most = (hw.maxDevices - others) / devicesEach
        let kind = "\(hw.name) \(hw.deviceKind)"
        return ", \(devicesEach) \(kind)s: \(spec.count) such instances would take external \(kind) groups to \(grown) "
            + "devices, more than the \(hw.maxDevices) they may use together; "
            + (most >= 1 ? "use at most \(most) instances (count) with more NPUs each (npus, dp, ep), or a smaller model"
                         : "use a smaller model")
    }

    /// What to type for a refused inline `colocated:N:MODEL:PROFILE:tpK` spec: there `tpK` sizes
    /// each replica (its NPUs, DP and EP follow), so the advice is the smallest `tpK` whose layout
    /// is valid and leaves KV room, the spec written out; "give each instance more NPUs (npus,
    /// dp…)" named TOML fields such a user never wrote.
    private func colocatedSpecAdvice(_ spec: InstanceGroup, hardware hw: HardwareProfile,
                                     fits: (_ tp: Int, _ routedDies: Int) -> Bool) -> String {
        let heads = model.attention.heads
        let slots = spec.routedSlots(for: model)
        let ceiling = min(heads, hw.maxDevices * hw.diesPerDevice)
        // As inlineColocated lays a replica out: whole devices, DP = dies / TP, EP = dies.
        let valid = stride(from: spec.tp + 1, through: ceiling, by: 1).first { tp in
            let dies = hw.devices(holdingDies: tp) * hw.diesPerDevice
            guard heads % tp == 0, dies % tp == 0, !model.isMoE || slots % dies == 0 else { return false }
            return fits(tp, model.isMoE ? dies : 1)
        }
        guard let tp = valid else {
            return "no tpK up to tp\(ceiling) leaves room for KV on \(hw.name): use a smaller model"
        }
        let devicesEach = hw.devices(holdingDies: tp)
        let replicas = min(spec.count, hw.maxDevices / devicesEach)
        let fewer = replicas < spec.count
            ? " (\(replicas) replicas: \(devicesEach) \(hw.deviceKind)s each, at most \(hw.maxDevices) in one deployment)" : ""
        return "raise tpK in the spec to tp\(tp) or more, e.g. colocated:\(replicas):\(model.name):\(hw.name):tp\(tp)\(fewer)"
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
