import SimKit

/// Detection (system.md §4 "Faults"): the heartbeat round is the fault system's
/// (``FaultSystem/heartbeatRound(at:pod:act:)``); the engine coordinates it — schedules the next
/// round, hands over its view and mechanisms for the call, announces drained nodes after it.
extension ServingEngine {
    func heartbeatRound() {
        scheduleHeartbeatRound(at: now.after(configuration.faults.heartbeatIntervalSeconds))
        var act = EngineRecoveryActuator(engine: self)
        faults.heartbeatRound(at: now, pod: EnginePodView(engine: self), act: &act)
        announceDrainedNodes()
    }

    func logDetected(_ ids: [Int], _ message: String) {
        telemetry.log(faults.detectedEvent(ids, message, at: now))
    }

    func logRecovered(_ id: Int, _ message: String) {
        telemetry.log(faults.recoveredEvent(id, message, at: now))
    }
}
