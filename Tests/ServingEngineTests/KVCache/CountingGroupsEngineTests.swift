import Testing
import XDSTestSupport

@testable import ServingEngine

/// KV groups count their blocks until a prefix key arrives (``KVBlockManager/isCountingOnly``).
/// In a running colocated pod whose first requests bring no keys and later ones do, every group
/// switches to listing its blocks with requests live in it, stays consistent through the switch,
/// and every request completes.
@Suite struct CountingGroupsEngineTests {
    @Test func colocatedGroupsStartListingMidRunWithRequestsLive() throws {
        // Long outputs keep the keyless requests decoding when the keyed ones arrive.
        var requests = (0..<24).map { i in
            RequestSpec(id: i, arrival: Double(i) * 0.01, promptTokens: 700, outputTokens: 600, prefixBlockTokens: 128)
        }
        requests += (24..<64).map { i in
            RequestSpec(id: i, arrival: 0.5 + Double(i - 24) * 0.01, promptTokens: 900, outputTokens: 20,
                        prefixHashes: [1, 2, 3, UInt64(i)], prefixBlockTokens: 128)
        }
        let config = EngineConfiguration(deployment: TestDeployments.colocatedLlama(), seed: 5, syntheticRate: 0)
        let engine = try ServingEngine(configuration: config, workload: FixedWorkload(requests))
        let groups = engine.instances.indices.flatMap { te in
            (0..<engine.instances[te].groupCount).map { GroupRef(te: te, group: $0) }
        }
        func counting() -> [Bool] { groups.map { g in engine.kvStore.withGroup(g) { $0.isCountingOnly } } }
        func live() -> [Int] { groups.map { g in engine.kvStore.withGroup(g) { $0.liveRequests } } }
        engine.run(until: 0.45)
        #expect(counting().allSatisfy { $0 }, "no key yet: every group counts")
        #expect(live().allSatisfy { $0 > 0 }, "every group holds keyless requests")
        #expect(engine.audit() == [])
        var t = 0.45
        while t < 0.9 {
            t += 0.01
            engine.run(until: t)
            #expect(engine.audit() == [], "audit at \(t)")
        }
        #expect(counting().allSatisfy { !$0 }, "the keyed requests made every group list its blocks")
        #expect(engine.runToCompletion(limit: 3_600))
        #expect(engine.report().requests.completed == requests.count)
        #expect(engine.audit() == [])
        #expect(live().allSatisfy { $0 == 0 })
    }
}
