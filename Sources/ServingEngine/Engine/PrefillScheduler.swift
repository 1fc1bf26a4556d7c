import DequeModule
import SimKit

/// A prefill-capable TE's leader (engine-components.md §2; system.md §4): it places each request
/// on one of the TE's DP groups, forms each group's chunked-prefill batch from the front of its
/// queue, applies the chunks when the batch ends, and gives the requests it finished to the
/// engine (transfer to decode, or the colocated TE's joiners).
///
/// It owns the per-group queues, their uncached-token estimates and the current batch (arrays
/// indexed by DP group), and the TE's count of placed requests not yet allocated (the JE's
/// admission bound), and each placed request's ``PrefillTicket`` (its group, prompt tokens left,
/// cache hits, whether its KV is allocated). Tickets sit in a flat table, numbered; the request
/// keeps only the number (``RequestState/prefillTicket``), so a step reads and changes a ticket by
/// index instead of through a second hash table. A ticket lives from ``place`` until the request
/// leaves the engine (``forget(_:)``) or this TE (``withdraw(_:seats:te:kv:)``): its group and
/// hits stay readable for the request's detail after the prefill is done.
///
/// Collaborators come per call (R2): the ``KVCacheStore`` (which owns the groups' KV managers)
/// with the TE's index `te` to name its groups, for a placement which groups are placeable (the
/// cluster manager's answer), for a colocated TE its ``DecodeScheduler`` (where an admitted
/// request takes its decode seat), the request table, the clock. It holds no reference to them,
/// so ``copy()`` is a field copy.
///
/// ```swift
/// let leader = PrefillScheduler(groups: te.groupCount)
/// let g = leader.place(id, probing: keys, te: p, kv: store, placeable: cluster.placeableGroups(of: p), requests: &requests)
/// let plan = leader.formBatch(budget: 8_192, seatLimit: nil, seats: nil, blockTokens: 128, te: p,
///                             kv: store, requests: &requests, now: now)   // the step's load
/// for done in leader.finishBatch(requests: &requests) { … }            // at the step's end
/// leader.release(ticket, te: p, kv: store)                              // KV handed over
/// leader.forget(ticket)                                                 // the request left
/// ```
final class PrefillScheduler {
    /// One request's chunk in a group's batch (and its ticket's number, so the batch's end
    /// applies it without a lookup). A struct: emptying an array of the three-field tuple was an
    /// outlined generic call costing more than the lookups it saved.
    struct Chunk: Equatable {
        var request: Int
        var tokens: Int
        var ticket: Int
    }

    /// Per DP group: placed requests not yet fully prefilled, in order.
    private(set) var queues: [Deque<Int>]
    /// Per DP group: uncached prompt tokens waiting in its queue (the leader's load estimate).
    private(set) var queuedTokens: [Int]
    /// The sum of ``queuedTokens``, kept with it: routing reads a TE's load per candidate per
    /// arrival, and summing the groups each time was most of ``PrefillPool/finishCost(_:for:)``.
    private(set) var totalQueuedTokens = 0
    /// Per DP group: the current batch's requests and their chunk sizes.
    private(set) var batches: [[Chunk]]
    /// Requests placed on the TE that have not started prefill (the JE's admission bound).
    private(set) var waiting = 0
    /// The tickets by number (the request keeps the number).
    private var tickets = NumberedRecords<PrefillTicket>()
    /// The buffer of the list the last ``finishBatch(requests:)`` returned, emptied and filled
    /// again by the next: grown from empty, a saturated superpod's list (~90 requests a step) was
    /// reallocated seven times per step (2 M instructions in 120 s). Scratch space, empty in a copy.
    private var spareFinished: [Finished] = []

    init(groups: Int) {
        queues = Array(repeating: Deque(), count: groups)
        queuedTokens = Array(repeating: 0, count: groups)
        batches = Array(repeating: [], count: groups)
    }

