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

    /// A fault under a flood of refused requests: at 3,000 req/s thousands of refusals pass
    /// through the engine's ring between two snapshots, so its detection and recovery came and
    /// went unseen and the Events view listed only the injection. Here a decode restart turns
    /// arrivals away (30 a second) into a 20-event ring, looked at every 2 s.
    @Test func aFaultsLinesSurviveAFloodOfRefusals() throws {
        var config = EngineConfiguration(deployment: TestDeployments.faultPod, seed: 1, syntheticRate: 30)
        config.eventCapacity = 20
        config.recoveryPolicy = "pd-failover"
        config.faults.componentRestartSeconds = 6
        config.expertSkew = false
        var synthetic = SyntheticWorkload.Configuration(ratePerSecond: 30)
        synthetic.maxRequests = 600
        synthetic.maxOutputTokens = 64
        let engine = try ServingEngine(configuration: config, workload: SyntheticWorkload(seed: 1, configuration: synthetic))
        var logged: [EngineEvent] = []
        engine.observers.event = { logged.append($0) }
        var state = ConsoleState(width: 120, height: 40)
        engine.run(until: 2)
        state = ConsoleUpdate.update(state, .tick(engine.snapshot())).0
        #expect(engine.apply(.faultGlitch).accepted)
        for t in stride(from: 4.0, through: 14, by: 2) {
            engine.run(until: t)
            state = ConsoleUpdate.update(state, .tick(engine.snapshot())).0
        }
        let kinds: Set<EngineEvent.Kind> = [.fault, .faultDetected, .recovery, .heal]
        let landmarks = logged.filter { kinds.contains($0.kind) }
        #expect(landmarks.count >= 3, "\(landmarks.map(\.message))")
        #expect(logged.filter { $0.kind == .requestRejected }.count > 60, "the flood")
        let listed = state.events
        for e in landmarks { #expect(listed.contains(e), "\(e.message) lost from the Events view") }
        // In the order the engine logged them, each once.
        let positions = landmarks.compactMap { e in listed.firstIndex(of: e) }
        #expect(positions == positions.sorted())
        for e in landmarks { #expect(listed.filter { $0 == e }.count == 1, "\(e.message) listed twice") }
    }
}
