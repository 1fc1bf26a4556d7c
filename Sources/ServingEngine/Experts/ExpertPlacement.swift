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
    /// MoE layers and logical experts per layer.
    public private(set) var layerCount: Int
    public private(set) var experts: Int
    /// The hosts of expert `e` in layer `l` are `hostDies[hostStart[l * experts + e] ..<
    /// hostStart[l * experts + e + 1]]`, in the order they were given: one contiguous buffer per
    /// placement (issue 12: a plan or swap built and freed 58 × 256 nested arrays, ~11% of a
    /// Mooncake replay in allocation and release alone).
    private(set) var hostStart: [Int32]
    private(set) var hostDies: [Int32]
    /// Per slot (parallel to `hostDies`): the expert it holds and that expert's replica count in
    /// its layer, derived once per placement so that ``hottestShares(popularity:)`` walks slots
    /// in one flat loop (issue 12: it runs on every drift, plan and swap of every TE; the walk by
    /// expert through `hostStart` cost twice as much).
    private var slotExpert: [Int32] = []
    private var slotReplicas: [Double] = []
    /// Every layer's slots sit one per die, on every die (a decode TE with one expert per die):
    /// a die's load is then its one slot's share, so ``hottestShares(popularity:)`` needs no
    /// per-die sums. Worked out once, when the placement is made.
    private(set) var oneSlotPerDie = false

    /// A placement from nested rows: `layers[l][e]` lists the dies holding expert `e` of layer `l`.
    public init(dies: Int, slotsPerDie: Int, layers: [[[Int]]]) {
        var builder = Builder(layers: layers.count, experts: layers.first?.count ?? 0, hosts: 0)
        for row in layers {
            for hosts in row {
                for d in hosts { builder.add(d) }
                builder.closeExpert()
            }
        }
        self = builder.placement(dies: dies, slotsPerDie: slotsPerDie)
    }

    /// `coversDiesOnce`: the maker knows every layer's slots to be one per die, on every die (the
    /// greedy planner's one-slot layers, by construction); nil: checked here.
    private init(dies: Int, slotsPerDie: Int, layerCount: Int, experts: Int, hostStart: [Int32], hostDies: [Int32],
                 slots: (experts: [Int32], replicas: [Double])?, coversDiesOnce: Bool? = nil) {
        self.dies = dies
        self.slotsPerDie = slotsPerDie
        self.layerCount = layerCount
        self.experts = experts
        self.hostStart = hostStart
        self.hostDies = hostDies
        if let slots, slots.experts.count == hostDies.count, slots.replicas.count == hostDies.count,
           hostStart.count == layerCount * experts + 1 {
            (slotExpert, slotReplicas) = slots
        } else {
            deriveSlots()
        }
        // (The maker's word is taken only with the shape it implies: derived slot arrays, a flat
        // layout, a slot per die per layer.)
        if coversDiesOnce == true, dies > 0, slotExpert.count == hostDies.count,
           hostStart.count == layerCount * experts + 1, hostDies.count == layerCount * dies {
            oneSlotPerDie = true
        } else {
            oneSlotPerDie = slotsCoverDiesOnce()
        }
    }

    /// Whether each layer's slots are exactly one per die (the slot arrays derived).
    func slotsCoverDiesOnce() -> Bool {
        guard dies > 0, slotExpert.count == hostDies.count, hostStart.count == layerCount * experts + 1,
              hostDies.count == layerCount * dies, layerCount < Int(UInt32.max) else { return false }
        // Per die, the last layer (plus one) that put a slot on it: a die seen twice in a layer
        // finds its layer's mark, and no per-layer reset is needed (issue 12: every placement of a
        // one-slot-per-die TE, each plan and swap, walked and cleared a flag per die per layer).
        let mark = UnsafeMutableBufferPointer<UInt32>.allocate(capacity: dies)
        defer { mark.deallocate() }
        mark.initialize(repeating: 0)
        let (layerCount, experts, dies) = (self.layerCount, self.experts, self.dies)
        return hostStart.withUnsafeBufferPointer { starts in
            hostDies.withUnsafeBufferPointer { hosts in
                for l in 0..<layerCount {
                    let from = Int(starts[l * experts]), to = Int(starts[(l + 1) * experts])
                    guard to - from == dies else { return false }
                    let layer = UInt32(truncatingIfNeeded: l + 1)
                    var s = from
                    while s < to {
                        let d = Int(hosts[s])
                        guard d >= 0, d < dies, mark[d] != layer else { return false }
                        mark[d] = layer
                        s &+= 1
                    }
                }
                return true
            }
        }
    }

    /// Fills ``slotExpert`` and ``slotReplicas`` from the host buffers (placements not written
    /// through ``Builder/appendExperts(_:hosts:_:)``, which writes them with the hosts).
    private mutating func deriveSlots() {
        let perLayer = experts, layerCount = self.layerCount
        // Ragged rows (hand-made placements only) keep no slot arrays: the walk by expert serves them.
        guard hostStart.count == layerCount * perLayer + 1 else { return }
        var experts = [Int32](repeating: 0, count: hostDies.count)
        var replicas = [Double](repeating: 0, count: hostDies.count)
        experts.withUnsafeMutableBufferPointer { experts in
            replicas.withUnsafeMutableBufferPointer { replicas in
                // No host, no slot to write (an empty array may have no buffer).
                guard let experts = experts.baseAddress, let replicas = replicas.baseAddress else { return }
                hostStart.withUnsafeBufferPointer { starts in
                    var i = 0
                    for _ in 0..<layerCount {
                        for e in 0..<perLayer {
                            Self.writeSlots(of: e, from: Int(starts[i]), to: Int(starts[i + 1]),
                                            experts: experts, replicas: replicas)
                            i += 1
                        }
                    }
                }
            }
        }
        slotExpert = experts
        slotReplicas = replicas
    }

    /// Writes expert `expert`'s run of slots `from ..< to` of the per-slot arrays: each slot holds
    /// the expert and its replica count (the run's length). The one writer of those arrays, for
    /// placements derived from their hosts and for those a ``Builder`` writes.
    @inline(__always)
    static func writeSlots(of expert: Int, from: Int, to: Int, experts: UnsafeMutablePointer<Int32>,
                           replicas: UnsafeMutablePointer<Double>) {
        let count = Double(Int32(truncatingIfNeeded: to - from))
        let e = Int32(truncatingIfNeeded: expert)
        var s = from
        while s < to {
            experts[s] = e
            replicas[s] = count
            s += 1
        }
    }

    /// Equal when they place the same hosts (the per-slot arrays are derived from them).
    public static func == (a: Self, b: Self) -> Bool {
        a.dies == b.dies && a.slotsPerDie == b.slotsPerDie && a.layerCount == b.layerCount && a.experts == b.experts
            && a.hostStart == b.hostStart && a.hostDies == b.hostDies
    }

    /// Whether `other` is a copy of this placement: the same buffers, so the same hosts. O(1)
    /// (``==`` walks buffers that are equal but apart); implies `==`.
    func isCopy(of other: ExpertPlacement) -> Bool {
        dies == other.dies && slotsPerDie == other.slotsPerDie && layerCount == other.layerCount
            && experts == other.experts && hostStart.sharesStorage(with: other.hostStart)
            && hostDies.sharesStorage(with: other.hostDies)
    }

    /// Writes a placement expert by expert, layer by layer, into its two buffers.
    struct Builder {
        private var starts: [Int32]
        private var hosts: [Int32]
        /// Parallel to `hosts`: each host's expert and that expert's replica count (the
        /// placement's per-slot arrays), kept only while every host comes through
        /// ``appendExperts(_:hosts:_:)``; a host added one by one drops them (derived at the end).
        private var slotExpert: [Int32] = []
        private var slotReplicas: [Double] = []
        private var slotsKept = true
        private let layers: Int
        private let experts: Int
        init(layers: Int, experts: Int, hosts capacity: Int) {
            self.layers = layers
            self.experts = experts
            starts = [0]
            starts.reserveCapacity(layers * experts + 1)
            hosts = []
            // At least one element each, so that their buffers exist (``appendExperts`` hands out
            // their addresses even when it writes no host).
            hosts.reserveCapacity(max(1, capacity))
            slotExpert.reserveCapacity(max(1, capacity))
            slotReplicas.reserveCapacity(max(1, capacity))
        }
        /// The next host of the expert being written.
        @inline(__always)
        mutating func add(_ die: Int) {
            hosts.append(Int32(truncatingIfNeeded: die))
            if slotsKept {
                slotsKept = false
                slotExpert = []
                slotReplicas = []
            }
        }
        /// The expert being written is complete; the next call writes the next expert.
        @inline(__always)
        mutating func closeExpert() { starts.append(Int32(truncatingIfNeeded: hosts.count)) }

        /// Where ``appendExperts(_:hosts:_:)``'s `fill` writes: per expert its end offset into the
        /// whole host buffer (`ends[i]`; the first new host is at `base`), and per host from 0 on
        /// its die, its expert (in its layer) and that expert's replica count.
        struct Room {
            let ends: UnsafeMutablePointer<Int32>
            let hosts: UnsafeMutablePointer<Int32>
            let slotExpert: UnsafeMutablePointer<Int32>
            let slotReplicas: UnsafeMutablePointer<Double>
            let base: Int32
            /// Writes hosts `from ..< to` as expert `expert`'s (its replicas: as many) and closes
            /// expert `i` there.
            @inline(__always)
            func close(_ i: Int, expert: Int, from: Int, to: Int) {
                ExpertPlacement.writeSlots(of: expert, from: from, to: to, experts: slotExpert, replicas: slotReplicas)
                ends[i] = base &+ Int32(truncatingIfNeeded: to)
            }

            /// ``close(_:expert:from:to:)`` for expert `e` with the one host the caller wrote at
            /// `k` (most experts): its slot written straight, `k` moved past it.
            @inline(__always)
            func closeSole(_ e: Int, at k: inout Int) {
                slotExpert[k] = Int32(truncatingIfNeeded: e)
                slotReplicas[k] = 1
                k &+= 1  // a position in the room: no overflow to check
                ends[e] = base &+ Int32(truncatingIfNeeded: k)
            }
        }

        /// Writes `count` experts at once into room for `room` hosts: `fill` writes them
        /// (``Room``) and returns how many hosts it wrote. No per-element append (issue 12: a
        /// plan writes 58 layers of ~288 hosts, a swap as many).
        mutating func appendExperts(_ count: Int, hosts room: Int, _ fill: (Room) -> Int) {
            guard count > 0 || room > 0 else { return }
            let endsAt = starts.count, hostsAt = hosts.count
            starts.append(contentsOf: repeatElement(0, count: count))
            hosts.append(contentsOf: repeatElement(0, count: room))
            // Without kept slot arrays the figures go to scratch (derived at the end instead).
            let keep = slotsKept
            if keep {
                slotExpert.append(contentsOf: repeatElement(0, count: room))
                slotReplicas.append(contentsOf: repeatElement(0, count: room))
            }
            let scratchExperts = keep ? nil : UnsafeMutablePointer<Int32>.allocate(capacity: max(1, room))
            let scratchReplicas = keep ? nil : UnsafeMutablePointer<Double>.allocate(capacity: max(1, room))
            defer {
                scratchExperts?.deallocate()
                scratchReplicas?.deallocate()
            }
            let written = starts.withUnsafeMutableBufferPointer { ends in
                hosts.withUnsafeMutableBufferPointer { out in
                    slotExpert.withUnsafeMutableBufferPointer { slotExpert in
                        slotReplicas.withUnsafeMutableBufferPointer { slotReplicas in
                            fill(Room(ends: ends.baseAddress! + endsAt, hosts: out.baseAddress! + hostsAt,
                                      slotExpert: scratchExperts ?? slotExpert.baseAddress! + hostsAt,
                                      slotReplicas: scratchReplicas ?? slotReplicas.baseAddress! + hostsAt,
                                      base: Int32(truncatingIfNeeded: hostsAt)))
                        }
                    }
                }
            }
            precondition(written >= 0 && written <= room, "more hosts than room")
            hosts.removeLast(room - written)
            if keep {
                slotExpert.removeLast(room - written)
                slotReplicas.removeLast(room - written)
            }
        }

        /// The placement written. `coversDiesOnce`: the writer knows each layer's slots to be one
        /// per die, on every die (not checked again: see ``ExpertPlacement/oneSlotPerDie``).
        func placement(dies: Int, slotsPerDie: Int, coversDiesOnce: Bool = false) -> ExpertPlacement {
            ExpertPlacement(dies: dies, slotsPerDie: slotsPerDie, layerCount: layers, experts: experts,
                            hostStart: starts, hostDies: hosts, slots: slotsKept ? (slotExpert, slotReplicas) : nil,
                            coversDiesOnce: coversDiesOnce ? true : nil)
        }
    }

    /// This placement without its slots on `lost` dies (a decode TE's vertical shrink, system.md
    /// §4: the excess replicas on the lost dies are dropped and their tokens go to the expert's
    /// other replicas). An expert whose every host in a layer is lost keeps them all there: an
    /// expert never loses its last serving replica (the shrink is chosen only when none would).
    /// The die count stays: lost dies are left empty, the others keep their indices.
    func dropping(dies lost: Set<Int>) -> ExpertPlacement {
        guard !lost.isEmpty else { return self }
        var builder = Builder(layers: layerCount, experts: experts, hosts: hostDies.count)
        for l in 0..<layerCount {
            for e in 0..<experts {
                let range = hostRange(l, e)
                let kept = range.filter { !lost.contains(Int(hostDies[$0])) }
                for s in kept.isEmpty ? Array(range) : kept { builder.add(Int(hostDies[s])) }
                builder.closeExpert()
            }
        }
        return builder.placement(dies: dies, slotsPerDie: slotsPerDie)
    }

    /// This placement, planned for `map.count` dies, laid onto dies `map` of a TE with `dies`
    /// dies: its die `k` becomes `map[k]`, the dies not in `map` hold nothing (a decode TE back
    /// from a restart without its lost dies: its experts planned over the live ones, every die
    /// keeping its index).
    func onto(dies map: [Int], of dies: Int) -> ExpertPlacement {
        var builder = Builder(layers: layerCount, experts: experts, hosts: hostDies.count)
        for l in 0..<layerCount {
            for e in 0..<experts {
                for s in hostRange(l, e) { builder.add(map[Int(hostDies[s])]) }
                builder.closeExpert()
            }
        }
        return builder.placement(dies: dies, slotsPerDie: slotsPerDie)
    }

    /// Where expert `e`'s hosts of layer `l` sit in the host buffer.
    @inline(__always)
    func hostRange(_ l: Int, _ e: Int) -> Range<Int> {
        let i = l &* experts &+ e
        return Int(hostStart[i])..<Int(hostStart[i &+ 1])
    }

    /// The dies holding expert `e` of layer `l`.
    public func hosts(layer l: Int, expert e: Int) -> [Int] { hostRange(l, e).map { Int(hostDies[$0]) } }

    /// Layer `l` as rows: `layer(l)[e]` lists expert `e`'s dies.
    public func layer(_ l: Int) -> [[Int]] { (0..<experts).map { hosts(layer: l, expert: $0) } }

    /// Every layer as rows (`layers[l][e]` lists the dies of expert `e` in layer `l`): built on
    /// each read, for tests and faces; the engine walks the flat buffers.
    public var layers: [[[Int]]] { (0..<layerCount).map { layer($0) } }

    /// Reads the host buffers (`starts`, `hosts` as described at ``hostStart``) in place.
    @inline(__always)
    func withBuffers<R>(_ body: (UnsafeBufferPointer<Int32>, UnsafeBufferPointer<Int32>) throws -> R) rethrows -> R {
        try hostStart.withUnsafeBufferPointer { starts in try hostDies.withUnsafeBufferPointer { try body(starts, $0) } }
    }

    /// Reads the per-slot arrays (each slot's expert and replica count, parallel to the hosts) in
    /// place; nil when the placement keeps none (ragged hand-made rows).
    @inline(__always)
    func withSlots<R>(_ body: (UnsafeBufferPointer<Int32>, UnsafeBufferPointer<Double>) throws -> R) rethrows -> R? {
        guard slotExpert.count == hostDies.count, slotReplicas.count == hostDies.count,
              hostStart.count == layerCount * experts + 1 else { return nil }
        return try slotExpert.withUnsafeBufferPointer { e in try slotReplicas.withUnsafeBufferPointer { try body(e, $0) } }
    }

    /// Static layout: expert e on die e mod dies; the spare slots copy experts 0, 1, 2, …
    public static func roundRobin(experts: Int, layers: Int, dies: Int, slotsPerDie: Int) -> ExpertPlacement {
        let slots = dies * slotsPerDie
        var row = (0..<experts).map { [$0 % dies] }
        for extra in 0..<max(0, slots - experts) {
            row[extra % experts].append((experts + extra) % dies)
        }
        var builder = Builder(layers: layers, experts: experts, hosts: layers * max(experts, slots))
        for _ in 0..<layers {
            for hosts in row {
                for d in hosts { builder.add(d) }
                builder.closeExpert()
            }
        }
        return builder.placement(dies: dies, slotsPerDie: slotsPerDie)
    }

    /// system.md §4's planner: place every expert once, hottest first, on the least-loaded die with
    /// a free slot; then spend the remaining (redundant) slots one by one on the expert with the
    /// highest load per replica, each new replica on the least-loaded die with a free slot.
    public static func greedy(popularity: ExpertPopularity, dies: Int, slotsPerDie: Int) -> ExpertPlacement {
        var none = PlanningOrders()
        return greedy(popularity: popularity, dies: dies, slotsPerDie: slotsPerDie, orders: &none)
    }

    /// ``greedy(popularity:dies:slotsPerDie:)`` sorting each layer's experts from the order the
    /// last plan found for that layer (`orders`, updated here). The placement is the same
    /// whatever `orders` holds: the hottest-first order is a strict total order, so only the
    /// sort's work depends on where it starts. Successive plans (the prefill TEs at one EPLB
    /// tick, a TE from one window to the next) see similar loads, so the last order is nearly
    /// sorted and an insertion pass finishes it (issue 12: the sort was a third of a plan).
    public static func greedy(popularity: ExpertPopularity, dies: Int, slotsPerDie: Int,
                              orders: inout PlanningOrders) -> ExpertPlacement {
        // One die pool, one sort buffer and one host list for all layers: a plan is 58 layers,
        // planned for every TE on every EPLB window (issue 12), and allocating per layer was a
        // large share.
        let experts = popularity.experts
        var pool = DiePool(dies: dies, slotsPerDie: slotsPerDie)
        var order = [Int32]()
        order.reserveCapacity(experts)
        let slots = max(experts, dies * max(0, slotsPerDie))
        let hosts = LayerHosts(experts: experts, capacity: slots)
        var builder = Builder(layers: popularity.layers.count, experts: experts, hosts: popularity.layers.count * slots)
        if orders.sorted.count != popularity.layers.count { orders.sorted = Array(repeating: [], count: popularity.layers.count) }
        let trusted = orders.fromPlanner
        // The one-slot layers' scratch (``OneSlotLayer``), when there are such layers.
        let oneSlot = slotsPerDie == 1 ? OneSlotLayer(experts: experts, dies: dies) : nil
        for (l, row) in popularity.layers.enumerated() {
            let written = row.withUnsafeBufferPointer { load -> Bool in
                if let oneSlot, load.count == experts {
                    let strict = hottestFirst(load: load, into: &order, from: orders.sorted[l], permutation: trusted)
                    if strict {
                        oneSlot.place(load: load, order: order, into: &builder)
                        return true
                    }
                }
                greedyLayer(load: load, pool: &pool, order: &order, hint: orders.sorted[l], hintIsPermutation: trusted,
                            hosts: hosts)
                return false
            }
            if !written { hosts.write(into: &builder) }
            // This layer's order is the next plan's starting point; the old hint's buffer becomes
            // the scratch for the next layer (no allocation).
            swap(&orders.sorted[l], &order)
        }
        // Every layer now holds the order its sort wrote: a permutation of its experts.
        orders.fromPlanner = true
        // One slot per die: each layer's primaries take dies 0, 1, 2, … and its redundant replicas
        // the rest in turn (``oneSlotLayer``), so with an expert to place in every layer each die
        // holds exactly one slot per layer: no walk of the hosts to find it out (issue 12).
        let coversDiesOnce = slotsPerDie == 1 && dies > 0 && experts > 0
            && popularity.layers.allSatisfy { $0.count == experts }
        return builder.placement(dies: dies, slotsPerDie: slotsPerDie, coversDiesOnce: coversDiesOnce)
    }

    /// One layer of ``greedy(popularity:dies:slotsPerDie:)`` on reused buffers (`pool` is reset
    /// here; `order` is scratch), its hosts left in `hosts` (reset here): a plan's 58 layers share
    /// them.
    static func greedyLayer(load: UnsafeBufferPointer<Double>, pool dies: inout DiePool, order: inout [Int32],
                            hint: [Int32] = [], hintIsPermutation: Bool = false, hosts: LayerHosts) {
        // Primaries, hottest first (ties by expert id keep it deterministic): a strict total
        // order, so any sort gives the same sequence.
        let strict = hottestFirst(load: load, into: &order, from: hint, permutation: hintIsPermutation)
        hosts.reset()
        if dies.slotsPerDie == 1 {
            return oneSlotLayer(load: load, order: order, strict: strict, dies: dies.dies, hosts: hosts)
        }
        // Loads far from overflow (their magnitudes sum to a plain number; a NaN or ∞ fails the
        // test) keep every die load a plain number, no ∞ − ∞ in an adjust: the pool's order is
        // then total and its root answers most exclusions as it stands.
        var magnitudes = 0.0
        for x in load { magnitudes += x.magnitude }
        let plain = magnitudes <= 1e300
        dies.reset()
        // (With plain loads the rest of the primaries go by the pool's queue, which rebuilds the tree.)
        var placed = dies.placeOnEmptyDies(order, load: load, hosts: hosts, rebuildingTree: !plain)
        let primaries = order
        if plain {
            placed = dies.placeInTurn(primaries, from: placed, load: load, hosts: hosts)
        } else {
            while placed < primaries.count {
                guard let d = dies.leastLoaded() else { break }
                let e = Int(primaries[placed])
                hosts.append(d, to: e)
                dies.place(load[e], on: d)
                placed += 1
            }
        }
        // Redundant slots: the expert with the most load per replica, next.
        guard dies.hasFreeSlot else { return }
        var hottest = strict ? MostLoadPerReplica(load: load, order: order, placedPrefix: placed)
            : MostLoadPerReplica(load: load, order: order, placed: { hosts.count($0) > 0 })
        let ordered = strict && plain
        while dies.hasFreeSlot, let top = hottest.popMax() {
            let e = top.expert
            guard let d = dies.leastLoaded(excludingHostsOf: e, in: hosts, ordered: ordered) else { continue }
            let replicas = hosts.count(e)
            let before = load[e] / Double(replicas)
            let after = load[e] / Double(replicas + 1)
            let delta = after - before
            var node = hosts.first(e)
            // A host's load only falls (ordered loads, delta ≤ 0): the cheaper walk that lets it
            // climb, the same tree.
            if ordered && delta <= 0 {
                while node >= 0 {
                    dies.lower(delta, on: hosts.die(node))
                    node = hosts.next(node)
                }
            } else {
                while node >= 0 {
                    dies.adjust(delta, on: hosts.die(node))
                    node = hosts.next(node)
                }
            }
            hosts.append(d, to: e)
            dies.place(after, on: d)
            hottest.insert(ExpertShare(share: after, expert: e))
        }
    }

    /// ``hottestFirst(load:into:)`` starting from `hint`, a permutation of the experts in the
    /// order an earlier, similar load sorted to (anything else is ignored): the keys are laid
    /// out in that order and an insertion pass sorts them, handing over to the full sort if the
    /// hint turns out far from the answer. The sequence is the same whatever the hint.
    ///
    /// The experts with the coldest load (the traffic's body, below the mean: most of a layer's
    /// experts share it, in collected counts too) tie on their key, so they come last in id
    /// order: only the others are laid out and sorted (issue 12: sorting all 256 of a layer
    /// overran the insertion pass's budget on half the layers of a Mooncake hour, 100 M
    /// instructions in sorts). Returns whether the order is the strict one (no load is NaN).
    @discardableResult
    static func hottestFirst(load: UnsafeBufferPointer<Double>, into order: inout [Int32], from hint: [Int32],
                             permutation known: Bool = false) -> Bool {
        let n = load.count
        guard hint.count == n, n > 1, n <= Int(Int32.max) else { return hottestFirst(load: load, into: &order) }
        // The coldest load. With no NaN, a load's key is the coldest (greatest) key exactly when
        // the load equals it as a Double (the key orders loads as `>` does, −0 with +0): the
        // keys are made for the hotter experts only (issue 12: a key per expert of every layer
        // of every plan, where most are the body's one load).
        // (Four lanes at a time, each keeping its coldest as the one loop did: the coldest found
        // may differ from the one loop's only in the sign of a zero, which every use below
        // compares equal.)
        var coldest = load[0]
        var nan = false
        var e = 0
        if n >= 4 {
            let base = UnsafeRawPointer(load.baseAddress!)
            var lanes = SIMD4<Double>(repeating: coldest)
            var notANumber = SIMDMask<SIMD4<Int64>>(repeating: false)
            while e &+ 4 <= n {
                let four = (base + e &* MemoryLayout<Double>.stride).loadUnaligned(as: SIMD4<Double>.self)
                notANumber .|= four .!= four
                lanes.replace(with: four, where: four .< lanes)
                e &+= 4
            }
            nan = any(notANumber)
            for lane in 0..<4 where lanes[lane] < coldest { coldest = lanes[lane] }
        }
        while e < n {
            let x = load[e]
            if x.isNaN { nan = true }
            if x < coldest { coldest = x }
            e &+= 1
        }
        guard !nan else { return hottestFirst(load: load, into: &order) }
        let keys = UnsafeMutableBufferPointer<HotterFirst>.allocate(capacity: n)
        defer { keys.deallocate() }
        // The experts hotter than the coldest, in the hint's order.
        var hot = 0
        if known {
            // A permutation of the experts (`known`: written by the planner).
            hint.withUnsafeBufferPointer { hint in
                for i in 0..<n {
                    let e = Int(hint[i])
                    let x = load[e]
                    if x != coldest {
                        keys[hot] = HotterFirst(key: hotterFirstKey(x), id: UInt32(truncatingIfNeeded: e))
                        hot &+= 1
                    }
                }
            }
        } else {
            // Checked in the same pass to be a permutation (a bit per expert).
            let usable = withUnsafeTemporaryAllocation(of: UInt64.self, capacity: (n + 63) >> 6) { seen -> Bool in
                seen.initialize(repeating: 0)
                return hint.withUnsafeBufferPointer { hint -> Bool in
                    for i in 0..<n {
                        let e = Int(hint[i])
                        guard seen.markOnce(e, below: n) else { return false }
                        let x = load[e]
                        if x != coldest {
                            keys[hot] = HotterFirst(key: hotterFirstKey(x), id: UInt32(truncatingIfNeeded: e))
                            hot &+= 1
                        }
                    }
                    return true
                }
            }
            guard usable else { return hottestFirst(load: load, into: &order) }
        }
        HotterFirst.sortNearlySorted(UnsafeMutableBufferPointer(rebasing: keys[0..<hot]), movesBudget: 3 * hot)
        order.removeAll(keepingCapacity: true)
        order.append(contentsOf: repeatElement(0, count: n))
        order.withUnsafeMutableBufferPointer { out in
            for i in 0..<hot { out[i] = Int32(truncatingIfNeeded: keys[i].id) }
            var k = hot
            for e in 0..<n where load[e] == coldest {
                out[k] = Int32(truncatingIfNeeded: e)
                k &+= 1
            }
        }
        return true
    }

    /// `order` becomes the keys' ids, in order (its buffer kept).
    @inline(__always)
    static func write(_ keys: UnsafeMutableBufferPointer<HotterFirst>, into order: inout [Int32]) {
        order.removeAll(keepingCapacity: true)
        order.append(contentsOf: repeatElement(0, count: keys.count))
        order.withUnsafeMutableBufferPointer { out in
            for i in 0..<keys.count { out[i] = Int32(truncatingIfNeeded: keys[i].id) }
        }
    }

    /// Expert ids by load, hottest first, lower id first on ties: a strict total order, so any
    /// correct sort gives this sequence. Each expert becomes an integer pair (load key, id),
    /// sorted in place by a plain quicksort: no closure and no load lookups per comparison (the
    /// standard library's sort through the load buffer cost ~49 k instructions per 256-expert
    /// layer, and ~69 k on 128-bit keys; a byte-wise radix sort ~87 k).
    @discardableResult
    static func hottestFirst(load: UnsafeBufferPointer<Double>, into order: inout [Int32]) -> Bool {
        let n = load.count
        order.removeAll(keepingCapacity: true)
        guard n <= Int(Int32.max), !load.contains(where: \.isNaN) else {
            // No total order to pack (a NaN load never comes from traffic): compare as before.
            for e in 0..<n { order.append(Int32(truncatingIfNeeded: e)) }
            order.withUnsafeMutableBufferPointer { buffer in
                buffer.sort { a, b in
                    let la = load[Int(a)], lb = load[Int(b)]
                    return la > lb || (la == lb && a < b)
                }
            }
            return false
        }
        let keys = UnsafeMutableBufferPointer<HotterFirst>.allocate(capacity: n)
        defer { keys.deallocate() }
        for e in 0..<n { keys[e] = HotterFirst(key: hotterFirstKey(load[e]), id: UInt32(truncatingIfNeeded: e)) }
        HotterFirst.sort(keys)
        write(keys, into: &order)
        return true
    }

    /// A key that orders loads hottest first as unsigned integers: the IEEE bits mapped to an
    /// ascending integer order (negatives flipped, positives above them), then inverted. −0 is
    /// taken as +0, so the two tie as they compare equal. Not for NaN.
    @inline(__always)
    static func hotterFirstKey(_ load: Double) -> UInt64 {
        let bits = load == 0 ? 0 : load.bitPattern
        let ascending = bits & (1 << 63) != 0 ? ~bits : bits | (1 << 63)
        return ~ascending
    }

    /// The greedy layer when every die has one slot (the decode TE): a die is full as soon as it
    /// gets a replica, so every die with a free slot still has load 0, and "the least-loaded die
    /// with a free slot, lowest id on ties" is always the lowest free die, whatever the loads.
    /// Primaries take dies 0, 1, 2, … hottest first; redundant replicas take the next dies in the
    /// order the most-load-per-replica rule picks experts (a host of the expert is full, so never
    /// free: the exclusion never matters). The same placement as the general walk, without it.
    static func oneSlotLayer(load: UnsafeBufferPointer<Double>, order: [Int32], strict: Bool, dies: Int,
                             hosts: LayerHosts) {
        var next = min(dies, order.count)
        order.withUnsafeBufferPointer { hosts.appendInOrder($0, count: next) }
        guard next < dies else { return }
        var hottest = strict ? MostLoadPerReplica(load: load, order: order, placedPrefix: next)
            : MostLoadPerReplica(load: load, order: order, placed: { hosts.count($0) > 0 })
        while next < dies, let top = hottest.popMax() {
            let e = top.expert
            let after = load[e] / Double(hosts.count(e) + 1)
            hosts.append(next, to: e)
            next += 1
            hottest.insert(ExpertShare(share: after, expert: e))
        }
    }

    /// ``oneSlotLayer(load:order:strict:dies:hosts:)`` for a strict order and a row of every
    /// expert, written straight into the plan's buffers: expert `order[k]` on die `k`, then the
    /// redundant replicas on the next dies in the order the most-load-per-replica rule picks them,
    /// each expert's hosts its primary then its replicas in that order — the layer
    /// ``LayerHosts/write(into:)`` writes, without the linked host lists (issue 12: building and
    /// walking them was most of a decode plan's layer, 58 layers a plan, a plan a minute).
    /// A plan's scratch, reused layer by layer.
    final class OneSlotLayer {
        let experts: Int
        let dies: Int
        /// Per expert: its rank in the layer's order (its primary's die when below `dies`).
        private let rank: UnsafeMutablePointer<Int32>
        /// Per expert: replicas beyond its primary (0 between layers), and the first and last of
        /// them (valid while it has any).
        private let extras: UnsafeMutablePointer<Int32>
        private let firstExtra: UnsafeMutablePointer<Int32>
        private let lastExtra: UnsafeMutablePointer<Int32>
        /// Per redundant replica (the `j`-th placed is on die `primaries + j`): its expert's next
        /// one (−1: its last). Each expert's replicas in the order placed, so by ascending die.
        private let nextExtra: UnsafeMutablePointer<Int32>
        /// The replicated experts waiting for another replica, a binary max-heap by
        /// ``ExpertShare`` (``StrictShareHeap``'s, in a buffer of room for every redundant
        /// replica: one per die at most). With the layer's order as the queue of experts not yet
        /// replicated, it is ``MostLoadPerReplica`` without its arrays' copies, uniqueness checks
        /// and growth (issue 12: 32 picks per decode layer, 58 layers a plan, a plan a minute).
        private let waiting: UnsafeMutablePointer<ExpertShare>

        init(experts: Int, dies: Int) {
            self.experts = experts
            self.dies = dies
            rank = .allocate(capacity: max(1, experts))
            extras = .allocate(capacity: max(1, experts))
            extras.initialize(repeating: 0, count: max(1, experts))
            firstExtra = .allocate(capacity: max(1, experts))
            lastExtra = .allocate(capacity: max(1, experts))
            nextExtra = .allocate(capacity: max(1, dies))
            waiting = .allocate(capacity: max(1, dies))
        }

        deinit {
            rank.deallocate()
            extras.deallocate()
            firstExtra.deallocate()
            lastExtra.deallocate()
            nextExtra.deallocate()
            waiting.deallocate()
        }

        /// Places one layer (`load`: every expert's; `order`: the strict hottest-first order of
        /// them) and appends it to `builder`.
        func place(load: UnsafeBufferPointer<Double>, order: [Int32], into builder: inout Builder) {
            let n = order.count
            precondition(n == experts && load.count == experts, "a row of every expert")
            let (rank, extras, dies) = (self.rank, self.extras, self.dies)
            let (firstExtra, lastExtra, nextExtra) = (self.firstExtra, self.lastExtra, self.nextExtra)
            let primaries = min(dies, n)
            var next = primaries
            if next < dies {
                // ``MostLoadPerReplica``'s pops: the greater of the next unreplicated expert in
                // the order (its whole load) and the heap's top, the order's on a tie of neither.
                let waiting = self.waiting
                var count = 0
                var fresh = 0
                order.withUnsafeBufferPointer { order in
                    while next < dies {
                        let e: Int
                        if fresh < primaries {
                            let candidate = ExpertShare(share: load[Int(order[fresh])], expert: Int(order[fresh]))
                            if count > 0 && candidate < waiting[0] {
                                e = ExpertPlacement.popWaiting(waiting, count: &count)
                            } else {
                                e = candidate.expert
                                fresh &+= 1
                            }
                        } else if count > 0 {
                            e = ExpertPlacement.popWaiting(waiting, count: &count)
                        } else {
                            break
                        }
                        // Its hosts so far: the primary and its extras.
                        let after = load[e] / Double(Int(extras[e]) + 2)
                        // Replica j on die `primaries + j`, after the expert's others.
                        let j = Int32(truncatingIfNeeded: next - primaries)
                        if extras[e] == 0 { firstExtra[e] = j } else { nextExtra[Int(lastExtra[e])] = j }
                        lastExtra[e] = j
                        nextExtra[Int(j)] = -1
                        extras[e] += 1
                        next += 1
                        ExpertPlacement.pushWaiting(ExpertShare(share: after, expert: e), into: waiting, count: &count)
                    }
                }
            }
            order.withUnsafeBufferPointer { order in
                for k in 0..<n { rank[Int(order[k])] = Int32(truncatingIfNeeded: k) }
            }
            let placed = next
            let base = Int32(truncatingIfNeeded: primaries)
            builder.appendExperts(n, hosts: placed) { room in
                var k = 0
                for e in 0..<n {
                    let r = Int(rank[e])
                    guard r < primaries else {
                        // Not placed (more experts than dies): no host.
                        room.ends[e] = room.base &+ Int32(truncatingIfNeeded: k)
                        continue
                    }
                    room.hosts[k] = Int32(truncatingIfNeeded: r)
                    if extras[e] == 0 {
                        room.closeSole(e, at: &k)
                        continue
                    }
                    let from = k
                    k &+= 1
                    var j = Int(firstExtra[e])
                    while j >= 0 {
                        room.hosts[k] = base &+ Int32(truncatingIfNeeded: j)
                        k &+= 1
                        j = Int(nextExtra[j])
                    }
                    extras[e] = 0
                    room.close(e, expert: e, from: from, to: k)
                }
                return k
            }
        }
    }

    /// The heap `items[..<count]`'s top expert, removed (``StrictShareHeap/popMax()``).
    @inline(__always)
    fileprivate static func popWaiting(_ items: UnsafeMutablePointer<ExpertShare>, count n: inout Int) -> Int {
        let top = items[0]
        n &-= 1
        let last = items[n]
        guard n > 0 else { return top.expert }
        var i = 0
        while true {
            var child = 2 &* i &+ 1
            if child >= n { break }
            if child &+ 1 < n && items[child] < items[child &+ 1] { child &+= 1 }
            guard last < items[child] else { break }
            items[i] = items[child]
            i = child
        }
        items[i] = last
        return top.expert
    }

    /// `share` into the heap `items[..<count]` (``StrictShareHeap/insert(_:)``).
    @inline(__always)
    fileprivate static func pushWaiting(_ share: ExpertShare, into items: UnsafeMutablePointer<ExpertShare>,
                               count n: inout Int) {
        var i = n
        n &+= 1
        while i > 0 {
            let parent = (i &- 1) / 2
            guard items[parent] < share else { break }
            items[i] = items[parent]
            i = parent
        }
        items[i] = share
    }

    /// Relative load on each die of one layer (the mean over dies is `experts / dies` × mean load).
    public func dieLoads(layer: Int, popularity: ExpertPopularity) -> [Double] {
        var loads = Array(repeating: 0.0, count: dies)
        let row = popularity.layers[layer]
        for e in 0..<experts {
            let range = hostRange(layer, e)
            guard !range.isEmpty else { continue }
            let share = row[e] / Double(range.count)
            for s in range { loads[Int(hostDies[s])] += share }
        }
        return loads
    }

    /// Per layer, the hottest die's share of the layer's load (one scratch buffer, no per-layer
    /// allocation: this runs whenever popularity drifts, placement changes or EPLB weighs a plan).
    /// Each slot adds its replica's share to its die and to the total, expert by expert, host by
    /// host in order.
    public func hottestShares(popularity: ExpertPopularity) -> [Double] {
        hottestShares(popularity: popularity, totals: nil)
    }

    /// ``hottestShares(popularity:)`` and, per layer, the load it is a share of (the layer's
    /// total over its slots, as summed there): what a blend of popularities weighs them by
    /// (``ExpertRouting/collectedImbalanceBound()``).
    func hottestSharesAndTotals(popularity: ExpertPopularity) -> (shares: [Double], totals: [Double]) {
        var totals = [Double](repeating: 0, count: layerCount)
        let shares = totals.withUnsafeMutableBufferPointer { hottestShares(popularity: popularity, totals: $0.baseAddress) }
        return (shares, totals)
    }

    /// ``hottestShares(popularity:)``, each layer's total written to `totals[l]` when given.
    private func hottestShares(popularity: ExpertPopularity, totals: UnsafeMutablePointer<Double>?) -> [Double] {
        var shares = [Double]()
        shares.reserveCapacity(layerCount)
        guard layerCount > 0 else { return shares }
        let scratch = UnsafeMutablePointer<Double>.allocate(capacity: max(1, dies))
        defer { scratch.deallocate() }
        let (experts, dies) = (self.experts, self.dies)
        let slotsDerived = slotExpert.count == hostDies.count && hostStart.count == layerCount * experts + 1
        hostStart.withUnsafeBufferPointer { starts in
            hostDies.withUnsafeBufferPointer { hosts in
                slotExpert.withUnsafeBufferPointer { slotExpert in
                    slotReplicas.withUnsafeBufferPointer { slotReplicas in
                        for l in 0..<layerCount {
                            let (share, total) = popularity.layers[l].withUnsafeBufferPointer { row in
                                guard slotsDerived, row.count >= experts else {
                                    return Self.hottestShare(row: row, starts: starts.baseAddress! + l * experts,
                                                             hosts: hosts, experts: experts, scratch: scratch, dies: dies)
                                }
                                if oneSlotPerDie {
                                    return Self.hottestShareOneSlotPerDie(row: row, from: Int(starts[l * experts]),
                                                                          to: Int(starts[(l + 1) * experts]),
                                                                          slotExpert: slotExpert,
                                                                          slotReplicas: slotReplicas, dies: dies)
                                }
                                return Self.hottestShare(row: row, from: Int(starts[l * experts]),
                                                         to: Int(starts[(l + 1) * experts]), hosts: hosts,
                                                         slotExpert: slotExpert, slotReplicas: slotReplicas,
                                                         scratch: scratch, dies: dies)
                            }
                            shares.append(share)
                            totals?[l] = total
                        }
                    }
                }
            }
        }
        return shares
    }

    /// One layer of ``hottestShares(popularity:)`` over its slots `from ..< to` (a row holding
    /// every expert): slot by slot, which is expert by expert, host by host, as
    /// ``hottestShare(row:starts:hosts:experts:scratch:dies:)`` adds them, so the same sums.
    @inline(__always)
    private static func hottestShare(row: UnsafeBufferPointer<Double>, from: Int, to: Int,
                                     hosts: UnsafeBufferPointer<Int32>, slotExpert: UnsafeBufferPointer<Int32>,
                                     slotReplicas: UnsafeBufferPointer<Double>,
                                     scratch: UnsafeMutablePointer<Double>, dies: Int) -> (share: Double, total: Double) {
        scratch.update(repeating: 0, count: dies)
        var total = 0.0
        var s = from
        // Eight slots a round, each exactly as the one-slot loop below adds it (in order, so the
        // same sums; two slots on one die add to it one after the other): the loop's own count,
        // compare and branch were a seventh of each slot's instructions at four a round (issue
        // 12: this runs for every prefill TE after every drift, plan and swap, 58 layers of 288
        // slots). One bound, one counter: `s + 8 <= to`.
        @inline(__always) func add(_ i: Int) {
            let share = row[Int(slotExpert[i])] / slotReplicas[i]
            scratch[Int(hosts[i])] += share
            total += share
        }
        let rounds = to &- 7
        while s < rounds {
            add(s)
            add(s &+ 1)
            add(s &+ 2)
            add(s &+ 3)
            add(s &+ 4)
            add(s &+ 5)
            add(s &+ 6)
            add(s &+ 7)
            s &+= 8
        }
        while s < to {
            add(s)
            s &+= 1
        }
        return hottest(scratch: scratch, dies: dies, total: total)
    }

    /// ``hottestShare(row:from:to:hosts:slotExpert:slotReplicas:scratch:dies:)`` when the layer's
    /// slots are one per die, on every die: each die's sum is its one share (0 + x is x), the
    /// total the same sum in the same order, so the same result without the per-die buffer
    /// (issue 12: a decode TE's 288 dies were zeroed, summed into and scanned per layer).
    @inline(__always)
    private static func hottestShareOneSlotPerDie(row: UnsafeBufferPointer<Double>, from: Int, to: Int,
                                                  slotExpert: UnsafeBufferPointer<Int32>,
                                                  slotReplicas: UnsafeBufferPointer<Double>, dies: Int)
        -> (share: Double, total: Double) {
        var total = 0.0
        var hottest = 0.0
        var s = from
        @inline(__always) func add(_ i: Int) {
            let share = row[Int(slotExpert[i])] / slotReplicas[i]
            if share > hottest { hottest = share }
            total += share
        }
        // Four slots a round, each as the loop after it takes one (the same sums in the same
        // order, the same maximum): the loop's count, compare and branch per two slots were a
        // fifth of the walk (issue 12: a decode TE's 58 layers of 288 slots per drift and plan).
        let rounds = to &- 3
        while s < rounds {
            add(s)
            add(s &+ 1)
            add(s &+ 2)
            add(s &+ 3)
            s &+= 4
        }
        while s < to {
            add(s)
            s &+= 1
        }
        return (total > 0 ? hottest / total : 1 / Double(dies), total)
    }

    /// The hottest die's share of `total` from per-die loads in `scratch`, and `total`.
    @inline(__always)
    private static func hottest(scratch: UnsafeMutablePointer<Double>, dies: Int, total: Double)
        -> (share: Double, total: Double) {
        var hottest = scratch[0]
        var d = 1
        // With a finite total no share is NaN, so no die's sum is (nor −0: each starts at +0):
        // the greatest is then one value whatever the order it is looked for in, four dies at a
        // time (issue 12: the scan was ~4 instructions per die, 32 dies per prefill layer).
        if total.isFinite && dies >= 8 {
            let base = UnsafeRawPointer(scratch)
            var lanes = base.loadUnaligned(as: SIMD4<Double>.self)
            d = 4
            while d &+ 4 <= dies {
                let four = (base + d &* MemoryLayout<Double>.stride).loadUnaligned(as: SIMD4<Double>.self)
                lanes.replace(with: four, where: four .> lanes)
                d &+= 4
            }
            hottest = lanes.max()
        }
        while d < dies {
            if scratch[d] > hottest { hottest = scratch[d] }
            d += 1
        }
        return (total > 0 ? hottest / total : 1 / Double(dies), total)
    }

    /// One layer of ``hottestShares(popularity:)`` walking expert by expert through `starts`
    /// (a row shorter than the placement's experts counts only the experts it has).
    private static func hottestShare(row: UnsafeBufferPointer<Double>, starts: UnsafePointer<Int32>,
                                     hosts: UnsafeBufferPointer<Int32>, experts: Int,
                                     scratch: UnsafeMutablePointer<Double>, dies: Int) -> (share: Double, total: Double) {
        scratch.update(repeating: 0, count: dies)
        var total = 0.0
        var from = Int(starts[0])
        for e in 0..<min(experts, row.count) {
            let to = Int(starts[e + 1])
            let replicas = Double(Int32(truncatingIfNeeded: to - from))
            let load = row[e]
            var s = from
            while s < to {
                let share = load / replicas
                scratch[Int(hosts[s])] += share
                total += share
                s += 1
            }
            from = to
        }
        return hottest(scratch: scratch, dies: dies, total: total)
    }

    /// Max over mean of per-die load, averaged over layers (each layer's barrier waits for its
    /// hottest die, so the step pays the average of the per-layer maxima).
    public func imbalance(popularity: ExpertPopularity) -> Double {
        guard layerCount > 0 else { return 1 }
        return hottestShares(popularity: popularity).reduce(0, +) / Double(layerCount) * Double(dies)
    }
}

