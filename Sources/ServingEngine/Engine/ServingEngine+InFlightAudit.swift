/// Where the in-flight requests are, found by walking the structures that hold them — not by
/// subtracting the outcome counters (`in_flight` in the report is `arrived − completed − failed −
/// rejected`, so checking it against those counters proves nothing).
///
/// ```swift
/// let census = engine.inFlightCensus()
/// let c = engine.report().requests
/// assert(census.total == c.arrived - c.completed - c.failed - c.rejected && census.problems.isEmpty)
/// ```
public struct InFlightCensus: Sendable, Equatable, CustomStringConvertible {
    /// In a prefill DP group's queue, no KV allocated yet (placed by the JE and the prefill leader).
    public var prefillQueued = 0
    /// In a prefill DP group's queue with its prompt KV allocated: chunks computing or waiting.
    public var prefilling = 0
    /// Prefill done, in a decode TE's transfer queue: waiting for decode KV (back-pressure).
    public var awaitingDecode = 0
    /// Pulled by decode (decode KV held) and queued on or moving over a KV transfer channel.
    public var transferring = 0
    /// KV on the decode side (or prefill done on a colocated TE), waiting for the step boundary.
    public var joining = 0
    /// In a running decode batch (due to finish at a known step).
    public var decoding = 0
    /// Of all the above, requests submitted from outside the workload (HTTP clients).
    public var external = 0
    /// Inconsistencies found on the way: a request in two places, a place holding a request the
    /// engine does not know, a known request found nowhere, a stage that does not match the
    /// place, KV or group counters that disagree with the walk. Sorted; empty when consistent.
    public var problems: [String] = []

    /// Requests found, each counted once.
    public var total: Int { prefillQueued + prefilling + awaitingDecode + transferring + joining + decoding }

    public var description: String {
        "\(total) in flight (queued \(prefillQueued), prefilling \(prefilling), awaiting decode \(awaitingDecode), "
            + "transferring \(transferring), joining \(joining), decoding \(decoding); external \(external))"
            + (problems.isEmpty ? "" : "; \(problems.count) problems: \(problems.prefix(5).joined(separator: "; "))")
    }
}

/// What the census reads of a request, taken from its slot in place.
private struct CensusRequest {
    let stage: RequestStage
    let prefillInstance: Int, prefillTicket: Int, decodeInstance: Int, decodeSeat: Int
    let promptTokens: Int
    init(_ r: inout RequestState) {
        (stage, prefillInstance, prefillTicket) = (r.stage, r.prefillInstance, r.prefillTicket)
        (decodeInstance, decodeSeat, promptTokens) = (r.decodeInstance, r.decodeSeat, r.spec.promptTokens)
    }
}

/// What the census reads of a request's prefill ticket and decode seat (``RequestPlacement``'s
/// figures the walk checks, without its first-token time and hits).
private struct CensusFound {
    var prefillGroup = -1, remainingPrefill = 0, allocated = false
    var decodeGroup = -1, finishStep = 0
}

/// Per DP group, what the walk counted: KV sequences expected, slots, running requests and their
/// prompt tokens (one array: each count is one write, not one per array with its uniqueness check).
private struct CensusTally {
    var holders = 0, slots = 0, running = 0, promptSum = 0
}

/// Where the census found a request, without its name: a place's name is a string built only
/// when a problem names it (the walk visits every in-flight request, tens of thousands at
/// saturation, and formatted a name per DP group and a dictionary of names per request).
private struct CensusPlace: IDTableValue, Equatable {
    static var vacant: CensusPlace { CensusPlace(.channel, 0) }
    enum Kind: UInt8 { case prefillQueue, transferQueue, joiners, decodeBatch, channel }
    var kind: Kind
    /// The instance (the channel for `.channel`).
    var index: Int32
    /// The DP group, for `.prefillQueue`.
    var group: Int32
    init(_ kind: Kind, _ index: Int, group: Int = 0) {
        self.kind = kind
        self.index = Int32(truncatingIfNeeded: index)
        self.group = Int32(truncatingIfNeeded: group)
    }
}

extension ServingEngine {
    /// The name a census problem gives a place.
    private func censusName(_ p: CensusPlace) -> String {
        let i = Int(p.index)
        switch p.kind {
        case .prefillQueue: return "\(instances[i].name)/dp\(p.group) prefill queue"
        case .transferQueue: return "\(instances[i].name) transfer queue"
        case .joiners: return "\(instances[i].name) joiners"
        case .decodeBatch: return "\(instances[i].name) decode batch"
        case .channel:
            return "KV channel \(instances[channels[i].prefillInstance].name) → \(instances[channels[i].decodeInstance].name)"
        }
    }

