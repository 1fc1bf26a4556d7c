import Foundation
import ServingEngine
import SimKit
import Synchronization
import Testing
import XDSTestSupport
@testable import EngineRuntime

/// Short bounds so the suite stays quick; the contract is the same at any scale.
let quickBounds = EngineHost.Bounds(stall: 0.3, backlog: 0.3, command: 1, admission: 1)

func elapsed(_ body: () -> Void) -> Double {
    let start = DispatchTime.now().uptimeNanoseconds
    body()
    return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
}

@Suite(.serialized, .timeLimit(.minutes(10)))
struct LivenessTests {
    /// Seconds allowed past a bound before an answer counts as late. Every wedge below lasts
    /// until the test releases it, so an answer within any finite time shows the bound works;
    /// a few seconds were too few when other suites loaded both cores.
    let slack = 10.0

    @Test func anIdleEngineAtOneTimesIsRunningAndAPausedOneIsPausedNotStalled() {
        // A 1 s stall bound: long enough that a busy test machine starving the thread is no stall.
        let host = EngineHost(core: ClockCore(), speed: 1, publishInterval: 0.01,
                              bounds: EngineHost.Bounds(stall: 1, backlog: 1, command: 2, admission: 2))
        #expect(host.liveness().state == .notStarted)
        host.start()
        defer { host.stop() }
        Thread.sleep(forTimeInterval: 1.5)  // well past the stall bound
        #expect(eventually { host.liveness().state == .running }, "\(host.liveness())")
        #expect(eventually { host.liveness().secondsSinceTurn < 1 }, "\(host.liveness())")
        #expect(host.send(commandLine: "pause").accepted)
        Thread.sleep(forTimeInterval: 1.5)
        #expect(eventually { host.liveness().state == .paused })
        let paused = host.liveness()
        #expect(paused.isLive, "\(paused)")
        #expect(host.unavailableReason == nil)  // /ready reports "paused" from the snapshot
        #expect(host.send(commandLine: "resume").accepted)
        #expect(eventually { host.liveness().state == .running })
        host.stop()
        #expect(host.liveness().state == .stopped)
    }

    @Test func aWedgedEngineIsReportedAndEveryAnswerStillComesInBoundedTime() async throws {
        let core = WedgeableCore()
        let host = EngineHost(core: core, speed: 1, publishInterval: 0.01, bounds: quickBounds)
        host.start()
        #expect(eventually { host.latestSnapshot().simTime > 0 })
        core.wedge()
        #expect(eventually { core.inside.load(ordering: .acquiring) })

        // Not advancing simulated time while unpaused: stalled, with the reason.
        #expect(eventually { host.liveness().state == .stalled })
        let reason = try #require(host.unavailableReason)
        #expect(reason.contains("has not advanced simulated time"), "\(reason)")

        // A command waiting in the queue makes the engine backlogged after the bound.
        let waiting = Thread { _ = host.send(commandLine: "drain node 2") }
        waiting.start()
        #expect(eventually { host.liveness().state == .backlogged })

        // A command gets an error answer in bounded time and is withdrawn.
        var reply = CommandReply(accepted: true, message: "")
        let took = elapsed { reply = host.send(commandLine: "drain node 3") }
        // Bounded (the wedge holds until released below); the slack past the 1 s bound is for a
        // machine loaded by other suites, where one wall-clock second is not the engine's.
        #expect(took < 1 + slack, "send took \(took) s")
        #expect(!reply.accepted)
        #expect(reply.message.hasPrefix("the engine did not apply the command within 1 s: drain node 3"), "\(reply.message)")
        #expect(reply.message.contains("withdrawn"))

        // A completion request is refused at once once the engine has been stuck beyond the bound.
        #expect(eventually { host.liveness().secondsSinceProgress > 1.2 })
        var events: [CompletionEvent] = []
        for await event in host.submit(CompletionRequest(promptTokens: 10, maxTokens: 5)) { events.append(event) }
        #expect(events.count == 1)
        if case .failed(let why, let status) = events.first {
            #expect(status == 503 && why.contains("cannot take requests"), "\(why)")
        } else {
            Issue.record("expected a 503, got \(events)")
        }

        // Stopping a stuck engine returns within its bound and says it did not stop.
        var stopped = true
        let stopTook = elapsed { stopped = host.stop(timeout: 0.5) }
        #expect(!stopped)
        #expect(stopTook < 0.5 + slack, "stop took \(stopTook) s")
        #expect(!host.send(commandLine: "drain node 4").accepted)

        // Released, the engine ends its loop; the withdrawn commands never applied.
        core.release()
        #expect(host.stop(timeout: 5))
        #expect(!core.applied.contains(.drain(node: 3)) && !core.applied.contains(.drain(node: 2)))
        #expect(!host.commandLog.contains { $0.line.hasPrefix("drain") })
    }

