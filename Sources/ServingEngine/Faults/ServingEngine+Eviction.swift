import SimKit

/// What happens to a request taken off failed (or drained) hardware.
enum EvictionOutcome {
    /// Back to the JE for a fresh prefill elsewhere (its KV is gone).
    case reprefill
    /// Moved before any prefill work was done (drain): not counted as re-prefilled.
    case move
    /// Failed with this reason.
    case fail(String)
    /// Its client left (``ServingEngine/cancelExternal(id:)``): it leaves, counted as cancelled.
    case cancel
    /// Queued again before any prefill work was done, not counted as re-prefilled; fails with
    /// this reason when no TE that prefills is in service (an arrival that waited for a prefill
    /// TE which came back unable to serve).
    case requeue(ifNowhere: String)

    var isCancel: Bool { if case .cancel = self { true } else { false } }
    var isReprefill: Bool { if case .reprefill = self { true } else { false } }
    var isRequeue: Bool { if case .requeue = self { true } else { false } }

    /// Why a request that must be queued again fails when no TE that prefills (`te`: "prefill
    /// TE" or "colocated TE") is in service: a move is a drain's (nothing failed, the node was
    /// taken out of service), a re-prefill follows failed hardware.
    func reasonIfNowhere(te: String) -> String {
        if case .move = self { return ServingEngine.drainedAndNowhere(te: te) }
        if case .requeue(let reason) = self { return reason }
        return ServingEngine.hardwareAndNowhere(te: te)
    }
}

extension ServingEngine {
    /// Takes requests off every structure that holds them — prefill queues and batches, transfer
    /// queues and channels, decode batches — frees their KV on both sides and fixes the group
    /// counters, then re-prefills, moves or fails each (in id order, for determinism). Nothing
    /// is lost: each request ends up queued again or failed with a reason. Returns how many
    /// were (re-prefilled, failed) for the fault's report.
    ///
    /// Two phases, each through the owners: every scheduler and the KV transfer drop the ids from
    /// their queues first (`remove`); then each request in turn gives back its ticket, seat and KV
    /// (`withdraw`, `evict(seat:)`, through the KV store) just before it is queued again. The
    /// order is state: a re-queue may start an idle TE's step at once, whose batch allocates KV,
    /// so freeing every request's KV up front would change what fits (design note §7.5).
    ///
    /// A request whose client already left is not prefilled again or failed for the hardware:
    /// it leaves as cancelled (counted in neither figure). `startingSteps` false: the caller is
    /// ending a step of the touched TEs and starts the next one itself.
    @discardableResult
    func evict(_ ids: [Int], outcome: EvictionOutcome, startingSteps: Bool = true) -> (reprefilled: Int, failed: Int) {
        let set = Set(ids.filter { requests[$0] != nil })
        guard !set.isEmpty else { return (0, 0) }
        for i in instances.indices {
            instances[i].decode?.remove(set)
            instances[i].prefill?.remove(set)
        }
        // A transfer in progress among them is abandoned; its done event becomes stale.
        let touchedChannels = kvTransfer.remove(set)
        var touchedInstances = Set<Int>()
        var result = (reprefilled: 0, failed: 0)
        for id in set.sorted() {
            guard var request = requests.removeValue(forKey: id) else { continue }
            let placement = release(request)
            // What it decoded before leaving decode was decoded (work done, streamed to its
            // client) whether it now fails or is prefilled again: `tokens.generated` keeps it.
            creditDecoded(request, placement)
            // The schedulers gave its ticket and seat back.
            (request.prefillTicket, request.decodeSeat) = (-1, -1)
            if request.prefillInstance >= 0 { touchedInstances.insert(request.prefillInstance) }
            if request.decodeInstance >= 0 { touchedInstances.insert(request.decodeInstance) }
            // `.cancel` is only asked for requests their client left (flagged first); taken at
            // its word either way, so that no caller can make the engine trap here.
            if request.cancelled || outcome.isCancel {
                request.cancelled = true
                leaveCancelled(request, placement: placement, location: location(request, placement))
                continue
            }
            switch outcome {
            case .cancel:
                continue
            case .fail(let reason):
                requests[id] = request
                fail(id, reason: reason, placement: placement)
                result.failed += 1
            case .reprefill, .move, .requeue:
                // An arrival waiting for a prefill TE's return was never prefilled: a second fault
                // taking it off that TE queues it again, not counted as re-prefilled (it was counted
                // for that fault, and its request as prefilled again).
                let arrival = faults.forgetArrivalWaiting(id)
                let outcome = arrival && outcome.isReprefill
                    ? .requeue(ifNowhere: Self.waitedAndTakenOut(te: prefillingTE)) : outcome
                if requeue(request, reasonIfNowhere: outcome.reasonIfNowhere(te: prefillingTE)) {
                    if outcome.isReprefill { result.reprefilled += 1; requests[id]?.times.reprefills += 1 }
                    // An arrival that waits on for another TE due back is still one (never prefilled).
                    if arrival || outcome.isRequeue, let te = requests[id]?.prefillInstance, faults.hasOutage(te) {
                        faults.noteArrivalWaiting(id, on: te)
                    }
                } else {
                    result.failed += 1
                }
            }
        }
        for c in touchedChannels { startTransfer(c) }
        for index in touchedInstances.sorted() {
            if instances[index].role == .decode { pullTransfers(index) }
            if startingSteps { startStepIfIdle(index) }
        }
        return result
    }

