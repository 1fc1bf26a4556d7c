import PodModel
import SimKit
import Testing

@testable import ServingEngine

/// The decode side of a TE through its own API: requests queued, pulled into groups, joined,
/// admitted, finished, evicted and migrated, with the seats, batch figures, KV and indices checked
/// against what the requests hold.
// The limit only guards against a hang (the suite takes about a second): the clock also runs while a
// test waits for a thread, and on a loaded 2-core machine three parallel suites kept these waiting
// over 5 minutes.
@Suite(.timeLimit(.minutes(20))) struct DecodeSchedulerTests {
    static let blockTokens = 16
    /// The KV store the scheduler allocates and frees through (no pool), holding the groups of
    /// one TE (index 0).
    static func store(groups count: Int, blocks: Int = 64) -> KVCacheStore {
        .oneTE(groups: count, blocks: blocks, blockTokens: blockTokens)
    }

    /// Pulls the head of the queue into the group kv-aware picks; the group, or nil when it did not fit.
    static func pullHead(_ decode: DecodeScheduler, _ kv: KVCacheStore, prompt: Int, total: Int,
                         batchLimit: Int = 8, placeable: PlaceableGroups? = nil) -> Int? {
        var policy: any DecodeBalancingPolicy = KVAwareBalancing()
        guard let id = decode.nextTransfer,
              let g = decode.pickGroup(te: 0, kv: kv, placeable: placeable ?? .all(decode.groupCount),
                                       batchLimit: batchLimit, policy: &policy),
              decode.pull(id, into: g, promptTokens: prompt, totalTokens: total, te: 0, kv: kv) != nil
        else { return nil }
        return g
    }

    @Test func aRequestsLifeConservesSeatsSumsAndKV() throws {
        let decode = DecodeScheduler(groups: 4, colocated: false)
        let kv = Self.store(groups: 4)
        var placed: [Int: Int] = [:]
        for id in 1...6 { decode.enqueue(id) }
        #expect(decode.hasIncoming && Array(decode.transferQueue) == Array(1...6))
        for id in 1...6 {
            placed[id] = try #require(Self.pullHead(decode, kv, prompt: 100 * id, total: 100 * id + 50))
        }
        #expect(decode.transferQueue.isEmpty)
        #expect(decode.slots.reduce(0, +) == 6 && kv.groupManagers(of: 0).reduce(0) { $0 + $1.liveRequests } == 6)
        #expect(Set(placed.values).count == 4, "kv-aware spreads them over every group")
        // Transfers land; at the step boundary (step 10) all join.
        for id in [3, 1, 2, 6, 5, 4] { decode.join(id) }
        let joiners = decode.takeJoiners()
        #expect(joiners == [3, 1, 2, 6, 5, 4] && decode.joining.isEmpty && decode.takeJoiners().isEmpty)
        for id in joiners {
            decode.admit(id, group: placed[id]!, promptTokens: 100 * id, joinStep: 10, finishStep: 10 + id)
        }
        #expect(decode.runningRequests == 6 && decode.batches.promptSum.reduce(0, +) == 2_100)
        #expect(decode.batches.joinStepSum.reduce(0, +) == 60)
        let load = decode.stepLoad(step: 11, tokensPerStep: 1.5, perRequest: 1e-4, perToken: 1e-7)
        #expect(load == SlowestDecodeGroup.scan(decode.batches, step: 11, tokensPerStep: 1.5, perRequest: 1e-4, perToken: 1e-7))
        #expect(load.total == 6)
        #expect(decode.takeFirstTokens() == joiners && decode.firstStep.isEmpty)
        // Each finishes at its step and gives back its seat and KV.
        for step in 11...16 {
            let done = try #require(decode.takeFinished(at: step))
            #expect(done == [step - 10])
            for id in done {
                decode.release(id, group: placed[id]!, promptTokens: 100 * id, joinStep: 10, te: 0, kv: kv)
            }
            #expect(decode.runningRequests == 16 - step)
            #expect(decode.problems(te: 0, kv: kv) == [])
        }
        #expect(decode.takeFinished(at: 17) == nil && decode.finishing.isEmpty)
        #expect(decode.slots == [0, 0, 0, 0] && decode.batches == DecodeBatchFigures(groups: 4))
        #expect(kv.groupManagers(of: 0).allSatisfy { $0.liveRequests == 0 && $0.reservedBlocks == 0 })
    }

    /// Finish steps that share a residue of the skip filter (4,096 apart), moved by reschedule,
    /// emptied by remove: each step still hands back exactly its requests (an emptied one an
    /// empty list, not nil), and the filter's counts stay those of the table.
    @Test func finishStepsSharingAResidueAreEachFound() throws {
        let decode = DecodeScheduler(groups: 1, colocated: false)
        let base = 5, far = 5 + 4_096, farther = 5 + 2 * 4_096
        decode.admit(1, group: 0, promptTokens: 10, joinStep: 0, finishStep: far)
        decode.admit(2, group: 0, promptTokens: 10, joinStep: 0, finishStep: base)
        decode.admit(3, group: 0, promptTokens: 10, joinStep: 0, finishStep: farther)
        decode.admit(4, group: 0, promptTokens: 10, joinStep: 0, finishStep: 7)
        #expect(decode.problems(te: 0, kv: Self.store(groups: 1)) == [])
        #expect(decode.takeFinished(at: 6) == nil && decode.takeFinished(at: 6 + 4_096) == nil)
        #expect(decode.reschedule(3, from: farther, to: far) && decode.finishing[far] == [1, 3])
        #expect(decode.problems(te: 0, kv: Self.store(groups: 1)) == [])
        decode.remove([4])
        #expect(decode.takeFinished(at: 7) == [], "an emptied step is still due")
        #expect(decode.takeFinished(at: base) == [2] && decode.takeFinished(at: base) == nil)
        #expect(decode.takeFinished(at: farther) == nil)
        #expect(decode.copy().takeFinished(at: far) == [1, 3], "a copy keeps the counts")
        #expect(decode.takeFinished(at: far) == [1, 3] && decode.finishing.isEmpty)
        #expect(decode.problems(te: 0, kv: Self.store(groups: 1)) == [])
    }

    @Test func aHeadThatDoesNotFitHoldsTheQueue() throws {
        let decode = DecodeScheduler(groups: 2, colocated: false)
        let kv = Self.store(groups: 2, blocks: 8)   // 128 tokens a group
        decode.enqueue(1)
        decode.enqueue(2)
        #expect(Self.pullHead(decode, kv, prompt: 100, total: 200) == nil, "needs 13 blocks of 8")
        #expect(Array(decode.transferQueue) == [1, 2] && decode.slots == [0, 0])
        #expect(kv.groupManagers(of: 0).allSatisfy { $0.liveRequests == 0 })
        // The batch limit holds it too: both groups full of seats.
        let full = DecodeScheduler(groups: 2, colocated: false)
        let roomy = Self.store(groups: 2)
        for id in 1...3 { full.enqueue(id) }
        #expect(Self.pullHead(full, roomy, prompt: 16, total: 32, batchLimit: 1) == 0)
        #expect(Self.pullHead(full, roomy, prompt: 16, total: 32, batchLimit: 1) == 1)
        #expect(Self.pullHead(full, roomy, prompt: 16, total: 32, batchLimit: 1) == nil)
        #expect(full.nextTransfer == 3 && full.slots == [1, 1])
        #expect(full.takeTransferQueue() == [3] && full.nextTransfer == nil)
    }

    @Test func migrateMovesSeatFiguresAndKV() throws {
        let decode = DecodeScheduler(groups: 3, colocated: false)
        let kv = Self.store(groups: 3, blocks: 16)
        decode.enqueue(7)
        let g = try #require(Self.pullHead(decode, kv, prompt: 64, total: 96))
        decode.join(7)
        for id in decode.takeJoiners() { decode.admit(id, group: g, promptTokens: 64, joinStep: 4, finishStep: 20) }
        let target = (g + 1) % 3
        #expect(decode.migrate(7, from: g, to: target, promptTokens: 64, totalTokens: 96, joinStep: 4,
                               te: 0, kv: kv))
        #expect(decode.slots[g] == 0 && decode.slots[target] == 1)
        #expect(decode.batches.running[g] == 0 && decode.batches.running[target] == 1)
        #expect(decode.batches.promptSum[target] == 64 && decode.batches.joinStepSum[target] == 4)
        #expect(!kv[0, g].contains(requestID: 7) && kv[0, target].contains(requestID: 7))
        #expect(kv[0, target].usedBlocks + kv[0, target].reservedBlocks == 6, "4 prompt blocks + 2 reserved")
        #expect(decode.finishing[20] == [7], "its finish step does not change")
        // No room on the other group: nothing moves.
        let other = (target + 1) % 3
        #expect(kv.admitDecode(99, in: GroupRef(te: 0, group: other), promptTokens: 15 * Self.blockTokens,
                               totalTokens: 15 * Self.blockTokens))
        decode.noteLoadChanged(other, te: 0, kv: kv)
        #expect(!decode.migrate(7, from: target, to: other, promptTokens: 64, totalTokens: 96, joinStep: 4,
                                te: 0, kv: kv))
        #expect(decode.slots[target] == 1 && decode.batches.running[target] == 1 && kv[0, target].contains(requestID: 7))
        #expect(decode.problems(te: 0, kv: kv) == [])
    }

    @Test func removeAndEvictTakeRequestsOffEveryQueue() throws {
        let decode = DecodeScheduler(groups: 2, colocated: false)
        let kv = Self.store(groups: 2)
        for id in 1...5 { decode.enqueue(id) }
        var placed: [Int: Int] = [:]
        for id in 1...4 { placed[id] = try #require(Self.pullHead(decode, kv, prompt: 32, total: 48)) }
        // 1, 2 run (2 in its first step); 3 waits to join; 4 is pulled (its transfer runs); 5 is queued.
        decode.join(1)
        for id in decode.takeJoiners() { decode.admit(id, group: placed[id]!, promptTokens: 32, joinStep: 0, finishStep: 9) }
        _ = decode.takeFirstTokens()
        decode.join(2)
        for id in decode.takeJoiners() { decode.admit(id, group: placed[id]!, promptTokens: 32, joinStep: 1, finishStep: 9) }
        decode.join(3)
        decode.remove([2, 3, 4, 5])
        #expect(decode.transferQueue.isEmpty && decode.joining.isEmpty && decode.firstStep.isEmpty)
        #expect(decode.finishing[9] == [1])
        decode.evict(2, group: placed[2]!, admitted: true, promptTokens: 32, joinStep: 1, te: 0, kv: kv)
        decode.evict(3, group: placed[3]!, admitted: false, promptTokens: 32, joinStep: 0, te: 0, kv: kv)
        decode.evict(4, group: placed[4]!, admitted: false, promptTokens: 32, joinStep: 0, te: 0, kv: kv)
        #expect(decode.slots.reduce(0, +) == 1 && decode.runningRequests == 1)
        #expect(decode.batches.promptSum.reduce(0, +) == 32 && decode.batches.joinStepSum.reduce(0, +) == 0)
        #expect(kv.groupManagers(of: 0).reduce(0) { $0 + $1.liveRequests } == 1 && kv[0, placed[1]!].contains(requestID: 1))
        // A request evicted twice (its KV already gone) gives back no second seat.
        decode.evict(4, group: placed[4]!, admitted: false, promptTokens: 32, joinStep: 0, te: 0, kv: kv)
        #expect(decode.slots.reduce(0, +) == 1)
        #expect(decode.problems(te: 0, kv: kv) == [])
    }

    /// Eviction frees through the store exactly the evicted requests' blocks and reservations
    /// and leaves the others'; removing or evicting an unknown request changes nothing.
    @Test func evictionFreesExactlyTheEvictedRequestsKV() throws {
        let decode = DecodeScheduler(groups: 1, colocated: false)
        let kv = Self.store(groups: 1, blocks: 64)
        for id in 1...3 { decode.enqueue(id) }
        // 40-token prompts (3 blocks each) expected to reach 80 tokens (2 blocks reserved each).
        var seats: [Int: Int] = [:]
        for id in 1...3 {
            seats[id] = try #require(decode.pull(id, into: 0, promptTokens: 40, totalTokens: 80, te: 0, kv: kv))
        }
        #expect(kv[0, 0].freeBlocks == 64 - 9 && kv[0, 0].reservedBlocks == 6)
        decode.remove([42])
        #expect(decode.evict(seat: 99, promptTokens: 40, te: 0, kv: kv) == nil)
        #expect(kv[0, 0].freeBlocks == 55 && decode.slots == [3] && decode.seatsHeld == 3)
        decode.remove([2])
        let evicted = try #require(decode.evict(seat: seats[2]!, promptTokens: 40, te: 0, kv: kv))
        #expect(evicted.request == 2)
        #expect(kv[0, 0].freeBlocks == 58 && kv[0, 0].reservedBlocks == 4 && decode.slots == [2])
        #expect(!kv[0, 0].contains(requestID: 2) && kv[0, 0].contains(requestID: 1)
            && kv[0, 0].contains(requestID: 3))
        // One in the running batch: its seat takes it out of the batch figures too.
        decode.join(1)
        _ = decode.takeJoiners()
        decode.admit(seat: seats[1]!, promptTokens: 40, joinStep: 5, finishStep: 30)
        #expect(decode.runningRequests == 1 && decode.batches.promptSum == [40])
        decode.remove([1])
        _ = try #require(decode.evict(seat: seats[1]!, promptTokens: 40, te: 0, kv: kv))
        #expect(decode.runningRequests == 0 && decode.batches.promptSum == [0] && decode.batches.joinStepSum == [0])
        #expect(kv[0, 0].freeBlocks == 61 && decode.slots == [1] && kv[0, 0].contains(requestID: 3))
        #expect(decode.problems(te: 0, kv: kv) == [])
    }

    @Test func aColocatedSchedulerSeatsAtAdmissionAndKeepsNoLoadIndex() {
        let decode = DecodeScheduler(groups: 2, colocated: true)
        let kv = Self.store(groups: 2)
        decode.reserveSeat(1)
        #expect(decode.slots == [0, 1])
        #expect(decode.currentLoadIndex(te: 0, kv: kv, placeable: .all(2), batchLimit: 4) == nil)
        // Evicted while its KV is the prefill side's: the seat still goes back.
        decode.evict(5, group: 1, admitted: false, promptTokens: 10, joinStep: 0, te: 0, kv: kv)
        #expect(decode.slots == [0, 0])
        decode.reserveSeat(0)
        decode.releaseSeat(0)
        #expect(decode.slots == [0, 0])
    }

    /// The finishing table (step → running ids) as a dictionary, to compare with a literal.
    static func finishing(_ decode: DecodeScheduler) -> [Int: [Int]] {
        Dictionary(uniqueKeysWithValues: decode.finishing.map { ($0.key, $0.value) })
    }

    @Test func rescheduleMovesAFinish() {
        let decode = DecodeScheduler(groups: 1, colocated: true)
        for id in [1, 2] {
            decode.reserveSeat(0)
            decode.join(id)
        }
        for id in decode.takeJoiners() { decode.admit(id, group: 0, promptTokens: 8, joinStep: 0, finishStep: 30) }
        #expect(decode.reschedule(2, from: 30, to: 5))
        #expect(Self.finishing(decode) == [30: [1], 5: [2]])
        #expect(decode.reschedule(1, from: 30, to: 5) && Self.finishing(decode) == [5: [2, 1]], "an emptied step is dropped")
        #expect(!decode.reschedule(1, from: 30, to: 6))
    }

    @Test func aCopyIsIndependent() throws {
        let decode = DecodeScheduler(groups: 16, colocated: false)
        let kv = Self.store(groups: 16)
        for id in 1...20 { decode.enqueue(id) }
        for _ in 1...10 { _ = try #require(Self.pullHead(decode, kv, prompt: 40, total: 80)) }
        for id in 1...10 { decode.join(id) }
        for id in decode.takeJoiners() {
            decode.admit(id, group: Self.groupOf(id, kv), promptTokens: 40, joinStep: 2, finishStep: 2 + id)
        }
        _ = decode.stepLoad(step: 3, tokensPerStep: 1.8, perRequest: 1e-4, perToken: 1e-7)   // builds the step index
        let copy = decode.copy()
        let before = Self.state(copy)
        #expect(before == Self.state(decode))
        // The original moves on; the copy does not notice.
        _ = Self.pullHead(decode, kv, prompt: 40, total: 80)
        decode.join(11)
        _ = decode.takeJoiners()
        _ = decode.takeFirstTokens()
        for id in decode.takeFinished(at: 3) ?? [] {
            decode.release(id, group: Self.groupOf(id, kv), promptTokens: 40, joinStep: 2, te: 0, kv: kv)
        }
        decode.invalidateLoadIndex()
        #expect(Self.state(copy) == before)
        #expect(Self.state(decode) != before)
        #expect(copy.slowestGroup.isBuilt && copy.loadIndex != nil)
    }

    /// Seat records through the scheduler's own API: issued by a pull (or a colocated prefill's
    /// end), filled at admission and first token, moved by reschedule and migrate, given back by
    /// release or evict (numbers reused, last freed first), and copied with the scheduler.
    @Test func seatRecordsFollowTheirRequests() throws {
        let decode = DecodeScheduler(groups: 2, colocated: false)
        let kv = Self.store(groups: 2)
        for id in [7, 8, 9] { decode.enqueue(id) }
        let seven = try #require(decode.pull(7, into: 0, promptTokens: 32, totalTokens: 64, te: 0, kv: kv))
        let eight = try #require(decode.pull(8, into: 1, promptTokens: 32, totalTokens: 64, te: 0, kv: kv))
        #expect((seven, eight) == (0, 1) && decode.seatsHeld == 2)
        #expect(decode.seat(seven) == DecodeSeat(request: 7, group: 0) && decode.seat(5) == nil && decode.seat(-1) == nil)
        // Too big for group 0: no seat, nothing changed.
        #expect(decode.pull(9, into: 0, promptTokens: 2_000, totalTokens: 2_064, te: 0, kv: kv) == nil)
        #expect(decode.seatsHeld == 2 && decode.nextTransfer == 9)
        for id in [7, 8] { decode.join(id) }
        _ = decode.takeJoiners()
        #expect(decode.seat(seven)?.inBatch == false)
        decode.admit(seat: seven, promptTokens: 32, joinStep: 3, finishStep: 40)
        decode.admit(seat: eight, promptTokens: 32, joinStep: 3, finishStep: 12)
        #expect(decode.seat(seven)?.inBatch == true && decode.seat(eight)?.inBatch == true)
        #expect(Self.finishing(decode) == [40: [7], 12: [8]] && decode.batches.running == [1, 1])
        decode.noteFirstToken(seat: seven, at: 1.5)
        #expect(decode.seat(seven)?.joinStep == 3 && decode.seat(seven)?.finishStep == 40 && decode.seat(seven)?.firstTokenAt == 1.5)
        #expect(decode.seat(eight)?.firstTokenAt == nil)
        let copy = decode.copy()
        // Rescheduled and migrated: the record follows the batch.
        #expect(decode.reschedule(seat: seven, to: 20) && decode.seat(seven)?.finishStep == 20 && decode.finishing[20] == [7])
        #expect(decode.migrate(seat: seven, to: 1, promptTokens: 32, totalTokens: 64, te: 0, kv: kv))
        #expect(decode.seat(seven)?.group == 1 && decode.slots == [0, 2] && kv[0, 1].contains(requestID: 7))
        // Released and evicted: the records come back with what they said, the seats and KV are freed.
        let done = decode.release(seat: eight, promptTokens: 32, te: 0, kv: kv)
        #expect(done.request == 8 && done.group == 1 && done.finishStep == 12 && decode.seat(eight) == nil)
        decode.remove([7])
        let evicted = try #require(decode.evict(seat: seven, promptTokens: 32, te: 0, kv: kv))
        #expect(evicted.group == 1 && evicted.firstTokenAt == 1.5 && evicted.inBatch)
        #expect(decode.evict(seat: seven, promptTokens: 32, te: 0, kv: kv) == nil)
        #expect(decode.seatsHeld == 0 && decode.slots == [0, 0] && decode.runningRequests == 0)
        #expect(kv.groupManagers(of: 0).allSatisfy { $0.liveRequests == 0 } && decode.problems(te: 0, kv: kv) == [])
        // The copy kept its seats as they were; a colocated seat takes the last freed number.
        #expect(copy.seatsHeld == 2 && copy.seat(seven)?.group == 0 && copy.seat(seven)?.finishStep == 40)
        #expect(copy.seat(eight)?.request == 8)
        #expect(decode.seat(colocated: 11, group: 0) == seven && decode.seat(seven) == DecodeSeat(request: 11, group: 0))
        #expect(copy.seat(seven)?.request == 7)
    }

    /// The group whose KV holds `id`.
    static func groupOf(_ id: Int, _ kv: KVCacheStore) -> Int {
        kv.groupManagers(of: 0).firstIndex { $0.contains(requestID: id) } ?? 0
    }

    static func state(_ d: DecodeScheduler) -> String {
        "\(Array(d.transferQueue)) \(d.joining) \(d.firstStep) \(d.finishing.sorted { $0.key < $1.key }.map { "\($0.key):\($0.value)" }) "
            + "\(d.slots) \(d.batches) \(d.slowestGroup.totalRunning) \(d.loadIndex?.best ?? -1)"
    }

    /// Random pulls, joins, finishes, evictions and migrations: after each, kv-aware's pick through
    /// the scheduler's index equals the scan's, round-robin picks only eligible groups, the step
    /// load equals the scan of the figures, and the audit finds nothing.
    @Test(arguments: [3, 16, 40])
    func indicesAgreeWithAScan(groupCount: Int) throws {
        let decode = DecodeScheduler(groups: groupCount, colocated: false)
        let kv = Self.store(groups: groupCount, blocks: 48)
        var random = RandomStream(seed: UInt64(groupCount))
        var roundRobin: any DecodeBalancingPolicy = RoundRobinBalancing()
        var running: [Int: (group: Int, prompt: Int, joinStep: Int)] = [:]
        var pulled: [Int: (group: Int, prompt: Int)] = [:]
        var nextID = 0, step = 0
        let batchLimit = 4
        // Which groups take work; each change is a new answer (version), as the cluster manager gives.
        var placeable = PlaceableGroups.all(groupCount)
        for _ in 0..<1_500 {
            switch Int(random.uniform() * 5) {
            case 0, 1:
                nextID += 1
                decode.enqueue(nextID)
                let prompt = 16 + Int(random.uniform() * 200)
                if let g = Self.pullHead(decode, kv, prompt: prompt, total: prompt + 64, batchLimit: batchLimit,
                                         placeable: placeable) {
                    pulled[nextID] = (g, prompt)
                } else {
                    decode.remove([nextID])
                }
            case 2:
                guard let id = pulled.keys.min() else { continue }
                let p = pulled.removeValue(forKey: id)!
                decode.join(id)
                for joiner in decode.takeJoiners() {
                    decode.admit(joiner, group: p.group, promptTokens: p.prompt, joinStep: step, finishStep: step + 1)
                }
                running[id] = (p.group, p.prompt, step)
            case 3:
                guard let id = running.keys.sorted().first else { continue }
                let r = running.removeValue(forKey: id)!
                if random.uniform() < 0.5 {
                    decode.remove([id])
                    decode.evict(id, group: r.group, admitted: true, promptTokens: r.prompt, joinStep: r.joinStep,
                            te: 0, kv: kv)
                } else {
                    var policy: any DecodeBalancingPolicy = KVAwareBalancing()
                    if let target = decode.pickGroup(te: 0, kv: kv, placeable: placeable, batchLimit: batchLimit,
                                                     policy: &policy),
                       target != r.group,
                       decode.migrate(id, from: r.group, to: target, promptTokens: r.prompt, totalTokens: r.prompt + 64,
                                      joinStep: r.joinStep, te: 0, kv: kv) {
                        running[id] = (target, r.prompt, r.joinStep)
                    } else {
                        running[id] = r
                    }
                }
            default:
                let g = Int(random.uniform() * Double(groupCount)) % groupCount
                var mask = placeable.mask
                mask[g].toggle()
                placeable = PlaceableGroups(mask: mask, version: placeable.version + 1)
                step += 1
            }
            var kvAware: any DecodeBalancingPolicy = KVAwareBalancing()
            let pick = decode.pickGroup(te: 0, kv: kv, placeable: placeable, batchLimit: batchLimit, policy: &kvAware)
            #expect(pick == KVAwareBalancing.scan(DecodeGroups(instance: 0, batchLimit: batchLimit, kv: kv,
                                                               placeable: placeable, slots: decode.slots)))
            if let g = decode.pickGroup(te: 0, kv: kv, placeable: placeable, batchLimit: batchLimit,
                                        policy: &roundRobin) {
                #expect(placeable[g] && decode.slots[g] < batchLimit)
            }
            let load = decode.stepLoad(step: step, tokensPerStep: 1.7, perRequest: 2e-5, perToken: 3e-8)
            let scan = SlowestDecodeGroup.scan(decode.batches, step: step, tokensPerStep: 1.7, perRequest: 2e-5, perToken: 3e-8)
            #expect(load.maxRunning == scan.maxRunning && load.total == scan.total
                        && load.context.bitPattern == scan.context.bitPattern)
            #expect(decode.problems(te: 0, kv: kv, placeable: placeable) == [])
            #expect(decode.runningRequests == running.count)
            #expect(decode.slots.reduce(0, +) == running.count + pulled.count)
        }
        #expect(running.count + pulled.count > 0 && step > 10, "the walk did something")
    }
}

extension DecodeScheduler {
    /// The audit with every group placeable (the tests that are not about eligibility).
    func problems(te: Int, kv: KVCacheStore) -> [String] { problems(te: te, kv: kv, placeable: .all(groupCount)) }
}
