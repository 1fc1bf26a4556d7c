import Foundation
import PodModel
import SimKit
import Testing
import XDSTestSupport

@testable import ServingEngine

/// The JE remembers on which prefill DP groups a prompt's first prefix key was placed, and neither
/// routing nor the prefill leader probes any other group's prefix cache. That is exact only if no
/// other DP group can hold a block under that key: checked here against every group's own
/// cache (a full recomputation) through a mixed run — shared system prompts, sessions that come
/// back, queues, a drained node and its undrain, a lost NPU — and the routing choices with and
/// without the holders must agree.
@Suite(.timeLimit(.minutes(10))) struct PrefixHoldersTests {
    /// Six small prefill TEs (both sides of the long/short split have several) and a decode TE.
    static let sixPrefill = Deployment(
        name: "six-prefill", model: "deepseek-r1", hardware: "ascend-910c", nodes: 8,
        groups: [
            InstanceGroup(role: .prefill, count: 6, npusEach: 8, firstNPU: 0, tp: 4, dp: 4, ep: 16,
                          redundantExperts: 0, batchLimit: 0),
            InstanceGroup(role: .decode, count: 1, npusEach: 16, firstNPU: 48, tp: 1, dp: 32, ep: 32,
                          redundantExperts: 0, batchLimit: 64),
        ])

    @Test func onlyTheHoldersCanHitAndRoutingIsUnchanged() throws {
        var config = EngineConfiguration(deployment: Self.sixPrefill, seed: 3, syntheticRate: 120)
        config.expertSkew = false
        var synthetic = SyntheticWorkload.Configuration(ratePerSecond: 120)
        synthetic.maxRequests = 1_200
        synthetic.maxOutputTokens = 128
        synthetic.followUpShare = 0.6  // sessions come back: prefixes cached on some TEs only
        let engine = try ServingEngine(configuration: config, workload: SyntheticWorkload(seed: 3, configuration: synthetic))
        var seen: [[UInt64]] = []       // prefixes of requests seen in flight (kept after they leave)
        var hits = 0, unheldTEs = 0, unheldGroups = 0, checks = 0, probes = 0
        var events = 0
        while (engine.arrivalPending || engine.telemetry.inFlight > 0) && events < 40_000, engine.step() {
            events += 1
            if events == 2_000 { #expect(engine.apply(.drain(node: 1)).accepted) }
            if events == 5_000 { #expect(engine.apply(.undrain(node: 1)).accepted) }
            if events == 7_000 { _ = engine.apply(.faultNPU(9)) }
            guard events % 50 == 0 else { continue }
            for (_, r) in engine.requests.prefix(20) where r.hasPrefixKeys { seen.append(r.chainedKeys) }
            if seen.count > 400 { seen.removeFirst(seen.count - 400) }
            let instances = engine.instances
            let candidates = instances.indices.filter { instances[$0].hasPrefill && engine.cluster.hasPlaceableGroup(te: $0) }
            for (n, keys) in seen.suffix(40).enumerated() {
                let holders = engine.je.prefixHolders(keys)
                for te in instances.indices where instances[te].hasPrefill {
                    let held = engine.je.prefixGroups(keys, te: te, groups: instances[te].groupCount)
                    if held.isEmpty { unheldTEs += 1 }
                    for g in instances[te].groups {
                        if !held.contains(g) { unheldGroups += 1 }
                        let hit = engine.kvStore.cachedPrefixTokens(GroupRef(te: te, group: g), promptTokens: 1 << 20,
                                                                    chained: keys)
                        if hit > 0 { hits += 1 }
                        #expect(held.contains(g) || hit == 0, "TE \(te) group \(g) holds a prefix the JE never placed there")
                    }
                }
                guard !candidates.isEmpty else { continue }
                let request = RoutingRequest(promptTokens: 600 + 700 * (n % 4), chainedKeys: keys)
                var known = PrefillPool(instances: instances, kv: engine.kvStore, cluster: engine.cluster, candidates: candidates,
                                        longPromptTokens: engine.configuration.longPromptTokens)
                known.prefixHolders = holders
                known.holderBitBase = engine.je.holderBitBase
                let everyTE = PrefillPool(instances: instances, kv: engine.kvStore, cluster: engine.cluster, candidates: candidates,
                                          longPromptTokens: engine.configuration.longPromptTokens)
                for te in candidates {
                    let exact = known.finishCost(te, for: request)
                    #expect(exact == everyTE.finishCost(te, for: request))
                    // The router's shortcuts: a TE with nothing to probe costs its queued total plus
                    // the prompt, and a cost bounded by the best so far is exact under the bound,
                    // else no less than it (a group that cannot get under it is not probed).
                    for bound in [exact - 2_000, exact - 1, exact, Saturating.add(exact, 1), Saturating.add(exact, 2_000)] {
                        for bounded in [known.finishCost(te, for: request, below: bound),
                                        known.routingCost(te, for: request, below: bound)] {
                            #expect(exact < bound ? bounded == exact : bounded >= bound)
                        }
                    }
                    #expect(known.routingCost(te, for: request, below: .max) == exact)
                }
                var a = PrefixAwareRouting()
                a.recentPromptTokens = n % 2 == 0 ? (long: 4_000, short: 9_000) : (long: 30_000, short: 1_000)
                var b = a
                #expect(a.pickPrefillTE(for: request, in: known) == b.pickPrefillTE(for: request, in: everyTE))
                checks += 1
                // The hit routing notes for the prefill leader is the group's own count, and the
                // leader taking it places the request as probing the group again would (on copies:
                // nothing of the engine changes).
                let je = engine.je.copy()
                let routed = RequestState(spec: RequestSpec(id: -7, arrival: 0, promptTokens: request.promptTokens,
                                                            outputTokens: 1), chainedKeys: keys)
                guard let te = je.requeueTarget(for: routed, instances: instances, cluster: engine.cluster, kv: engine.kvStore),
                      let probe = je.routedProbe(of: te), let leader = instances[te].prefill else { continue }
                #expect(probe.hits == engine.kvStore.cachedPrefixTokens(GroupRef(te: te, group: probe.group),
                                                                        promptTokens: request.promptTokens, chained: keys))
                var placed: [(group: Int, queued: [Int])] = []
                for known in [probe, nil] {
                    let copy = leader.copy()
                    var table = engine.requests
                    table[-7] = routed
                    let group = copy.place(-7, slot: table.index(forKey: -7)!, promptTokens: request.promptTokens, probing: keys,
                                           in: je.prefixGroups(keys, te: te, groups: instances[te].groupCount), known: known,
                                           te: te, kv: engine.kvStore,
                                           placeable: engine.cluster.placeableGroupsIfRestricted(of: te), requests: &table)
                    placed.append((group, copy.queuedTokens))
                }
                #expect(placed[0].group == placed[1].group && placed[0].queued == placed[1].queued)
                probes += 1
            }
        }
        #expect(checks > 500)
        #expect(hits > 0, "some prefixes were cached")
        #expect(probes > 100, "routing probed the TE it picked")
        #expect(unheldTEs > 0, "some TEs were skipped")
        #expect(unheldGroups > unheldTEs * 4, "some groups of TEs that were probed were skipped")
        #expect(engine.audit() == [])
        // A fork carries the holders (its routing probes the same TEs).
        let fork = try engine.fork()
        for keys in seen.suffix(50) { #expect(fork.je.prefixHolders(keys) == engine.je.prefixHolders(keys)) }
    }
}