/// The hosts each expert of one layer got so far, in the order given, as singly linked lists in
/// flat buffers (a node per replica): the greedy planner's scratch, reset per layer, one
/// allocation per plan. A reference type so the planner's closures can read it; never stored.
final class LayerHosts {
    let experts: Int
    private let capacity: Int
    private let head: UnsafeMutablePointer<Int32>
    private let tail: UnsafeMutablePointer<Int32>
    private let counts: UnsafeMutablePointer<Int32>
    private let dies: UnsafeMutablePointer<Int32>
    private let links: UnsafeMutablePointer<Int32>
    private var nodes = 0

    init(experts: Int, capacity: Int) {
        self.experts = experts
        self.capacity = max(1, capacity)
        head = .allocate(capacity: max(1, experts))
        tail = .allocate(capacity: max(1, experts))
        counts = .allocate(capacity: max(1, experts))
        dies = .allocate(capacity: self.capacity)
        links = .allocate(capacity: self.capacity)
        reset()
    }

    deinit {
        head.deallocate()
        tail.deallocate()
        counts.deallocate()
        dies.deallocate()
        links.deallocate()
    }

    /// No expert has a host.
    func reset() {
        for e in 0..<experts {
            head[e] = -1
            counts[e] = 0
        }
        nodes = 0
    }

