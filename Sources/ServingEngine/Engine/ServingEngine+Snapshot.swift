import PodModel
import SimKit

extension ServingEngine {
    /// An immutable picture of the engine for the faces (architecture.md principle 2).
    /// Cost is linear in NPUs, DP groups and the (bounded) in-flight list, never in tokens.
    public func snapshot() -> Snapshot {
        var s = Snapshot()
        s.simTime = now
        s.speed = speed
        s.paused = paused
        s.policies = policyNames
        s.deploymentName = configuration.deployment.name
        s.modelName = model.name
        s.hardwareName = hardware.name
        s.arrivalRate = arrivalRate ?? 0
        s.outputTokensPerSecond = telemetry.lastOutputRate
        s.prefillTokensPerSecond = telemetry.lastPrefillRate
        s.requests = requestCounts()
        s.latency = latencySummary()
        s.slo.ttftMs = configuration.sloTTFTMs
        s.slo.tpotMs = configuration.sloTPOTMs
        // Each TE's fenced groups and KV mean, worked out once: the KV panel, the NPU list and
        // the Instances table all read them (they were walked up to five times per TE).
        let fenced = instances.indices.map { fencedGroups(of: $0) }
        let kvMeans = instances.indices.map { meanKVUsage(of: $0, fenced: fenced[$0]) }
        s.kv = kvSummary(fenced: fenced, kvMeans: kvMeans)
        // Computed once for the Pod view's expert dies and the Experts view.
        let dieLoads = decodeDieLoads()
        s.npus = npuStatuses(dieLoads: dieLoads, fenced: fenced)
        markFaultedNPUs(&s.npus)
        s.activeFaults = activeFaultStatuses()
        // One walk over the requests in flight for both the progress and the node lists.
        let progress = drainProgress()
        s.drainProgress = progress
        s.instances = instances.indices.map { i in
            let instance = instances[i]
            // A prefill TE's running requests are those in its current batch (it showed 0 running
            // and counted them as queued); a decode TE's, its decode batch.
            let prefilling = instance.prefill?.prefillingRequests ?? 0
            var status = InstanceStatus(name: instance.name, kind: instance.role.rawValue,
                                  npus: instance.external ? instance.groupSpec.npusEach : liveNPUCount(of: i, fenced: fenced[i]),
                                  queued: (instance.prefill?.queuedRequests ?? 0) - prefilling
                                      + (instance.decode.map { $0.transferQueue.count + $0.joining.count } ?? 0),
                                  running: instance.runningRequests + prefilling,
                                  kvUsage: kvMeans[i],
                                  stepMs: instance.lastStepSeconds * 1_000)
            (status.kvBlocksTotal, status.kvBlocksHeld, status.kvBlocksReserved) = kvBlocks(of: i, fenced: fenced[i])
            return status
        }
        annotateScaling(&s)
        let (drained, draining) = Self.drainState(progress)
        s.drainedNodes = drained
        s.drainingNodes = draining
        for i in s.npus.indices { s.npus[i].draining = draining.contains(s.npus[i].node) }
        s.experts = expertSummary(dieLoads: dieLoads)
        s.series = telemetry.series
        s.inFlight = inFlightStatuses(limit: 200)
        s.recent = Array(telemetry.recent)
        s.events = Array(telemetry.ring)
        s.earlierEvents = telemetry.landmarksBeforeRing
        s.histograms.ttft = telemetry.ttft.summary().bins
        s.histograms.tpot = telemetry.tpot.summary().bins
        s.histograms.e2e = telemetry.e2e.summary().bins
        return s
    }

    /// The newest events of the bounded ring, oldest first.
    public func recentEvents() -> [EngineEvent] { Array(telemetry.ring) }

