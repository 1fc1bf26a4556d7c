import Testing
@testable import PodModel
@testable import ServingEngine

/// The published points of system.md, met by one set of constants (issue 2's must-holds).
@Suite struct CalibrationTests {
    func within(_ value: Double, _ target: Double, _ tolerance: Double) -> Bool { abs(value / target - 1) <= tolerance }

    @Test func decodePointOfCloudMatrixInfer() throws {
        let r = try Bench.decode(deployment: .cloudMatrixInfer, batchPerDie: 96, context: 4096, mtpAcceptance: 0.7)
        #expect(within(r.tokensPerSecondPerNPU, 1943, 0.05), "\(r.tokensPerSecondPerNPU) tok/s")
        #expect(within(r.tpotMs, 49.4, 0.05), "\(r.tpotMs) ms")
        #expect(within(r.layerMs, 1.26, 0.10), "\(r.layerMs) ms")
        let noMTP = try Bench.decode(deployment: .cloudMatrixInfer, batchPerDie: 96, context: 4096, mtpAcceptance: 0)
        #expect(within(noMTP.layerMs, 0.874, 0.10), "\(noMTP.layerMs) ms")
        #expect(noMTP.tokensPerStep == 1)
    }

    @Test func prefillPointOfCloudMatrixInfer() throws {
        let r = try Bench.prefill(deployment: .cloudMatrixInfer, promptLen: 4096, tokensPerNPU: 16384)
        #expect(within(r.tokensPerSecondPerNPU, 5655, 0.05), "\(r.tokensPerSecondPerNPU) tok/s")
    }

    @Test(arguments: [8, 16, 32, 64, 128, 256])
    func dispatchAndCombineAtBatch128(ep: Int) {
        let cost = CostModel(model: .deepSeekR1, hardware: .ascend910C)
        let m = cost.messagesPerToken(sharedExpertDies: 0)
        for t in [cost.dispatch(tokensPerRank: 128, destinations: m, ep: ep),
                  cost.combine(tokensPerRank: 128, destinations: m, ep: ep)] {
            #expect(t >= 116e-6 * 0.85 && t <= 152e-6 * 1.15, "EP\(ep): \(t * 1e6) µs")
        }
    }

    @Test func validateReportsEveryPointAndAllEnforcedOnesHold() throws {
        let points = try Validation.run()
        #expect(points.count >= 20)
        #expect(points.filter { $0.enforced && !$0.withinTolerance }.map(\.name) == [])
        // A point pushed out of range is reported as such.
        var broken = points[2]
        broken.simulated = broken.published * 1.2
        #expect(!broken.withinTolerance)
    }

    @Test func pointToPointUnderTwentyMicrosecondsBelowOneMegabyte() {
        let cost = CostModel(model: .deepSeekR1, hardware: .ascend910C)
        #expect(cost.pointToPoint(bytes: 1e6, plane: .ub) < 20e-6)
        #expect(cost.pointToPoint(bytes: 1e6, plane: .roce) > cost.pointToPoint(bytes: 1e6, plane: .ub))
    }
}
