import PodModel
import SimKit
import Testing
import XDSTestSupport
@testable import ServingEngine

/// A swap already running when a die of its TE dies: the TE's barrier stalls and it serves
/// nothing, yet the swap's phase timer ran on and logged "decode-0: rebalance done in 0.02 s"
/// 0.017 s later, counted in `experts.rebalances` (repro: scenario with `rebalance` at 70 s and
/// `fault die 340` at 70.005 s, `xds run --scenario S --speed max --duration 80s`). The swap is
/// held while the TE is halted and abandoned, with the reason, when recovery changes the TE.
@Suite struct SwapUnderFaultTests {
    @Test func aSwapWhoseDieDiesIsHeldThenAbandonedNotDone() async throws {
        let (events, before, after, lost, swapping) = try await offPool { () throws -> ([EngineEvent], Int, Int, [String], Bool) in
            let e = try FaultTests.engine(rate: 20, limit: 400) {
                $0.expertSkew = true
                $0.eplb = .off  // the static start placement: a rebalance gains, so a swap starts
            }
            e.run(until: 20)
            let before = e.decodeRebalances
            let reply = e.apply(.rebalance)
            let swapping = e.experts.controller(of: 2)?.phase != .idle
            guard swapping else { return ([], 0, 0, [reply.message], false) }
            // Die 40 is NPU 20's, in decode-0 (NPUs 16–39): it dies while the swap runs.
            _ = e.apply(.faultDie(40))
            e.run(until: 40)
            return (e.snapshot().events, before, e.decodeRebalances, FaultTests.problems(e, "after"), swapping)
        }
        #expect(swapping, "decode-0 was swapping when its die died: \(lost)")
        let lines = events.filter { $0.kind == .rebalance }.map(\.message)
        #expect(!lines.contains { $0.hasPrefix("decode-0: rebalance done") }, "\(lines)")
        #expect(lines.contains { $0.hasPrefix("decode-0: rebalance abandoned") }, "\(lines)")
        #expect(after == before, "an abandoned swap is not a rebalance")
        #expect(lost.isEmpty, "\(lost)")
    }

    @Test func aSwapHeldByAStallHealedBeforeDetectionFinishesAfterItsTE() async throws {
        let (lines, resumedAt, doneAt, held) = try await offPool { () throws -> ([String], SimTime?, SimTime?, Bool) in
            let e = try FaultTests.engine(rate: 20, limit: 400) {
                $0.expertSkew = true
                $0.eplb = .off  // the static start placement: a rebalance gains, so a swap starts
            }
            e.run(until: 20)
            _ = e.apply(.rebalance)
            _ = e.apply(.faultDie(40))
            e.run(until: 21)
            let held = e.experts.controller(of: 2)?.phase != .idle
            _ = e.apply(.healAll)
            let resumedAt = e.now
            e.run(until: 25)
            let done = e.snapshot().events.first { $0.message.hasPrefix("decode-0: rebalance done") }
            return (e.snapshot().events.filter { $0.kind == .rebalance }.map(\.message), resumedAt, done?.time, held)
        }
        #expect(held, "held while decode-0 is stalled")
        #expect(doneAt != nil, "\(lines)")
        if let doneAt, let resumedAt { #expect(doneAt > resumedAt, "done only once decode-0 runs again") }
    }
}
