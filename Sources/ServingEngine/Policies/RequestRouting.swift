import PodModel
import SimKit

/// The JE's choice of a prefill TE for a request (system.md §1.5). The JE filters the
/// candidates first (TEs that accept work and are under the admission bound), so every policy
/// respects availability and admission; a policy only orders them. Policies are values: a
/// fork of the engine copies their state.
public protocol RequestRoutingPolicy: Sendable {
    var name: String { get }
    /// One of `pool.candidates` (never empty), or nil to turn the request away.
    mutating func pickPrefillTE(for request: RoutingRequest, in pool: PrefillPool) -> Int?
}

/// What routing may know of a request.
public struct RoutingRequest {
    let promptTokens: Int
    /// Prefix keys in KV-block units, chained (``PrefixHashes/chain(_:)``).
    let chainedKeys: [UInt64]
}

/// A read-only view of the prefill side for one routing decision.
public struct PrefillPool {
    let instances: [InstanceState]
    /// The TEs' KV caches, probed for prefix hits by ``finishCost(_:for:)`` (read only: a policy
    /// reaches no store call that could change KV).
    private let kv: KVCacheStore
    /// Which TEs scaling holds off and which groups take work: read from the cluster manager
    /// for this decision only (through the methods below; a policy changes nothing there).
    /// Nil when every group of every TE is placeable (the usual case): then nothing is read
    /// per TE or group, and copies of the pool (the policy call copies it) retain nothing more
    /// than before the verdicts moved to the cluster manager (a reference here cost 1.5% of a
    /// saturated superpod's instructions in retains and releases). Set by ``readVerdicts(of:)``.
    private var cluster: ClusterManager?
    /// Every prefill-capable TE, in service or not, ascending (roles are fixed with the TEs):
    /// ``prefillTEs()`` and its count are this list less the held-off TEs, and with none held
    /// off (the usual case) the list itself, read without a pass over the TEs per decision.
    private let prefillCapable: [Int]
    /// Prefill-capable TEs that accept work and are under the admission bound, ascending.
    /// Settable for the JE, which keeps one pool and refills the list per decision
    /// (``JobExecutor/requeueTarget(for:instances:cluster:kv:)``); a policy receives the pool as
    /// a constant.
    var candidates: [Int]
    /// Prompts longer than this are "long" (``EngineConfiguration/longPromptTokens``).
    let longPromptTokens: Int
    /// The prefill groups whose prefix caches may hold the request's prefix (a bit per group, from
    /// ``holderBitBase``; groups past the 64th always may): the JE knows where prefixes were placed
    /// (``JobExecutor/prefixHolders(_:)``), and any other group would report no hit. All bits:
    /// probe every group.
    var prefixHolders: UInt64 = .max
    /// The holder bit of each TE's group 0 (``JobExecutor/holderBitBase``); empty: no group has one.
    var holderBitBase: [Int] = []
    /// Where the probes of this decision are noted for the prefill leader (the JE's); nil: nowhere.
    var probeLog: PrefixProbeLog?

    /// Which of TE `te`'s groups may hold a cached prefix of the request (the others hold none).
    @inline(__always)
    func prefixGroups(_ te: Int) -> PrefixGroups {
        PrefixGroups(holders: prefixHolders, base: te >= 0 && te < holderBitBase.count ? holderBitBase[te] : Int.max,
                     groups: instances[te].groupCount)
    }
    /// Every prefill-capable TE in service, drained or not, ascending (TEs that scaling holds
    /// off, starting or scaled in, are not part of the pool at all).
    func prefillTEs() -> [Int] {
        cluster == nil ? prefillCapable : prefillCapable.filter { !isHeldOff($0) }
    }

    /// How many prefill TEs are in service: ``prefillTEs()``'s count, without building the list.
    @inline(__always)
    var prefillTECount: Int {
        guard cluster != nil else { return prefillCapable.count }  // none held off
        var count = 0
        for te in prefillCapable where !isHeldOff(te) { count += 1 }
        return count
    }

