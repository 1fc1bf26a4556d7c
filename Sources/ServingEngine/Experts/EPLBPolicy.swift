/// Expert-placement planners, selectable by name (Vidur-style registry).
public enum EPLBPolicy: String, Sendable, CaseIterable, Codable {
    /// system.md §4: replicas one at a time to the hottest expert per replica, each on the
    /// least-loaded die with a free slot.
    case greedy
    /// DeepSeek's open-source EPLB, global policy: first decide every expert's replica count
    /// (most load per replica first), then pack all replicas onto dies heaviest first
    /// (balanced packing), never two replicas of an expert on one die.
    case deepseek

    public func plan(popularity: ExpertPopularity, dies: Int, slotsPerDie: Int) -> ExpertPlacement {
        switch self {
        case .greedy:
            return .greedy(popularity: popularity, dies: dies, slotsPerDie: slotsPerDie)
        case .deepseek:
            let rows = popularity.layers.map { Self.replicateThenPack(load: $0, dies: dies, slotsPerDie: slotsPerDie) }
            return ExpertPlacement(dies: dies, slotsPerDie: slotsPerDie, layers: rows)
        }
    }

    static func replicateThenPack(load: [Double], dies: Int, slotsPerDie: Int) -> [[Int]] {
        let experts = load.count
        var count = Array(repeating: 1, count: experts)
        for _ in 0..<max(0, dies * slotsPerDie - experts) {
            guard let e = (0..<experts).max(by: {
                (load[$0] / Double(count[$0]), $1) < (load[$1] / Double(count[$1]), $0)
            }), count[e] < dies else { break }
            count[e] += 1
        }
        var replicas: [(expert: Int, load: Double)] = []
        for e in 0..<experts { for _ in 0..<count[e] { replicas.append((e, load[e] / Double(count[e]))) } }
        replicas.sort { ($0.load, $1.expert) > ($1.load, $0.expert) }
        var hosts = Array(repeating: [Int](), count: experts)
        var dieLoad = Array(repeating: 0.0, count: dies)
        var free = Array(repeating: slotsPerDie, count: dies)
        for r in replicas {
            var best: Int?
            for d in 0..<dies where free[d] > 0 && !hosts[r.expert].contains(d) {
                if best == nil || dieLoad[d] < dieLoad[best!] { best = d }
            }
            guard let d = best else { continue }
            hosts[r.expert].append(d)
            dieLoad[d] += r.load
            free[d] -= 1
        }
        return hosts
    }
}
