import Foundation
import PodModel
import SimKit
import Testing
import XDSTestSupport

@testable import ServingEngine

/// A preview's window includes the scenario steps still to come (a review found it ran on a flat
/// rate and saw no scheduled fault): both sides apply them at their times, as `xds run` does, and
/// a step a side refuses is refused there.
@Suite(.timeLimit(.minutes(10))) struct PreviewScheduledStepsTests {
    static func step(_ at: SimTime, _ line: String) throws -> Scenario.Step {
        Scenario.Step(at: at, command: try OperatorCommand.parse(line).get())
    }

    /// A rate step and a fault step in the window.
    static func steps() throws -> [Scenario.Step] {
        [try step(15, "rate 80"), try step(25, "fault node 3")]
    }

    /// Drives `engine` as `xds run` does: to each step's time, then the step.
    static func runAsXdsRun(_ engine: ServingEngine, steps: [Scenario.Step], until end: SimTime) {
        for step in steps where step.at <= end {
            engine.run(until: step.at)
            _ = engine.apply(step.command)
        }
        engine.run(until: end)
    }

    @Test func bothSidesMatchTheRunThatAppliesTheSteps() throws {
        let live = try RequestQueryTests.busyEngine(rate: 20, requests: 100_000)
        live.run(until: 5)
        let untouched = try live.fork()
        let request = try PreviewTests.request("preview drain node 1 for 40s")
        let steps = try Self.steps() + [try Self.step(60, "rate 300")]  // after the window: not applied
        let p = try live.preview(request, scheduled: steps)

        let alone = try live.fork(), withCommand = try live.fork()
        let aloneMark = alone.beginWindow(), mark = withCommand.beginWindow()
        #expect(withCommand.apply(request.command).accepted)
        Self.runAsXdsRun(alone, steps: steps, until: 45)
        Self.runAsXdsRun(withCommand, steps: steps, until: 45)
        #expect(p.baseline == alone.windowSide(since: aloneMark))
        #expect(p.withCommand == withCommand.windowSide(since: mark))
        #expect(p.scheduledSteps == [.init(atSeconds: 15, command: "rate 80"), .init(atSeconds: 25, command: "fault node 3")])

        // The steps show: more arrivals than on the flat rate, and the fault's failures.
        let flat = try live.preview(request)
        #expect(flat.scheduledSteps.isEmpty)
        #expect(p.baseline.requests.arrived > flat.baseline.requests.arrived + 500, "\(p.baseline.requests.arrived) vs \(flat.baseline.requests.arrived)")
        #expect(alone.report().faults.injected == 1 && withCommand.report().faults.injected == 1,
                "the scheduled fault struck in the window the preview matched")
        // The engine previewed from is unchanged.
        #expect(live.now == 5)
        live.run(until: 50)
        untouched.run(until: 50)
        #expect(live.report() == untouched.report())
    }

    @Test func aStepASideRefusesIsRefusedThereOnly() throws {
        let live = try RequestQueryTests.busyEngine(rate: 20, requests: 100_000)
        live.run(until: 5)
        let p = try live.preview(PreviewTests.request("preview drain node 1 for 30s"),
                                 scheduled: [try Self.step(10, "drain node 1")])
        let step = try #require(p.scheduledSteps.first)
        #expect(step.baselineRefused == nil, "the baseline drains node 1 at 10 s")
        #expect(step.withCommandRefused?.isEmpty == false, "node 1 is already drained on the with_command side")
        #expect(p.baseline != p.withCommand)
        // The steps survive the JSON round trip (the admin API's answer, --connect's reading of it).
        let encoded = try JSONEncoder().encode(p)
        #expect(String(decoding: encoded, as: UTF8.self).contains("\"scheduled_steps\":[{"))
        #expect(try JSONDecoder().decode(PreviewResult.self, from: encoded) == p)
    }

    /// Stopped early by its budget, both sides stop at the same time, and only the steps due by then were applied.
    @Test func aStoppedPreviewListsTheStepsItApplied() throws {
        let live = try RequestQueryTests.busyEngine(rate: 20, requests: 100_000)
        live.run(until: 5)
        let run = try live.startPreview(PreviewTests.request("preview drain node 1 for 2m"),
                                        scheduled: [try Self.step(10, "rate 40"), try Self.step(100, "rate 60")])
        let cancellation = PreviewCancellation()
        cancellation.stop(reason: "test")
        let p = try #require(run.run(cancellation: cancellation))
        #expect(p.coveredSeconds < 60)
        #expect(p.scheduledSteps.map(\.command) == ["rate 40"])
        #expect(run.baseline.now == run.withCommand.now)
    }
}
