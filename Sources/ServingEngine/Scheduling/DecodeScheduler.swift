import DequeModule
import SimKit

/// The decode side of one TE (engine-components.md §2): the TE-shell's queues and the DP groups'
/// decode bookkeeping. A decode TE's finished prefills wait in the transfer queue until a group
/// has room (back-pressure, system.md §4); a pulled or colocated request holds a *seat* (a decode
/// slot) in its group; at a step boundary joiners are admitted to the running batch, whose
/// figures (``DecodeBatchFigures``) give the step's cost; each request leaves at the step its
/// output runs out, or earlier when evicted, migrated or stopped.
///
/// Each request given a group holds a ``DecodeSeat`` record (its group, the step it joined and the
/// one it finishes at, when its first token came), from its pull (decode TE) or the end of its
/// prefill (colocated) until it leaves: in a flat table, numbered, the request keeping only the
/// number (``RequestState/decodeSeat``). The seat-numbered methods (``pull``, ``seat(colocated:group:)``,
/// ``admit(seat:promptTokens:joinStep:finishStep:)``, ``release(seat:promptTokens:te:kv:)``,
/// ``evict(seat:promptTokens:te:kv:)``, ``migrate(seat:to:promptTokens:totalTokens:te:kv:)``,
/// ``reschedule(seat:to:)``) keep the record and the group bookkeeping together; the id-and-group
/// ones below them do the bookkeeping alone.
///
/// It owns that state (`private(set)`) and the two indices kept from it: kv-aware balancing's
/// ``DecodeLoadIndex`` (decode TEs) and the step cost's ``SlowestDecodeGroup``. The groups' KV
/// managers are the ``KVCacheStore``'s: each call that reads or changes them gets the store and
/// the TE's index (`te`), and, for a pick, which groups are placeable (the cluster manager's
/// answer); the scheduler keeps no reference to them, to other TEs or to the engine, so
/// ``copy()`` is a plain copy of values.
///
/// ```swift
/// let decode = DecodeScheduler(groups: te.groupCount, colocated: false)
/// decode.enqueue(id)                                          // a finished prefill, waiting for room
/// if let seat = decode.pull(id, into: g, promptTokens: p, totalTokens: t, te: d, kv: store) { /* transfer */ }
/// decode.join(id)                                             // its KV arrived: in at the next step boundary
/// for id in decode.takeJoiners() { decode.admit(seat: seat, promptTokens: p, joinStep: s, finishStep: f) }
/// decode.takeFinished(at: s + 1)                              // ids whose last step ended
/// decode.release(seat: seat, promptTokens: p, te: d, kv: store)  // it left: seat, batch place and KV freed
/// ```
final class DecodeScheduler {
    /// A colocated TE's scheduler: seats are taken at prefill admission, requests join from its
    /// own prefill (no transfer queue), and kv-aware balancing does not apply (no load index).
    let colocated: Bool
    /// Decode TEs: finished prefills waiting for free KV here, in arrival order.
    private(set) var transferQueue = Deque<Int>()
    /// Requests whose KV is here, waiting for the next step boundary to join the batch.
    private(set) var joining: [Int] = []
    /// Requests whose first step is the current one (their first token ends it).
    private(set) var firstStep: [Int] = []
    /// Running request ids by the step index at which they finish. Step indices hash as request
    /// ids do (``IDTable``: a counter needs no SipHash; a joiner's finish looked it up twice).
    private(set) var finishing = IDTable<[Int]>()
    /// `finishing`'s steps counted by residue (``finishResidue(_:)``): ``takeFinished(at:)`` skips
    /// the table when its step's count is zero, as at nine steps in ten of the Mooncake hour (a
    /// lookup that finds nothing still hashes the step: 0.5% of the replay).
    private var finishStepsByResidue = [Int32](repeating: 0, count: DecodeScheduler.finishResidues)
    private static let finishResidues = 4_096
    /// Seats taken per DP group: requests that hold a decode slot (running, joining, being
    /// transferred in, or — colocated — admitted to prefill).
    private(set) var slots: [Int]
    /// The running batch's figures per DP group.
    private(set) var batches: DecodeBatchFigures
    /// Kv-aware balancing's order of the groups (decode TEs), built on the first pick; nil = rebuild.
    private(set) var loadIndex: DecodeLoadIndex?
    /// The step cost's slowest group, built on the first step (TEs of many groups).
    private(set) var slowestGroup = SlowestDecodeGroup()
    /// The buffers handed out by the last ``takeJoiners()`` and ``takeFirstTokens()``, swapped back
    /// in on the next call: the lists change hands every step without a new allocation (a copy
    /// emptied in place would allocate a fresh buffer, the old one being still shared). Scratch
    /// space, empty in a copy.
    private var spareJoiners: [Int] = []
    private var spareFirstStep: [Int] = []
    /// The seat records by number (the request keeps the number).
    private var seats = NumberedRecords<DecodeSeat>()

