import Foundation
import ServingEngine
import SimKit
import Testing
import XDSTestSupport
@testable import EngineRuntime

/// Snapshots are built on the engine thread (issue 12: a saturated superpod's costs under 1 ms;
/// `xds bench snapshot` measures it). What the host must keep: publishing holds admissions up
/// by no more than the snapshot's own cost, snapshots come at the publish interval (not every
/// loop turn) and follow simulated time, and a command's effect is published before its reply.
@Suite(.serialized, .timeLimit(.minutes(10))) struct SnapshotPublishTests {
    /// Seconds from submission to `.accepted` for `count` requests, one every `gap` seconds.
    private static func admissionWaits(_ host: EngineHost, count: Int, gap: Int = 37) async -> [Double] {
        var waits: [Double] = []
        for _ in 0..<count {
            let began = ContinuousClock.now
            var events = host.submit(CompletionRequest(promptTokens: 10, maxTokens: 5)).makeAsyncIterator()
            if case .accepted = await events.next() {
                let (s, atto) = (ContinuousClock.now - began).components
                waits.append(Double(s) + Double(atto) / 1e18)
            }
            try? await Task.sleep(for: .milliseconds(gap))
        }
        return waits.sorted()
    }

    /// One phase: a host whose snapshots cost `snapshotSeconds`, 25 admissions timed; the median
    /// wait (infinite when none was measured) and how many were measured.
    static func measure(snapshotSeconds: Double) async -> (median: Double, measured: Int, core: WedgeableCore, seconds: Double) {
        let core = WedgeableCore(snapshotSeconds: snapshotSeconds)
        let host = EngineHost(core: core, speed: 1, publishInterval: 0.02)
        let began = ContinuousClock.now
        host.start()
        defer { host.stop() }
        let waits = await admissionWaits(host, count: 25)
        let (s, atto) = (ContinuousClock.now - began).components
        return (median(waits), waits.count, core, Double(s) + Double(atto) / 1e18)
    }

    /// The median of sorted waits; infinite for none (a phase whose task was cancelled), so the
    /// comparisons fail instead of the index trapping and ending the whole test process.
    static func median(_ sorted: [Double]) -> Double {
        sorted.isEmpty ? .infinity : sorted[sorted.count / 2]
    }

    /// A phase whose task is cancelled (the suite's time limit ran out on a loaded machine) may
    /// measure nothing: every wait then ends at once. Its median is then infinite, which fails the
    /// comparisons, and the test process goes on. The median of no waits was an "Index out of
    /// range" trap that ended the whole test run (the full suite under the address sanitizer,
    /// stops 60 and 62).
    @Test func aPhaseThatMeasuredNothingHasAnInfiniteMedianNotATrap() async {
        #expect(Self.median([0.1, 0.2, 0.3]) == 0.2)
        #expect(Self.median([]) == .infinity)
        let phase = await Task {
            withUnsafeCurrentTask { $0?.cancel() }
            return await Self.measure(snapshotSeconds: 0)
        }.value
        #expect(phase.measured > 0 || phase.median == .infinity)
    }

    /// A snapshot as costly as issue 12's budget (1 ms) against a free one: the median admission
    /// waits for a loop turn either way (the loop sleeps 5 ms a turn when paced), and publishing
    /// adds at most about its own cost. The 0.3 s snapshot shows the comparison can fail: on the
    /// engine thread a slow snapshot holds admissions (the reason the host once forked the engine).
    @Test func publishingHoldsAdmissionsUpByNoMoreThanTheSnapshotCosts() async throws {
        func medianWait(snapshotSeconds: Double) async -> (median: Double, core: WedgeableCore, seconds: Double) {
            let phase = await Self.measure(snapshotSeconds: snapshotSeconds)
            #expect(phase.measured == 25)
            return (phase.median, phase.core, phase.seconds)
        }
        // Free and 1 ms phases alternate, three of each, and the least median of each kind is
        // compared: other suites load the machine in bursts (a fresh-clone CI once measured 18.8
        // against 16.7 ms in one pair of phases), and a burst lengthens a phase's waits, never
        // shortens them, so the least median is the one a burst spared.
        var free = await medianWait(snapshotSeconds: 0)
        var budget = await medianWait(snapshotSeconds: 0.001)
        for _ in 1..<3 {
            let f = await medianWait(snapshotSeconds: 0), b = await medianWait(snapshotSeconds: 0.001)
            if f.median < free.median { free = f }
            if b.median < budget.median { budget = b }
        }
        let slow = await medianWait(snapshotSeconds: 0.3)
        // A machine loaded by the parallel test run stretches loop turns: 10 ms of slack.
        #expect(budget.median < free.median + 0.001 + 0.010, "1 ms snapshots: \(budget.median) s vs free \(free.median) s")
        #expect(slow.median > budget.median + 0.05, "0.3 s snapshots hold admissions: \(slow.median) s")
        // Published at the interval (20 ms) while running, never every turn (5 ms): over 25 × ~40 ms
        // about 50. The bound follows the phase's wall time, which a loaded machine stretches (a
        // loop that published every turn would build four times the interval's count).
        let atInterval = budget.seconds / 0.02
        #expect(budget.core.snapshotsBuilt >= 10 && Double(budget.core.snapshotsBuilt) < 2 * atInterval + 5,
                "\(budget.core.snapshotsBuilt) snapshots in \(budget.seconds) s")
    }

    /// Snapshots follow simulated time; a command's effect is in the snapshot its sender reads next.
    @Test func snapshotsFollowTimeAndCommands() async throws {
        let host = EngineHost(core: WedgeableCore(snapshotSeconds: 0.001), speed: 1)
        host.start()
        defer { host.stop() }
        let first = host.latestSnapshot().simTime
        try await Task.sleep(for: .milliseconds(700))
        #expect(host.latestSnapshot().simTime > first)
        let reply = host.send(commandLine: "pause")
        #expect(reply.accepted)
        #expect(host.latestSnapshot().paused)
        try await Task.sleep(for: .milliseconds(500))
        #expect(host.latestSnapshot().paused)
    }

    /// Paused and untouched, the clock stands still and nothing is rebuilt: a paused console
    /// costs the engine thread no snapshots (issue 12's idle CPU).
    @Test func aPausedUntouchedEngineBuildsNoSnapshots() async throws {
        let core = WedgeableCore()
        let host = EngineHost(core: core, speed: 1, publishInterval: 0.02)
        host.start()
        defer { host.stop() }
        #expect(host.send(commandLine: "pause").accepted)
        // The command publishes, and the first turn a publish interval later once more. A fixed
        // 100 ms wait for that second one was too short on a loaded machine (three full suites at
        // once: it came inside the measured window). Wait instead for a turn that began a publish
        // interval after the command (it publishes after it stamps its start), then for the next
        // turn, which means that one has finished (bounded by 10 s).
        func uptime() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }
        func lastTurn() -> Double { uptime() - host.liveness().secondsSinceTurn }
        let commandDone = uptime(), deadline = uptime() + 10
        var publishingTurn: Double?
        while uptime() < deadline {
            let turn = lastTurn()
            if let first = publishingTurn, turn > first + 0.001 { break }
            if publishingTurn == nil, turn >= commandDone + host.publishInterval { publishingTurn = turn }
            try await Task.sleep(for: .milliseconds(5))
        }
        let built = core.snapshotsBuilt
        try await Task.sleep(for: .milliseconds(500))
        #expect(core.snapshotsBuilt == built, "paused: \(core.snapshotsBuilt - built) snapshots in 0.5 s")
    }
}
