import Foundation

/// The room the engine gives KV cache, which the fitter sizes layouts against: the share of a
/// die's HBM for weights and KV (activations and workspace take the rest; vLLM's
/// `gpu_memory_utilization` default is 0.9, our choice as well) and the tokens of one KV block.
/// `EngineConfiguration`'s defaults are these, so a fitted layout is one the engine builds.
public enum KVRoom {
    public static let memoryFraction = 0.9
    public static let blockTokens = 128
    /// New prompt tokens per NPU in one prefill batch (system.md §4: 16K tokens per NPU): a
    /// fitted prefill group has room for the KV of one such batch, as `bench prefill` checks.
    public static let prefillTokensPerNPU = 16_384
}

/// A deployment re-laid out for a catalogue model other than its own (`--model`), and what changed.
///
/// A preset's expert layout is sized for its model: the superpod's decode TE holds DeepSeek's
/// 256 routed + 32 redundant experts on 288 routed-expert dies, which Kimi K2's 384 experts do
/// not split into whole slots per die. Asking "what would Kimi K2 do on this pod" means keeping
/// the pod's shape (NPUs, TP, DP, EP) and changing only what the model decides: shared-expert
/// dies, redundant slots, and (MoE–attention) how many dies hold routed experts.
public struct ModelFit: Sendable, Equatable {
    public var deployment: Deployment
    /// One human-readable line per change, e.g.
    /// `decode group redundant_experts 32 → 192 (576 slots: 2 per die on 288 routed-expert dies)`.
    public var changes: [String]
}

extension Deployment {
    /// The deployment serving `model`, with its expert layout fitted so that it can validate.
    ///
    /// - MoE model, EP groups: no shared expert → `shared_expert_dies` 0; `redundant_experts` →
    ///   the smallest value ≥ the group's own that gives every routed-expert die whole slots
    ///   (within ``maxRedundantExperts``; if none does, the group is left for ``validate()`` to
    ///   refuse).
    /// - MoE model on a layout made for a dense one (ep 1): `ep` → the instance's dies (tp × dp).
    /// - MoE–attention: no shared expert → shared dies 0; routed-expert dies that neither divide
    ///   nor are divided by the expert count → the largest count below that does; the dies freed
    ///   stay unused; trampolines at most the expert dies.
    /// - Dense model: every group `ep` 1, no redundant or shared-expert dies. MoE–attention has
    ///   nothing to split off a dense model: refused with one line.
    ///
    /// Values out of their ranges are left as they are (``validate()`` names them). A layout
    /// that already fits is returned unchanged, so fitting twice changes nothing the second time.
    ///
    /// ```swift
    /// let fit = try Deployment.superpod.fitted(to: .kimiK2)
    /// fit.deployment.group(.decode)?.redundantExperts   // 192: 576 slots, 2 per die on 288 dies
    /// ```
    public func fitted(to model: ModelSpec) throws -> ModelFit {
        var d = self
        d.model = model.name
        var changes: [String] = []
        // A layout made for a dense model has ep 1 everywhere: an MoE model's experts are spread
        // over each instance's dies, as an inline colocated:… spec lays out an MoE model.
        let fromDense = (try? modelSpec())?.moe == nil
        let roles = Dictionary(grouping: groups.indices, by: { groups[$0].role })
        func label(_ i: Int) -> String {
            let role = groups[i].role
            let same = roles[role] ?? []
            return same.count > 1
                ? "\(role.rawValue) group \((same.firstIndex(of: i) ?? 0) + 1)" : "\(role.rawValue) group"
        }
        for i in d.groups.indices {
            let label = label(i)
            if let moe = model.moe {
                if fromDense { changes += Self.spreadExperts(&d.groups[i], model: model.name, label: label) }
                changes += Self.fitExperts(&d.groups[i], moe: moe, model: model.name, label: label)
            } else {
                changes += Self.fitDense(&d.groups[i], model: model.name, label: label)
            }
        }
        // Then the weights: a layout whose dies the model's weights fill was refused by the
        // engine as it started (Llama-3-70B's 141 GB at tp 1 on a 64 GB die; Kimi K2's 24 expert
        // slots per die on xdeepserve-ma's 16-die external prefill instances), so "what if we
        // served this model here" got advice instead of a layout. A hardware name the catalogue
        // lacks is left for validation.
        func hardware(_ g: InstanceGroup) -> HardwareProfile? {
            try? g.hardware.map(HardwareProfile.named) ?? d.hardwareProfile()
        }
        for i in d.groups.indices {
            guard let hw = hardware(d.groups[i]) else { continue }
            // Devices the other external groups of this hardware take: a grown group stays
            // within what they may use together (validation's bound). Hostile counts saturate,
            // leaving no room, and validation names them.
            let others = d.groups.indices.filter { $0 != i && d.groups[$0].external && hardware(d.groups[$0])?.name == hw.name }
                .reduce(0) { sum, j in
                    let (n, overflow) = d.groups[j].count.multipliedReportingOverflow(by: d.groups[j].npusEach)
                    return overflow || n < 0 ? hw.maxDevices : min(hw.maxDevices, sum + n)
                }
            let label = label(i)
            changes += Self.fitWeights(&d.groups[i], model: model, hardware: hw, label: label,
                                       externalDevicesLeft: hw.maxDevices - others)
        }
        if var ma = d.moeAttention {
            guard let moe = model.moe else {
                let others = Self.presetNames.filter { Self.preset($0)?.moeAttention == nil }.joined(separator: ", ")
                throw ConfigError("\(model.name) is dense: deployment '\(name.terminalSafe)' splits MoE experts from attention "
                    + "(moe_attention), which needs an MoE model; serve it on \(others), or a colocated:… spec")
            }
            changes += Self.fitMoEAttention(&ma, moe: moe, model: model.name)
            d.moeAttention = ma
        }
        return ModelFit(deployment: d, changes: changes)
    }