    private init(copying other: PrefillScheduler) {
        queues = other.queues
        queuedTokens = other.queuedTokens
        batches = other.batches
        waiting = other.waiting
        totalQueuedTokens = other.totalQueuedTokens
        tickets = other.tickets
    }

    /// A deep, independent copy (for the engine's `fork()`): every field is a value.
    func copy() -> PrefillScheduler { PrefillScheduler(copying: self) }

    // MARK: Figures

    /// Requests queued on all groups (snapshots).
    var queuedRequests: Int {
        var total = 0
        for g in queues.indices { total += queues[g].count }
        return total
    }

    /// Requests in the current batches (a request has at most one chunk per batch): the ones
    /// being prefilled now, which ``queuedRequests`` also counts until they finish.
    var prefillingRequests: Int {
        var total = 0
        for g in batches.indices { total += batches[g].count }
        return total
    }

    /// Whether any group has a queued request (without one, ``formBatch`` forms an empty batch).
    var hasQueued: Bool {
        for g in queues.indices where !queues[g].isEmpty { return true }
        return false
    }

    /// Whether the current batch has a chunk (without one, ``finishBatch`` finishes nothing).
    var hasBatch: Bool {
        for g in batches.indices where !batches[g].isEmpty { return true }
        return false
    }


    // MARK: Tickets

    /// Ticket number `t`, nil when it is not held.
    func ticket(_ t: Int) -> PrefillTicket? { tickets.record(t) }

    /// Tickets held (requests placed here that have not left it).
    var ticketsHeld: Int { tickets.heldCount }

    /// The request of ticket `t` left the engine (completed, failed, cancelled): the ticket is
    /// given back and returned (nil when it was not held). Its KV was released before.
    @discardableResult
    func forget(_ t: Int) -> PrefillTicket? { tickets.giveBack(t) }

    // MARK: Placement

    /// Places request `id` on the placeable group where it would finish soonest: queued
    /// uncached tokens plus its own uncached tokens, so a group already caching the prefix is
    /// cheaper (lowest group on ties). `chainedKeys` are the keys to probe in the groups `holders`
    /// says may hold them (the others have no hit); empty: no probe. The request takes a ticket,
    /// whose number it keeps (``RequestState/prefillTicket``). `placeable` nil: every group is
    /// placeable (``ClusterManager/placeableGroupsIfRestricted(of:)``). Returns the group, nil for
    /// an unknown id.
    @discardableResult
    func place(_ id: Int, probing chainedKeys: [UInt64], in holders: PrefixGroups = .all, te: Int, kv: KVCacheStore,
               placeable: PlaceableGroups?, requests: inout RequestTable) -> Int? {
        guard let slot = requests.index(forKey: id) else { return nil }
        return place(id, slot: slot, promptTokens: Self.promptTokens(&requests[slot: slot]), probing: chainedKeys,
                     in: holders, te: te, kv: kv, placeable: placeable, requests: &requests)
    }

