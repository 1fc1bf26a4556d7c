import Foundation
import PodModel
import SimKit
import Testing
import XDSTestSupport

@testable import ServingEngine

/// Seeded soak of scaling mixed with faults, drains, policy switches and the autoscaler (the
/// fault soak never scales): random schedules on the fault pod and on four colocated Llama
/// replicas, every invariant checked after each command and once everything has left.
@Suite(.timeLimit(.minutes(10))) struct ScaleFaultSoakTests {
    /// 40 in CI; `XDS_SCALE_SOAK_SCHEDULES=N` runs a longer soak locally.
    static let schedules = Int(ProcessInfo.processInfo.environment["XDS_SCALE_SOAK_SCHEDULES"] ?? "") ?? 40

    @Test func randomScaleAndFaultSchedulesLoseNothing() async throws {
        let problems = try await offPool { () throws -> [String] in
            var problems: [String] = []
            for schedule in 0..<Self.schedules { problems += try Self.run(schedule: schedule) }
            return problems
        }
        for problem in problems { Issue.record("\(problem)") }
    }

    static func run(schedule: Int) throws -> [String] {
        let base = UInt64(ProcessInfo.processInfo.environment["XDS_SCALE_SOAK_SEED"] ?? "") ?? 9_000
        var random = RandomStreams(seed: base + UInt64(schedule)).stream("scale-soak")
        let colocated = schedule % 3 == 2
        let policy = RecoveryPolicies.names[random.int(in: 0...2)]
        let deployment = colocated ? try Deployment.resolve("colocated:4:llama-2-7b:nvidia-a100:tp1") : TestDeployments.faultPod
        let engine = try FaultTests.engine(rate: colocated ? 6 : 20, limit: 120, seed: UInt64(schedule), maxOutput: 128,
                                           deployment: deployment) {
            $0.recoveryPolicy = policy
            $0.faults.componentRestartSeconds = 3
            $0.faults.migrateDecodeOnDrain = random.bernoulli(0.5)
            $0.faults.killPrefillToPreserveDecode = random.bernoulli(0.3)
            $0.eplb = .perfect
        }
        let pod = engine.topology
        let roles: [InstanceRole] = colocated ? [.colocated] : [.prefill, .decode]
        var steps: [(at: Double, command: OperatorCommand)] = []
        for _ in 0..<random.int(in: 3...9) {
            let at = random.bernoulli(0.3) ? Double(random.int(in: 1...10)) : random.uniform(in: 0.5..<12)
            steps.append((at, randomCommand(&random, pod: pod, roles: roles)))
        }
        steps.sort { $0.at < $1.at }
        let note = "schedule \(schedule) (\(deployment.name), \(policy))"
        var problems: [String] = []
        var log: [String] = []
        for step in steps {
            engine.run(until: step.at)
            let reply = engine.apply(step.command)
            log.append("\(step.at) \(step.command) → \(reply.accepted ? "ok" : "refused: \(reply.message)")")
            problems += FaultTests.problems(engine, "\(note) after \(step.command) at \(step.at)")
        }
        engine.run(until: 15)
        problems += FaultTests.problems(engine, "\(note) at 15 s")
        problems += FaultTests.windDown(engine, note)
        // Starts by pool or object store take minutes: an idle pod skips to their end.
        engine.run(until: max(engine.now + 30, 3_000))
        let report = engine.report()
        if report.faults.recovered + report.faults.healedBeforeDetection != report.faults.injected {
            problems.append("\(note): \(report.faults) \(report.faultDetails.filter { $0.recoveredAt == nil && !$0.healedBeforeDetection })")
        }
        for detail in report.scaling?.details ?? [] where detail.readyS == nil && detail.to != detail.from {
            problems.append("\(note): scale operation never completed: \(detail)")
        }
        if !problems.isEmpty { problems.append("\(note) steps: \(log.joined(separator: " | "))") }
        return problems
    }

    static func randomCommand(_ random: inout RandomStream, pod: PodTopology, roles: [InstanceRole]) -> OperatorCommand {
        let nodes = pod.nodes
        let kind = random.int(in: 0...13)
        switch kind {
        case 0...5: return FaultTests.randomFault(kind: kind, &random, pod: pod)
        case 6: return random.bernoulli(0.5) ? .drain(node: random.int(in: 0...(nodes - 1))) : .undrain(node: random.int(in: 0...(nodes - 1)))
        case 7: return random.bernoulli(0.5) ? .healAll : .heal(faultID: random.int(in: 1...4))
        case 8: return .policy(slot: "recovery", name: RecoveryPolicies.names[random.int(in: 0...2)])
        case 9: return .autoscale(random.bernoulli(0.5) ? "slo" : "off")
        default:
            let role = roles[random.int(in: 0...(roles.count - 1))]
            let change: ScaleChange = switch random.int(in: 0...2) {
            case 0: .by(random.int(in: 1...3))
            case 1: .by(-random.int(in: 1...3))
            default: .to(random.int(in: 1...6))
            }
            let paths: [LoadPath?] = [nil, nil, .npuFork, .dram, .pool, .objectStore]
            return .scale(role: role, change: change, from: paths[random.int(in: 0...(paths.count - 1))])
        }
    }
}
