import HeapModule

/// An expert-placement planner for EPLB (system.md §4), chosen by name (``Policies/eplbPlanner``;
/// the mode, `--eplb off|on|perfect`, is separate). Planners are stateless values.
public protocol EPLBPlanner: Sendable {
    var name: String { get }
    func plan(popularity: ExpertPopularity, dies: Int, slotsPerDie: Int) -> ExpertPlacement
}

/// system.md §4: replicas one at a time to the hottest expert per replica, each on the
/// least-loaded die with a free slot.
public struct GreedyEPLBPlanner: EPLBPlanner {
    public var name: String { "greedy" }
    public init() {}

    public func plan(popularity: ExpertPopularity, dies: Int, slotsPerDie: Int) -> ExpertPlacement {
        .greedy(popularity: popularity, dies: dies, slotsPerDie: slotsPerDie)
    }
}

/// DeepSeek's open-source EPLB, global policy: first decide every expert's replica count
/// (most load per replica first), then pack all replicas onto dies heaviest first (balanced
/// packing), never two replicas of an expert on one die.
public struct DeepSeekEPLBPlanner: EPLBPlanner {
    public var name: String { "deepseek" }
    public init() {}

    public func plan(popularity: ExpertPopularity, dies: Int, slotsPerDie: Int) -> ExpertPlacement {
        let rows = popularity.layers.map { Self.replicateThenPack(load: $0, dies: dies, slotsPerDie: slotsPerDie) }
        return ExpertPlacement(dies: dies, slotsPerDie: slotsPerDie, layers: rows)
    }

    static func replicateThenPack(load: [Double], dies: Int, slotsPerDie: Int) -> [[Int]] {
        let experts = load.count
        var count = Array(repeating: 1, count: experts)
        var hottest = Heap<ExpertShare>((0..<experts).map { ExpertShare(share: load[$0], expert: $0) })
        var spare = max(0, dies * slotsPerDie - experts)
        while spare > 0, let top = hottest.popMax() {
            let e = top.expert
            guard count[e] < dies else { continue }
            count[e] += 1
            spare -= 1
            hottest.insert(ExpertShare(share: load[e] / Double(count[e]), expert: e))
        }
        var replicas: [(expert: Int, load: Double)] = []
        for e in 0..<experts { for _ in 0..<count[e] { replicas.append((e, load[e] / Double(count[e]))) } }
        replicas.sort { ($0.load, $1.expert) > ($1.load, $0.expert) }
        var hosts = Array(repeating: [Int](), count: experts)
        var pool = DiePool(dies: dies, slotsPerDie: slotsPerDie)
        for r in replicas {
            guard let d = pool.leastLoaded(excluding: hosts[r.expert]) else { continue }
            hosts[r.expert].append(d)
            pool.place(r.load, on: d)
        }
        return hosts
    }
}

extension EPLBPlanner where Self == GreedyEPLBPlanner {
    public static var greedy: GreedyEPLBPlanner { GreedyEPLBPlanner() }
}

extension EPLBPlanner where Self == DeepSeekEPLBPlanner {
    public static var deepseek: DeepSeekEPLBPlanner { DeepSeekEPLBPlanner() }
}