    /// ``place(_:probing:in:te:kv:placeable:requests:)`` of the request in slot `slot` of `requests`
    /// with `promptTokens` (the caller has looked it up already: one lookup per arrival, not two).
    /// `known`: one group's hit for these keys, already probed (not probed again).
    @discardableResult
    func place(_ id: Int, slot: Int, promptTokens: Int, probing chainedKeys: [UInt64], in holders: PrefixGroups,
               known: (group: Int, hits: Int)? = nil, te: Int, kv: KVCacheStore, placeable: PlaceableGroups?,
               requests: inout RequestTable) -> Int {
        var best = -1
        var bestCost = Int.max
        var bestEstimate = 0
        if placeable == nil && (chainedKeys.isEmpty || holders.isEmpty) {
            // Nothing to probe and every group placeable (most arrivals): each group costs its
            // queued tokens plus the whole prompt, so the first group queuing least is the pick
            // (costs rise with the queue, saturating or not, and only a cost below Int.max is
            // taken). A scan of the queued counts, without the probing loop's reads per group.
            assert(kv.withGroups(of: te) { $0.count } == queuedTokens.count, "one queue per DP group")
            queuedTokens.withUnsafeBufferPointer { queued in
                var least = 0
                for g in queued.indices where queued[g] < queued[least] { least = g }
                if !queued.isEmpty && Saturating.add(queued[least], promptTokens) < .max {
                    best = least
                    bestEstimate = promptTokens
                }
            }
        } else {
            // Read through the store's buffer (no copy of a group's block manager per probe).
            kv.withGroups(of: te) { groups in
                for g in groups.indices where placeable?[g] != false {
                    let hits = chainedKeys.isEmpty || !holders.contains(g) ? 0
                        : g == known?.group ? known!.hits
                        : groups[g].cachedPrefixTokens(promptTokens: promptTokens, chainedHashes: chainedKeys)
                    let uncached = promptTokens - hits
                    let cost = Saturating.add(queuedTokens[g], uncached)
                    if cost < bestCost {
                        best = g
                        bestCost = cost
                        bestEstimate = uncached
                    }
                }
            }
        }
        precondition(best >= 0, "the JE only picks TEs with a placeable DP group")
        requests[slot: slot].prefillTicket = tickets.issue(PrefillTicket(request: id, group: best, remaining: bestEstimate))
        queues[best].append(id)
        queuedTokens[best] += bestEstimate
        totalQueuedTokens += bestEstimate
        waiting += 1
        return best
    }

    private static func promptTokens(_ r: inout RequestState) -> Int { r.spec.promptTokens }

    // MARK: Batches

    /// What one group put in a batch.
    struct GroupLoad {
        var tokens = 0
        var promptWeighted = 0.0
        var hitWeighted = 0.0
        var started = 0
        /// Prefix tokens loaded from the pooled DRAM tier instead of computed.
        var pooledTokens = 0
    }

    /// What a TE's batch costs: all its DP groups meet at the MoE barrier, so the group with the
    /// most tokens sets the compute, the one loading most from the pool sets the load.
    struct BatchPlan {
        /// The group with the most tokens (the first of equals).
        var slowest = GroupLoad()
        var pooledMost = 0
        /// Tokens of all groups (routed to experts; computed prefill tokens).
        var routedTokens = 0
        /// Groups with tokens to compute or load.
        var groupsWorking = 0
    }

    /// Fills each group's chunked-prefill batch from the front of its queue, `budget` new
    /// tokens per group (first come, first served: a request whose KV does not fit yet blocks
    /// the ones behind it). A request starts prefill when its KV is allocated (group blocks
    /// first, then the pool for what the group lacks). `seatLimit` is a colocated TE's decode
    /// batch limit: such a request keeps its blocks through decode, so it is admitted only with a
    /// decode seat and room for its whole expected length, and takes the seat in `seats`, the
    /// TE's decode scheduler (both nil: prefill TE).
    func formBatch(budget: Int, seatLimit: Int?, seats: DecodeScheduler?, blockTokens: Int, te: Int,
                   kv: KVCacheStore, requests: inout RequestTable, now: SimTime) -> BatchPlan {
        var plan = BatchPlan()
        for g in queues.indices {
            let load = fillBatch(GroupRef(te: te, group: g), budget: budget, seatLimit: seatLimit, seats: seats,
                                 blockTokens: blockTokens, kv: kv, requests: &requests, now: now)
            waiting -= load.started
            if load.tokens > 0 || load.pooledTokens > 0 { plan.groupsWorking += 1 }
            if load.tokens > plan.slowest.tokens { plan.slowest = load }
            plan.pooledMost = max(plan.pooledMost, load.pooledTokens)
            plan.routedTokens += load.tokens
        }
        return plan
    }

    /// What ``fillBatch`` reads of every queued request: its ticket and prompt length, borrowed
    /// through the table's read accessor (`Dictionary.Values`' getter would copy the whole
    /// RequestState for each field). Issue 12: read `inout` with its length and prefix keys, it
    /// cost each chunk a uniqueness check of the table and a retain and release of the keys, which
    /// only the chunk that allocates needs (``allocationView(_:)``).
    private static func prefillView(_ r: RequestState) -> (ticket: Int, promptTokens: Int) {
        (r.prefillTicket, r.spec.promptTokens)
    }