    init(groups count: Int, colocated: Bool) {
        self.colocated = colocated
        slots = Array(repeating: 0, count: count)
        batches = DecodeBatchFigures(groups: count)
    }

    /// A deep, independent copy (for the engine's `fork()`): every stored property is a value.
    func copy() -> DecodeScheduler {
        let copy = DecodeScheduler(groups: 0, colocated: colocated)
        copy.transferQueue = transferQueue
        copy.joining = joining
        copy.firstStep = firstStep
        copy.finishing = finishing
        copy.finishStepsByResidue = finishStepsByResidue
        copy.slots = slots
        copy.batches = batches
        copy.loadIndex = loadIndex
        copy.slowestGroup = slowestGroup
        copy.seats = seats
        return copy
    }

    var groupCount: Int { slots.count }
    /// Running requests over all groups.
    var runningRequests: Int { batches.totalRunning }
    /// Whether anything waits to come in (a transfer not yet pulled, or a joiner).
    var hasIncoming: Bool { !transferQueue.isEmpty || !joining.isEmpty }

    // MARK: Seat records

    /// Seat record number `s`, nil when it is not held.
    func seat(_ s: Int) -> DecodeSeat? { seats.record(s) }

    /// Seat records held (requests given a group here that have not left).
    var seatsHeld: Int { seats.heldCount }

    private func issueSeat(_ id: Int, group g: Int) -> Int { seats.issue(DecodeSeat(request: id, group: g)) }

    /// The request of seat `s` left the engine with its seat settled (a failed request): the
    /// record is given back and returned (nil: not held).
    @discardableResult
    func forgetSeat(_ s: Int) -> DecodeSeat? { seats.giveBack(s) }

    /// A colocated request's prefill ended in group `g` (its seat was counted at admission,
    /// ``reserveSeat(_:)``): it takes its seat record. Returns the record's number.
    func seat(colocated id: Int, group g: Int) -> Int { issueSeat(id, group: g) }

    /// The request of seat `s` produced its first token at `time`.
    func noteFirstToken(seat s: Int, at time: SimTime) {
        if seats.isHeld(s) { seats[held: s].firstTokenAt = time }
    }

    // MARK: Transfer queue and placement (decode TEs)

    /// A finished prefill waits here for free KV.
    func enqueue(_ id: Int) { transferQueue.append(id) }

    /// The request at the head of the transfer queue (the next to pull; a head that does not fit
    /// holds the queue, so long requests are not starved).
    var nextTransfer: Int? { transferQueue.first }

    /// Pulls the head of the transfer queue, `id`, into group `g` if the group has room for its
    /// whole expected length: blocks for the prompt now and a reservation for the expected output
    /// (the request's output length stands in for its `max_tokens`), in one call. On success the
    /// request holds a seat in `g` and leaves the queue, and the seat record's number is returned;
    /// on failure (nil) nothing changed.
    func pull(_ id: Int, into g: Int, promptTokens: Int, totalTokens: Int, te: Int, kv: KVCacheStore) -> Int? {
        assert(transferQueue.first == id, "pulls take the head of the transfer queue")
        guard kv.admitDecode(id, in: GroupRef(te: te, group: g), promptTokens: promptTokens, totalTokens: totalTokens)
        else { return nil }
        slots[g] += 1
        noteLoadChanged(g, te: te, kv: kv)
        transferQueue.removeFirst()
        return issueSeat(id, group: g)
    }

