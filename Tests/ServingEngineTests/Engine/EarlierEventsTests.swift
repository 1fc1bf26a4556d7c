import Foundation
import Testing
import XDSTestSupport

@testable import ServingEngine

/// A flood of refused requests pushes a fault's lines out of the event ring between two
/// snapshots; the snapshot carries those that left it (``Snapshot/earlierEvents``).
@Suite struct EarlierEventsTests {
    @Test func aFaultsLinesThatLeaveTheRingRideInTheSnapshot() throws {
        let engine = try FaultTests.engine(rate: 30, limit: 600, maxOutput: 64) {
            $0.eventCapacity = 20
            $0.recoveryPolicy = "pd-failover"
            $0.faults.componentRestartSeconds = 6
        }
        var logged: [EngineEvent] = []
        engine.observers.event = { logged.append($0) }
        engine.run(until: 2)
        #expect(engine.snapshot().earlierEvents == nil, "nothing has left the ring yet")
        #expect(engine.apply(.faultGlitch).accepted)
        engine.run(until: 10)
        let s = engine.snapshot()
        let earlier = s.earlierEvents ?? []
        let landmarks = logged.filter { EngineTelemetry.landmarkKinds.contains($0.kind) && !s.events.contains($0) }
        #expect(landmarks.contains { $0.kind == .faultDetected } && landmarks.contains { $0.kind == .recovery },
                "\(logged.map(\.message))")
        // Exactly those that left, in order; no refused request among them.
        #expect(earlier == landmarks)
        #expect(!earlier.contains { $0.kind == .requestRejected })
        // The remote console reads the snapshot as JSON: it comes through, and an older
        // server's snapshot (no such key) reads as nil.
        let data = try JSONEncoder().encode(s)
        #expect(try JSONDecoder().decode(Snapshot.self, from: data).earlierEvents == earlier)
        var old = s
        old.earlierEvents = nil
        let oldJSON = try JSONEncoder().encode(old)
        #expect(!String(decoding: oldJSON, as: UTF8.self).contains("earlierEvents"))
        #expect(try JSONDecoder().decode(Snapshot.self, from: oldJSON).earlierEvents == nil)
    }

    /// The landmark ring is bounded: its oldest go first.
    @Test func theLandmarkRingIsBounded() {
        var t = EngineTelemetry(seriesInterval: 1, seriesCapacity: 4, eventCapacity: 4)
        for i in 0..<(EngineTelemetry.landmarkCapacity + 10) {
            t.log(EngineEvent(time: Double(i), kind: .command, message: "command \(i)"))
        }
        let earlier = t.landmarksBeforeRing ?? []
        #expect(earlier.count == EngineTelemetry.landmarkCapacity - 4)
        #expect(earlier.first?.message == "command 10")
        #expect(earlier.last?.message == "command \(EngineTelemetry.landmarkCapacity + 5)")
        #expect(t.ring.first?.message == "command \(EngineTelemetry.landmarkCapacity + 6)")
    }
}