    /// What allocating a queued request's KV reads of it: its whole expected length and its
    /// prompt's prefix keys.
    private static func allocationView(_ r: RequestState) -> (totalTokens: Int, chainedKeys: [UInt64]) {
        (r.totalTokens, r.chainedKeys)
    }

    /// The request's KV is allocated: its prefill starts now.
    private static func startPrefill(_ r: inout RequestState, now: SimTime) {
        r.stage = .prefill
        if r.prefillStartedAt == nil { r.prefillStartedAt = now }
        r.times.prefillStartedAt = now
    }

    private func fillBatch(_ group: GroupRef, budget: Int, seatLimit: Int?, seats: DecodeScheduler?,
                           blockTokens: Int, kv: KVCacheStore, requests: inout RequestTable, now: SimTime) -> GroupLoad {
        let g = group.group
        var load = GroupLoad()
        var left = budget
        for id in queues[g] {
            if left <= 0 { break }
            // Read and changed in place through the request's table slot: a copy of each
            // queued RequestState per step (and back) was 2% of a colocated replay.
            guard let slot = requests.index(forKey: id) else { continue }
            let view = Self.prefillView(requests[slot: slot])
            let t = view.ticket
            if !tickets[held: t].allocated {
                let wants = Self.allocationView(requests[slot: slot])
                if let seatLimit, let seats {
                    let needed = Saturating.ceilDiv(wants.totalTokens, blockTokens)
                    guard seats.slots[g] < seatLimit, needed <= kv.roomForDecode(group) else { break }
                }
                // A colocated request's reservation for its output is made in the same call.
                // Blocks the group's own cache lacks may sit in the pooled DRAM tier: loaded over UB
                // instead of recomputed.
                guard let allocation = kv.allocatePrefill(id, in: group, promptTokens: view.promptTokens,
                                                          chained: wants.chainedKeys,
                                                          expectedTotalTokens: seatLimit != nil ? wants.totalTokens : 0)
                else { break }
                if seatLimit != nil { seats?.reserveSeat(g) }
                load.pooledTokens += allocation.pooledTokens
                let change = allocation.computeTokens
                    - Self.allocated(&tickets[held: t], computeTokens: allocation.computeTokens,
                                     hitTokens: allocation.hitTokens)
                queuedTokens[g] += change
                totalQueuedTokens += change
                Self.startPrefill(&requests[slot: slot], now: now)
                load.started += 1
            }
            let ticket = tickets[held: t]
            let chunk = min(left, ticket.remaining)
            batches[g].append(Chunk(request: id, tokens: chunk, ticket: t))
            left -= chunk
            load.tokens += chunk
            load.promptWeighted += Double(chunk) * Double(view.promptTokens)
            load.hitWeighted += Double(chunk) * Double(ticket.hitTokens)
        }
        return load
    }

    /// The ticket's KV is allocated: its figures written in one access (four subscripts were four
    /// uniqueness checks of the table). Returns the estimate it replaces.
    private static func allocated(_ ticket: inout PrefillTicket, computeTokens: Int, hitTokens: Int) -> Int {
        let estimate = ticket.remaining
        ticket.remaining = computeTokens
        ticket.hitTokens = hitTokens
        ticket.allocated = true
        return estimate
    }

    /// Whether the request's whole prompt is computed.
    /// Takes the request borrowed (`inout`, it cost a uniqueness check of the table per step).
    private func prefillDone(_ r: RequestState) -> Bool {
        guard let ticket = ticket(r.prefillTicket) else { return false }
        return ticket.remaining == 0 && ticket.allocated
    }

    /// A request whose prompt is computed, and the group it was prefilled on.
    typealias Finished = (request: Int, group: Int)

