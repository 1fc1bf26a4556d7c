import PodModel
import SimKit

/// The JE (system.md §1.5): takes requests in and places them. It owns the admission bound,
/// the smallest DP-group KV on each side (a request larger than that can never run), the
/// routing policy and, until decode scheduling is its own component, the decode DP load
/// balancing policy with their state. It reads the TEs, and which of them take work (the
/// cluster manager's eligibility), through per-call parameters and changes nothing outside
/// itself: the engine carries out its decisions.
///
/// ```swift
/// switch je.admit(request, instances: instances, cluster: cluster) {
/// case .placed(let te): …            // the prefill TE
/// case .neverFits(let reason, let kind), .refused(let reason, let kind): …
/// }
/// ```
final class JobExecutor {
    /// Most requests waiting (not yet started) per prefill TE before arrivals are refused.
    let maxWaitingPerPrefillTE: Int
    let longPromptTokens: Int
    let blockTokens: Int
    /// Smallest DP-group KV (blocks) on each side.
    private(set) var prefillGroupBlocks = Int.max
    private(set) var decodeGroupBlocks = Int.max
    private(set) var routing: any RequestRoutingPolicy
    private(set) var decodeBalancing: any DecodeBalancingPolicy {
        didSet { decodeBalancingIsKVAware = decodeBalancing is KVAwareBalancing }
    }
    /// The decode balancing policy is `kv-aware`, whose pick a TE's load index already holds
    /// (``pickDecodeGroup(_:instances:kv:placeable:)`` reads it there). Kept beside the policy: a
    /// dynamic cast per pick would cost what the shortcut saves.
    private var decodeBalancingIsKVAware = false
    /// The candidate list's buffer, reused from one routing decision to the next (emptied before
    /// each; a copy of the JE starts with none, so nothing carries between forks).
    private var candidateBuffer: [Int] = []
    /// For each first prefix key (a request's `chainedKeys[0]`): the prefill TEs (bit = TE index,
    /// below 64) a request starting with it was ever placed on. Only those TEs' DP groups can hold
    /// a block under that key: a group's prefix cache takes its blocks from the requests prefilled
    /// on it, all placed through ``notePlacement(chainedKeys:te:)`` (the same 64-bit key at another
    /// depth would be a hash collision, which the cache itself already assumes away). Routing then
    /// probes no other TE's caches for the request: most prompts continue a session whose prefix
    /// sits on one TE, and a miss in a group's index cost a probe sequence each (6% of a saturated
    /// superpod). Bits are never cleared (an evicted prefix costs only a probe). Past
    /// ``maxPrefixStarts`` keys the map is dropped and routing probes every TE again.
    private var prefixStarts = IDTable<UInt64>()
    private var prefixStartsOverflowed = false
    static let maxPrefixStarts = 1 << 20

    enum Admission {
        case placed(prefillTE: Int)
        /// The request can never run here (empty prompt, or KV larger than any DP group).
        case neverFits(reason: String, kind: String)
        /// No prefill TE can take it now (admission bound, or all out of service).
        case refused(reason: String)
    }

    init(configuration: EngineConfiguration, routing: any RequestRoutingPolicy,
         decodeBalancing: any DecodeBalancingPolicy) {
        maxWaitingPerPrefillTE = configuration.maxWaitingPerPrefillInstance
        longPromptTokens = configuration.longPromptTokens
        blockTokens = configuration.kvBlockTokens
        self.routing = routing
        self.decodeBalancing = decodeBalancing
        decodeBalancingIsKVAware = decodeBalancing is KVAwareBalancing
    }

    private init(copying other: JobExecutor) {
        maxWaitingPerPrefillTE = other.maxWaitingPerPrefillTE
        longPromptTokens = other.longPromptTokens
        blockTokens = other.blockTokens
        prefillGroupBlocks = other.prefillGroupBlocks
        decodeGroupBlocks = other.decodeGroupBlocks
        routing = other.routing
        decodeBalancing = other.decodeBalancing
        decodeBalancingIsKVAware = other.decodeBalancingIsKVAware
        prefixStarts = other.prefixStarts
        prefixStartsOverflowed = other.prefixStartsOverflowed
    }

