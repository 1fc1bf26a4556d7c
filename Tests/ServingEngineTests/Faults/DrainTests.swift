import PodModel
import SimKit
import Testing
import XDSTestSupport

@testable import ServingEngine

@Suite(.timeLimit(.minutes(10))) struct DrainTests {
    @Test func drainingAPrefillTEMovesItsQueueAndReportsProgress() throws {
        // A burst so both prefill TEs have a queue; prefill-0 is node 0.
        let engine = try FaultTests.engine(rate: 200, limit: 200)
        engine.run(until: 0.8)
        let queued = engine.requests.values.filter { $0.prefillInstance == 0 && $0.stage == .queued }.count
        #expect(queued > 0)
        #expect(engine.apply(.drain(node: 0)).accepted)
        #expect(!engine.requests.values.contains { $0.prefillInstance == 0 && $0.stage == .queued },
                "queued prefills moved to prefill-1")
        let snapshot = engine.snapshot()
        let left = try #require(snapshot.drainProgress.first)
        #expect(left.node == 0 && left.requestsLeft > 0, "started prefills finish there")
        #expect(snapshot.drainingNodes == [0] && snapshot.drainedNodes.isEmpty)
        let queried = engine.kvStore.groupManagers(of: 0).map(\.stats.queriedTokens)
        engine.run(until: 30)
        #expect(engine.snapshot().drainedNodes == [0])
        #expect(engine.snapshot().drainProgress == [DrainProgress(node: 0, requestsLeft: 0)])
        #expect(FaultTests.events(engine, .drain).contains { $0.contains("node 0 drained: no requests left") })
        #expect(engine.kvStore.groupManagers(of: 0).map(\.stats.queriedTokens) == queried, "a drained node carries no traffic")
        // Undrain returns it to service.
        #expect(engine.apply(.undrain(node: 0)).accepted)
        #expect(engine.runToCompletion(limit: 3_600))
        FaultTests.expectSound(engine)
        FaultTests.expectEmpty(engine)
    }

    /// Draining the node every prefill TE runs on leaves the queue nowhere to go: those requests
    /// fail with the drain as their reason (they were blamed on failed hardware), and the drain's
    /// line counts them (it said "0 queued prefills moved elsewhere" and nothing more).
    @Test func queuedPrefillsWithNowhereToGoFailNamingTheDrain() throws {
        var config = EngineConfiguration(deployment: try Deployment.resolve("colocated:2:llama-2-7b:nvidia-a100:tp1"))
        config.syntheticRate = 40
        let engine = try ServingEngine(configuration: config)
        engine.run(until: 20)
        let queued = engine.requests.values.filter { $0.stage == .queued }.count
        #expect(queued > 0, "an overloaded colocated pair has a queue")
        let reply = engine.apply(.drain(node: 0))
        #expect(reply.accepted)
        // A colocated pod has no prefill TE: its TEs are "colocated TEs" (as its refusals say).
        #expect(reply.message.contains("\(queued) queued prefill\(queued == 1 ? "" : "s") failed (no other colocated TE is in service)"),
                "\(reply.message)")
        let reasons = engine.report().requests.failureReasons
        #expect(reasons["its node was drained and no other colocated TE is in service to take it"] == queued, "\(reasons)")
        #expect(reasons["its hardware failed and no colocated TE is in service to prefill it again"] == nil, "no hardware failed")
        #expect(!reasons.keys.contains { $0.contains("prefill TE") }, "\(reasons)")
        FaultTests.expectSound(engine)
    }

    /// A colocated pod's only TE loses an NPU and its node is drained: what it held and cannot be
    /// prefilled again fails saying no colocated TE is in service (it said "no prefill TE", a TE
    /// this pod does not have).
    @Test func aColocatedPodsFailureReasonsNameItsColocatedTEs() throws {
        var config = EngineConfiguration(deployment: try Deployment.resolve("colocated:1:llama-2-7b:nvidia-a100:tp1"))
        config.syntheticRate = 20
        let engine = try ServingEngine(configuration: config)
        engine.run(until: 5)
        #expect(engine.apply(.faultNPU(0)).accepted)
        engine.run(until: 6)
        // Drained while it recovers: what waited for its return has nowhere to go.
        #expect(engine.apply(.drain(node: 0)).accepted)
        engine.run(until: 30)
        let reasons = engine.report().requests.failureReasons
        #expect(reasons.keys.contains { $0.hasPrefix("its hardware failed and no colocated TE is in service to prefill it again") }, "\(reasons)")
        #expect(!reasons.keys.contains { $0.contains("prefill TE") }, "\(reasons)")
        FaultTests.expectSound(engine)
    }

    @Test func undrainedNodeTakesWorkAgain() throws {
        let engine = try FaultTests.engine(rate: 40, limit: 200)
        #expect(engine.apply(.drain(node: 0)).accepted)
        engine.run(until: 2)
        #expect(engine.kvStore.groupManagers(of: 0).allSatisfy { $0.stats.queriedTokens == 0 })
        #expect(engine.apply(.undrain(node: 0)).accepted)
        engine.run(until: 5)
        #expect(engine.kvStore.groupManagers(of: 0).contains { $0.stats.queriedTokens > 0 })
        FaultTests.expectSound(engine)
    }

    @Test func drainCanMigrateRunningDecodeRequestsToOtherGroups() throws {
        let engine = try FaultTests.engine(rate: 40, limit: 160, maxOutput: 512) { $0.faults.migrateDecodeOnDrain = true }
        engine.run(until: 3)
        let d = try FaultTests.decodeIndex(engine)
        let onNode3 = (16..<32).reduce(0) { $0 + engine.instances[d].decode!.batches.running[$1] }   // NPUs 24–31 = dp16–31
        #expect(onNode3 > 0)
        let running = engine.instances[d].runningRequests
        let reply = engine.apply(.drain(node: 3))
        #expect(reply.message.contains("\(onNode3) decode requests migrated"), "\(reply.message)")
        // Running requests moved; transfers already pulled there join and finish in place.
        #expect((16..<32).allSatisfy { engine.instances[d].decode!.batches.running[$0] == 0 })
        #expect(engine.instances[d].runningRequests == running)
        #expect(engine.isHalted(d), "decode pauses for the KV copy")
        engine.run(until: 3.5)
        #expect(!engine.isHalted(d))
        FaultTests.expectSound(engine)
        #expect(engine.runToCompletion(limit: 3_600))
        #expect(engine.report().requests.completed == 160)
        FaultTests.expectEmpty(engine)
    }

    /// Faulting, healing and undraining a drained, empty node changes no request's fate when the
    /// drain emptied its whole TE (prefill-0 is node 0): nothing runs a collective on it.
    @Test func faultsOnADrainedNodeTouchNoTraffic() throws {
        func run(_ fault: Bool) throws -> ServingEngine {
            let engine = try FaultTests.engine(rate: 30, limit: 150)
            #expect(engine.apply(.drain(node: 0)).accepted)   // prefill-0, all of it
            engine.run(until: 20)
            #expect(engine.snapshot().drainedNodes == [0])
            #expect(FaultTests.events(engine, .drain).contains { $0.contains("node 0 drained: no requests left; it can be faulted") })
            if fault {
                #expect(engine.apply(.faultNode(0)).accepted)
                engine.run(until: 22)
                #expect(engine.report().faultDetails[0].recovery.contains("no traffic"))
                #expect(engine.apply(.heal(faultID: 1)).accepted)
            }
            engine.run(until: 25)
            return engine
        }
        let plain = try run(false), faulted = try run(true)
        #expect(plain.report().requests == faulted.report().requests)
        #expect(plain.report().latencyMs == faulted.report().latencyMs)
        #expect(faulted.report().faults.recovered == 1)
        #expect(faulted.apply(.undrain(node: 0)).accepted)
        #expect(faulted.runToCompletion(limit: 3_600))
        FaultTests.expectSound(faulted)
    }

    /// A drained node of an expert-parallel TE whose other nodes still serve keeps serving its
    /// experts: every expert die takes tokens from every DP group of its TE. Its drain says so,
    /// and a fault on it stalls the TE and goes through recovery (it used to be counted as
    /// touching no traffic while the dead chips went on serving experts).
    @Test func aDrainedNodeOfAnExpertParallelTEStillServesItsExperts() throws {
        let engine = try FaultTests.engine(rate: 30, limit: 150)
        let d = try FaultTests.decodeIndex(engine)
        #expect(engine.apply(.drain(node: 3)).accepted)   // decode NPUs 24–31, of 16–39
        engine.run(until: 20)
        #expect(engine.snapshot().drainedNodes == [3])
        let drained = FaultTests.events(engine, .drain).first { $0.hasPrefix("node 3 drained") } ?? ""
        #expect(drained.contains("its NPUs still hold expert slots of \(engine.instances[d].name)"), "\(drained)")
        #expect(engine.apply(.faultNode(3)).accepted)
        #expect(engine.faults.isHalted(d), "the TE's dispatch and combine wait for the dead expert dies")
        engine.run(until: 30)
        let fault = try #require(engine.report().faultDetails.first)
        #expect(fault.detectedAt != nil && !fault.recovery.contains("no traffic"), "\(fault.recovery)")
        #expect(engine.runToCompletion(limit: 3_600))
        FaultTests.expectSound(engine)
    }

    /// A second drain of a node says where the first one stands: "draining (N requests left)"
    /// while work remains on it, "drained" once it is empty.
    @Test func drainingTwiceSaysWhetherTheNodeIsStillDraining() throws {
        let engine = try FaultTests.engine(rate: 30, limit: 100)
        engine.run(until: 1)
        #expect(engine.apply(.drain(node: 1)).accepted)
        let early = engine.apply(.drain(node: 1))
        #expect(!early.accepted && early.message.hasPrefix("node 1 is already draining ("), "\(early)")
        engine.runToCompletion(limit: 3_600)
        #expect(engine.drainState().drained.contains(1))
        #expect(engine.apply(.drain(node: 1)).message == "node 1 is already drained")
    }

    /// Draining twice, unknown nodes, dies and NPUs, healing an unknown fault: a clear message
    /// and an identical run.
    @Test func badCommandsChangeNothing() throws {
        func run(_ extra: [OperatorCommand]) throws -> (RunReport, [CommandReply]) {
            let engine = try FaultTests.engine(rate: 30, limit: 100)
            engine.run(until: 1)
            #expect(engine.apply(.drain(node: 1)).accepted)
            #expect(engine.apply(.faultDie(40)).accepted)
            let replies = extra.map { engine.apply($0) }
            engine.runToCompletion(limit: 3_600)
            return (engine.report(), replies)
        }
        let (plain, _) = try run([])
        let (other, replies) = try run([.drain(node: 1), .drain(node: 6), .undrain(node: 2), .faultDie(96),
                                        .faultDie(40), .faultNPU(48), .faultNode(6), .heal(faultID: 7),
                                        .faultLink(from: 3, to: 480, degrade: 2), .faultHBM(die: 1_000),
                                        .faultStraggler(die: 96, slowdown: nil)])
        #expect(replies.allSatisfy { !$0.accepted })
        let messages = replies.map(\.message)
        // Still finishing its work, the node is "draining" (as the header says), not "drained".
        #expect(messages[0] == "node 1 is already draining (3 requests left)")
        #expect(messages[1].contains("node 6 does not exist"))
        #expect(messages[3].contains("die 96 does not exist; the pod has dies 0…95"))
        #expect(messages[4].contains("already dead"))
        #expect(messages[7] == "no active fault 7; active: 1")
        #expect(plain == other)
    }
}

