import PodModel

/// Which routed experts each expert die of a decode TE holds, for the decode-shrink rule
/// (system.md §4: the failover must keep at least one replica of every expert).
///
/// The TE's first `ep` dies are its expert dies; the last `sharedExpertDies` of them hold
/// shared-expert copies; the others hold the routed slots. Which expert sits where comes from the
/// TE's live placement (``ExpertRouting/placement``, moved by EPLB). Without one, a static layout:
/// `⌈slots / routed dies⌉` slots per die in order, slot `s` holding expert `s mod experts`. On superpod
/// (EP320, 256 experts, 32 redundant, 32 shared) die k holds expert k for k < 256, dies
/// 256–287 hold second replicas of experts 0–31, dies 288–319 the shared expert (the static
/// round-robin placement is the same; EPLB gives the replicas to the hottest experts instead).
extension ServingEngine {
    /// Expert-die index of every expert die of every decode TE (kept up to date when an NPU is
    /// replaced).
    func buildExpertSlots() {
        for (i, instance) in instances.enumerated() where instance.role == .decode {
            guard let first = cluster.npus(of: i).first else { continue }
            let base = first * topology.diesPerNPU
            cluster.mapExpertDies(of: i, onto: base..<base + instance.groupSpec.ep)
        }
    }

    /// Routed experts of decode TE `i` left without a live replica if its known-dead dies are
    /// dropped (sorted).
    func missingExperts(instance i: Int) -> [Int] {
        guard let moe = model.moe else { return [] }
        let spec = instances[i].groupSpec
        let routedDies = spec.ep - spec.sharedExpertDies
        guard routedDies > 0 else { return [] }
        let deadIndex = cluster.deadExpertIndices(of: i, dead: faults.knownDead)
        // The live placement (EPLB moves replicas): an expert is lost when, in some layer, every
        // die holding it is dead.
        if let missing = experts.unreplicatedExperts(instance: i, deadDies: deadIndex) { return missing }
        let slots = spec.routedSlots(for: model)
        let perDie = (slots + routedDies - 1) / routedDies
        var replicas = Array(repeating: 0, count: moe.routedExperts)
        for s in 0..<slots where !deadIndex.contains(s / perDie) { replicas[s % moe.routedExperts] += 1 }
        return replicas.indices.filter { replicas[$0] == 0 }
    }

    /// Expert dies of decode TE `i` that are known dead.
    func expertDiesLost(instance i: Int) -> Int {
        cluster.expertDiesLost(of: i, dead: faults.knownDead)
    }
}
