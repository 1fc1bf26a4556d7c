import HeapModule

/// Expert load balancing modes of `--eplb` (interfaces.md).
public enum EPLBMode: String, Sendable, CaseIterable, Codable {
    /// Static placement: experts round-robin, redundant slots hold fixed copies of the first experts.
    case off
    /// The greedy planner of system.md §4.
    case on
    /// Perfectly uniform per-die load: the lower bound no placement can beat.
    case perfect
}

/// Where each logical expert's replicas live, per MoE layer: `layers[l][e]` lists the dies.
///
/// Tokens of a replicated expert are split evenly across its replicas (system.md §4: a token
/// picks a replica by rotating on its batch position).
///
/// ```swift
/// let placement = ExpertPlacement.greedy(popularity: pop, dies: 288, slotsPerDie: 1)
/// print(placement.imbalance(popularity: pop))    // max/mean per-die load, averaged over layers
/// ```
public struct ExpertPlacement: Sendable, Equatable {
    public var dies: Int
    public var slotsPerDie: Int
    public var layers: [[[Int]]]

    /// Static layout: expert e on die e mod dies; the spare slots copy experts 0, 1, 2, …
    public static func roundRobin(experts: Int, layers: Int, dies: Int, slotsPerDie: Int) -> ExpertPlacement {
        let slots = dies * slotsPerDie
        var row = (0..<experts).map { [$0 % dies] }
        for extra in 0..<max(0, slots - experts) {
            row[extra % experts].append((experts + extra) % dies)
        }
        return ExpertPlacement(dies: dies, slotsPerDie: slotsPerDie, layers: Array(repeating: row, count: layers))
    }

    /// system.md §4's planner: place every expert once, hottest first, on the least-loaded die with
    /// a free slot; then spend the remaining (redundant) slots one by one on the expert with the
    /// highest load per replica, each new replica on the least-loaded die with a free slot.
    public static func greedy(popularity: ExpertPopularity, dies: Int, slotsPerDie: Int) -> ExpertPlacement {
        let rows = popularity.layers.map { greedyLayer(load: $0, dies: dies, slotsPerDie: slotsPerDie) }
        return ExpertPlacement(dies: dies, slotsPerDie: slotsPerDie, layers: rows)
    }

    static func greedyLayer(load: [Double], dies: Int, slotsPerDie: Int) -> [[Int]] {
        let experts = load.count
        var replicas = Array(repeating: [Int](), count: experts)
        var dies = DiePool(dies: dies, slotsPerDie: slotsPerDie)
        // Primaries, hottest first (ties by expert id keep it deterministic).
        for e in (0..<experts).sorted(by: { (load[$0], $1) > (load[$1], $0) }) {
            guard let d = dies.leastLoaded(excluding: []) else { break }
            replicas[e] = [d]
            dies.place(load[e], on: d)
        }
        // Redundant slots: the expert with the most load per replica, next.
        var hottest = Heap<ExpertShare>((0..<experts).filter { !replicas[$0].isEmpty }.map {
            ExpertShare(share: load[$0], expert: $0)
        })
        while dies.hasFreeSlot, let top = hottest.popMax() {
            let e = top.expert
            guard let d = dies.leastLoaded(excluding: replicas[e]) else { continue }
            let before = load[e] / Double(replicas[e].count)
            let after = load[e] / Double(replicas[e].count + 1)
            for host in replicas[e] { dies.adjust(after - before, on: host) }
            replicas[e].append(d)
            dies.place(after, on: d)
            hottest.insert(ExpertShare(share: after, expert: e))
        }
        return replicas
    }

    /// Relative load on each die of one layer (the mean over dies is `experts / dies` × mean load).
    public func dieLoads(layer: Int, popularity: ExpertPopularity) -> [Double] {
        var loads = Array(repeating: 0.0, count: dies)
        for (e, hosts) in layers[layer].enumerated() where !hosts.isEmpty {
            let share = popularity.layers[layer][e] / Double(hosts.count)
            for d in hosts { loads[d] += share }
        }
        return loads
    }

    /// Per layer, the hottest die's share of the layer's load (one scratch buffer, no per-layer
    /// allocation: this runs whenever popularity drifts or placement changes).
    public func hottestShares(popularity: ExpertPopularity) -> [Double] {
        var scratch = [Double](repeating: 0, count: dies)
        var shares = [Double]()
        shares.reserveCapacity(layers.count)
        for l in layers.indices {
            for d in scratch.indices { scratch[d] = 0 }
            var total = 0.0
            let row = popularity.layers[l]
            for (e, hosts) in layers[l].enumerated() where !hosts.isEmpty {
                let share = row[e] / Double(hosts.count)
                for d in hosts { scratch[d] += share }
                total += row[e]
            }
            shares.append(total > 0 ? scratch.max()! / total : 1 / Double(dies))
        }
        return shares
    }

    /// Max over mean of per-die load, averaged over layers (each layer's barrier waits for its
    /// hottest die, so the step pays the average of the per-layer maxima).
    public func imbalance(popularity: ExpertPopularity) -> Double {
        guard !layers.isEmpty else { return 1 }
        // The flat walk's arithmetic in the same order, without building the flat arrays: a plan's
        // imbalance is asked once per plan and the placement is not kept.
        return FlatPlacement.hottestShares(of: self, popularity: popularity).reduce(0, +) / Double(layers.count)
            * Double(dies)
    }
}

/// An expert's load per replica, ordered hottest first with lower ids winning ties.
struct ExpertShare: Comparable {
    var share: Double
    var expert: Int
    static func < (a: Self, b: Self) -> Bool { (a.share, b.expert) < (b.share, a.expert) }
}

/// Dies with free slots by current load: a min-heap with lazy updates (an entry whose load is
/// stale is dropped when it surfaces), so each placement costs O(log dies).
struct DiePool {
    struct Entry: Comparable {
        var load: Double
        var die: Int
        static func < (a: Self, b: Self) -> Bool { (a.load, a.die) < (b.load, b.die) }
    }
    private(set) var load: [Double]
    private var free: [Int]
    private var heap: Heap<Entry>
    private var freeDies: Int

    init(dies: Int, slotsPerDie: Int) {
        load = Array(repeating: 0, count: dies)
        free = Array(repeating: slotsPerDie, count: dies)
        heap = Heap((0..<dies).map { Entry(load: 0, die: $0) })
        freeDies = slotsPerDie > 0 ? dies : 0
    }

    var hasFreeSlot: Bool { freeDies > 0 }

    /// The least-loaded die with a free slot that is not in `excluded` (lowest id on ties).
    mutating func leastLoaded(excluding excluded: [Int]) -> Int? {
        var skipped: [Entry] = []
        defer { for entry in skipped { heap.insert(entry) } }
        while let top = heap.popMin() {
            guard free[top.die] > 0, top.load == load[top.die] else { continue }  // full or stale
            if excluded.contains(top.die) {
                skipped.append(top)
                continue
            }
            return top.die
        }
        return nil
    }

    /// Puts a replica carrying `share` on a die just returned by ``leastLoaded(excluding:)``.
    mutating func place(_ share: Double, on die: Int) {
        load[die] += share
        free[die] -= 1
        if free[die] > 0 { heap.insert(Entry(load: load[die], die: die)) } else { freeDies -= 1 }
    }

    /// Changes a die's load (its replicas now share an expert with one more die).
    mutating func adjust(_ delta: Double, on die: Int) {
        load[die] += delta
        if free[die] > 0 { heap.insert(Entry(load: load[die], die: die)) }
    }
}
