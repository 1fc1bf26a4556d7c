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

extension ServingEngine {
    /// The decode batch now, in `xds bench decode`'s terms (``RunReport/DecodeBatch``), over the
    /// TEs that decode: requests per die of their DP groups, the running requests' mean KV length,
    /// and the spread of the groups' KV the barrier waits on, as the within-group coefficient of
    /// variation that gives it (bench's model: every group holds the same number of requests, and a
    /// group's mean length has a standard deviation of CV/√requests, so its KV total has the same
    /// relative spread). Nil when nothing decodes.
    ///
    /// The spread is taken over the groups' KV totals (requests × mean length), not over their
    /// mean lengths: the engine places a request on the group with the least KV, so a group with
    /// long contexts holds few requests. Below the batch limit the mean lengths spread far more
    /// than the totals (cloudmatrix-infer, chat at 2,500 req/s: groups of 1 to 9 requests, a CV of
    /// 2.23 from the means against 0.58 from the totals), and the bench at the means' CV priced a
    /// slowest group of 4 requests at 4.2× the mean length where the engine's holds 3 at 2.9×:
    /// 25.5 ms against the engine's 22.8. With every group at its limit the two are the same.
    public func decodeBatchNow() -> RunReport.DecodeBatch? {
        var running = 0, dies = 0, steppers = 0
        var tokens = 0.0, stepSeconds = 0.0, prefillSeconds = 0.0, loadFactors = 0.0
        // The stepping TEs' layer groups' factors, group by group (each TE's are in load order).
        var layerFactors: [Double] = []
        // The TEs whose steps are averaged: their requests over their dies is the batch that step
        // was priced at (idle TEs' dies count in `dies`, not in the step).
        var steppingRunning = 0, steppingDies = 0
        // Each busy group's KV (requests × mean length); their count is the busy groups'.
        var groupTotals: [Double] = []
        for (i, instance) in instances.enumerated() where instance.hasDecode && cluster.hasNPUs(i) {
            guard let batches = instance.decode?.batches else { continue }
            let instanceDies = instance.groupCount * max(1, instance.groupSpec.tp)
            dies += instanceDies
            let runningBefore = running
            var any = false
            for g in 0..<batches.count where batches.running[g] > 0 {
                let total = batches.meanContext(g, step: instance.stepIndex, tokensPerStep: tokensPerStep)
                    * Double(batches.running[g])
                groupTotals.append(total)
                tokens += total
                running += batches.running[g]
                any = true
            }
            if any && instance.lastStepSeconds > 0 {
                stepSeconds += instance.lastStepSeconds
                prefillSeconds += instance.lastStepPrefillSeconds
                let load = instance.lastStepLoad
                loadFactors += load.factor
                // A group's noise can take it under the mean; its hottest die is then priced at the
                // mean (``HottestExpertDie/tokens(loadFactor:)``), and the bench takes nothing under 1.
                if layerFactors.isEmpty, steppers == 0 {
                    layerFactors = load.layers.map { max(1, $0 * load.scale) }
                } else if layerFactors.count == load.layers.count {
                    for j in layerFactors.indices { layerFactors[j] += max(1, load.layers[j] * load.scale) }
                } else {
                    // TEs with different layer groupings have no group-by-group mean: the mean alone.
                    layerFactors = []
                }
                steppers += 1
                steppingRunning += running - runningBefore
                steppingDies += instanceDies
            }
        }
        guard running > 0, dies > 0 else { return nil }
        let mean = tokens / Double(running)
        let perGroup = Double(running) / Double(groupTotals.count)
        let meanTotal = tokens / Double(groupTotals.count)
        var spread = 0.0
        for t in groupTotals { spread += (t - meanTotal) * (t - meanTotal) }
        let sd = (spread / Double(groupTotals.count)).squareRoot()
        // The bench models the spread only where groups meet at a barrier it prices (dispatch, or
        // A2E in a MoE–attention layout, whose attention dies are the groups).
        let spreads = model.isMoE
        let cv = !spreads ? nil : meanTotal > 0 ? sd / meanTotal * perGroup.squareRoot() : 0
        var batch = RunReport.DecodeBatch(requestsPerDie: Double(running) / Double(dies), meanContext: mean, contextCV: cv,
                                          stepMs: steppers > 0 ? stepSeconds / Double(steppers) * 1e3 : 0)
        if steppingDies > 0, steppingDies != dies {
            batch.benchBatchPerDie = Double(steppingRunning) / Double(steppingDies)
        }
        if prefillSeconds > 0 { batch.prefillMs = prefillSeconds / Double(steppers) * 1e3 }
        // The experts' balance the step was priced at. Under `perfect` it is 1 by construction
        // and the bench's `--eplb perfect` says so already.
        if model.isMoE, configuration.eplb != .perfect, steppers > 0 {
            batch.moeLoadFactor = loadFactors / Double(steppers)
            if !layerFactors.isEmpty { batch.moeLoadFactors = layerFactors.map { $0 / Double(steppers) } }
        }
        return batch
    }
}
