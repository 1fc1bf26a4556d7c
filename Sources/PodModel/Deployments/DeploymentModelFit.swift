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
        for i in d.groups.indices {
            let role = d.groups[i].role
            let same = roles[role] ?? []
            let label = same.count > 1
                ? "\(role.rawValue) group \((same.firstIndex(of: i) ?? 0) + 1)" : "\(role.rawValue) group"
            if let moe = model.moe {
                if fromDense { changes += Self.spreadExperts(&d.groups[i], model: model.name, label: label) }
                changes += Self.fitExperts(&d.groups[i], moe: moe, model: model.name, label: label)
            } else {
                changes += Self.fitDense(&d.groups[i], model: model.name, label: label)
            }
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