    @inline(__always) func count(_ e: Int) -> Int { Int(counts[e]) }
    /// Expert `e`'s first host node (−1: none), a node's die and the next node (−1: last).
    @inline(__always) func first(_ e: Int) -> Int { Int(head[e]) }
    @inline(__always) func die(_ node: Int) -> Int { Int(dies[node]) }
    @inline(__always) func next(_ node: Int) -> Int { Int(links[node]) }

    /// Gives expert `e` one more host, after the others. (A layer never has more replicas than slots.)
    @inline(__always)
    func append(_ die: Int, to e: Int) {
        precondition(nodes < capacity, "more replicas than slots")
        let n = Int32(truncatingIfNeeded: nodes)
        dies[nodes] = Int32(truncatingIfNeeded: die)
        links[nodes] = -1
        if head[e] < 0 { head[e] = n } else { links[Int(tail[e])] = n }
        tail[e] = n
        counts[e] += 1
        nodes += 1
    }

    /// ``append(_:to:)`` of die `k` to expert `order[k]` for every `k` in `0 ..< count`, in that
    /// order: the one-slot planner's primaries. The same nodes and links, the buffers' addresses
    /// read once for the run (an `append` per host reloaded them after each of its stores, which
    /// might, for all the compiler knows, have changed this object's fields: issue 12, 256 hosts
    /// per layer of every decode plan).
    func appendInOrder(_ order: UnsafeBufferPointer<Int32>, count: Int) {
        precondition(count <= order.count && count <= capacity - nodes, "more replicas than slots")
        let (dies, links, head, tail, counts) = (self.dies, self.links, self.head, self.tail, self.counts)
        var node = nodes
        for k in 0..<count {
            let e = Int(order[k])
            let n = Int32(truncatingIfNeeded: node)
            dies[node] = Int32(truncatingIfNeeded: k)
            links[node] = -1
            if head[e] < 0 { head[e] = n } else { links[Int(tail[e])] = n }
            tail[e] = n
            counts[e] += 1
            node &+= 1
        }
        nodes = node
    }

