extension Deployment {
    public static let presetNames = ["superpod", "cloudmatrix-infer", "xdeepserve-ma", "colocated-288"]

    public static func preset(_ name: String) -> Deployment? {
        switch name.lowercased() {
        case "superpod": return superpod
        case "cloudmatrix-infer": return cloudMatrixInfer
        case "xdeepserve-ma": return xDeepServeMA
        case "colocated-288": return colocated288
        default: return nil
        }
    }

    /// Prefill TE of system.md §4: 16 NPUs = 32 dies, attention TP4·DP8, EP32 with 10 experts per
    /// die (8 routed + 1 shared + 1 redundant: 256 + 32 redundant routed slots).
    static func prefillGroup(count: Int, firstNPU: Int) -> InstanceGroup {
        InstanceGroup(role: .prefill, count: count, npusEach: 16, firstNPU: firstNPU, tp: 4, dp: 8, ep: 32,
                      redundantExperts: 32, sharedExpertDies: 0, batchLimit: 0)
    }

    /// Decode TE of system.md §4: 160 NPUs, DP320 = EP320, one expert per die: 256 routed + 32
    /// redundant + 32 shared-expert copies. Batch limit 96 per die (the calibration point).
    static func decodeGroup(firstNPU: Int, npus: Int = 160, dies: Int = 320, sharedDies: Int = 32,
                            redundant: Int = 32) -> InstanceGroup {
        InstanceGroup(role: .decode, count: 1, npusEach: npus, firstNPU: firstNPU, tp: 1, dp: dies, ep: dies,
                      redundantExperts: redundant, sharedExpertDies: sharedDies, batchLimit: 96)
    }

    /// interfaces.md: full CloudMatrix384 — 8 prefill TEs × 16 NPUs + one decode TE of 160 NPUs,
    /// 96 NPUs spare.
    public static let superpod = Deployment(
        name: "superpod", model: "deepseek-r1", hardware: "ascend-910c", nodes: 48,
        groups: [prefillGroup(count: 8, firstNPU: 0), decodeGroup(firstNPU: 128)])

    /// interfaces.md: the CloudMatrix-Infer evaluation layout, 6 prefill TEs + one decode TE (256 NPUs).
    public static let cloudMatrixInfer = Deployment(
        name: "cloudmatrix-infer", model: "deepseek-r1", hardware: "ascend-910c", nodes: 48,
        groups: [prefillGroup(count: 6, firstNPU: 0), decodeGroup(firstNPU: 96)])

    /// interfaces.md / system.md §1.2: decode with MoE–attention disaggregation over the whole pod,
    /// 288 expert dies + 480 attention dies in 3 DP domains × 160; prefill outside the pod over
    /// RoCE. The prefill side is not sized by the papers: 8 TEs of 16 Ascend 910B (our choice).
    public static let xDeepServeMA = Deployment(
        name: "xdeepserve-ma", model: "deepseek-r1", hardware: "ascend-910c", nodes: 48,
        groups: [InstanceGroup(role: .prefill, count: 8, npusEach: 16, firstNPU: 0, tp: 4, dp: 4, ep: 16,
                               redundantExperts: 0, sharedExpertDies: 0, batchLimit: 0, external: true,
                               hardware: "ascend-910b")],
        moeAttention: MoEAttentionLayout(firstNPU: 0, expertDies: 288, sharedExpertDies: 32, attentionDomains: 3,
                                         dpPerDomain: 160, trampolineDies: 160, microbatches: 2, batchLimit: 96))

    /// interfaces.md: one colocated decode TE, DP288 + EP288 (256 routed + 32 shared copies) on 18
    /// nodes. Its prefill side is not given: 6 prefill TEs as in CloudMatrix-Infer (our choice).
    public static let colocated288 = Deployment(
        name: "colocated-288", model: "deepseek-r1", hardware: "ascend-910c", nodes: 48,
        groups: [prefillGroup(count: 6, firstNPU: 144),
                 decodeGroup(firstNPU: 0, npus: 144, dies: 288, sharedDies: 32, redundant: 0)])

