import PodModel
import SimKit
import Testing

@testable import ServingEngine

/// ``FaultSystem/heartbeatRound(at:pod:act:)`` through its own API: a fake pod
/// (``HeartbeatView``) and an actuator recording every step and log line, in order (nothing is
/// carried out, so the fault system's records show only what the round itself decided).
@Suite struct HeartbeatRoundTests {
    /// Prefill TE 0 (NPUs 0–3, 2 groups), decode TE 1 (NPUs 8–15, 4 groups, group g on NPUs
    /// 8+2g, 9+2g; one die per NPU here), decode TE 2 (NPUs 16–17, 1 group). KV paths: 0 is
    /// TE 0 → TE 1, 1 is TE 0 → TE 2. Known-dead dies are the fault system's, read live (as the
    /// engine's view does).
    struct Pod: HeartbeatView {
        let faults: FaultSystem
        var faultSettings: FaultSettings { faults.settings }
        var roles: [InstanceRole] = [.prefill, .decode, .decode]
        var teNPUs: [[Int]] = [[0, 1, 2, 3], Array(8..<16), [16, 17]]
        var groups = [2, 4, 1]
        var outOfService: Set<[Int]> = []
        var stepping: Set<Int> = []
        var waiting: [Int: Int] = [:]
        var spares: [Int] = []

        init(_ faults: FaultSystem) { self.faults = faults }

        var teCount: Int { roles.count }
        func role(of te: Int) -> InstanceRole { roles[te] }
        func name(of te: Int) -> String { "\(roles[te].rawValue)-\(te)" }
        func decodes(_ te: Int) -> Bool { roles[te] != .prefill }
        func isExternal(_ te: Int) -> Bool { false }
        func npus(of te: Int) -> [Int] { teNPUs[te] }
        func groupCount(of te: Int) -> Int { groups[te] }
        func groupNPUs(_ te: Int, _ g: Int) -> [Int] {
            let per = teNPUs[te].count / groups[te]
            return Array(teNPUs[te][g * per..<(g + 1) * per])
        }
        func isOutOfService(_ te: Int, group g: Int) -> Bool { outOfService.contains([te, g]) || holdsKnownDeadDie(te, group: g) }
        func holdsKnownDeadDie(_ te: Int, group g: Int) -> Bool { groupNPUs(te, g).contains(where: faults.knownDead.contains) }
        func hasOutage(_ te: Int) -> Bool { false }
        func isRestarting(_ te: Int) -> Bool { false }
        func isRetired(_ te: Int) -> Bool { false }
        func hasIterationInFlight(_ te: Int) -> Bool { stepping.contains(te) }
        func knownDeadNPUs(of te: Int) -> [Int] { teNPUs[te].filter(faults.knownDead.contains) }
        func spareNPUs() -> [Int] { spares }
        func missingExperts(of te: Int) -> [Int] { [] }
        func locate(die: Int) -> (te: Int, group: Int?)? {
            for te in teNPUs.indices where teNPUs[te].contains(die) {
                return (te, (0..<groups[te]).first { groupNPUs(te, $0).contains(die) })
            }
            return nil
        }
        func isStepping(_ te: Int) -> Bool { stepping.contains(te) }
        func kvPaths(joining a: Int, _ b: Int) -> [Int] {
            [(0, 1), (0, 2)].indices.filter { c in
                let (p, d) = [(0, 1), (0, 2)][c]
                return (teNPUs[p].contains(a) && teNPUs[d].contains(b)) || (teNPUs[p].contains(b) && teNPUs[d].contains(a))
            }
        }
        func transfersWaiting(on te: Int) -> Int { waiting[te] ?? 0 }
    }

    /// Every step and log line, in order; scaling takes the TEs in `starting`.
    struct Recorder: HeartbeatActuator, RecordsRecoverySteps {
        var steps: [String] = []
        var starting: Set<Int> = []
        mutating func log(_ event: EngineEvent) { steps.append("log \(event.kind.rawValue): \(event.message)") }
        mutating func scalingTakesRecovery(_ te: Int, faults: [Int]) -> Bool {
            steps.append("scaling? \(te) \(faults)")
            return starting.contains(te)
        }
        mutating func applyFaultState() { steps.append("apply fault state") }
    }

