import Testing

@testable import ServingEngine

/// The snapshot's per-TE counts (the console's Instances panel, `/admin/state`): a prefill TE's
/// requests in its current batch are running, not queued. It showed `running 0` for every
/// prefill TE under load and counted the batch as queued.
@Suite struct InstanceStatusTests {
    @Test func aBusyPrefillTEShowsItsBatchAsRunning() throws {
        let engine = try FaultTests.engine(rate: 200, limit: 200)
        var seen = false
        while engine.now < 3 && engine.step() {
            for (i, instance) in engine.instances.enumerated() where instance.role == .prefill {
                let prefilling = instance.prefill?.prefillingRequests ?? 0
                guard prefilling > 0 else { continue }
                let status = engine.snapshot().instances[i]
                #expect(status.running == prefilling, "\(status)")
                #expect(status.queued == (instance.prefill?.queuedRequests ?? 0) - prefilling)
                #expect(status.queued >= 0)
                seen = true
            }
            if seen { break }
        }
        #expect(seen, "a prefill TE had a batch under a burst")
    }
}
