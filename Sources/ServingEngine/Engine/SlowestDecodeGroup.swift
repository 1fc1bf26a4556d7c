/// The slowest DP group of a decode TE's next step, kept as its batches change instead of found
/// by a scan of every group per step (the scan walked all 320 groups of the superpod's decode TE
/// every step: a fifth of the Mooncake hour's instructions).
///
/// A decode step waits for the group whose attention takes longest: `running × (per-request +
/// per-token × mean context)` (``ServingEngine/decodeStepSeconds(_:)``). Mathematically that is
/// `running × perRequest + perToken × (K + running × step × tokensPerStep)` with `K = promptSum −
/// joinStepSum × tokensPerStep` fixed while the group's batch does not change. So among groups
/// with the same number of running requests, the order by attention is the order by `K`, the
/// same at every step: groups sit in buckets by `running`, each sorted by `K` (highest first).
/// A step looks at the top of each bucket (a handful of distinct batch sizes, not 320 groups),
/// finds the best estimate `M`, and then evaluates the exact formula of the scan — the same
/// operations in the same order, so the same bits — for every group whose estimate is within a
/// slack of `M`. The slack (1e-11 relative to the magnitudes involved) is thousands of times
/// the rounding of either formula (≈ 1e-15 relative), so the scan's pick, the lowest-indexed
/// group of the highest exact attention, is always among those evaluated, and is picked the
/// same way. Cost models this does not cover (negative or non-finite rates, steps near 2⁵⁰)
/// make ``slowest(step:perRequest:perToken:)`` answer nil: the caller scans.
///
/// A ``DecodeScheduler`` holds one, empty until its first step builds it from the batches
/// (``prepare(batches:tokensPerStep:)``). The per-step calls are `mutating` so that the scheduler
/// calls them in place on its stored index: a non-mutating call on a class's stored struct copied
/// the struct first (six retains and releases a step, more than the query itself).
///
/// The scheduler keeps it current as requests join and leave its ``DecodeBatchFigures`` (their
/// only writer); ``problems(against:)`` compares it with the figures (``ServingEngine/audit()``).
///
/// ```swift
/// var index = SlowestDecodeGroup(batches: scheduler.batches, tokensPerStep: 1.9)   // or SlowestDecodeGroup() + prepare
/// index.update(3, running: 2, promptSum: 4_000, joinStepSum: 17)
/// index.slowest(step: 20, perRequest: 1e-4, perToken: 1e-7)   // (maxRunning, context, total), as the scan
/// ```
struct SlowestDecodeGroup: Equatable {
    /// TEs with fewer DP groups scan them every step and never build an index (its upkeep per
    /// join and leave costs more than a scan of a handful of groups).
    static let fewestGroupsIndexed = 16
    private(set) var tokensPerStep: Double
    /// Built from a TE's groups (an unbuilt index ignores updates; the TE's first step builds it).
    private(set) var isBuilt: Bool
    /// Running requests over all groups (the step's batch).
    private(set) var totalRunning = 0
    /// Per group (struct of arrays): the batch figures the step cost reads, and `K`.
    private var running: [Int]
    private var promptSum: [Int]
    private var joinStepSum: [Int]
    private var key: [Double]
    /// Groups by running count (index = running; 0 unused), each ordered by `key` descending,
    /// then group ascending.
    private var buckets: [[Int32]]
    /// The running counts whose bucket is not empty (any order), and where each sits in it (-1: absent).
    private var occupied: [Int] = []
    private var occupiedPosition: [Int]

    /// An unbuilt index: no groups, ignores updates until ``prepare(batches:tokensPerStep:)``.
    init() {
        tokensPerStep = 0
        isBuilt = false
        running = []
        promptSum = []
        joinStepSum = []
        key = []
        buckets = [[]]
        occupiedPosition = [-1]
    }

    init(batches: DecodeBatchFigures, tokensPerStep: Double) {
        self.tokensPerStep = tokensPerStep
        isBuilt = true
        let count = batches.count
        running = Array(repeating: 0, count: count)
        promptSum = Array(repeating: 0, count: count)
        joinStepSum = Array(repeating: 0, count: count)
        key = Array(repeating: 0, count: count)
        buckets = [[]]
        occupiedPosition = [-1]
        for g in 0..<count {
            update(g, running: batches.running[g], promptSum: batches.promptSum[g], joinStepSum: batches.joinStepSum[g])
        }
    }

    var groupCount: Int { running.count }

    /// Builds the index from `batches` unless it already describes them (same count, same
    /// tokens per step).
    mutating func prepare(batches: DecodeBatchFigures, tokensPerStep: Double) {
        guard !isBuilt || running.count != batches.count || self.tokensPerStep != tokensPerStep else { return }
        self = SlowestDecodeGroup(batches: batches, tokensPerStep: tokensPerStep)
    }