/// `heal all` counts what it healed in words that agree with the count.
@Suite struct HealAllWordingTests {
    @Test func oneFaultIsOneFault() throws {
        let engine = try FaultTests.engine(rate: 10, limit: 20)
        engine.run(until: 1)
        #expect(engine.apply(.healAll).message == "there are no active faults")
        #expect(engine.apply(.faultDie(40)).accepted)
        #expect(engine.apply(.healAll).message == "1 fault healed")
        #expect(engine.apply(.faultDie(40)).accepted && engine.apply(.faultDie(41)).accepted)
        #expect(engine.apply(.healAll).message == "2 faults healed")
    }
}

/// Which chip holds which experts after recovery moved them.
@Suite struct ExpertDieMapTests {
    /// A dead decode NPU replaced from the spares: the state shows its experts on the spare that
    /// took them over, and none on the dead chip (they stayed on the dead chip, and the spare
    /// showed none, in what the Pod view and `/admin/state` read).
    @Test func aReplacedNPUsExpertsShowOnItsReplacement() throws {
        let engine = try FaultTests.engine(rate: 30, limit: 120)
        engine.run(until: 2)
        let dead = 20
        let before = engine.snapshot().npus[dead].experts
        #expect(!before.isEmpty, "decode NPU 20 hosts experts")
        #expect(engine.apply(.faultNPU(dead)).accepted)
        engine.run(until: 10)
        let recovery = try #require(engine.report().faultDetails.first).recovery
        let spare = try #require(engine.snapshot().npus.first { $0.id >= 40 && $0.role == .decode }, "\(recovery)")
        let npus = engine.snapshot().npus
        #expect(npus[dead].experts.isEmpty, "\(recovery)")
        #expect(spare.experts == before, "\(recovery)")
        FaultTests.expectSound(engine)
    }
}