    /// Writes the layer, expert by expert, each expert's hosts in order.
    func write(into builder: inout ExpertPlacement.Builder) {
        let (experts, head, dies, links, counts) = (self.experts, self.head, self.dies, self.links, self.counts)
        builder.appendExperts(experts, hosts: nodes) { room in
            var k = 0
            for e in 0..<experts {
                // Most experts have one host: written straight.
                if counts[e] == 1 {
                    room.hosts[k] = dies[Int(head[e])]
                    room.closeSole(e, at: &k)
                    continue
                }
                let from = k
                var node = Int(head[e])
                while node >= 0 {
                    room.hosts[k] = dies[node]
                    k += 1
                    node = Int(links[node])
                }
                room.close(e, expert: e, from: from, to: k)
            }
            return k
        }
    }
}

/// An expert's load per replica, ordered hottest first with lower ids winning ties.
struct ExpertShare: Comparable {
    var share: Double
    var expert: Int
    static func < (a: Self, b: Self) -> Bool { (a.share, b.expert) < (b.share, a.expert) }
}

/// The hottest-first order of each layer's experts as the last greedy plan sorted them: where the
/// next plan's sort starts (``ExpertPlacement/greedy(popularity:dies:slotsPerDie:orders:)``).
/// Only the planning work depends on it, never the placement.
public struct PlanningOrders: Sendable {
    /// Per layer, its experts in the order found (anything, when set from outside the planner).
    var layers: [[Int32]] {
        get { sorted }
        set {
            sorted = newValue
            fromPlanner = false
        }
    }
    /// `layers` as stored; the planner writes here.
    fileprivate var sorted: [[Int32]] = []
    /// Whether every layer was written by the planner, so holds a permutation of its experts
    /// (or is empty): its sort then need not check that the hint is one (issue 12: the check was
    /// a third of laying out the keys, 16,762 layer sorts in a Mooncake hour).
    fileprivate(set) var fromPlanner = true
    public init() {}
}

