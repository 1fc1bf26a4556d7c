import PodModel
import SimKit
import Testing
import XDSTestSupport

@testable import ServingEngine

/// ``JobExecutor`` (the JE) through its own API, on TEs built by hand: the never-fits bounds from
/// the smallest DP group on each side, admission (placed, refused and why), the routing policy
/// over the candidate pool, the record of which TEs a prefix was placed on, the decode TE pick by
/// KV usage, and `copy()`.
@Suite(.timeLimit(.minutes(10))) struct JobExecutorTests {
    /// 128-token blocks (the configuration's), no pool. Each ``te(_:groups:blocks:)`` adds its
    /// groups here: build the TEs in their order in `instances`.
    private let store = KVCacheStore(blockTokens: 128, kvBytesPerToken: 1, poolCapacityBytes: 0)
    private static let cost = CostModel(model: .deepSeekR1, hardware: .ascend910C)

    private func te(_ role: InstanceRole, groups: Int, blocks: [Int]) -> InstanceState {
        store.addTE(groupBlocks: (0..<groups).map { blocks[min($0, blocks.count - 1)] })
        let spec = InstanceGroup(role: role, count: 1, npusEach: groups, firstNPU: 0, tp: 1, dp: groups, ep: groups,
                                 redundantExperts: 0, batchLimit: 8)
        return InstanceState(role: role, name: "\(role)", groupSpec: spec, external: false, cost: Self.cost, groups: groups)
    }

    private func je(routing: any RequestRoutingPolicy = RoundRobinRouting(), maxWaiting: Int? = nil) -> JobExecutor {
        var config = EngineConfiguration(deployment: TestDeployments.toyPod, seed: 1, syntheticRate: 1)
        if let maxWaiting { config.maxWaitingPerPrefillInstance = maxWaiting }
        return JobExecutor(configuration: config, routing: routing, decodeBalancing: KVAwareBalancing())
    }

    private func request(prompt: Int, output: Int = 10, keys: [UInt64] = []) -> RequestState {
        RequestState(spec: RequestSpec(id: 1, arrival: 0, promptTokens: prompt, outputTokens: output), chainedKeys: keys)
    }

    /// Two prefill TEs (groups of 10 and 12 blocks, then 11) and one decode TE (groups of 20 and 30).
    private func pod() -> [InstanceState] {
        [te(.prefill, groups: 2, blocks: [10, 12]), te(.prefill, groups: 1, blocks: [11]), te(.decode, groups: 2, blocks: [20, 30])]
    }

    /// A cluster manager laid out like `instances` (outside any node: nothing to drain), whose
    /// eligibility the JE reads; tests take groups out of service through it.
    private func cluster(_ instances: [InstanceState]) -> ClusterManager {
        let cluster = ClusterManager(npusPerNode: 8)
        for te in instances { cluster.layOutTE(npus: [], groups: te.groupCount, tp: 1, firstDie: 0) }
        return cluster
    }

    @Test func neverFitsComesFromTheSmallestGroupOnEachSide() throws {
        let je = je()
        let instances = pod()
        // Before any TE is known nothing is too large.
        #expect(je.neverFits(request(prompt: 1_000_000)) == nil)
        je.noteGroupBlocks(of: instances.indices, instances: instances, kv: store)
        #expect(je.prefillGroupBlocks == 10 && je.decodeGroupBlocks == 20)
        #expect(je.neverFits(request(prompt: 0))?.kind == "empty prompt")
        // 10 blocks of 128 tokens: 1,280 prompt tokens fit, 1,281 do not.
        #expect(je.neverFits(request(prompt: 1_280)) == nil)
        let prefill = try #require(je.neverFits(request(prompt: 1_281)))
        #expect(prefill.reason == "prompt of 1281 tokens exceeds the 1280-token KV of a prefill DP group")
        #expect(prefill.kind == "prompt exceeds the 1280-token KV of a prefill DP group")
        // Prompt and output together against the decode side's 2,560 tokens.
        #expect(je.neverFits(request(prompt: 1_000, output: 1_560)) == nil)
        let decode = try #require(je.neverFits(request(prompt: 1_000, output: 1_561)))
        #expect(decode.reason == "2561 tokens exceed the 2560-token KV of a decode DP group")
        // Token counts near the integer limit are refused, not overflowed.
        #expect(je.neverFits(request(prompt: Int.max, output: Int.max)) != nil)
    }

    @Test func admissionPlacesRefusesOrNeverFitsWithItsReason() throws {
        let instances = pod()
        let cluster = cluster(instances)
        let je = je()
        je.noteGroupBlocks(of: instances.indices, instances: instances, kv: store)
        guard case .placed(let first) = je.admit(request(prompt: 100), instances: instances, cluster: cluster, kv: store) else {
            Issue.record("not placed")
            return
        }
        #expect(first == 0)
        // Round-robin: the next prefill TE, never the decode TE.
        guard case .placed(let second) = je.admit(request(prompt: 100), instances: instances, cluster: cluster, kv: store) else {
            Issue.record("not placed")
            return
        }
        #expect(second == 1)
        // Never-fits is decided before availability.
        guard case .neverFits(_, let kind) = je.admit(request(prompt: 0), instances: instances, cluster: cluster, kv: store) else {
            Issue.record("an empty prompt was not refused for good")
            return
        }
        #expect(kind == "empty prompt")
        // TE 0 out of service: only TE 1 is a candidate.
        for g in instances[0].groups { cluster.setOutOfService(te: 0, group: g, true) }
        for _ in 0..<3 {
            guard case .placed(let te) = je.admit(request(prompt: 100), instances: instances, cluster: cluster, kv: store) else {
                Issue.record("not placed")
                return
            }
            #expect(te == 1)
        }
        // Every prefill TE out of service: refused, with the reason.
        for g in instances[1].groups { cluster.setOutOfService(te: 1, group: g, true) }
        guard case .refused(let reason) = je.admit(request(prompt: 100), instances: instances, cluster: cluster, kv: store) else {
            Issue.record("placed on a drained TE")
            return
        }
        #expect(reason == "no prefill TE accepts work (all drained or out of service)")
    }

    @Test func theAdmissionBoundRefusesWhenEveryTEHasItsQuota() throws {
        let instances = pod()
        let cluster = cluster(instances)
        let je = je(maxWaiting: 0)
        je.noteGroupBlocks(of: instances.indices, instances: instances, kv: store)
        guard case .refused(let reason) = je.admit(request(prompt: 100), instances: instances, cluster: cluster, kv: store) else {
            Issue.record("placed over the admission bound")
            return
        }
        #expect(reason == "every prefill TE has 0 requests waiting")
        #expect(je.requeueTarget(for: request(prompt: 100), instances: instances, cluster: cluster, kv: store) == nil)
    }

    @Test func thePoolsCandidatesAreExactlyTheTEsThatTakeWorkNowDecisionAfterDecision() throws {
        /// A policy that records the candidates it is offered and picks the last one.
        final class Seen: @unchecked Sendable { var candidates: [[Int]] = [] }
        struct Recording: RequestRoutingPolicy {
            let seen: Seen
            var name: String { "recording" }
            mutating func pickPrefillTE(for request: RoutingRequest, in pool: PrefillPool) -> Int? {
                seen.candidates.append(pool.candidates)
                return pool.candidates.last
            }
        }
        let instances = [te(.prefill, groups: 1, blocks: [10]), te(.prefill, groups: 1, blocks: [10]),
                         te(.decode, groups: 1, blocks: [20]), te(.prefill, groups: 1, blocks: [10])]
        let cluster = cluster(instances)
        let seen = Seen()
        let je = je(routing: Recording(seen: seen))
        je.noteGroupBlocks(of: instances.indices, instances: instances, kv: store)
        // The JE reuses the list from one decision to the next: a TE leaving or coming back, at
        // the front, in the middle or at the end, must show in the very next decision.
        func decide() { _ = je.requeueTarget(for: request(prompt: 100), instances: instances, cluster: cluster, kv: store) }
        decide()
        decide()
        cluster.setOutOfService(te: 1, group: 0, true)
        decide()
        cluster.setOutOfService(te: 3, group: 0, true)
        decide()
        cluster.setOutOfService(te: 1, group: 0, false)
        decide()
        cluster.setOutOfService(te: 0, group: 0, true)
        cluster.setOutOfService(te: 3, group: 0, false)
        decide()
        cluster.setOutOfService(te: 1, group: 0, true)
        cluster.setOutOfService(te: 3, group: 0, true)
        #expect(je.requeueTarget(for: request(prompt: 100), instances: instances, cluster: cluster, kv: store) == nil)
        cluster.setOutOfService(te: 0, group: 0, false)
        decide()
        #expect(seen.candidates == [[0, 1, 3], [0, 1, 3], [0, 3], [0], [0, 1], [1, 3], [0]])
    }

    @Test func theKeptPoolFollowsTheTEsTheStoreTheVerdictsAndTheHolderBits() throws {
        /// What a decision's pool says, beside what the plain reads of the same state say.
        struct View: Equatable {
            var candidates: [Int], inService: [Int], counted: Int, ranked: [Int], tes: Int, holderBitBase: [Int]
        }
        final class Seen: @unchecked Sendable { var views: [View] = [] }
        struct Recording: RequestRoutingPolicy {
            let seen: Seen
            var name: String { "recording" }
            mutating func pickPrefillTE(for request: RoutingRequest, in pool: PrefillPool) -> Int? {
                let count = pool.prefillTECount
                seen.views.append(View(candidates: pool.candidates, inService: pool.prefillTEs(), counted: count,
                                       ranked: (0..<count).map(pool.prefillTE(rank:)), tes: pool.instances.count,
                                       holderBitBase: pool.holderBitBase))
                return pool.candidates.first
            }
        }
        var instances = [te(.prefill, groups: 1, blocks: [10]), te(.decode, groups: 1, blocks: [20]),
                         te(.prefill, groups: 2, blocks: [10]), te(.prefill, groups: 1, blocks: [10])]
        let cluster = cluster(instances)
        let seen = Seen()
        let je = je(routing: Recording(seen: seen))
        je.noteGroupBlocks(of: instances.indices, instances: instances, kv: store)
        var expected: [View] = []
        /// One decision, and the view the pool must give of it: the candidates and the prefill TEs
        /// in service read plainly from the TEs and the cluster manager.
        func decide() {
            _ = je.requeueTarget(for: request(prompt: 100), instances: instances, cluster: cluster, kv: store)
            let inService = instances.indices.filter { instances[$0].hasPrefill && !cluster.isHeldOff(te: $0) }
            expected.append(View(candidates: instances.indices.filter { instances[$0].hasPrefill && cluster.hasPlaceableGroup(te: $0) },
                                 inService: inService, counted: inService.count, ranked: inService,
                                 tes: instances.count, holderBitBase: je.holderBitBase))
        }
        decide()
        cluster.setHeldOff(te: 2, true)  // held off: out of service, its groups unplaceable
        decide()
        cluster.setOutOfService(te: 0, group: 0, true)  // out of service, still a prefill TE in service
        decide()
        cluster.setHeldOff(te: 2, false)
        cluster.setOutOfService(te: 0, group: 0, false)
        decide()
        // A TE added: another TE list (the kept pool viewed the old one), then its holder bits.
        instances.append(te(.prefill, groups: 1, blocks: [10]))
        cluster.layOutTE(npus: [], groups: 1, tp: 1, firstDie: 0)
        decide()
        je.noteGroupBlocks(of: 4..<5, instances: instances, kv: store)
        decide()
        cluster.setHeldOff(te: 0, true)
        decide()
        #expect(seen.views == expected)
        #expect(seen.views.map(\.inService) == [[0, 2, 3], [0, 3], [0, 3], [0, 2, 3], [0, 2, 3, 4], [0, 2, 3, 4], [2, 3, 4]])
        #expect(seen.views.last?.holderBitBase == [0, .max, 1, 3, 4])
    }

    @Test func theProbeLogKeepsEachTEsFirstProbeOfTheCurrentDecisionOnly() {
        let log = PrefixProbeLog()
        #expect(log.probe(of: 0) == nil)
        log.startDecision()
        log.note(te: 2, group: 1, hits: 256)
        log.note(te: 2, group: 3, hits: 512)  // a later probe of the same TE: not kept
        log.note(te: 0, group: 0, hits: 0)
        #expect(log.probe(of: 2).map { [$0.group, $0.hits] } == [1, 256])
        #expect(log.probe(of: 0).map { [$0.group, $0.hits] } == [0, 0])
        #expect(log.probe(of: 1) == nil && log.probe(of: 7) == nil && log.probe(of: -1) == nil)
        // The next decision: every earlier probe is stale.
        log.startDecision()
        #expect(log.probe(of: 2) == nil && log.probe(of: 0) == nil)
        log.note(te: 2, group: 3, hits: 128)
        #expect(log.probe(of: 2).map { [$0.group, $0.hits] } == [3, 128])
    }

    @Test func aPolicyPickOutsideTheCandidatesIsNotTaken() throws {
        /// A policy that always names the decode TE (index 2), which is never a candidate.
        struct Wrong: RequestRoutingPolicy {
            var name: String { "wrong" }
            mutating func pickPrefillTE(for request: RoutingRequest, in pool: PrefillPool) -> Int? { 2 }
        }
        let instances = pod()
        let cluster = cluster(instances)
        let je = je(routing: Wrong())
        guard case .refused = je.admit(request(prompt: 100), instances: instances, cluster: cluster, kv: store) else {
            Issue.record("a non-candidate TE was taken")
            return
        }
    }

    @Test func prefixHoldersRecordWhichGroupsEachPrefixWasPlacedOn() throws {
        let je = je()
        let instances = pod()
        // Prefill groups take holder bits in TE order: TE 0's two groups 0 and 1, TE 1's group 2.
        je.noteGroupBlocks(of: instances.indices, instances: instances, kv: store)
        #expect(je.holderBitBase == [0, 2, .max])
        let keys = PrefixHashes.chain([7, 8, 9])
        #expect(je.prefixHolders(keys) == 0 && je.prefixGroups(keys, te: 0, groups: 2).isEmpty)
        je.notePlacement(chainedKeys: keys, te: 0, group: 1)
        je.notePlacement(chainedKeys: keys, te: 1, group: 0)
        je.notePlacement(chainedKeys: keys, te: 1, group: 0)
        #expect(je.prefixHolders(keys) == 0b110)
        let first = je.prefixGroups(keys, te: 0, groups: 2), second = je.prefixGroups(keys, te: 1, groups: 1)
        #expect(!first.contains(0) && first.contains(1) && second.contains(0))
        // Only the first key matters: another continuation of the same start shares the holders.
        #expect(je.prefixHolders([keys[0], 42]) == 0b110)
        #expect(je.prefixHolders(PrefixHashes.chain([1])) == 0)
        // No keys: nothing recorded.
        je.notePlacement(chainedKeys: [], te: 0, group: 0)
        #expect(je.prefixHolders([]) == 0)
        // A copy records on its own.
        let copy = je.copy()
        copy.notePlacement(chainedKeys: keys, te: 0, group: 0)
        #expect(copy.prefixHolders(keys) == 0b111 && je.prefixHolders(keys) == 0b110)
    }

    @Test func aTEsGroupsSeeOnlyTheirOwnHolderBitsAndGroupsWithoutOneAlwaysMayHold() {
        // A TE whose groups start at bit 60: groups 0–3 have bits 60–63, groups 4–7 none.
        let late = PrefixGroups(holders: 1 << 61, base: 60, groups: 8)
        #expect(!late.contains(0) && late.contains(1) && !late.contains(2) && !late.contains(3))
        #expect((4..<8).allSatisfy(late.contains))
        // No bit at all (every earlier group took one): every group may.
        let unnumbered = PrefixGroups(holders: 0, base: 64, groups: 3)
        #expect((0..<3).allSatisfy(unnumbered.contains) && !unnumbered.isEmpty)
        // Groups from 64 on have no bit.
        let wide = PrefixGroups(holders: 0, base: 0, groups: 70)
        #expect(!wide.contains(0) && wide.contains(64) && !wide.isEmpty)
        // Another TE's bits are not this TE's groups.
        #expect(PrefixGroups(holders: 1 << 5, base: 0, groups: 2).isEmpty)
        #expect(PrefixGroups(holders: 1 << 1, base: 2, groups: 2).isEmpty)
        #expect((0..<80).allSatisfy(PrefixGroups.all.contains))
    }

    @Test func aPrefillGroupPastTheSixtyFourthHoldsNoBit() {
        let je = je()
        let instances = [te(.prefill, groups: 60, blocks: [10]), te(.prefill, groups: 8, blocks: [10])]
        je.noteGroupBlocks(of: instances.indices, instances: instances, kv: store)
        let keys = PrefixHashes.chain([3])
        je.notePlacement(chainedKeys: keys, te: 1, group: 6)  // bit 66: none
        #expect(je.prefixHolders(keys) == 0)
        je.notePlacement(chainedKeys: keys, te: 1, group: 2)  // bit 62
        #expect(je.prefixHolders(keys) == 1 << 62)
        let groups = je.prefixGroups(keys, te: 1, groups: 8)
        #expect(groups.contains(2) && !groups.contains(1) && groups.contains(6))
    }

    @Test func theDecodeTEIsTheAvailableOneWithTheLowestMeanKVUsage() throws {
        let je = je()
        let p = te(.prefill, groups: 1, blocks: [10])
        let a = te(.decode, groups: 2, blocks: [10])
        let b = te(.decode, groups: 2, blocks: [10])
        let instances = [p, a, b]
        let cluster = cluster(instances)
        // Equal usage: the first.
        #expect(je.pickDecodeTE(instances: instances, cluster: cluster, kv: store) == 1)
        // Four of a's twenty blocks taken: b.
        #expect(store.allocatePrefill(1, in: GroupRef(te: 1, group: 0), promptTokens: 4 * 128, chained: [],
                                      expectedTotalTokens: 0) != nil)
        #expect(je.pickDecodeTE(instances: instances, cluster: cluster, kv: store) == 2)
        // b out of service: a, the only available one, whatever its usage.
        for g in b.groups { cluster.setOutOfService(te: 2, group: g, true) }
        #expect(je.pickDecodeTE(instances: instances, cluster: cluster, kv: store) == 1)
        // Both out: the first decode TE (the request waits there).
        for g in a.groups { cluster.setOutOfService(te: 1, group: g, true) }
        #expect(je.pickDecodeTE(instances: instances, cluster: cluster, kv: store) == 1)
        // b back: b.
        for g in b.groups { cluster.setOutOfService(te: 2, group: g, false) }
        #expect(je.pickDecodeTE(instances: instances, cluster: cluster, kv: store) == 2)
    }

    @Test func aCopyKeepsItsOwnRoutingState() throws {
        let instances = pod()
        let cluster = cluster(instances)
        let je = je()
        je.noteGroupBlocks(of: instances.indices, instances: instances, kv: store)
        let copy = je.copy()
        #expect(copy.prefillGroupBlocks == 10 && copy.decodeGroupBlocks == 20)
        // The copy's round-robin cursor moves without the original's.
        guard case .placed(0) = copy.admit(request(prompt: 100), instances: instances, cluster: cluster, kv: store),
              case .placed(1) = copy.admit(request(prompt: 100), instances: instances, cluster: cluster, kv: store),
              case .placed(0) = je.admit(request(prompt: 100), instances: instances, cluster: cluster, kv: store) else {
            Issue.record("the copy shares the policy's state")
            return
        }
    }

    /// A pod of colocated TEs has no "prefill TE": a full queue names the TEs it has.
    @Test func aColocatedPodsRefusalNamesColocatedTEs() throws {
        var config = EngineConfiguration(deployment: try Deployment.resolve("colocated:1:llama-2-7b:nvidia-a100:tp1"),
                                         syntheticRate: 400)
        config.maxWaitingPerPrefillInstance = 16
        let engine = try ServingEngine(configuration: config)
        engine.run(until: 5)
        let reasons = engine.report().requests.rejectionReasons.keys
        #expect(reasons.contains("every colocated TE has 16 requests waiting"), "\(reasons)")
        #expect(!reasons.contains { $0.contains("prefill TE") })
    }
}
