import PodModel
import SimKit
import Testing
import XDSTestSupport

@testable import ServingEngine

@Suite(.timeLimit(.minutes(10))) struct RecoveryPolicyTests {
    @Test func policiesAreSelectedByNameAndUnknownNamesAreRefused() throws {
        #expect(RecoveryPolicies.names == ["fine-grained", "pd-failover", "restart-world"])
        #expect(EngineConfiguration(deployment: .superpod).recoveryPolicy == "fine-grained")
        #expect(throws: ConfigError.self) { try FaultTests.engine { $0.recoveryPolicy = "pray" } }
        for name in RecoveryPolicies.names {
            #expect(try FaultTests.engine { $0.recoveryPolicy = name }.report().recoveryPolicy == name)
        }
    }

    /// Superpod's static layout (EP320: 256 routed + 32 redundant + 32 shared-expert dies): the
    /// redundant replicas cover experts 0–31 only.
    @Test func superpodShrinkRuleFollowsTheExpertLayout() throws {
        var config = EngineConfiguration(deployment: .superpod)
        config.eplb = .off
        let engine = try ServingEngine(configuration: config, workload: FixedWorkload([]))
        let d = try FaultTests.decodeIndex(engine)
        let base = engine.cluster.npus(of: d)[0] * 2
        func missing(_ dies: [Int]) -> [Int] {
            engine.faults.overrideKnownDead(Set(dies.map { base + $0 }))
            return engine.missingExperts(instance: d)
        }
        #expect(missing([]) == [])
        #expect(missing([5]) == [], "expert 5 has a replica on die 261")
        #expect(missing([5, 261]) == [5])
        #expect(missing([84, 85]) == [84, 85])
        #expect(missing([300, 319]) == [], "shared-expert dies")
        #expect(missing([256, 287]) == [], "redundant replicas")
        // With EPLB the replicas follow the hot experts layer by layer: a routed die almost
        // always holds some expert's last replica, the shared-expert dies never do.
        let planned = try ServingEngine(configuration: EngineConfiguration(deployment: .superpod), workload: FixedWorkload([]))
        engine.faults.overrideKnownDead([base + 300, base + 301])
        planned.faults.overrideKnownDead(engine.faults.knownDead)
        #expect(planned.missingExperts(instance: d) == [])
        planned.faults.overrideKnownDead([base + 84])
        #expect(!planned.missingExperts(instance: d).isEmpty)
    }

    @Test func decodeShrinkKeepsEveryExpertAndFallsBackWithAnEvent() throws {
        // Static placement: 9 slots on each of the 32 routed dies, the 32 extra slots on the same
        // dies as their experts; dies 32–47 of the TE (NPUs 32–39) hold the shared expert.
        let engine = try FaultTests.engine(rate: 30, limit: 150) { $0.eplb = .off }
        let d = try FaultTests.decodeIndex(engine)
        engine.run(until: 2.5)
        // NPU 36 = shared-expert dies: vertical shrink.
        #expect(engine.apply(.faultNPU(36)).accepted)
        engine.run(until: 6)
        #expect(engine.report().faultDetails[0].recovery.contains("vertical shrink"))
        #expect(engine.instances[d].groups.filter { engine.cluster.isOutOfService(te: d, group: $0) }.count == 2)
        #expect(engine.missingExperts(instance: d) == [])
        // NPU 21 = TE dies 10–11, the only replicas of their experts: shrink impossible → spare NPU-fork.
        #expect(engine.apply(.faultNPU(21)).accepted)
        engine.run(until: 10)
        let second = engine.report().faultDetails[1].recovery
        #expect(second.contains("shrink impossible") && second.contains("spare NPUs 40, 41"), "\(second)")
        #expect(engine.cluster.npus(of: d).contains(40) && !engine.cluster.npus(of: d).contains(21))
        #expect(engine.missingExperts(instance: d) == [])
        // The spare pool used up (node 5 dead): NPU 22 falls back to a restart of decode.
        #expect(engine.apply(.faultNode(5)).accepted)
        #expect(engine.apply(.faultNPU(22)).accepted)
        engine.run(until: 14)
        let last = engine.report().faultDetails[3].recovery
        #expect(last.contains("shrink impossible") && last.contains("spare pool has 0") && last.contains("restart"), "\(last)")
        #expect(FaultTests.events(engine, .recovery).contains { $0.contains("shrink impossible") })
        FaultTests.expectSound(engine)
        // Node 5 took NPU 40 (which had replaced NPU 21) with the spares: with NPU 22 decode lost 4 of
        // its 32 routed-expert dies, and 28 × 9 slots cannot hold the 256 experts. Back from its
        // restart it waits for repair (it came back serving, experts routed to the dead dies).
        engine.run(until: 20)
        #expect(engine.faults.outage(of: d) == .awaitingRepair, "\(engine.faults.outages)")
        #expect(FaultTests.events(engine, .recovery).contains { $0.contains("cannot hold every expert (256)") })
        _ = engine.apply(.healAll)
        #expect(engine.runToCompletion(limit: 3_600))
        FaultTests.expectSound(engine)
        // Shrink, fork and restart re-prefill; what fails, fails for want of a decode TE.
        let reasons = engine.report().requests.failureReasons
        #expect(reasons.keys.allSatisfy { $0.contains("decode TE") }, "\(reasons)")
    }

    @Test func killPrefillToPreserveDecodeGivesDecodeTheNPUs() throws {
        let engine = try FaultTests.engine(rate: 30, limit: 120) { $0.faults.killPrefillToPreserveDecode = true }
        engine.run(until: 2.5)
        #expect(engine.apply(.faultNode(5)).accepted)       // no spares left
        #expect(engine.apply(.faultNPU(21)).accepted)
        engine.run(until: 8)
        let recovery = engine.report().faultDetails[1].recovery
        #expect(recovery.contains("kill prefill to preserve decode"), "\(recovery)")
        #expect(engine.cluster.npus(of: 1).count == 7)
        #expect(engine.runToCompletion(limit: 3_600))
        FaultTests.expectSound(engine)
        FaultTests.expectEmpty(engine)
    }

    @Test func restartTheWorldFailsEverythingInFlightAndComesBack() throws {
        let engine = try FaultTests.engine(rate: 30, limit: 200) { $0.recoveryPolicy = "restart-world" }
        engine.run(until: 2.5)
        let inFlight = engine.report().requests.inFlight
        #expect(engine.apply(.faultDie(40)).accepted)
        engine.run(until: 6)
        let detail = engine.report().faultDetails[0]
        #expect(detail.requestsFailed >= inFlight, "\(detail)")
        #expect(FaultTests.events(engine, .requestFailed).allSatisfy { $0.contains("restart of the world after fault 1") })
        #expect(detail.recoveredAt == nil, "decode takes 5 s, prefill 10 s in the test configuration")
        // Detected at 5 s (three silent rounds), prefill back 10 s later.
        engine.run(until: 16)
        #expect(engine.report().faultDetails[0].timeToRecoverS == 12.5)
        #expect(engine.runToCompletion(limit: 3_600))
        FaultTests.expectSound(engine)
        #expect(engine.report().requests.rejected > 0, "arrivals during the restart are turned away")
    }

    /// A glitch while the world restarts finds nothing to break: the world comes back when the
    /// first restart said, and the glitch is recovered at once. Before, the second glitch
    /// restarted the world again, pushing its return out by the gap between the two.
    @Test func aGlitchDuringAWorldRestartDoesNotRestartItAgain() throws {
        let engine = try FaultTests.engine(rate: 30, limit: 200) { $0.recoveryPolicy = "restart-world" }
        engine.run(until: 2.5)
        #expect(engine.apply(.faultGlitch).accepted)
        let returns = engine.faults.outages
        #expect(!returns.isEmpty && returns.values.allSatisfy { if case .restarting = $0 { true } else { false } })
        engine.run(until: 6.5)
        #expect(engine.apply(.faultGlitch).accepted)
        #expect(engine.faults.outages == returns, "the second glitch restarted the world again")
        let second = engine.report().faultDetails[1]
        #expect(second.recoveredAt == 6.5 && second.requestsFailed == 0, "\(second)")
        #expect(second.recovery.contains("already restarting"), "\(second.recovery)")
        // Decode back after 5 s, prefill after 10 s: the world is back at 12.5 s.
        engine.run(until: 20)
        #expect(engine.report().faultDetails[0].timeToRecoverS == 10, "\(engine.report().faultDetails[0])")
        #expect(engine.runToCompletion(limit: 3_600))
        FaultTests.expectSound(engine)
        FaultTests.expectEmpty(engine)
    }

    /// Decode is back before prefill: a glitch then breaks decode's collectives and the world
    /// restarts, but the prefill TEs still restarting keep their return time.
    @Test func aWorldRestartKeepsTheReturnOfTEsStillRestarting() throws {
        let engine = try FaultTests.engine(rate: 30, limit: 200) { $0.recoveryPolicy = "restart-world" }
        let decode = try FaultTests.decodeIndex(engine)
        engine.run(until: 2.5)
        #expect(engine.apply(.faultGlitch).accepted)
        engine.run(until: 9)
        #expect(!engine.faults.hasOutage(decode), "decode is back at 7.5 s")
        #expect(engine.apply(.faultGlitch).accepted)
        #expect(engine.faults.outage(of: decode) == .restarting(until: 14))
        for p in engine.instances.indices where engine.instances[p].role == .prefill {
            #expect(engine.faults.outage(of: p) == .restarting(until: 12.5), "prefill TE \(p) keeps its return")
        }
        #expect(engine.report().faultDetails[1].recovery.contains("already restarting keep their return"),
                "\(engine.report().faultDetails[1].recovery)")
        engine.run(until: 20)
        let details = engine.report().faultDetails
        #expect(details[0].recoveredAt == 12.5 && details[1].recoveredAt == 14, "\(details)")
        #expect(engine.runToCompletion(limit: 3_600))
        FaultTests.expectSound(engine)
        FaultTests.expectEmpty(engine)
    }

    @Test func pdFailoverRestartsOnlyThePrefillTEThatFailed() throws {
        let engine = try FaultTests.engine(rate: 60, limit: 200) { $0.recoveryPolicy = "pd-failover" }
        engine.run(until: 1)
        #expect(engine.apply(.faultDie(3)).accepted)         // prefill-0
        engine.run(until: 5)
        #expect(engine.faults.outages[0] != nil && engine.faults.outages[1] == nil)
        #expect(engine.report().faultDetails[0].recovery.contains("restarts while the other TEs take its work"))
        #expect(engine.runToCompletion(limit: 3_600))
        FaultTests.expectSound(engine)
        #expect(engine.report().requests.failed == 0)
    }

    @Test func glitchRedoesTheIterationAndFailsNothing() throws {
        let plain = try FaultTests.engine(rate: 30, limit: 100)
        #expect(plain.runToCompletion(limit: 3_600))
        let engine = try FaultTests.engine(rate: 30, limit: 100)
        engine.run(until: 2.5)
        #expect(engine.apply(.faultGlitch).accepted)
        #expect(engine.runToCompletion(limit: 3_600))
        let report = engine.report()
        #expect(report.requests.completed == plain.report().requests.completed)
        #expect(report.requests.failed == 0)
        let detail = report.faultDetails[0]
        #expect(detail.recovery.contains("rolled back and redid"), "\(detail)")
        #expect(report.latencyMs.e2e.mean >= plain.report().latencyMs.e2e.mean, "the step time is lost")
        #expect(engine.snapshot().activeFaults.isEmpty, "a glitch is transient")
    }

    @Test func stragglerRaisesTheStepByAboutItsFactorAndHealRestoresIt() throws {
        let engine = try FaultTests.engine(rate: 30, limit: 200)
        let d = try FaultTests.decodeIndex(engine)
        engine.run(until: 4)
        let normal = engine.decodeStepSeconds(d).seconds
        #expect(normal > 0)
        #expect(engine.apply(.faultStraggler(die: 50, slowdown: 2)).accepted)
        let slow = engine.decodeStepSeconds(d).seconds
        #expect(slow / normal > 1.6 && slow / normal <= 2.0, "\(slow / normal)")
        #expect(engine.snapshot().npus[25].faulted == true, "the console shows which NPU is slow")
        #expect(engine.snapshot().activeFaults[0].description.contains("straggler die 50 (2× slower)"))
        #expect(engine.apply(.heal(faultID: 1)).accepted)
        // Back to normal (expert routing is sampled per step: equal within its noise).
        #expect(abs(engine.decodeStepSeconds(d).seconds / normal - 1) < 0.03)

        // TPOT over whole runs: about the factor.
        let base = try FaultTests.engine(rate: 10, limit: 40)
        #expect(base.runToCompletion(limit: 3_600))
        let straggling = try FaultTests.engine(rate: 10, limit: 40)
        #expect(straggling.apply(.faultStraggler(die: 50, slowdown: 2)).accepted)
        #expect(straggling.runToCompletion(limit: 3_600))
        let ratio = straggling.report().latencyMs.tpot.mean / base.report().latencyMs.tpot.mean
        #expect(ratio > 1.6 && ratio <= 2.05, "TPOT ratio \(ratio)")
    }
}