/// The planner's "expert with the highest load per replica" queue: what a max-heap of every
/// placed expert's ``ExpertShare`` would pop, without building that heap (256 inserts per layer
/// for some 32 redundant slots). An expert not yet replicated has its whole load as its share,
/// so those come in the hottest-first order the primaries were placed in (the same strict order
/// as ``ExpertShare``, ids breaking ties); only the few experts given a replica since wait in a
/// small heap. Each pop takes the greater of the two heads.
struct MostLoadPerReplica {
    private let load: UnsafeBufferPointer<Double>
    private let fresh: [Int32]
    /// The queue's fresh experts are `fresh[..<freshCount]`.
    private let freshCount: Int
    private var next = 0
    /// The replicated experts, room for the usual few made up front (issue 12: growing the heap
    /// from empty reallocated it ~6 times per layer): in `strictReplicated` when the loads are
    /// ordered strictly (no NaN), else in `replicated`.
    private var replicated = Heap<ExpertShare>(minimumCapacity: 0)
    private var strictReplicated = StrictShareHeap(minimumCapacity: 0)
    private let strict: Bool

    /// `order`: the experts hottest first (``ExpertPlacement/hottestFirst(load:into:)``);
    /// `placed`: whether an expert got a primary (those that did not are not in the queue).
    init(load: UnsafeBufferPointer<Double>, order: [Int32], placed: (Int) -> Bool) {
        self.load = load
        strict = false
        replicated = Heap(minimumCapacity: 32)
        guard !load.contains(where: \.isNaN) else {
            // No strict order to merge with (a NaN load never comes from traffic): the whole heap.
            fresh = []
            freshCount = 0
            for e in 0..<load.count where placed(e) { replicated.insert(ExpertShare(share: load[e], expert: e)) }
            return
        }
        // Placed experts are a prefix of the order (primaries go hottest first until the slots
        // run out), but filter anyway: the queue holds exactly the placed ones.
        var fresh = order
        if let firstUnplaced = order.firstIndex(where: { !placed(Int($0)) }) {
            fresh = Array(order[..<firstUnplaced]) + order[firstUnplaced...].filter { placed(Int($0)) }
        }
        self.fresh = fresh
        freshCount = fresh.count
    }

