import PodModel
import SimKit

extension ServingEngine {
    /// Places a request on one of the prefill TE's DP groups (its ``PrefillScheduler``: queued
    /// uncached tokens plus this request's uncached tokens, so a group that already caches the
    /// prefix is cheaper), notes the TE on the request, and starts the TE if idle. `routedProbe`:
    /// one group's prefix hit for this request as routing just found it (``JobExecutor/routedProbe(of:)``),
    /// not probed again. `holding`: the TE is out of service until a recovery ends
    /// (``requeue(_:reasonIfNowhere:)``); the request waits on any of its groups, all of which
    /// come back with it.
    func placeOnPrefillGroup(_ id: Int, instance index: Int, routedProbe: (group: Int, hits: Int)? = nil,
                             holding: Bool = false) {
        // Read in place through the request's slot (a copy of the RequestState retained and
        // released its arrays).
        guard let slot = requests.index(forKey: id) else { return }
        requests[slot: slot].prefillInstance = index
        guard let prefill = instances[index].prefill else { return }
        let (promptTokens, keys) = Self.placementView(&requests[slot: slot])
        // A prefix never placed on one of this TE's groups is not in its cache, so only the groups
        // it was placed on are probed (JobExecutor.prefixHolders); the group it goes to now is
        // noted before its blocks land there.
        let holders = keys.isEmpty ? PrefixGroups(holders: 0, base: 0, groups: 0)
            : je.prefixGroups(keys, te: index, groups: instances[index].groupCount)
        let group = prefill.place(id, slot: slot, promptTokens: promptTokens, probing: keys, in: holders, known: routedProbe,
                                  te: index, kv: kvStore, placeable: holding ? nil : cluster.placeableGroupsIfRestricted(of: index),
                                  requests: &requests)
        if !keys.isEmpty { je.notePlacement(chainedKeys: keys, te: index, group: group) }
        startStepIfIdle(index)
    }

    /// What the prefill leader reads of a request, taken in place.
    private static func placementView(_ r: inout RequestState) -> (promptTokens: Int, chainedKeys: [UInt64]) {
        (r.spec.promptTokens, r.chainedKeys)
    }

    /// New prompt tokens one DP group may put in one batch or step.
    func prefillBudget(_ instance: InstanceState) -> Int {
        if instance.role == .colocated { return configuration.colocatedChunkTokens }
        let diesPerNPU = instance.cost.hardware.diesPerDevice
        return configuration.prefillTokensPerNPU / max(1, diesPerNPU) * instance.groupSpec.tp
    }

    /// Forms the TE's chunked-prefill batch (its ``PrefillScheduler``) and returns the batch
    /// time: all DP groups of a TE meet at the MoE barrier, so the group with the most tokens
    /// sets it.
    func formPrefillBatch(_ index: Int) -> Double {
        let instance = instances[index]
        guard let prefill = instance.prefill else { return 0 }
        // Nothing queued (most steps of a colocated TE are decode only): the batch would be empty,
        // every figure below zero. Nine in ten of an Azure code replay's steps.
        guard prefill.hasQueued else {
            scaling.noteBatchFormed(groupShare: 0)
            return 0
        }
        let plan = prefill.formBatch(budget: prefillBudget(instance),
                                     seatLimit: instance.role == .colocated ? instance.groupSpec.batchLimit : nil,
                                     seats: instance.role == .colocated ? instance.decode : nil,
                                     blockTokens: configuration.kvBlockTokens, te: index,
                                     kv: kvStore, requests: &requests, now: now)
        scaling.noteBatchFormed(groupShare: Double(plan.groupsWorking) / Double(max(1, instance.groupCount)))
        // Whole token counts: one sum of the groups' adds the same as adding group by group.
        telemetry.prefillComputedTokens += plan.routedTokens
        telemetry.intervalPrefillTokens += Double(plan.routedTokens)
        let slowest = plan.slowest
        guard slowest.tokens > 0 || plan.pooledMost > 0 else { return 0 }
        let spec = instance.groupSpec
        // Pool loads happen before the batch computes; the group's dies pull in parallel.
        let poolLoad = plan.pooledMost == 0 ? 0
            : instance.cost.pointToPoint(bytes: Double(plan.pooledMost) * model.kvBytesPerToken / Double(spec.tp), plane: .ub)
        guard slowest.tokens > 0 else { return poolLoad }
        var input = PrefillBatchInput(tokensPerDie: Double(slowest.tokens) / Double(spec.tp),
                                      promptTokens: slowest.promptWeighted / Double(slowest.tokens),
                                      attentionTP: spec.tp, expertDies: spec.ep, routedSlots: spec.routedSlots(for: model))
        input.cachedPrefixTokens = slowest.hitWeighted / Double(slowest.tokens)
        input.sharedExpertDies = spec.sharedExpertDies
        // Each MoE layer's combine waits for its own hottest die, as in a decode step and as
        // `bench prefill` prices it: priced at the layers' mean load alone, a skewed batch (EPLB
        // off) came out short of the bench at the same batch.
        let load = experts.load(index, tokens: Double(plan.routedTokens))
        input.moeLoadFactor = load.factor
        if let layers = load.layers { (input.moeLoadFactorPerLayer, input.moeLoadFactorPerLayerScale) = layers }
        return poolLoad + instance.cost.prefillBatch(input).batchSeconds
    }

    /// Ends the current prefill batch: chunks are done; requests with no prompt left hand
    /// their KV to decode (prefill TE) or join the decode batch (colocated), in group order.
    func finishPrefillBatch(_ index: Int) {
        // No chunk in the batch (a decode-only step): nothing can finish.
        guard let prefill = instances[index].prefill, prefill.hasBatch else { return }
        let colocated = instances[index].role == .colocated
        for (id, g) in prefill.finishBatch(requests: &requests) {
            // Changed in place through the request's slot (no copy of the RequestState and back).
            guard let slot = requests.index(forKey: id) else { continue }
            requests[slot: slot].times.prefillEndedAt = now
            if colocated {
                requests[slot: slot].decodeInstance = index
                requests[slot: slot].decodeSeat = instances[index].decode!.seat(colocated: id, group: g)
                requests[slot: slot].stage = .decode
                instances[index].decode!.join(id)
            } else {
                // The prompt's KV is written back to the pooled tier for later turns.
                if kvStore.hasPool { kvStore.spillToPool(chained: Self.placementView(&requests[slot: slot]).chainedKeys) }
                registerTransfer(id, slot: slot)
            }
        }
    }
}
