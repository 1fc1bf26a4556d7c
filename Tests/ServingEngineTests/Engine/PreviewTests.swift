import Foundation
import PodModel
import SimKit
import Testing
import XDSTestSupport

@testable import ServingEngine

/// The what-if preview (issue 16) on the engine: it never changes the engine, it is
/// deterministic, its `with_command` side is what the live run then does, and bad requests are
/// refused with a reason.
@Suite(.timeLimit(.minutes(10))) struct PreviewTests {
    static func request(_ line: String) throws -> PreviewRequest { try PreviewRequest.parse(line).get() }

    @Test func previewsLeaveTheEngineByteForByteUnchanged() throws {
        let a = try ForkTests.busyEngine()
        let p1 = try a.preview(Self.request("preview fault node 3 for 30s"))
        a.run(until: 9)
        let p2 = try a.preview(Self.request("preview fault node 3 for 1m"))
        _ = try a.preview(Self.request("preview drain node 0 for 1m"))
        _ = try? a.preview(Self.request("preview drain node 99"))  // refused: changes nothing either
        a.run(until: 60)
        let c = try FaultTests.engine(rate: 30, limit: 300)
        ForkTests.replay(ForkTests.busyActions, on: c, until: 60)
        #expect(try ForkTests.state(a) == ForkTests.state(c))
        #expect(p1.withCommand != p1.baseline && p2.withCommand != p2.baseline, "the previewed commands had an effect")
    }

    @Test func samePreviewTwiceGivesTheSameNumbers() throws {
        let a = try ForkTests.busyEngine()
        let request = try Self.request("preview fault node 3 for 2m")
        let first = try a.preview(request), second = try a.preview(request)
        #expect(first == second)
        #expect(first.durationSeconds == 120 && first.fromSeconds == 8 && first.command == "fault node 3")
        // A decode node lost: the command side loses requests or gets slower, and says why.
        let w = first.withCommand, b = first.baseline
        #expect(w.lost > b.lost || w.latencyMs.e2e.p99 > b.latencyMs.e2e.p99, "\(w) vs \(b)")
        #expect(w.requests.failed == w.requests.failureReasons.values.reduce(0, +))
    }

    /// After the preview, the command applied for real: the live engine's next DURATION is the
    /// `with_command` side exactly, and an engine left alone is the baseline.
    /// Per die counts each TE's own dies: xdeepserve-ma's external prefill runs on 8 × 16
    /// one-die Ascend 910Bs (128 dies), not on the pod's two-die 910Cs (it was divided by 256).
    @Test func perDieCountsEachTEsOwnHardware() throws {
        let engine = try ServingEngine(configuration: EngineConfiguration(deployment: .xDeepServeMA, syntheticRate: 0))
        let prefillDies = engine.instances.filter(\.hasPrefill).map {
            $0.groupSpec.npusEach * $0.cost.hardware.diesPerDevice
        }.reduce(0, +)
        #expect(prefillDies == 128)
        engine.run(until: 1)
        let t = engine.throughput(generatedTokens: 0, prefillComputedTokens: 1_280, from: 0, deviceTimeAtStart: .init())
        #expect(t.prefillTokensPerSPerNPU == 10, "\(t)")
    }

    @Test(arguments: ["preview undrain node 1 for 40s", "preview fault npu 30 for 1m", "preview rate 60 for 30s"])
    func previewPredictsTheLiveRun(line: String) throws {
        let request = try Self.request(line)
        let live = try ForkTests.busyEngine()
        let predicted = try live.preview(request)
        let alone = try live.fork()
        let aloneMark = alone.beginWindow()
        let mark = live.beginWindow()
        #expect(live.apply(request.command).accepted)
        live.run(until: 8 + request.duration)
        alone.run(until: 8 + request.duration)
        #expect(live.windowSide(since: mark) == predicted.withCommand)
        #expect(alone.windowSide(since: aloneMark) == predicted.baseline)
        #expect(predicted.withCommand.requests.arrived > 0 && predicted.withCommand.requests.completed > 0)
    }

    /// Cancelled, a run stops at its next slice (bounded simulated work on both sides) and answers
    /// nil; a token never cancelled leaves the numbers exactly as a run without one.
    @Test func aCancelledPreviewStopsWithinASlice() throws {
        let a = try ForkTests.busyEngine()
        let request = try Self.request("preview fault node 3 for 2m")
        let plain = try a.preview(request)
        let kept = try #require(try a.startPreview(request).run(cancellation: PreviewCancellation()))
        #expect(kept == plain)

        let early = PreviewCancellation()
        early.cancel()
        let idle = try a.startPreview(request)
        #expect(idle.run(cancellation: early) == nil)
        #expect(idle.baseline.now == idle.from && idle.withCommand.now == idle.from, "no simulated work")

        let midway = PreviewCancellation()
        let run = try a.startPreview(request)
        var reports: [Double] = []
        let result = run.run(progress: { share in reports.append(share); midway.cancel() }, cancellation: midway)
        #expect(result == nil)
        #expect(reports == [PreviewRun.slice / request.duration], "stopped after the first of 8 slices")
        #expect(run.baseline.now == run.from + PreviewRun.slice)
        // The other side may have begun its second slice before the flag went up, not a third.
        #expect(run.withCommand.now >= run.from + PreviewRun.slice && run.withCommand.now <= run.from + 2 * PreviewRun.slice)
        #expect(run.end == run.from + 120)
    }

    @Test func windowCountsOnlyTheWindow() throws {
        let a = try ForkTests.busyEngine()
        let before = a.report().requests
        let p = try a.preview(Self.request("preview undrain node 1 for 5m"))
        let after = try a.fork()
        after.run(until: 8 + 300)
        let whole = after.report().requests
        #expect(p.baseline.requests.arrived == whole.arrived - before.arrived)
        #expect(p.baseline.requests.completed == whole.completed - before.completed)
        #expect(p.baseline.requests.inFlight == whole.inFlight)
        // The window's counts reconcile once the requests already in flight at the fork are
        // counted (they complete in the window without having arrived in it).
        #expect(before.inFlight > 0, "the engine was busy at the fork")
        for side in [p.baseline, p.withCommand] {
            let r = side.requests
            #expect(r.inFlightAtStart == before.inFlight)
            #expect((r.inFlightAtStart ?? 0) + r.arrived == r.completed + r.failed + r.rejected + r.inFlight, "\(r)")
        }
        #expect(before.inFlightAtStart == nil, "a whole run's report has no window start")
    }

    /// A side's throughput is counted as the run report counts it: per die and per chip of the
    /// devices that decode (it once divided by chips, called that per die, and left per chip 0).
    @Test func windowThroughputIsPerDieAndPerChipAsInTheReport() throws {
        let a = try ForkTests.busyEngine()
        let p = try a.preview(Self.request("preview rate 60 for 1m"))
        let t = p.baseline.throughput
        let report = a.report().throughput
        #expect(t.outputTokensPerS > 0 && t.outputTokensPerSPerChip > 0)
        let diesPerChip = t.outputTokensPerSPerChip / t.outputTokensPerSPerNPU
        #expect(abs(diesPerChip - report.outputTokensPerSPerChip / report.outputTokensPerSPerNPU) < 1e-9)
        #expect(abs(diesPerChip - Double(a.hardware.diesPerDevice)) < 1e-9, "\(t)")
    }

    @Test(arguments: [
        ("preview drain node 99", "the engine would reject 'drain node 99'"),
        ("preview heal 42", "the engine would reject 'heal 42'"),
    ])
    func commandsTheEngineRejectsAreRefusedWithItsReason(line: String, prefix: String) throws {
        let a = try ForkTests.busyEngine()
        let before = try ForkTests.state(a)
        let request = try Self.request(line)
        #expect(throws: PreviewRefusal.self) { try a.preview(request) }
        do { _ = try a.preview(request) } catch {
            #expect(error.message.hasPrefix(prefix), "\(error.message)")
            #expect(error.message.count > prefix.count + 5, "gives the engine's reason: \(error.message)")
        }
        #expect(try ForkTests.state(a) == before)
    }

    @Test func engineRefusesDurationsOutOfRange() throws {
        let a = try FaultTests.engine()
        for seconds in [0, -5, 3_601, .infinity, .nan] as [Double] {
            #expect(throws: PreviewRefusal.self) { try a.preview(PreviewRequest(command: .rebalance, duration: seconds)) }
        }
        #expect(throws: PreviewRefusal.self) { try a.preview(PreviewRequest(command: .pause, duration: 60)) }
    }

    @Test(arguments: [
        ("preview drain node 20 for 10m", OperatorCommand.drain(node: 20), 600.0),
        ("preview drain node 20", .drain(node: 20), 600),
        ("PREVIEW fault npu 3 for 90s", .faultNPU(3), 90),
        ("preview rate 50 for 1h", .rate(requestsPerSecond: 50), 3_600),
        ("preview rebalance for 2.5m", .rebalance, 150),
        ("preview heal all for 45", .healAll, 45),
        ("fault node 2 for 1min", .faultNode(2), 60),
    ])
    func parsesPreviews(line: String, command: OperatorCommand, seconds: Double) throws {
        let request = try Self.request(line)
        #expect(request.command == command)
        #expect(request.duration == seconds)
        #expect(try Self.request(request.description) == request, "round trip of \(request)")
    }

    @Test(arguments: [
        ("preview preview drain node 2", "a preview cannot preview a preview"),
        ("preview", "expected a command to preview"),
        ("preview drain node 2 for 2h", "a preview runs from 1s to 1h"),
        ("preview drain node 2 for 0s", "a preview runs from 1s to 1h"),
        ("preview drain node 2 for 1e300h", "a preview runs from 1s to 1h"),
        ("preview drain node 2 for soon", "expected a duration from 1s to 1h"),
        ("preview drain node 2 for nan", "expected a duration from 1s to 1h"),
        ("preview drain node 2 for", "expected a duration after 'for'"),
        ("preview pause", "'pause' changes only the pace"),
        ("preview speed 10", "'speed 10' changes only the pace"),
        ("preview drain nod 2", "expected 'node'"),
    ])
    func refusesBadPreviews(line: String, message: String) {
        guard case .failure(let error) = PreviewRequest.parse(line) else {
            Issue.record("\(line) was accepted")
            return
        }
        #expect(error.message.hasPrefix(message) || error.message.contains(message), "\(line): \(error.message)")
    }

    @Test func resultEncodesTheInterfaceKeys() throws {
        let a = try ForkTests.busyEngine()
        var p = try a.preview(Self.request("preview undrain node 1 for 20s"))
        p.wallSeconds = 0.5
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let object = try #require(try JSONSerialization.jsonObject(with: encoder.encode(p)) as? [String: Any])
        for key in ["command", "duration_s", "baseline", "with_command", "wall_seconds"] { #expect(object[key] != nil, "\(key)") }
        let side = try #require(object["with_command"] as? [String: Any])
        #expect(Set(side.keys) == ["requests", "latency_ms", "slo", "throughput", "kv"])
        #expect(try JSONDecoder().decode(PreviewResult.self, from: encoder.encode(p)) == p)
    }

    /// A scale-up whose TE comes into service after the window says when (both sides were the
    /// same, with nothing saying the action had not taken effect yet); the time is the one the
    /// live run then shows. A scale that finishes inside the window says nothing.
    @Test func aScaleFinishingAfterTheWindowSaysWhen() throws {
        // Busy, with the spare node whole (the busy engine's faults took a spare).
        let a = try FaultTests.engine(rate: 30, limit: 300)
        a.run(until: 8)
        let slow = try a.preview(Self.request("preview scale prefill +1 from object-store for 30s"))
        let note = try #require(slow.unfinished)
        #expect(note.hasPrefix("the scale-up finishes at +") && note.hasSuffix(" s, after the 30s window: 1 of its 1 new TE "
            + "not in service yet (1 loading weights; load path object-store)"), "\(note)")
        // Per-die figures count the starting TE's dies; what served is the same on both sides.
        #expect(slow.baseline.requests == slow.withCommand.requests && slow.baseline.latencyMs == slow.withCommand.latencyMs,
                "nothing of the scale shows in the window")
        let encoder = JSONEncoder()
        #expect(try JSONDecoder().decode(PreviewResult.self, from: encoder.encode(slow)) == slow)
        // The finish the note gives is the live run's, to the tenth of a second.
        let at = try #require(Double(note.dropFirst("the scale-up finishes at +".count).prefix { $0 != " " }))
        let from = a.now
        #expect(a.apply(.scale(role: .prefill, change: .by(1), from: .objectStore)).accepted)
        a.run(until: from + 3_000)
        let ready = try #require(a.report().scaling?.details.last?.readyS)
        #expect(abs(ready - from - at) <= 0.1, "note +\(at) s, live run ready at +\(ready - from) s")
        #expect(at > 30)

        let b = try FaultTests.engine(rate: 30, limit: 300)
        b.run(until: 8)
        #expect(try b.preview(Self.request("preview scale prefill +1 for 30s")).unfinished == nil)
        #expect(try b.preview(Self.request("preview drain node 2 for 30s")).unfinished == nil)
        #expect(!String(decoding: try encoder.encode(b.preview(Self.request("preview rate 60 for 20s"))), as: UTF8.self)
            .contains("unfinished"), "the key is written only when there is such a scale")
    }

    /// `autoscale slo` on a colocated deployment is accepted and scales nothing: the two sides are
    /// equal and the reason was only in `reply`; ``PreviewResult/noChangeReply`` gives it to the
    /// text outputs. A command that changes the window gives none.
    @Test func aCommandThatChangesNothingGivesTheReplyAsTheReason() throws {
        var config = EngineConfiguration(deployment: try Deployment.resolve("colocated:4:llama-2-7b:nvidia-a100:tp1"),
                                         seed: 1, syntheticRate: 8)
        config.eventCapacity = 100_000
        let engine = try ServingEngine(configuration: config, workload: SyntheticWorkload(
            seed: 1, configuration: SyntheticWorkload.Configuration(ratePerSecond: 8)))
        engine.run(until: 5)
        let inert = try engine.preview(Self.request("preview autoscale slo for 30s"))
        #expect(inert.baseline == inert.withCommand)
        let reply = try #require(inert.noChangeReply)
        #expect(reply == inert.reply && reply.contains("has none it can scale"), "\(reply)")
        let busy = try ForkTests.busyEngine()
        let drained = try busy.preview(Self.request("preview fault node 3 for 30s"))
        #expect(drained.baseline != drained.withCommand && drained.noChangeReply == nil)
    }

    /// Told to stop (the host's wall-clock budget), a run ends at a slice boundary with both sides
    /// at the same simulated time and answers with that window, saying where it stopped and why:
    /// the numbers are those of a preview of that length. At least one slice is always run.
    @Test func aStoppedPreviewAnswersWithTheWindowSoFar() throws {
        let a = try ForkTests.busyEngine()
        let request = try Self.request("preview fault node 3 for 2m")
        let stop = PreviewCancellation()
        let run = try a.startPreview(request)
        var reports: [Double] = []
        let result = try #require(run.run(progress: { share in reports.append(share); stop.stop(reason: "time's up") },
                                          cancellation: stop))
        #expect(reports == [PreviewRun.slice / request.duration])
        #expect(run.baseline.now == run.withCommand.now, "both sides cover the same window")
        #expect(result.coveredSeconds == run.baseline.now - run.from)
        #expect(result.coveredSeconds == 15 || result.coveredSeconds == 30, "\(result.coveredSeconds)")
        #expect(result.durationSeconds == 120 && !result.isComplete)
        #expect(result.stopped == "stopped at \(Int(result.coveredSeconds))s of the 2m window: time's up")
        let short = try a.preview(Self.request("preview fault node 3 for \(Int(result.coveredSeconds))s"))
        #expect(short.isComplete && short.coveredSeconds == short.durationSeconds)
        #expect(result.baseline == short.baseline && result.withCommand == short.withCommand)

        let before = PreviewCancellation()
        before.stop(reason: "no time at all")
        let atOnce = try #require(try a.startPreview(request).run(cancellation: before))
        #expect(atOnce.coveredSeconds >= PreviewRun.slice && atOnce.coveredSeconds < 120)
        #expect(atOnce.stopped?.hasSuffix("no time at all") == true)
    }
}