    /// Empties the transfer queue (a TE scaled in sends its waiting transfers elsewhere).
    func takeTransferQueue() -> [Int] {
        let waiting = Array(transferQueue)
        transferQueue.removeAll()
        return waiting
    }

    /// The group `policy` picks for the next request (a pulled transfer or a migrated request)
    /// among the `placeable` ones of TE `te` (this one; it keys per-TE policy state), or nil when none has room.
    func pickGroup(te: Int, kv: KVCacheStore, placeable: PlaceableGroups, batchLimit: Int,
                   policy: inout any DecodeBalancingPolicy) -> Int? {
        policy.pickGroup(in: DecodeGroups(instance: te, batchLimit: batchLimit, kv: kv, placeable: placeable,
                                          slots: slots,
                                          loadIndex: currentLoadIndex(te: te, kv: kv, placeable: placeable,
                                                                      batchLimit: batchLimit)))
    }

    /// The load index, current for TE `te`'s groups, `placeable` and `batchLimit` (nil for a
    /// colocated TE, or when the groups' KV sizes differ: then policies scan). A drain, fault or
    /// scaling change gives `placeable` a new version, and the index is rebuilt here.
    func currentLoadIndex(te: Int, kv: KVCacheStore, placeable: PlaceableGroups, batchLimit: Int) -> DecodeLoadIndex? {
        refreshLoadIndex(te: te, kv: kv, placeable: placeable, batchLimit: batchLimit) ? loadIndex : nil
    }

    /// Rebuilds the load index unless it is current (see ``currentLoadIndex(te:kv:placeable:batchLimit:)``);
    /// whether the TE has one now. Reads the stored index in place (an `if let` copy retained its arrays).
    private func refreshLoadIndex(te: Int, kv: KVCacheStore, placeable: PlaceableGroups, batchLimit: Int) -> Bool {
        guard !colocated else { return false }
        if loadIndex?.fits(groupCount: slots.count, placeable: placeable, batchLimit: batchLimit) == true { return true }
        loadIndex = kv.withGroups(of: te) { DecodeLoadIndex(groups: $0, placeable: placeable, slots: slots, batchLimit: batchLimit) }
        return loadIndex != nil
    }

    /// What ``KVAwareBalancing`` picks, read straight off the current load index: the policy
    /// answers `loadIndex.best` whenever the TE keeps one, and building its view (the index copied
    /// in, the KV store and slots retained, an existential call) cost ~480 instructions per pulled
    /// transfer. `.none` when the TE keeps no index: the policy scans then.
    func indexedKVAwarePick(te: Int, kv: KVCacheStore, placeable: PlaceableGroups, batchLimit: Int) -> Int?? {
        guard refreshLoadIndex(te: te, kv: kv, placeable: placeable, batchLimit: batchLimit) else { return .none }
        let best = loadIndex?.best
        assert(best == KVAwareBalancing.scan(DecodeGroups(instance: te, batchLimit: batchLimit, kv: kv, placeable: placeable,
                                                          slots: slots)),
               "decode load index disagrees with a scan of \(te)'s groups")
        return .some(best)
    }

    /// Group `g` of TE `te` (this scheduler's) changed KV or seats: the load index follows (with
    /// the placeable groups it was built for; a changed answer rebuilds it at the next pick).
    func noteLoadChanged(_ g: Int, te: Int, kv: KVCacheStore) {
        guard loadIndex != nil, g >= 0, g < slots.count else { return }
        loadIndex!.update(g, load: kv.decodeLoad(GroupRef(te: te, group: g)), slots: slots[g])
    }

    /// The load index is rebuilt on the next pick (a test's groups rebuilt under it).
    func invalidateLoadIndex() { loadIndex = nil }

    // MARK: Seats (colocated admission)

    /// A colocated request admitted to prefill in group `g` takes its decode seat now: it keeps
    /// its blocks through decode.
    func reserveSeat(_ g: Int) { slots[g] += 1 }

