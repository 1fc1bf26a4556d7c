import PodModel
import SimKit

extension ServingEngine {
    // MARK: KV transfer with back-pressure

    /// A finished prefill registers its KV transfer with the decode TE of least load (the JE's
    /// real-time load, system.md §1.5); the decode side pulls it when it has room.
    func registerTransfer(_ id: Int) {
        // In place through the request's slot: `requests[id]?.x = …` moves the whole state out
        // and back through a heap-allocated accessor frame (5% of a saturated superpod).
        guard let slot = requests.index(forKey: id) else { return }
        registerTransfer(id, slot: slot)
    }

    /// ``registerTransfer(_:)`` of the request in table slot `slot` (the finished prefill's
    /// caller just looked it up: not looked up again).
    func registerTransfer(_ id: Int, slot: Int) {
        let best = je.pickDecodeTE(instances: instances, cluster: cluster, kv: kvStore)
        Self.awaitTransfer(&requests[slot: slot], to: best)
        let decode = instances[best].decode!
        decode.enqueue(id)
        // The scheduler and batch limit handed on, not looked up again (each lookup of the TE or
        // its scheduler a retain and release).
        pullTransfers(best, decode: decode, batchLimit: instances[best].groupSpec.batchLimit, head: (id, slot))
    }

    /// Decode DP load balancing (system.md §4), by the JE's decode balancing policy
    /// (`kv-aware` by default: skip full and drained groups, then the lowest KV usage
    /// including the space reserved for expected outputs).
    func pickDecodeGroup(_ index: Int) -> Int? {
        je.pickDecodeGroup(index, instances: instances, kv: kvStore, placeable: cluster.placeableGroups(of: index))
    }

    /// Pulls queued transfers in order while a DP group has room for the head: blocks for the
    /// prompt now, and a reservation for the expected output (the request's output length
    /// stands in for its `max_tokens`). A head that does not fit holds the queue
    /// (back-pressure), so long requests are not starved.
    func pullTransfers(_ index: Int) {
        guard let decode = instances[index].decode else { return }
        pullTransfers(index, decode: decode, batchLimit: instances[index].groupSpec.batchLimit, head: nil)
    }

    /// ``pullTransfers(_:)`` of TE `index`, whose decode scheduler is `decode` and batch limit `batchLimit`.
    /// `head`: a request the caller just looked up and queued, with its slot in the request table
    /// (when it is the head, its slot is not looked up again: one lookup per registered transfer).
    private func pullTransfers(_ index: Int, decode: DecodeScheduler, batchLimit: Int, head: (id: Int, slot: Int)?) {
        var known = head
        while let id = decode.nextTransfer {
            let slot: Int
            if let k = known, k.id == id {
                slot = k.slot
            } else {
                guard let found = requests.index(forKey: id) else { return }
                slot = found
            }
            known = nil
            // The scheduler and batch limit passed in (picked through the TE list, they were
            // retained and released per pull).
            guard let g = je.pickDecodeGroup(index, decode: decode, batchLimit: batchLimit, kv: kvStore,
                                             placeable: cluster.placeableGroups(of: index))
            else { return }
            let request = (totalTokens: requests[slot: slot].totalTokens, promptTokens: requests[slot: slot].spec.promptTokens,
                           prefillInstance: requests[slot: slot].prefillInstance)
            guard let seat = decode.pull(id, into: g, promptTokens: request.promptTokens, totalTokens: request.totalTokens,
                                         te: index, kv: kvStore)
            else { return }
            requests[slot: slot].decodeSeat = seat
            guard let c = kvTransfer.channel(from: request.prefillInstance, to: index) else {
                preconditionFailure("every prefill–decode pair has a channel")
            }
            kvTransfer.enqueue(id, on: c)
            startTransfer(c)
        }
    }

    /// The request waits for its transfer to decode TE `d`: both fields in one access to the table
    /// (each subscript was a uniqueness check of it).
    private static func awaitTransfer(_ r: inout RequestState, to d: Int) {
        r.decodeInstance = d
        r.stage = .transfer
    }

    /// The request's transfer starts `now`; returns its prompt length (what the transfer moves).
    private static func startTransfer(_ r: inout RequestState, now: SimTime) -> Int {
        r.times.transferStartedAt = now
        return r.spec.promptTokens
    }