    /// The same queue when `order` is the strict hottest-first order (no NaN load) and the
    /// placed experts are its first `count` (primaries go hottest first until the slots run
    /// out): no scan for them, no copy.
    init(load: UnsafeBufferPointer<Double>, order: [Int32], placedPrefix count: Int) {
        self.load = load
        fresh = order
        freshCount = min(count, order.count)
        strict = true
        strictReplicated = StrictShareHeap(minimumCapacity: 32)
    }

    /// The expert with the most load per replica (lower id on ties), removed from the queue.
    mutating func popMax() -> ExpertShare? {
        let candidate = next < freshCount
            ? ExpertShare(share: load[Int(fresh[next])], expert: Int(fresh[next])) : nil
        if strict {
            guard let candidate else { return strictReplicated.popMax() }
            if let top = strictReplicated.max, candidate < top { return strictReplicated.popMax() }
        } else {
            guard let candidate else { return replicated.popMax() }
            if let top = replicated.max, candidate < top { return replicated.popMax() }
        }
        next += 1
        return candidate
    }

    /// An expert back in the queue with its share after one more replica.
    mutating func insert(_ share: ExpertShare) {
        if strict { strictReplicated.insert(share) } else { replicated.insert(share) }
    }
}

/// A binary max-heap of ``ExpertShare``s for loads with no NaN, where the shares (distinct
/// experts, ids breaking ties) are strictly ordered: any max-heap then pops the same sequence,
/// the one the collections package's min-max heap pops, for a third of its work per insert
/// (issue 12: its bubble-up cost ~100 instructions, 538 k inserts in a Mooncake hour).
struct StrictShareHeap {
    private var items: [ExpertShare] = []

