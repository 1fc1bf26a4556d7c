import Foundation
import PodModel
import SimKit
import Testing
import XDSTestSupport

@testable import ServingEngine

/// Seeded, bounded fuzzing of a running engine, no threads: random sequences of operator command
/// strings (faults on dies, NPUs and nodes, shared-expert dies included; heals; drains; rebalance;
/// EPLB planner switches; rate changes; scaling from an NPU-fork) at random simulated times, the
/// engine stepped between them, the whole snapshot (the Experts view's heat and die loads
/// included) read after every command and step, and forks taken at random points and run while
/// their original goes on. Nothing may trap (a trap ends the test process); after every command
/// and run: KV blocks conserved, every request where its state says, simulated time at least
/// where it was asked to run to, and the snapshot's expert figures of the shape of the model and
/// the decode TE. A fork's run leaves its original's snapshot as it was.
/// `XDS_ENGINE_FUZZ_SCHEDULES=N` (and `XDS_ENGINE_FUZZ_SEED`) run a longer soak locally.
@Suite(.timeLimit(.minutes(10)), .cpuBound) struct EngineCommandFuzzTests {
    static let schedules = Int(ProcessInfo.processInfo.environment["XDS_ENGINE_FUZZ_SCHEDULES"] ?? "") ?? 8

    @Test func randomCommandsForksAndSnapshotsNeverTrapNorLoseAnything() async throws {
        let seen = try await runSchedules(Self.schedules, coverage: Coverage()) { try Self.run(schedule: $0, seen: &$1) }
        // The schedules reach what they are for: accepted faults and heals, forks run on, a
        // shrunk decode TE, a rebalance started, and the heat of a closed window read.
        #expect(seen.accepted > 20 && seen.forks > 0 && seen.shrinks > 0 && seen.rebalances > 0 && seen.heatWindows > 0,
                "\(seen)")
    }

    /// HostileCommandTests' engine (toy-pod, the default configuration, 2 requests/s with no end)
    /// as its host runs it at `speed max`, in slices of 0.25 s with a snapshot after each, the
    /// hostile list's lines applied in a random order at random simulated times over three minutes
    /// (the timings a loaded machine gives that test). `XDS_HOSTILE_TIMES_RUNS=N` runs N seeds.
    @Test func theHostileListAtRandomTimesOfALongRun() async throws {
        let runs = Int(ProcessInfo.processInfo.environment["XDS_HOSTILE_TIMES_RUNS"] ?? "") ?? 1
        _ = try await runSchedules(max(1, runs), coverage: ()) { run, _ in try Self.hostileTimes(seed: UInt64(run) + 1) }
    }

    static func hostileTimes(seed: UInt64) throws -> [String] {
        var random = RandomStreams(seed: seed).stream("hostile-times")
        var config = EngineConfiguration(deployment: TestDeployments.toyPod)
        config.syntheticRate = 2
        let engine = try ServingEngine(configuration: config)
        var lines = Self.hostileLines
        for i in stride(from: lines.count - 1, to: 0, by: -1) { lines.swapAt(i, random.int(in: 0...i)) }
        var at = lines.map { _ in random.uniform(in: 0..<180) }.sorted()
        at[0] = 0.01
        var problems: [String] = []
        var t = 0.0
        for (line, when) in zip(lines, at) {
            while t < when {
                t = min(when, t + 0.25)
                engine.run(until: t)
                // No accepted command stops the clock: every slice reaches the time it ran to.
                if engine.now < t { problems.append("seed \(seed): the clock stopped at \(engine.now), asked to run to \(t)") }
                problems += Self.snapshotProblems(engine).map { "seed \(seed) at \(t): \($0)" }
            }
            if case .success(let command) = OperatorCommand.parse(line) { _ = engine.apply(command) }
            problems += Self.snapshotProblems(engine).map { "seed \(seed) after '\(line)': \($0)" }
            problems += engine.audit().map { "seed \(seed) after '\(line)': \($0)" }
        }
        engine.run(until: t + 5)
        if engine.now < t + 5 { problems.append("seed \(seed): stuck at \(engine.now)") }
        return problems
    }

    /// HostileCommandTests' lines that parse (the rest never reach an engine), and the second
    /// round's verbs at their limits: scaling each role to the most and fewest TEs the language
    /// allows and by the largest steps, from every load path, and switching every policy slot and
    /// the autoscaler mid-run (whatever the toy pod refuses changes nothing; what it takes must
    /// leave the clock running).
    static let hostileLines = [
        "scale prefill 64", "scale decode 64", "scale colocated 64", "scale prefill +64", "scale decode -64",
        "scale prefill 1", "scale decode 1", "scale prefill +1 from object-store", "scale decode +1 from npu-fork",
        "scale prefill +1 from pool", "scale decode +1 from dram", "autoscale slo", "autoscale off",
        "policy recovery restart-world", "policy recovery pd-failover", "policy je round-robin", "policy je least-loaded",
        "policy dp-lb round-robin", "policy eplb deepseek",
        "rate 1e308", "rate 1e300", "rate 1e9", "rate -1", "rate nan", "rate inf", "rate -0", "rate 0x10",
        "speed 1e-300", "speed 1e300", "speed 0", "speed -1", "speed nan", "speed inf", "speed 1e-5", "speed 2e5",
        "fault link 0-1 degrade 1e300", "fault link 0-1 degrade 1.0000000001", "fault link 0-1 degrade inf",
        "fault straggler die 0 slowdown 1e308", "fault straggler die 0 slowdown 1e300", "fault npu 9223372036854775807",
        "drain node 1", "undrain node 1", "rebalance", "rebalance now", "fault glitch", "fault die 3", "heal all",
        "pause", "resume", "speed max", "speed 1", "heal 1", "heal 2", "fault npu 20", "fault die 40", "drain node 2",
        "undrain node 2", "rate 20", "rate 2",
    ]

    /// What the schedules got to, over all of them.
    struct Coverage: Sendable {
        var accepted = 0, forks = 0, shrinks = 0, rebalances = 0, heatWindows = 0
    }

    /// One schedule: an engine (toy-pod, or fault-pod with its 16 shared-expert dies), up to two
    /// forks of it, and a few dozen random operations on whichever of them is picked.
    static func run(schedule: Int, seen: inout Coverage) throws -> [String] {
        let base = UInt64(ProcessInfo.processInfo.environment["XDS_ENGINE_FUZZ_SEED"] ?? "") ?? 61_000
        let seed = base + UInt64(schedule)
        var random = RandomStreams(seed: seed).stream("engine-command-fuzz")
        let faultPod = schedule % 2 == 1
        let eplb: EPLBMode = [.on, .off, .off, .perfect][random.int(in: 0...3)]
        // Skewed traffic (a third of a second per engine in debug) mostly: a rebalance has something to move.
        let skew = eplb == .off || random.bernoulli(0.6)
        let root = try FaultTests.engine(rate: 4, limit: 120, seed: seed, maxOutput: 96,
                                         deployment: faultPod ? TestDeployments.faultPod : TestDeployments.toyPod) {
            $0.eplb = eplb
            $0.expertSkew = skew
            $0.eplbIntervalSeconds = [5, 20, 60][random.int(in: 0...2)]
            $0.recoveryPolicy = RecoveryPolicies.names[random.int(in: 0...(RecoveryPolicies.names.count - 1))]
            $0.faults.componentRestartSeconds = 3
        }
        let pod = root.topology
        var engines: [(name: String, engine: ServingEngine)] = [("root", root)]
        var problems: [String] = []
        var log: [String] = []
        let note = "schedule \(schedule) (seed \(seed), \(root.configuration.deployment.name), eplb \(eplb), skew \(skew))"

        func check(_ name: String, _ engine: ServingEngine, after what: String) {
            let at = "\(note) \(name) after \(what) at \(engine.now)"
            problems += FaultTests.problems(engine, at)
            problems += Self.snapshotProblems(engine).map { "\(at): \($0)" }
        }

        // Once per schedule, a rebalance on a healed engine (faults keep most rebalances refused).
        let healThenRebalance = random.int(in: 5...15)
        for op in 0..<random.int(in: 20...40) {
            let k = random.int(in: 0...(engines.count - 1))
            let (name, engine) = engines[k]
            switch op == healThenRebalance ? 10 : random.int(in: 0...9) {
            case 10:
                for line in ["heal all", "rebalance"] {
                    let r = engine.apply(try OperatorCommand.parse(line).get())
                    log.append("\(name) '\(line)' → \(r.accepted ? "ok: " : "refused: ")\(r.message.prefix(100))")
                    check(name, engine, after: "'\(line)'")
                    engine.run(until: engine.now + 1)
                }
            case 0...3:
                // Run on: mostly short gaps, now and then long enough for drift, the EPLB cadence
                // and the heat windows (idle skip included once the workload has run out).
                let gap = random.bernoulli(0.2) ? random.uniform(in: 20..<120) : random.uniform(in: 0..<3)
                let target = engine.now + gap
                var calls = 0
                while engine.now < target && calls < 10_000 {
                    engine.run(until: target)
                    calls += 1
                }
                log.append("\(name) run to \(target)")
                if engine.now < target { problems.append("\(note) \(name): asked to run to \(target), the clock is at \(engine.now)") }
                check(name, engine, after: "run to \(target)")
            case 4:
                // Event by event, the snapshot read after each.
                let before = engine.now
                for _ in 0..<random.int(in: 1...40) {
                    guard engine.step() else { break }
                    _ = engine.snapshot()
                }
                if engine.now < before { problems.append("\(note) \(name): the clock went back from \(before) to \(engine.now)") }
                log.append("\(name) steps to \(engine.now)")
                check(name, engine, after: "steps")
            case 5 where engines.count < 3:
                let fork = try engine.fork()
                let forkName = "\(name).fork\(engines.count)"
                engines.append((forkName, fork))
                seen.forks += 1
                log.append("\(forkName) forked at \(engine.now)")
                check(forkName, fork, after: "fork")
            default:
                let line = Self.randomCommandLine(&random, pod: pod, faultPod: faultPod)
                let reply: String
                switch OperatorCommand.parse(line) {
                case .success(let command):
                    // The parent's snapshot, to tell that a fork's command leaves it alone.
                    let others = engines.filter { $0.engine !== engine }.map { ($0, Self.comparable($0.engine.snapshot())) }
                    let r = engine.apply(command)
                    reply = (r.accepted ? "ok: " : "refused: ") + r.message
                    if r.accepted { seen.accepted += 1 }
                    if r.message.contains("Swift.") || r.message.isEmpty { problems.append("\(note) \(name): '\(line)' → '\(r.message)'") }
                    for (other, before) in others where Self.comparable(other.engine.snapshot()) != before {
                        problems.append("\(note): '\(line)' on \(name) changed \(other.name)'s snapshot")
                    }
                case .failure(let error): reply = "parse error: \(error.message)"
                }
                log.append("\(name) '\(line)' → \(reply.prefix(100))")
                check(name, engine, after: "'\(line)'")
            }
        }
        // Every engine still moves once healed and undrained, and loses nothing winding down.
        for (name, engine) in engines {
            problems += FaultTests.windDown(engine, "\(note) \(name)")
            let before = engine.now
            engine.run(until: before + 5)
            if engine.now < before + 5 { problems.append("\(note) \(name): stuck at \(engine.now) after wind-down") }
            check(name, engine, after: "wind-down")
        }
        for (_, engine) in engines {
            let events = engine.recentEvents().map(\.message)
            if events.contains(where: { $0.contains("vertical shrink") }) { seen.shrinks += 1 }
            if events.contains(where: { $0.contains("rebalance started") }) { seen.rebalances += 1 }
            if engine.experts.heatVersion > 0 { seen.heatWindows += 1 }
        }
        if ProcessInfo.processInfo.environment["XDS_ENGINE_FUZZ_LOG"] != nil { print("\(note): \(log.joined(separator: " | "))") }
        if !problems.isEmpty { problems.append("\(note) steps: \(log.joined(separator: " | "))") }
        return problems
    }

    /// What a fork's run must not change in its original's snapshot.
    static func comparable(_ s: Snapshot) -> [String] {
        ["\(s.simTime)", "\(s.requests)", "\(s.kv)", "\(s.experts)", "\(s.activeFaults)", "\(s.instances)",
         "\(s.drainedNodes)", "\(s.events.count)"]
    }

    /// The snapshot's expert figures have the shape the faces index them by: a row per MoE layer
    /// of one column per routed expert, the hottest experts inside that table, a load per routed
    /// die of the decode TE; and the snapshot's clock is the engine's.
    static func snapshotProblems(_ engine: ServingEngine) -> [String] {
        let s = engine.snapshot()
        var problems: [String] = []
        if s.simTime != engine.now { problems.append("snapshot at \(s.simTime), engine at \(engine.now)") }
        guard let moe = engine.model.moe else { return problems }
        let e = s.experts
        if !e.heat.isEmpty {
            if e.heat.count != engine.model.moeLayers { problems.append("heat has \(e.heat.count) rows of \(engine.model.moeLayers) layers") }
            if let row = e.heat.first(where: { $0.count != moe.routedExperts }) {
                problems.append("a heat row has \(row.count) columns of \(moe.routedExperts) experts")
            }
        }
        for hot in e.hottest where !(e.heat.indices.contains(hot.layer) && e.heat[hot.layer].indices.contains(hot.expert)) {
            problems.append("hottest \(hot) outside the heat table")
        }
        if let d = engine.instances.firstIndex(where: { $0.hasDecode }), let routing = engine.experts.routing(of: d),
           !e.dieLoad.isEmpty, e.dieLoad.count != routing.dies {
            problems.append("\(e.dieLoad.count) die loads of \(routing.dies) routed-expert dies")
        }
        if e.dieLoad.contains(where: { !$0.isFinite }) || e.heat.joined().contains(where: { !$0.isFinite }) {
            problems.append("non-finite expert figures")
        }
        return problems
    }

    /// A command line such as an operator types, aimed at the engine's own pod: dies and NPUs of
    /// every TE (fault-pod's shared-expert NPUs 32–39 = dies 64–79 half the time), heals, drains,
    /// rebalance, the EPLB planner, rates, scaling, and now and then a malformed line.
    static func randomCommandLine(_ random: inout RandomStream, pod: PodTopology, faultPod: Bool) -> String {
        let dies = pod.dieCount, npus = pod.npuCount, nodes = pod.nodes
        func die() -> Int { faultPod && random.bernoulli(0.5) ? random.int(in: 64...79) : random.int(in: 0...(dies - 1)) }
        func npu() -> Int { faultPod && random.bernoulli(0.5) ? random.int(in: 32...39) : random.int(in: 0...(npus - 1)) }
        switch random.int(in: 0...21) {
        case 0, 1: return "fault die \(die())"
        case 2, 3: return "fault npu \(npu())"
        case 20: return "heal all"
        case 21: return "rebalance"
        case 4: return "fault node \(random.int(in: 0...(nodes - 1)))"
        case 5: return "fault hbm die \(die())"
        case 6: return "fault straggler die \(die()) slowdown \(random.int(in: 2...4))"
        case 7: return "fault link \(npu())-\(npu())" + (random.bernoulli(0.5) ? " degrade 4" : "")
        case 8: return "fault glitch"
        case 9: return "heal all"
        case 10: return "heal \(random.int(in: 1...6))"
        case 11: return "drain node \(random.int(in: 0...(nodes - 1)))"
        case 12: return "undrain node \(random.int(in: 0...(nodes - 1)))"
        case 13, 14: return random.bernoulli(0.5) ? "rebalance" : "rebalance now"
        case 15: return "policy eplb \(Policies.eplbPlanner.names[random.int(in: 0...(Policies.eplbPlanner.names.count - 1))])"
        case 16: return "rate \([0, 1, 4, 20][random.int(in: 0...3)])"
        case 17:
            let paths = ["", " from npu-fork", " from dram"]
            return "scale \(random.bernoulli(0.5) ? "decode" : "prefill") \(random.bernoulli(0.5) ? "+1" : "-1")"
                + paths[random.int(in: 0...2)]
        case 18: return "autoscale \(random.bernoulli(0.5) ? "slo" : "off")"
        default:
            let hostile = ["fault npu 🙂", "drain node 1\ndrain node 2", "heal -1", "fault link 1-1", "rate nan",
                           "fault die 9223372036854775807", "", "rebalance now please"]
            return hostile[random.int(in: 0...(hostile.count - 1))]
        }
    }
}