    /// Where a transfer's KV comes from and goes to, read in place as the transfer ends `now`
    /// (the request is decoding from then): one access to the table, not three.
    private static func endTransfer(_ r: inout RequestState, now: SimTime)
        -> (prefillInstance: Int, prefillTicket: Int, decodeInstance: Int) {
        r.stage = .decode
        r.times.transferEndedAt = now
        return (r.prefillInstance, r.prefillTicket, r.decodeInstance)
    }

    /// One transfer at a time per prefill–decode pair; time from the fabric model.
    func startTransfer(_ c: Int) {
        guard let id = kvTransfer.nextToStart(c), let slot = requests.index(forKey: id) else { return }
        // Its start stamped with the read (nothing between reads it).
        let promptTokens = Self.startTransfer(&requests[slot: slot], now: now)
        let route = kvTransfer.route(c)
        let seconds = Self.delay(instances[route.prefillInstance].cost.kvTransfer(
            tokens: Double(promptTokens), plane: route.plane) * route.slowdown)
        let done = now.after(seconds)
        kvTransfer.start(c, at: now, doneAt: done)
        queue.schedule(at: done, .transferDone(channel: c))
    }

    func finishTransfer(_ c: Int) {
        guard acceptTransferDone(c) else { return }
        guard let id = kvTransfer.finish(c), let slot = requests.index(forKey: id) else { return }
        // Read in place; the whole RequestState is copied only for a transfer observer.
        if telemetry.observers.transfer != nil { observeTransfer(c, request: requests[slot: slot]) }
        // Stage and end stamped with the read (the prefill release below reads neither).
        let (prefillInstance, prefillTicket, decodeInstance) = Self.endTransfer(&requests[slot: slot], now: now)
        // The prefill copy is released; its prefix blocks stay cached for the next hit.
        instances[prefillInstance].prefill?.release(prefillTicket, te: prefillInstance, kv: kvStore)
        instances[decodeInstance].decode!.join(id)
        startStepIfIdle(decodeInstance)
        startStepIfIdle(prefillInstance)
        startTransfer(c)
    }

    // MARK: Continuous batching

    /// Moves joiners into the running batch at a step boundary and fixes when each finishes:
    /// a step yields `1 + acceptance` tokens on average (system.md §4, MTP); a per-request phase
    /// in [0, 1) spreads the rounding, so the n-th step has produced ⌊n·r + phase⌋ tokens.
    func admitJoiners(_ index: Int) {
        let step = instances[index].stepIndex
        let decode = instances[index].decode!
        for id in decode.takeJoiners() {
            // In place through the dictionary slot (no copy of the RequestState and back).
            guard let slot = requests.index(forKey: id) else { continue }
            let joined = Self.joinDecode(&requests[slot: slot], step: step, phase: tokenPhase(id),
                                         tokensPerStep: tokensPerStep, now: now)
            decode.admit(seat: joined.seat, promptTokens: joined.promptTokens, joinStep: step, finishStep: joined.finishStep)
        }
    }

    /// Marks `request` as decoding from `step`: its last step is where its output runs out (a
    /// cancelled request frees its slot after one step); its seat keeps both steps. Takes the
    /// request in place: reading it through `Dictionary.Values`' getter would copy the whole
    /// RequestState.
    private static func joinDecode(_ request: inout RequestState, step: Int, phase: Double, tokensPerStep: Double,
                                   now: SimTime) -> (seat: Int, promptTokens: Int, finishStep: Int) {
        let steps = request.cancelled ? 1
            : max(1, Int(saturating: ((Double(request.outputTokens) - phase) / tokensPerStep).rounded(.up)))
        request.times.decodeJoinedAt = now
        return (request.decodeSeat, request.spec.promptTokens, Saturating.add(step, steps))
    }