    /// A colocated request evicted before it decoded gives its seat back.
    func releaseSeat(_ g: Int) { slots[g] -= 1 }

    // MARK: Joining and the step

    /// `id`'s KV is in place (transfer done, or colocated prefill done): it joins the running
    /// batch at the next step boundary.
    func join(_ id: Int) { joining.append(id) }

    /// The joiners of this step boundary, in order; the list empties.
    func takeJoiners() -> [Int] {
        guard !joining.isEmpty else { return [] }
        spareJoiners.removeAll(keepingCapacity: true)
        swap(&joining, &spareJoiners)
        return spareJoiners
    }

    /// The joiner of seat `s` enters its group's running batch at `joinStep`: its first token
    /// ends the current step, and it finishes at `finishStep` (both kept in the seat record).
    func admit(seat s: Int, promptTokens: Int, joinStep: Int, finishStep: Int) {
        let (id, g) = Self.stamp(&seats[held: s], joinStep: joinStep, finishStep: finishStep)
        admit(id, group: g, promptTokens: promptTokens, joinStep: joinStep, finishStep: finishStep)
    }

    /// Writes a joiner's steps (and that it is in the batch) into its seat in one access (three subscripts were three
    /// uniqueness checks of the table) and reads back its request and group.
    private static func stamp(_ seat: inout DecodeSeat, joinStep: Int, finishStep: Int) -> (request: Int, group: Int) {
        seat.joinStep = joinStep
        seat.finishStep = finishStep
        seat.inBatch = true
        return (seat.request, seat.group)
    }

    /// A joiner enters group `g`'s running batch at `joinStep`: its first token ends the current
    /// step, and it finishes at `finishStep`.
    func admit(_ id: Int, group g: Int, promptTokens: Int, joinStep: Int, finishStep: Int) {
        enterBatch(g, promptTokens: promptTokens, joinStep: joinStep)
        scheduleFinish(id, at: finishStep)
        firstStep.append(id)
    }

    /// What a decode step's cost reads of the batch: the slowest group's running requests and
    /// mean context, and all running requests. A scheduler of few groups scans them; others keep
    /// a ``SlowestDecodeGroup`` (built on the first step, kept current as requests join and
    /// leave). Debug builds check it against the scan.
    func stepLoad(step: Int, tokensPerStep: Double, perRequest: Double,
                  perToken: Double) -> (maxRunning: Int, context: Double, total: Int) {
        // A TE of a few groups (a colocated replica has 1–8) scans them: cheaper than keeping the
        // buckets, whose upkeep was 19 M of the Azure colocated:1 replay's 406 M instructions.
        guard batches.count >= SlowestDecodeGroup.fewestGroupsIndexed else {
            return SlowestDecodeGroup.scan(batches, step: step, tokensPerStep: tokensPerStep, perRequest: perRequest,
                                           perToken: perToken)
        }
        slowestGroup.prepare(batches: batches, tokensPerStep: tokensPerStep)
        guard let found = slowestGroup.slowest(step: step, perRequest: perRequest, perToken: perToken) else {
            return SlowestDecodeGroup.scan(batches, step: step, tokensPerStep: tokensPerStep, perRequest: perRequest,
                                           perToken: perToken)
        }
        assert({
            let scan = SlowestDecodeGroup.scan(batches, step: step, tokensPerStep: tokensPerStep, perRequest: perRequest,
                                               perToken: perToken)
            return scan.maxRunning == found.maxRunning && scan.total == found.total
                && scan.context.bitPattern == found.context.bitPattern
        }(), "slowest-group index disagrees with a scan of the groups")
        return found
    }

    /// The requests whose first step just ended (their first token); the list empties.
    func takeFirstTokens() -> [Int] {
        guard !firstStep.isEmpty else { return [] }
        spareFirstStep.removeAll(keepingCapacity: true)
        swap(&firstStep, &spareFirstStep)
        return spareFirstStep
    }

    /// The requests whose last step is `step`, in admission order (nil: none); they stay in the
    /// batch until each is released.
    func takeFinished(at step: Int) -> [Int]? {
        let r = Self.finishResidue(step)
        guard finishStepsByResidue[r] > 0, let due = finishing.removeValue(forKey: step) else { return nil }
        finishStepsByResidue[r] -= 1
        return due
    }

