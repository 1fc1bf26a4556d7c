import PodModel
import SimKit
import Testing
import XDSTestSupport

@testable import ServingEngine

/// The report's per-die and per-chip throughput after a vertical shrink divides by the dies and
/// chips in service: the shrunk decode TE keeps its dead NPU until repaired, and the figures
/// divided by it as if it still served (found by review after `fault die N` on cloudmatrix-infer).
@Suite(.timeLimit(.minutes(10))) struct ShrinkThroughputTests {
    @Test func perDieFiguresLeaveOutTheDeadChipUntilHealed() throws {
        // NPU 36 (the decode TE's dies 40, 41) holds shared-expert dies: losing it shrinks decode.
        let engine = try FaultTests.engine(rate: 30, limit: 400) { $0.eplb = .off }
        engine.run(until: 2.5)
        let whole = engine.deviceCounts()
        #expect(engine.apply(.faultNPU(36)).accepted)
        engine.run(until: 6)
        #expect(engine.report().faultDetails[0].recovery.contains("vertical shrink"))
        let shrunk = engine.deviceCounts()
        #expect(shrunk.decodeDies == whole.decodeDies - 2 && shrunk.decodeChips == whole.decodeChips - 1,
                "\(shrunk) after losing one two-die chip of \(whole)")
        #expect(engine.telemetry.devices == shrunk, "the report divides by what serves from the shrink on")
        // A window wholly after the shrink divides by the dies in service, to the rounding.
        let start = engine.now, mark = engine.deviceTimeSoFar(), tokens = engine.telemetry.generatedTokens
        engine.run(until: 10)
        let t = engine.throughput(generatedTokens: engine.telemetry.generatedTokens - tokens, prefillComputedTokens: 0,
                                  from: start, deviceTimeAtStart: mark)
        #expect(t.outputTokensPerS > 0)
        #expect(abs(t.outputTokensPerSPerNPU * Double(shrunk.decodeDies) / t.outputTokensPerS - 1) < 1e-9)
        #expect(abs(t.outputTokensPerSPerChip * Double(shrunk.decodeChips) / t.outputTokensPerS - 1) < 1e-9)
        #expect(engine.apply(.heal(faultID: 1)).accepted)
        #expect(engine.deviceCounts() == whole && engine.telemetry.devices == whole, "the heal gives it back")
        FaultTests.expectSound(engine)
    }
}
