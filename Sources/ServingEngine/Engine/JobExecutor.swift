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
    /// The routing view (its candidate list included), kept from one decision to the next and
    /// reached in place for each (``route(_:holders:with:in:instances:cluster:kv:maxWaiting:newPool:)``).
    /// Built per decision, it retained and released the
    /// TE list, the store, the candidates and the holder bits each time (ten reference-count
    /// calls an arrival, 0.9% of a saturated superpod). Rebuilt when the TEs or the store are
    /// others, dropped when the holder bits change; a copy of the JE starts with none, so nothing
    /// carries between forks.
    private var keptPool: PrefillPool?
    /// The routing decision's prefix probes (its pools note them), for placing the request routed
    /// (``routedProbe(of:)``). A copy of the JE has its own.
    private let probeLog = PrefixProbeLog()
    /// For each first prefix key (a request's `chainedKeys[0]`): the prefill DP groups a request
    /// starting with it was ever placed on, one bit per group (``holderBitBase``: a prefill TE's
    /// groups take consecutive bits, in TE order, up to 64). Only those groups can hold a block
    /// under that key: a group's prefix cache takes its blocks from the requests prefilled on it,
    /// all placed through ``notePlacement(chainedKeys:te:group:)`` (the same 64-bit key at another
    /// depth would be a hash collision, which the cache itself already assumes away). Routing and
    /// the prefill leader then probe no other group's cache for the request: most prompts continue
    /// a session whose prefix sits in one group, and a miss in a group's index cost a probe
    /// sequence each (6% of a saturated superpod when every group was probed; with one bit per TE,
    /// a TE's other seven groups still cost a scattered read each, a tenth of the saturated
    /// superpod's cache misses). Groups past the 64th have no bit and are always probed. Bits are
    /// never cleared (an evicted prefix costs only a probe). Past ``maxPrefixStarts`` keys the map
    /// is dropped and every group is probed again.
    private var prefixStarts = IDTable<UInt64>()
    private var prefixStartsOverflowed = false
    /// The holder bit of each TE's group 0 (its group `g` has bit `base + g`); `Int.max` for a TE
    /// that does not prefill. Set as TEs are noted (``noteGroupBlocks(of:instances:kv:)``).
    private(set) var holderBitBase: [Int] = []
    /// Holder bits handed to prefill groups so far (bits from 64 on do not exist).
    private var holderBitsAssigned = 0
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
        holderBitBase = other.holderBitBase
        holderBitsAssigned = other.holderBitsAssigned
    }

    /// A deep copy (the policies are values, so their state is copied too), for an engine fork.
    func copy() -> JobExecutor { JobExecutor(copying: self) }

    /// Takes the TEs' DP-group sizes into the never-fits bounds, and gives a prefill TE's groups
    /// their prefix-holder bits (at build, and for TEs added later, in TE order).
    func noteGroupBlocks(of tes: Range<Int>, instances: [InstanceState], kv: KVCacheStore) {
        for index in tes {
            let smallest = kv.smallestGroupBlocks(of: index)
            if instances[index].hasPrefill { prefillGroupBlocks = min(prefillGroupBlocks, smallest) }
            if instances[index].hasDecode { decodeGroupBlocks = min(decodeGroupBlocks, smallest) }
            if holderBitBase.count <= index {
                holderBitBase.append(contentsOf: repeatElement(Int.max, count: index + 1 - holderBitBase.count))
            }
            if instances[index].hasPrefill && holderBitBase[index] == Int.max {
                holderBitBase[index] = holderBitsAssigned
                holderBitsAssigned = Saturating.add(holderBitsAssigned, instances[index].groupCount)
            }
        }
        keptPool = nil  // it holds the bits as they were
    }

    func setRouting(_ policy: any RequestRoutingPolicy) { routing = policy }
    func setDecodeBalancing(_ policy: any DecodeBalancingPolicy) { decodeBalancing = policy }

    // MARK: Admission and routing

    /// A request with these prefix keys is placed on group `group` of prefill TE `te` (before any
    /// of its blocks are allocated there).
    func notePlacement(chainedKeys: [UInt64], te: Int, group: Int) {
        guard let first = chainedKeys.first, !prefixStartsOverflowed, te >= 0, te < holderBitBase.count else { return }
        let bit = holderBitBase[te] == Int.max ? Int.max : holderBitBase[te] + group
        guard group >= 0, bit < 64 else { return }
        let key = Int(truncatingIfNeeded: first)
        let mask: UInt64 = 1 << UInt64(bit)
        if let holders = prefixStarts[key] {
            if holders & mask == 0 { prefixStarts[key] = holders | mask }
        } else if prefixStarts.count < Self.maxPrefixStarts {
            prefixStarts[key] = mask
        } else {
            prefixStartsOverflowed = true
            prefixStarts = IDTable()
        }
    }

    /// The prefill groups whose caches may hold a prefix starting with these keys (a bit per group,
    /// ``holderBitBase``; groups past the 64th always may): ``PrefillPool/prefixHolders``.
    func prefixHolders(_ chainedKeys: [UInt64]) -> UInt64 {
        guard let first = chainedKeys.first else { return 0 }
        if prefixStartsOverflowed { return .max }
        return prefixStarts[Int(truncatingIfNeeded: first)] ?? 0
    }

    /// The groups of TE `te` that may hold a prefix starting with these keys: bit `g` for group `g`
    /// (``PrefixGroups``).
    func prefixGroups(_ chainedKeys: [UInt64], te: Int, groups: Int) -> PrefixGroups {
        PrefixGroups(holders: prefixHolders(chainedKeys), base: te < holderBitBase.count ? holderBitBase[te] : Int.max,
                     groups: groups)
    }

    /// The JE's decision for a new request: never fits, refused now, or the prefill TE.
    func admit(_ request: RequestState, instances: [InstanceState], cluster: ClusterManager, kv: KVCacheStore) -> Admission {
        if let (reason, kind) = neverFits(request) { return .neverFits(reason: reason, kind: kind) }
        guard let target = requeueTarget(for: request, instances: instances, cluster: cluster, kv: kv) else {
            // A pod whose TEs all prefill and decode has no "prefill TE" to speak of.
            let te = ServingEngine.prefillingTE(in: instances)
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
        let routed = RoutingRequest(promptTokens: request.spec.promptTokens, chainedKeys: request.chainedKeys)
        // The pool is built through `self` (a holder-bit list passed along was retained per call).
        return Self.route(routed, holders: prefixHolders(request.chainedKeys), with: &routing, in: &keptPool,
                          instances: instances, cluster: cluster, kv: kv, maxWaiting: maxWaitingPerPrefillTE,
                          newPool: { self.newPool(instances: instances, cluster: cluster, kv: kv) })
    }

    /// ``requeueTarget(for:instances:cluster:kv:)`` on the kept pool, both it and the policy
    /// reached in place (a pool read from the JE's property for the policy call was copied, its
    /// references retained and released). `newPool` builds the pool when none is kept for these
    /// TEs and this store.
    private static func route(_ request: RoutingRequest, holders: UInt64, with routing: inout any RequestRoutingPolicy,
                              in kept: inout PrefillPool?, instances: [InstanceState], cluster: ClusterManager,
                              kv: KVCacheStore, maxWaiting bound: Int, newPool: () -> PrefillPool) -> Int? {
        if kept?.views(instances, kv) != true { kept = newPool() }
        kept!.readVerdicts(of: cluster)
        // The pool's candidate list is reused: a filter allocated and grew a new array a few times
        // per arrival. It holds the last decision's candidates, mostly this one's too (every
        // prefill TE, under load): a read-only pass over the TEs compares them in place, and the
        // list is rebuilt only when they differ (a pass that could also cut and append kept its
        // state in memory, twice the instructions per TE).
        let same = instances.withUnsafeBufferPointer { tes in
            kept!.candidates.withUnsafeBufferPointer { last in
                var kept = 0
                for index in tes.indices
                where tes[index].hasPrefill && cluster.hasPlaceableGroup(te: index) && tes[index].waiting < bound {
                    guard kept < last.count && last[kept] == index else { return false }
                    kept &+= 1
                }
                return kept == last.count
            }
        }
        if !same {
            kept!.candidates.removeAll(keepingCapacity: true)
            for index in instances.indices
            where instances[index].hasPrefill && cluster.hasPlaceableGroup(te: index) && instances[index].waiting < bound {
                kept!.candidates.append(index)
            }
        }
        guard !kept!.candidates.isEmpty else { return nil }
        kept!.prefixHolders = holders
        kept!.probeLog?.startDecision()
        guard let target = routing.pickPrefillTE(for: request, in: kept!), kept!.candidates.contains(target) else {
            return nil
        }
        return target
    }

    /// A routing view of these TEs with the JE's holder bits and no candidates yet.
    private func newPool(instances: [InstanceState], cluster: ClusterManager, kv: KVCacheStore) -> PrefillPool {
        var pool = PrefillPool(instances: instances, kv: kv, cluster: cluster, candidates: [], longPromptTokens: longPromptTokens)
        pool.holderBitBase = holderBitBase
        pool.probeLog = probeLog
        return pool
    }

    /// The exact prefix hit routing found on one group of TE `te` in the last decision (nil: it
    /// probed none there): the prefill leader placing the request just routed reads it instead of
    /// probing that group again (nothing changes the caches in between).
    func routedProbe(of te: Int) -> (group: Int, hits: Int)? { probeLog.probe(of: te) }

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
        return pickDecodeGroup(index, decode: decode, batchLimit: te.groupSpec.batchLimit, kv: kv, placeable: placeable)
    }

    /// ``pickDecodeGroup(_:instances:kv:placeable:)`` for a caller that holds the TE's decode
    /// scheduler and batch limit already (a transfer pull, once per pulled request): reaching them
    /// again through the TE list retained and released the list, the TE and its scheduler per
    /// pick (issue 12: ~6.5 M instructions of a saturated superpod's 120 s).
    func pickDecodeGroup(_ index: Int, decode: DecodeScheduler, batchLimit: Int, kv: KVCacheStore,
                         placeable: PlaceableGroups) -> Int? {
        if decodeBalancingIsKVAware,
           case .some(let pick) = decode.indexedKVAwarePick(te: index, kv: kv, placeable: placeable, batchLimit: batchLimit) {
            return pick
        }
        return decode.pickGroup(te: index, kv: kv, placeable: placeable, batchLimit: batchLimit, policy: &decodeBalancing)
    }
}