    /// ``prefillTEs()``'s element `rank` (below ``prefillTECount``), without building the list.
    @inline(__always)
    func prefillTE(rank: Int) -> Int {
        guard cluster != nil else { return prefillCapable[rank] }  // none held off
        var skip = rank
        for te in prefillCapable where !isHeldOff(te) {
            if skip == 0 { return te }
            skip -= 1
        }
        preconditionFailure("prefill TE \(rank) of \(prefillTECount) in service")
    }

    /// Whether scaling holds TE `te` off (starting or scaled in: outside the pool).
    func isHeldOff(_ te: Int) -> Bool { cluster?.isHeldOff(te: te) ?? false }
    /// Which of TE `te`'s groups take work; nil when all do (read `placeable?[g] != false`).
    @inline(__always)
    func placeable(of te: Int) -> PlaceableGroups? { cluster?.placeableGroupsIfRestricted(of: te) }

    init(instances: [InstanceState], kv: KVCacheStore, cluster: ClusterManager, candidates: [Int], longPromptTokens: Int) {
        self.instances = instances
        self.kv = kv
        prefillCapable = instances.indices.filter { instances[$0].hasPrefill }
        self.candidates = candidates
        self.longPromptTokens = longPromptTokens
        readVerdicts(of: cluster)
    }

    /// Takes the cluster manager's verdicts as they are now (for a pool kept from an earlier
    /// decision): read through it while some group is not placeable, else not at all.
    @inline(__always)
    mutating func readVerdicts(of cluster: ClusterManager) {
        // A held-off TE's groups are unplaceable; a held-off TE of no groups is counted apart.
        let restricted = cluster.hasUnplaceableGroups || cluster.hasHeldOffTEs
        if restricted != (self.cluster != nil) { self.cluster = restricted ? cluster : nil }
    }

    /// Whether the pool views exactly these TEs and this store (a pool kept from an earlier
    /// decision is good for the next only then). The pool holds its TE list, so a list changed
    /// since (a TE added) is another array: its storage differs (same storage and count: the
    /// very same TEs).
    func views(_ instances: [InstanceState], _ kv: KVCacheStore) -> Bool {
        guard kv === self.kv && instances.count == self.instances.count else { return false }
        return instances.withUnsafeBufferPointer { tes in
            self.instances.withUnsafeBufferPointer { $0.baseAddress == tes.baseAddress }
        }
    }

    /// Prompt tokens queued on the TE's DP groups that accept work.
    func queuedTokens(_ te: Int) -> Int {
        var load = 0
        guard let prefill = instances[te].prefill else { return 0 }
        let placeable = placeable(of: te)
        for g in instances[te].groups where placeable?[g] != false { load += prefill.queuedTokens[g] }
        return load
    }

    /// Group `g`'s prefix hit for `request` into `hits` while `probe` holds; probing stops once a
    /// group holds the whole cacheable prefix (no later group can beat it). Only the best group's
    /// hit counts, so a group is asked only whether it beats `hits` (one lookup for most groups
    /// once one holds a shared prefix, instead of a walk of the whole prefix per group).
    /// The first group asked (before any hit is found) reports its exact hit: kept in `first` for
    /// ``probeLog``.
    @inline(__always)
    private static func probeGroup(_ groups: UnsafeBufferPointer<KVBlockManager>, _ g: Int, for request: RoutingRequest,
                                   probe: inout Bool, hits: inout Int, first: inout (group: Int, hits: Int)) {
        guard probe else { return }
        let found = groups[g].cachedPrefixTokens(
            promptTokens: request.promptTokens, chainedHashes: request.chainedKeys, beating: hits == 0 ? -1 : hits)
        if first.group < 0 { first = (g, found) }
        hits = max(hits, found)
        probe = hits < groups[g].longestPossiblePrefixTokens(
            promptTokens: request.promptTokens, chainedCount: request.chainedKeys.count)
    }

