import PodModel
import SimKit
import Testing
import XDSTestSupport

@testable import ServingEngine

/// Each recovery policy through the ``RecoveryPolicy`` protocol: what it does to a small pod,
/// read through a ``PodView`` and recorded by a ``RecoveryActuator`` (nothing is carried out).
@Suite struct RecoveryPlaybookTests {
    /// Two prefill TEs of 4 NPUs and 2 groups (NPUs 0–7), one decode TE of 8 NPUs and 4 groups
    /// (NPUs 8–15, group g on NPUs 8+2g, 9+2g). Nothing is dead until a test says so.
    struct Pod: PodView {
        var faultSettings = FaultSettings()
        var roles: [InstanceRole] = [.prefill, .prefill, .decode]
        var teNPUs: [[Int]] = [[0, 1, 2, 3], [4, 5, 6, 7], Array(8..<16)]
        var groups = [2, 2, 4]
        var external: Set<Int> = []
        var outages: Set<Int> = []
        var restarting: Set<Int> = []
        var inFlight: Set<Int> = []
        /// Known-dead groups per TE; a group holding a known-dead die is out of service too.
        var deadGroups: [Int: Set<Int>] = [:]
        var deadNPUs: [Int: [Int]] = [:]
        var spares: [Int] = []
        var missing: [Int] = []
        var dieOwners: [Int: (te: Int, group: Int?)] = [:]
        var scalingIn: Set<Int> = []

        var teCount: Int { roles.count }
        func role(of te: Int) -> InstanceRole { roles[te] }
        func name(of te: Int) -> String { "\(roles[te].rawValue)-\(te)" }
        func decodes(_ te: Int) -> Bool { roles[te] != .prefill }
        func isExternal(_ te: Int) -> Bool { external.contains(te) }
        func npus(of te: Int) -> [Int] { teNPUs[te] }
        func groupCount(of te: Int) -> Int { groups[te] }
        func isOutOfService(_ te: Int, group g: Int) -> Bool { outages.contains(te) || holdsKnownDeadDie(te, group: g) }
        func holdsKnownDeadDie(_ te: Int, group g: Int) -> Bool { deadGroups[te]?.contains(g) ?? false }
        func hasOutage(_ te: Int) -> Bool { outages.contains(te) }
        func isRestarting(_ te: Int) -> Bool { restarting.contains(te) }
        func isRetired(_ te: Int) -> Bool { false }
        func isScalingIn(_ te: Int) -> Bool { scalingIn.contains(te) }
        func hasIterationInFlight(_ te: Int) -> Bool { inFlight.contains(te) }
        func knownDeadNPUs(of te: Int) -> [Int] { deadNPUs[te] ?? [] }
        func spareNPUs() -> [Int] { spares }
        func missingExperts(of te: Int) -> [Int] { missing }
        func locate(die: Int) -> (te: Int, group: Int?)? { dieOwners[die] }

        /// NPU `npu` of the decode TE is known dead (its group with it).
        mutating func killDecodeNPU(_ npu: Int) {
            deadNPUs[2, default: []].append(npu)
            deadGroups[2, default: []].insert((npu - 8) / 2)
        }
    }

    /// Every mechanism the policy asked for, in order (StepRecorder.swift).
    struct Recorder: RecordsRecoverySteps {
        var steps: [String] = []
    }

    static let fineGrained: any RecoveryPolicy = FineGrainedRecovery()
    static let pdFailover: any RecoveryPolicy = PDFailoverRecovery()
    static let restartWorld: any RecoveryPolicy = RestartWorldRecovery()

    func dead(_ policy: any RecoveryPolicy, te: Int, _ pod: Pod) -> [String] {
        var act = Recorder()
        policy.recoverDead(te: te, faults: [7], kind: .dead(dies: [0]), pod: pod, act: &act)
        return act.steps
    }