    /// Group `g`'s batch changed: its figures are stored and it moves to its new bucket.
    mutating func update(_ g: Int, running newRunning: Int, promptSum newPromptSum: Int, joinStepSum newJoinStepSum: Int) {
        guard g >= 0, g < running.count else { return }
        let old = running[g]
        if old > 0 { remove(g, from: old) }
        totalRunning += max(0, newRunning) - max(0, old)
        running[g] = newRunning
        promptSum[g] = newPromptSum
        joinStepSum[g] = newJoinStepSum
        key[g] = Double(newPromptSum) - Double(newJoinStepSum) * tokensPerStep
        if newRunning > 0 { insert(g, into: newRunning) }
    }

    /// The scan's answer for a step at `step`: the slowest group's running requests and mean
    /// context, and the running requests of all groups; nil when the rates are outside what the
    /// estimate covers (the caller scans then).
    mutating func slowest(step: Int, perRequest: Double, perToken: Double) -> (maxRunning: Int, context: Double, total: Int)? {
        guard isBuilt else { return nil }
        guard totalRunning > 0 else { return (0, 0, 0) }
        guard perRequest >= 0, perToken >= 0, perRequest.isFinite, perToken.isFinite, step >= 0,
              tokensPerStep.isFinite, tokensPerStep > 0 else { return nil }
        let s = Double(step), t = tokensPerStep
        func estimate(_ r: Int, _ k: Double) -> Double { Double(r) * perRequest + perToken * (k + Double(r) * s * t) }
        var best = -Double.infinity
        var largest = 0
        for r in occupied {
            best = max(best, estimate(r, key[Int(buckets[r][0])]))
            largest = max(largest, r)
        }
        guard Double(largest) * s * t < 1e15, best.isFinite else { return nil }
        let slack = 1e-11 * (abs(best) + perRequest * Double(largest) + perToken * Double(largest) * s * t)
        let threshold = best - slack
        var slowest = -1, slowestAttention = -1.0, slowestMean = 0.0
        for r in occupied {
            for member in buckets[r] {
                let g = Int(member)
                if estimate(r, key[g]) < threshold { break }
                let (attention, mean) = Self.attention(running: r, promptSum: promptSum[g], joinStepSum: joinStepSum[g], step: step,
                                                       tokensPerStep: t, perRequest: perRequest, perToken: perToken)
                // The scan keeps the first (lowest) group of the highest attention above -1.
                if attention > slowestAttention || (attention == slowestAttention && slowest >= 0 && g < slowest) {
                    slowest = g
                    slowestAttention = attention
                    slowestMean = mean
                }
            }
        }
        guard slowest >= 0 else { return (0, 0, totalRunning) }
        return (running[slowest], slowestMean, totalRunning)
    }

    /// The step cost's ranking of one group, exactly as the scan computes it.
    @inline(__always)
    static func attention(running: Int, promptSum: Int, joinStepSum: Int, step: Int, tokensPerStep: Double,
                          perRequest: Double, perToken: Double) -> (attention: Double, mean: Double) {
        let mean = DecodeBatchFigures.meanContext(running: running, promptSum: promptSum, joinStepSum: joinStepSum,
                                            step: step, tokensPerStep: tokensPerStep)
        return (Double(running) * (perRequest + perToken * mean), mean)
    }

    /// The definition the index keeps: every group looked at, in order (the step cost before the
    /// index, and its fallback).
    static func scan(_ batches: DecodeBatchFigures, step: Int, tokensPerStep: Double, perRequest: Double,
                     perToken: Double) -> (maxRunning: Int, context: Double, total: Int) {
        var maxRunning = 0, context = 0.0, total = 0
        var slowest = -1.0
        for g in 0..<batches.count {
            let running = batches.running[g]
            guard running > 0 else { continue }
            total += running
            let (attention, mean) = attention(running: running, promptSum: batches.promptSum[g],
                                              joinStepSum: batches.joinStepSum[g], step: step,
                                              tokensPerStep: tokensPerStep, perRequest: perRequest, perToken: perToken)
            if attention > slowest {
                slowest = attention
                maxRunning = running
                context = mean
            }
        }
        return (maxRunning, context, total)
    }