    /// The KV tokens a colocated TE's requests hold and have reserved for their outputs (0 for a
    /// TE that only prefills): the decode work the request would join there. A colocated replica
    /// clears its prefill queue in a step or two, so its queued tokens are nearly always 0 and
    /// told the router nothing; its decode batch, which sets TPOT, is what differs. The same
    /// signal as the TE's own kv-aware DP balancing (``KVBlockManager/usageIncludingReserved``),
    /// in tokens so it adds to ``finishCost(_:for:)``.
    @inline(__always)
    func decodeKVTokens(_ te: Int) -> Int {
        guard instances[te].hasDecode else { return 0 }
        var blocks = 0
        kv.withGroups(of: te) { groups in
            for g in groups.indices { blocks = Saturating.add(blocks, groups[g].usedBlocks + groups[g].reservedBlocks) }
        }
        return Saturating.multiply(blocks, kv.blockTokens)
    }

    /// Queued tokens plus this prompt's tokens not already cached on the TE (its best DP group's
    /// prefix hit): how soon the TE would finish the request.
    func finishCost(_ te: Int, for request: RoutingRequest) -> Int { finishCost(te, for: request, below: .max) }

    /// ``finishCost(_:for:below:)`` for a router, read in place when nothing is to be probed (every
    /// group of the pod takes work and none of the TE's may hold the prompt's prefix): the TE's
    /// queued total plus the whole prompt, without a call per TE (seven in ten arrivals of a
    /// saturated superpod have no prefix keys at all).
    @_transparent  // always inlined into the router's loop (`@inline(__always)` left it a call per TE)
    func routingCost(_ te: Int, for request: RoutingRequest, below bound: Int) -> Int {
        if cluster == nil && (request.chainedKeys.isEmpty || prefixGroups(te).isEmpty) {
            return Saturating.add(instances[te].prefill?.totalQueuedTokens ?? 0, request.promptTokens)
        }
        return probedCost(te, for: request, below: bound)
    }

    /// ``finishCost(_:for:below:)`` as a call: kept out of ``routingCost(_:for:below:)``, which then
    /// stays small enough to be inlined into the router's loop (a call per TE cost 2 M
    /// instructions of a saturated superpod's two minutes).
    @inline(never)
    func probedCost(_ te: Int, for request: RoutingRequest, below bound: Int) -> Int {
        finishCost(te, for: request, below: bound)
    }

    /// ``finishCost(_:for:)`` when it is less than `bound`, else some cost no less than `bound`: for
    /// a router that only wants a TE cheaper than the best so far. When the longest possible hit
    /// would still leave the cost at `bound` or more, no group is probed (no hit can make the TE
    /// cheaper than `bound`; costs fall as hits grow, saturating or not): under load that skips
    /// the prefix walk on a TE that queues more than the best one's cost.
    @inline(__always)
    func finishCost(_ te: Int, for request: RoutingRequest, below bound: Int) -> Int {
        var hits = 0
        var load = 0
        // Only the groups that may hold the prefix are probed (the others would find no hit, which
        // changes neither the best hit nor whether to go on probing).
        let holders = request.chainedKeys.isEmpty ? PrefixGroups(holders: 0, base: 0, groups: 0) : prefixGroups(te)
        // Probing stops once a group holds the whole cacheable prefix (no group can beat it).
        var probe = !holders.isEmpty
        var first = (group: -1, hits: 0)
        // Every TE of the pool prefills; a TE without a leader has nothing queued.
        let prefill = instances[te].prefill
        // Read through the store's buffer: a group's block manager read through a property was
        // copied (a dozen buffer handles retained and released) for every probe.
        // Two paths, the same but for the verdict: with every group placeable (the usual case)
        // none is captured or read (capturing one cost a retain per probe, 0.5% of a saturated
        // superpod's instructions), the load is the leader's running total, and the groups are
        // visited only while probing. Each group's probe is ``probeGroup(_:_:for:probe:hits:first:)``;
        // the first one's exact hit is noted for the prefill leader after the walk (noted from
        // inside it, the log was retained and released around each probing call).
        if let placeable = placeable(of: te) {
            let queued = prefill?.queuedTokens ?? Array(repeating: 0, count: instances[te].groupCount)
            kv.withGroups(of: te) { groups in
                for g in groups.indices where placeable[g] {
                    if holders.contains(g) { Self.probeGroup(groups, g, for: request, probe: &probe, hits: &hits, first: &first) }
                    load += queued[g]
                }
            }
        } else {
            load = prefill?.totalQueuedTokens ?? 0
            // No group's hit can bring the TE under `bound` (the store's groups share one block
            // size, so their longest possible hits are one): nothing is probed.
            if probe && bound < .max {
                let longest = KVBlockManager.longestPossiblePrefixTokens(
                    promptTokens: request.promptTokens, chainedCount: request.chainedKeys.count, blockTokens: kv.blockTokens)
                if Saturating.add(load, request.promptTokens - longest) >= bound { probe = false }
            }
            if probe {
                kv.withGroups(of: te) { groups in
                    for g in groups.indices where holders.contains(g) {
                        Self.probeGroup(groups, g, for: request, probe: &probe, hits: &hits, first: &first)
                        if !probe { break }
                    }
                }
            }
        }
        if first.group >= 0 { probeLog?.note(te: te, group: first.group, hits: first.hits) }
        return Saturating.add(load, request.promptTokens - hits)
    }
}

