import Foundation
import PodModel
import SimKit
import Testing
import XDSTestSupport

@testable import ServingEngine

/// `fork()` (engine-components.md §4): a copy is independent, deterministic, and equal to a
/// replay of the same commands from the start.
@Suite(.timeLimit(.minutes(10))) struct ForkTests {
    /// One thing done to an engine at a time: a command or an external submission.
    enum Action {
        case command(String)
        case submit(prompt: Int, maxTokens: Int)
    }

    static func apply(_ actions: [Action], to engine: ServingEngine) {
        for action in actions {
            switch action {
            case .command(let line):
                guard case .success(let command) = OperatorCommand.parse(line) else {
                    Issue.record("bad command \(line)")
                    continue
                }
                _ = engine.apply(command)
            case .submit(let prompt, let maxTokens):
                _ = engine.submitExternal(promptTokens: prompt, maxTokens: maxTokens)
            }
        }
    }

    /// The schedule of the busy engine of §4 test 1: at 4 s a drain, a decode NPU fault, a
    /// rebalance and two external requests; recovery, transfers and the EPLB swap are in flight at 8 s.
    static let busyActions: [(at: SimTime, [Action])] = [
        (4, [.command("drain node 1"), .command("fault npu 21"), .command("rebalance"),
             .submit(prompt: 3_000, maxTokens: 200), .submit(prompt: 500, maxTokens: 50)]),
    ]

    static func busyEngine(until time: SimTime = 8) throws -> ServingEngine {
        let engine = try FaultTests.engine(rate: 30, limit: 300)
        replay(busyActions, on: engine, until: time)
        return engine
    }

    /// Runs `engine` to `time`, doing each scheduled action at its time.
    static func replay(_ schedule: [(at: SimTime, [Action])], on engine: ServingEngine, until time: SimTime) {
        for (at, actions) in schedule where at <= time && at >= engine.now {
            engine.run(until: at)
            apply(actions, to: engine)
        }
        engine.run(until: time)
    }

    /// Everything observable, encoded (report with its events count, snapshot, event log, stream updates).
    static func state(_ engine: ServingEngine) throws -> [Data] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return [try encoder.encode(engine.report()), try encoder.encode(engine.snapshot()),
                try encoder.encode(engine.recentEvents())]
    }

    @Test func forkCopiesEveryStoredProperty() throws {
        let engine = try FaultTests.engine()
        let stored = Set(Mirror(reflecting: engine).children.compactMap(\.label))
        #expect(stored == ServingEngine.forkedProperties,
                "stored properties not copied by fork(): \(stored.subtracting(ServingEngine.forkedProperties)); listed but gone: \(ServingEngine.forkedProperties.subtracting(stored))")
    }

    @Test func forkIsAnEqualCopy() throws {
        let a = try Self.busyEngine()
        let b = try a.fork()
        #expect(try Self.state(a) == Self.state(b))
        #expect(b.audit() == [])
        #expect(b.inFlightProblems() == [])
        #expect(b.now == a.now)
        #expect(b !== a)
    }

    /// The fork runs ahead with commands of its own, interleaved event by event with the
    /// original; the original ends exactly as an engine that never forked.
    @Test func forkIsIndependent() throws {
        let a = try Self.busyEngine()
        let b = try a.fork()
        Self.apply([.command("fault node 3"), .command("rate 80")], to: b)
        func due(_ e: ServingEngine) -> Bool { e.nextEventTime().map { $0 <= 40 } == true }
        // Every event up to 40 s included. (A loop on `now < 40` stopped stepping an engine at
        // its first event at 40 s and left another event at that instant queued: 1142 events
        // against the replay's 1143, read as "a run's end is counted". The engine does not
        // depend on slicing: SlicingDeterminismTests.)
        while due(a) || due(b) {
            if due(a) { a.step() }
            if due(b) { b.step() }
        }
        // Stepping leaves the clock at the last event; the replay's `run(until: 40)` sets it to 40.
        a.run(until: 40)
        b.run(until: 40)
        let c = try FaultTests.engine(rate: 30, limit: 300)
        Self.replay(Self.busyActions, on: c, until: 40)
        #expect(try Self.state(a) == Self.state(c), "the original was changed by its fork")
        #expect(try Self.state(b) != Self.state(a), "the fork's commands had no effect")
        #expect(a.audit() == [] && b.audit() == [])
        FaultTests.expectSound(a, "original")
        FaultTests.expectSound(b, "fork")
    }

    /// Two forks given the same command end the same, and equal a replay from the start of the
    /// original's actions plus that command (fork ≡ replay): the random streams were copied where
    /// they stood, not restarted.
    @Test func forkIsDeterministicAndEqualsReplay() throws {
        let a = try Self.busyEngine()
        let b1 = try a.fork(), b2 = try a.fork()
        let extra: [Action] = [.command("fault node 3"), .submit(prompt: 1_000, maxTokens: 100)]
        for b in [b1, b2] {
            Self.apply(extra, to: b)
            #expect(b.runToCompletion(limit: 3_600))
        }
        #expect(try Self.state(b1) == Self.state(b2))
        #expect(b1.takeStreamUpdates() == b2.takeStreamUpdates())
        let replayed = try FaultTests.engine(rate: 30, limit: 300)
        Self.replay(Self.busyActions + [(8, extra)], on: replayed, until: 8)
        #expect(replayed.runToCompletion(limit: 3_600))
        #expect(try Self.state(b1) == Self.state(replayed), "fork differs from a replay of the same commands")
        FaultTests.expectEmpty(b1, "fork")
    }

    /// A trace forked mid-way: each copy reads the file through its own handle, and both end as
    /// the unforked run does (a shared handle would split the remaining lines between them).
    @Test func forkOfATraceReadsItsOwnFile() throws {
        let path = try GoldenTests.mooncakeFixture()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let whole = try GoldenTests.trace(path)
        #expect(whole.runToCompletion(limit: 3_600))
        let a = try GoldenTests.trace(path)
        a.run(until: 2)
        let b = try a.fork()
        #expect(b.runToCompletion(limit: 3_600))
        #expect(a.runToCompletion(limit: 3_600))
        #expect(try Self.state(a) == Self.state(whole))
        #expect(try Self.state(b) == Self.state(whole))
        #expect(whole.report().requests.completed == 60)
    }
}
