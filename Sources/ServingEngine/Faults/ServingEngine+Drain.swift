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
        for (id, r) in requests where r.stage == .queued {
            if let ticket = prefillTicket(of: r), instances[r.prefillInstance].dp[ticket.group].drained { queued.append(id) }
        }
        let moved = evict(queued, outcome: .move)
        let migrated = configuration.faults.migrateDecodeOnDrain ? migrateDecode(off: node) : 0
        let left = drainProgress().first { $0.node == node }?.requestsLeft ?? 0
        return "node \(node) draining: no new work is placed on its NPUs; \(queued.count - moved.failed) queued prefills "
            + "moved elsewhere; " + (migrated > 0 ? "\(migrated) decode requests migrated; " : "")
            + "\(left) requests left to finish"
    }

    /// Moves the running decode requests of the node's DP groups to other groups of their TE
    /// (``DrainMigration`` decides; the TE's decode balancing picks each target group).
    func migrateDecode(off node: Int) -> Int {
        var act = EngineMigrationActuator(engine: self)
        return DrainMigration().migrate(off: node, pod: EnginePodView(engine: self), act: &act)
    }

    /// Moves decode request `id` of TE `d` from group `source` to `target`: its KV and seat move
    /// (false, nothing changes: the target cannot hold it).
    func migrateDecodeRequest(_ id: Int, on d: Int, from source: Int, to target: Int) -> Bool {
        guard let r = requests[id], let decode = instances[d].decode else { return false }
        let te = instances[d]
        // The request's seat moves with it (its scheduler keeps the record).
        guard decode.seat(r.decodeSeat)?.group == source else { return false }
        return decode.migrate(seat: r.decodeSeat, to: target, promptTokens: r.spec.promptTokens, totalTokens: r.totalTokens,
                              blockTokens: configuration.kvBlockTokens, groups: &te.dp)
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
            let p = placement(of: r)
            if r.prefillInstance >= 0, p.prefillGroup >= 0, r.stage != .decode || instances[r.prefillInstance].role == .colocated {
                count(instances[r.prefillInstance].dp[p.prefillGroup].npus)
            }
            if r.decodeInstance >= 0, p.decodeGroup >= 0, instances[r.decodeInstance].role != .colocated {
                count(instances[r.decodeInstance].dp[p.decodeGroup].npus)
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