    func latencySummary() -> LatencySummary {
        var l = LatencySummary()
        // Cached per histogram until new samples arrive (no copy of the telemetry either).
        let ttft = telemetry.ttft.summary(), tpot = telemetry.tpot.summary(), e2e = telemetry.e2e.summary()
        (l.ttftP50Ms, l.ttftP90Ms, l.ttftP99Ms, l.ttftMeanMs) = (ttft.p50Ms, ttft.p90Ms, ttft.p99Ms, ttft.meanMs)
        (l.tpotP50Ms, l.tpotP90Ms, l.tpotP99Ms, l.tpotMeanMs) = (tpot.p50Ms, tpot.p90Ms, tpot.p99Ms, tpot.meanMs)
        (l.e2eP50Ms, l.e2eP90Ms, l.e2eP99Ms, l.e2eMeanMs) = (e2e.p50Ms, e2e.p90Ms, e2e.p99Ms, e2e.meanMs)
        l.sloAttainment = telemetry.completed == 0 ? 0 : Double(telemetry.sloMet) / Double(telemetry.completed)
        return l
    }

    /// `fenced` and `kvMeans`: each TE's ``fencedGroups(of:)`` and ``meanKVUsage(of:fenced:)``.
    func kvSummary(fenced: [Set<Int>], kvMeans: [Double]) -> KVSummary {
        var kv = KVSummary()
        kv.decodeUsage = decodeKVUsage()
        kv.peakUsage = max(telemetry.peakDecodeUsage, kv.decodeUsage)
        kv.prefixHitRate = prefixStats().hitRate
        if kvStore.hasPool {
            kv.poolCapacityBytes = kvStore.poolCapacityBytes
            kv.poolUsedBytes = kvStore.poolUsedBytes
        }
        kv.transferQueue = instances.reduce(0) { $0 + ($1.decode?.transferQueue.count ?? 0) }
        kv.transfersInProgress = channels.reduce(0) { $0 + $1.queue.count }
        for i in instances.indices {
            if instances[i].hasDecode {
                // A group a shrink fenced off holds nothing and takes nothing: drawn, it was an
                // empty bar among the TE's (320 of them under decode-0 at DP 318).
                kvStore.withGroups(of: i) { groups in
                    for g in groups.indices where !fenced[i].contains(g) {
                        kv.decodeGroups.append(min(1, groups[g].usageIncludingReserved))
                    }
                }
            }
            if instances[i].hasPrefill { kv.prefillInstances.append(kvMeans[i]) }
        }
        return kv
    }

    /// TE `i`'s mean KV usage over the groups it runs (summed in group order). Groups fenced
    /// off by a known-dead die hold nothing and take nothing: averaged in, they pulled a shrunk
    /// TE's figure down (2 of 320 groups on cloudmatrix-infer after `fault die N`), unlike the
    /// KV panel's bars, which list only the groups it runs.
    func meanKVUsage(of i: Int, fenced: Set<Int>) -> Double {
        let sum = kvStore.withGroups(of: i) { groups in
            groups.indices.reduce(0.0) { fenced.contains($1) ? $0 : $0 + groups[$1].usage }
        }
        return sum / Double(max(1, instances[i].groupCount - fenced.count))
    }

    /// TE `i`'s KV blocks over the groups it runs (those a shrink fenced off hold nothing and
    /// are left out, as in ``meanKVUsage(of:fenced:)``): capacity, held by its requests, and
    /// reserved for the rest of their replies. Whole counts, so a TE's figure and its groups'
    /// figures in the strip add up exactly.
    func kvBlocks(of i: Int, fenced: Set<Int>) -> (total: Int, held: Int, reserved: Int) {
        kvStore.withGroups(of: i) { groups in
            groups.indices.reduce((total: 0, held: 0, reserved: 0)) { sum, g in
                fenced.contains(g) ? sum : (sum.total + groups[g].totalBlocks, sum.held + groups[g].usedBlocks,
                                            sum.reserved + groups[g].reservedBlocks)
            }
        }
    }

