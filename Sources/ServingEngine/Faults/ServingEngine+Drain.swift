import SimKit

/// Drain, as operators expect it (system.md §4 leaves it open): stop placing work on the node,
/// move what has not started, let the rest finish, then announce the node empty so it can be
/// serviced, faulted or healed without touching traffic.
extension ServingEngine {
    /// Drains a node: nothing new is placed on its DP groups; decode requests there finish;
    /// prefill requests queued there that have not started move to other groups or TEs (started
    /// ones finish). Returns the message for the event log, and whether the drain took the last
    /// of a side out of service (the event is then a warning).
    func drainNode(_ node: Int) -> (message: String, capacityLost: Bool) {
        let before = sidesTakingWork()
        // The node's groups take no new work from here (the cluster manager's verdict; a decode
        // TE's balancing order follows its version).
        cluster.drain(node: node)
        let after = sidesTakingWork()
        let pod = EnginePodView(engine: self)
        var act = EngineMigrationActuator(engine: self)
        // Queued prefills with nowhere to go fail (no other prefill TE is in service): say how many.
        let (moved, stranded) = DrainMigration().moveQueuedPrefills(pod: pod, act: &act)
        // The running decode requests of the node's groups move to other groups of their TE
        // (``DrainMigration`` decides; the TE's decode balancing picks each target group).
        let migrated = configuration.faults.migrateDecodeOnDrain ? DrainMigration().migrate(off: node, pod: pod, act: &act) : 0
        let counted = Self.counted
        // The drain that takes the last of a side out of service is accepted like any other (an
        // operator may mean it), but says what follows: every arrival is rejected from now on. On
        // a one-node GPU cluster that was the only sign, the rejections after it.
        let lost = (before.prefill && !after.prefill, before.decode && !after.decode)
        let warning = !lost.0 && !lost.1 ? ""
            : "; no \(lost.0 && lost.1 ? "TE" : lost.0 ? prefillingTE : "decode TE") is left taking new work: "
                + Self.noCapacityNote
        let message = "node \(node) draining: no new work is placed on its \(hardware.deviceKind)s; \(counted(moved, "queued prefill")) "
            + "moved elsewhere; "
            + (stranded > 0 ? "\(counted(stranded, "queued prefill")) failed (no other \(prefillingTE) is in service); " : "")
            + (migrated > 0 ? "\(counted(migrated, "decode request")) migrated; " : "")
            + "\(counted(requestsLeft(onDrained: node), "request")) left to finish" + warning
        return (message, lost.0 || lost.1)
    }

    /// Whether some TE that prefills, and some that decodes, takes new work (a group placeable):
    /// a colocated TE is both.
    private func sidesTakingWork() -> (prefill: Bool, decode: Bool) {
        var sides = (prefill: false, decode: false)
        for i in instances.indices where !isRetired(i) && cluster.hasPlaceableGroup(te: i) {
            if instances[i].hasPrefill { sides.prefill = true }
            if instances[i].hasDecode { sides.decode = true }
        }
        return sides
    }

    /// How the reply of a drain that leaves no TE of a side taking work ends (the reply's
    /// `capacityLost` says the same): the event is then a warning, and the console shows the
    /// (accepted) reply in the warning colour rather than as good news.
    public static let noCapacityNote = "every new request will be rejected until a node is undrained"

    /// Requests still holding something on drained node `node` (0 once it is empty, or if it is
    /// not drained).
    func requestsLeft(onDrained node: Int) -> Int {
        drainProgress().first { $0.node == node }?.requestsLeft ?? 0
    }

    /// "1 request", "3 requests": a count with its noun agreeing, for the event log and replies.
    static func counted(_ n: Int, _ noun: String) -> String { "\(n) \(noun)\(n == 1 ? "" : "s")" }

    /// Moves decode request `id` of TE `d` from group `source` to `target`: its KV and seat move
    /// (false, nothing changes: the target cannot hold it).
    func migrateDecodeRequest(_ id: Int, on d: Int, from source: Int, to target: Int) -> Bool {
        guard let r = requests[id], let decode = instances[d].decode else { return false }
        // The request's seat moves with it (its scheduler keeps the record).
        guard decode.seat(r.decodeSeat)?.group == source else { return false }
        return decode.migrate(seat: r.decodeSeat, to: target, promptTokens: r.spec.promptTokens, totalTokens: r.totalTokens,
                              te: d, kv: kvStore)
    }

    /// Requests still holding something on each drained node (``ClusterManager/drainProgress(pod:)``).
    func drainProgress() -> [DrainProgress] { cluster.drainProgress(pod: EnginePodView(engine: self)) }

    /// Logs, once, that a drained node is empty: its hardware can be serviced.
    func announceDrainedNodes() {
        guard cluster.hasUnannouncedDrains else { return }
        for node in cluster.announceEmptyNodes(pod: EnginePodView(engine: self)) {
            let serving = expertTEs(onNode: node)
            let after = serving.isEmpty ? "it can be faulted, healed or serviced without touching traffic"
                : "its NPUs still hold expert slots of \(serving.joined(separator: ", ")) (an expert die serves every "
                    + "DP group of its TE), so a fault there still stalls \(serving.count == 1 ? "it" : "them") and goes through recovery"
            telemetry.log(EngineEvent(time: now, kind: .drain, message: "node \(node) drained: no requests left; " + after))
        }
    }

    /// The TEs (names, in TE order) with a group on `node` that draining did not release: its
    /// dies are expert ranks of a TE whose other groups still work (``releasedByDrain(instance:group:)``).
    func expertTEs(onNode node: Int) -> [String] {
        let perNode = topology.npusPerNode
        var names: [String] = []
        for i in instances.indices where cluster.hasNPUs(i) {
            let onNode = instances[i].groups.contains { g in
                cluster.npus(of: i, group: g).contains { $0 / perNode == node } && !releasedByDrain(instance: i, group: g)
            }
            if onNode { names.append(instances[i].name) }
        }
        return names
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