    /// Where a request leaving now was: its decode group if it held a seat, else its prefill group.
    private func location(_ request: RequestState, _ p: RequestPlacement) -> String {
        if request.decodeInstance >= 0 && p.decodeGroup >= 0 { return "\(instances[request.decodeInstance].name)/dp\(p.decodeGroup)" }
        if request.prefillInstance >= 0 && p.prefillGroup >= 0 { return "\(instances[request.prefillInstance].name)/dp\(p.prefillGroup)" }
        return ""
    }

    /// Frees a request's KV and slot on the prefill side and the decode side; its schedulers
    /// give back its ticket and seat (which knows whether it is in the running batch), returned.
    private func release(_ request: RequestState) -> RequestPlacement {
        var ticket: PrefillTicket?
        let p = request.prefillInstance
        if p >= 0, let prefill = instances[p].prefill {
            ticket = prefill.withdraw(request, seats: instances[p].role == .colocated ? instances[p].decode : nil,
                                      te: p, kv: kvStore)
            if let ticket { instances[p].decode?.noteLoadChanged(ticket.group, te: p, kv: kvStore) }
        }
        let d = request.decodeInstance
        guard d >= 0, request.decodeSeat >= 0, request.stage == .transfer || request.stage == .decode else {
            return RequestPlacement(ticket: ticket, seat: nil)
        }
        // A pulled transfer, a joiner and a running request all hold a seat and decode KV.
        let seat = instances[d].decode!.evict(seat: request.decodeSeat, promptTokens: request.spec.promptTokens,
                                              te: d, kv: kvStore)
        return RequestPlacement(ticket: ticket, seat: seat)
    }

    /// Why a request that must be prefilled again fails when no prefill TE is in service.
    static let hardwareAndNowhereElse = hardwareAndNowhere(te: "prefill TE")
    static let drainedAndNowhereElse = drainedAndNowhere(te: "prefill TE")
    static func hardwareAndNowhere(te: String) -> String { "its hardware failed and no \(te) is in service to prefill it again" }
    static func drainedAndNowhere(te: String) -> String { "its node was drained and no other \(te) is in service to take it" }
    /// Why an arrival that waited for a `te` due back within the TTFT SLO fails when that TE came
    /// back awaiting repair (its hardware never failed: "its hardware failed" misread it).
    static func waitedAndNowhere(te: String) -> String {
        "it waited for a \(te) due back within the TTFT SLO, which came back awaiting repair, and no \(te) is in service to take it"
    }

