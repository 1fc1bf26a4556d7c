import Foundation
import PodModel
import SimKit
import Testing
import XDSTestSupport

@testable import ServingEngine

/// Forks of one engine run at the same time on threads of their own (as a preview's two sides and
/// the live engine do) end exactly as the same forks run one after the other: nothing is shared
/// between them that one's run could change under another. The forks take faults (a node's, whose
/// recovery evicts and re-routes through the prefix caches), a drain and a rate change. The other
/// fork tests run forks one at a time, so an object or buffer two forks shared would not show
/// there; two threads on one engine trap here at once (SequenceTable's precondition under ASan).
/// `XDS_FORK_RACE_ROUNDS=N` runs N seeds (15 under ASan: clean, 4 minutes).
@Suite(.timeLimit(.minutes(10))) struct ConcurrentForkTests {
    static let rounds = Int(ProcessInfo.processInfo.environment["XDS_FORK_RACE_ROUNDS"] ?? "") ?? 1

    @Test func forksRunTogetherEndAsForksRunApart() async throws {
        _ = try await runSchedules(Self.rounds, coverage: ()) { round, _ in try Self.round(round) }
    }

    /// One engine handed to one thread (each fork is run by one thread only).
    final class Box: @unchecked Sendable {
        let engine: ServingEngine
        init(engine: ServingEngine) { self.engine = engine }
    }

    static func round(_ round: Int) throws -> [String] {
        let root = try FaultTests.engine(rate: 30, limit: 3_000, seed: 70 + UInt64(round), maxOutput: 128) {
            $0.eplb = .on
            $0.eplbIntervalSeconds = 5
        }
        root.run(until: 12)
        let lines = ["fault node 3", "fault npu 20", "drain node 1", "rate 80", "fault die 40"]
        func forks() throws -> [ServingEngine] {
            try lines.map { line in
                let fork = try root.fork()
                _ = fork.apply(try OperatorCommand.parse(line).get())
                return fork
            }
        }
        let together = try forks(), apart = try forks()
        let end: SimTime = 50
        let done = DispatchGroup()
        for engine in together {
            done.enter()
            let box = Box(engine: engine)
            let thread = Thread {
                let engine = box.engine
                var t = engine.now
                while t < end {
                    t = min(end, t + 0.5)
                    engine.run(until: t)
                    _ = engine.snapshot()
                }
                done.leave()
            }
            thread.stackSize = 8 << 20
            thread.start()
        }
        // The original goes on meanwhile too, as the live engine does under a preview.
        root.run(until: end)
        done.wait()
        var problems: [String] = []
        for (i, engine) in apart.enumerated() {
            var t = engine.now
            while t < end {
                t = min(end, t + 0.5)
                engine.run(until: t)
                _ = engine.snapshot()
            }
            if engine.report() != together[i].report() {
                problems.append("round \(round) '\(lines[i])': run together, the fork's report differs from run apart")
            }
            problems += FaultTests.problems(together[i], "round \(round) '\(lines[i])' together")
        }
        return problems
    }
}