/// On a MoE–attention layout a straggler slows the barrier its die sits at. It used to change
/// nothing: `fault straggler die 600 slowdown 3` on `xdeepserve-ma` was detected and listed, and
/// TPOT stayed 14.5 ms (the layout's step took no straggler factor).
@Suite struct MoEAttentionStragglerTests {
    @Test func aSlowAttentionOrExpertDieSlowsTheStep() throws {
        let engine = try FaultTests.engine(rate: 30, limit: 200, deployment: try Deployment.resolve("xdeepserve-ma"))
        let d = try FaultTests.decodeIndex(engine)
        engine.run(until: 8)
        let normal = engine.decodeStepSeconds(d).seconds
        #expect(normal > 0)
        // Die 600: an attention die (the layout puts its 288 expert dies first).
        #expect(engine.apply(.faultStraggler(die: 600, slowdown: 3)).accepted)
        let slowAttention = engine.decodeStepSeconds(d).seconds
        #expect(slowAttention / normal > 1.3, "attention straggler: \(slowAttention / normal)")
        #expect(engine.apply(.healAll).accepted)
        #expect(abs(engine.decodeStepSeconds(d).seconds / normal - 1) < 0.03)
        // Die 100: a routed expert die.
        #expect(engine.apply(.faultStraggler(die: 100, slowdown: 8)).accepted)
        let slowExperts = engine.decodeStepSeconds(d).seconds
        #expect(slowExperts / normal > 1.1, "expert straggler: \(slowExperts / normal)")
    }
}

