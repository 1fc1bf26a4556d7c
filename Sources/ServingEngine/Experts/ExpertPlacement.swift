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
        var dieLoad = Array(repeating: 0.0, count: dies)
        var freeSlots = Array(repeating: slotsPerDie, count: dies)
        func leastLoadedDie(excluding hosts: [Int]) -> Int? {
            var best: Int?
            for d in 0..<dies where freeSlots[d] > 0 && !hosts.contains(d) {
                if best == nil || dieLoad[d] < dieLoad[best!] { best = d }
            }
            return best
        }
        // Primaries, hottest first (ties by expert id keep it deterministic).
        for e in (0..<experts).sorted(by: { (load[$0], $1) > (load[$1], $0) }) {
            guard let d = leastLoadedDie(excluding: []) else { break }
            replicas[e] = [d]
            dieLoad[d] += load[e]
            freeSlots[d] -= 1
        }
        // Redundant slots.
        while true {
            guard let e = (0..<experts).max(by: {
                (load[$0] / Double(replicas[$0].count), $1) < (load[$1] / Double(replicas[$1].count), $0)
            }) else { break }
            guard let d = leastLoadedDie(excluding: replicas[e]) else { break }
            let before = load[e] / Double(replicas[e].count)
            for host in replicas[e] { dieLoad[host] -= before - load[e] / Double(replicas[e].count + 1) }
            replicas[e].append(d)
            dieLoad[d] += load[e] / Double(replicas[e].count)
            freeSlots[d] -= 1
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

    /// Max over mean of per-die load, averaged over layers (each layer's barrier waits for its
    /// hottest die, so the step pays the average of the per-layer maxima).
    public func imbalance(popularity: ExpertPopularity) -> Double {
        guard !layers.isEmpty else { return 1 }
        var total = 0.0
        for l in layers.indices {
            let loads = dieLoads(layer: l, popularity: popularity)
            let mean = loads.reduce(0, +) / Double(loads.count)
            total += mean > 0 ? loads.max()! / mean : 1
        }
        return total / Double(layers.count)
    }
}