    /// TE `i`'s DP groups fenced off by a die the control plane knows is dead: a vertical shrink
    /// runs the TE without them until the die is healed (``refreshFaultState()`` keeps them out
    /// of service while the die is known dead, and brings them back when it is not). Empty with
    /// no known-dead die (the usual case: nothing is walked).
    func fencedGroups(of i: Int) -> Set<Int> {
        guard !faults.knownDead.isEmpty else { return [] }
        return Set(instances[i].groups.filter { groupHoldsKnownDeadDie(i, group: $0) })
    }

    /// The NPUs TE `i` runs on: those it holds less a chip with a known-dead die and a chip whose
    /// every DP group is fenced (an expert-only chip, in no group, runs while it is not dead).
    /// After `fault npu 130` shrank decode-0 to DP 318 the Instances panel still said 160 NPUs
    /// (the engine keeps the dead chip in the TE's list so that a heal gives it back).
    /// `fenced`: its ``fencedGroups(of:)``.
    func liveNPUCount(of i: Int, fenced: Set<Int>) -> Int {
        let npus = cluster.npus(of: i)
        guard !faults.knownDead.isEmpty else { return npus.count }
        let dead = Set(knownDeadNPUs(of: i))
        guard !dead.isEmpty || !fenced.isEmpty else { return npus.count }
        var running = Set<Int>(), idle = Set<Int>()
        for g in instances[i].groups {
            if fenced.contains(g) { idle.formUnion(cluster.npus(of: i, group: g)) } else { running.formUnion(cluster.npus(of: i, group: g)) }
        }
        return npus.filter { !dead.contains($0) && (running.contains($0) || !idle.contains($0)) }.count
    }

    /// Every NPU's role, TE, groups, load and KV. Its `draining` flag is left to ``snapshot()``,
    /// which sets it from the nodes' drain progress (a per-group flag computed here was always
    /// overwritten there).
    /// `fenced`: each TE's ``fencedGroups(of:)``.
    func npuStatuses(dieLoads: [Double]? = nil, fenced: [Set<Int>]) -> [NPUStatus] {
        let (roles, owner) = npuLayout()
        let perNPU = topology.npusPerNode
        var statuses = (0..<topology.npuCount).map { npu in
            NPUStatus(id: npu, node: npu / perNPU, role: roles[npu],
                      hbmCapacityBytes: hardware.hbmBytesPerDie * Double(hardware.diesPerDevice),
                      drained: drainedNodes.contains(npu / perNPU))
        }
        var kvShare = Array(repeating: (used: 0.0, groups: 0), count: topology.npuCount)
        for (index, instance) in instances.enumerated() {
            for npu in cluster.npus(of: index) where npu < statuses.count && owner[npu] == index && roles[npu] != .expert {
                statuses[npu].instance = instance.name
                statuses[npu].utilization = instance.utilization
            }
            // A group a shrink fenced off runs nowhere: listed on its chips, the NPU panel said
            // "DP groups 4, 5 of 320" of dead NPU 130 after decode-0 went to DP 318.
            for g in instance.groups where !fenced[index].contains(g) {
                let seats = instance.decode?.slots[g] ?? 0
                let inFlight = seats + (instance.prefill?.queues[g].count ?? 0)
                let usage = kvStore.usage(GroupRef(te: index, group: g))
                for npu in cluster.npus(of: index, group: g) where npu < statuses.count {
                    statuses[npu].dpGroups.append(g)
                    statuses[npu].requestsInFlight += inFlight
                    kvShare[npu].used += usage
                    kvShare[npu].groups += 1
                }
            }
        }
        for npu in statuses.indices where kvShare[npu].groups > 0 {
            statuses[npu].kvUsage = kvShare[npu].used / Double(kvShare[npu].groups)
        }
        let blockBytes = model.kvBytesPerToken * Double(configuration.kvBlockTokens)
        for (index, instance) in instances.enumerated() where !instance.external {
            let hw = instance.cost.hardware
            for g in instance.groups {
                let npus = cluster.npus(of: index, group: g)
                let group = GroupRef(te: index, group: g)
                guard !npus.isEmpty else { continue }
                // Weights fill what KV does not (kvBlocksPerGroup's split of the HBM share).
                let groupKV = Double(kvStore.totalBlocks(group)) * blockBytes
                let weights = hw.hbmBytesPerDie * configuration.kvMemoryFraction * Double(instance.groupSpec.tp) - groupKV
                let used = weights + Double(kvStore.usedBlocks(group)) * blockBytes
                for npu in npus where npu < statuses.count {
                    statuses[npu].hbmUsedBytes += used / Double(npus.count)
                }
            }
        }
        markExpertDies(&statuses, dieLoads: dieLoads)
        if configuration.deployment.moeAttention != nil, let decode = instances.firstIndex(where: { $0.role == .decode }) {
            // An expert die holds its experts' weights and no KV or DP group: its slots (layer
            // 0's count, the same on every layer) × MoE layers × one expert, a shared-expert
            // die its shared expert, instead of an HBM meter at 0.0 GB beside a busy die.
            let expertBytes = model.expertParameters * model.weightType.bytes * Double(model.moeLayers)
            let shared = (model.moe?.sharedExperts ?? 0) * hardware.diesPerDevice
            for npu in statuses.indices where roles[npu] == .expert {
                // Expert dies run busy-polling kernels in lockstep with the decode steps.
                statuses[npu].instance = instances[decode].name
                statuses[npu].utilization = instances[decode].utilization
                let slots = statuses[npu].experts.isEmpty ? shared : statuses[npu].experts.count
                statuses[npu].hbmUsedBytes = Double(slots) * expertBytes
            }
        }
        return statuses
    }