/// `rebalance` while TEs are out of service for recovery: they run no step and move no expert.
@Suite struct RebalanceDuringOutageTests {
    /// Under restart-world every TE restarts after a decode die dies. A `rebalance` then used to
    /// start and finish a swap on the restarting decode TE ("rebalance done in 0.02 s: served
    /// imbalance 3.96 → 1.16", counted in `experts.rebalances`); now it is refused, saying why.
    @Test func aRestartingDecodeTEIsNotRebalanced() throws {
        let engine = try FaultTests.engine(rate: 30, limit: 400) {
            $0.recoveryPolicy = "restart-world"
            $0.expertSkew = true
            $0.eplb = .off
        }
        engine.run(until: 8)
        let d = try FaultTests.decodeIndex(engine)
        #expect(engine.apply(.faultDie(engine.cluster.dies(of: d)[0])).accepted)
        // Detected after three silent heartbeats; the restart takes 5 s here.
        engine.run(until: 12.5)
        #expect(engine.faults.hasOutage(d), "detected by now: the world restarts")
        let before = engine.report().experts.rebalances
        let reply = engine.apply(.rebalance)
        #expect(!reply.accepted, "\(reply.message)")
        #expect(reply.message.contains("\(engine.instances[d].name) is out of service"), "\(reply.message)")
        #expect(!engine.recentEvents().contains { $0.kind == .rebalance && $0.message.hasPrefix("\(engine.instances[d].name): rebalance") })
        engine.run(until: 14)
        #expect(engine.report().experts.rebalances == before)
    }
}
