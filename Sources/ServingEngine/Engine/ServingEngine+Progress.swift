extension ServingEngine {
    /// False once the workload is exhausted and every request has left the system: a trace run
    /// ends there by default.
    public var hasWork: Bool { arrivalPending || telemetry.inFlight > 0 }
}

extension ServingEngine {
    /// Mean KV length of the requests a decode instance is running now (nil: no such instance
    /// or nothing running) — what `xds bench decode --context` should be set to for comparison.
    public func decodeMeanContext(instance name: String) -> Double? {
        guard let instance = instances.first(where: { $0.name == name && $0.hasDecode }),
              let batches = instance.decode?.batches else { return nil }
        var tokens = 0.0, running = 0
        for g in 0..<batches.count where batches.running[g] > 0 {
            tokens += batches.meanContext(g, step: instance.stepIndex, tokensPerStep: tokensPerStep) * Double(batches.running[g])
            running += batches.running[g]
        }
        return running == 0 ? nil : tokens / Double(running)
    }
}