    /// Time of one decode step: every DP group waits at dispatch for the slowest one — the group
    /// whose attention (its batch over its own mean context) takes longest — and at combine for
    /// the hottest expert die (system.md §1.3).
    func decodeStepSeconds(_ index: Int) -> (seconds: Double, running: Int) {
        let step = instances[index].stepIndex
        let queryTokens = tokensPerStep > 1 ? 2.0 : 1.0
        // Read through the instance (a class), not a copy of its cost model.
        let instance = instances[index]
        let spec = instance.groupSpec
        // The group the step is priced at.
        let group: (requests: Double, context: Double, total: Int)
        if !model.isMoE && spec.dp > 1 {
            // A dense model's DP groups share no collective: nothing waits for the slowest one
            // (a 910C die ran slower than a 910B die for it). The TE still steps its groups
            // together, so the step is priced at their mean busy group.
            group = instance.decode!.batches.meanBusyGroup(step: step, tokensPerStep: tokensPerStep)
        } else {
            // Attention time grows with a group's requests, and per request with its context: rank
            // the groups by requests × (per-request cost + per-token cost × context), both read off
            // the cost model once per query width (InstanceState: the same every step).
            let perRequest: Double, perToken: Double
            if let rates = instance.decodeAttentionRates, rates.queryTokens == queryTokens {
                (perRequest, perToken) = (rates.perRequest, rates.perToken)
            } else {
                let base = instance.cost.decodeAttentionSeconds(requests: 1, context: 0, queryTokens: queryTokens)
                perRequest = instance.cost.decodeAttentionSeconds(requests: 2, context: 0, queryTokens: queryTokens) - base
                perToken = (instance.cost.decodeAttentionSeconds(requests: 1, context: 1_000, queryTokens: queryTokens) - base) / 1_000
                instance.decodeAttentionRates = (queryTokens, base, perRequest, perToken)
            }
            // The slowest group from the scheduler's incremental index (O(changed groups), not a scan of all).
            let (maxRunning, context, total) = instance.decode!.stepLoad(step: step, tokensPerStep: tokensPerStep,
                                                                         perRequest: perRequest, perToken: perToken)
            group = (Double(maxRunning), context, total)
        }
        let total = group.total
        guard total > 0 else { return (0, 0) }
        // With MTP the main model verifies 1 + draft tokens per request: they all route to experts.
        let routed = Double(total) * (tokensPerStep > 1 ? 2 : 1)
        let (factor, layerFactors) = experts.load(index, tokens: routed)
        instance.lastStepLoad = (factor, layerFactors?.factors ?? [], layerFactors?.scale ?? 1)
        if let ma = configuration.deployment.moeAttention {
            // Attention at the slowest attention die (A2E waits for it), the experts' tokens at the
            // mean over the layout's attention dies, each layer at its own hottest expert die.
            var input = MoEAttentionStepInput(requestsPerDie: group.requests, contextTokens: group.context,
                                              mtpAcceptance: tokensPerStep - 1, moeLoadFactor: factor)
            input.meanRequestsPerDie = Double(total) / Double(max(1, ma.attentionDies))
            if let layerFactors { (input.moeLoadFactorPerLayer, input.moeLoadFactorPerLayerScale) = layerFactors }
            (input.attentionSlowdown, input.expertSlowdown) = stragglerSlowdown(instance: index)
            let step = instances[index].cost.decodeStepMoEAttention(ma, input)
            noteDecodeMoE(index, step)
            return (step.stepSeconds, total)
        }
        // A `let`, handed to the cost model in place (a `var` was copied for the call).
        let shape = expertShapeLeft(instance)
        let input = Self.decodeStepInput(requests: group.requests, context: group.context, mtpAcceptance: tokensPerStep - 1,
                                         dp: spec.dp, ep: shape.ep, tp: spec.tp, routedSlots: shape.routedSlots,
                                         sharedExpertDies: shape.sharedExpertDies, factor: factor,
                                         layerFactors: layerFactors, total: total,
                                         slowdown: stragglerSlowdown(instance: index))
        let stepCost = instance.priceDecodeStep(input)
        noteDecodeMoE(index, stepCost)
        return (stepCost.stepSeconds, total)
    }