/// The first exact prefix probe of each TE in the last routing decision: the group asked and the
/// tokens it hits (``PrefillPool/finishCost(_:for:below:)`` notes them). The prefill leader that
/// places the request just routed reads its TE's instead of walking that group's cache for the
/// same keys again (``ServingEngine/placeOnPrefillGroup(_:instance:routedProbe:)``: nothing
/// changes a cache in between); the walk was 0.6% of a saturated superpod.
final class PrefixProbeLog {
    /// The decision being routed; a TE's probe noted in an earlier one is stale.
    private var decision = 0
    /// Per TE: the decision of its probe (-1: none yet), the group and its hit tokens.
    private var probes: [(decision: Int, group: Int, hits: Int)] = []

    /// A new decision: the probes noted so far are stale.
    func startDecision() { decision &+= 1 }

    /// Group `g` of TE `te` hits `hits` tokens (exactly); only the TE's first probe in a decision is kept.
    func note(te: Int, group g: Int, hits: Int) {
        if te >= probes.count { probes.append(contentsOf: repeatElement((decision: -1, group: 0, hits: 0), count: te + 1 - probes.count)) }
        guard probes[te].decision != decision else { return }
        probes[te] = (decision, g, hits)
    }

    /// TE `te`'s first probe in this decision; nil: none.
    func probe(of te: Int) -> (group: Int, hits: Int)? {
        guard te >= 0 && te < probes.count && probes[te].decision == decision else { return nil }
        return (probes[te].group, probes[te].hits)
    }
}

/// The default (system.md §1.5, §4): long prompts go to the long-prompt TEs and short ones to
/// the rest (when there are at least two; long prompts straggle a whole barrier). The long side
/// gets a share of the TEs that follows the long prompts' recent share of prompt tokens, so a
/// long-heavy trace does not crowd onto a fixed few, and none when that share rounds to no TE
/// (rare long prompts then share the TEs with the short ones, rather than a TE waiting for
/// them). Then the TE that would finish the request soonest: its queued tokens plus this
/// prompt's tokens not already in its cache.
public struct PrefixAwareRouting: RequestRoutingPolicy {
    public var name: String { "prefix-aware" }
    /// Recent prompt tokens of long and short prompts, decaying per arrival (a window of
    /// roughly 1,000 requests).
    var recentPromptTokens = (long: 0.0, short: 0.0)

    public init() {}