    /// Why an arrival that waited for a `te` due back within the TTFT SLO fails when another fault
    /// takes that TE out again and no `te` is in service (it was never prefilled: "its hardware
    /// failed … prefill it again" misread it).
    static func waitedAndTakenOut(te: String) -> String {
        "it waited for a \(te) due back within the TTFT SLO, which another fault took out again, and no \(te) is in service to take it"
    }

    /// What reasons and replies call a TE that prefills: "colocated TE" in a pod whose TEs all
    /// prefill and decode (it has no "prefill TE" to speak of, and the console, the report and
    /// the JE's refusals call its TEs colocated), else "prefill TE".
    var prefillingTE: String { Self.prefillingTE(in: instances) }
    static func prefillingTE(in instances: [InstanceState]) -> String {
        instances.contains { $0.role == .prefill } || !instances.contains { $0.role == .colocated } ? "prefill TE" : "colocated TE"
    }

    /// Queues a request again from the start: a prefill TE chosen by the JE, or, if every TE is
    /// at its admission bound, the least loaded one in service (the request was admitted once
    /// already). When no prefill TE is in service but one is recovering (an NPU-fork, a restart)
    /// and back within the TTFT SLO, the request waits in that TE's queue for it, as prefilled
    /// requests wait for a decode TE about to return: a 0.17 s NPU-fork of the only prefill TE
    /// failed every request it held. Fails it with `reason` when no prefill TE is in service and
    /// none is back within the SLO (saying when the first is back, if one is coming).
    func requeue(_ old: RequestState, reasonIfNowhere given: String? = nil) -> Bool {
        let reason = given ?? Self.hardwareAndNowhere(te: prefillingTE)
        let spec = old.spec
        var request = RequestState(spec: spec, chainedKeys: old.chainedKeys)
        // What the client asked for survives the move (an HTTP request's cap, a cancellation).
        request.maxTokens = old.maxTokens
        request.cancelled = old.cancelled
        request.times = old.times.requeued(at: now)
        let target = je.requeueTarget(for: request, instances: instances, cluster: cluster, kv: kvStore)
            ?? instances.indices.filter { instances[$0].hasPrefill && cluster.hasPlaceableGroup(te: $0) }
                .min { (instances[$0].waiting, $0) < (instances[$1].waiting, $1) }
        let back = target == nil ? prefillTEBack() : nil
        let holding = target == nil && back.map { isWithinTTFTSLO($0.wait) } == true
        guard let target = target ?? (holding ? back?.te : nil), je.neverFits(request) == nil else {
            requests[spec.id] = request
            if let back, back.wait.isFinite {
                fail(spec.id, reason: reason + Self.prefillTEBackPastSLO(in: back.wait, te: prefillingTE),
                     kind: reason + Self.prefillTEBackPastSLO(in: nil, te: prefillingTE))
            } else {
                fail(spec.id, reason: reason)
            }
            return false
        }
        request.prefillInstance = target
        requests[spec.id] = request
        placeOnPrefillGroup(spec.id, instance: target, holding: holding)
        return true
    }

    /// "; the first prefill TE is back in 300 s, past the TTFT SLO" (nil: without the time, the
    /// reason's kind as the report counts it).
    static func prefillTEBackPastSLO(in wait: SimTime?, te: String = "prefill TE") -> String {
        "; the first \(te) is back" + (wait.map { " in \(OperatorCommand.format(($0 * 10).rounded(.up) / 10)) s" } ?? "")
            + ", past the TTFT SLO"
    }

    /// Whether a wait of `seconds` for a TE to come back is within the TTFT SLO (a request can
    /// wait for it and still meet its SLO).
    func isWithinTTFTSLO(_ seconds: SimTime) -> Bool { seconds <= configuration.sloTTFTMs / 1_000 }

    /// ``prefillTEBack()``'s TE when it is back within the TTFT SLO (an arrival waits for it).
    func prefillTEBackWithinSLO() -> Int? {
        guard let back = prefillTEBack(), isWithinTTFTSLO(back.wait) else { return nil }
        return back.te
    }