    /// The expert dies a decode TE prices its steps on: its EP group, routed slots and
    /// shared-expert dies less those a vertical shrink took out (``followShrinks()``). A lost
    /// routed die holds no slot and takes no token (the load factor is over the dies left too);
    /// a lost shared-expert die's tokens go to the shared copies left, each of which serves more
    /// ranks (npu-loss's NPU 280: the step was priced on all 32 copies after losing two).
    func expertShapeLeft(_ instance: InstanceState) -> (ep: Int, routedSlots: Int, sharedExpertDies: Int) {
        let spec = instance.groupSpec
        let (lost, lostShared) = (instance.lostRoutedDies, instance.lostSharedDies)
        let routedSlots = spec.routedSlots(for: model)
        guard lost > 0 || lostShared > 0 else { return (spec.ep, routedSlots, spec.sharedExpertDies) }
        let perDie = max(1, routedSlots / max(1, spec.ep - spec.sharedExpertDies))
        // The shrink keeps a replica of every expert, the shared one included: at least one copy.
        let shared = spec.sharedExpertDies > 0 ? max(1, spec.sharedExpertDies - lostShared) : 0
        return (max(1, spec.ep - lost - (spec.sharedExpertDies - shared)), max(1, routedSlots - lost * perDie), shared)
    }

    /// ``decodeStepSeconds(_:)``'s cost-model input: the slowest group, the TE's shape, the step's
    /// load factor (the mean, and each MoE layer's), the instance's requests and its straggler slowdowns.
    @inline(__always)
    private static func decodeStepInput(requests: Double, context: Double, mtpAcceptance: Double, dp: Int, ep: Int,
                                        tp: Int, routedSlots: Int, sharedExpertDies: Int, factor: Double,
                                        layerFactors: (factors: [Double], scale: Double)?, total: Int,
                                        slowdown: (attention: Double, expert: Double)) -> DecodeStepInput {
        var input = DecodeStepInput(requestsPerGroup: requests, contextTokens: context, mtpAcceptance: mtpAcceptance,
                                    dpGroups: dp, expertDies: ep, routedSlots: routedSlots,
                                    sharedExpertDies: sharedExpertDies, moeLoadFactor: factor)
        input.attentionTP = tp
        // Each layer's combine waits for its own hottest die (as `bench decode` prices it).
        if let layerFactors { (input.moeLoadFactorPerLayer, input.moeLoadFactorPerLayerScale) = layerFactors }
        input.requestsPerInstance = Double(total)
        (input.attentionSlowdown, input.expertSlowdown) = slowdown
        return input
    }

    /// Ends a decode step: first tokens for the requests that joined it, completions for the
    /// requests whose last step it was.
    func finishDecodeStep(_ index: Int) {
        instances[index].stepIndex += 1
        let step = instances[index].stepIndex
        let decode = instances[index].decode!
        let firstTokenObserver = telemetry.observers.firstToken
        for id in decode.takeFirstTokens() {
            guard let slot = requests.index(forKey: id) else { continue }
            decode.noteFirstToken(seat: requests[slot: slot].decodeSeat, at: now)
            firstTokenObserver?(FirstToken(id: id, ttft: now - requests[slot: slot].spec.arrival))
        }
        if streams.hasOpenStreams { reportTokens(index, step: step) }
        guard let done = decode.takeFinished(at: step) else { return }
        for id in done { complete(id) }
        if instances[index].role == .decode { pullTransfers(index) }
    }