    /// Walks every structure that can hold a request — prefill queues (and the batches drawn
    /// from them), the decode TEs' transfer queues, the KV transfer channels, joiners and running
    /// decode batches — and counts each request once, by place. Checks on the way that each
    /// request sits in exactly one place, with the stage that place implies, holding KV exactly
    /// where it should, and that every DP group's counters (waiting, queued tokens, slots,
    /// running, prompt sum) and KV holders agree with what was found.
    ///
    /// Arrivals not yet taken in by the JE are events, not requests (`arrived` counts them when
    /// the JE takes them); eviction re-queues or fails at once, so nothing is ever parked
    /// outside these structures. O(requests + DP groups).
    public func inFlightCensus() -> InFlightCensus {
        var census = InFlightCensus()
        var problems: [String] = []
        /// Where each request was found, for duplicates and the orphan check: by its slot in the
        /// request table (looked up anyway to read it), and by id for ids the engine does not hold.
        /// A second table of every request in flight by id was a third of the walk.
        var seenBySlot = [CensusPlace?](repeating: nil, count: requests.slotCapacity)
        var seenUnknown = IDTable<CensusPlace>()
        /// Per DP group (all instances' groups in order, from `groupBase[instance]`): KV
        /// sequences the walk expects, to compare with the managers; expected slots, running
        /// requests and their prompt tokens.
        var groupBase: [Int] = []
        groupBase.reserveCapacity(instances.count)
        var groupCount = 0
        for i in instances.indices {
            groupBase.append(groupCount)
            groupCount += instances[i].groupCount
        }
        // Each TE's group count, taken once: whether group `g` of `i` exists is read per request
        // found (issue 12: through the TE's record it was most of a counted slot's ~100
        // instructions, 30 k slots in a saturated superpod's report).
        let groupCounts = instances.map(\.groupCount)
        var tallies = [CensusTally](repeating: CensusTally(), count: groupCount)
        /// Per instance: tickets and seats held by the requests found.
        var ticketsFound = [Int](repeating: 0, count: instances.count), seatsFound = ticketsFound
        /// Group `g` of `i`'s index in `tallies`, nil when it does not exist.
        @inline(__always)
        func groupIndex(_ i: Int, _ g: Int) -> Int? {
            guard i >= 0 && i < groupCounts.count && g >= 0 && g < groupCounts[i] else { return nil }
            return groupBase[i] &+ g
        }

        /// The ticket and seat of the request `place` found last, as figures (read once there; not
        /// returned with the request: an optional tuple of the two was copied through generic
        /// witnesses, a tenth of the walk).
        var found = CensusFound()
        // Each TE's schedulers, taken once (not through the TE's record per request).
        let prefillers = instances.map(\.prefill), decoders = instances.map(\.decode)
        func place(_ id: Int, _ where_: CensusPlace, stages: (RequestStage, RequestStage?)) -> CensusRequest? {
            let held = requests.index(forKey: id)
            if let other = held.map({ seenBySlot[$0] }) ?? seenUnknown[id] {
                problems.append("request \(id) is in \(censusName(other)) and in \(censusName(where_))")
                return nil
            }
            // Read in place: a copy of each RequestState (its arrays retained and released) was
            // half of the walk, which every run's report makes over every request in flight.
            guard let slot = held else {
                seenUnknown[id] = where_
                problems.append("\(censusName(where_)) holds request \(id), which the engine does not hold")
                return nil
            }
            seenBySlot[slot] = where_
            let request = CensusRequest(&requests[slot: slot])
            if request.stage != stages.0 && request.stage != stages.1 {
                problems.append("request \(id) in \(censusName(where_)) has stage \(request.stage.rawValue)")
            }
            if id >= Self.firstExternalID { census.external += 1 }
            // Its ticket and seat, if it points at any, are its own.
            let ticket = request.prefillTicket >= 0 && prefillers.indices.contains(request.prefillInstance)
                ? prefillers[request.prefillInstance]?.ticket(request.prefillTicket) : nil
            let seat = request.decodeSeat >= 0 && decoders.indices.contains(request.decodeInstance)
                ? decoders[request.decodeInstance]?.seat(request.decodeSeat) : nil
            if request.prefillTicket >= 0 {
                if ticket?.request == id { ticketsFound[request.prefillInstance] += 1 }
                else { problems.append("request \(id) points at prefill ticket \(request.prefillTicket) of TE \(request.prefillInstance), not its own") }
            }
            if request.decodeSeat >= 0 {
                if seat?.request == id { seatsFound[request.decodeInstance] += 1 }
                else { problems.append("request \(id) points at decode seat \(request.decodeSeat) of TE \(request.decodeInstance), not its own") }
            }
            // The figures the walk checks, as ``RequestPlacement/init(ticket:seat:)`` reads them
            // (its whole record, first-token time converted, was a tenth of `place`).
            var f = CensusFound()
            if let ticket { (f.prefillGroup, f.remainingPrefill, f.allocated) = (ticket.group, ticket.remaining, ticket.allocated) }
            if let seat { (f.decodeGroup, f.finishStep) = (seat.group, seat.finishStep) }
            found = f
            return request
        }
        func expectKV(_ id: Int, instance i: Int, group g: Int, _ where_: CensusPlace) {
            guard let k = groupIndex(i, g) else {
                problems.append("request \(id) in \(censusName(where_)) points at \(i)/dp\(g), which does not exist")
                return
            }
            tallies[k].holders += 1
            if !kvStore.contains(GroupRef(te: i, group: g), id) {
                problems.append("request \(id) in \(censusName(where_)) holds no KV on \(instances[i].name)/dp\(g)")
            }
        }
        /// A slot (and, in a decode batch, a running request) counted for decode group `g` of
        /// `i`; a group that does not exist was reported by `expectKV` and has no counters.
        func countSlot(_ i: Int, _ g: Int) {
            guard let k = groupIndex(i, g) else { return }
            tallies[k].slots += 1
        }
        /// A slot and a running request of decode group `g` of `i`.
        func countRunning(_ i: Int, _ g: Int, prompt: Int) {
            guard let k = groupIndex(i, g) else { return }
            tallies[k].slots += 1
            tallies[k].running += 1
            tallies[k].promptSum += prompt
        }

        for i in instances.indices {
            let colocated = instances[i].role == .colocated
            var waiting = 0
            if let prefill = instances[i].prefill {
                for g in instances[i].groups {
                    let group = GroupRef(te: i, group: g)
                    let here = CensusPlace(.prefillQueue, i, group: g)
                    var remaining = 0
                    for id in prefill.queues[g] {
                        guard let r = place(id, here, stages: (.queued, .prefill)) else { continue }
                        let ticket = found
                        if r.prefillInstance != i || ticket.prefillGroup != g {
                            problems.append("request \(id) in \(censusName(here)) thinks it is on \(r.prefillInstance)/dp\(ticket.prefillGroup)")
                        }
                        remaining += ticket.remainingPrefill
                        if ticket.allocated {
                            census.prefilling += 1
                            expectKV(id, instance: i, group: g, here)
                            if colocated { countSlot(i, g) }
                        } else {
                            census.prefillQueued += 1
                            waiting += 1
                            if kvStore.contains(group, id) { problems.append("request \(id) in \(censusName(here)) holds KV before allocation") }
                        }
                    }
                    if remaining != prefill.queuedTokens[g] {
                        problems.append("\(instances[i].name)/dp\(g): queued tokens \(prefill.queuedTokens[g]) but its queue has \(remaining) left")
                    }
                    // A batch's request was found first in this queue (the walk just placed it
                    // there), else it is looked for in the queue (a duplicate found elsewhere
                    // first, or a broken batch): no table of the queue's ids per group.
                    for id in prefill.batches[g].lazy.map(\.request) {
                        if let slot = requests.index(forKey: id), seenBySlot[slot] == here { continue }
                        if !prefill.queues[g].contains(id) {
                            problems.append("\(instances[i].name)/dp\(g): batch holds request \(id), which is not in its queue")
                        }
                    }
                }
            }
            if waiting != instances[i].waiting {
                problems.append("\(instances[i].name): waiting \(instances[i].waiting) but \(waiting) unallocated requests queued")
            }

            guard let decode = instances[i].decode else { continue }
            let backlog = CensusPlace(.transferQueue, i)
            for id in decode.transferQueue {
                guard let r = place(id, backlog, stages: (.transfer, nil)) else { continue }
                let p = found
                census.awaitingDecode += 1
                if r.decodeInstance != i { problems.append("request \(id) in \(censusName(backlog)) thinks it goes to \(r.decodeInstance)") }
                // Not pulled yet: only the prefill copy exists.
                expectKV(id, instance: r.prefillInstance, group: p.prefillGroup, backlog)
            }

            let joiners = CensusPlace(.joiners, i)
            for id in decode.joining {
                guard let r = place(id, joiners, stages: (.decode, nil)) else { continue }
                let seat = found
                census.joining += 1
                if r.decodeInstance != i { problems.append("request \(id) in \(censusName(joiners)) thinks it decodes on \(r.decodeInstance)") }
                expectKV(id, instance: i, group: seat.decodeGroup, joiners)
                countSlot(i, seat.decodeGroup)
            }

            let batch = CensusPlace(.decodeBatch, i)
            for (step, ids) in decode.finishing {
                if step <= instances[i].stepIndex && !ids.isEmpty {
                    problems.append("\(instances[i].name): \(ids.count) requests due at step \(step), already past (step \(instances[i].stepIndex))")
                }
                for id in ids {
                    guard let r = place(id, batch, stages: (.decode, nil)) else { continue }
                    let seat = found
                    census.decoding += 1
                    if r.decodeInstance != i || seat.finishStep != step {
                        problems.append("request \(id) in \(censusName(batch)) at step \(step) thinks it is on \(r.decodeInstance), step \(seat.finishStep)")
                    }
                    expectKV(id, instance: i, group: seat.decodeGroup, batch)
                    countRunning(i, seat.decodeGroup, prompt: r.promptTokens)
                }
            }
            // A request taking its first step was found first in this decode batch (just walked),
            // else it is looked for there: no table of the whole batch's ids per step.
            for id in decode.firstStep {
                if let slot = requests.index(forKey: id), seenBySlot[slot] == batch { continue }
                if !decode.finishing.values.contains(where: { $0.contains(id) }) {
                    problems.append("\(instances[i].name): request \(id) takes its first step but is not in the decode batch")
                }
            }
        }

        for c in channels.indices {
            let here = CensusPlace(.channel, c)
            for id in channels[c].queue {
                guard let r = place(id, here, stages: (.transfer, nil)) else { continue }
                let p = found
                census.transferring += 1
                if r.prefillInstance != channels[c].prefillInstance || r.decodeInstance != channels[c].decodeInstance {
                    problems.append("request \(id) on \(censusName(here)) thinks it moves \(r.prefillInstance) → \(r.decodeInstance)")
                }
                // Pulled: the prefill copy is still there and decode KV is held for it.
                expectKV(id, instance: r.prefillInstance, group: p.prefillGroup, here)
                expectKV(id, instance: r.decodeInstance, group: p.decodeGroup, here)
                countSlot(r.decodeInstance, p.decodeGroup)
            }
            if channels[c].busy && channels[c].queue.isEmpty { problems.append("\(censusName(here)) is busy with nothing to move") }
        }

        for slot in seenBySlot.indices where seenBySlot[slot] == nil {
            guard let id = requests.occupant(ofSlot: slot) else { continue }
            let stage = "\(requests[slot: slot].stage)"
            problems.append("request \(id) (stage \(stage)) is held by the engine but sits in no queue, channel or batch")
        }
        // Every prefill ticket and decode seat record is held for a request found on the walk:
        // none for a request that left, none shared (each found request's were checked in `place`).
        for i in instances.indices {
            let heldTickets = instances[i].prefill?.ticketsHeld ?? 0, heldSeats = instances[i].decode?.seatsHeld ?? 0
            if heldTickets != ticketsFound[i] {
                problems.append("\(instances[i].name): \(heldTickets) prefill tickets held for \(ticketsFound[i]) requests")
            }
            if heldSeats != seatsFound[i] {
                problems.append("\(instances[i].name): \(heldSeats) decode seats held for \(seatsFound[i]) requests")
            }
        }

        // Every DP group's counters and KV holders against the walk (an HBM mask holds blocks
        // too: the KV store tells them apart).
        for i in instances.indices {
            for g in instances[i].groups {
                func name() -> String { "\(instances[i].name)/dp\(g)" }
                let k = groupBase[i] + g
                let tally = tallies[k]
                let live = tally.holders
                let ref = GroupRef(te: i, group: g)
                if kvStore.requestsHoldingKV(ref) != live {
                    let masked = kvStore.maskCount(ref)
                    problems.append("\(name()): \(kvStore.liveRequests(ref)) KV sequences but \(live) requests hold KV there"
                        + (masked > 0 ? " (+\(masked) HBM masks)" : ""))
                }
                guard let decode = instances[i].decode else { continue }
                if decode.slots[g] != tally.slots {
                    problems.append("\(name()): \(decode.slots[g]) slots taken but \(tally.slots) requests hold one")
                }
                if decode.batches.running[g] != tally.running {
                    problems.append("\(name()): running \(decode.batches.running[g]) but \(tally.running) in its decode batch")
                }
                if decode.batches.promptSum[g] != tally.promptSum {
                    problems.append("\(name()): prompt sum \(decode.batches.promptSum[g]) but its batch has \(tally.promptSum)")
                }
            }
        }
        census.problems = problems.sorted()
        return census
    }

    /// Conservation checked the hard way: the census's problems, plus a mismatch between the
    /// requests found by walking and `arrived − completed − failed − rejected`. Empty when sound.
    public func inFlightProblems() -> [String] {
        let census = inFlightCensus()
        let t = telemetry
        let expected = t.arrived - t.completed - t.failed - t.rejected
        var problems = census.problems
        if census.total != expected {
            problems.append("walked \(census.total) requests in flight but arrived \(t.arrived) − completed \(t.completed) "
                + "− failed \(t.failed) − rejected \(t.rejected) = \(expected) (\(census))")
        }
        return problems
    }
}
