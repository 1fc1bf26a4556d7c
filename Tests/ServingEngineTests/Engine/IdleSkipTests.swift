import Foundation
import PodModel
import SimKit
import Testing
import XDSTestSupport

@testable import ServingEngine

/// Idle time is free (issue 10): a stretch with nothing but periodic bookkeeping costs O(1)
/// events. Each test would fail if such stretches were simulated tick by tick (event counts in
/// the millions, or a time limit).
@Suite(.timeLimit(.minutes(10)), .cpuBound) struct IdleSkipTests {
    static func engine(_ requests: [RequestSpec], eplb: EPLBMode = .on, seed: UInt64 = 1,
                       deployment: Deployment = TestDeployments.toyPod) throws -> ServingEngine {
        var config = EngineConfiguration(deployment: deployment, seed: seed, syntheticRate: 0)
        config.eplb = eplb
        return try ServingEngine(configuration: config, workload: FixedWorkload(requests))
    }

    static func request(_ id: Int, at arrival: SimTime, prompt: Int = 1_000, output: Int = 50) -> RequestSpec {
        RequestSpec(id: id, arrival: arrival, promptTokens: prompt, outputTokens: output, prefixBlockTokens: 128)
    }

    /// The acceptance case: 10¹² ms between two requests.
    @Test func aTraceWithA1e12MillisecondGapReplaysInAFewThousandEvents() throws {
        let engine = try Self.engine([Self.request(0, at: 0), Self.request(1, at: 1e9)])
        let started = Date()
        #expect(engine.runToCompletion())
        let wall = Date().timeIntervalSince(started)
        let report = engine.report()
        #expect(report.requests.completed == 2)
        #expect(engine.now >= 1e9)
        // Tick by tick this gap is 2·10⁹ telemetry ticks and 10⁹ heartbeat rounds; the report
        // counts them (as if processed), the engine processed only a few thousand events.
        #expect(report.events - engine.skippedPeriodicEvents < 5_000,
                "processed \(report.events - engine.skippedPeriodicEvents)")
        #expect(engine.skippedPeriodicEvents > 2_000_000_000)
        #expect(wall < 10, "wall \(wall) s (debug build; release is milliseconds)")
        #expect(engine.audit() == [])
        // Both requests took the same (short) time: the second one saw an ordinary engine.
        #expect(report.latencyMs.e2e.p99 < 60_000)
    }

    /// `run(until:)` with a limit far beyond the last event: the stretch up to the limit is free.
    @Test func aYearAtAVeryLowRateCostsEventsPerRequestNotPerTick() throws {
        // The lowest rate the engine takes (CommandLimits.minNonzeroRate): one request per ~2.8 h.
        var config = EngineConfiguration(deployment: TestDeployments.toyPod, seed: 3, syntheticRate: 1e-4)
        config.eplb = .off
        // Short requests keep the busy part cheap in a debug build; the idle part is the test.
        var synthetic = SyntheticWorkload.Configuration(ratePerSecond: 1e-4)
        synthetic.maxOutputTokens = 16
        synthetic.maxPromptTokens = 2_048
        let engine = try ServingEngine(configuration: config,
                                       workload: SyntheticWorkload(seed: 3, configuration: synthetic))
        let year: SimTime = 365 * 86_400
        engine.run(until: year)
        let report = engine.report()
        #expect(engine.now == year)
        #expect(report.requests.arrived > 2_900 && report.requests.arrived < 3_400, "arrived \(report.requests.arrived)")
        #expect(report.requests.arrived == report.requests.completed + report.requests.inFlight)
        // Tick by tick: 6.3·10⁷ ticks and 3.2·10⁷ heartbeats.
        let processed = report.events - engine.skippedPeriodicEvents
        #expect(processed < 200 * max(1, report.requests.arrived), "processed \(processed)")
        #expect(engine.skippedPeriodicEvents > 90_000_000)
        #expect(engine.audit() == [])
    }

    /// Skipping is invisible: a quiet tick processed on its own takes the same closed form as a
    /// skip, so the report (event count included) is the same, with expert skew and EPLB on.
    @Test(arguments: [EPLBMode.perfect, .on])
    func skippingChangesNothing(eplb: EPLBMode) throws {
        let requests = (0..<6).map { Self.request($0, at: Double($0) * 250 + 3, prompt: 2_000 + 300 * $0, output: 80) }
        let skipped = try Self.engine(requests, eplb: eplb)
        let ticked = try Self.engine(requests, eplb: eplb)
        ticked.idleSkipEnabled = false
        for engine in [skipped, ticked] {
            engine.run(until: 100)
            _ = engine.apply(.drain(node: 1))
            engine.run(until: 700)
            _ = engine.apply(.undrain(node: 1))
            #expect(engine.runToCompletion())
            engine.run(until: engine.now + 500)
        }
        let a = skipped.report(), b = ticked.report()
        #expect(skipped.skippedPeriodicEvents > a.events / 2 && ticked.skippedPeriodicEvents == 0)
        #expect(a == b)
        #expect(skipped.now == ticked.now)
        // The sparkline series keep their cadence (same number of points).
        #expect(skipped.snapshot().series.kvUsage.count == ticked.snapshot().series.kvUsage.count)
    }

    /// A stretch with a request stuck in a very long step (a straggler slowed past the engine's
    /// bound) is steady as well: the clock reaches the step's end without ticking through it.
    @Test func aStepSlowedBeyondTheBoundIsClampedAndSkippedThrough() throws {
        let engine = try Self.engine([Self.request(0, at: 0, prompt: 500, output: 20)])
        engine.run(until: 0.01)
        // Die 0 is on prefill-0's node (prefill TEs are nodes 0 and 1).
        let reply = engine.apply(.faultStraggler(die: 0, slowdown: 1e300))
        #expect(reply.accepted && reply.message.contains("capped"))
        #expect(engine.runToCompletion())
        let report = engine.report()
        #expect(report.requests.completed == 1)
        #expect(engine.now.isFinite && engine.now < 2 * ServingEngine.longestDelay)
        #expect(report.events < 10_000, "events \(report.events)")
    }

    @Test func gridStepsStayBeforeTheHorizonAndMoveForward() {
        let a = ServingEngine.gridSteps(from: 0.5, every: 0.5, before: 100)
        #expect(a.count == 198 && a.next == 99.5)
        let b = ServingEngine.gridSteps(from: 0.5, every: 0.5, before: 100.25)
        #expect(b.count == 199 && b.next == 100)
        #expect(ServingEngine.gridSteps(from: 1, every: 0.5, before: 1.2).count == 0)
        // Astronomically late, the grid cannot be resolved: the next event lands just before.
        let c = ServingEngine.gridSteps(from: 0.5, every: 0.5, before: 1e300)
        #expect(c.count >= 1 && c.next < 1e300 && c.next > 0.5)
    }

    @Test func utilisationDecaysAsTickByTick() {
        let interval = 0.5
        for busy in [0.0, 0.2, 0.7, 3.3, 40.0, 1e6] {
            for ticks in [1.0, 2, 7, 100, 1_000] {
                var (u, b) = (0.3, busy)
                for _ in 0..<Int(ticks) {
                    u = min(1, b / interval)
                    b = max(0, b - interval)
                }
                let closed = ServingEngine.decayUtilization(busy: busy, utilization: 0.3, ticks: ticks, interval: interval)
                #expect(abs(closed.utilization - u) < 1e-9 && abs(closed.busy - b) < 1e-6, "busy \(busy), ticks \(ticks)")
            }
        }
    }

    @Test func closedFormDriftOfOneStepIsTheStepItself() {
        let shape = ModelSpecShape(moeLayers: 3, experts: 16)
        var a = ExpertTraffic(shape: shape, seed: 5), b = a
        a.advanceDrift(seconds: 30)
        b.advanceDrift(steps: 1, firstSeconds: 30, seconds: 30)
        #expect(a.popularity == b.popularity)
        // Many steps: still a valid popularity (rows of mean 1), no NaN however long.
        b.advanceDrift(steps: 1e12, firstSeconds: 30, seconds: 30)
        for row in b.popularity.layers {
            #expect(row.allSatisfy { $0.isFinite })
            #expect(abs(row.reduce(0, +) / Double(row.count) - 1) < 1e-9)
        }
    }

    @Test func quietUntilNamesTheNextRealEvent() throws {
        let engine = try Self.engine([Self.request(0, at: 0), Self.request(1, at: 5_000)])
        engine.run(until: 200)
        #expect(engine.quietUntil == 5_000)
        engine.run(until: 5_000.01)
        // The request's prefill step is under way: at most its end.
        #expect((engine.quietUntil ?? 0) < 5_001)
    }
}
