import Foundation
import PodModel
import SimKit
import Testing
import XDSTestSupport

@testable import ServingEngine

/// Same configuration, seed and command log, same result, however the driver slices time: the
/// console and `xds serve` move the engine in wall-clock-paced slices of any length, `xds run`
/// in one-second slices with jumps over quiet stretches, a test in one call. Each case runs one
/// engine in one `run(until:)` per command and others sliced at fixed, random (seeded) and
/// event-time boundaries, and compares everything observable: the report (every field, as JSON),
/// the snapshot (with its series timeline) and the event log.
@Suite(.timeLimit(.minutes(10)), .cpuBound) struct SlicingDeterminismTests {
    /// How a driver cuts simulated time into `run(until:)` calls.
    enum Slicing: CustomStringConvertible {
        /// One call per command (up to it), then one to the end.
        case oneCall
        /// Slices ending on the grid `k·length` (a console at a steady pace).
        case fixed(SimTime)
        /// Slices of seeded random lengths, a few of them empty or tiny, some long.
        case random(seed: UInt64)
        /// Each slice ends exactly at the next event's time.
        case onEvents
        /// Event by event with `step()`, then `run(until:)` to the slice's end, one-second slices.
        case stepped
        /// `xds run`'s driver: one-second slices from the clock, jumping to ``ServingEngine/quietUntil``.
        case runDriver

        var description: String {
            switch self {
            case .oneCall: "one call"
            case .fixed(let length): "fixed \(length) s"
            case .random(let seed): "random (seed \(seed))"
            case .onEvents: "on event times"
            case .stepped: "stepped"
            case .runDriver: "xds run's driver"
            }
        }
    }

    static let slicings: [Slicing] = [.oneCall, .fixed(1), .fixed(0.1), .random(seed: 3), .random(seed: 11),
                                      .onEvents, .stepped, .runDriver]

    /// Runs `engine` to `end`, applying each step when the clock reaches its time, sliced as told.
    @discardableResult
    static func drive(_ engine: ServingEngine, steps: [(at: SimTime, command: String)], until end: SimTime,
                      slicing: Slicing) -> [String] {
        var refused: [String] = []
        var next = 0
        // SimKit's seeded stream, so the slice lengths are the same on every run.
        var rng = RandomStreams(seed: { if case .random(let seed) = slicing { return seed }; return 0 }()).stream("slicing")
        while true {
            while next < steps.count, steps[next].at <= engine.now {
                let line = steps[next].command
                next += 1
                // "submit PROMPT MAX_TOKENS": a request from outside (HTTP), as `xds serve` takes it.
                if line.hasPrefix("submit ") {
                    let n = line.split(separator: " ").dropFirst().compactMap { Int($0) }
                    _ = engine.submitExternal(promptTokens: n[0], maxTokens: n[1])
                    continue
                }
                guard case .success(let command) = OperatorCommand.parse(line) else {
                    Issue.record("bad command \(line)")
                    return refused
                }
                let reply = engine.apply(command)
                if !reply.accepted, case .oneCall = slicing { refused.append("\(line): \(reply.message)") }
            }
            guard engine.now < end else { return refused }
            var target: SimTime
            switch slicing {
            case .oneCall:
                target = end
            case .fixed(let length):
                target = ((engine.now / length).rounded(.down) + 1) * length
                if target <= engine.now { target = engine.now.nextUp }
            case .random:
                let u = rng.uniform()
                // Mostly short slices (console pacing), some empty or a nanosecond, some long.
                switch rng.next() % 10 {
                case 0: target = engine.now
                case 1: target = engine.now + 1e-9
                case 2: target = engine.now + 5 * u
                default: target = engine.now + 0.3 * u
                }
            case .onEvents:
                target = engine.nextEventTime() ?? end
            case .stepped:
                target = min(end, (engine.now.rounded(.down) + 1))
                if next < steps.count { target = min(target, steps[next].at) }
                while let time = engine.nextEventTime(), time <= target { engine.step() }
            case .runDriver:
                target = engine.now + 1
                let nextEvent = engine.quietUntil ?? engine.nextEventTime() ?? .infinity
                if nextEvent > target { target = nextEvent }
            }
            target = min(target, end)
            if next < steps.count { target = min(target, steps[next].at) }
            engine.run(until: target)
            // The faces read the engine between slices when the wall clock says so (a snapshot
            // per publish, `xds run`'s progress line, a console page, a preview): reads, which
            // must change nothing.
            if case .random = slicing, rng.next() % 4 == 0 {
                _ = engine.snapshot()
                _ = engine.report()
                _ = engine.requestPage(RequestQuery(sort: .age, limit: 50))
                _ = engine.takeStreamUpdates()
                _ = engine.quietUntil
                if rng.next() % 20 == 0, case .success(let request) = PreviewRequest.parse("preview rate 5 for 2s") {
                    _ = try? engine.preview(request)
                }
            }
        }
    }

    /// Everything observable, as sorted-key JSON: the report, the snapshot (series included), the event log.
    static func observed(_ engine: ServingEngine) throws -> [String] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return [try encoder.encode(engine.report()), try encoder.encode(engine.snapshot()),
                try encoder.encode(engine.recentEvents())].map { String(decoding: $0, as: UTF8.self) }
    }

    /// The first difference of two JSON texts, with some context, so a failure points at the field.
    static func firstDifference(_ a: String, _ b: String) -> String {
        let x = Array(a.utf8), y = Array(b.utf8)
        let i = zip(x, y).enumerated().first { $0.element.0 != $0.element.1 }?.offset ?? min(x.count, y.count)
        func around(_ bytes: [UInt8]) -> String {
            String(decoding: bytes[max(0, i - 120)..<min(bytes.count, i + 60)], as: UTF8.self)
        }
        return "…\(around(x))… vs …\(around(y))…"
    }

    struct Case: CustomTestStringConvertible, Sendable {
        var name: String
        var deployment: String
        var rate: Double?
        var snapshotInterval: Double?
        var steps: [(at: SimTime, command: String)]
        var end: SimTime
        var testDescription: String { name }
    }

    /// The scenario's steps as written in scenarios/NAME.toml.
    static func scenarioSteps(_ name: String) throws -> [(at: SimTime, command: String)] {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent()
        let scenario = try Scenario.load(path: root.appendingPathComponent("scenarios/\(name).toml").path)
        return scenario.steps.map { ($0.at, $0.command.description) }
    }

    static let cases: [Case] = [
        // Quiet stretches on a MoE pod with a snapshot interval that is no binary fraction (tick
        // times summed one by one vs computed by a skip), faults and a drain found by heartbeats
        // inside them, EPLB on its 60 s cadence, external requests, scaling and the autoscaler.
        Case(name: "cloudmatrix-infer, quiet stretches with faults", deployment: "cloudmatrix-infer", rate: 1,
             snapshotInterval: 0.3,
             steps: [(4, "rate 0"), (70.05, "fault npu 100"), (75, "submit 2000 40"), (140, "heal all"),
                     (150, "drain node 1"), (222.2, "fault die 3"), (230, "undrain node 1"), (290, "heal all"),
                     (300.125, "rate 3"), (303, "rate 0"), (330, "scale decode +1 from npu-fork"),
                     (420, "autoscale slo"), (421, "rate 2"), (425, "rate 0"), (500, "fault straggler die 200 slowdown 3"),
                     (501, "submit 500 20")],
             end: 640),
        Case(name: "superpod, default mix", deployment: "superpod", steps: [], end: 12),
        Case(name: "cloudmatrix-infer", deployment: "cloudmatrix-infer", steps: [], end: 12),
        Case(name: "colocated-288", deployment: "colocated-288", steps: [], end: 12),
        // Quiet stretches long enough for the idle skip (60 s), cut by slices in every way.
        Case(name: "colocated llama, idle stretches", deployment: "colocated:2:llama-2-7b:nvidia-a100:tp1", rate: 2,
             snapshotInterval: 0.1,
             steps: [(3, "rate 0"), (150.25, "rate 2"), (152, "rate 0"), (200, "fault npu 1"), (215.5, "heal all"),
                     (216, "submit 100 300"), (300, "fault glitch")],
             end: 400),
    ]

    static func engine(_ c: Case) throws -> ServingEngine {
        var config = EngineConfiguration(deployment: try Deployment.resolve(c.deployment), seed: 7)
        if let rate = c.rate { config.syntheticRate = rate }
        if let interval = c.snapshotInterval { config.snapshotInterval = interval }
        config.eventCapacity = 100_000
        return try ServingEngine(configuration: config)
    }

    static func check(_ c: Case) throws {
        var reference: [String]?
        for slicing in slicings {
            let engine = try engine(c)
            let refused = drive(engine, steps: c.steps, until: c.end, slicing: slicing)
            if case .oneCall = slicing, !refused.isEmpty { print("\(c.name): refused \(refused)") }
            #expect(engine.now == c.end, "\(slicing): ended at \(engine.now)")
            let seen = try observed(engine)
            guard let expected = reference else {
                reference = seen
                continue
            }
            for (part, (got, want)) in zip(["report", "snapshot", "event log"], zip(seen, expected)) where got != want {
                Issue.record("\(c.name): \(slicing) differs from one call in the \(part): \(firstDifference(got, want))")
            }
        }
    }

    @Test(arguments: cases) func slicingChangesNothing(_ c: Case) throws {
        try Self.check(c)
    }

    /// A shipped fault scenario (npu-loss: a rate change, two decode NPUs lost, a drain, a heal),
    /// its times scaled down so it runs in seconds: detection, recovery and the heal all happen.
    @Test(arguments: ["npu-loss", "flapping-link"])
    func faultScenarioSlicingChangesNothing(_ name: String) throws {
        let steps = try Self.scenarioSteps(name).map { (at: $0.at / 5, command: $0.command) }
        try Self.check(Case(name: "\(name) scenario (times / 5)", deployment: "superpod", steps: steps, end: 36))
    }

    /// A trace (shared prefixes, bursts of equal timestamps) read from disk, run past its end.
    @Test func traceSlicingChangesNothing() throws {
        let path = try GoldenTests.mooncakeFixture()
        defer { try? FileManager.default.removeItem(atPath: path) }
        var reference: [String]?
        for slicing in Self.slicings {
            let engine = try GoldenTests.trace(path)
            Self.drive(engine, steps: [(2.5, "fault npu 3"), (9, "heal all")], until: 90, slicing: slicing)
            let seen = try Self.observed(engine)
            guard let expected = reference else {
                reference = seen
                continue
            }
            for (part, (got, want)) in zip(["report", "snapshot", "event log"], zip(seen, expected)) where got != want {
                Issue.record("trace: \(slicing) differs from one call in the \(part): \(Self.firstDifference(got, want))")
            }
        }
    }
}
