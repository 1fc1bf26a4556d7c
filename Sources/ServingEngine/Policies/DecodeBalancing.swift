import PodModel

/// Decode DP load balancing inside one decode TE (system.md §4): which DP group takes the next
/// request, for a KV transfer pulled from the queue or a request migrated off a drained node.
/// Only groups that accept work and are under the batch limit are eligible.
public protocol DecodeBalancingPolicy: Sendable {
    var name: String { get }
    /// An eligible group of `groups`, or nil when none is.
    mutating func pickGroup(in groups: DecodeGroups) -> Int?
}

/// A read-only view of one decode TE's DP groups.
public struct DecodeGroups {
    /// The TE's index (policies with per-TE state key it by this).
    let instance: Int
    let batchLimit: Int
    /// The KV store, read only for the TE's groups' usage (``usageIncludingReserved(_:)``). Not
    /// `private`: with a private field and an explicit init, each copy of the view into the
    /// policy call retained the store (+0.9% of a saturated superpod's instructions).
    let kv: KVCacheStore
    /// Which groups take new work (the cluster manager's, for this pick only).
    let placeable: PlaceableGroups
    /// Decode slots taken in each group (the TE's ``DecodeScheduler/slots``).
    let slots: [Int]
    /// The TE's incremental kv-aware order, when it keeps one (``DecodeLoadIndex``).
    var loadIndex: DecodeLoadIndex? = nil

    /// Whether group `g` may take a request: placeable and under the batch limit.
    func isEligible(_ g: Int) -> Bool { placeable[g] && slots[g] < batchLimit }
    /// The TE's DP groups.
    var count: Int { slots.count }
    /// Group `g`'s KV usage including the space reserved for expected outputs.
    func usageIncludingReserved(_ g: Int) -> Double { kv.usageIncludingReserved(GroupRef(te: instance, group: g)) }
}

/// The default (system.md §4): skip groups at their batch limit (and drained ones), then the
/// lowest KV usage including the space reserved for expected outputs; the lowest index on ties.
public struct KVAwareBalancing: DecodeBalancingPolicy {
    public var name: String { "kv-aware" }
    public init() {}

    public mutating func pickGroup(in groups: DecodeGroups) -> Int? {
        if let index = groups.loadIndex {
            let best = index.best
            assert(best == Self.scan(groups), "decode load index disagrees with a scan of \(groups.instance)'s groups")
            return best
        }
        return Self.scan(groups)
    }

    /// The definition the index keeps incrementally: every group looked at.
    static func scan(_ groups: DecodeGroups) -> Int? {
        var best: Int?
        var bestUsage = Double.infinity
        for g in 0..<groups.count where groups.isEligible(g) {
            let usage = groups.usageIncludingReserved(g)
            if usage < bestUsage {
                best = g
                bestUsage = usage
            }
        }
        return best
    }
}

/// Eligible groups in turn, per TE: the first at or after the TE's cursor (wrapping). Ignores
/// KV usage (a baseline for kv-aware).
public struct RoundRobinBalancing: DecodeBalancingPolicy {
    public var name: String { "round-robin" }
    /// Next group to try, by decode TE index.
    var cursors: [Int: Int] = [:]
    public init() {}

    public mutating func pickGroup(in groups: DecodeGroups) -> Int? {
        let count = groups.count
        guard count > 0 else { return nil }
        let start = min(cursors[groups.instance, default: 0], count)
        for step in 0..<count {
            let g = (start + step) % count
            if groups.isEligible(g) {
                cursors[groups.instance] = g + 1
                return g
            }
        }
        return nil
    }
}