    public mutating func pickPrefillTE(for request: RoutingRequest, in pool: PrefillPool) -> Int? {
        let candidates = pool.candidates
        guard !candidates.isEmpty else { return nil }
        let isLong = request.promptTokens > pool.longPromptTokens
        recentPromptTokens.long *= 0.999
        recentPromptTokens.short *= 0.999
        if isLong { recentPromptTokens.long += Double(request.promptTokens) } else {
            recentPromptTokens.short += Double(request.promptTokens)
        }
        // The prefill TEs in service (``PrefillPool/prefillTEs()``), counted and indexed in place:
        // no arrays are built per arrival.
        let allCount = pool.prefillTECount
        // The side's TEs are the candidates on the request's side when there is one (and any),
        // else all candidates.
        var firstLong = Int.max
        var sided = false
        let longCount = longSideCount(of: allCount)
        if longCount > 0 {
            // The long TEs are the last `longCount` of the prefill TEs in service (ascending):
            // those from `firstLong` on that are in the pool (a held-off TE is not one of them).
            firstLong = pool.prefillTE(rank: allCount - longCount)
            sided = candidates.contains { ($0 >= firstLong && !pool.isHeldOff($0)) == isLong }
        }
        var best = -1
        var bestCost = Int.max
        for te in candidates where !sided || (te >= firstLong && !pool.isHeldOff(te)) == isLong {
            if best < 0 { best = te }  // the side's first TE when every cost saturates
            // Only a cost under the best so far changes the pick (a TE that cannot get under it
            // is not probed: ``PrefillPool/finishCost(_:for:below:)``). A colocated TE's decode
            // work counts too: priced by its prefill queue alone, every colocated replica cost the
            // same (or the one holding a prefix less) and the lowest id took the request, so on
            // `colocated:2` one GPU ran 84% of the decode batch and TPOT p99 went over the SLO.
            // A cached prefix still decides between replicas whose decode loads are close.
            let decode = pool.decodeKVTokens(te)
            let cost = Saturating.add(pool.routingCost(te, for: request, below: bestCost - decode), decode)
            if cost < bestCost {
                best = te
                bestCost = cost
            }
        }
        return best
    }

    /// How many of `prefillTEs` TEs take the long prompts: as many as the long prompts' recent
    /// share of tokens fills, rounded, never all of them, and none when they would not fill half
    /// of one (a TE kept for long prompts that rarely or never come sat idle: on `colocated:N`
    /// a whole replica, decode included, never served).
    @inline(__always)  // its one caller's: a call per arrival otherwise
    func longSideCount(of prefillTEs: Int) -> Int {
        guard prefillTEs >= 2 else { return 0 }
        let share = recentPromptTokens.long / max(1, recentPromptTokens.long + recentPromptTokens.short)
        let x = share * Double(prefillTEs)
        // Rounded in place for the usual `x` (the share is in 0…1): the library call and the
        // saturating conversion were 2.3 M of a saturated superpod's two minutes (once per
        // arrival; issue 12).
        return min(prefillTEs - 1, Int(roundingSmallNonNegative: x) ?? Int(saturating: x.rounded()))
    }
}

/// The TE with the fewest queued prompt tokens on its groups that accept work, plus, for a TE
/// that also decodes (colocated), the KV tokens its requests hold and have reserved; the lowest
/// id on ties. Ignores prompt length and cached prefixes (a baseline for prefix-aware).
public struct LeastLoadedRouting: RequestRoutingPolicy {
    public var name: String { "least-loaded" }
    public init() {}

    public mutating func pickPrefillTE(for request: RoutingRequest, in pool: PrefillPool) -> Int? {
        var best: Int?
        var bestLoad = Int.max
        for te in pool.candidates {
            // A colocated replica's decode work counts, as in prefix-aware: its prefill queue is
            // ~0 between arrivals, so by queued tokens alone every replica tied and the lowest id
            // took nearly every request (on `colocated:2` at 2 req/s one GPU ran most of the
            // decode batch, TPOT p99 39.5 ms over the SLO). A prefill-only TE adds 0.
            let load = Saturating.add(pool.queuedTokens(te), pool.decodeKVTokens(te))
            if load < bestLoad {
                best = te
                bestLoad = load
            }
        }
        return best
    }
}

/// Prefill TEs in turn: the first candidate at or after the cursor (wrapping), then the cursor
/// moves past it. A TE that cannot take work is skipped, not waited for.
public struct RoundRobinRouting: RequestRoutingPolicy {
    public var name: String { "round-robin" }
    var cursor = 0
    public init() {}

    public mutating func pickPrefillTE(for request: RoutingRequest, in pool: PrefillPool) -> Int? {
        guard let pick = pool.candidates.first(where: { $0 >= cursor }) ?? pool.candidates.first else { return nil }
        cursor = pick + 1
        return pick
    }
}