    func round(_ faults: FaultSystem, at now: SimTime, _ pod: inout Pod, _ act: inout Recorder) {
        faults.heartbeatRound(at: now, pod: pod, act: &act)
    }

    @Test func aStalledTEIsDeclaredOnItsThirdSilentRoundAndEveryStalledTEIsRecovered() {
        let faults = FaultSystem()
        faults.killDies([10])
        let id = faults.inject(.dead(dies: [10]), label: "fault die 10", at: 0.5, stalled: [2, 1])
        var pod = Pod(faults)
        pod.outOfService = [[1, 3]]
        var act = Recorder()
        round(faults, at: 1, &pod, &act)
        round(faults, at: 2, &pod, &act)
        #expect(act.steps.isEmpty && faults.silentRounds == [1: 2, 2: 2] && faults.record(id)?.detectedAt == nil)
        round(faults, at: 3, &pod, &act)
        // TE 1 is declared first (index order): 3 of its 4 masters answer-less (group 3 was out);
        // TE 2, stalled by the same fault, is told at once; TE 2's own count starts over.
        #expect(act.steps == [
            "log faultDetected: fault 1 detected 2.5 s after injection: decode-1: 3 DP masters silent for 3 heartbeats "
                + "(3000 ms since the last answered round, stuck in a collective); device check: die 10 dead",
            "scaling? 1 [1]", "shrink 1 dropping [1] live 2 [1]",
            "scaling? 2 [1]", "shrink 2 dropping [] live 1 [1]",
        ])
        #expect(faults.record(id)?.detectedAt == 3 && faults.knownDead == [10])
        #expect(faults.record(id)?.detection.hasPrefix("decode-1: DP masters silent for 3 heartbeats") == true)
        #expect(faults.silentRounds.isEmpty, "detected: nobody is silent any more")
    }

    @Test func aStartingTEIsLeftToScaling() {
        let faults = FaultSystem()
        faults.killDies([16])
        _ = faults.inject(.dead(dies: [16]), label: "fault die 16", at: 0, stalled: [2])
        var pod = Pod(faults)
        var act = Recorder()
        act.starting = [2]
        for t in 1...3 { round(faults, at: SimTime(t), &pod, &act) }
        #expect(act.steps.count == 2 && act.steps.last == "scaling? 2 [1]", "the policy is not asked")
    }

    @Test func faultsThatStallNoBarrierAreFoundOnTheFirstRound() {
        let faults = FaultSystem()
        faults.killDies([40])
        let spare = faults.inject(.dead(dies: [40]), label: "fault die 40", at: 0)
        let hbm = faults.inject(.hbm(die: 12), label: "fault hbm die 12", at: 0)
        let slow = faults.inject(.straggler(die: 2, slowdown: 2), label: "fault straggler die 2", at: 0)
        let idle = faults.inject(.link(npuA: 4, npuB: 5, degrade: nil), label: "fault link 4 5", at: 0)
        let degraded = faults.inject(.link(npuA: 0, npuB: 16, degrade: 1.5), label: "fault link 0 16 1.5", at: 0)
        let down = faults.inject(.link(npuA: 9, npuB: 1, degrade: nil), label: "fault link 9 1", at: 0)
        var pod = Pod(faults)
        var act = Recorder()
        round(faults, at: 1, &pod, &act)
        #expect(act.steps == [
            "log faultDetected: fault 1 detected 1 s after injection: control plane: fault die 40 reported by the node agent; no TE uses it",
            "log recovery: fault 1 recovered 1 s after injection: nothing to move: the hardware carried no traffic",
            "apply fault state",
            "log faultDetected: fault 2 detected 1 s after injection: die 12: uncorrectable ECC error reported by its DP master",
            "mask 1/2 die 12",
            // The straggler's TE is not stepping: no step timing to show it yet.
            "log faultDetected: fault 4 detected 1 s after injection: control plane: link NPU 4 ↔ NPU 5 carries no KV path",
            "finish [4]: no KV path uses the link; nothing to reroute",
            "log faultDetected: fault 5 detected 1 s after injection: KV probe NPU 0 ↔ NPU 16: answered 1.5× slower than "
                + "baseline (link degraded)",
            "log faultDetected: fault 6 detected 1 s after injection: KV probe NPU 9 ↔ NPU 1: this round's probe got no answer (link blocked)",
            "reroute 6 [0]",
        ])
        #expect(faults.record(spare)?.recoveredAt == 1 && faults.knownDead == [40])
        #expect(faults.record(spare)?.recovery == "no traffic on it (spare, drained or already out of service)")
        #expect(faults.record(hbm)?.detectedAt == 1 && faults.record(slow)?.detectedAt == nil)
        #expect(faults.record(idle)?.detectedAt == 1 && faults.record(down)?.detectedAt == 1)
        #expect(faults.record(degraded)?.recovery == "kept until healed (performance fault; the policy does not isolate it)")
        // Once the straggler's TE steps, the next round sees it.
        pod.stepping = [0]
        act.steps = []
        round(faults, at: 2, &pod, &act)
        #expect(act.steps == ["log faultDetected: fault 3 detected 2 s after injection: prefill-0: step timing in the heartbeat "
            + "answers shows die 2 2× slower than its peers (the barrier waits for it)"])
        #expect(faults.record(slow)?.detectedAt == 2 && faults.record(slow)?.recovery.hasPrefix("kept until healed") == true)
    }

    /// A link that goes down between two rounds is found at the next one, less than an interval
    /// after it failed: the line said "fault 1 detected 0.642 s after injection: … no answer
    /// within 1 s", a wait longer than the time the link had been down. It says only what the
    /// round saw: its probe got no answer.
    @Test func aBlockedLinkFoundBeforeAFullIntervalClaimsNoLongerWait() throws {
        let faults = FaultSystem()
        _ = faults.inject(.link(npuA: 9, npuB: 1, degrade: nil), label: "fault link 9 1", at: 0.358)
        var pod = Pod(faults)
        var act = Recorder()
        round(faults, at: 1, &pod, &act)
        let line = try #require(act.steps.first { $0.hasPrefix("log faultDetected") })
        #expect(line.contains("detected 0.642 s after injection"), "\(line)")
        #expect(line.contains("KV probe NPU 9 ↔ NPU 1") && line.contains("link blocked"), "\(line)")
        // Any wait the line names must fit in the 0.642 s the link had been down.
        if let range = line.range(of: "within ") {
            let seconds = Double(line[range.upperBound...].prefix { $0.isNumber || $0 == "." }) ?? .infinity
            #expect(seconds <= 0.642, "the line claims a \(seconds) s wait 0.642 s after the link failed: \(line)")
        }
    }

    @Test func kvProbesReportBackPressureOncePerEpisode() {
        let faults = FaultSystem()
        var pod = Pod(faults)
        pod.waiting = [0: 5, 1: 3]
        var act = Recorder()
        round(faults, at: 1, &pod, &act)
        round(faults, at: 2, &pod, &act)
        #expect(act.steps == ["log info: KV probes to decode-1 answered: 3 transfers delayed (decode saturated), not blocked"],
                "prefill TEs are not probed; an episode is logged once")
        pod.waiting = [1: 0, 2: 1]
        round(faults, at: 3, &pod, &act)
        pod.waiting = [1: 2]
        round(faults, at: 4, &pod, &act)
        #expect(act.steps.suffix(2) == ["log info: KV probes to decode-2 answered: 1 transfers delayed (decode saturated), not blocked",
                                        "log info: KV probes to decode-1 answered: 2 transfers delayed (decode saturated), not blocked"])
    }
}
