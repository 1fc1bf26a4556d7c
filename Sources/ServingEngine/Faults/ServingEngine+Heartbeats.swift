import SimKit

/// Detection (system.md §4 "Faults"): the heartbeat round is the fault system's
/// (``FaultSystem/heartbeatRound(at:pod:act:)``); the engine coordinates it — schedules the next
/// round, hands over its view and mechanisms for the call, announces drained nodes after it.
extension ServingEngine {
    func heartbeatRound() {
        // On the interval's grid, not the last round plus the interval: the sum drifts off the
        // times a scenario names, and a fault at "3.3 s" fell after or before the round at 3.3
        // by that drift (detected 0.2 s or 0.3 s later at a 0.1 s interval).
        scheduleHeartbeatRound(at: now.nextOnGrid(every: configuration.faults.heartbeatIntervalSeconds))
        var act = EngineRecoveryActuator(engine: self)
        faults.heartbeatRound(at: now, pod: EnginePodView(engine: self), act: &act)
        failTransfersWithNowhereToGo()
        announceDrainedNodes()
    }

    func logDetected(_ ids: [Int], _ message: String) {
        telemetry.log(faults.detectedEvent(ids, message, at: now))
    }

    func logRecovered(_ id: Int, _ message: String) {
        telemetry.log(faults.recoveredEvent(id, message, at: now))
    }
}