    /// Moves the finish of seat `s`'s running request to step `to` (a stopped or cancelled
    /// client). False (nothing changed) when it is not due at its seat's finish step.
    @discardableResult
    func reschedule(seat s: Int, to: Int) -> Bool {
        guard let seat = seat(s), reschedule(seat.request, from: seat.finishStep, to: to) else { return false }
        seats[held: s].finishStep = to
        return true
    }

    /// Moves running request `id`'s finish from step `from` to step `to` (a stopped or cancelled
    /// client). False when it is not due at `from`.
    @discardableResult
    func reschedule(_ id: Int, from: Int, to: Int) -> Bool {
        guard var due = finishing[from] else { return false }
        due.removeAll { $0 == id }
        if due.isEmpty {
            finishing[from] = nil
            finishStepsByResidue[Self.finishResidue(from)] -= 1
        } else {
            finishing[from] = due
        }
        scheduleFinish(id, at: to)
        return true
    }

    // MARK: Leaving

    /// The finished request of seat `s` leaves: out of the batch, its seat and decode KV freed,
    /// its record given back and returned.
    @discardableResult
    func release(seat s: Int, promptTokens: Int, te: Int, kv: KVCacheStore) -> DecodeSeat {
        let seat = seats.giveBack(s)!
        release(seat.request, group: seat.group, promptTokens: promptTokens, joinStep: seat.joinStep, te: te, kv: kv)
        return seat
    }

    /// The evicted request of seat `s` gives back what it holds in its group (as
    /// ``evict(_:group:admitted:promptTokens:joinStep:te:kv:)``, its place in the batch if its
    /// seat says it joined one) and its record, returned (nil: no seat held).
    @discardableResult
    func evict(seat s: Int, promptTokens: Int, te: Int, kv: KVCacheStore) -> DecodeSeat? {
        guard let seat = seats.giveBack(s) else { return nil }
        evict(seat.request, group: seat.group, admitted: seat.inBatch, promptTokens: promptTokens, joinStep: seat.joinStep,
              te: te, kv: kv)
        return seat
    }

    /// Moves the running request of seat `s` to group `target` of the same TE (as
    /// ``migrate(_:from:to:promptTokens:totalTokens:joinStep:te:kv:)``); its record
    /// follows. False (nothing changed) when it does not fit or holds no seat.
    func migrate(seat s: Int, to target: Int, promptTokens: Int, totalTokens: Int, te: Int, kv: KVCacheStore) -> Bool {
        guard let seat = seat(s),
              migrate(seat.request, from: seat.group, to: target, promptTokens: promptTokens, totalTokens: totalTokens,
                      joinStep: seat.joinStep, te: te, kv: kv)
        else { return false }
        seats[held: s].group = target
        return true
    }

    /// A finished request leaves group `g`: out of the batch, its seat and decode KV freed.
    func release(_ id: Int, group g: Int, promptTokens: Int, joinStep: Int, te: Int, kv: KVCacheStore) {
        leaveBatch(g, promptTokens: promptTokens, joinStep: joinStep)
        slots[g] -= 1
        kv.release(id, in: GroupRef(te: te, group: g))
        noteLoadChanged(g, te: te, kv: kv)
    }

    /// Takes every id of `ids` off the queues (transfer queue, joiners, first step, finishing).
    /// Seats, figures and KV are
    /// freed per request by ``evict(seat:promptTokens:te:kv:)``: the engine settles
    /// the evicted one by one, in id order, each before the next is queued again (a re-queue may
    /// start a TE's step, whose batch allocates KV), so this takes no ``KVCacheStore``.
    func remove(_ ids: Set<Int>) {
        if joining.contains(where: ids.contains) { joining.removeAll(where: ids.contains) }
        firstStep.removeAll(where: ids.contains)
        transferQueue.removeAll(where: ids.contains)
        for key in finishing.keys where finishing[key]!.contains(where: ids.contains) {
            finishing[key]!.removeAll(where: ids.contains)
        }
    }