/// Which DP groups of one prefill TE may hold a prompt's prefix (``JobExecutor/prefixHolders(_:)``
/// seen from the TE): bit `g` of ``mask`` for group `g`; a group without a holder bit (past the
/// pod's 64th prefill group) always may.
struct PrefixGroups: Equatable {
    /// Bit `g`: group `g` may hold the prefix (groups from 64 on: ``beyond``).
    let mask: UInt64
    /// Whether the TE has groups from 64 on (they always may).
    let beyond: Bool

    /// The `groups` groups of a TE whose group 0 has holder bit `base`, in the holder set `holders`.
    @inline(__always)
    init(holders: UInt64, base: Int, groups: Int) {
        beyond = groups > 64
        let own: UInt64 = groups >= 64 ? .max : (1 << UInt64(max(0, groups))) &- 1
        guard base >= 0, base < 64 else {
            mask = own
            return
        }
        // The TE's bits moved down to its group 0; groups whose bit would be 64 or more, all set.
        let unnumbered: UInt64 = base == 0 ? 0 : ~0 << UInt64(64 - base)
        mask = (holders >> UInt64(base) | unnumbered) & own
    }

    /// Every group may (nothing known of where the prefix went: probe them all).
    static let all = PrefixGroups(holders: .max, base: 0, groups: 64)

    /// Whether group `g` may hold the prefix.
    @inline(__always) func contains(_ g: Int) -> Bool { g >= 64 || mask >> UInt64(g) & 1 != 0 }
    /// Whether no group may.
    var isEmpty: Bool { mask == 0 && !beyond }
}