    /// Whether the weights each die of `g` holds leave room for at least one KV block, as the
    /// engine sizes its caches (``KVRoom``): the same sum, so a layout fitted here is one the
    /// engine builds. A prefill group needs room for one prefill batch's KV, as the engine runs
    /// it and `bench prefill` checks it (a group of `tp` dies takes tp × tokens-per-die, its KV
    /// split over the group's shards): one block started, but left Kimi K2's grown 910B prefill
    /// dies 1.8 GB where a batch needs 2.6.
    static func leavesKVRoom(_ g: InstanceGroup, model: ModelSpec, hardware hw: HardwareProfile) -> Bool {
        let shards = Double(model.kvShards(tp: g.tp))
        let room = kvRoomPerDie(g, model: model, hardware: hw)
        guard room * shards >= model.kvBytesPerToken * Double(KVRoom.blockTokens) else { return false }
        guard g.role == .prefill else { return true }
        let tokensPerDie = Double(KVRoom.prefillTokensPerNPU / max(1, hw.diesPerDevice))
        return room >= tokensPerDie * Double(g.tp) * model.kvBytesPerToken / shards
    }

    private static func weightsPerDie(_ g: InstanceGroup, model: ModelSpec) -> Double {
        model.weightBytesPerDie(tp: g.tp, routedDies: max(1, g.ep - g.sharedExpertDies),
                                routedSlots: g.routedSlots(for: model), attentionOnly: false)
    }

    private static func kvRoomPerDie(_ g: InstanceGroup, model: ModelSpec, hardware hw: HardwareProfile) -> Double {
        hw.hbmBytesPerDie * KVRoom.memoryFraction - weightsPerDie(g, model: model)
    }