    /// Decode expert dies: the experts they host (layer 0) and their MoE load relative to the mean
    /// (the Pod view colours expert dies by it). Routed-expert dies come first in an instance.
    func markExpertDies(_ statuses: inout [NPUStatus], dieLoads: [Double]? = nil) {
        guard let index = instances.firstIndex(where: { $0.hasDecode }), let routing = experts.routing(of: index),
              let first = cluster.npus(of: index).first else { return }
        let diesPerNPU = instances[index].cost.hardware.diesPerDevice
        let loads = configuration.eplb == .perfect ? Array(repeating: 1.0, count: routing.dies)
            : dieLoads ?? routing.dieLoads()
        let hosted = hostedExperts(routing)
        // Where each expert die is now: a dead NPU replaced from the spares hands its expert
        // dies to the spare (``ClusterManager/moveExpertDies(fromNPU:toNPU:)``), so the
        // position in the TE's NPU range no longer says which chip holds them (the state showed
        // a replaced NPU's experts on the dead chip and none on its replacement). Unmapped
        // (a colocated TE): the TE's NPUs in order.
        var npuOfDie = (0..<routing.dies).map { first + $0 / diesPerNPU }
        for (die, slot) in cluster.expertSlots where slot.instance == index && slot.index < routing.dies {
            npuOfDie[slot.index] = die / cluster.diesPerNPU
        }
        for d in 0..<routing.dies {
            let npu = npuOfDie[d]
            guard npu >= 0, npu < statuses.count else { continue }
            // The first die of an NPU shares its cached list rather than copying it.
            if statuses[npu].experts.isEmpty { statuses[npu].experts = hosted[d] } else { statuses[npu].experts += hosted[d] }
            statuses[npu].expertLoad = max(statuses[npu].expertLoad, loads[d])
        }
    }

    /// Per die of `routing`, the layer-0 experts it hosts (ascending), kept while the placement stays.
    private func hostedExperts(_ routing: ExpertRouting) -> [[Int]] {
        let placement = routing.servingPlacement
        if let cache = telemetry.hostedExpertsCache, cache.placement == placement, cache.hosted.count == routing.dies {
            return cache.hosted
        }
        var hosted = Array(repeating: [Int](), count: routing.dies)
        let layer0 = placement.layerCount > 0 ? placement.layer(0) : []
        for (expert, hosts) in layer0.enumerated() {
            for d in hosts where d < hosted.count { hosted[d].append(expert) }
        }
        telemetry.hostedExpertsCache = (placement, hosted)
        return hosted
    }

