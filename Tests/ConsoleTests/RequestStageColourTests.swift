import ServingEngine
import Testing
import XDSTestSupport

@testable import Console

/// A colour means one state across the console: orange (`warn`) is high load, a warning, a
/// degraded or draining part. The Requests view drew the "queued" and "transfer" stages orange,
/// so every request waiting its normal turn looked like an alarm. Stages in flight take no
/// colour of the load/alarm ramp (good, warn, bad); failed and rejected stay in the alarm colour.
@Suite struct RequestStageColourTests {
    static func render(_ width: Int, _ height: Int) -> CellBuffer {
        var s = SnapshotFixtures.superpod
        let inFlight: [RequestStage] = [.queued, .prefill, .transfer, .decode]
        let finished: [RequestStage] = [.completed, .failed, .rejected, .cancelled]
        s.inFlight = inFlight.enumerated().map { i, stage in
            RequestStatus(id: 90_000 + i, arrivedAt: s.simTime - 1, stage: stage, promptTokens: 100, outputTokens: 10,
                          generatedTokens: 0, location: "decode-0/dp1")
        }
        s.recent = finished.enumerated().map { i, stage in
            RequestStatus(id: 91_000 + i, arrivedAt: s.simTime - 2, stage: stage, promptTokens: 100, outputTokens: 10,
                          generatedTokens: 10, location: "decode-0/dp1", finishedAt: s.simTime - 1)
        }
        s.requests.inFlight = inFlight.count
        var state = ConsoleUpdate.update(ConsoleState(width: width, height: height), .tick(s)).0
        state.view = .requests
        state.requestScroll = 4  // the cursor on the newest recent row (cancelled), so it paints no row checked here
        return ConsoleScreen.render(state, s, theme: .builtinDark, width: width, height: height)
    }

    /// The style the row of request `id` draws its stage word in.
    static func stageStyle(_ b: CellBuffer, id: Int, _ stage: RequestStage) -> Style? {
        guard let y = b.lines.firstIndex(where: { $0.contains("#\(id) ") }),
              let range = b.lines[y].range(of: " \(stage.rawValue) ")
        else { return nil }
        let x = b.lines[y].distance(from: b.lines[y].startIndex, to: range.lowerBound) + 1
        return b[x, y].style
    }

    @Test(arguments: [(80, 24), (120, 40)])
    func stagesInFlightAreNotDrawnInTheAlarmColours(size: (Int, Int)) throws {
        let b = Self.render(size.0, size.1)
        let ramp: Set<ColorRole> = [.good, .warn, .bad]
        for (i, stage) in [RequestStage.queued, .prefill, .transfer, .decode].enumerated() {
            let style = try #require(Self.stageStyle(b, id: 90_000 + i, stage), "\(stage) row at \(size)")
            #expect(!ramp.contains(style.fg), "\(size): \(stage) drawn \(style)")
        }
        #expect(Self.stageStyle(b, id: 91_001, .failed)?.fg == .bad)
        #expect(Self.stageStyle(b, id: 91_002, .rejected)?.fg == .bad)
        #expect(Self.stageStyle(b, id: 91_000, .completed)?.fg == .good)
    }
}