    /// A group whose weights leave its dies no KV room: first the smallest larger TP that does
    /// (it must split the attention heads and the instance's dies; DP follows), as the engine's
    /// refusal advises; then, for an MoE group outside the pod whose every die holds experts,
    /// the fewest devices per instance whose expert share does (EP and DP follow, redundant
    /// slots raised to whole slots per die), within what external groups of its hardware may
    /// use together. A pod group cannot grow without moving the groups after it: it, and any
    /// group nothing fits, is left for the engine's refusal, which says how much is needed and
    /// what to change.
    private static func fitWeights(_ g: inout InstanceGroup, model: ModelSpec, hardware hw: HardwareProfile,
                                   label: String, externalDevicesLeft: Int) -> [String] {
        // Out of range: validation names the field (checked before any product or loop).
        guard (1...hw.maxDevices).contains(g.npusEach), (1...hw.maxDevices).contains(g.count) else { return [] }
        let dies = g.npusEach * hw.diesPerDevice
        guard (1...dies).contains(g.tp), (1...dies).contains(g.dp), g.tp * g.dp == dies, (1...dies).contains(g.ep),
              (0..<g.ep).contains(g.sharedExpertDies), (0...maxRedundantExperts).contains(g.redundantExperts),
              !leavesKVRoom(g, model: model, hardware: hw) else { return [] }
        func gb(_ bytes: Double) -> String { String(format: "%.1f GB", bytes / 1e9) }
        let usable = "\(gb(hw.hbmBytesPerDie * KVRoom.memoryFraction)) usable per \(hw.name) die"
        let heads = model.attention.heads
        let before = g
        for tp in stride(from: g.tp + 1, through: min(heads, dies), by: 1) where heads % tp == 0 && dies % tp == 0 {
            var t = g
            t.tp = tp
            t.dp = dies / tp
            guard leavesKVRoom(t, model: model, hardware: hw) else { continue }
            g = t
            return ["\(label) tp \(before.tp) → \(tp), dp \(before.dp) → \(t.dp) (\(model.name)'s weights take "
                + "\(gb(weightsPerDie(before, model: model))) per die at tp \(before.tp), \(gb(weightsPerDie(t, model: model))) "
                + "at tp \(tp), of \(usable))"]
        }
        guard let moe = model.moe, g.external, g.ep == dies else { return [] }
        let most = externalDevicesLeft / g.count
        guard most > g.npusEach else { return [] }
        for npus in (g.npusEach + 1)...most {
            let grown = npus * hw.diesPerDevice
            guard grown % g.tp == 0 else { continue }
            var t = g
            t.npusEach = npus
            t.dp = grown / g.tp
            t.ep = grown
            let routedDies = grown - g.sharedExpertDies
            let short = (routedDies - (moe.routedExperts + g.redundantExperts) % routedDies) % routedDies
            guard short <= maxRedundantExperts - g.redundantExperts else { continue }
            t.redundantExperts += short
            guard leavesKVRoom(t, model: model, hardware: hw) else { continue }
            g = t
            func perDie(_ x: InstanceGroup) -> String {
                let (slots, dies) = (x.routedSlots(for: model), x.ep - x.sharedExpertDies)
                // A layout the expert fit could not make whole is shown as it is, not rounded down.
                let each = slots % dies == 0 ? "\(slots / dies)" : String(format: "%.1f", Double(slots) / Double(dies))
                return "\(each) expert slots per die on \(dies) dies"
            }
            let redundant = short > 0 ? ", redundant_experts \(before.redundantExperts) → \(t.redundantExperts)" : ""
            return ["\(label) npus \(before.npusEach) → \(npus), dp \(before.dp) → \(t.dp), ep \(before.ep) → \(t.ep)\(redundant) "
                + "(\(model.name)'s \(perDie(before)) take \(gb(weightsPerDie(before, model: model))) of weights per die, "
                + "\(perDie(t)) \(gb(weightsPerDie(t, model: model))), of \(usable); "
                + "\(g.count * npus) \(hw.name) \(hw.deviceKind)s in all)"]
        }
        return []
    }

    private static func fitDense(_ g: inout InstanceGroup, model: String, label: String) -> [String] {
        var parts: [String] = []
        if g.ep != 1 { parts.append("ep \(g.ep) → 1") }
        if g.redundantExperts != 0 { parts.append("redundant_experts \(g.redundantExperts) → 0") }
        if g.sharedExpertDies != 0 { parts.append("shared_expert_dies \(g.sharedExpertDies) → 0") }
        guard !parts.isEmpty else { return [] }
        g.ep = 1
        g.redundantExperts = 0
        g.sharedExpertDies = 0
        return ["\(label) \(parts.joined(separator: ", ")) (\(model) is dense: no experts to spread)"]
    }