    /// The prefill TE out of service only until a recovery's known end (an NPU-fork or a restart,
    /// not drained, not held off by scaling) that is back first, and in how many seconds; nil
    /// when none is coming back by itself. A restart that returns without its lost dies leaves
    /// the TE awaiting repair, and ``endOutage(_:)`` re-queues what waited for it.
    func prefillTEBack() -> (te: Int, wait: SimTime)? {
        var best: (te: Int, wait: SimTime)?
        for i in instances.indices where instances[i].hasPrefill && !isRetired(i) && !cluster.isHeldOff(te: i) {
            let until: SimTime
            switch faults.outage(of: i) {
            case .forking(let end, _)?, .restarting(let end)?: until = end
            default: continue
            }
            // A group on a drained node would not take the request back either.
            guard !instances[i].groups.contains(where: { cluster.isOnDrainedNode(i, group: $0) }) else { continue }
            if best.map({ until - now < $0.wait }) ?? true { best = (i, until - now) }
        }
        return best
    }

    /// Why an arrival is refused when no prefill TE takes work: what each one is doing and, when
    /// a recovery will bring one back by itself, when ("no prefill TE accepts work (prefill-0
    /// copying weights onto spare NPUs; the first is back in 0.2 s)"). It said only "(all drained
    /// or out of service)", leaving a client to guess whether to retry in a second or an hour.
    func noPrefillTEReason() -> String {
        var states: [(state: String, names: [String])] = []
        for i in instances.indices where instances[i].hasPrefill && !isRetired(i) {
            let state: String
            switch faults.outage(of: i) {
            case .restarting?: state = "restarting"
            case .forking?: state = "copying weights onto spare NPUs"
            case .awaitingRepair?: state = "awaiting repair of a dead die"
            case .killed?: state = "killed to preserve decode"
            case .migrating?: state = "paused for a drain's migration"
            case nil:
                if cluster.isHeldOff(te: i) { state = "held off by scaling" }
                else if instances[i].groups.contains(where: { cluster.isOnDrainedNode(i, group: $0) }) { state = "drained" }
                else { state = "out of service" }
            }
            if let k = states.firstIndex(where: { $0.state == state }) { states[k].names.append(instances[i].name) }
            else { states.append((state, [instances[i].name])) }
        }
        let down = states.map { ($0.names.count > 3 ? "\($0.names.count) TEs" : $0.names.joined(separator: ", ")) + " " + $0.state }
        // One back within the TTFT SLO is waited for unless its queue is full (``admit(_:)``).
        let back = prefillTEBack().map {
            "; the first is back in \(OperatorCommand.format(($0.wait * 10).rounded(.up) / 10)) s"
                + (isWithinTTFTSLO($0.wait) ? ", its queue full (\(instances[$0.te].waiting) waiting)" : ", past the TTFT SLO")
        } ?? (states.isEmpty ? "" : "; none is coming back by itself")
        return "no \(prefillingTE) accepts work (" + (down.isEmpty ? "none in service" : down.joined(separator: "; ")) + back + ")"
    }

    /// Ids of requests that hold anything on the given DP groups of an instance (queued or
    /// prefilling there, waiting to hand over KV from there, or decoding there).
    func requestsOn(instance index: Int, groups: Set<Int>? = nil) -> [Int] {
        var ids: [Int] = []
        for (id, r) in requests {
            let p = placement(of: r)
            let onPrefill = r.prefillInstance == index && (groups?.contains(p.prefillGroup) ?? true)
                && (r.stage == .queued || r.stage == .prefill || r.stage == .transfer)
            // Requests still waiting in the decode TE's transfer queue hold nothing there yet.
            let onDecode = r.decodeInstance == index && p.decodeGroup >= 0
                && (r.stage == .decode || r.stage == .transfer) && (groups?.contains(p.decodeGroup) ?? true)
            if onPrefill || onDecode { ids.append(id) }
        }
        return ids.sorted()
    }
}

extension RequestState {
    var id: Int { spec.id }
}