    /// Differences from `groups` and from the index's own invariants (empty when current).
    func problems(against batches: DecodeBatchFigures) -> [String] {
        guard isBuilt else { return [] }
        guard batches.count == running.count else {
            return ["slowest-group index covers \(running.count) groups of \(batches.count)"]
        }
        var found: [String] = []
        var total = 0
        var filed = [(bucket: Int, times: Int)](repeating: (0, 0), count: running.count)
        for r in buckets.indices.dropFirst() {
            for member in buckets[r] where Int(member) >= 0 && Int(member) < filed.count {
                filed[Int(member)] = (r, filed[Int(member)].times + 1)
            }
        }
        for g in 0..<batches.count {
            if running[g] != batches.running[g] || promptSum[g] != batches.promptSum[g]
                || joinStepSum[g] != batches.joinStepSum[g] {
                found.append("slowest-group index is stale for dp\(g): running \(running[g]), prompt sum \(promptSum[g]), "
                    + "join-step sum \(joinStepSum[g]); the group has \(batches.running[g]), \(batches.promptSum[g]), "
                    + "\(batches.joinStepSum[g])")
            }
            total += max(0, batches.running[g])
            let r = running[g]
            if r > 0 ? filed[g] != (r, 1) : filed[g].times != 0 {
                found.append("slowest-group index files dp\(g) (running \(r)) \(filed[g].times) times, in bucket \(filed[g].bucket)")
            }
            if key[g] != Double(promptSum[g]) - Double(joinStepSum[g]) * tokensPerStep {
                found.append("slowest-group index has a stale key for dp\(g)")
            }
        }
        if total != totalRunning { found.append("slowest-group index counts \(totalRunning) running, the groups \(total)") }
        for r in buckets.indices.dropFirst() {
            let members = buckets[r]
            if members.isEmpty != (occupiedPosition[r] < 0) { found.append("slowest-group bucket \(r) is misfiled") }
            if members.contains(where: { running[Int($0)] != r }) { found.append("slowest-group bucket \(r) holds another size") }
            for i in members.indices.dropFirst() where !Self.precedes(members[i - 1], members[i], key) {
                found.append("slowest-group bucket \(r) is out of order at \(i)")
            }
        }
        return found
    }

    // MARK: Internals

    /// Bucket order: higher `key` first, then the lower group.
    private static func precedes(_ a: Int32, _ b: Int32, _ key: [Double]) -> Bool {
        let ka = key[Int(a)], kb = key[Int(b)]
        return ka > kb || (ka == kb && a < b)
    }

    /// Where `g` (with key `k`) goes in `members`: the first member it precedes (a binary search
    /// through the buffers: a copy of the bucket and the keys per probe cost more than the search).
    @inline(__always)
    private static func position(of g: Int32, key k: Double, in members: UnsafeMutableBufferPointer<Int32>,
                                 keys: UnsafeBufferPointer<Double>) -> Int {
        var low = 0, high = members.count
        while low < high {
            let mid = (low &+ high) &>> 1
            let m = members[mid], km = keys[Int(m)]
            if km > k || (km == k && m < g) { low = mid &+ 1 } else { high = mid }
        }
        return low
    }

    /// Moves `count` members from `from` to `to` (one place either way): element by element for
    /// a few, a memmove for more (a bucket holds up to all the groups of its size).
    @inline(__always)
    private static func shift(_ members: UnsafeMutableBufferPointer<Int32>, from: Int, to: Int, count: Int) {
        guard count > 0 else { return }
        let base = members.baseAddress!
        guard count > 16 else {
            if to > from {
                var i = count
                while i > 0 {
                    i &-= 1
                    base[to &+ i] = base[from &+ i]
                }
            } else {
                for i in 0..<count { base[to &+ i] = base[from &+ i] }
            }
            return
        }
        (base + to).update(from: base + from, count: count)  // overlapping: a memmove
    }

    /// Files `g` (its key current) in bucket `r`, shifting the members after it by one.
    private mutating func insert(_ g: Int, into r: Int) {
        while buckets.count <= r {
            buckets.append([])
            occupiedPosition.append(-1)
        }
        let me = Int32(truncatingIfNeeded: g), k = key[g]
        buckets[r].append(me)  // room at the end, then moved into place
        key.withUnsafeBufferPointer { keys in
            buckets[r].withUnsafeMutableBufferPointer { members in
                let last = members.count &- 1
                let at = Self.position(of: me, key: k, in: UnsafeMutableBufferPointer(rebasing: members[..<last]), keys: keys)
                Self.shift(members, from: at, to: at &+ 1, count: last &- at)
                members[at] = me
            }
        }
        if occupiedPosition[r] < 0 {
            occupiedPosition[r] = occupied.count
            occupied.append(r)
        }
    }

    /// Takes `g` (filed under its current key) out of bucket `r`.
    private mutating func remove(_ g: Int, from r: Int) {
        guard r < buckets.count else { return }
        let me = Int32(truncatingIfNeeded: g), k = key[g]
        let found = key.withUnsafeBufferPointer { keys in
            buckets[r].withUnsafeMutableBufferPointer { members -> Bool in
                let at = Self.position(of: me, key: k, in: members, keys: keys)
                guard at < members.count, members[at] == me else { return false }
                Self.shift(members, from: at &+ 1, to: at, count: members.count &- at &- 1)
                return true
            }
        }
        guard found else { return }
        buckets[r].removeLast()
        guard buckets[r].isEmpty else { return }
        let slot = occupiedPosition[r]
        let last = occupied.removeLast()
        if last != r {
            occupied[slot] = last
            occupiedPosition[last] = slot
        }
        occupiedPosition[r] = -1
    }
}
