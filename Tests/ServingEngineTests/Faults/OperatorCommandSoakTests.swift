import Foundation
import PodModel
import SimKit
import Testing
import XDSTestSupport

@testable import ServingEngine

/// Seeded, bounded random sequences of every operator command (drain/undrain, each fault kind,
/// heal, scale, rebalance, rate, policy switches in every slot, autoscale) against a running
/// engine that also serves external requests whose clients stop or disconnect at any stage.
/// After every command: KV blocks conserved and every request found where its state says;
/// at the end: every accepted request completed or failed with a reason, nothing held; and
/// the same seed and commands give the same report and event log.
@Suite(.timeLimit(.minutes(10)), .cpuBound) struct OperatorCommandSoakTests {
    /// 24 in CI; `XDS_COMMAND_SOAK_SCHEDULES=N` runs a longer soak locally.
    static let schedules = Int(ProcessInfo.processInfo.environment["XDS_COMMAND_SOAK_SCHEDULES"] ?? "") ?? 24

    @Test func randomOperatorCommandsLoseNothingAndReplayTheSame() async throws {
        let problems = try await offPool { () throws -> [String] in
            var problems: [String] = []
            for schedule in 0..<Self.schedules {
                let first = try Self.run(schedule: schedule)
                problems += first.problems
                // Same seed, same commands: the same run (only for clean schedules, to keep it short).
                if first.problems.isEmpty {
                    let again = try Self.run(schedule: schedule)
                    if again.report != first.report { problems.append("schedule \(schedule): reports differ on replay") }
                    if again.events != first.events {
                        let i = zip(again.events, first.events).enumerated().first { $0.element.0 != $0.element.1 }?.offset ?? min(again.events.count, first.events.count)
                        problems.append("schedule \(schedule): event logs differ on replay at \(i): "
                            + "\(first.events.dropFirst(i).first ?? "-") vs \(again.events.dropFirst(i).first ?? "-")")
                    }
                }
            }
            return problems
        }
        for problem in problems { Issue.record("\(problem)") }
    }

    static func run(schedule: Int) throws -> (report: RunReport, events: [String], problems: [String]) {
        let base = UInt64(ProcessInfo.processInfo.environment["XDS_COMMAND_SOAK_SEED"] ?? "") ?? 31_000
        var random = RandomStreams(seed: base + UInt64(schedule)).stream("command-soak")
        let colocated = schedule % 3 == 2
        let policy = RecoveryPolicies.names[random.int(in: 0...2)]
        let deployment = colocated ? try Deployment.resolve("colocated:3:llama-2-7b:nvidia-a100:tp1") : TestDeployments.faultPod
        let engine = try FaultTests.engine(rate: colocated ? 5 : 15, limit: 80, seed: UInt64(schedule), maxOutput: 128,
                                           deployment: deployment) {
            $0.recoveryPolicy = policy
            $0.faults.componentRestartSeconds = 3
            $0.faults.migrateDecodeOnDrain = random.bernoulli(0.5)
            $0.faults.killPrefillToPreserveDecode = random.bernoulli(0.3)
        }
        let pod = engine.topology
        let roles: [InstanceRole] = colocated ? [.colocated] : [.prefill, .decode]
        enum Step { case command(OperatorCommand), submit(prompt: Int, output: Int), cancel(Int), stop(Int) }
        var steps: [(at: Double, step: Step)] = []
        for _ in 0..<random.int(in: 6...16) {
            let at = random.bernoulli(0.3) ? Double(random.int(in: 1...10)) : random.uniform(in: 0.2..<12)
            let step: Step
            switch random.int(in: 0...9) {
            case 0, 1: step = .submit(prompt: random.int(in: 1...(colocated ? 3_000 : 40_000)), output: random.int(in: 1...300))
            case 2: step = .cancel(random.int(in: 0...7))
            case 3: step = .stop(random.int(in: 0...7))
            default: step = .command(randomCommand(&random, pod: pod, roles: roles))
            }
            steps.append((at, step))
        }
        steps.sort { $0.at < $1.at }
        let note = "schedule \(schedule) (\(deployment.name), \(policy))"
        var problems: [String] = []
        var log: [String] = []
        var external: [Int] = []
        for (at, step) in steps {
            engine.run(until: at)
            switch step {
            case .command(let command):
                let reply = engine.apply(command)
                log.append("\(at) \(command) → \(reply.accepted ? "ok" : "refused")")
            case .submit(let prompt, let output):
                external.append(engine.submitExternal(promptTokens: prompt, maxTokens: output))
                log.append("\(at) submit \(prompt)/\(output)")
            case .cancel(let k):
                guard !external.isEmpty else { continue }
                engine.cancelExternal(id: external[k % external.count])
                log.append("\(at) cancel \(external[k % external.count])")
            case .stop(let k):
                guard !external.isEmpty else { continue }
                engine.stopExternal(id: external[k % external.count])
                log.append("\(at) stop \(external[k % external.count])")
            }
            problems += FaultTests.problems(engine, "\(note) after \(log.last ?? "")")
        }
        engine.run(until: 15)
        problems += FaultTests.problems(engine, "\(note) at 15 s")
        _ = engine.apply(.rate(requestsPerSecond: 0))
        problems += FaultTests.windDown(engine, note)
        let report = engine.report()
        let r = report.requests
        if r.completed + r.failed + r.rejected != r.arrived || r.inFlight != 0 {
            problems.append("\(note): \(r.arrived) arrived but \(r.completed) completed, \(r.failed) failed, \(r.rejected) rejected")
        }
        if r.failureReasons.values.reduce(0, +) != r.failed {
            problems.append("\(note): \(r.failed) failed but reasons for \(r.failureReasons.values.reduce(0, +)): \(r.failureReasons)")
        }
        if !problems.isEmpty { problems.append("\(note) steps: \(log.joined(separator: " | "))") }
        return (report, engine.recentEvents().map { "\($0.time) \($0.message)" }, problems)
    }

    static func randomCommand(_ random: inout RandomStream, pod: PodTopology, roles: [InstanceRole]) -> OperatorCommand {
        let npus = pod.npuCount, nodes = pod.nodes
        let kind = random.int(in: 0...17)
        switch kind {
        case 0...5: return FaultTests.randomFault(kind: kind, &random, pod: pod)
        case 6:
            let a = random.int(in: 0...(npus - 1)), b = random.int(in: 0...(npus - 1))
            return .faultLink(from: a, to: b, degrade: random.bernoulli(0.5) ? nil : 4)
        case 7: return .drain(node: random.int(in: 0...(nodes - 1)))
        case 8: return .undrain(node: random.int(in: 0...(nodes - 1)))
        case 9: return random.bernoulli(0.5) ? .healAll : .heal(faultID: random.int(in: 1...4))
        case 10: return .rebalance
        case 11: return .rate(requestsPerSecond: Double(random.int(in: 0...40)))
        case 12:
            let catalog = Policies.catalogs[random.int(in: 0...(Policies.catalogs.count - 1))]
            return .policy(slot: catalog.slot.command, name: catalog.names[random.int(in: 0...(catalog.names.count - 1))])
        case 13: return .autoscale(random.bernoulli(0.5) ? "slo" : "off")
        default:
            let role = roles[random.int(in: 0...(roles.count - 1))]
            let change: ScaleChange = switch random.int(in: 0...2) {
            case 0: .by(random.int(in: 1...2))
            case 1: .by(-random.int(in: 1...2))
            default: .to(random.int(in: 1...4))
            }
            let paths: [LoadPath?] = [nil, nil, .npuFork, .dram]
            return .scale(role: role, change: change, from: paths[random.int(in: 0...(paths.count - 1))])
        }
    }
}
