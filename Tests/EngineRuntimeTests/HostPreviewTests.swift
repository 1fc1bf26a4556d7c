import Foundation
import PodModel
import ServingEngine
import SimKit
import Synchronization
import Testing
import XDSTestSupport
@testable import EngineRuntime

/// Previews through the host (issue 16): the live engine runs on while they compute, its run is
/// the same as without them, and they never enter the command log.
@Suite(.timeLimit(.minutes(10))) struct HostPreviewTests {
    @Test func previewsDoNotChangeTheHostedRun() async throws {
        let live = try CommandLogReplayTests.engine()
        let host = EngineHost(core: live, speed: 10, publishInterval: 0.05, capabilities: Set(EngineCapability.allCases))
        host.start()
        try await Task.sleep(for: .milliseconds(150))
        #expect(host.send(commandLine: "fault die 40").accepted)
        let before = host.latestSnapshot().simTime
        let first = host.preview(commandLine: "preview drain node 1 for 2m")
        let second = host.preview(commandLine: "drain node 1 for 2m")
        guard case .success(let p1) = first, case .success(let p2) = second else {
            Issue.record("previews refused: \(first) \(second)")
            host.stop()
            return
        }
        #expect(p1.command == "drain node 1" && p1.durationSeconds == 120 && p1.wallSeconds > 0)
        #expect(p1.fromSeconds >= before && p2.fromSeconds >= p1.fromSeconds)
        // Refusals: a command the engine rejects, a duration beyond an hour, a host-level bound.
        for line in ["preview drain node 999", "preview drain node 1 for 3h", "preview rate 1e9"] {
            guard case .failure(let refusal) = host.preview(commandLine: line) else {
                Issue.record("\(line) was not refused")
                continue
            }
            #expect(!refusal.message.isEmpty)
        }
        #expect(host.send(commandLine: "rate 30").accepted)
        #expect(host.send(commandLine: "speed max").accepted)
        #expect(eventually { host.latestSnapshot().simTime > 30 })
        #expect(host.send(commandLine: "pause").accepted)
        // The engine is read below, on this thread: its own thread must have exited (a stop that
        // timed out on a loaded machine left it stepping the engine while these reads ran).
        try #require(host.stop(timeout: 60), "the engine thread did not stop")

        let log = host.commandLog
        #expect(log.map(\.line) == ["fault die 40", "rate 30", "speed max", "pause"], "previews are not commands")
        let end = live.now
        let replayed = try CommandLogReplayTests.engine()
        for entry in log {
            replayed.run(until: entry.simTime)
            try CommandLogReplayTests.replay(entry.line, into: replayed)
        }
        replayed.run(until: end)
        #expect(live.report() == replayed.report())
        #expect(live.recentEvents() == replayed.recentEvents())
    }

    /// A scenario's steps still to come are in the preview's window on both sides (a review saw a
    /// flat 30 req/s and no fault where the live run would take a rate step and a fault), and the
    /// live run still applies them itself, unchanged by the preview.
    @Test func previewsIncludeTheScenarioStepsStillToCome() async throws {
        func engine() throws -> ServingEngine {
            var config = EngineConfiguration(deployment: TestDeployments.faultPod, seed: 11, syntheticRate: 20)
            config.expertSkew = false
            config.eplb = .perfect
            config.eventCapacity = 100_000
            var synthetic = SyntheticWorkload.Configuration(ratePerSecond: 20)
            synthetic.maxOutputTokens = 128
            return try ServingEngine(configuration: config, workload: SyntheticWorkload(seed: 11, configuration: synthetic))
        }
        let steps = [Scenario.Step(at: 15, command: .rate(requestsPerSecond: 80)), Scenario.Step(at: 25, command: try OperatorCommand.parse("fault node 3").get())]
        let live = try engine()
        let host = EngineHost(core: live, speed: 1, publishInterval: 0.05, scenario: Scenario(name: "t", steps: steps),
                              capabilities: Set(EngineCapability.allCases))
        host.start()
        guard case .success(let p) = host.preview(commandLine: "preview drain node 1 for 40s") else {
            Issue.record("preview refused")
            host.stop()
            return
        }
        #expect(p.fromSeconds < 15)
        // The same preview of a batch engine at the same time, given the steps (PreviewScheduledStepsTests
        // checks that one against a run that applies them at their times, as `xds run` does).
        let batch = try engine()
        batch.run(until: p.fromSeconds)
        let expected = try batch.preview(PreviewRequest.parse("preview drain node 1 for 40s").get(), scheduled: steps)
        #expect(p.baseline == expected.baseline)
        #expect(p.withCommand == expected.withCommand)
        #expect(p.baseline.requests.arrived > 40 * 20 + 500, "the rate step at 15 s is in the window: \(p.baseline.requests.arrived)")
        #expect(p.scheduledSteps.map(\.command) == ["rate 80", "fault node 3"])

        // The live run goes on and applies the steps itself; the preview left no trace in it.
        #expect(host.send(commandLine: "speed max").accepted)
        #expect(eventually { host.latestSnapshot().simTime > 50 })
        #expect(host.send(commandLine: "pause").accepted)
        // The engine is read below, on this thread: its own thread must have exited (a stop that
        // timed out on a loaded machine left it stepping the engine while these reads ran).
        try #require(host.stop(timeout: 60), "the engine thread did not stop")
        let log = host.commandLog
        // (The steps may come before `speed max` if the preview took more than 15 s of wall time.)
        #expect(log.map(\.line).sorted() == ["fault node 3", "pause", "rate 80", "speed max"], "\(log.map(\.line))")
        #expect(log.filter { $0.line == "rate 80" || $0.line == "fault node 3" }.map(\.simTime) == [15, 25])
        let replayed = try engine()
        for entry in log {
            replayed.run(until: entry.simTime)
            try CommandLogReplayTests.replay(entry.line, into: replayed)
        }
        replayed.run(until: live.now)
        #expect(live.report() == replayed.report())
    }

    /// At most `bounds.previews` compute at once; one more is refused at once with a reason the
    /// admin API answers 503, and a finished preview frees its place.
    @Test func previewsBeyondTheBoundAreRefusedUntilOneFinishes() async throws {
        let host = EngineHost(core: try CommandLogReplayTests.engine(), speed: 10, publishInterval: 0.05,
                              capabilities: Set(EngineCapability.allCases), bounds: EngineHost.Bounds(previews: 1))
        host.start()
        defer { host.stop() }
        host.previewsRunning.store(1, ordering: .sequentiallyConsistent)  // one computing elsewhere
        guard case .failure(let refusal) = host.preview(commandLine: "preview drain node 1 for 1m") else {
            Issue.record("a preview beyond the bound was computed")
            return
        }
        #expect(refusal.message.hasPrefix("engine busy: 1 preview is already computing (at most 1 at a time)"))
        #expect(host.previewsRunning.load(ordering: .sequentiallyConsistent) == 1, "a refusal takes no place")
        host.previewsRunning.store(0, ordering: .sequentiallyConsistent)
        for _ in 0..<2 {  // one at a time is fine, and each frees its place
            guard case .success = host.preview(commandLine: "preview drain node 1 for 1m") else {
                Issue.record("a preview within the bound was refused")
                return
            }
            #expect(host.previewsRunning.load(ordering: .sequentiallyConsistent) == 0)
        }
    }

    /// A cancelled preview stops computing and frees its place at once; the next one is computed.
    @Test func aCancelledPreviewFreesItsPlace() throws {
        let host = EngineHost(core: try CommandLogReplayTests.engine(), speed: 10, publishInterval: 0.05,
                              capabilities: Set(EngineCapability.allCases), bounds: EngineHost.Bounds(previews: 1))
        host.start()
        defer { host.stop() }
        let request = try PreviewRequest.parse("preview drain node 1 for 1h").get()
        let cancellation = PreviewCancellation()
        let shares = Shared<[Double]>([])
        let answer = host.preview(request, cancellation: cancellation) { share in
            shares.value.withLock { $0.append(share) }
            cancellation.cancel()  // the client hung up after the first slice
        }
        guard case .failure(let refusal) = answer else {
            Issue.record("a cancelled preview was answered")
            return
        }
        #expect(refusal.message == EngineHost.previewCancelled)
        #expect(shares.value.withLock { $0.count == 1 && $0[0] < 0.01 }, "stopped after the first of many slices")
        #expect(host.previewsRunning.load(ordering: .sequentiallyConsistent) == 0)
        #expect(host.previewCancellations.withLock { $0.isEmpty })
        guard case .success = host.preview(commandLine: "preview drain node 1 for 30s") else {
            Issue.record("the place of a cancelled preview was not freed")
            return
        }
    }

    /// Stopping the host stops the previews it computes (they answer "engine stopped", a 503).
    @Test func stoppingTheHostCancelsItsPreviews() throws {
        let host = EngineHost(core: try CommandLogReplayTests.engine(), speed: 10, publishInterval: 0.05,
                              capabilities: Set(EngineCapability.allCases))
        host.start()
        let request = try PreviewRequest.parse("preview drain node 1 for 1h").get()
        let answer = Shared<Result<PreviewResult, PreviewRefusal>?>(nil)
        let computing = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            let result = host.preview(request, cancellation: PreviewCancellation()) { share in
                if share < 0.01 { computing.signal() }  // the first slice
            }
            answer.value.withLock { $0 = result }
        }
        #expect(computing.wait(timeout: .now() + 60) == .success, "the preview never got going")
        host.stop()
        #expect(eventually { answer.value.withLock { $0 != nil } })
        guard case .failure(let refusal) = answer.value.withLock({ $0 }) else {
            Issue.record("a preview went on past its host's stop")
            return
        }
        #expect(refusal.message == "engine stopped: preview cancelled")
        #expect(host.previewsRunning.load(ordering: .sequentiallyConsistent) == 0)
    }

    @Test func aStoppedHostRefusesPreviews() throws {
        let host = EngineHost(core: try CommandLogReplayTests.engine(), speed: 1)
        guard case .failure(let refusal) = host.preview(commandLine: "preview rebalance") else {
            Issue.record("a host that never started previewed")
            return
        }
        #expect(refusal.message == "engine is not running")
    }

    /// A preview that would compute for minutes (`preview rate 10000 for 1h` did not answer within
    /// 100 s) stops once ``EngineHost/Bounds/previewWall`` has passed and answers with the window
    /// so far, one line saying where it stopped and why; one within budget covers its window.
    @Test func aPreviewStopsAtItsWallClockBudget() async throws {
        var config = EngineConfiguration(deployment: TestDeployments.toyPod)
        config.syntheticRate = 20
        let host = EngineHost(core: try ServingEngine(configuration: config), speed: 10, publishInterval: 0.05,
                              capabilities: Set(EngineCapability.allCases), bounds: EngineHost.Bounds(previewWall: 0.2))
        host.start()
        defer { host.stop() }
        try await Task.sleep(for: .milliseconds(100))
        let began = Date()
        guard case .success(let cut) = host.preview(commandLine: "preview rate 400 for 1h") else {
            Issue.record("refused")
            return
        }
        #expect(Date().timeIntervalSince(began) < 60)
        #expect(cut.durationSeconds == 3_600 && cut.coveredSeconds < 3_600 && cut.coveredSeconds >= 15)
        #expect(cut.stopped?.hasPrefix("stopped at ") == true)
        #expect(cut.stopped?.hasSuffix("of the 1h window: it used up its 0.2 s wall-clock budget") == true, "\(cut.stopped ?? "nil")")
        #expect(cut.baseline.requests.arrived > 0)
        #expect(EngineHost.Bounds().previewWall == 30, "the documented default")
    }
}

/// A lock that closures running on other threads can share.
final class Shared<Value: Sendable>: Sendable {
    let value: Mutex<Value>
    init(_ value: Value) { self.value = Mutex(value) }

}
