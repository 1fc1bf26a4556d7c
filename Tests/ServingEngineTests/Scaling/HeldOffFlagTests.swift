import PodModel
import SimKit
import Testing

@testable import ServingEngine

/// A TE that scaling holds off (starting, scaled in, retired) is marked so in the cluster
/// manager's eligibility, so the JE reads a flag instead of rebuilding a set of held-off TEs on
/// every arrival, and none of its groups is placeable.
@Suite(.timeLimit(.minutes(10))) struct HeldOffFlagTests {
    @Test func theFlagFollowsTheLifecycleAndTheJENeverPlacesOnAHeldOffTE() throws {
        let engine = try ScalingTests.superpod(rate: 40, limit: 2_000)
        #expect(engine.instances.indices.allSatisfy { !engine.cluster.isHeldOff(te: $0) }, "nothing scaled: every TE in service")
        engine.run(until: 1)
        #expect(engine.apply(.scale(role: .prefill, change: .by(1), from: nil)).accepted)
        let new = engine.instances.count - 1
        #expect(engine.cluster.isHeldOff(te: new))
        #expect(engine.instances.indices.filter { engine.cluster.isHeldOff(te: $0) } == [new])
        // The fork carries the flag (its own copy).
        let fork = try engine.fork()
        #expect(fork.cluster.isHeldOff(te: new))
        // While it starts, no request is placed on it.
        while engine.scaling.phase(new) != .inService, engine.now < 10, engine.step() {
            let starting = engine.scaling.phase(new) != .inService
            #expect(engine.cluster.isHeldOff(te: new) == starting)
            if starting { #expect(!engine.requests.values.contains { $0.prefillInstance == new }) }
        }
        #expect(engine.scaling.phase(new) == .inService)
        #expect(!engine.cluster.isHeldOff(te: new))
        #expect(fork.cluster.isHeldOff(te: new), "the fork's TE is still starting")
        engine.run(until: 15)
        #expect(engine.requests.values.contains { $0.prefillInstance == new } || engine.kvStore.groupManagers(of: new).contains {
            $0.stats.queriedTokens > 0
        }, "in service, it takes work")
        // Scaled in: held off again, and stays so once retired.
        #expect(engine.apply(.scale(role: .prefill, change: .by(-1), from: nil)).accepted)
        let drained = engine.instances.indices.filter { engine.scaling.phase($0) == .draining }
        #expect(drained.count == 1)
        #expect(drained.allSatisfy { engine.cluster.isHeldOff(te: $0) })
        engine.run(until: 40)
        #expect(drained.allSatisfy { engine.scaling.phase($0) == .retired && engine.cluster.isHeldOff(te: $0) })
        #expect(engine.instances.indices.allSatisfy {
            engine.cluster.isHeldOff(te: $0) == (engine.scaling.phase($0) != .inService)
        })
        // Held off means no group of it is placeable.
        for te in engine.instances.indices where engine.cluster.isHeldOff(te: te) {
            #expect(!engine.cluster.hasPlaceableGroup(te: te))
        }
        ScalingTests.expectSound(engine)
    }
}