    private static func spreadExperts(_ g: inout InstanceGroup, model: String, label: String) -> [String] {
        let (dies, overflow) = g.tp.multipliedReportingOverflow(by: g.dp)
        guard g.ep == 1, g.tp >= 1, g.dp >= 1, !overflow, dies > 1 else { return [] }
        g.ep = dies
        return ["\(label) ep 1 → \(dies) (\(model)'s experts spread over the instance's \(dies) dies)"]
    }

    private static func fitExperts(_ g: inout InstanceGroup, moe: MoESpec, model: String, label: String) -> [String] {
        var changes: [String] = []
        if moe.sharedExperts == 0, g.sharedExpertDies > 0, g.sharedExpertDies < g.ep {
            changes.append("\(label) shared_expert_dies \(g.sharedExpertDies) → 0 (\(model) has no shared expert; "
                + "those dies hold routed experts)")
            g.sharedExpertDies = 0
        }
        // Out of range (or no die left for routed experts): validation names the field.
        guard g.sharedExpertDies >= 0, g.sharedExpertDies < g.ep,
              (0...maxRedundantExperts).contains(g.redundantExperts) else { return changes }
        let routedDies = g.ep - g.sharedExpertDies
        let short = (routedDies - (moe.routedExperts + g.redundantExperts) % routedDies) % routedDies
        guard short > 0, short <= maxRedundantExperts - g.redundantExperts else { return changes }
        let redundant = g.redundantExperts + short
        let slots = moe.routedExperts + redundant
        changes.append("\(label) redundant_experts \(g.redundantExperts) → \(redundant) (\(slots) slots: "
            + "\(slots / routedDies) per die on \(routedDies) routed-expert dies)")
        g.redundantExperts = redundant
        return changes
    }

    private static func fitMoEAttention(_ ma: inout MoEAttentionLayout, moe: MoESpec, model: String) -> [String] {
        let label = "moe_attention"
        var changes: [String] = []
        let experts = moe.routedExperts
        if moe.sharedExperts == 0, ma.sharedExpertDies > 0, ma.sharedExpertDies < ma.expertDies {
            changes.append("\(label) shared_expert_dies \(ma.sharedExpertDies) → 0 (\(model) has no shared expert; "
                + "those dies hold routed experts)")
            ma.sharedExpertDies = 0
        }
        // Out of range: validation names the field (checked before subtracting, so no overflow).
        guard ma.sharedExpertDies >= 0, ma.sharedExpertDies < ma.expertDies, experts >= 1 else { return changes }
        let routedDies = ma.expertDies - ma.sharedExpertDies
        guard routedDies % experts != 0, experts % routedDies != 0 else { return changes }
        // The most dies that still hold whole experts: a multiple of the experts (each replicated
        // alike) or a divisor of them (each die holding the same number).
        let fitted = routedDies >= experts
            ? routedDies / experts * experts
            : (1...routedDies).last { experts % $0 == 0 } ?? 1
        let expertDies = fitted + ma.sharedExpertDies
        let share = fitted >= experts ? "each expert on \(fitted / experts) dies" : "\(experts / fitted) per die"
        let shared = ma.sharedExpertDies > 0 ? "; its \(ma.sharedExpertDies) shared-expert dies kept" : ""
        changes.append("\(label) expert_dies \(ma.expertDies) → \(expertDies) (\(fitted) routed-expert dies hold \(model)'s "
            + "\(experts) experts, \(share)\(shared); the \(ma.expertDies - expertDies) dies freed stay unused, in the spare pool)")
        ma.expertDies = expertDies
        if ma.trampolineDies > expertDies {
            changes.append("\(label) trampoline_dies \(ma.trampolineDies) → \(expertDies) (at most the expert dies)")
            ma.trampolineDies = expertDies
        }
        return changes
    }
}