    /// The first decode instance's relative per-die MoE load (``ExpertRouting/dieLoads()``), or
    /// nil without experts.
    func decodeDieLoads() -> [Double]? {
        guard let index = instances.firstIndex(where: { $0.hasDecode }), let routing = experts.routing(of: index) else { return nil }
        if let cache = telemetry.dieLoadsCache, cache.popularity == routing.popularity,
           cache.placement == routing.servingPlacement {
            return cache.loads
        }
        let loads = routing.dieLoads()
        telemetry.dieLoadsCache = (routing.popularity, routing.servingPlacement, loads)
        return loads
    }

    /// Output tokens request `r` (placed at `p`) has decoded so far: its decode steps times the
    /// tokens a step yields, capped at its output; 0 before decode.
    func decodedSoFar(_ r: RequestState, _ p: RequestPlacement) -> Int {
        decodedSoFar(r, joinStep: p.joinStep, finishStep: p.finishStep)
    }

    private func decodedSoFar(_ r: RequestState, joinStep: Int, finishStep: Int) -> Int {
        guard r.stage == .decode, r.decodeInstance >= 0, finishStep > 0 else { return 0 }
        return min(r.outputTokens,
                   Int(saturating: Double(max(0, instances[r.decodeInstance].stepIndex - joinStep)) * tokensPerStep))
    }

    /// Request `r` leaves decode without completing (it fails, or goes back to prefill): the
    /// tokens it decoded so far join ``EngineTelemetry/generatedTokens`` (they were decoded, as
    /// `vllm:generation_tokens_total` counts them; leaving them out made the report's throughput
    /// neither the decode rate nor goodput).
    func creditDecoded(_ r: RequestState, _ p: RequestPlacement) {
        guard r.times.decodeJoinedAt != nil else { return }
        telemetry.generatedTokens += producedBeforeLeaving(r, steps: stepsBeforeLeaving(r, p))
    }

    /// Output tokens generated so far: those of completed requests, those decoded by requests
    /// that then failed or were prefilled again, and those decoded by requests still in flight
    /// (the report's `tokens.generated` and its throughput). Counting completions alone made a
    /// run that ends with most of its requests mid-decode report a fraction of the rate it
    /// decoded at (a saturated minute: 784 decoding, 203 completed, "8k tok/s").
    func generatedSoFar() -> Int {
        var decoding = 0
        // The decode seat alone (not the whole placement: the prefill ticket lookup was most of
        // this walk's cost over a saturated pod's 18k requests in flight), each request read in
        // its slot (a copy of each retained and released its arrays: half of the walk).
        requests.forEachInPlace { r in
            guard r.stage == .decode, let seat = decodeSeat(of: r) else { return }
            decoding += decodedSoFar(r, joinStep: seat.joinStep, finishStep: seat.finishStep)
        }
        return telemetry.generatedTokens + decoding
    }

    /// The oldest in-flight requests (lowest ids first), at most `limit`.
    func inFlightStatuses(limit: Int) -> [RequestStatus] {
        let ids = requests.lowestKeys(limit)
        return ids.compactMap { id in
            guard let r = requests[id] else { return nil }
            let p = placement(of: r)
            var location = ""
            if r.stage == .decode || r.stage == .transfer, r.decodeInstance >= 0 {
                location = instances[r.decodeInstance].name + (p.decodeGroup >= 0 ? "/dp\(p.decodeGroup)" : "")
            } else if r.prefillInstance >= 0 {
                location = "\(instances[r.prefillInstance].name)/dp\(p.prefillGroup)"
            }
            let generated = decodedSoFar(r, p)
            return RequestStatus(id: id, arrivedAt: r.spec.arrival, stage: r.stage, promptTokens: r.spec.promptTokens,
                                 outputTokens: r.outputTokens, generatedTokens: generated, location: location,
                                 ttftMs: p.firstTokenAt.map { ($0 - r.spec.arrival) * 1_000 })
        }
    }
}