    /// Ends the current batch: its chunks are computed. Returns the requests with no prompt
    /// left, off their queues, in group order and queue order (the engine hands each over).
    func finishBatch(requests: inout RequestTable) -> [Finished] {
        // The last step's buffer, unique again once its caller let go of the list.
        var finished: [Finished] = []
        swap(&finished, &spareFinished)
        finished.removeAll(keepingCapacity: true)
        defer { spareFinished = finished }
        for g in batches.indices {
            guard !batches[g].isEmpty else { continue }
            // Applied to the tickets by number (no lookup of the request). The chunks are read in
            // place and emptied after: a copy of the batch made its emptying allocate. The group's
            // queued tokens drop by the batch's total once (whole numbers: the same as per chunk,
            // without a uniqueness check of the array per chunk).
            var applied = 0
            for i in batches[g].indices {
                let chunk = batches[g][i]
                tickets[held: chunk.ticket].remaining -= chunk.tokens
                applied += chunk.tokens
            }
            queuedTokens[g] -= applied
            totalQueuedTokens -= applied
            batches[g].removeAll(keepingCapacity: true)
            // Chunks are taken front first, so finished requests are at the front.
            while let head = queues[g].first, let slot = requests.index(forKey: head),
                  prefillDone(requests[slot: slot]) {
                queues[g].removeFirst()
                finished.append((head, g))
            }
        }
        return finished
    }

    /// Drops the current batch without applying its chunks (the step was abandoned: a fault);
    /// the next step forms it again.
    func abandonBatch() {
        for g in batches.indices where !batches[g].isEmpty { batches[g].removeAll() }
    }

    // MARK: Leaving

    /// A prefilled request's KV reached decode: its blocks in its ticket's group are released
    /// (registered prefix blocks stay cached for the next hit). The ticket stays until the
    /// request leaves (``forget(_:)``).
    func release(_ t: Int, te: Int, kv: KVCacheStore) {
        guard let ticket = ticket(t) else { return }
        kv.release(ticket.request, in: GroupRef(te: te, group: ticket.group))
    }

    /// Takes requests off every queue and batch (evicted by a fault or a drain); their counts and
    /// KV are settled one by one by ``withdraw(_:seats:te:kv:)``.
    func remove(_ ids: Set<Int>) {
        for g in queues.indices where queues[g].contains(where: ids.contains) {
            queues[g].removeAll(where: ids.contains)
            batches[g].removeAll { ids.contains($0.request) }
        }
    }

    /// Settles a request taken off this TE (after ``remove(_:)``): a queued or prefilling one
    /// gives back its queued tokens, its place under the admission bound if not yet allocated,
    /// and, colocated (`seats`: the TE's decode scheduler), the decode seat its allocation took;
    /// its KV here is released and its ticket given back. Returns the ticket (nil: none held).
    @discardableResult
    func withdraw(_ request: RequestState, seats: DecodeScheduler?, te: Int, kv: KVCacheStore) -> PrefillTicket? {
        guard let ticket = forget(request.prefillTicket) else { return nil }
        let g = ticket.group
        if request.stage == .queued || request.stage == .prefill {
            queuedTokens[g] -= ticket.remaining
            totalQueuedTokens -= ticket.remaining
            if !ticket.allocated { waiting -= 1 }
            if ticket.allocated { seats?.releaseSeat(g) }
        }
        kv.release(request.id, in: GroupRef(te: te, group: g))
        return ticket
    }

    // MARK: Test seams

    /// Loses group `g`'s queue head without its bookkeeping (the in-flight audit's tests).
    func loseQueueHeadForTesting(group g: Int) -> Int? { queues[g].popFirst() }
}

/// A request's place in a prefill TE's care (engine-components.md §2), kept by its
/// ``PrefillScheduler`` from placement until the request leaves: the DP group it is queued on,
/// the prompt tokens it still has to compute (an estimate of the uncached ones until its KV is
/// allocated), the prompt tokens its allocation found cached, and whether that allocation happened.
struct PrefillTicket: Equatable, Sendable {
    let request: Int
    var group: Int
    var remaining: Int
    var hitTokens = 0
    var allocated = false
}