    /// `colocated:N:MODEL:PROFILE:tpK` — N PD-colocated replicas, each TP K, as GPU-cluster
    /// simulators (Vidur and others) configure them.
    public static func inlineColocated(_ spec: String) throws -> Deployment {
        let parts = spec.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        let usage = "expected colocated:N:MODEL:PROFILE:tpK, e.g. colocated:2:llama-2-7b:nvidia-a100:tp1"
        guard parts.count == 5, parts[0].lowercased() == "colocated" else { throw ConfigError("bad deployment \(InputEcho.quoted(spec)): \(usage)") }
        let model = try ModelSpec.named(parts[2])
        let hw = try HardwareProfile.named(parts[3])
        // N and K are bounded by the profile's cluster before any size is multiplied, so
        // `colocated:999999999999:…` is one line, not an overflow trap or a huge allocation.
        let devices = hw.maxDevices, dies = hw.maxDevices * hw.diesPerDevice
        guard let n = Int(parts[1]), (1...devices).contains(n) else {
            throw ConfigError("bad deployment \(InputEcho.quoted(spec)): replica count N must be a whole number between 1 and \(devices) "
                + "(\(hw.name) devices in one deployment), got \(InputEcho.quoted(parts[1]))")
        }
        // `tp` in any ASCII case, as model and profile names are (`TP1` is `tp1`).
        guard parts[4].lowercased().hasPrefix("tp"), let tp = Int(parts[4].dropFirst(2)) else {
            throw ConfigError("bad deployment \(InputEcho.quoted(spec)): \(InputEcho.quoted(parts[4])) is not a TP degree like tp1; \(usage)")
        }
        guard (1...dies).contains(tp) else {
            throw ConfigError("bad deployment \(InputEcho.quoted(spec)): TP degree K must be between 1 and \(dies) "
                + "(\(hw.name) dies in one deployment), got \(tp)")
        }
        let npusEach = hw.devices(holdingDies: tp)
        guard n * npusEach <= devices else {
            throw ConfigError("bad deployment \(InputEcho.quoted(spec)): \(n) replicas × \(npusEach) \(hw.deviceKind)s = \(n * npusEach), "
                + "more than the \(devices) \(hw.name) devices one deployment may use")
        }
        let dpEach = npusEach * hw.diesPerDevice / tp
        let nodes = (n * npusEach + hw.devicesPerNode - 1) / hw.devicesPerNode
        let ep = model.isMoE ? npusEach * hw.diesPerDevice : 1
        let group = InstanceGroup(role: .colocated, count: n, npusEach: npusEach, firstNPU: 0, tp: tp, dp: dpEach,
                                  ep: ep, redundantExperts: 0, sharedExpertDies: 0, batchLimit: 128)
        // Named as written in canonical form (`COLOCATED:02:Llama-2-7B:…:TP1` is `colocated:2:llama-2-7b:…:tp1`),
        // as policy names are: reports and `--print-config` carry one spelling.
        let name = "colocated:\(n):\(model.name):\(hw.name):tp\(tp)"
        var deployment = Deployment(name: name, model: model.name, hardware: hw.name, nodes: nodes, groups: [group])
        deployment.isInlineColocatedSpec = true
        return deployment
    }

    /// A preset name, an inline `colocated:…` spec, or (by the caller) a TOML file.
    public static func resolve(_ nameOrSpec: String) throws -> Deployment {
        if let p = preset(nameOrSpec) { return p }
        if nameOrSpec.lowercased().hasPrefix("colocated:") { return try inlineColocated(nameOrSpec) }
        throw ConfigError("unknown deployment \(InputEcho.quoted(nameOrSpec)); expected one of: \(presetNames.joined(separator: ", ")), "
            + "colocated:N:MODEL:PROFILE:tpK, or a .toml file")
    }
}