    @Test func theRegistryMakesEachPolicyByItsName() throws {
        let made = try Policies.recovery.names.map { try Policies.recovery.make($0) }
        #expect(made.map(\.name) == ["fine-grained", "pd-failover", "restart-world"])
        #expect(made.map { String(describing: type(of: $0)) } == ["FineGrainedRecovery", "PDFailoverRecovery", "RestartWorldRecovery"])
        #expect(Policies.help(Policies.recovery) == "fine-grained (default): redo on glitch, mask HBM, shrink decode, re-queue "
            + "prefill; pd-failover: separate P/D failover: restart the touched TE, shrink decode; restart-world: restart every "
            + "TE; in-flight requests fail", "`xds run --help` lists the same text as before")
    }

    @Test func aLostDecodeDieShrinksWhenEveryExpertKeepsAReplica() {
        var pod = Pod()
        pod.killDecodeNPU(11)
        for policy in [Self.fineGrained, Self.pdFailover] {
            #expect(dead(policy, te: 2, pod) == ["shrink 2 dropping [1] live 3 [7]"], "\(policy.name)")
        }
        #expect(dead(Self.restartWorld, te: 2, pod) == ["restart world [7]"])
    }

    @Test func aDecodeFailoverWalksItsFallbacksInOrder() {
        var pod = Pod()
        pod.killDecodeNPU(11)
        pod.missing = Array(0..<10)
        pod.spares = [20, 21]
        let shrinkNote = "note [7]: vertical shrink impossible: experts 0, 1, 2, 3, 4, 5, 6, 7… would lose their last replica"
        #expect(dead(Self.fineGrained, te: 2, pod) == [shrinkNote, "fork 2 [11] → [20] (spare) dropping [1]"])
        pod.spares = []
        let noSpare = "note [7]: spare pool has 0 healthy NPUs, 1 needed"
        #expect(dead(Self.fineGrained, te: 2, pod) == [shrinkNote, noSpare,
                                                       "restart 2: decode failover fell back to a restart of decode-2"])
        // Kill prefill to preserve decode: the last prefill TE in service, not external, gives its last NPUs.
        pod.faultSettings.killPrefillToPreserveDecode = true
        #expect(dead(Self.pdFailover, te: 2, pod) == [shrinkNote, noSpare, "kill 1 giving [7]",
                                                      "fork 2 [11] → [7] (prefill-1's) dropping [1]"])
        pod.outages = [1]
        pod.external = [0]
        #expect(dead(Self.fineGrained, te: 2, pod) == [shrinkNote, noSpare, "note [7]: no prefill TE can give 1 NPU",
                                                       "restart 2: decode failover fell back to a restart of decode-2"])
        // Every group lost: nothing left to shrink to.
        pod = Pod()
        for npu in [8, 10, 12, 14] { pod.killDecodeNPU(npu) }
        pod.spares = [20, 21, 22, 23]
        #expect(dead(Self.fineGrained, te: 2, pod) == ["note [7]: vertical shrink impossible: no DP group left",
                                                       "fork 2 [8, 10, 12, 14] → [20, 21, 22, 23] (spare) dropping [0, 1, 2, 3]"])
    }

    /// A TE a scale-in drains retires once empty: recovery spends no spare NPU on it and kills no
    /// prefill TE for it (it forked spares onto a TE about to give them straight back).
    @Test func aTEBeingScaledInGetsNoSpareNorAPrefillTEsNPUs() {
        var pod = Pod()
        pod.killDecodeNPU(11)
        pod.missing = [3]
        pod.spares = [20, 21]
        pod.scalingIn = [2]
        pod.faultSettings.killPrefillToPreserveDecode = true
        #expect(dead(Self.fineGrained, te: 2, pod) == [
            "note [7]: vertical shrink impossible: experts 3 would lose their last replica",
            "note [7]: no spare NPU spent on decode-2: it is being scaled in",
            "note [7]: no prefill TE's NPUs spent on decode-2: it is being scaled in",
            "restart 2: decode failover fell back to a restart of decode-2"])
        pod = Pod()
        pod.deadNPUs[1] = [5]
        pod.deadGroups[1] = [0]
        pod.spares = [20]
        pod.scalingIn = [1]
        #expect(dead(Self.fineGrained, te: 1, pod) == ["await repair 1"])
    }

    @Test func aLostPrefillDieForksOntoSparesElseWaitsOrRestarts() {
        var pod = Pod()
        pod.deadNPUs[0] = [1]
        pod.deadGroups[0] = [0]
        pod.spares = [20]
        #expect(dead(Self.fineGrained, te: 0, pod) == ["fork 0 [1] → [20] (spare) dropping [0, 1]"])
        pod.spares = []
        #expect(dead(Self.fineGrained, te: 0, pod) == ["await repair 0"])
        #expect(dead(Self.pdFailover, te: 0, pod) == ["restart 0: prefill-0 restarts while the other TEs take its work"])
        #expect(dead(Self.restartWorld, te: 0, pod) == ["restart world [7]"])
    }

    /// A TE already restarting waits for its return whatever the policy: no fork or shrink cuts
    /// the restart short.
    @Test func aDeadDieOnARestartingTEJoinsTheRestart() {
        var pod = Pod()
        pod.killDecodeNPU(11)
        pod.spares = [20, 21]
        pod.outages = [2]
        pod.restarting = [2]
        for policy in [Self.fineGrained, Self.pdFailover, Self.restartWorld] {
            #expect(dead(policy, te: 2, pod) == ["join restart 2 [7]"], "\(policy.name)")
        }
    }

    @Test func anHBMFaultMasksOrRestartsByPolicy() {
        var pod = Pod()
        pod.dieOwners = [16: (2, 0), 2: (0, 1), 30: (2, nil)]
        func hbm(_ policy: any RecoveryPolicy, die: Int) -> [String] {
            var act = Recorder()
            policy.recoverHBM(3, die: die, kind: .hbm(die: die), pod: pod, act: &act)
            return act.steps
        }
        #expect(hbm(Self.fineGrained, die: 16) == ["mask 2/0 die 16"])
        #expect(hbm(Self.pdFailover, die: 16) == ["restart 2: decode-2 restarts after an HBM fault on die 16"])
        #expect(hbm(Self.pdFailover, die: 2) == ["restart 0: prefill-0 restarts after an HBM fault on die 2"])
        #expect(hbm(Self.restartWorld, die: 16) == ["restart world [3]"])
        for policy in [Self.fineGrained, Self.pdFailover, Self.restartWorld] {
            #expect(hbm(policy, die: 30) == ["finish [3]: no KV cache on die 30; nothing to fail"], "expert-only die")
            #expect(hbm(policy, die: 99) == ["finish [3]: no KV cache on die 99; nothing to fail"], "unused die")
        }
    }

    @Test func aGlitchIsRedoneOrRestartsTheDecodingTEs() {
        var pod = Pod()
        pod.roles = [.prefill, .colocated, .decode]
        pod.inFlight = [0, 2]
        func glitch(_ policy: any RecoveryPolicy) -> [String] {
            var act = Recorder()
            policy.recoverGlitch(5, pod: pod, act: &act)
            return act.steps
        }
        let detected = "detected 5: collectives fail with a network error"
        #expect(glitch(Self.fineGrained) == ["redo [0, 2]"])
        #expect(glitch(Self.pdFailover) == [detected, "restart together [1, 2]: restarts after a network glitch"])
        #expect(glitch(Self.restartWorld) == [detected, "restart world [5]"])
        pod.outages = [1, 2]
        #expect(glitch(Self.pdFailover) == [detected, "finish [5]: every decoding TE is already restarting; nothing more to restart"])
        // Restart-the-world, as pd-failover: a world already restarting is not restarted again
        // (a second restart pushed its return out by the gap between the two).
        pod.outages = [0, 1, 2]
        pod.restarting = [0, 1, 2]
        #expect(glitch(Self.restartWorld) == [detected, "finish [5]: the world is already restarting; nothing more to restart"])
        // A TE back in service (decode returns before prefill) has collectives to break.
        pod.outages = [0, 1]
        pod.restarting = [0, 1]
        #expect(glitch(Self.restartWorld) == [detected, "restart world [5]"])
    }

    @Test func aDeadLinkIsReroutedUnlessTheWorldRestarts() {
        func link(_ policy: any RecoveryPolicy) -> [String] {
            var act = Recorder()
            policy.recoverLink(4, paths: [0, 3], kind: .link(npuA: 1, npuB: 9, degrade: nil), pod: Pod(), act: &act)
            return act.steps
        }
        #expect(link(Self.fineGrained) == ["reroute 4 [0, 3]"])
        #expect(link(Self.pdFailover) == ["reroute 4 [0, 3]"])
        #expect(link(Self.restartWorld) == ["restart world [4]"])
    }

    /// The same calls over the engine's view of the fault pod (static expert layout): NPU 36 holds
    /// shared-expert dies (shrink), NPU 21 the only replicas of two experts' (a spare NPU-fork).
    @Test func policiesPlanOverTheEnginesViewOfTheFaultPod() throws {
        let engine = try FaultTests.engine(rate: 30, limit: 150) { $0.eplb = .off }
        engine.run(until: 2)
        let d = try FaultTests.decodeIndex(engine)
        let pod = EnginePodView(engine: engine)
        func plan(_ policy: any RecoveryPolicy, te: Int, npu: Int) -> [String] {
            engine.faults.overrideKnownDead([2 * npu, 2 * npu + 1])
            var act = Recorder()
            policy.recoverDead(te: te, faults: [1], kind: .dead(dies: [2 * npu, 2 * npu + 1]), pod: pod, act: &act)
            return act.steps
        }
        let lost = engine.instances[d].groups.filter { engine.cluster.npus(of: d, group: $0).contains(36) }
        #expect(lost.count == 2)
        let live = engine.instances[d].groupCount - 2
        #expect(plan(Self.fineGrained, te: d, npu: 36) == ["shrink \(d) dropping \(lost) live \(live) [1]"])
        #expect(plan(Self.pdFailover, te: d, npu: 36) == ["shrink \(d) dropping \(lost) live \(live) [1]"])
        #expect(plan(Self.restartWorld, te: d, npu: 36) == ["restart world [1]"])
        let spare = try #require(engine.spareNPUs().first)
        let forked = plan(Self.fineGrained, te: d, npu: 21)
        #expect(forked.count == 2 && forked[0].contains("vertical shrink impossible: experts"))
        #expect(forked.last?.hasPrefix("fork \(d) [21] → [\(spare)] (spare)") == true)
        // Prefill-0 (NPUs 0–7) loses NPU 1.
        #expect(plan(Self.fineGrained, te: 0, npu: 1) == ["fork 0 [1] → [\(spare)] (spare) dropping [0, 1, 2, 3]"])
        #expect(plan(Self.pdFailover, te: 0, npu: 1).first?.hasPrefix("restart 0: ") == true)
        // Planning changed nothing.
        engine.faults.overrideKnownDead([])
        #expect(engine.report().faultDetails.isEmpty && !engine.isHalted(d))
        FaultTests.expectSound(engine)
    }

}