    /// A deep copy (the policies are values, so their state is copied too), for an engine fork.
    func copy() -> JobExecutor { JobExecutor(copying: self) }

    /// Takes the TEs' DP-group sizes into the never-fits bounds (at build, and for TEs added later).
    func noteGroupBlocks(of tes: Range<Int>, instances: [InstanceState], kv: KVCacheStore) {
        for index in tes {
            let smallest = kv.smallestGroupBlocks(of: index)
            if instances[index].hasPrefill { prefillGroupBlocks = min(prefillGroupBlocks, smallest) }
            if instances[index].hasDecode { decodeGroupBlocks = min(decodeGroupBlocks, smallest) }
        }
    }

    func setRouting(_ policy: any RequestRoutingPolicy) { routing = policy }
    func setDecodeBalancing(_ policy: any DecodeBalancingPolicy) { decodeBalancing = policy }

    // MARK: Admission and routing

    /// A request with these prefix keys is placed on prefill TE `te` (before any of its blocks
    /// are allocated there). Returns whether the TE's groups may already hold its prefix (false:
    /// no request starting with these keys was placed there before, so every group has no hit).
    @discardableResult
    func notePlacement(chainedKeys: [UInt64], te: Int) -> Bool {
        guard let first = chainedKeys.first else { return false }
        guard !prefixStartsOverflowed, te >= 0, te < 64 else { return true }
        let key = Int(truncatingIfNeeded: first)
        let bit: UInt64 = 1 << UInt64(te)
        if let holders = prefixStarts[key] {
            if holders & bit != 0 { return true }
            prefixStarts[key] = holders | bit
        } else if prefixStarts.count < Self.maxPrefixStarts {
            prefixStarts[key] = bit
        } else {
            prefixStartsOverflowed = true
            prefixStarts = IDTable()
            return true
        }
        return false
    }

    /// The prefill TEs whose caches may hold a prefix starting with these keys (bit per TE index
    /// below 64; TEs from 64 on are always probed): ``PrefillPool/prefixHolders``.
    func prefixHolders(_ chainedKeys: [UInt64]) -> UInt64 {
        guard let first = chainedKeys.first else { return 0 }
        if prefixStartsOverflowed { return .max }
        return prefixStarts[Int(truncatingIfNeeded: first)] ?? 0
    }

    /// The JE's decision for a new request: never fits, refused now, or the prefill TE.
    func admit(_ request: RequestState, instances: [InstanceState], cluster: ClusterManager, kv: KVCacheStore) -> Admission {
        if let (reason, kind) = neverFits(request) { return .neverFits(reason: reason, kind: kind) }
        guard let target = requeueTarget(for: request, instances: instances, cluster: cluster, kv: kv) else {
            // A pod whose TEs all prefill and decode has no "prefill TE" to speak of.
            let te = instances.contains { $0.role == .prefill } || !instances.contains { $0.role == .colocated }
                ? "prefill TE" : "colocated TE"
            let reason = instances.indices.contains(where: { instances[$0].hasPrefill && cluster.hasPlaceableGroup(te: $0) })
                ? "every \(te) has \(maxWaitingPerPrefillTE) requests waiting"
                : "no \(te) accepts work (all drained or out of service)"
            return .refused(reason: reason)
        }
        return .placed(prefillTE: target)
    }

    /// The prefill TE for a request (new, or re-queued after a fault): among TEs that accept
    /// work and are under the admission bound, the routing policy's choice. Nil when none can.
    /// TEs that scaling holds off (starting or scaled in) are outside the pool.
    func requeueTarget(for request: RequestState, instances: [InstanceState], cluster: ClusterManager,
                       kv: KVCacheStore) -> Int? {
        // The reused buffer: a filter allocated and grew a new array a few times per arrival.
        var candidates: [Int] = []
        swap(&candidates, &candidateBuffer)
        defer { swap(&candidates, &candidateBuffer) }
        candidates.removeAll(keepingCapacity: true)
        for index in instances.indices
        where instances[index].hasPrefill && cluster.hasPlaceableGroup(te: index)
            && instances[index].waiting < maxWaitingPerPrefillTE {
            candidates.append(index)
        }
        guard !candidates.isEmpty else { return nil }
        var pool = PrefillPool(instances: instances, kv: kv, cluster: cluster, candidates: candidates,
                               longPromptTokens: longPromptTokens)
        pool.prefixHolders = prefixHolders(request.chainedKeys)
        let routed = RoutingRequest(promptTokens: request.spec.promptTokens, chainedKeys: request.chainedKeys)
        guard let target = routing.pickPrefillTE(for: routed, in: pool), candidates.contains(target) else { return nil }
        return target
    }

