import ServingEngine
import Testing
import XDSTestSupport

@testable import Console

/// At 80×24 with `xds console --eplb off --speed 20` after faults, the Requests view's title said
/// "In flight · 554" under the header's "r/w 579/20". Both count the requests in flight (run +
/// wait is the engine's in-flight count, a page's `inFlight` its table's size: one number), but
/// the header is the snapshot's and the title the page's, read at another instant (the list is
/// a separate paged query). The title now says the page's instant when it is not the snapshot's.
@Suite struct RequestsPageInstantTests {
    static func render(pageTime: Double, inFlight: Int, width: Int, height: Int) -> [String] {
        var snapshot = SnapshotFixtures.superpod
        snapshot.requests.running = 579
        snapshot.requests.waiting = 20
        snapshot.requests.inFlight = 599
        var state = ConsoleState(width: width, height: height)
        state.requestQueries = true
        state.view = .requests
        state = ConsoleUpdate.update(state, .tick(snapshot)).0
        let rows = (0..<inFlight).map { i in
            RequestStatus(id: 9_000 + i, arrivedAt: pageTime - 1, stage: .decode, promptTokens: 100, outputTokens: 50,
                          generatedTokens: 5, location: "decode-0/dp\(i)", ttftMs: 300)
        }
        state = ConsoleUpdate.update(state, .requestPage(.success(RequestPage(
            query: RequestPaging.query(state), simTime: pageTime, inFlight: inFlight, matching: inFlight, rows: rows)))).0
        return ConsoleScreen.render(state, snapshot, theme: .builtinDark, width: width, height: height).lines
    }

    @Test(arguments: [(80, 24), (200, 60)])
    func aPageReadAtAnotherInstantSaysWhen(size: (Int, Int)) throws {
        let time = SnapshotFixtures.superpod.simTime
        let lines = Self.render(pageTime: time - 0.4, inFlight: 554, width: size.0, height: size.1)
        let text = lines.joined(separator: "\n")
        #expect(lines[1].contains("r/w 579/20") || lines[1].contains("run 579  wait 20"), "\(lines[1])")
        let title = try #require(lines.first { $0.contains("┌ In flight") }, "\(text)")
        #expect(title.contains("In flight · 554 at sim \(Format.clockTenths(time - 0.4))"), "\(title)")
        // The header's clock is the snapshot's, to the second.
        #expect(lines[0].contains("sim \(Format.clock(time))"), "\(lines[0])")
    }

    /// Read at the snapshot's own instant (a paused engine), the count stands alone.
    @Test func aPageOfTheSnapshotsInstantNeedsNoTime() throws {
        let lines = Self.render(pageTime: SnapshotFixtures.superpod.simTime, inFlight: 599, width: 80, height: 24)
        let title = try #require(lines.first { $0.contains("┌ In flight") })
        #expect(title.contains("In flight · 599 (rows 1–") && !title.contains(" at sim"), "\(title)")
    }
}
