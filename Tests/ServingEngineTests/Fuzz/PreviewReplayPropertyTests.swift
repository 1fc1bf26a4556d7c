import Foundation
import PodModel
import SimKit
import Testing
import XDSTestSupport

@testable import ServingEngine

/// The what-if preview's three promises, checked at awkward moments of seeded random schedules
/// (a drain migrating, an EPLB swap in one of its phases, a scale-out allocating, loading or
/// warming up, a fault in detection or recovery, right after a pause or speed command), on the
/// PD fault pod and on colocated GPU replicas:
/// - taking a preview (and running a fork ahead with commands of its own) leaves the live engine
///   exactly as an engine never previewed: report, snapshot and event log equal at the end;
/// - the preview's baseline is what an engine replayed from the start to the fork does next
///   with no command (the schedule's later steps passed as scheduled steps, as the host passes a
///   scenario's);
/// - its `with_command` side is what that replay does with the command applied at that moment.
/// (ForkTests and PreviewTests check these at one moment of one busy engine; EngineCommandFuzzTests
/// compares only the original's snapshot.) `XDS_PREVIEW_REPLAY_SCHEDULES=N` runs more locally.
@Suite(.timeLimit(.minutes(10)), .cpuBound) struct PreviewReplayPropertyTests {
    static let schedules = Int(ProcessInfo.processInfo.environment["XDS_PREVIEW_REPLAY_SCHEDULES"] ?? "") ?? 12

    @Test func previewsAtAwkwardMomentsEqualTheReplayAndLeaveTheLiveEngineAlone() async throws {
        let seen = try await runSchedules(Self.schedules, coverage: Coverage()) { try Self.run(schedule: $0, seen: &$1) }
        // The schedules reach the moments they are for: previews taken and differing from their
        // baseline, some while a scale-up starts, an EPLB swap runs or a fault is being recovered.
        #expect(seen.previews >= Self.schedules / 2 && seen.differing > 0 && seen.midScale > 0 && seen.midSwap > 0
                && seen.midRecovery > 0, "\(seen)")
    }

    /// What the schedules got to, over all of them.
    struct Coverage: Sendable {
        var previews = 0, differing = 0, midScale = 0, midSwap = 0, midRecovery = 0
    }

    struct Setup {
        var schedule: Int
        var colocated: Bool
        /// Skewed traffic on the static start placement (EPLB off), as SwapUnderFaultTests: an
        /// operator's rebalance gains, so a swap starts (with EPLB on the placement keeps up and a
        /// rebalance has nothing to gain).
        var swaps = false
        var seed: UInt64
        var eplb: EPLBMode
        var skew: Bool
        var policy: String

        func engine() throws -> ServingEngine {
            let deployment = colocated ? try Deployment.resolve("colocated:4:llama-2-7b:nvidia-a100:tp1") : TestDeployments.faultPod
            return try FaultTests.engine(rate: colocated ? 8 : 20, limit: 400, seed: seed, maxOutput: 128, deployment: deployment) {
                $0.recoveryPolicy = policy
                $0.faults.componentRestartSeconds = 3
                $0.eplb = eplb
                $0.expertSkew = skew
                if !swaps { $0.eplbIntervalSeconds = 5 }
            }
        }
    }

    /// Runs `engine` through the steps due by `time` (each applied after the events of its instant).
    static func replay(_ steps: [Scenario.Step], on engine: ServingEngine, until time: SimTime, applied: inout Int) {
        while applied < steps.count, steps[applied].at <= time {
            PreviewRun.advance(engine, to: steps[applied].at)
            engine.apply(steps[applied].command)
            applied += 1
        }
        PreviewRun.advance(engine, to: time)
    }

    static func run(schedule: Int, seen: inout Coverage) throws -> [String] {
        let base = UInt64(ProcessInfo.processInfo.environment["XDS_PREVIEW_REPLAY_SEED"] ?? "") ?? 71_000
        var random = RandomStreams(seed: base + UInt64(schedule)).stream("preview-replay")
        let colocated = schedule % 3 == 2
        let swaps = schedule % 3 == 1
        let setup = Setup(schedule: schedule, colocated: colocated, swaps: swaps, seed: base + UInt64(schedule),
                          eplb: colocated || swaps ? .off : [.on, .on, .perfect][random.int(in: 0...2)],
                          skew: swaps || (!colocated && random.bernoulli(0.3)),
                          policy: RecoveryPolicies.names[random.int(in: 0...(RecoveryPolicies.names.count - 1))])
        let probe = try setup.engine()
        let pod = probe.topology
        let roles: [InstanceRole] = colocated ? [.colocated] : [.prefill, .decode]
        func command() -> OperatorCommand {
            switch random.int(in: 0...9) {
            case 0: return .rebalance
            case 1: return [.pause, .resume, .speed(0.5), .speedMax][random.int(in: 0...3)]
            case 2: return .rate(requestsPerSecond: [0, 4, 30][random.int(in: 0...2)])
            default: return ScaleFaultSoakTests.randomCommand(&random, pod: pod, roles: roles)
            }
        }
        var steps: [Scenario.Step] = []
        for _ in 0..<random.int(in: 4...9) { steps.append(.init(at: random.uniform(in: 0.5..<20), command: command())) }
        // Half the skewed schedules rebalance and are forked during the swap that follows.
        let swapAt: SimTime? = swaps && random.bernoulli(0.7) ? random.uniform(in: 15..<20) : nil
        if let swapAt { steps.append(.init(at: swapAt, command: .rebalance)) }
        steps.sort { $0.at < $1.at }
        // The fork: right at a step (after it, at its instant), a hair after one, or seconds on.
        let anchor = swapAt ?? steps[random.int(in: 0...(steps.count - 1))].at
        // (A swap's prefetch and load take tens of milliseconds.)
        let forkAt = anchor + [0, 0.001, swapAt == nil ? random.uniform(in: 0..<4) : random.uniform(in: 0..<0.05)][random.int(in: 0...2)]
        // What a planner asks about: mostly scaling, faults and drains (the pace commands are refused).
        // (A decode TE of the fault pod needs 24 NPUs, its spare node has 8: scale prefill there.)
        var previewed = random.bernoulli(0.4) ? .scale(role: roles[0], change: .by(1), from: nil) : command()
        while case .speed = previewed { previewed = ScaleFaultSoakTests.randomCommand(&random, pod: pod, roles: roles) }
        if [.pause, .resume, .speedMax].contains(previewed) { previewed = .rate(requestsPerSecond: 40) }
        let request = PreviewRequest(command: previewed, duration: Double(random.int(in: 5...40)))
        let end = max(forkAt + request.duration, steps.last!.at) + 5
        let note = "schedule \(schedule) (\(colocated ? "colocated" : "fault-pod"), eplb \(setup.eplb), skew \(setup.skew), "
            + "\(setup.policy)): preview '\(request.command)' for \(request.duration) s at \(forkAt); steps "
            + steps.map { "\(OperatorCommand.format($0.at)) \($0.command)" }.joined(separator: " | ")
        var problems: [String] = []

        // The live engine, previewed (and forked and run ahead with commands) at the fork.
        let live = try setup.engine()
        var liveApplied = 0
        replay(steps, on: live, until: forkAt, applied: &liveApplied)
        let later = Array(steps[liveApplied...])
        if live.scaling.lifecycle.values.contains(where: { $0.phase.isStarting }) { seen.midScale += 1 }
        if live.experts.controllers.contains(where: { $0?.swapPhaseEnds != nil }) { seen.midSwap += 1 }
        if live.faults.active.contains(where: { !$0.recoveryOver }) { seen.midRecovery += 1 }
        let result: PreviewResult?
        do { result = try live.preview(request, scheduled: later) } catch { result = nil }
        let ahead = try live.fork()
        ahead.apply(.faultNode(0))
        ahead.apply(.rate(requestsPerSecond: 50))
        ahead.run(until: forkAt + 10)
        replay(steps, on: live, until: end, applied: &liveApplied)

        // The same schedule never previewed.
        let plain = try setup.engine()
        var plainApplied = 0
        replay(steps, on: plain, until: end, applied: &plainApplied)
        if try ForkTests.state(live) != ForkTests.state(plain) {
            problems.append("\(note): the previewed engine differs from one never previewed at \(end) s")
        }
        problems += FaultTests.problems(live, "\(note) live at \(end) s")
        guard let result else { return problems }
        seen.previews += 1
        if result.baseline != result.withCommand { seen.differing += 1 }

        // What the engine does next, replayed from the start: with no command, and with it.
        for withCommand in [false, true] {
            let replayed = try setup.engine()
            var applied = 0
            replay(steps, on: replayed, until: forkAt, applied: &applied)
            let mark = replayed.beginWindow()
            if withCommand { replayed.apply(request.command) }
            replay(steps, on: replayed, until: forkAt + request.duration, applied: &applied)
            let side = replayed.windowSide(since: mark)
            let predicted = withCommand ? result.withCommand : result.baseline
            if side != predicted {
                problems.append("\(note): the preview's \(withCommand ? "with_command" : "baseline") side differs from the replay: "
                    + "predicted \(predicted.requests) \(predicted.latencyMs.e2e), replayed \(side.requests) \(side.latencyMs.e2e)")
            }
            problems += FaultTests.problems(replayed, "\(note) replay\(withCommand ? " with the command" : "")")
        }
        return problems
    }
}
