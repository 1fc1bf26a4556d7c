extension ServingEngine {
    /// False once the workload is exhausted and every request has left the system: a trace run
    /// ends there by default.
    public var hasWork: Bool { arrivalPending || telemetry.inFlight > 0 }
}