    init(minimumCapacity: Int) { items.reserveCapacity(minimumCapacity) }

    var max: ExpertShare? { items.first }

    mutating func insert(_ share: ExpertShare) {
        items.append(share)
        var i = items.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            guard items[parent] < share else { break }
            items[i] = items[parent]
            i = parent
        }
        items[i] = share
    }

    mutating func popMax() -> ExpertShare? {
        guard let top = items.first else { return nil }
        let last = items.removeLast()
        let n = items.count
        guard n > 0 else { return top }
        var i = 0
        while true {
            var child = 2 * i + 1
            if child >= n { break }
            if child + 1 < n && items[child] < items[child + 1] { child += 1 }
            guard last < items[child] else { break }
            items[i] = items[child]
            i = child
        }
        items[i] = last
        return top
    }
}

/// An expert's place in the hottest-first order: ``ExpertPlacement/hotterFirstKey(_:)`` of its
/// load, then its id. Keys are distinct (ids are), so the order is strict and any correct sort
/// gives the same sequence.
struct HotterFirst {
    var key: UInt64
    var id: UInt32

    @inline(__always)
    static func < (a: Self, b: Self) -> Bool { a.key < b.key || (a.key == b.key && a.id < b.id) }

    /// Ascending in place for a buffer that is probably nearly sorted: insertion sort while it
    /// has moved at most `movesBudget` elements, then ``sort(_:)`` on what it has (the same
    /// result: the order is strict).
    static func sortNearlySorted(_ a: UnsafeMutableBufferPointer<HotterFirst>, movesBudget: Int) {
        guard a.count > 1 else { return }
        if !insertionSort(a, movesBudget: movesBudget) { sort(a) }
    }

    /// The `k` smallest of `a` in order at its front, as ``sortSmallest(_:count:)`` leaves them,
    /// by an insertion pass of the whole buffer while it moves at most `movesBudget` elements
    /// (the buffer nearly sorted), else by ``sortSmallest(_:count:)``: the same `k` (a strict
    /// order), whichever way.
    static func sortSmallestNearlySorted(_ a: UnsafeMutableBufferPointer<HotterFirst>, count k: Int, movesBudget: Int) {
        guard a.count > 1 else { return }
        if !insertionSort(a, movesBudget: movesBudget) { sortSmallest(a, count: k) }
    }

    /// Insertion sort of the whole buffer; gives up (returns false, the buffer a permutation of
    /// what it was) once it has moved more than `movesBudget` elements.
    ///
    /// An element already after its predecessor is passed over with one comparison, no write and
    /// no budget update (issue 12: most elements of a nearly sorted layer stay where they are;
    /// writing them back and counting zero moves was half of the sort's instructions).
    @inline(__always)
    private static func insertionSort(_ a: UnsafeMutableBufferPointer<HotterFirst>, movesBudget: Int = .max) -> Bool {
        var moves = 0
        var i = 1
        while i < a.count {
            let x = a[i]
            guard x < a[i &- 1] else {
                i &+= 1
                continue
            }
            var j = i &- 1
            repeat {
                a[j &+ 1] = a[j]
                j &-= 1
            } while j >= 0 && x < a[j]
            a[j &+ 1] = x
            moves &+= i &- 1 &- j
            if moves > movesBudget { return false }
            i &+= 1
        }
        return true
    }

    /// The `count` smallest keys, ascending, at the front of `a` (the rest after them in no
    /// particular order): quickselect (median of three) narrowed to the side holding the
    /// boundary, then a sort of the front. For a ranking whose tail all gets one value.
    static func sortSmallest(_ a: UnsafeMutableBufferPointer<HotterFirst>, count k: Int) {
        guard k > 0 else { return }
        guard k < a.count else { return sort(a) }
        var low = 0, high = a.count - 1
        while high - low >= 16 {
            let (i, j) = partition(a, low, high)
            // [low, j] ≤ pivot ≤ [i, high]: keep the side the boundary (between k − 1 and k) is in.
            if k - 1 <= j {
                high = j
            } else if k >= i {
                low = i
            } else {
                break
            }
        }
        if low < high { _ = insertionSort(UnsafeMutableBufferPointer(rebasing: a[low...high])) }
        sort(UnsafeMutableBufferPointer(rebasing: a[0..<k]))
    }

    /// Hoare partition of `a[low...high]` around the median of its first, middle and last keys:
    /// afterwards `a[low...j]` ≤ pivot ≤ `a[i...high]`, with j < i.
    @inline(__always)
    private static func partition(_ a: UnsafeMutableBufferPointer<HotterFirst>, _ low: Int, _ high: Int) -> (Int, Int) {
        let mid = low + (high - low) / 2
        if a[mid] < a[low] { a.swapAt(mid, low) }
        if a[high] < a[low] { a.swapAt(high, low) }
        if a[high] < a[mid] { a.swapAt(high, mid) }
        let pivot = a[mid]
        var i = low, j = high
        while i <= j {
            while a[i] < pivot { i += 1 }
            while pivot < a[j] { j -= 1 }
            if i <= j {
                a.swapAt(i, j)
                i += 1
                j -= 1
            }
        }
        return (i, j)
    }

    /// Ascending in place: quicksort (median of three) down to runs of 16, then one insertion
    /// sort pass over the whole buffer.
    static func sort(_ a: UnsafeMutableBufferPointer<HotterFirst>) {
        guard a.count > 1 else { return }
        var stack: [(Int, Int)] = [(0, a.count - 1)]
        while let (low, high) = stack.popLast() {
            guard high - low >= 16 else { continue }
            let (i, j) = partition(a, low, high)
            // The larger side waits on the stack; the smaller is taken next (depth O(log n)).
            if j - low < high - i {
                stack.append((i, high))
                stack.append((low, j))
            } else {
                stack.append((low, j))
                stack.append((i, high))
            }
        }
        _ = insertionSort(a)
    }
}

/// Dies with free slots by current load, as a tournament tree over the dies: every internal node
/// holds the least-loaded usable die of its subtree (lowest id on ties), so the answer is the
/// root and a die whose load or free slots change costs one walk to the root, O(log dies), with
/// no allocation. Selection is exactly "the minimum (load, die) among dies with a free slot".
///
/// The state lives in one buffer the pool owns (loads, free slots, tree): a plan places ~288
/// replicas per layer, and the three arrays' uniqueness checks and buffer closures were most of
/// each placement's cost. A pool is a planner's scratch: copies share the buffer.
struct DiePool {
    private final class Storage {
        let load: UnsafeMutablePointer<Double>
        let free: UnsafeMutablePointer<Int32>
        /// Leaves at `leafBase + die`; a node holds a die index, or −1 when its subtree has no usable die.
        let tree: UnsafeMutablePointer<Int32>
        let treeCount: Int
        init(dies: Int, leaves: Int) {
            load = .allocate(capacity: max(1, dies))
            free = .allocate(capacity: max(1, dies))
            treeCount = 2 * leaves
            tree = .allocate(capacity: treeCount)
        }
        deinit {
            load.deallocate()
            free.deallocate()
            tree.deallocate()
        }
    }

    private let storage: Storage
    private let leafBase: Int
    let dies: Int
    let slotsPerDie: Int
    private var freeDies: Int

    init(dies: Int, slotsPerDie: Int) {
        self.dies = dies
        self.slotsPerDie = slotsPerDie
        var base = 1
        while base < dies { base <<= 1 }
        leafBase = base
        storage = Storage(dies: dies, leaves: base)
        freeDies = 0
        reset()
    }

    /// The load on each die (for tests and planners that read it).
    var load: [Double] { Array(UnsafeBufferPointer(start: storage.load, count: dies)) }

    /// Back to empty dies (every slot free, no load), keeping the buffer.
    mutating func reset() {
        let usable = slotsPerDie > 0
        freeDies = usable ? dies : 0
        let load = storage.load, free = storage.free, t = storage.tree
        let slots = Int32(clamping: slotsPerDie)
        for d in 0..<dies {
            load[d] = 0
            free[d] = slots
        }
        for i in 0..<storage.treeCount { t[i] = -1 }
        if usable { for d in 0..<dies { t[leafBase + d] = Int32(truncatingIfNeeded: d) } }
        var i = leafBase - 1
        while i >= 1 {
            t[i] = winner(t[2 * i], t[2 * i + 1])
            i -= 1
        }
    }

    var hasFreeSlot: Bool { freeDies > 0 }

    /// Of two candidates from a left and a right subtree (so `a < b` when both are dies), the one
    /// with less load; the left (lower id) on ties.
    @inline(__always)
    private func winner(_ a: Int32, _ b: Int32) -> Int32 {
        if a < 0 { return b }
        if b < 0 { return a }
        return storage.load[Int(b)] < storage.load[Int(a)] ? b : a
    }

    /// Re-evaluates the path from `die`'s leaf to the root, the leaf holding `die` if `usable`.
    /// Stops early where a subtree's winner is another die and did not change: only `die`'s
    /// load or slots changed, so nothing above that node can.
    @inline(__always)
    private func update(_ die: Int, usable: Bool) {
        let load = storage.load, t = storage.tree
        var i = leafBase + die
        let me = Int32(truncatingIfNeeded: die)
        t[i] = usable ? me : -1
        i >>= 1
        while i >= 1 {
            let a = t[2 * i], b = t[2 * i + 1]
            let best = a < 0 ? b : (b < 0 ? a : (load[Int(b)] < load[Int(a)] ? b : a))
            if best == t[i], best != me { return }
            t[i] = best
            i >>= 1
        }
    }