    @Test func aPausedEngineStuckInsideACommandIsStalledAndTheSenderIsToldSo() {
        let core = WedgeableCore()
        let host = EngineHost(core: core, speed: 1, publishInterval: 0.01, bounds: quickBounds)
        host.start()
        #expect(host.send(commandLine: "pause").accepted)
        #expect(eventually { host.liveness().state == .paused })
        core.wedgeApply()
        var reply = CommandReply(accepted: true, message: "")
        let took = elapsed { reply = host.send(commandLine: "drain node 7") }
        // Taken by the engine (so it cannot be withdrawn), then stuck: bound + 1 s grace.
        #expect(took < 2.5 + slack, "send took \(took) s")
        #expect(!reply.accepted && reply.message.contains("still inside it"), "\(reply.message)")
        let stuck = host.liveness()
        #expect(stuck.state == .stalled && stuck.reason.contains("has not turned"), "\(stuck)")
        core.release()
        #expect(eventually { host.liveness().state == .paused })
        #expect(host.stop(timeout: 5))
    }

    @Test func aRequestNotTakenInWithinTheBoundIsAnswered503() async {
        let core = WedgeableCore()
        // A long stall bound, so the host still believes it is live when the request arrives.
        let host = EngineHost(core: core, speed: 1, publishInterval: 0.01,
                              bounds: EngineHost.Bounds(stall: 30, backlog: 30, command: 0.5, admission: 0.5))
        host.start()
        #expect(eventually { host.latestSnapshot().simTime > 0 })
        core.wedge()
        #expect(eventually { core.inside.load(ordering: .acquiring) })
        let start = DispatchTime.now().uptimeNanoseconds
        var events: [CompletionEvent] = []
        for await event in host.submit(CompletionRequest(promptTokens: 10, maxTokens: 5)) { events.append(event) }
        let took = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        #expect(took < 0.5 + slack, "took \(took) s")
        #expect(events == [.failed(reason: "the engine did not take the request in within 0.5 s", status: 503)])
        core.release()
        #expect(host.stop(timeout: 5))
        #expect(core.submitted == 0)  // withdrawn: never reached the engine
    }

    @Test func requestsInFlightOnAnEngineThatStaysStuckAreAnswered503() async {
        let core = WedgeableCore()
        let host = EngineHost(core: core, speed: 1, publishInterval: 0.01,
                              bounds: EngineHost.Bounds(stall: 0.3, backlog: 0.3, command: 1, admission: 1, abandon: 0.8))
        host.start()
        var events: [CompletionEvent] = []
        let stream = host.submit(CompletionRequest(promptTokens: 10, maxTokens: 5))
        var iterator = stream.makeAsyncIterator()
        if let first = await iterator.next() { events.append(first) }
        #expect(events == [.accepted(requestID: 1)])
        core.wedge()
        let start = DispatchTime.now().uptimeNanoseconds
        while let event = await iterator.next() { events.append(event) }
        let took = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        #expect(took < 0.8 + slack, "took \(took) s")
        if case .failed(let reason, 503)? = events.last {
            #expect(reason.contains("request abandoned"), "\(reason)")
        } else {
            Issue.record("expected a 503 after the stall, got \(events)")
        }
        core.release()
        #expect(host.stop(timeout: 5))
    }

    @Test func speedsOutsideTheRangeAreRefusedByTheHost() {
        let core = ClockCore()
        let host = EngineHost(core: core, speed: 1, publishInterval: 0.01, bounds: quickBounds)
        host.start()
        defer { host.stop() }
        for line in ["speed 1e-300", "speed 0.001", "speed 1e300", "speed 200000"] {
            let reply = host.send(commandLine: line)
            #expect(!reply.accepted, "\(line)")
            // The parser and the host share one range (CommandLimits); whichever refuses, it is named.
            #expect(reply.message.contains("0.01") && reply.message.contains("100000"), "\(line): \(reply.message)")
        }
        for line in ["rate 1e308", "rate 1e6", "rate 10001"] {
            let reply = host.send(commandLine: line)
            #expect(!reply.accepted && reply.message.contains("10000 requests/s"), "\(line): \(reply.message)")
        }
        #expect(host.send(commandLine: "rate 10000").accepted)
        #expect(host.send(commandLine: "speed 0.5").accepted)
        #expect(host.send(commandLine: "speed 100000").accepted)
        #expect(host.latestSnapshot().speed == 100_000)
        // Even at the top speed one call into the engine covers at most 0.25 simulated seconds.
        #expect(eventually { host.latestSnapshot().simTime > 10 })
        #expect(host.liveness().state == .running)
    }

    @Test func aHostBuiltWithAWildSpeedClampsIt() {
        #expect(EngineHost(core: ClockCore(), speed: 1e-300).latestSnapshot().speed == 0.01)
        #expect(EngineHost(core: ClockCore(), speed: .infinity).latestSnapshot().speed == 100_000)
    }
}
