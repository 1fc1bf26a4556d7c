import Foundation
import SimKit
import Testing

@testable import ServingEngine

/// The sparkline series run past their capacity by a slack and are trimmed in one go; what a
/// snapshot reads (``EngineTelemetry/series``) must be the last `capacity` points exactly, as
/// trimming one point per tick kept them. The recent-requests list writes a location out only
/// when read.
@Suite(.timeLimit(.minutes(10))) struct TelemetrySeriesTests {
    @Test func seriesShowTheLastCapacityPointsThroughTicksAndQuietStretches() {
        for capacity in [1, 5, 40] {
            var telemetry = EngineTelemetry(seriesInterval: 0.5, seriesCapacity: capacity, eventCapacity: 10)
            var expected: [Double] = []   // running, as the old per-point trim kept it
            var rng = RandomStream(seed: UInt64(capacity))
            for step in 0..<400 {
                if Double.random(in: 0..<1, using: &rng) < 0.2 {
                    let count = Double(Int.random(in: 0...(3 * capacity), using: &rng))
                    telemetry.appendQuietPoints(count: count, imbalance: 1, kvUsage: 0.5, running: Double(-step), waiting: 0)
                    if count >= 1 { expected += Array(repeating: Double(-step), count: Int(min(count, Double(capacity)))) }
                } else {
                    telemetry.appendPoint(imbalance: 1, kvUsage: 0.5, running: Double(step), waiting: 2, interval: 0.5)
                    expected.append(Double(step))
                }
                if expected.count > capacity { expected.removeFirst(expected.count - capacity) }
                let series = telemetry.series
                #expect(series.running == expected, "capacity \(capacity), step \(step)")
                #expect(series.kvUsage.count == expected.count && series.ttftP99Ms.count == expected.count)
                #expect(series.intervalSeconds == 0.5)
            }
        }
    }

    /// The fixed ring keeps what an array's suffix would: at every count, below, at and past
    /// its capacity, oldest first, and its newest match.
    @Test func lastValuesKeepTheSuffixOfWhatWasAppended() {
        for capacity in [1, 2, 5, 50] {
            var ring = LastValues<Int>(capacity: capacity)
            var all: [Int] = []
            for i in 0..<(3 * capacity + 2) {
                ring.append(i * 7 % 11)
                all.append(i * 7 % 11)
                let expected = Array(all.suffix(capacity))
                #expect(Array(ring) == expected, "capacity \(capacity), after \(i + 1)")
                #expect(ring.count == expected.count)
                for wanted in 0..<11 {
                    #expect(ring.last { $0 == wanted } == expected.last { $0 == wanted })
                }
            }
        }
    }

    @Test func recentRequestsKeepTheLastFiftyWithTheirLocations() {
        var recent = RecentRequests()
        for id in 0..<70 {
            let status = RequestStatus(id: id, arrivedAt: 0, stage: id % 2 == 0 ? .completed : .failed,
                                       promptTokens: 1, outputTokens: 1, location: id % 2 == 0 ? "" : "given")
            if id % 2 == 0 { recent.append(status, te: "decode-0", group: id) } else { recent.append(status) }
        }
        let all = Array(recent)
        #expect(all.map(\.id) == Array(20..<70))
        #expect(all.first?.location == "decode-0/dp20")
        #expect(all.last?.location == "given")
        #expect(recent.last(where: { $0.stage == .completed })?.location == "decode-0/dp68")
        #expect(recent.last(where: { $0.id == 5 }) == nil)
    }
}
