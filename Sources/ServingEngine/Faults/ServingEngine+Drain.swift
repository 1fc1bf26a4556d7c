import SimKit

/// Drain, as operators expect it (system.md §4 leaves it open): stop placing work on the node,
/// move what has not started, let the rest finish, then announce the node empty so it can be
/// serviced, faulted or healed without touching traffic.
extension ServingEngine {
    /// Drains a node: nothing new is placed on its DP groups; decode requests there finish;
    /// prefill requests queued there that have not started move to other groups or TEs (started
    /// ones finish). Returns the message for the event log.
    func drainNode(_ node: Int) -> String {
        cluster.drain(node)
        refreshDrainedGroups()
        var queued: [Int] = []
        for (id, r) in requests where r.stage == .queued && r.prefillInstance >= 0 && r.prefillGroup >= 0
            && instances[r.prefillInstance].dp[r.prefillGroup].drained {
            queued.append(id)
        }
        let moved = evict(queued, outcome: .move)
        let migrated = configuration.faults.migrateDecodeOnDrain ? migrateDecode(off: node) : 0
        let left = drainProgress().first { $0.node == node }?.requestsLeft ?? 0
        return "node \(node) draining: no new work is placed on its NPUs; \(queued.count - moved.failed) queued prefills "
            + "moved elsewhere; " + (migrated > 0 ? "\(migrated) decode requests migrated; " : "")
            + "\(left) requests left to finish"
    }

    /// Moves the running decode requests of the node's DP groups to other groups of the same TE
    /// (lowest KV usage with room, as placement does), one KV copy per request over UB. The TE
    /// pauses for the longest copy out of one die (copies from different dies run in parallel).
    /// A request with no room elsewhere finishes in place.
    func migrateDecode(off node: Int) -> Int {
        let blockTokens = configuration.kvBlockTokens
        var migrated = 0
        for d in instances.indices where instances[d].role == .decode && !hasOutage(d) {
            let te = instances[d], decode = te.decode!
            let joining = Set(decode.joining)
            let step = instances[d].stepIndex
            var copySeconds: [Int: Double] = [:]
            let sources = Set(instances[d].dp.indices.filter { g in
                instances[d].dp[g].drained && instances[d].dp[g].npus.contains { $0 / topology.npusPerNode == node }
            })
            let movers = requests.values.filter {
                $0.decodeInstance == d && sources.contains($0.decodeGroup) && $0.stage == .decode && !joining.contains($0.id)
            }.map(\.id).sorted()
            for id in movers {
                guard let r = requests[id], let target = pickDecodeGroup(d) else { break }
                let g = r.decodeGroup
                guard decode.migrate(id, from: g, to: target, promptTokens: r.spec.promptTokens, totalTokens: r.totalTokens,
                                     joinStep: r.joinStep, blockTokens: blockTokens, groups: &te.dp)
                else { continue }
                requests[id]?.decodeGroup = target
                let context = Double(r.spec.promptTokens) + Double(step - r.joinStep) * tokensPerStep
                copySeconds[g, default: 0] += cost.kvTransfer(tokens: context, plane: .ub)
                migrated += 1
            }
            guard let pause = copySeconds.values.max().map(Self.delay), pause > 0 else { continue }
            haltForMigration(d, until: now.after(pause))
        }
        return migrated
    }

    /// Requests still holding something on each drained node (queued, prefilling, waiting to hand
    /// over KV, or decoding there).
    func drainProgress() -> [DrainProgress] {
        guard !drainedNodes.isEmpty else { return [] }
        var left: [Int: Int] = [:]
        let perNode = topology.npusPerNode
        func count(_ npus: [Int]) {
            for node in Set(npus.map { $0 / perNode }) where drainedNodes.contains(node) { left[node, default: 0] += 1 }
        }
        for r in requests.values {
            if r.prefillInstance >= 0, r.prefillGroup >= 0, r.stage != .decode || instances[r.prefillInstance].role == .colocated {
                count(instances[r.prefillInstance].dp[r.prefillGroup].npus)
            }
            if r.decodeInstance >= 0, r.decodeGroup >= 0, instances[r.decodeInstance].role != .colocated {
                count(instances[r.decodeInstance].dp[r.decodeGroup].npus)
            }
        }
        return drainedNodes.sorted().map { DrainProgress(node: $0, requestsLeft: left[$0] ?? 0) }
    }

    /// Logs, once, that a drained node is empty: its hardware can be serviced.
    func announceDrainedNodes() {
        guard cluster.hasUnannouncedDrains else { return }
        for progress in drainProgress() where progress.requestsLeft == 0 && cluster.announceEmpty(progress.node) {
            telemetry.log(EngineEvent(time: now, kind: .drain, message: "node \(progress.node) drained: no requests left; "
                + "it can be faulted, healed or serviced without touching traffic"))
        }
    }

    /// The nodes an operator drained (``ClusterManager``), read-only.
    var drainedNodes: Set<Int> { cluster.drainedNodes }

    /// Drained nodes with nothing left on them, and drained nodes still finishing work.
    func drainState() -> (drained: [Int], draining: [Int]) { Self.drainState(drainProgress()) }

    /// The same, from a ``drainProgress()`` already taken.
    static func drainState(_ progress: [DrainProgress]) -> (drained: [Int], draining: [Int]) {
        (progress.filter { $0.requestsLeft == 0 }.map(\.node), progress.filter { $0.requestsLeft > 0 }.map(\.node))
    }
}
