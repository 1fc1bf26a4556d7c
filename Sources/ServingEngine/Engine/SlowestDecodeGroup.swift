/// The slowest DP group of a decode TE's next step, kept as its batches change instead of found
/// by a scan of every group per step (the scan walked all 320 groups of the superpod's decode TE
/// every step: a fifth of the Mooncake hour's instructions).
///
/// A decode step waits for the group whose attention takes longest: `running × (per-request +
/// per-token × mean context)` (``ServingEngine/decodeStepSeconds(_:)``). Mathematically that is
/// `running × perRequest + perToken × (K + running × step × tokensPerStep)` with `K = promptSum −
/// joinStepSum × tokensPerStep` fixed while the group's batch does not change. So among groups
/// with the same number of running requests, the order by attention is the order by `K`, the
/// same at every step: groups sit in buckets by `running`, each knowing its highest `K`. A step
/// looks at the highest of each bucket (a handful of distinct batch sizes, not 320 groups), finds
/// the best estimate `M`, and then evaluates the exact formula of the scan — the same operations
/// in the same order, so the same bits — for every group whose estimate is within a slack of `M`,
/// walking each bucket whose highest is from its highest `K` down to the first group below.
///
/// A bucket is a linked list, sorted only when a step walks it: a join or a leave moves its group
/// between two lists in O(1) (a leave keeps a list sorted; a join puts the group first, and the
/// list's unsorted front is counted), and a walk first merges that front into the rest. Sorted
/// arrays cost each join and leave a search, a shift and nested arrays' copy checks (issue 12:
/// 31 M of a saturated superpod's 120 s, a join or leave per request); unsorted lists walked
/// whole cost the Mooncake hour, with its many steps between changes, 34 M. The slack (1e-11 relative to the
/// magnitudes involved) is thousands of times the rounding of either formula (≈ 1e-15
/// relative), so the scan's pick, the lowest-indexed group of the highest exact attention, is
/// always among those evaluated, and is picked the same way. Cost models this does not cover (negative or non-finite rates, steps near 2⁵⁰)
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

    /// A group: the batch figures the step cost reads, `K`, and its links in its bucket's list.
    private struct Member: Equatable {
        var running = 0
        var promptSum = 0
        var joinStepSum = 0
        var key = 0.0
        /// The next and the previous group of its bucket (-1: none); unused while not running.
        var next: Int32 = -1
        var previous: Int32 = -1
    }

    /// The groups of one running count: the first of its list, how many, their highest `K`,
    /// where the bucket sits in ``occupied`` (-1: empty), and how many groups at the front of the
    /// list may be out of order (at most; the rest is ordered by ``precedes(_:_:_:)``).
    private struct Bucket: Equatable {
        var first: Int32 = -1
        var count = 0
        var highestKey = -Double.infinity
        var occupiedAt = -1
        var unsortedFront = 0
    }

    /// Per group, in one array (one copy check per update, not one per figure).
    private var members: [Member]
    /// By running count (index = running; 0 unused), grown as larger counts appear.
    private var buckets: [Bucket]
    /// The running counts whose bucket is not empty (any order): the first `occupiedCount`
    /// entries. At most one per group, so sized once.
    private var occupied: [Int32]
    private var occupiedCount = 0
    /// Room for a bucket's unsorted front while a walk sorts it (one entry per group).
    private var scratch: [Int32]

    /// An unbuilt index: no groups, ignores updates until ``prepare(batches:tokensPerStep:)``.
    init() {
        tokensPerStep = 0
        isBuilt = false
        members = []
        buckets = [Bucket()]
        occupied = []
        scratch = []
    }

    init(batches: DecodeBatchFigures, tokensPerStep: Double) {
        self.tokensPerStep = tokensPerStep
        isBuilt = true
        let count = batches.count
        members = Array(repeating: Member(), count: count)
        buckets = [Bucket()]
        occupied = Array(repeating: 0, count: count)
        scratch = Array(repeating: 0, count: count)
        for g in 0..<count {
            update(g, running: batches.running[g], promptSum: batches.promptSum[g], joinStepSum: batches.joinStepSum[g])
        }
    }

    var groupCount: Int { members.count }

    /// Builds the index from `batches` unless it already describes them (same count, same
    /// tokens per step).
    mutating func prepare(batches: DecodeBatchFigures, tokensPerStep: Double) {
        guard !isBuilt || members.count != batches.count || self.tokensPerStep != tokensPerStep else { return }
        self = SlowestDecodeGroup(batches: batches, tokensPerStep: tokensPerStep)
    }

    /// Group `g`'s batch changed: its figures are stored and it moves to its new bucket.
    mutating func update(_ g: Int, running newRunning: Int, promptSum newPromptSum: Int, joinStepSum newJoinStepSum: Int) {
        guard g >= 0, g < members.count else { return }
        if newRunning >= buckets.count {
            buckets.append(contentsOf: repeatElement(Bucket(), count: newRunning + 1 - buckets.count))
        }
        let key = Double(newPromptSum) - Double(newJoinStepSum) * tokensPerStep
        let figures = Member(running: newRunning, promptSum: newPromptSum, joinStepSum: newJoinStepSum, key: key)
        // Through the buffers: every array is sized already (buckets above, `occupied` at build).
        let old = members.withUnsafeMutableBufferPointer { members in
            buckets.withUnsafeMutableBufferPointer { buckets in
                occupied.withUnsafeMutableBufferPointer { occupied in
                    var lists = Lists(members: members, buckets: buckets, occupied: occupied, occupiedCount: occupiedCount)
                    let old = members[g].running
                    if old > 0 { lists.unfile(g, from: old) }
                    members[g] = figures
                    if newRunning > 0 { lists.file(g, in: newRunning) }
                    occupiedCount = lists.occupiedCount
                    return old
                }
            }
        }
        totalRunning += max(0, newRunning) - max(0, old)
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
        for i in 0..<occupiedCount {
            let r = Int(occupied[i])
            best = max(best, estimate(r, buckets[r].highestKey))
            largest = max(largest, r)
        }
        guard Double(largest) * s * t < 1e15, best.isFinite else { return nil }
        let slack = 1e-11 * (abs(best) + perRequest * Double(largest) + perToken * Double(largest) * s * t)
        let threshold = best - slack
        var slowest = -1, slowestAttention = -1.0, slowestMean = 0.0
        for i in 0..<occupiedCount {
            let r = Int(occupied[i])
            // The estimate grows with `K` (perToken ≥ 0): a bucket whose highest is below the
            // threshold has no candidate, and a sorted one none past its first group below.
            if estimate(r, buckets[r].highestKey) < threshold { continue }
            if buckets[r].unsortedFront > 0 { sortList(r) }
            var member = buckets[r].first
            while member >= 0 {
                let g = Int(member)
                member = members[g].next
                if estimate(r, members[g].key) < threshold { break }
                let (attention, mean) = Self.attention(running: r, promptSum: members[g].promptSum,
                                                       joinStepSum: members[g].joinStepSum, step: step,
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
        return (members[slowest].running, slowestMean, totalRunning)
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
        guard batches.count == members.count else {
            return ["slowest-group index covers \(members.count) groups of \(batches.count)"]
        }
        var found: [String] = []
        var total = 0
        // Each bucket's list walked (at most one step per group: a longer walk is a cycle).
        var filed = [(bucket: Int, times: Int)](repeating: (0, 0), count: members.count)
        var occupiedSeen = 0
        for r in buckets.indices.dropFirst() {
            let bucket = buckets[r]
            var member = bucket.first, previous: Int32 = -1, walked = 0, highest = -Double.infinity
            while member >= 0 && Int(member) < members.count && walked <= members.count {
                let g = Int(member)
                filed[g] = (r, filed[g].times + 1)
                if members[g].running != r { found.append("slowest-group bucket \(r) holds dp\(g) of another size") }
                if members[g].previous != previous { found.append("slowest-group bucket \(r) links dp\(g) back wrongly") }
                highest = max(highest, members[g].key)
                walked += 1
                previous = member
                member = members[g].next
            }
            if walked != bucket.count { found.append("slowest-group bucket \(r) counts \(bucket.count), lists \(walked)") }
            if !isOrdered(from: bucket.first, skipping: bucket.unsortedFront) {
                found.append("slowest-group bucket \(r) is out of order past its unsorted front")
            }
            if walked > 0 && highest != bucket.highestKey { found.append("slowest-group bucket \(r) has a stale highest key") }
            let listed = bucket.occupiedAt >= 0 && bucket.occupiedAt < occupiedCount && Int(occupied[bucket.occupiedAt]) == r
            if (bucket.count > 0) != listed || (bucket.count == 0 && bucket.occupiedAt != -1) {
                found.append("slowest-group bucket \(r) is misfiled")
            }
            if bucket.count > 0 { occupiedSeen += 1 }
        }
        if occupiedSeen != occupiedCount { found.append("slowest-group index lists \(occupiedCount) sizes, \(occupiedSeen) hold groups") }
        for g in 0..<batches.count {
            let m = members[g]
            if m.running != batches.running[g] || m.promptSum != batches.promptSum[g] || m.joinStepSum != batches.joinStepSum[g] {
                found.append("slowest-group index is stale for dp\(g): running \(m.running), prompt sum \(m.promptSum), "
                    + "join-step sum \(m.joinStepSum); the group has \(batches.running[g]), \(batches.promptSum[g]), "
                    + "\(batches.joinStepSum[g])")
            }
            total += max(0, batches.running[g])
            if m.running > 0 ? filed[g] != (m.running, 1) : filed[g].times != 0 {
                found.append("slowest-group index files dp\(g) (running \(m.running)) \(filed[g].times) times, in bucket \(filed[g].bucket)")
            }
            if m.key != Double(m.promptSum) - Double(m.joinStepSum) * tokensPerStep {
                found.append("slowest-group index has a stale key for dp\(g)")
            }
        }
        if total != totalRunning { found.append("slowest-group index counts \(totalRunning) running, the groups \(total)") }
        return found
    }

    /// Whether the list from `first`, past its first `skipping` groups, is in order.
    private func isOrdered(from first: Int32, skipping: Int) -> Bool {
        var member = first, skipped = 0, steps = 0
        while member >= 0 && skipped < skipping && steps <= members.count {
            member = members[Int(member)].next
            skipped += 1
            steps += 1
        }
        while member >= 0 && steps <= members.count {
            let next = members[Int(member)].next
            if next >= 0 {
                let (a, b) = (members[Int(member)].key, members[Int(next)].key)
                if !(a > b || (a == b && member < next)) { return false }
            }
            member = next
            steps += 1
        }
        return true
    }

    // MARK: Internals

    /// List order: higher `K` first, then the lower group.
    @inline(__always)
    private static func precedes(_ a: Int32, _ b: Int32, _ members: UnsafeMutableBufferPointer<Member>) -> Bool {
        let ka = members[Int(a)].key, kb = members[Int(b)].key
        return ka > kb || (ka == kb && a < b)
    }

    /// Sorts bucket `r`'s list: its unsorted front is taken off, sorted by insertion (a few
    /// groups: the joins since the bucket was last walked), and merged with the sorted rest.
    private mutating func sortList(_ r: Int) {
        members.withUnsafeMutableBufferPointer { members in
            buckets.withUnsafeMutableBufferPointer { buckets in
                scratch.withUnsafeMutableBufferPointer { front in
                    let taken = min(buckets[r].unsortedFront, buckets[r].count)
                    var rest = buckets[r].first
                    for i in 0..<taken {
                        let me = rest
                        rest = members[Int(me)].next
                        var at = i
                        while at > 0 && Self.precedes(me, front[at - 1], members) {
                            front[at] = front[at - 1]
                            at -= 1
                        }
                        front[at] = me
                    }
                    var head: Int32 = -1, tail: Int32 = -1, i = 0
                    while i < taken || rest >= 0 {
                        let next: Int32
                        if rest < 0 || (i < taken && Self.precedes(front[i], rest, members)) {
                            next = front[i]
                            i += 1
                        } else {
                            next = rest
                            rest = members[Int(rest)].next
                        }
                        members[Int(next)].previous = tail
                        if tail >= 0 { members[Int(tail)].next = next } else { head = next }
                        tail = next
                    }
                    if tail >= 0 { members[Int(tail)].next = -1 }
                    buckets[r].first = head
                    buckets[r].unsortedFront = 0
                }
            }
        }
    }

    /// The buckets' lists, edited through the buffers of one update.
    private struct Lists {
        let members: UnsafeMutableBufferPointer<Member>
        let buckets: UnsafeMutableBufferPointer<Bucket>
        let occupied: UnsafeMutableBufferPointer<Int32>
        var occupiedCount: Int

        /// Puts `g` (its figures and key current) first in bucket `r`'s list: out of order, unless
        /// the list was sorted and `g` precedes its first.
        mutating func file(_ g: Int, in r: Int) {
            let me = Int32(truncatingIfNeeded: g), head = buckets[r].first
            if buckets[r].unsortedFront > 0 || (head >= 0 && !SlowestDecodeGroup.precedes(me, head, members)) {
                buckets[r].unsortedFront &+= 1
            }
            members[g].next = head
            members[g].previous = -1
            if head >= 0 { members[Int(head)].previous = me }
            buckets[r].first = me
            buckets[r].count &+= 1
            let key = members[g].key
            if buckets[r].count == 1 {
                buckets[r].highestKey = key
                buckets[r].occupiedAt = occupiedCount
                occupied[occupiedCount] = Int32(truncatingIfNeeded: r)
                occupiedCount &+= 1
            } else if key > buckets[r].highestKey {
                buckets[r].highestKey = key
            }
        }

        /// Takes `g` out of bucket `r`'s list; the bucket's highest key is found again when `g`
        /// held it (a walk of the bucket, a handful of groups).
        mutating func unfile(_ g: Int, from r: Int) {
            let next = members[g].next, previous = members[g].previous
            if previous >= 0 { members[Int(previous)].next = next } else { buckets[r].first = next }
            if next >= 0 { members[Int(next)].previous = previous }
            // The rest of a sorted list stays sorted (its unsorted front only shrinks).
            buckets[r].count &-= 1
            guard buckets[r].count > 0 else {
                buckets[r].unsortedFront = 0
                // Empty: out of the occupied sizes (the last one takes its place).
                let at = buckets[r].occupiedAt
                occupiedCount &-= 1
                let last = Int(occupied[occupiedCount])
                occupied[at] = Int32(truncatingIfNeeded: last)
                buckets[last].occupiedAt = at
                buckets[r].occupiedAt = -1
                buckets[r].highestKey = -.infinity
                return
            }
            guard !(members[g].key < buckets[r].highestKey) else { return }
            var highest = -Double.infinity
            var member = buckets[r].first
            while member >= 0 {
                highest = max(highest, members[Int(member)].key)
                member = members[Int(member)].next
            }
            buckets[r].highestKey = highest
        }
    }
}