    /// A request leaves: decode KV freed (prefix blocks of colocated groups stay cached),
    /// latencies recorded. TTFT runs from arrival to the end of the request's first decode step
    /// (end of prefill + KV transfer + one step): we do not model the prefill TE emitting the
    /// first token itself. TPOT is (E2E − TTFT) / (output − 1), as vLLM defines it.
    func complete(_ id: Int) {
        guard let request = requests.removeValue(forKey: id) else { return }
        let index = request.decodeInstance
        let seat = instances[index].decode!.release(seat: request.decodeSeat, promptTokens: request.spec.promptTokens,
                                                    te: index, kv: kvStore)
        let g = seat.group
        // Its prefill ticket (on the prefill TE, or this one colocated) is given back too.
        let ticket = request.prefillInstance >= 0 ? instances[request.prefillInstance].prefill?.forget(request.prefillTicket) : nil
        let placement = RequestPlacement(ticket: ticket, seat: seat)
        if request.cancelled {
            leaveCancelled(request, placement: placement, location: "\(instances[index].name)/dp\(g)")
            return
        }
        streams.finished(id, outputTokens: request.outputTokens, lengthCapped: request.spec.outputTokens >= request.maxTokens,
                         cachedPromptTokens: placement.hitTokens)

        let firstToken = seat.firstTokenAt ?? now
        let ttft = firstToken - request.spec.arrival
        let e2e = now - request.spec.arrival
        let output = request.outputTokens
        telemetry.completed += 1
        telemetry.generatedTokens += output
        // Each latency in whole microseconds once, for its whole-run and its interval histogram.
        let ttftMicros = LatencyHistogram.micros(ttft), e2eMicros = LatencyHistogram.micros(e2e)
        telemetry.ttft.record(micros: ttftMicros)
        telemetry.intervalTTFT.record(micros: ttftMicros)
        telemetry.e2e.record(micros: e2eMicros)
        telemetry.intervalE2E.record(micros: e2eMicros)
        var tpot = 0.0
        if output > 1 {
            tpot = (now - firstToken) / Double(output - 1)
            let tpotMicros = LatencyHistogram.micros(tpot)
            telemetry.tpot.record(micros: tpotMicros)
            telemetry.intervalTPOT.record(micros: tpotMicros)
        }
        if ttft * 1_000 <= configuration.sloTTFTMs && tpot * 1_000 <= configuration.sloTPOTMs { telemetry.sloMet += 1 }
        telemetry.remember(RequestStatus(id: id, arrivedAt: request.spec.arrival, stage: .completed,
                                         promptTokens: request.spec.promptTokens, outputTokens: output,
                                         generatedTokens: output, ttftMs: ttft * 1_000, finishedAt: now),
                           te: instances[index].name, group: g)
        // Its last use: the state moves into the ring of requests that left, not copied there.
        observeFinished(consume request, placement: placement, stage: .completed, outputTokens: output)
    }

    // MARK: Steps

    func startStepIfIdle(_ index: Int) {
        if !instances[index].stepping { beginStep(index) }
    }

    /// Starts the instance's next step if it has work: a prefill batch, a decode step, or for a
    /// colocated TE a decode step with a prefill chunk mixed in (step time = decode step +
    /// chunk time, a simple stand-in for a mixed batch).
    func beginStep(_ index: Int) {
        guard !isHalted(index) else { return }
        var seconds = 0.0
        var running = 0
        if instances[index].hasDecode {
            admitJoiners(index)
            (seconds, running) = decodeStepSeconds(index)
        }
        var prefill = 0.0
        if instances[index].hasPrefill { prefill = formPrefillBatch(index) * prefillSlowdown(instance: index) }
        seconds += prefill
        // A step with work always takes positive, finite time (NaN from a degenerate cost is
        // taken as the longest delay rather than as "no work", which would stall the requests).
        seconds = seconds.isNaN ? Self.longestDelay : Self.delay(seconds)
        guard seconds > 0 else { return }
        instances[index].stepping = true
        instances[index].lastStepSeconds = seconds
        // A decode step with a chunk mixed in (a prefill TE's batch is no decode step: not kept).
        instances[index].lastStepPrefillSeconds = instances[index].hasDecode ? min(prefill, seconds) : 0
        instances[index].busySeconds += seconds
        noteBusyForAutoscaler(index, seconds: seconds)
        telemetry.intervalOutputTokens += Double(running) * tokensPerStep
        observeStep(index, seconds: seconds, decodeBatch: running)
        let end = now.after(seconds)
        instances[index].stepEndsAt = end
        queue.schedule(at: end, .stepEnd(instance: index))
    }

    func endStep(_ index: Int) {
        guard acceptStepEnd(index) else { return }
        instances[index].stepping = false
        if instances[index].hasPrefill { finishPrefillBatch(index) }
        if instances[index].hasDecode { finishDecodeStep(index) }
        beginStep(index)
    }
}

extension InstanceState {
    /// The decode step `input` describes, priced on this TE's cost model with its batch memo.
    /// A method of the TE so that its cost model (a `let`) is read in place: priced from the
    /// engine, the model's box was retained around each call and the input copied for it
    /// (issue 12: a decode step's glue, ~60 M instructions of a Mooncake hour).
    func priceDecodeStep(_ input: DecodeStepInput) -> DecodeStepCost {
        cost.decodeStep(input, memo: &decodeBatchMemo)
    }
}