    /// Rebuilds every internal node from the leaves (`winner` of its children, bottom up): the
    /// tree the walks keep, since each walk leaves every node the winner of its two children.
    private func rebuild() {
        let t = storage.tree, free = storage.free
        for d in 0..<dies { t[leafBase + d] = free[d] > 0 ? Int32(truncatingIfNeeded: d) : -1 }
        var i = leafBase - 1
        while i >= 1 {
            t[i] = winner(t[2 * i], t[2 * i + 1])
            i -= 1
        }
    }

    /// On a pool just ``reset()``: puts the primaries of `order` (hottest first) on dies 0, 1, 2,
    /// … while the experts before carried load > 0, writing them in `hosts`; returns how many.
    /// These are the dies ``leastLoaded()`` gives them one by one: the dies still at load 0 tie,
    /// the lowest id wins, and every die already used carries more. One tree rebuild instead of
    /// a walk per primary (issue 12).
    mutating func placeOnEmptyDies(_ order: [Int32], load share: UnsafeBufferPointer<Double>,
                                   hosts: LayerHosts, rebuildingTree: Bool = true) -> Int {
        guard slotsPerDie > 0 else { return 0 }
        let load = storage.load, free = storage.free
        let count = min(dies, order.count)
        var k = 0, filled = 0
        while k < count {
            let e = Int(order[k])
            let x = share[e]
            hosts.append(k, to: e)
            load[k] += x
            free[k] -= 1
            if free[k] <= 0 { filled += 1 }
            k += 1
            guard x > 0 else { break }
        }
        freeDies -= filled
        if k > 0 && rebuildingTree { rebuild() }
        return k
    }

    /// Places `order[from...]` one by one, each on ``leastLoaded()`` as ``place(_:on:)`` would,
    /// while a die has a free slot, writing them in `hosts`; returns how many of `order` are
    /// placed (`from` plus these). For loads that are plain numbers (no NaN: ordered totally).
    ///
    /// The usable dies wait in a queue sorted by (load, id): its head is the least-loaded die,
    /// and a die given a replica goes back in from the tail end, where it nearly always belongs
    /// (most of a layer's experts are its body, of one equal load, placed round after round):
    /// the same dies in the same order as a tree walk per primary, for a comparison or two
    /// (issue 12: the walks were a quarter of a multi-slot plan). The tree is rebuilt at the end.
    mutating func placeInTurn(_ order: [Int32], from start: Int, load share: UnsafeBufferPointer<Double>,
                              hosts: LayerHosts) -> Int {
        // (The tree is rebuilt once, at the end: the queue reads only the loads and free slots.)
        defer { rebuild() }
        guard start < order.count else { return start }
        let load = storage.load, free = storage.free
        // Room for every usable die and one re-entry per replica placed (at most one per slot).
        let capacity = dies + dies * max(0, slotsPerDie) + 1
        let queue = UnsafeMutablePointer<Int32>.allocate(capacity: capacity)
        defer { queue.deallocate() }
        // (a, its load) before (b, its load) in the queue's order.
        @inline(__always) func precedes(_ a: Int32, _ la: Double, _ b: Int32, _ lb: Double) -> Bool {
            la < lb || (la == lb && a < b)
        }
        // The usable dies sorted by (load, id): an insertion sort taking the highest id first,
        // each die put in place from the tail end. The dies given the first primaries carry the
        // hottest loads by id (die 0 the hottest), so each goes to the tail: one comparison per
        // die (issue 12: taken lowest id first, each went to the head, past every die before it).
        var tail = 0
        var d = dies - 1
        while d >= 0 {
            if free[d] > 0 {
                let me = Int32(truncatingIfNeeded: d), mine = load[d]
                var j = tail
                while j > 0, !precedes(queue[j - 1], load[Int(queue[j - 1])], me, mine) {
                    queue[j] = queue[j - 1]
                    j -= 1
                }
                queue[j] = me
                tail += 1
            }
            d -= 1
        }
        var head = 0
        var placed = start
        var filled = 0
        order.withUnsafeBufferPointer { order in
            while placed < order.count && head < tail {
                let me = queue[head]
                head &+= 1
                let d = Int(me)
                let e = Int(order[placed])
                hosts.append(d, to: e)
                load[d] += share[e]
                free[d] -= 1
                placed &+= 1
                guard free[d] > 0 else {
                    filled &+= 1
                    continue
                }
                // Back in at its place, looking from the tail end.
                let mine = load[d]
                var j = tail
                while j > head, !precedes(queue[j &- 1], load[Int(queue[j &- 1])], me, mine) {
                    queue[j] = queue[j &- 1]
                    j &-= 1
                }
                queue[j] = me
                tail &+= 1
            }
        }
        freeDies -= filled
        return placed
    }

    /// The least-loaded die with a free slot (lowest id on ties).
    func leastLoaded() -> Int? {
        let best = storage.tree[1]
        return best < 0 ? nil : Int(best)
    }

    /// The least-loaded die with a free slot that is not in `excluded` (lowest id on ties).
    mutating func leastLoaded(excluding excluded: [Int]) -> Int? {
        // Take the excluded dies out of the tournament, read the root, put them back.
        let t = storage.tree, free = storage.free
        var any = false
        for d in excluded where t[leafBase + d] >= 0 {
            update(d, usable: false)
            any = true
        }
        let best = t[1]
        if any { for d in excluded where free[d] > 0 { update(d, usable: true) } }
        return best < 0 ? nil : Int(best)
    }

    /// ``leastLoaded(excluding:)`` with expert `e`'s hosts in `hosts` excluded. `ordered`: every
    /// load is a plain number (no NaN, nothing near overflow), so the root is the least (load, id)
    /// of all usable dies and, unless it hosts `e`, of those left after the exclusion too: it is
    /// the answer with no walk (issue 12: the hottest expert's hosts are rarely the least loaded).
    mutating func leastLoaded(excludingHostsOf e: Int, in hosts: LayerHosts, ordered: Bool = false) -> Int? {
        let t = storage.tree, free = storage.free
        if ordered {
            let root = t[1]
            guard root >= 0 else { return nil }
            var hosted = false
            var node = hosts.first(e)
            while node >= 0 {
                if hosts.die(node) == Int(root) {
                    hosted = true
                    break
                }
                node = hosts.next(node)
            }
            if !hosted { return Int(root) }
        }
        var any = false
        var node = hosts.first(e)
        while node >= 0 {
            let d = hosts.die(node)
            if t[leafBase + d] >= 0 {
                update(d, usable: false)
                any = true
            }
            node = hosts.next(node)
        }
        let best = t[1]
        if any {
            node = hosts.first(e)
            while node >= 0 {
                let d = hosts.die(node)
                if free[d] > 0 { update(d, usable: true) }
                node = hosts.next(node)
            }
        }
        return best < 0 ? nil : Int(best)
    }

    /// Puts a replica carrying `share` on a die just returned by ``leastLoaded(excluding:)``.
    @inline(__always)
    mutating func place(_ share: Double, on die: Int) {
        storage.load[die] += share
        storage.free[die] -= 1
        let usable = storage.free[die] > 0
        if !usable { freeDies -= 1 }
        update(die, usable: usable)
    }

    /// ``adjust(_:on:)`` for a fall in load (`delta` ≤ 0) when every load is a plain number (no
    /// NaN, no ∞): the tree then holds the least (load, id) of each subtree, and a die whose
    /// load falls only climbs. It takes each node it beats on the way up and stops at the first
    /// it does not (no node above can change). The same tree, one comparison a level.
    @inline(__always)
    mutating func lower(_ delta: Double, on die: Int) {
        let load = storage.load, t = storage.tree
        load[die] += delta
        guard storage.free[die] > 0 else { return }
        let me = Int32(truncatingIfNeeded: die)
        let mine = load[die]
        var i = (leafBase &+ die) >> 1
        while i >= 1 {
            let w = t[i]
            if w != me {
                let theirs = load[Int(w)]
                guard mine < theirs || (mine == theirs && me < w) else { return }
                t[i] = me
            }
            i >>= 1
        }
    }

    /// Changes a die's load (its replicas now share an expert with one more die).
    mutating func adjust(_ delta: Double, on die: Int) {
        storage.load[die] += delta
        if storage.free[die] > 0 { update(die, usable: true) }
    }
}

extension UnsafeMutableBufferPointer where Element == UInt64 {
    /// Marks expert `e` in this bitset (a bit per expert, `n` of them): false when `e` is out of
    /// range or already marked. How a hint is checked to be distinct experts
    /// (``ExpertPlacement/hottestFirst(load:into:from:permutation:)``, ``ExpertTraffic``'s ranking).
    @inline(__always)
    func markOnce(_ e: Int, below n: Int) -> Bool {
        guard e >= 0, e < n else { return false }
        let bit: UInt64 = 1 &<< UInt64(e & 63)
        guard self[e >> 6] & bit == 0 else { return false }
        self[e >> 6] |= bit
        return true
    }

    /// Whether expert `e` (in range) is marked.
    @inline(__always)
    func isMarked(_ e: Int) -> Bool { self[e >> 6] & (1 &<< UInt64(e & 63)) != 0 }
}
