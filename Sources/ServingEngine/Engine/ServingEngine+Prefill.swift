import PodModel
import SimKit

extension ServingEngine {
    /// The prefill TE's leader (system.md §4): it sees every DP group's queue and places the
    /// request where its estimated cost is lowest — queued uncached tokens plus this request's
    /// uncached tokens, so a group that already caches the prefix is cheaper.
    func placeOnPrefillGroup(_ id: Int, instance index: Int) {
        // Read and changed in place through the request's slot (a copy of the RequestState and
        // back retained and released its arrays and re-hashed its id).
        guard let slot = requests.index(forKey: id) else { return }
        let (promptTokens, keys) = Self.placementView(&requests.values[slot])
        // Noted before its blocks land here; a prefix never placed on this TE is in none of its
        // groups, so they are not probed (JobExecutor.prefixHolders).
        let chainedKeys = keys.isEmpty || je.notePlacement(chainedKeys: keys, te: index) ? keys : []
        var best = -1
        var bestCost = Int.max
        var bestEstimate = 0
        // Read through the groups' buffer (no copy of a group's block manager per probe).
        instances[index].dp.withUnsafeBufferPointer { groups in
            for g in groups.indices where !groups[g].drained {
                let hits = chainedKeys.isEmpty ? 0
                    : groups[g].kv.cachedPrefixTokens(promptTokens: promptTokens, chainedHashes: chainedKeys)
                let uncached = promptTokens - hits
                let cost = Saturating.add(groups[g].queuedTokens, uncached)
                if cost < bestCost {
                    best = g
                    bestCost = cost
                    bestEstimate = uncached
                }
            }
        }
        precondition(best >= 0, "the JE only picks TEs with an undrained DP group")
        requests.values[slot].prefillGroup = best
        requests.values[slot].remainingPrefill = bestEstimate
        instances[index].dp[best].prefillQueue.append(id)
        instances[index].dp[best].queuedTokens += bestEstimate
        instances[index].waiting += 1
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

    /// Fills each DP group's chunked-prefill batch from the front of its queue (first come,
    /// first served; a request that does not fit its KV blocks yet blocks the ones behind it)
    /// and returns the batch time: all DP groups of a TE meet at the MoE barrier, so the group
    /// with the most tokens sets it.
    func formPrefillBatch(_ index: Int) -> Double {
        let budget = prefillBudget(instances[index])
        let colocated = instances[index].role == .colocated
        let batchLimit = instances[index].groupSpec.batchLimit
        var slowest = BatchLoad()
        var pooledMost = 0
        var routedTokens = 0
        var groupsWorking = 0
        defer { scaling.batchGroupShare = Double(groupsWorking) / Double(max(1, instances[index].dp.count)) }
        for g in instances[index].dp.indices {
            // In place: copying a group would copy its block tables.
            let load = fillPrefillBatch(&instances[index].dp[g], budget: budget, colocated: colocated,
                                        batchLimit: batchLimit, seats: instances[index].decode, seatGroup: g)
            instances[index].waiting -= load.started
            if load.tokens > 0 || load.pooledTokens > 0 { groupsWorking += 1 }
            if load.tokens > slowest.tokens { slowest = load }
            pooledMost = max(pooledMost, load.pooledTokens)
            routedTokens += load.tokens
            telemetry.prefillComputedTokens += load.tokens
            telemetry.intervalPrefillTokens += Double(load.tokens)
        }
        guard slowest.tokens > 0 || pooledMost > 0 else { return 0 }
        let spec = instances[index].groupSpec
        // Pool loads happen before the batch computes; the group's dies pull in parallel.
        let poolLoad = pooledMost == 0 ? 0
            : instances[index].cost.pointToPoint(bytes: Double(pooledMost) * model.kvBytesPerToken / Double(spec.tp), plane: .ub)
        guard slowest.tokens > 0 else { return poolLoad }
        var input = PrefillBatchInput(tokensPerDie: Double(slowest.tokens) / Double(spec.tp),
                                      promptTokens: slowest.promptWeighted / Double(slowest.tokens),
                                      attentionTP: spec.tp, expertDies: spec.ep, routedSlots: spec.routedSlots(for: model))
        input.cachedPrefixTokens = slowest.hitWeighted / Double(slowest.tokens)
        input.sharedExpertDies = spec.sharedExpertDies
        input.moeLoadFactor = moeLoadFactor(index, tokens: Double(routedTokens))
        return poolLoad + instances[index].cost.prefillBatch(input).batchSeconds
    }

    struct BatchLoad {
        var tokens = 0
        var promptWeighted = 0.0
        var hitWeighted = 0.0
        var started = 0
        /// Prefix tokens loaded from the pooled DRAM tier instead of computed.
        var pooledTokens = 0
    }

    /// What ``fillPrefillBatch(_:budget:colocated:batchLimit:seats:seatGroup:)`` reads of a queued request, taken
    /// in place (`Dictionary.Values`' getter would copy the whole RequestState for each field).
    private struct PrefillView {
        var allocated: Bool
        var totalTokens: Int
        var promptTokens: Int
        var chainedKeys: [UInt64]
        var remainingPrefill: Int
        var hitTokens: Int
    }

    private static func prefillView(_ r: inout RequestState) -> PrefillView {
        PrefillView(allocated: r.allocated, totalTokens: r.totalTokens, promptTokens: r.spec.promptTokens,
                    chainedKeys: r.chainedKeys, remainingPrefill: r.remainingPrefill, hitTokens: r.hitTokens)
    }

    /// Whether the request's whole prompt is computed (read in place, not copied).
    private static func prefillDone(_ r: inout RequestState) -> Bool { r.remainingPrefill == 0 && r.allocated }

    /// The request's KV is allocated: its prefill starts now with `remaining` tokens to compute.
    private static func startPrefill(_ r: inout RequestState, remaining: Int, hitTokens: Int, now: SimTime) {
        r.remainingPrefill = remaining
        r.hitTokens = hitTokens
        r.allocated = true
        r.stage = .prefill
        if r.prefillStartedAt == nil { r.prefillStartedAt = now }
        r.times.prefillStartedAt = now
    }

    /// `seats`: the TE's decode scheduler, where a colocated request takes its decode seat in
    /// group `seatGroup` at admission.
    private func fillPrefillBatch(_ group: inout DPGroupState, budget: Int, colocated: Bool, batchLimit: Int,
                                  seats: DecodeScheduler?, seatGroup: Int) -> BatchLoad {
        let blockTokens = configuration.kvBlockTokens
        var load = BatchLoad()
        var left = budget
        for id in group.prefillQueue {
            if left <= 0 { break }
            // Read and changed in place through the request's dictionary slot: a copy of each
            // queued RequestState per step (and back) was 2% of a colocated replay.
            guard let slot = requests.index(forKey: id) else { continue }
            var view = Self.prefillView(&requests.values[slot])
            if !view.allocated {
                if colocated {
                    // A colocated request keeps its blocks through decode: admit it only with a
                    // decode slot and room for its whole expected length.
                    let needed = Saturating.ceilDiv(view.totalTokens, blockTokens)
                    guard seats!.slots[seatGroup] < batchLimit, needed <= group.kv.freeBlocks - group.kv.reservedBlocks
                    else { break }
                }
                // A colocated request's reservation for its output is made in the same call.
                // Blocks the group's own cache lacks may sit in the pooled DRAM tier: loaded over UB
                // instead of recomputed.
                guard let allocation = kvStore.allocatePrefill(id, in: &group.kv, promptTokens: view.promptTokens,
                                                               chained: view.chainedKeys,
                                                               expectedTotalTokens: colocated ? view.totalTokens : 0)
                else { break }
                if colocated { seats!.reserveSeat(seatGroup) }
                load.pooledTokens += allocation.pooledTokens
                group.queuedTokens += allocation.computeTokens - view.remainingPrefill
                view.remainingPrefill = allocation.computeTokens
                view.hitTokens = allocation.hitTokens
                Self.startPrefill(&requests.values[slot], remaining: view.remainingPrefill, hitTokens: view.hitTokens, now: now)
                load.started += 1
            }
            let chunk = min(left, view.remainingPrefill)
            group.batch.append((id, chunk))
            left -= chunk
            load.tokens += chunk
            load.promptWeighted += Double(chunk) * Double(view.promptTokens)
            load.hitWeighted += Double(chunk) * Double(view.hitTokens)
        }
        return load
    }

    /// Ends the current prefill batch: chunks are done; requests with no prompt left hand
    /// their KV to decode (prefill TE) or join the decode batch (colocated).
    func finishPrefillBatch(_ index: Int) {
        for g in instances[index].dp.indices {
            let batch = instances[index].dp[g].batch
            guard !batch.isEmpty else { continue }
            instances[index].dp[g].batch.removeAll(keepingCapacity: true)
            // Requests are changed in place through their dictionary slot: `requests[id]?.x = …`
            // moves the whole RequestState out and back each time (8% of an Azure code replay).
            for (id, chunk) in batch {
                if let slot = requests.index(forKey: id) { requests.values[slot].remainingPrefill -= chunk }
                instances[index].dp[g].queuedTokens -= chunk
            }
            // Chunks are taken front first, so finished requests are at the front.
            while let head = instances[index].dp[g].prefillQueue.first, let slot = requests.index(forKey: head),
                  Self.prefillDone(&requests.values[slot]) {
                instances[index].dp[g].prefillQueue.removeFirst()
                requests.values[slot].times.prefillEndedAt = now
                if instances[index].role == .colocated {
                    requests.values[slot].decodeInstance = index
                    requests.values[slot].decodeGroup = g
                    requests.values[slot].stage = .decode
                    instances[index].decode!.join(head)
                } else {
                    // The prompt's KV is written back to the pooled tier for later turns.
                    if kvStore.hasPool { kvStore.spillToPool(chained: Self.placementView(&requests.values[slot]).chainedKeys) }
                    registerTransfer(head)
                }
            }
        }
    }
}
