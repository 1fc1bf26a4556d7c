import ServingEngine
import Testing
import XDSTestSupport

@testable import Console

/// The engine keeps its last 1,000 events; the demo's routine lines (rate steps, rebalances)
/// fill that in about three simulated hours. After a long run at speed the Events view had
/// lost the faults, their recoveries and refused commands (the Faults panel still listed
/// them). The console now keeps the events that say what happened as they leave the ring.
@Suite struct KeptEventsTests {
    static let ringCapacity = 1_000

    /// Simulated hours of the demo's routine lines after a fault, its recovery, a refused
    /// command and a refused request, fed to the console snapshot by snapshot as a FIFO ring.
    @Test func importantEventsOutliveTheRing() throws {
        let important = [
            EngineEvent(time: 100, kind: .fault, severity: .error, message: "fault 1 injected: NPU 163 down", faultId: 1),
            EngineEvent(time: 102.1, kind: .faultDetected, severity: .warning, message: "fault 1 detected", faultId: 1),
            EngineEvent(time: 102.4, kind: .recovery, severity: .warning, message: "fault 1: replaced NPU 163 with spare NPU 288", faultId: 1),
            EngineEvent(time: 150, kind: .commandRejected, severity: .warning, message: "drain node 99: node 99 does not exist"),
            EngineEvent(time: 151, kind: .requestRejected, severity: .warning, message: "request 7 refused: no KV room", requestId: 7),
        ]
        var ring: [EngineEvent] = important
        var state = ConsoleState(width: 120, height: 40)
        state.scenario = DemoLoad.scenario
        var s = SnapshotFixtures.superpod
        var t = 200.0
        for _ in 0..<60 {
            // About three minutes of routine lines per snapshot (the speed max pace).
            for _ in 0..<20 {
                t += 9
                ring.append(EngineEvent(time: t, kind: .rebalance, message: "decode-0: rebalance done in 0.02 s: served imbalance 1.3\(Int(t) % 7) → 1.20"))
                if ring.count > Self.ringCapacity { ring.removeFirst() }
            }
            s.events = ring
            s.simTime = t
            state = ConsoleUpdate.update(state, .tick(s)).0
        }
        #expect(!ring.contains(important[0]), "the fixture must push the fault out of the ring")
        state.view = .events
        let listed = EventsView.shown(state).map(\.event)
        for e in important { #expect(listed.contains(e), "\(e.message) lost from the Events view") }
        // The routine lines that left are not kept: the list is the ring plus the five.
        #expect(state.events.count == ring.count + important.count)
        let text = ConsoleScreen.render(state, s, theme: .builtinDark, width: 120, height: 40).lines.joined(separator: "\n")
        #expect(text.contains("Events · \(ring.count + important.count) of \(ring.count + important.count)"), "\(text)")
        #expect(text.contains("fault 1 injected: NPU 163 down"), "\(text)")
    }

    /// The kept list is bounded, and a flood of refusals goes before changes of state.
    @Test func theKeptEventsAreBoundedAndRefusalsGoFirst() {
        var memory = ConsoleMemory()
        let fault = EngineEvent(time: 1, kind: .fault, severity: .error, message: "fault 1 injected", faultId: 1)
        var ring = [fault]
        memory.absorbEvents(ring) { _ in true }
        for i in 0..<3 {
            let flood = (0..<Self.ringCapacity).map {
                EngineEvent(time: 2 + Double(i), kind: .requestRejected, severity: .warning, message: "request \(i * 10_000 + $0) refused", requestId: $0)
            }
            ring = flood
            memory.absorbEvents(ring) { _ in true }
        }
        #expect(memory.keptEvents.count <= ConsoleMemory.maxKeptEvents)
        #expect(memory.keptEvents.first == fault)
    }
}
