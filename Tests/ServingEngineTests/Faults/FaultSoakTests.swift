import Foundation
import PodModel
import SimKit
import Testing
import XDSTestSupport

@testable import ServingEngine

/// Seeded soak: short random fault schedules (kinds, targets, times and policies drawn from the
/// seed) on `faultPod`, with all invariants checked after every command and at the end.
@Suite(.timeLimit(.minutes(10)), .cpuBound) struct FaultSoakTests {
    /// 100 in CI (about 20 s in debug); `XDS_SOAK_SCHEDULES=N` runs a longer soak locally.
    static let schedules = Int(ProcessInfo.processInfo.environment["XDS_SOAK_SCHEDULES"] ?? "") ?? 100

    /// The schedules run off the test pool (``offPool``) so live-server tests are not starved on
    /// two cores; problems are collected and recorded afterwards.
    @Test func randomFaultSchedulesLoseNothing() async throws {
        let (kinds, problems, gaps) = try await offPool { () throws -> ([String: Int], [String], [String]) in
            var kinds: [String: Int] = [:]
            var problems: [String] = [], gaps: [String] = []
            var reports: [RunReport] = []
            for schedule in 0..<Self.schedules {
                let (report, found, known) = try Self.run(schedule: schedule, kinds: &kinds)
                gaps += known
                reports.append(report)
                problems += found
            }
            // Same seed, same schedule: the same run, bit for bit (architecture.md principle 1).
            var ignored: [String: Int] = [:]
            for schedule in [3, 42] where try Self.run(schedule: schedule, kinds: &ignored).report != reports[schedule] {
                problems.append("schedule \(schedule) is not deterministic")
            }
            return (kinds, problems, gaps)
        }
        for problem in problems { Issue.record("\(problem)") }
        // Engine gaps the checks found, recorded as known issues (they do not fail the run).
        for gap in gaps { withKnownIssue("known engine gap", isIntermittent: true) { Issue.record("\(gap)") } }
        // The seeds exercise every kind of fault.
        #expect(Set(kinds.keys) == ["die", "npu", "node", "link", "straggler", "hbm", "glitch", "drain", "heal"], "\(kinds)")
    }

    /// One schedule: faults, heals and drains at seeded times, invariants after every command,
    /// then `heal all`, undrain everything, and run until every request has left.
    static func run(schedule: Int, kinds: inout [String: Int]) throws -> (report: RunReport, problems: [String], knownGaps: [String]) {
        let base = UInt64(ProcessInfo.processInfo.environment["XDS_SOAK_SEED"] ?? "") ?? 7_000
        var random = RandomStreams(seed: base + UInt64(schedule)).stream("fault-soak")
        let policy = RecoveryPolicies.names[random.int(in: 0...2)]
        let killPrefill = random.bernoulli(0.3)
        let migrate = random.bernoulli(0.5)
        let engine = try FaultTests.engine(rate: 25, limit: 40, seed: UInt64(schedule), maxOutput: 128) {
            $0.recoveryPolicy = policy
            $0.faults.killPrefillToPreserveDecode = killPrefill
            $0.faults.migrateDecodeOnDrain = migrate
            $0.faults.componentRestartSeconds = 3
            // Skewed expert traffic and sampled routing cost debug time (mostly at engine set-up):
            // one schedule in four keeps them (with the live EPLB placement behind the shrink
            // rule), the rest route perfectly over uniform traffic.
            $0.eplb = schedule % 4 == 0 ? .on : .perfect
            $0.expertSkew = schedule % 4 == 0
        }
        var gaps: [String] = []
        let note = "schedule \(schedule) (\(policy)\(killPrefill ? ", kill prefill" : "")\(migrate ? ", migrate" : ""))"
        var problems: [String] = []
        var steps: [(at: Double, command: OperatorCommand)] = []
        for _ in 0..<random.int(in: 2...6) { steps.append((random.uniform(in: 0.2..<12), randomCommand(&random))) }
        steps.sort { $0.at < $1.at }
        for step in steps {
            engine.run(until: step.at)
            if engine.apply(step.command).accepted { kinds[kind(step.command), default: 0] += 1 }
            problems += FaultTests.problems(engine, "\(note) after \(step.command) at \(step.at)", blocks: false)
        }
        engine.run(until: 15)
        problems += FaultTests.problems(engine, "\(note) at 15 s")
        let handled = handledBeforeHeal(engine, note, until: 15)
        problems += handled.problems
        gaps += handled.knownGaps
        _ = engine.apply(.healAll)
        for node in engine.drainedNodes.sorted() { _ = engine.apply(.undrain(node: node)) }
        // Restarts under way finish on their own time (prefill restarts after decode: 2 × 3 s).
        engine.run(until: engine.now + 7)
        if !engine.runToCompletion(limit: 600) {
            problems.append("\(note): work stuck after heal all: \(engine.report().requests) \(engine.faults.outages)")
        }
        problems += FaultTests.problems(engine, "\(note) at the end")
        problems += FaultTests.leftovers(engine, note)
        let report = engine.report()
        // Every fault is recovered, or the operator's `heal` came before anything detected it (a
        // straggler on a die no stepping TE uses, a heal within the first heartbeat rounds): no
        // recovery acted on those, and they are not counted recovered.
        if !report.faultDetails.allSatisfy({ $0.recoveredAt != nil || $0.healedBeforeDetection }) {
            problems.append("\(note): unrecovered \(report.faultDetails)")
        }
        if report.faultDetails.contains(where: { $0.healedBeforeDetection && ($0.detectedAt != nil || $0.recoveredAt != nil) }) {
            problems.append("\(note): healed before detection, yet detected or recovered \(report.faultDetails)")
        }
        if report.faults.recovered + report.faults.healedBeforeDetection != report.faults.injected {
            problems.append("\(note): \(report.faults) does not account for every fault")
        }
        return (report, problems, gaps)
    }

    /// Seconds from injection by which a fault must have been found: three silent heartbeat
    /// rounds (1 s each) plus the partial round the fault fell in.
    static let detectWithin = 4.01
    /// Seconds from detection by which a hard fault must have been recovered by the policy alone:
    /// the slowest recovery is restart-the-world, prefill back after 2 × 3 s.
    static let recoverWithin = 7.01

    /// Detection and recovery as the policy did them, judged before `heal all` (which marks every
    /// fault recovered): a fault that stayed unhealed long enough was detected, and a hard fault
    /// detected long enough ago was recovered — before any heal of it. Restart-the-world restarts
    /// everything again on each new hard fault, so there the recovery clock runs from the last
    /// one. Returns problems, and apart the misses that are known engine gaps.
    static func handledBeforeHeal(_ engine: ServingEngine, _ note: String, until now: Double)
        -> (problems: [String], knownGaps: [String])
    {
        var problems: [String] = []
        let gaps: [String] = []  // none known: a pd-failover glitch with no decode TE to restart now ends at once
        let records = engine.faults.records
        let worldRestarts = engine.configuration.recoveryPolicy == "restart-world"
        for r in records {
            let end = min(r.healedAt ?? now, now)
            let label = "\(note): fault \(r.id) (\(r.label) at \(r.injectedAt))"
            if case .straggler = r.kind { continue }   // found from step timings: only while its TE steps
            if end - r.injectedAt >= detectWithin {
                guard let detected = r.detectedAt, detected <= end else {
                    problems.append("\(label) not detected by \(end) s: \(r.detection)")
                    continue
                }
            }
            guard !r.kind.isPerformance, var detected = r.detectedAt else { continue }
            if worldRestarts {
                detected = records.compactMap { o in o.kind.isPerformance ? nil : o.detectedAt }
                    .filter { $0 >= detected && $0 <= end }.max() ?? detected
            }
            guard end - detected >= recoverWithin else { continue }
            let recoveredInTime: Bool
            if case .glitch = r.kind {
                // A glitch ends itself when recovered (healedAt = recoveredAt).
                recoveredInTime = r.recoveredAt.map { $0 <= end } ?? false
            } else {
                recoveredInTime = r.recoveredAt.map { recovered in r.healedAt.map { recovered < $0 } ?? (recovered <= now) } ?? false
            }
            guard !recoveredInTime else { continue }
            let problem = "\(label) detected at \(detected) but not recovered before \(end) s"
                + (r.healedAt != nil ? " (healed then)" : "") + ": \(r.recovery)"
            problems.append(problem)
        }
        return (problems, gaps)
    }

    static func randomCommand(_ random: inout RandomStream) -> OperatorCommand {
        // faultPod: 6 nodes, 48 NPUs, 96 dies; decode on NPUs 16–39, spares 40–47.
        switch random.int(in: 0...9) {
        case 0, 1: return .faultDie(random.int(in: 0...95))
        case 2: return .faultNPU(random.int(in: 0...47))
        case 3: return .faultNode(random.int(in: 0...5))
        case 4:
            let a = random.int(in: 0...15), b = random.int(in: 16...39)
            return .faultLink(from: a, to: b, degrade: random.bernoulli(0.5) ? nil : 1 + random.uniform() * 4)
        case 5: return .faultStraggler(die: random.int(in: 0...95), slowdown: 1.5 + random.uniform() * 3)
        case 6: return .faultHBM(die: random.int(in: 0...95))
        case 7: return .faultGlitch
        case 8: return random.bernoulli(0.5) ? .drain(node: random.int(in: 0...5)) : .undrain(node: random.int(in: 0...5))
        default: return random.bernoulli(0.5) ? .healAll : .heal(faultID: random.int(in: 1...4))
        }
    }

    static func kind(_ command: OperatorCommand) -> String {
        switch command {
        case .faultDie: "die"
        case .faultNPU: "npu"
        case .faultNode: "node"
        case .faultLink: "link"
        case .faultStraggler: "straggler"
        case .faultHBM: "hbm"
        case .faultGlitch: "glitch"
        case .drain, .undrain: "drain"
        default: "heal"
        }
    }
}

