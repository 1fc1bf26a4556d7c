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

    /// Denser schedules (a command every second or so over a simulated minute and a half, the
    /// autoscaler's policies flipped among them, the same target hit again and again), the
    /// invariants checked after every 0.25 s slice and not only after commands (faults of every
    /// kind on one die, its NPU and its node overlapping, healed one by one or all at once): the clock
    /// reaches every slice, KV blocks are conserved, every request sits where its state says,
    /// and the hardware adds up (``hardwareProblems(_:)``).
    @Test func denseSchedulesKeepTheInvariantsAtEverySlice() async throws {
        _ = try await runSchedules(max(1, Self.schedules / 4), coverage: ()) { schedule, _ in try Self.slices(schedule: schedule) }
    }

    static func slices(schedule: Int) throws -> [String] {
        var random = RandomStreams(seed: 9_500 + UInt64(schedule)).stream("scale-slices")
        let colocated = schedule % 2 == 1
        let deployment = colocated ? try Deployment.resolve("colocated:4:llama-2-7b:nvidia-a100:tp1") : TestDeployments.faultPod
        let engine = try FaultTests.engine(rate: colocated ? 6 : 20, limit: 400, seed: UInt64(schedule), maxOutput: 128,
                                           deployment: deployment) {
            $0.recoveryPolicy = RecoveryPolicies.names[schedule % RecoveryPolicies.names.count]
            $0.faults.componentRestartSeconds = 3
            $0.faults.migrateDecodeOnDrain = random.bernoulli(0.5)
            $0.eplb = .perfect
        }
        let pod = engine.topology
        let roles: [InstanceRole] = colocated ? [.colocated, .prefill, .decode] : [.prefill, .decode, .colocated]
        let note = "slices \(schedule) (\(deployment.name))"
        var problems: [String] = []
        var log: [String] = []
        // One target, hit again and again: a die, its NPU, its node.
        let die = random.int(in: 0...(pod.dieCount - 1))
        let npu = die / max(1, pod.dieCount / pod.npuCount)
        let node = npu / pod.npusPerNode
        let repeated: [OperatorCommand] = [.faultDie(die), .faultNPU(npu), .faultNode(node), .faultHBM(die: die), .drain(node: node),
                                           .undrain(node: node), .healAll, .autoscale("slo"), .autoscale("off"),
                                           .faultStraggler(die: die, slowdown: 3), .faultLink(from: npu, to: (npu + 1) % pod.npuCount, degrade: nil),
                                           .heal(faultID: random.int(in: 1...8)), .heal(faultID: random.int(in: 1...8))]
        var t = 0.0
        while t < 90 {
            let next = t + random.uniform(in: 0.2..<2)
            while t < next {
                t = min(next, t + 0.25)
                engine.run(until: t)
                if engine.now < t { problems.append("\(note): the clock stopped at \(engine.now), asked to run to \(t)") }
                problems += FaultTests.problems(engine, "\(note) at \(t)")
                problems += Self.hardwareProblems(engine).map { "\(note) at \(t): \($0)" }
            }
            let command = random.bernoulli(0.4) ? repeated[random.int(in: 0...(repeated.count - 1))]
                : random.bernoulli(0.2) ? .scale(role: roles[random.int(in: 0...2)], change: random.bernoulli(0.5) ? .to(1) : .to(CommandLimits.maxScaleTEs), from: nil)
                : randomCommand(&random, pod: pod, roles: roles)
            let reply = engine.apply(command)
            log.append("\(OperatorCommand.format(t)) \(command) → \(reply.accepted ? "ok" : "refused: \(reply.message)")")
            if problems.count > 20 { break }
        }
        problems += FaultTests.windDown(engine, note)
        problems += Self.hardwareProblems(engine).map { "\(note) after the wind-down: \($0)" }
        if !problems.isEmpty { problems.append("\(note) steps: \(log.joined(separator: " | "))") }
        return problems
    }

    /// The hardware adds up: no NPU held by two TEs, no spare NPU held by one, and a TE scaling
    /// retired holds no NPU, no request and no request's KV.
    static func hardwareProblems(_ engine: ServingEngine) -> [String] {
        var problems: [String] = []
        var owner: [Int: Int] = [:]
        for i in engine.instances.indices {
            for npu in engine.cluster.npus(of: i) {
                if let other = owner[npu] { problems.append("NPU \(npu) held by \(engine.instances[other].name) and \(engine.instances[i].name)") }
                owner[npu] = i
            }
        }
        for npu in engine.spareNPUs() where owner[npu] != nil {
            problems.append("spare NPU \(npu) is held by \(engine.instances[owner[npu]!].name)")
        }
        for i in engine.instances.indices where engine.isRetired(i) {
            let name = engine.instances[i].name
            if engine.cluster.hasNPUs(i) { problems.append("retired \(name) still holds NPUs \(engine.cluster.npus(of: i))") }
            // An active HBM fault's mask stays with its fault (freed by its heal wherever it sits), not a request.
            for g in engine.instances[i].groups where engine.kvStore.requestsHoldingKV(GroupRef(te: i, group: g)) != 0 {
                let held = engine.kvStore.withGroup(GroupRef(te: i, group: g)) { $0.sequences.map { $0.0 } }.filter { $0 >= 0 }.sorted()
                let where_ = held.map { id in engine.requests[id].map { "request \(id) \($0.stage) on \($0.prefillInstance)/\($0.decodeInstance)" } ?? "request \(id) (no longer in flight)" }
                problems.append("retired \(name)/dp\(g) still holds KV of \(held.count) requests: \(where_.joined(separator: ", "))")
            }
            // As the scale-in's own check counts them: a request decoding elsewhere only came from its prefill.
            let on = engine.requests.values.filter {
                ($0.prefillInstance == i && ($0.stage != .decode || engine.instances[i].role == .colocated)) || $0.decodeInstance == i
            }
            if !on.isEmpty { problems.append("retired \(name) still has \(on.count) requests on it") }
        }
        return problems
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
