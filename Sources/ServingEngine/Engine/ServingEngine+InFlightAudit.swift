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

extension ServingEngine {
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
        /// Where each request was found: for duplicates and the orphan check.
        var seen: [Int: String] = [:]
        /// KV sequences the walk expects per (instance, group), to compare with the managers.
        var holders: [Int: [Int: Int]] = [:]
        /// Per (instance, group): expected slots, running requests and their prompt tokens.
        var slots: [Int: [Int: Int]] = [:]
        var running: [Int: [Int: Int]] = [:]
        var promptSum: [Int: [Int: Int]] = [:]

        func place(_ id: Int, _ where_: String, stages: Set<RequestStage>) -> RequestState? {
            if let other = seen[id] {
                problems.append("request \(id) is in \(other) and in \(where_)")
                return nil
            }
            seen[id] = where_
            guard let request = requests[id] else {
                problems.append("\(where_) holds request \(id), which the engine does not hold")
                return nil
            }
            if !stages.contains(request.stage) {
                problems.append("request \(id) in \(where_) has stage \(request.stage.rawValue)")
            }
            if id >= Self.firstExternalID { census.external += 1 }
            return request
        }
        func expectKV(_ id: Int, instance i: Int, group g: Int, _ where_: String) {
            guard instances.indices.contains(i), instances[i].dp.indices.contains(g) else {
                problems.append("request \(id) in \(where_) points at \(i)/dp\(g), which does not exist")
                return
            }
            holders[i, default: [:]][g, default: 0] += 1
            if !instances[i].dp[g].kv.contains(requestID: id) {
                problems.append("request \(id) in \(where_) holds no KV on \(instances[i].name)/dp\(g)")
            }
        }

        for i in instances.indices {
            let colocated = instances[i].role == .colocated
            var waiting = 0
            for g in instances[i].dp.indices {
                let group = instances[i].dp[g]
                let name = "\(instances[i].name)/dp\(g) prefill queue"
                var remaining = 0
                for id in group.prefillQueue {
                    guard let r = place(id, name, stages: [.queued, .prefill]) else { continue }
                    if r.prefillInstance != i || r.prefillGroup != g {
                        problems.append("request \(id) in \(name) thinks it is on \(r.prefillInstance)/dp\(r.prefillGroup)")
                    }
                    remaining += r.remainingPrefill
                    if r.allocated {
                        census.prefilling += 1
                        expectKV(id, instance: i, group: g, name)
                        if colocated { slots[i, default: [:]][g, default: 0] += 1 }
                    } else {
                        census.prefillQueued += 1
                        waiting += 1
                        if group.kv.contains(requestID: id) { problems.append("request \(id) in \(name) holds KV before allocation") }
                    }
                }
                if remaining != group.queuedTokens {
                    problems.append("\(instances[i].name)/dp\(g): queued tokens \(group.queuedTokens) but its queue has \(remaining) left")
                }
                let queued = Set(group.prefillQueue)
                for (id, _) in group.batch where !queued.contains(id) {
                    problems.append("\(instances[i].name)/dp\(g): batch holds request \(id), which is not in its queue")
                }
            }
            if waiting != instances[i].waiting {
                problems.append("\(instances[i].name): waiting \(instances[i].waiting) but \(waiting) unallocated requests queued")
            }

            let backlog = "\(instances[i].name) transfer queue"
            for id in instances[i].transferQueue {
                guard let r = place(id, backlog, stages: [.transfer]) else { continue }
                census.awaitingDecode += 1
                if r.decodeInstance != i { problems.append("request \(id) in \(backlog) thinks it goes to \(r.decodeInstance)") }
                // Not pulled yet: only the prefill copy exists.
                expectKV(id, instance: r.prefillInstance, group: r.prefillGroup, backlog)
            }

            let joiners = "\(instances[i].name) joiners"
            for id in instances[i].joining {
                guard let r = place(id, joiners, stages: [.decode]) else { continue }
                census.joining += 1
                if r.decodeInstance != i { problems.append("request \(id) in \(joiners) thinks it decodes on \(r.decodeInstance)") }
                expectKV(id, instance: i, group: r.decodeGroup, joiners)
                slots[i, default: [:]][r.decodeGroup, default: 0] += 1
            }

            let batch = "\(instances[i].name) decode batch"
            for (step, ids) in instances[i].finishing {
                if step <= instances[i].stepIndex && !ids.isEmpty {
                    problems.append("\(instances[i].name): \(ids.count) requests due at step \(step), already past (step \(instances[i].stepIndex))")
                }
                for id in ids {
                    guard let r = place(id, batch, stages: [.decode]) else { continue }
                    census.decoding += 1
                    if r.decodeInstance != i || r.finishStep != step {
                        problems.append("request \(id) in \(batch) at step \(step) thinks it is on \(r.decodeInstance), step \(r.finishStep)")
                    }
                    expectKV(id, instance: i, group: r.decodeGroup, batch)
                    slots[i, default: [:]][r.decodeGroup, default: 0] += 1
                    running[i, default: [:]][r.decodeGroup, default: 0] += 1
                    promptSum[i, default: [:]][r.decodeGroup, default: 0] += r.spec.promptTokens
                }
            }
            let runningSet = Set(instances[i].finishing.values.joined())
            for id in instances[i].firstStep where !runningSet.contains(id) {
                problems.append("\(instances[i].name): request \(id) takes its first step but is not in the decode batch")
            }
        }