    /// An evicted request that was pulled into group `g` gives back what it holds there: its
    /// place in the batch when `admitted`, its seat (a pulled transfer, a joiner and a running
    /// request all hold one, as does every colocated request past admission) and its decode KV.
    func evict(_ id: Int, group g: Int, admitted: Bool, promptTokens: Int, joinStep: Int, te: Int, kv: KVCacheStore) {
        let group = GroupRef(te: te, group: g)
        if admitted { leaveBatch(g, promptTokens: promptTokens, joinStep: joinStep) }
        if kv.contains(group, id) || colocated { slots[g] -= 1 }
        kv.release(id, in: group)
        noteLoadChanged(g, te: te, kv: kv)
    }

    /// Moves running request `id` from group `source` to group `target` of the same TE if the
    /// target has room for its whole expected length: KV allocated and reserved there, freed
    /// here, its batch figures and seat moved. False (nothing changed) when it does not fit.
    func migrate(_ id: Int, from source: Int, to target: Int, promptTokens: Int, totalTokens: Int, joinStep: Int,
                 te: Int, kv: KVCacheStore) -> Bool {
        // Admitted as a pulled transfer is (blocks and reservation in one call: the same blocks,
        // reservation and counters as allocating, then reserving).
        guard kv.admitDecode(id, in: GroupRef(te: te, group: target), promptTokens: promptTokens, totalTokens: totalTokens)
        else { return false }
        kv.release(id, in: GroupRef(te: te, group: source))
        leaveBatch(source, promptTokens: promptTokens, joinStep: joinStep)
        slots[source] -= 1
        enterBatch(target, promptTokens: promptTokens, joinStep: joinStep)
        slots[target] += 1
        noteLoadChanged(source, te: te, kv: kv)
        noteLoadChanged(target, te: te, kv: kv)
        return true
    }

    // MARK: Audit

    /// Differences between the indices and the state they index (empty when current); `te` is
    /// this scheduler's TE.
    func problems(te: Int, kv: KVCacheStore, placeable: PlaceableGroups) -> [String] {
        let stale = loadIndex.map { index in kv.withGroups(of: te) { index.problems(against: $0, placeable: placeable, slots: slots) } }
        var problems = (stale ?? []) + slowestGroup.problems(against: batches)
        var counted = [Int32](repeating: 0, count: Self.finishResidues)
        for step in finishing.keys { counted[Self.finishResidue(step)] += 1 }
        if counted != finishStepsByResidue { problems.append("finish steps counted by residue differ from the finishing table") }
        return problems
    }

    // MARK: Internals

    @inline(__always) private static func finishResidue(_ step: Int) -> Int { step & (finishResidues - 1) }

    /// Request `id` finishes at `step` (after those already due then); a new step is counted.
    private func scheduleFinish(_ id: Int, at step: Int) {
        if let slot = finishing.index(forKey: step) {
            finishing[slot: slot].append(id)
        } else {
            // Room for a step's usual finishers at once: grown from one, a saturated superpod's
            // lists (eight ids on average) were reallocated twice each (5 M instructions in 120 s).
            var due: [Int] = []
            due.reserveCapacity(Self.finishersReserved)
            due.append(id)
            // Just looked up and absent: inserted without the subscript's second lookup.
            finishing.insertNew(due, forKey: step)
            finishStepsByResidue[Self.finishResidue(step)] += 1
        }
    }
    private static let finishersReserved = 16

    private func enterBatch(_ g: Int, promptTokens: Int, joinStep: Int) {
        batches.join(g, promptTokens: promptTokens, joinStep: joinStep)
        noteBatchChanged(g)
    }

    private func leaveBatch(_ g: Int, promptTokens: Int, joinStep: Int) {
        batches.leave(g, promptTokens: promptTokens, joinStep: joinStep)
        noteBatchChanged(g)
    }

    private func noteBatchChanged(_ g: Int) {
        guard g >= 0, g < batches.count else { return }
        slowestGroup.update(g, running: batches.running[g], promptSum: batches.promptSum[g],
                            joinStepSum: batches.joinStepSum[g])
    }
}