    /// Why a request can never be served: an empty prompt, or KV that does not fit one DP group
    /// on either side. Returns the reason and its kind (the reason without the request's own
    /// numbers, for the report's counts). Any token count is safe here (no overflow).
    func neverFits(_ request: RequestState) -> (reason: String, kind: String)? {
        guard request.spec.promptTokens >= 1 else {
            return ("prompt of \(request.spec.promptTokens) tokens (a prompt needs at least one)", "empty prompt")
        }
        if Saturating.ceilDiv(request.spec.promptTokens, blockTokens) > prefillGroupBlocks {
            let capacity = Saturating.multiply(prefillGroupBlocks, blockTokens)
            return ("prompt of \(request.spec.promptTokens) tokens exceeds the \(capacity)-token KV of a prefill DP group",
                    "prompt exceeds the \(capacity)-token KV of a prefill DP group")
        }
        if Saturating.ceilDiv(request.totalTokens, blockTokens) > decodeGroupBlocks {
            let capacity = Saturating.multiply(decodeGroupBlocks, blockTokens)
            return ("\(request.totalTokens) tokens exceed the \(capacity)-token KV of a decode DP group",
                    "prompt + output exceed the \(capacity)-token KV of a decode DP group")
        }
        return nil
    }

    // MARK: Decode placement

    /// The decode TE a finished prefill hands its KV to: the available one with the lowest mean
    /// KV usage including reservations (the JE's real-time load, system.md §1.5). With every
    /// decode TE out of service, the first decode TE (the task waits there until an undrain).
    func pickDecodeTE(instances: [InstanceState], cluster: ClusterManager, kv: KVCacheStore) -> Int {
        // One available decode TE (the superpod's case) wins whatever its usage (always finite):
        // its 320 groups need not be summed.
        var only = -1
        for index in instances.indices where instances[index].role == .decode && cluster.hasPlaceableGroup(te: index) {
            guard only < 0 else {
                only = -2
                break
            }
            only = index
        }
        if only >= 0 { return only }
        var best = -1
        var bestUsage = Double.infinity
        for index in instances.indices where instances[index].role == .decode && cluster.hasPlaceableGroup(te: index) {
            // Summed in group order, as a reduce over the groups would.
            var sum = 0.0
            kv.withGroups(of: index) { groups in
                for g in groups.indices { sum += groups[g].usageIncludingReserved }
            }
            let usage = sum / Double(instances[index].groupCount)
            if usage < bestUsage {
                best = index
                bestUsage = usage
            }
        }
        if best < 0 { best = instances.firstIndex { $0.role == .decode } ?? 0 }
        return best
    }

    /// The DP group of decode TE `index` that takes the next request (a pulled transfer or a
    /// migrated request), by the decode balancing policy; nil when no group has room.
    func pickDecodeGroup(_ index: Int, instances: [InstanceState], kv: KVCacheStore, placeable: PlaceableGroups) -> Int? {
        let te = instances[index]
        guard let decode = te.decode else { return nil }
        if decodeBalancingIsKVAware,
           case .some(let pick) = decode.indexedKVAwarePick(te: index, kv: kv, placeable: placeable,
                                                            batchLimit: te.groupSpec.batchLimit) {
            return pick
        }
        return decode.pickGroup(te: index, kv: kv, placeable: placeable, batchLimit: te.groupSpec.batchLimit,
                                policy: &decodeBalancing)
    }
}