        for c in channels.indices {
            let name = "KV channel \(instances[channels[c].prefillInstance].name) → \(instances[channels[c].decodeInstance].name)"
            for id in channels[c].queue {
                guard let r = place(id, name, stages: [.transfer]) else { continue }
                census.transferring += 1
                if r.prefillInstance != channels[c].prefillInstance || r.decodeInstance != channels[c].decodeInstance {
                    problems.append("request \(id) on \(name) thinks it moves \(r.prefillInstance) → \(r.decodeInstance)")
                }
                // Pulled: the prefill copy is still there and decode KV is held for it.
                expectKV(id, instance: r.prefillInstance, group: r.prefillGroup, name)
                expectKV(id, instance: r.decodeInstance, group: r.decodeGroup, name)
                slots[r.decodeInstance, default: [:]][r.decodeGroup, default: 0] += 1
            }
            if channels[c].busy && channels[c].queue.isEmpty { problems.append("\(name) is busy with nothing to move") }
        }

        for (id, r) in requests where seen[id] == nil {
            problems.append("request \(id) (stage \(r.stage)) is held by the engine but sits in no queue, channel or batch")
        }

        // Every DP group's counters and KV holders against the walk (HBM masks hold blocks as
        // pseudo-requests).
        var masks: [Int: [Int: Int]] = [:]
        for m in faults.hbmMasks.values { masks[m.instance, default: [:]][m.group, default: 0] += 1 }
        for i in instances.indices {
            for g in instances[i].dp.indices {
                let group = instances[i].dp[g]
                let name = "\(instances[i].name)/dp\(g)"
                let live = holders[i]?[g] ?? 0
                let masked = masks[i]?[g] ?? 0
                if group.kv.liveRequests != live + masked {
                    problems.append("\(name): \(group.kv.liveRequests) KV sequences but \(live) requests hold KV there"
                        + (masked > 0 ? " (+\(masked) HBM masks)" : ""))
                }
                guard instances[i].hasDecode else { continue }
                if group.slots != slots[i]?[g] ?? 0 {
                    problems.append("\(name): \(group.slots) slots taken but \(slots[i]?[g] ?? 0) requests hold one")
                }
                if group.running != running[i]?[g] ?? 0 {
                    problems.append("\(name): running \(group.running) but \(running[i]?[g] ?? 0) in its decode batch")
                }
                if group.promptSum != promptSum[i]?[g] ?? 0 {
                    problems.append("\(name): prompt sum \(group.promptSum) but its batch has \(promptSum[i]?[g] ?? 0)")
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
