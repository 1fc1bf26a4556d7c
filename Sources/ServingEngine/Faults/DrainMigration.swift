import PodModel
import SimKit

/// A decode request as a drain's migration sees it.
struct DecodingRequest: Equatable {
    var id: Int
    /// The DP group it decodes on.
    var group: Int
    var promptTokens: Int
    /// The TE's step index when it joined the batch (its output so far is `step - joinStep` steps).
    var joinStep: Int
    /// Joined the TE but not yet its batch: it stays (it holds no running KV to copy yet).
    var joining: Bool
}

/// Where a request in flight sits, as a drain sees it: its stage and the DP groups (TE and
/// group index, -1: none) it was placed on for prefill and for decode.
struct PlacedRequest: Equatable {
    var id: Int
    var stage: RequestStage
    var prefillTE: Int
    var prefillGroup: Int
    var decodeTE: Int
    var decodeGroup: Int
}

/// Where the requests in flight sit and on what hardware (what a drain counts and moves).
/// Read-only; per call.
protocol PlacementView {
    func role(of te: Int) -> InstanceRole
    func npus(of te: Int, group g: Int) -> [Int]
    /// Calls `body` with every request in flight, in no particular order.
    func forEachPlacedRequest(_ body: (PlacedRequest) -> Void)
}

/// What a drain reads of the pod: where requests sit, the decode TEs, where their DP groups
/// sit, what decodes there, and what a KV copy over UB costs. Read-only; per call.
protocol DrainView: PlacementView {
    var npusPerNode: Int { get }
    /// Tokens each decode step adds to a request (MTP: more than one).
    var tokensPerStep: Double { get }
    /// TEs are `0..<teCount`.
    var teCount: Int { get }
    /// The TE is out for a recovery or another migration (it is left alone).
    func hasOutage(_ te: Int) -> Bool
    func groupCount(of te: Int) -> Int
    /// Group `g` of `te` takes no new work (not placeable: its node drained, out of service, or
    /// its TE held off by scaling).
    func isDrained(_ te: Int, group g: Int) -> Bool
    /// The TE's decode step counter.
    func stepIndex(of te: Int) -> Int
    /// The requests in decode on `te`, any order.
    func decodingRequests(on te: Int) -> [DecodingRequest]
    /// Seconds to copy `tokens` of KV over UB.
    func kvCopySeconds(tokens: Double) -> Double
}

/// What a drain asks of the pod.
protocol MigrationActuator {
    /// Takes the queued prefills `ids` off their groups and queues each again elsewhere (the JE
    /// picks); returns how many of them failed instead (no prefill TE in service).
    mutating func moveQueued(_ ids: [Int]) -> Int
    /// The DP group of decode TE `te` that takes the next request (the TE's decode balancing
    /// policy; nil: no group has room).
    mutating func pickTarget(_ te: Int) -> Int?
    /// Moves request `id` of TE `te` from group `source` to `target` (KV and seat); false when
    /// the target cannot hold it after all.
    mutating func move(_ id: Int, on te: Int, from source: Int, to target: Int) -> Bool
    /// TE `te` pauses for `seconds` while the KV copies run.
    mutating func pause(_ te: Int, for seconds: SimTime)
}

/// A drain's moves (system.md §4 leaves drains open). Queued prefills that have not started on
/// a drained DP group move to other groups or TEs (started ones finish in place). With
/// `--drain-migrates-decode`, the running decode requests of the node's DP groups move to other groups of the same TE,
/// one KV copy per request over UB, and the TE pauses for the longest copy out of one die
/// (copies from different dies run in parallel). A request with no room elsewhere finishes in
/// place.
///
/// This decides which requests move, which TEs, which groups, in which order, when to stop and
/// how long the TE pauses; the engine coordinates (it calls this once per drain and carries out
/// the moves and the pause through a ``MigrationActuator``). It holds no state: a drain is one
/// call. (How much is left on a drained node is the node's state: ``ClusterManager``.)
///
/// ```swift
/// var act = engineActuator                        // any MigrationActuator
/// let requeued = DrainMigration().moveQueuedPrefills(pod: view, act: &act).moved
/// let moved = DrainMigration().migrate(off: 3, pod: view, act: &act)
/// ```
struct DrainMigration {
    /// Moves the queued prefills off every drained DP group. Returns how many moved and how
    /// many failed (nowhere to prefill them).
    func moveQueuedPrefills(pod: some DrainView, act: inout some MigrationActuator) -> (moved: Int, failed: Int) {
        let queued = queuedOnDrainedGroups(pod: pod)
        guard !queued.isEmpty else { return (0, 0) }
        let failed = act.moveQueued(queued)
        return (queued.count - failed, failed)
    }

    /// The prefills queued (not started) on drained DP groups, in id order: any drained group,
    /// not only the node being drained (a group out of service takes no queue either).
    func queuedOnDrainedGroups(pod: some DrainView) -> [Int] {
        var ids: [Int] = []
        pod.forEachPlacedRequest { r in
            if r.stage == .queued, r.prefillTE >= 0, r.prefillGroup >= 0, pod.isDrained(r.prefillTE, group: r.prefillGroup) {
                ids.append(r.id)
            }
        }
        return ids.sorted()
    }

    /// Migrates the decode requests off `node` on every decode TE in service, TE by TE in index
    /// order. Returns how many moved.
    func migrate(off node: Int, pod: some DrainView, act: inout some MigrationActuator) -> Int {
        var migrated = 0
        for te in 0..<pod.teCount where pod.role(of: te) == .decode && !pod.hasOutage(te) {
            let step = pod.stepIndex(of: te)
            var copySeconds: [Int: Double] = [:]
            for request in movers(on: te, off: node, pod: pod) {
                guard let target = act.pickTarget(te) else { break }
                guard act.move(request.id, on: te, from: request.group, to: target) else { continue }
                let context = Double(request.promptTokens) + Double(step - request.joinStep) * pod.tokensPerStep
                copySeconds[request.group, default: 0] += pod.kvCopySeconds(tokens: context)
                migrated += 1
            }
            guard let pause = Self.pause(copySeconds) else { continue }
            act.pause(te, for: pause)
        }
        return migrated
    }

    /// The requests that leave `node` on decode TE `te`, in id order: running (not joining) on
    /// a drained group with an NPU on the node.
    func movers(on te: Int, off node: Int, pod: some DrainView) -> [DecodingRequest] {
        let sources = Set((0..<pod.groupCount(of: te)).filter { g in
            pod.isDrained(te, group: g) && pod.npus(of: te, group: g).contains { $0 / pod.npusPerNode == node }
        })
        guard !sources.isEmpty else { return [] }
        return pod.decodingRequests(on: te).filter { sources.contains($0.group) && !$0.joining }.sorted { $0.id < $1.id }
    }

    /// The TE's pause: the longest per-die copy time (`copySeconds` by source group), as an
    /// engine delay; nil when nothing is copied.
    static func pause(_ copySeconds: [Int: Double]) -> SimTime? {
        guard let longest = copySeconds.values.max() else { return nil }
        let pause = ServingEngine.delay(longest)
        return pause > 0 ? pause : nil
    }
}
