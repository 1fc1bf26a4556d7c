import SimKit
import Testing

@testable import ServingEngine

/// ``PrefillScheduler`` through its own API, with its collaborators built by hand (a
/// ``KVCacheStore`` holding one TE's DP groups, a request table): placement by queued plus uncached
/// tokens, chunking, the per-group budget, KV back-pressure, colocated seats, removal that gives
/// back every count and block, and `copy()`.
@Suite(.timeLimit(.minutes(10))) struct PrefillSchedulerTests {
    /// A KV store of one TE (index 0) of `count` groups: 16-token blocks, no pool.
    private func groups(_ count: Int, blocks: Int = 100) -> KVCacheStore {
        .oneTE(groups: count, blocks: blocks, blockTokens: 16)
    }

    private func add(_ requests: inout RequestTable, _ id: Int, prompt: Int, output: Int = 10, keys: [UInt64] = []) {
        requests[id] = RequestState(spec: RequestSpec(id: id, arrival: 0, promptTokens: prompt, outputTokens: output),
                                    chainedKeys: keys)
    }

    /// Request `id`'s ticket, through the number its state keeps.
    private func ticket(_ leader: PrefillScheduler, _ requests: RequestTable, _ id: Int) -> PrefillTicket? {
        requests[id].flatMap { leader.ticket($0.prefillTicket) }
    }

    @Test func placementPicksTheLeastQueuedPlusUncachedTokensOnPlaceableGroups() throws {
        let kv = groups(3)
        var placeable = PlaceableGroups(mask: [false, true, true], version: 1)
        let keys = PrefixHashes.chain([1, 2, 3, 4])
        // Group 2 caches the 64-token prefix: an earlier request's blocks, released after transfer.
        let earlier = kv.allocatePrefill(99, in: GroupRef(te: 0, group: 2), promptTokens: 100, chained: keys,
                                         expectedTotalTokens: 0)
        #expect(earlier != nil)
        kv.release(99, in: GroupRef(te: 0, group: 2))
        let leader = PrefillScheduler(groups: 3)
        var requests = RequestTable()
        add(&requests, 1, prompt: 100)
        add(&requests, 2, prompt: 100, keys: keys)
        add(&requests, 3, prompt: 50)
        add(&requests, 4, prompt: 10)

        // Empty live groups tie: the lowest; the drained group 0 is never picked.
        #expect(leader.place(1, probing: [], te: 0, kv: kv, placeable: placeable, requests: &requests) == 1)
        #expect(ticket(leader, requests, 1) == PrefillTicket(request: 1, group: 1, remaining: 100))
        // The cached prefix makes group 2 cheaper: 0 + 36 against 100 + 100.
        #expect(leader.place(2, probing: keys, te: 0, kv: kv, placeable: placeable, requests: &requests) == 2)
        #expect(ticket(leader, requests, 2)?.remaining == 36 && ticket(leader, requests, 2)?.group == 2)
        // No prefix: the least queued, 36 + 50 against 100 + 50.
        #expect(leader.place(3, probing: [], te: 0, kv: kv, placeable: placeable, requests: &requests) == 2)
        #expect(leader.queuedTokens == [0, 100, 86])
        // Group 2 drains: the next request goes to group 1 although group 2 holds fewer tokens.
        placeable = PlaceableGroups(mask: [false, true, false], version: 2)
        #expect(leader.place(4, probing: [], te: 0, kv: kv, placeable: placeable, requests: &requests) == 1)
        #expect(leader.queues.map(Array.init) == [[], [1, 4], [2, 3]])
        #expect(leader.queuedTokens == [0, 110, 86] && leader.totalQueuedTokens == 196)
        #expect(leader.waiting == 4 && leader.queuedRequests == 4)
        #expect(leader.place(5, probing: [], te: 0, kv: kv, requests: &requests) == nil, "an unknown id is not placed")
    }

    /// With every group placeable and nothing to probe (no prefix keys, or keys no group of the TE
    /// is said to hold) the leader reads only the queued counts: the pick must still be the
    /// probing loop's, the least queued group and the lowest of equals.
    @Test func withNothingToProbeTheFirstLeastQueuedGroupTakesTheRequest() throws {
        let kv = groups(4, blocks: 1_000)
        let leader = PrefillScheduler(groups: 4)
        var requests = RequestTable()
        var queued = [0, 0, 0, 0]
        for (n, prompt) in [100, 40, 70, 40, 30, 200, 10, 10, 140, 5].enumerated() {
            add(&requests, n + 1, prompt: prompt)
            let least = queued.indices.first { queued[$0] == queued.min() }!
            queued[least] += prompt
            #expect(leader.place(n + 1, probing: [], te: 0, kv: kv, placeable: nil, requests: &requests) == least)
        }
        #expect(leader.queuedTokens == queued && leader.totalQueuedTokens == queued.reduce(0, +))
        let keys = PrefixHashes.chain([7, 8, 9])
        add(&requests, 20, prompt: 64, keys: keys)
        let least = queued.indices.first { queued[$0] == queued.min() }!
        #expect(leader.place(20, probing: keys, in: PrefixGroups(holders: 0, base: 0, groups: 4), te: 0, kv: kv,
                             placeable: nil, requests: &requests) == least)
        #expect(ticket(leader, requests, 20)?.remaining == 64, "no hit: the whole prompt is queued")
    }

    @Test func aLongPromptIsPrefilledInChunksOfTheBudget() throws {
        let kv = groups(1, blocks: 200)
        let leader = PrefillScheduler(groups: 1)
        var requests = RequestTable()
        add(&requests, 1, prompt: 150)
        leader.place(1, probing: [], te: 0, kv: kv, requests: &requests)
        var chunks: [Int] = []
        var finished: [PrefillScheduler.Finished] = []
        for step in 0..<3 {
            let plan = leader.formBatch(budget: 64, seatLimit: nil, seats: nil, blockTokens: 16, te: 0, kv: kv,
                                        requests: &requests, now: Double(step))
            chunks.append(plan.slowest.tokens)
            #expect(plan.routedTokens == plan.slowest.tokens && plan.groupsWorking == 1)
            #expect(leader.waiting == 0, "allocated at the first batch")
            #expect(requests[1]?.stage == .prefill && ticket(leader, requests, 1)?.allocated == true)
            #expect(requests[1]?.prefillStartedAt == 0, "prefill started with the first chunk")
            finished = leader.finishBatch(requests: &requests)
            if step < 2 { #expect(finished.isEmpty && leader.queues[0].count == 1) }
        }
        #expect(chunks == [64, 64, 22])
        #expect(finished.map(\.request) == [1] && finished.map(\.group) == [0])
        #expect(leader.queues[0].isEmpty && leader.queuedTokens == [0] && leader.batches.allSatisfy(\.isEmpty))
        #expect(ticket(leader, requests, 1) == PrefillTicket(request: 1, group: 0, remaining: 0, hitTokens: 0, allocated: true))
        // Handed over: the blocks are released (none registered, so all free again).
        #expect(kv[0, 0].contains(requestID: 1))
        let t = try #require(requests[1]).prefillTicket
        leader.release(t, te: 0, kv: kv)
        #expect(kv[0, 0].liveRequests == 0 && kv[0, 0].usedBlocks == 0 && kv[0, 0].audit() == [])
        // The ticket stays readable until the request leaves.
        #expect(leader.ticket(t)?.group == 0 && leader.ticketsHeld == 1)
        #expect(leader.forget(t)?.request == 1 && leader.ticket(t) == nil && leader.ticketsHeld == 0)
        #expect(leader.forget(t) == nil, "a ticket is given back once")
    }

    /// The engine skips forming a batch when nothing is queued and finishing one when it holds no
    /// chunk (most steps of a colocated replay): both calls would change nothing then.
    @Test func queuedAndBatchedTellWhetherFormingOrFinishingABatchDoesAnything() throws {
        let kv = groups(2)
        let leader = PrefillScheduler(groups: 2)
        var requests = RequestTable()
        #expect(!leader.hasQueued && !leader.hasBatch)
        let idle = leader.formBatch(budget: 64, seatLimit: nil, seats: nil, blockTokens: 16, te: 0, kv: kv,
                                    requests: &requests, now: 0)
        #expect(idle.routedTokens == 0 && idle.groupsWorking == 0 && idle.slowest.tokens == 0 && idle.pooledMost == 0)
        #expect(leader.finishBatch(requests: &requests).isEmpty && leader.waiting == 0)

        add(&requests, 1, prompt: 100)
        leader.place(1, probing: [], te: 0, kv: kv, requests: &requests)
        #expect(leader.hasQueued && !leader.hasBatch, "placed on group 0, not batched yet")
        _ = leader.formBatch(budget: 64, seatLimit: nil, seats: nil, blockTokens: 16, te: 0, kv: kv,
                             requests: &requests, now: 1)
        #expect(leader.hasQueued && leader.hasBatch)
        #expect(leader.finishBatch(requests: &requests).isEmpty, "36 tokens left")
        #expect(leader.hasQueued && !leader.hasBatch, "finishing empties the batch")
        _ = leader.formBatch(budget: 64, seatLimit: nil, seats: nil, blockTokens: 16, te: 0, kv: kv,
                             requests: &requests, now: 2)
        #expect(leader.finishBatch(requests: &requests).map(\.request) == [1])
        #expect(!leader.hasQueued && !leader.hasBatch)
        // An abandoned batch holds no chunk either.
        add(&requests, 2, prompt: 10)
        leader.place(2, probing: [], te: 0, kv: kv, requests: &requests)
        _ = leader.formBatch(budget: 64, seatLimit: nil, seats: nil, blockTokens: 16, te: 0, kv: kv,
                             requests: &requests, now: 3)
        leader.abandonBatch()
        #expect(leader.hasQueued && !leader.hasBatch)
    }

    @Test func eachGroupTakesAtMostTheBudgetFromTheFrontOfItsQueue() throws {
        let kv = groups(2)
        let leader = PrefillScheduler(groups: 2)
        var requests = RequestTable()
        for id in 1...5 {
            add(&requests, id, prompt: 40)
            leader.place(id, probing: [], te: 0, kv: kv, requests: &requests)
        }
        #expect(leader.queues.map(Array.init) == [[1, 3, 5], [2, 4]], "equal loads alternate, lowest group first")
        let plan = leader.formBatch(budget: 100, seatLimit: nil, seats: nil, blockTokens: 16, te: 0, kv: kv,
                                    requests: &requests, now: 1)
        #expect(leader.batches[0].map(\.request) == [1, 3, 5] && leader.batches[0].map(\.tokens) == [40, 40, 20])
        #expect(leader.batches[1].map(\.request) == [2, 4] && leader.batches[1].map(\.tokens) == [40, 40])
        #expect(plan.slowest.tokens == 100 && plan.slowest.started == 3 && plan.slowest.promptWeighted == 100 * 40)
        #expect(plan.routedTokens == 180 && plan.groupsWorking == 2 && plan.pooledMost == 0)
        #expect(leader.waiting == 0)
        let finished = leader.finishBatch(requests: &requests)
        #expect(finished.map(\.request) == [1, 3, 2, 4] && finished.map(\.group) == [0, 0, 1, 1])
        #expect(leader.queues.map(Array.init) == [[5], []] && leader.queuedTokens == [20, 0])
    }

    @Test func aPromptWhoseKVDoesNotFitHoldsTheQueue() throws {
        let kv = groups(1, blocks: 10)  // 160 tokens
        let leader = PrefillScheduler(groups: 1)
        var requests = RequestTable()
        add(&requests, 1, prompt: 150)
        add(&requests, 2, prompt: 10)
        add(&requests, 3, prompt: 10)
        for id in 1...3 { leader.place(id, probing: [], te: 0, kv: kv, requests: &requests) }
        _ = leader.formBatch(budget: 1_000, seatLimit: nil, seats: nil, blockTokens: 16, te: 0, kv: kv,
                             requests: &requests, now: 0)
        #expect(leader.batches[0].map(\.request) == [1], "request 2 finds no block and holds request 3 back")
        #expect(leader.waiting == 2 && ticket(leader, requests, 2)?.allocated == false)
    }

    @Test func aColocatedRequestStartsOnlyWithADecodeSeatAndItsWholeLength() throws {
        let kv = groups(1)
        let leader = PrefillScheduler(groups: 1)
        let seats = DecodeScheduler(groups: 1, colocated: true)
        var requests = RequestTable()
        add(&requests, 1, prompt: 20, output: 30)
        add(&requests, 2, prompt: 20, output: 30)
        for id in 1...2 { leader.place(id, probing: [], te: 0, kv: kv, requests: &requests) }
        _ = leader.formBatch(budget: 100, seatLimit: 1, seats: seats, blockTokens: 16, te: 0, kv: kv,
                             requests: &requests, now: 0)
        #expect(leader.batches[0].map(\.request) == [1] && seats.slots[0] == 1)
        #expect(kv[0, 0].reservedBlocks > 0, "the expected output is reserved with the prompt")
        #expect(leader.waiting == 1)
        // Evicted while prefilling: the seat, the count and the blocks come back.
        leader.remove([1])
        let evicted = requests.removeValue(forKey: 1)
        leader.withdraw(try #require(evicted), seats: seats, te: 0, kv: kv)
        #expect(seats.slots[0] == 0 && kv[0, 0].liveRequests == 0 && kv[0, 0].reservedBlocks == 0)
        #expect(leader.batches.allSatisfy(\.isEmpty) && leader.queues.map(Array.init) == [[2]] && leader.queuedTokens == [20])
    }

    @Test func removeStripsQueuesAndBatchesAndWithdrawGivesBackEveryCountAndBlock() throws {
        let kv = groups(2, blocks: 20)
        let leader = PrefillScheduler(groups: 2)
        var requests = RequestTable()
        for id in 1...6 {
            add(&requests, id, prompt: 100)
            leader.place(id, probing: [], te: 0, kv: kv, requests: &requests)
        }
        // Budget 150 a group: requests 1 and 3 start on group 0 (2 and 4 on group 1); the budget ends before 5 and 6.
        _ = leader.formBatch(budget: 150, seatLimit: nil, seats: nil, blockTokens: 16, te: 0, kv: kv,
                             requests: &requests, now: 0)
        #expect(leader.queues.map(Array.init) == [[1, 3, 5], [2, 4, 6]] && leader.waiting == 2)
        let evicted: Set = [3, 5, 2]
        leader.remove(evicted)
        #expect(leader.queues.map(Array.init) == [[1], [4, 6]])
        #expect(leader.batches[0].map(\.request) == [1] && leader.batches[1].map(\.request) == [4])
        for id in evicted.sorted() {
            let request = requests.removeValue(forKey: id)
            leader.withdraw(try #require(request), seats: nil, te: 0, kv: kv)
        }
        #expect(leader.queuedTokens == [100, 200] && leader.waiting == 1, "only request 6 waits unallocated")
        #expect(leader.totalQueuedTokens == 300, "the running total follows the groups' withdrawals")
        #expect(kv[0, 0].liveRequests == 1 && kv[0, 1].liveRequests == 1)
        for id in [1, 4, 6] {
            leader.remove([id])
            let request = requests.removeValue(forKey: id)
            leader.withdraw(try #require(request), seats: nil, te: 0, kv: kv)
        }
        #expect(leader.queuedTokens == [0, 0] && leader.waiting == 0 && leader.queuedRequests == 0)
        #expect(leader.totalQueuedTokens == 0)
        for g in 0..<kv.groupCount(of: 0) {
            #expect(kv[0, g].liveRequests == 0 && kv[0, g].usedBlocks == 0 && kv[0, g].freeBlocks == 20)
            #expect(kv[0, g].audit() == [])
        }
    }

    @Test func theQueuedTotalIsTheSumOfTheGroupsThroughPlacementAllocationChunksAndCopies() throws {
        let kv = groups(3, blocks: 40)
        let keys = PrefixHashes.chain([7, 8, 9])
        // Group 1 caches the 48-token prefix, so an allocation there changes the placement estimate.
        _ = kv.allocatePrefill(99, in: GroupRef(te: 0, group: 1), promptTokens: 60, chained: keys, expectedTotalTokens: 0)
        kv.release(99, in: GroupRef(te: 0, group: 1))
        let leader = PrefillScheduler(groups: 3)
        var requests = RequestTable()
        var rng = RandomStream(seed: 12)
        var next = 1
        for step in 0..<40 {
            for _ in 0..<rng.int(in: 0...3) {
                add(&requests, next, prompt: rng.int(in: 1...200), keys: rng.uniform() < 0.5 ? keys : [])
                leader.place(next, probing: requests[next]!.chainedKeys, te: 0, kv: kv, placeable: nil, requests: &requests)
                next += 1
            }
            _ = leader.formBatch(budget: 64, seatLimit: nil, seats: nil, blockTokens: 16, te: 0, kv: kv,
                                 requests: &requests, now: Double(step))
            #expect(leader.totalQueuedTokens == leader.queuedTokens.reduce(0, +))
            for done in leader.finishBatch(requests: &requests) {
                leader.release(requests[done.request]!.prefillTicket, te: 0, kv: kv)
                leader.forget(requests.removeValue(forKey: done.request)!.prefillTicket)
            }
            #expect(leader.totalQueuedTokens == leader.queuedTokens.reduce(0, +))
            #expect(leader.copy().totalQueuedTokens == leader.totalQueuedTokens)
        }
        #expect(next > 40, "the walk placed requests")
    }

    @Test func aCopyIsIndependent() throws {
        let kv = groups(2)
        let leader = PrefillScheduler(groups: 2)
        var requests = RequestTable()
        for id in 1...3 { add(&requests, id, prompt: 40) }
        leader.place(1, probing: [], te: 0, kv: kv, requests: &requests)
        _ = leader.formBatch(budget: 30, seatLimit: nil, seats: nil, blockTokens: 16, te: 0, kv: kv,
                             requests: &requests, now: 0)
        let copy = leader.copy()
        #expect(copy !== leader)
        #expect(copy.queues == leader.queues && copy.queuedTokens == leader.queuedTokens && copy.waiting == leader.waiting)
        #expect(copy.batches.map { $0.map(\.request) } == [[1], []])
        // The original moves on; the copy keeps its state.
        var originalRequests = requests
        leader.place(2, probing: [], te: 0, kv: kv, requests: &originalRequests)
        _ = leader.finishBatch(requests: &originalRequests)
        #expect(copy.queues.map(Array.init) == [[1], []] && copy.queuedTokens == [40, 0] && copy.waiting == 0)
        #expect(copy.batches[0].map(\.tokens) == [30])
        // And the copy moves on alone.
        copy.place(3, probing: [], te: 0, kv: kv, requests: &requests)
        #expect(copy.queues.map(Array.init) == [[1], [3]] && copy.waiting == 1)
        #expect(leader.queues.map(Array.init) == [[1], [2]] && leader.queuedTokens == [10, 40] && leader.batches.allSatisfy(\.isEmpty))
    }

    /// Tickets through the scheduler's own API: issued at placement, filled at allocation, kept
    /// after the prefill, given back by withdraw or forget (numbers reused, last freed first), and
    /// copied with the scheduler.
    @Test func ticketsAreIssuedFilledGivenBackAndCopied() throws {
        let kv = groups(2)
        let leader = PrefillScheduler(groups: 2)
        var requests = RequestTable()
        for id in 1...3 {
            add(&requests, id, prompt: 40)
            leader.place(id, probing: [], te: 0, kv: kv, requests: &requests)
        }
        #expect((1...3).map { requests[$0]!.prefillTicket } == [0, 1, 2] && leader.ticketsHeld == 3)
        #expect((1...3).compactMap { ticket(leader, requests, $0)?.group } == [0, 1, 0])
        _ = leader.formBatch(budget: 50, seatLimit: nil, seats: nil, blockTokens: 16, te: 0, kv: kv,
                             requests: &requests, now: 0)
        #expect(ticket(leader, requests, 1) == PrefillTicket(request: 1, group: 0, remaining: 40, allocated: true))
        #expect(ticket(leader, requests, 3) == PrefillTicket(request: 3, group: 0, remaining: 40, allocated: true),
                "started with the last 10 tokens of the budget")
        #expect(leader.batches[0].map(\.ticket) == [0, 2])
        let copy = leader.copy()
        // The original applies its batch (1 and 2 are done) and loses request 3; the copy's tickets do not move.
        #expect(leader.finishBatch(requests: &requests).map(\.request) == [1, 2])
        #expect(ticket(leader, requests, 1)?.remaining == 0 && ticket(leader, requests, 3)?.remaining == 30)
        leader.remove([3])
        let removed = requests.removeValue(forKey: 3)
        let three = try #require(removed)
        #expect(leader.withdraw(three, seats: nil, te: 0, kv: kv)
                == PrefillTicket(request: 3, group: 0, remaining: 30, allocated: true))
        #expect(leader.ticket(2) == nil && leader.ticketsHeld == 2 && leader.queuedTokens == [0, 0])
        #expect(leader.withdraw(three, seats: nil, te: 0, kv: kv) == nil, "withdrawn once")
        #expect(copy.ticket(0)?.remaining == 40 && copy.ticket(2) == PrefillTicket(request: 3, group: 0, remaining: 40, allocated: true))
        #expect(copy.ticketsHeld == 3 && copy.queuedTokens == [80, 40])
        // A new placement takes the freed number; the copy keeps its own.
        add(&requests, 4, prompt: 16)
        leader.place(4, probing: [], te: 0, kv: kv, requests: &requests)
        #expect(requests[4]!.prefillTicket == 2 && leader.ticket(2)?.request == 4)
        #expect(copy.ticket(2)?.request == 3)
    }
}

extension PrefillScheduler {
    /// A placement where every group is placeable (the tests that are not about eligibility).
    @discardableResult
    func place(_ id: Int, probing chainedKeys: [UInt64], te: Int, kv: KVCacheStore, requests: inout RequestTable) -> Int? {
        place(id, probing: chainedKeys, te: te, kv: kv, placeable: .all(kv.groupCount(of: te)), requests: &requests)
    }
}
