import PodModel
import SimKit

/// The expert system (engine-components.md §2, system.md §4): the traffic's expert popularity and
/// its drift, each MoE TE's expert routing (placement, per-step load) and EPLB controller, the
/// planner with its plan cache, the collection and heat windows, and the running sums behind the
/// report's and snapshot's expert figures.
///
/// Its state changes only through the methods below, named from the domain: a step's routing
/// (``loadFactor(_:tokens:)``, ``noteDecodeMoE(moeSeconds:stepSeconds:)``), an arrival's traffic
/// class, the telemetry-interval tick (drift, EPLB cadence, heat window), a swap phase ending, the
/// operator's `rebalance`, a planner change. It touches no TE, KV or fault state: the engine (the
/// coordinator) owns the clock and the event queue, hands the queue in per call (`inout`) for the
/// swap phases' wake-ups, and turns the returned ``Rebalance`` lines into its event log. What it
/// needs to know about a TE (its expert dies, slots, cost model, whether it decodes) comes in
/// once, as a ``Host``, when the TE is added.
///
/// Per-TE routing and controllers live here, by TE index (the ids requests and events use), in
/// place: a tick mutates them without copying them out of a TE and back.
///
/// A `final class` like the engine's other components: `fork()` takes a ``copy()`` (every field
/// is a value or a TE's box, copied into a new one; the routing streams are copied where they
/// stand, never re-seeded), and nothing else holds a reference to it. The planner is called
/// through a closure passed per call to the controllers, never stored.
///
/// ```swift
/// let experts = ExpertSystem(mode: .on, intervalSeconds: 60, topK: 8)
/// experts.start(shape: ModelSpecShape(moeLayers: 58, experts: 256), seed: 1, skewed: true,
///               hosts: [ExpertSystem.Host(dies: 288, slotsPerDie: 1, cost: cost, decodes: true)])
/// let factor = experts.loadFactor(0, tokens: 3_840)       // ≥ 1: the step's expert barrier
/// var queue = EngineEventQueue()
/// let lines = experts.tick(now: 60, queue: &queue)         // drift, EPLB cadence, heat window
/// ```
final class ExpertSystem {
    /// What the expert system needs to know about one TE.
    struct Host {
        /// Routed-expert dies and slots per die.
        var dies: Int
        var slotsPerDie: Int
        /// The TE's cost model (the swap's weight-copy and load times).
        var cost: CostModel
        /// Decode or colocated: its steps count in the report's imbalance and MoE figures.
        var decodes: Bool
    }

    /// A line for the engine's event log: TE `instance` rebalanced (or skipped, or finished).
    struct Rebalance: Equatable {
        var instance: Int
        var message: String
        /// Something is wrong with the TE (a cadence skipped for a dead die): logged as a warning.
        var warning = false
    }

    /// Seconds of simulated time per step of the popularity drift's random walk (the process:
    /// ``ExpertTraffic/driftRetention`` is per step of this length).
    static let driftInterval: SimTime = 30
    /// Seconds of simulated time between drift and traffic-mix updates of expert popularity: the
    /// walk is applied two steps at a time, in closed form (``ExpertTraffic/advanceDrift(steps:firstSeconds:seconds:)``),
    /// so the routing sees the same process sampled once per default EPLB window. (Issue 12: each
    /// update redraws 14,848 latent scores, re-ranks 58 layers and makes every TE recompute its
    /// hottest-die shares, 15% of a Mooncake hour at one update per 30 s.)
    static let driftUpdateInterval: SimTime = 60
    /// Telemetry ticks per heat window (the Experts view's heat: 5 simulated seconds).
    static let heatWindowTicks = 10

    /// `--eplb off|on|perfect`.
    let mode: EPLBMode
    /// The automatic EPLB cadence (system.md §4: "e.g. every minute").
    let intervalSeconds: Double
    /// Experts each token is routed to.
    let topK: Int
    /// The planner (``Policies/eplbPlanner``); every controller holds a copy.
    private(set) var planner: any EPLBPlanner = GreedyEPLBPlanner()
    /// Popularity of the model's experts under the current traffic (nil: dense model, not started).
    private(set) var traffic: ExpertTraffic?
    /// Per TE (by index): its expert routing and EPLB controller, in a box of their own (nil for
    /// a TE without experts). A step's load factor reaches the routing through a class reference
    /// (a null test) and changes it in place: an optional routing in the array took an outlined
    /// tag test per read and a uniqueness check of the array per write (issue 12: every step).
    private var tes: [TEExperts?] = []
    /// Per TE: expert routing and EPLB controller (copies, for tests and faces).
    var routings: [ExpertRouting?] { tes.map { $0?.routing } }
    var controllers: [EPLBController?] { tes.map { $0?.controller } }

    /// One MoE TE's routing and controller, owned by the expert system alone (``copy()`` copies
    /// them into new boxes).
    final class TEExperts {
        var routing: ExpertRouting
        var controller: EPLBController
        init(routing: ExpertRouting, controller: EPLBController) {
            self.routing = routing
            self.controller = controller
        }
    }
    /// Per TE: decode or colocated (``Host/decodes``).
    private var decodes: [Bool] = []
    /// Per TE (parallel to `controllers`): when its controller next has work and when its swap
    /// phase ends, refreshed after every change to it (``noteController(_:)``). A tick reads these
    /// instead of the controller: reading it out of its optional copied it, its planner and
    /// pending placement included, twice per TE per telemetry tick (issue 12: ~1% of a Mooncake
    /// hour in copies and releases).
    private struct Wake {
        /// ``EPLBController/wakesAt`` (nil: nothing to do until it changes).
        var at: SimTime?
        /// ``EPLBController/swapPhaseEnds``.
        var swapEnds: SimTime?
    }
    private var wakes: [Wake] = []
    /// TEs scaling retired: they hold no NPUs and route no token, so their controllers plan and
    /// swap no more (a retired TE kept its cadence and logged "rebalance started … dies get new
    /// experts" for dies it no longer had). Their counters stay in the report's figures.
    private var retired: Set<Int> = []
    /// TEs whose swap is held because the TE serves nothing (``EPLBController/hold(now:)``): no
    /// wake-up is scheduled for them until ``followHalts(now:queue:halted:abandon:)`` releases it.
    private var swapHeld: Set<Int> = []
    /// The first decode TE: its counts are the Experts view's heat, its routing the snapshot's.
    private(set) var heatInstance: Int?

    // Running sums (decode side).
    private var factorSum = 0.0
    private var steps = 0
    private var intervalSum = 0.0
    /// Decode steps routed since the last telemetry interval closed.
    private(set) var intervalSteps = 0
    /// Decode steps' MoE part and step time, summed (the report's `moe_ms_per_step`).
    private var moeSeconds = 0.0
    private var stepSeconds = 0.0
    private var moeSteps = 0
    /// When popularity last drifted, and the arrivals since per traffic class, in
    /// ``ExpertTraffic/classes`` order: a tag is matched against the few class names, not
    /// hashed into a dictionary per arrival (1.2% of a saturated superpod). It starts half an
    /// update before time 0, so updates fall at 30, 90, 150 s…: midway through the default
    /// 60 s EPLB windows, each of which sees the walk move as it would in continuous time. (On
    /// the windows' edges every window would hold one popularity, already gone when its plan
    /// lands, and the first window would hold the one the start placement was planned for.)
    private var lastDrift: SimTime = driftInterval - driftUpdateInterval
    private var classNames: [String] = []
    private var classArrivals: [Double] = []
    /// The last tag matched and its class: arrivals come in long runs of one class, and a tag
    /// equal to the last one is known by a comparison of its bits (matching it against the
    /// names compared it with every earlier name by the standard library's slow path: issue 12,
    /// 3 M instructions of a saturated superpod's two minutes).
    private var lastTag: String?
    private var lastTagClass = 0
    /// Telemetry ticks so far, modulo ``heatWindowTicks`` where it matters.
    private var ticks = 0
    /// Token-expert pairs per layer and expert over the last heat window, as its segments.
    private var heat = HeatWindow()
    /// Bumped whenever ``heat`` is replaced: the key of ``heatViewCache`` (readable: a test tells
    /// from it that a heat window closed).
    private(set) var heatVersion = 0
    /// The heat relative to each layer's mean and its hottest experts, as ``summary(dieLoads:)``
    /// last worked them out, for the heat window (or, with none yet, the popularity) they came
    /// from: the window changes every 5 simulated seconds and a face snapshots ten times a second
    /// (58 × 256 ratios, the sort and the window's sums were a sixth of a saturated snapshot).
    private var heatViewCache: (version: Int, popularity: ExpertPopularity?, heat: [[Double]], hottest: [HotExpert])?
    /// Plans by (dies, slots per die) for the popularity they were made for: the prefill TEs of a
    /// group are identical and would plan the same placement.
    private var plans: [Int: (popularity: ExpertPopularity, placement: ExpertPlacement)] = [:]
    /// Where the greedy planner's per-layer sorts start (the last plan's orders): speed only.
    private var planningOrders = PlanningOrders()

    init(mode: EPLBMode, intervalSeconds: Double, topK: Int) {
        self.mode = mode
        self.intervalSeconds = intervalSeconds
        self.topK = topK
    }

    /// A deep, independent copy (for the engine's `fork()`): every field is a value, but the
    /// TEs' boxes, which are copied into new ones.
    func copy() -> ExpertSystem {
        let c = ExpertSystem(mode: mode, intervalSeconds: intervalSeconds, topK: topK)
        c.planner = planner
        c.traffic = traffic
        c.tes = tes.map { $0.map { TEExperts(routing: $0.routing, controller: $0.controller) } }
        c.decodes = decodes
        c.wakes = wakes
        c.retired = retired
        c.swapHeld = swapHeld
        c.heatInstance = heatInstance
        c.factorSum = factorSum
        c.steps = steps
        c.intervalSum = intervalSum
        c.intervalSteps = intervalSteps
        c.moeSeconds = moeSeconds
        c.stepSeconds = stepSeconds
        c.moeSteps = moeSteps
        c.lastDrift = lastDrift
        c.classNames = classNames
        c.classArrivals = classArrivals
        c.ticks = ticks
        c.heat = heat
        c.heatVersion = heatVersion
        c.plans = plans
        c.planningOrders = planningOrders
        return c
    }

    /// Whether the model has experts (``start(shape:seed:skewed:hosts:)`` ran).
    var hasExperts: Bool { traffic != nil }

    /// TE `i`'s routing, if it has one.
    func routing(of i: Int) -> ExpertRouting? { i >= 0 && i < tes.count ? tes[i]?.routing : nil }

    /// TE `i`'s EPLB controller, if it has one.
    func controller(of i: Int) -> EPLBController? { i >= 0 && i < tes.count ? tes[i]?.controller : nil }

    // MARK: Set-up and planner

    /// The planner from now on: plans the old one made are forgotten, every controller uses it.
    func use(_ planner: any EPLBPlanner) {
        self.planner = planner
        plans.removeAll()
        for i in tes.indices {
            guard let te = tes[i] else { continue }
            te.controller.policy = planner
            noteController(i)
        }
    }

    /// The model's traffic and the TEs at start, in TE order. With `--eplb on` each starts from a
    /// placement planned on the profiled popularity; otherwise from the static round-robin one.
    func start(shape: ModelSpecShape, seed: UInt64, skewed: Bool, hosts: [Host]) {
        let traffic = ExpertTraffic(shape: shape, seed: seed, skewed: skewed)
        self.traffic = traffic
        classNames = traffic.classes
        classArrivals = Array(repeating: 0, count: classNames.count)
        lastTag = nil
        heatInstance = hosts.firstIndex(where: \.decodes)
        // The start plans sort the popularity the traffic just ranked: its ranking is where they start.
        if mode == .on { planningOrders.layers = traffic.rankingHint }
        var staticPlacements: [Int: ExpertPlacement] = [:]
        for (index, host) in hosts.enumerated() {
            // (Planned once per shape: identical TEs get the same placement, its buffers shared,
            // so they can share their hottest-die shares too.)
            let placement: ExpertPlacement
            if mode == .on {
                placement = sharedPlan(traffic.popularity, host.dies, host.slotsPerDie)
            } else {
                let key = host.dies << 32 | host.slotsPerDie
                placement = staticPlacements[key] ?? .roundRobin(experts: shape.experts, layers: shape.moeLayers,
                                                                  dies: host.dies, slotsPerDie: host.slotsPerDie)
                staticPlacements[key] = placement
            }
            var routing = ExpertRouting(popularity: traffic.popularity, dies: host.dies, slotsPerDie: host.slotsPerDie,
                                        seed: seed &+ UInt64(index), placement: placement)
            // Only the first decode TE's per-expert counts feed the Experts view.
            routing.recordsHeat = index == heatInstance
            let controller = EPLBController(mode: mode, policy: planner, cost: host.cost, start: 0,
                                            intervalSeconds: intervalSeconds)
            let te = TEExperts(routing: routing, controller: controller)
            tes.append(te)
            let added = tes.count - 1
            decodes.append(host.decodes)
            wakes.append(Wake())
            if mode == .on {
                // The TEs of a shape start from one plan and one popularity: the first works out
                // the shares, the others take them.
                adoptShares(added)
                te.controller.notePlanned(counts: traffic.popularity, imbalance: te.routing.settledExpectedImbalance())
            }
            noteController(added)
        }
    }

    /// A TE added while serving (scaling) at index `i`: its routing (stream seeded `seed`) and a
    /// controller whose cadence starts `now`. No-op for a dense model.
    func add(_ i: Int, host: Host, seed: UInt64, now: SimTime) {
        guard let traffic, i >= 0 else { return }
        while tes.count <= i {
            tes.append(nil)
            decodes.append(false)
            wakes.append(Wake())
        }
        let placement = mode == .on ? planner.plan(popularity: traffic.popularity, dies: host.dies,
                                                   slotsPerDie: host.slotsPerDie) : nil
        var routing = ExpertRouting(popularity: traffic.popularity, dies: host.dies, slotsPerDie: host.slotsPerDie,
                                    seed: seed, placement: placement)
        // The heat comes from the first decode TE, fixed at start: a later TE keeps no window.
        routing.recordsHeat = false
        let controller = EPLBController(mode: mode, policy: planner, cost: host.cost, start: now,
                                        intervalSeconds: intervalSeconds)
        tes[i] = TEExperts(routing: routing, controller: controller)
        decodes[i] = host.decodes
        noteController(i)
    }

    /// TE `i`'s routed-expert dies (indices) that left it now (``ExpertRouting/setLostDies(_:)``).
    func setLostDies(_ i: Int, _ lost: [Int]) {
        guard i >= 0, i < tes.count, let te = tes[i], te.routing.lostDies != lost else { return }
        te.routing.setLostDies(lost)
    }

    /// TE `i` is back from a restart without its routed-expert dies `lost` (indices; no spare
    /// replaced them). The restart loaded its weights afresh, so its experts are laid out over the
    /// live dies as a TE's start places them (planned on the popularity in force with `--eplb
    /// on`, round-robin otherwise), the lost dies left empty: every expert keeps a replica
    /// (system.md §4). Its routing kept the old placement, whose experts with no live replica
    /// still sent their tokens to the dead dies. False, nothing changed, when the live dies'
    /// slots cannot hold every expert once.
    func layOutAfterRestart(_ i: Int, without lost: [Int]) -> Bool {
        guard let traffic, i >= 0, i < tes.count, let te = tes[i], !lost.isEmpty else { return true }
        let dies = te.routing.dies, slotsPerDie = te.routing.slotsPerDie
        let gone = Set(lost)
        let live = (0..<dies).filter { !gone.contains($0) }
        let shape = traffic.popularity
        guard live.count * slotsPerDie >= shape.experts else { return false }
        let plan = mode == .on ? planner.plan(popularity: shape, dies: live.count, slotsPerDie: slotsPerDie)
            : .roundRobin(experts: shape.experts, layers: shape.layers.count, dies: live.count, slotsPerDie: slotsPerDie)
        // A restart abandoned any swap already; the placement is the one loaded now.
        _ = te.controller.abandon(routing: &te.routing)
        swapHeld.remove(i)
        te.routing.setLostDies(lost)
        te.routing.setPlacement(plan.onto(dies: live, of: dies))
        noteController(i)
        return true
    }

    // MARK: Steps and arrivals

    /// TE `i`'s hottest-die shares, taken from another TE that has them worked out for the same
    /// serving placement and popularity (copies of them), if one does; else its step works them out.
    private func adoptShares(_ i: Int) {
        guard let te = tes[i] else { return }
        let key = te.routing.sharesKey
        for j in tes.indices where j != i {
            guard let shares = tes[j]?.routing.shares(for: key) else { continue }
            te.routing.adoptShares(shares, for: key)
            return
        }
    }

    /// The hottest expert die's load over the mean for one step of TE `i` routing `tokens` tokens
    /// (draws TE `i`'s routing stream; decode steps add to the report's sums). 1 under `perfect`.
    func loadFactor(_ i: Int, tokens: Double) -> Double {
        load(i, tokens: tokens).factor
    }

    /// ``loadFactor(_:tokens:)`` and the step's per-layer factors with their noise scale
    /// (``ExpertRouting/stepLoad(tokens:topK:)``); nil layers where the factor is 1 by
    /// construction (perfect balance, no routing).
    func load(_ i: Int, tokens: Double) -> (factor: Double, layers: (factors: [Double], scale: Double)?) {
        // The box read in place for each use (bound to a local, it was retained and released
        // around the step).
        guard mode != .perfect, i >= 0, i < tes.count, let stale = tes[i]?.routing.needsShares else { return (1, nil) }
        if stale { adoptShares(i) }
        guard let step = tes[i]?.routing.stepLoad(tokens: tokens, topK: topK) else { return (1, nil) }
        if decodes[i] {
            factorSum += step.factor
            steps += 1
            intervalSum += step.factor
            intervalSteps += 1
        }
        return (step.factor, step.layers.isEmpty ? nil : (step.layers, step.scale))
    }

    /// A decode step's MoE part (gate and experts, dispatch, combine, summed over layers and
    /// microbatches: the work the expert barrier waits on) and its whole time.
    func noteDecodeMoE(moeSeconds moe: Double, stepSeconds step: Double) {
        moeSeconds += moe
        stepSeconds += step
        moeSteps += 1
    }

    /// An arrival's traffic class, for the popularity mix (synthetic tags; traces have none).
    func noteArrival(tag: String?) {
        guard let tag else { return }
        if tag == lastTag {
            classArrivals[lastTagClass] += 1
            return
        }
        guard let i = classNames.firstIndex(of: tag) else { return }
        (lastTag, lastTagClass) = (tag, i)
        classArrivals[i] += 1
    }

    // MARK: Telemetry interval, EPLB and swaps

    /// Telemetry-interval work: drift and traffic mix, EPLB cadence and swap phases (wake-ups
    /// scheduled on `queue`), heat window. Returns the rebalance lines for the event log.
    /// `halted(i)`: TE `i` serves nothing now (its swap is held, not advanced).
    /// `blocked(i)`: why TE `i` must not move experts now (nil: it may); its due cadence is then
    /// skipped with that reason.
    func tick(now: SimTime, queue: inout EngineEventQueue, halted: (Int) -> Bool = { _ in false },
              blocked: (Int) -> String? = { _ in nil }) -> [Rebalance] {
        guard traffic != nil else { return [] }
        if now - lastDrift >= Self.driftUpdateInterval {
            // The walk itself starts at time 0 (the first update is one step of 30 s).
            let elapsed = now - max(lastDrift, 0)
            lastDrift = now
            // The walk's steps in the stretch, the first taking what is over whole steps (a tick
            // lands a little after the update is due).
            let steps = max(1, (elapsed / Self.driftInterval).rounded(.down))
            let firstSeconds = elapsed - (steps - 1) * Self.driftInterval
            if classArrivals.contains(where: { $0 > 0 }) {
                // The new mix and the walk, ranked once.
                traffic!.setMix(arrivals: classArrivals, thenAdvanceDrift: steps, firstSeconds: firstSeconds,
                                seconds: Self.driftInterval)
                classArrivals = Array(repeating: 0, count: classNames.count)
            } else {
                traffic!.advanceDrift(steps: steps, firstSeconds: firstSeconds, seconds: Self.driftInterval)
            }
            plans = [:]
            for te in tes { te?.routing.setPopularity(traffic!.popularity) }
        }
        var lines: [Rebalance] = []
        for i in tes.indices { advance(i, now: now, queue: &queue, into: &lines, halted: halted, blocked: blocked) }
        ticks += 1
        if ticks % Self.heatWindowTicks == 0 { closeHeatWindow() }
        return lines
    }

    /// TE `i`'s swap phase may end now (its `.expertSwap` event): advances it.
    func advanceSwap(_ i: Int, now: SimTime, queue: inout EngineEventQueue,
                     halted: (Int) -> Bool = { _ in false }) -> [Rebalance] {
        var lines: [Rebalance] = []
        advance(i, now: now, queue: &queue, into: &lines, halted: halted)
        return lines
    }

    /// Whether any TE has a swap under way or held (``followHalts(now:queue:halted:abandon:)``
    /// has something to look at).
    var hasSwaps: Bool { !swapHeld.isEmpty || wakes.contains { $0.swapEnds != nil } }

    /// The fault state changed: each swap under way follows its TE. `abandon(i)` says why TE
    /// `i`'s swap cannot go on (its dies changed: a restart, an NPU-fork, a shrink, dead dies
    /// known), and it is dropped with that reason, the placement left as before it and no
    /// rebalance counted; else a swap on a TE that serves nothing (`halted(i)`) is held, its
    /// phase clock stopped, and one held on a TE serving again goes on where it stood.
    func followHalts(now: SimTime, queue: inout EngineEventQueue, halted: (Int) -> Bool,
                     abandon: (Int) -> String?) -> [Rebalance] {
        var lines: [Rebalance] = []
        for i in tes.indices where wakes[i].swapEnds != nil || swapHeld.contains(i) {
            guard let te = tes[i] else { continue }
            if let why = abandon(i) {
                if te.controller.abandon(routing: &te.routing) {
                    lines.append(Rebalance(instance: i, message: "rebalance abandoned: \(why); its experts stay where they were"))
                }
                swapHeld.remove(i)
            } else if halted(i) {
                te.controller.hold(now: now)
                swapHeld.insert(i)
            } else if swapHeld.remove(i) != nil {
                te.controller.release(now: now)
                noteController(i)
                advance(i, now: now, queue: &queue, into: &lines, halted: halted)
                continue
            }
            noteController(i)
        }
        return lines
    }

    /// TE `i`'s controller: a due cadence or swap phase ticks; a swap under way asks to be woken
    /// when its phase ends (one `.expertSwap` per call, duplicates included: they count as events).
    private func advance(_ i: Int, now: SimTime, queue: inout EngineEventQueue, into lines: inout [Rebalance],
                         halted: (Int) -> Bool, blocked: (Int) -> String? = { _ in nil }) {
        guard i < tes.count else { return }
        // Between its cadence and its swap phases the controller has nothing to do: no call, and
        // no look at the controller either (testing the optionals for nil copied both, nine TEs
        // per telemetry tick: 0.9% of a Mooncake hour). A TE without one has an empty wake.
        let due = wakes[i].at.map { now >= $0 } ?? false
        guard due || wakes[i].swapEnds != nil, let te = tes[i] else { return }
        if wakes[i].swapEnds != nil && halted(i) {
            // A swap phase ending on a TE that serves nothing waits for it (the fault state's
            // change holds it as the halt begins; this catches one begun without that change).
            te.controller.hold(now: now)
            swapHeld.insert(i)
            noteController(i)
            return
        }
        if due, te.controller.phase == .idle, let why = blocked(i) {
            // The cadence on a TE holding a dead die planned over every die, the dead one too,
            // and swapped experts onto it as the operator's `rebalance` no longer does
            // (``ServingEngine/rebalanceBlocker(_:)``): it skips this window and says why.
            te.controller.skipCadence(now: now, routing: &te.routing)
            noteController(i)
            lines.append(Rebalance(instance: i, message: "automatic rebalance skipped: \(why)", warning: true))
            return
        }
        if due {
            // A plan weighs the serving placement's shares (and the collection bound reads them):
            // taken from a TE that has them for the same placement and popularity, if one does.
            if te.routing.needsShares { adoptShares(i) }
            let outcomes = te.controller.tick(now: now, routing: &te.routing, planner: sharedPlan)
            noteController(i)
            for outcome in outcomes { lines.append(Rebalance(instance: i, message: outcome.message)) }
        }
        if let until = wakes[i].swapEnds {
            queue.schedule(at: max(now, until), .expertSwap(instance: i))
        }
    }

    /// Refreshes ``wakes`` for TE `i` after its controller changed.
    private func noteController(_ i: Int) {
        guard !retired.contains(i) else { return wakes[i] = Wake() }
        wakes[i] = tes[i].map { Wake(at: $0.controller.wakesAt, swapEnds: $0.controller.swapPhaseEnds) } ?? Wake()
    }

    /// TE `i` was retired by scaling: no cadence, no swap, no operator rebalance from now on (a
    /// swap under way is dropped with the hardware it was loading onto).
    func retire(_ i: Int) {
        guard i >= 0 && i < tes.count else { return }
        retired.insert(i)
        swapHeld.remove(i)
        noteController(i)
    }

    /// The operator's `rebalance`.
    struct RebalanceReply {
        /// TEs that started a swap.
        var started = 0
        /// Event-log lines, in order.
        var lines: [Rebalance] = []
        /// Why decode TEs did not start (the first is the refusal's message).
        var refusals: [String] = []
        /// Decode TEs whose plan gained nothing on their counts (not refusals: an answer).
        var nothingToGain: [String] = []
    }

    /// The operator's `rebalance`: every TE with a controller plans now on its collected counts.
    /// `outOfService(i)`: why TE `i` cannot move experts now (nil: it can); such a TE plans
    /// nothing, and a decode one says why among the refusals.
    func rebalanceNow(now: SimTime, queue: inout EngineEventQueue,
                      outOfService: (Int) -> String? = { _ in nil }) -> RebalanceReply {
        var reply = RebalanceReply()
        for i in tes.indices where !retired.contains(i) {
            guard let te = tes[i] else { continue }
            if let why = outOfService(i) {
                if decodes[i] { reply.refusals.append(why) }
                continue
            }
            let outcome = te.controller.requestRebalance(now: now, routing: &te.routing, planner: sharedPlan)
            noteController(i)
            if outcome.started {
                reply.started += 1
                reply.lines.append(Rebalance(instance: i, message: outcome.message))
                advance(i, now: now, queue: &queue, into: &reply.lines, halted: { _ in false })
            } else if decodes[i] {
                if outcome.nothingToGain { reply.nothingToGain.append(outcome.message) } else { reply.refusals.append(outcome.message) }
            }
        }
        return reply
    }

    /// The configured planner's plan, computed once per popularity for each (dies, slots) shape.
    private func sharedPlan(_ popularity: ExpertPopularity, _ dies: Int, _ slotsPerDie: Int) -> ExpertPlacement {
        let key = dies << 32 | slotsPerDie  // both bounded far below 2³²: no two shapes share a key
        if let cached = plans[key], cached.popularity == popularity { return cached.placement }
        let placement: ExpertPlacement
        if planner is GreedyEPLBPlanner {
            // The same plan, its sorts started from the last plan's orders (a value here, so a
            // fork plans from its own copy).
            placement = .greedy(popularity: popularity, dies: dies, slotsPerDie: slotsPerDie, orders: &planningOrders)
        } else {
            placement = planner.plan(popularity: popularity, dies: dies, slotsPerDie: slotsPerDie)
        }
        plans[key] = (popularity, placement)
        return placement
    }

    // MARK: Heat and quiet stretches

    /// Takes the first decode TE's window of expert counts as the heat, unless it is empty.
    func closeHeatWindow() {
        guard let h = heatInstance, h >= 0, h < tes.count, let te = tes[h] else { return }
        let window = te.routing.takeHeatWindow()
        if window.countedAny {
            heat = window
            heatVersion += 1
        }
    }

    /// Whether a tick would do EPLB work an idle skip cannot compute in closed form: a swap under
    /// way, or (automatic mode) counts collected that the cadence will plan from.
    var hasPendingWork: Bool {
        for wake in wakes where wake.swapEnds != nil { return true }
        if mode == .on, tes.indices.contains(where: { tes[$0]?.routing.hasCollected == true && !retired.contains($0) }) { return true }
        return false
    }

    /// The expert part of `k` quiet telemetry ticks (`interval` apart, the first at `t0`): drift
    /// steps due in the stretch, the heat window. (The EPLB cadence is left to the first tick
    /// after the stretch.)
    func skipQuietTicks(count k: Double, first t0: SimTime, interval: Double) {
        guard traffic != nil else { return }
        let every = Self.driftUpdateInterval
        let last = lastDrift
        // First tick index i0 with t0 + i0·interval − last ≥ every, and the ticks between drifts.
        var i0 = max(0, ((last + every - t0) / interval).rounded(.up))
        if i0 > 0 && t0 + (i0 - 1) * interval - last >= every { i0 -= 1 }
        if t0 + i0 * interval - last < every { i0 += 1 }
        if i0 < k {
            var period = max(1, (every / interval).rounded(.up))
            if period > 1 && (period - 1) * interval >= every { period -= 1 }
            if period * interval < every { period += 1 }
            let steps = ((k - 1 - i0) / period).rounded(.down) + 1
            // Popularity describes the traffic, and a quiet interval has none: the drift's clock
            // moves on (a drift due in the stretch is consumed) but nothing is drawn. No random
            // number is taken here, so k quiet ticks at once equal k quiet ticks one by one.
            lastDrift = t0 + (i0 + (steps - 1) * period) * interval
        }
        // The heat window closes every 10 ticks; after the first close in the stretch the windows
        // are empty and leave the heat as it is.
        let phase = ticks % Self.heatWindowTicks
        if Double(Self.heatWindowTicks - 1 - phase) < k { closeHeatWindow() }
        ticks = (phase + Int(k.truncatingRemainder(dividingBy: Double(Self.heatWindowTicks)))) % Self.heatWindowTicks
    }

    // MARK: Figures

    /// The mean step imbalance of the decode steps of the closing telemetry interval (nil when
    /// none ran), then a new interval.
    func takeIntervalImbalance() -> Double? {
        defer {
            intervalSum = 0
            intervalSteps = 0
        }
        return intervalSteps > 0 ? intervalSum / Double(intervalSteps) : nil
    }

    /// The first decode TE's expected imbalance (1 without experts).
    /// (Its shares, if a change left them stale, are kept for the TE's next step.)
    var decodeExpectedImbalance: Double {
        guard let h = heatInstance, h >= 0, h < tes.count, let te = tes[h] else { return 1 }
        return te.routing.settledExpectedImbalance()
    }

    /// The report's mean step imbalance (1 under `perfect` or before any decode step).
    var meanStepImbalance: Double { mode == .perfect || steps == 0 ? 1 : factorSum / Double(steps) }
    /// The report's MoE milliseconds per decode step, and MoE share of decode step time.
    var moeMsPerStep: Double? { moeSteps > 0 ? moeSeconds / Double(moeSteps) * 1e3 : nil }
    var moeShareOfStep: Double? { stepSeconds > 0 ? moeSeconds / stepSeconds : nil }

    /// Rebalances finished by the decode side (the report's `experts.rebalances`).
    var decodeRebalances: Int {
        var total = 0
        for i in tes.indices where decodes[i] { total += tes[i]?.controller.rebalances ?? 0 }
        return total
    }

    /// Routed experts of TE `i` with no replica left once the dies at `deadDies` (indices among its
    /// routed-expert dies) are gone: in some layer every die holding it is dead (sorted). Nil when
    /// the TE has no routing.
    func unreplicatedExperts(instance i: Int, deadDies: Set<Int>) -> [Int]? {
        guard let placement = routing(of: i)?.placement else { return nil }
        var missing = [Bool](repeating: false, count: placement.experts)
        for l in 0..<placement.layerCount {
            for e in 0..<placement.experts where !missing[e] {
                if placement.hostRange(l, e).allSatisfy({ deadDies.contains(Int(placement.hostDies[$0])) }) { missing[e] = true }
            }
        }
        return missing.indices.filter { missing[$0] }
    }

    /// True when the first decode TE holds one expert per routed die and no redundant slot: every
    /// placement leaves each die its load, so EPLB has nothing to move.
    var placementFixed: Bool {
        guard let decode = heatInstance, let routing = routing(of: decode) else { return false }
        return Self.placementFixed(routing)
    }

    private static func placementFixed(_ routing: ExpertRouting) -> Bool {
        routing.slotsPerDie == 1 && routing.dies == routing.placement.experts
    }

    /// The Experts view's data, from the first decode TE (`dieLoads`: its per-die loads when the
    /// caller has them).
    func summary(dieLoads: [Double]? = nil) -> ExpertSummary {
        var summary = ExpertSummary()
        guard let decode = heatInstance, let routing = routing(of: decode) else { return summary }
        summary.eplb = mode
        // Sent only when true: a snapshot of any other layout stays as it was, key for key.
        if Self.placementFixed(routing) { summary.placementFixed = true }
        summary.imbalance = mode == .perfect ? 1 : routing.expectedImbalance
        summary.rebalances = decodeRebalances
        summary.rebalanceInProgress = tes[decode].map { $0.controller.phase != .idle } ?? false
        summary.loadingDies = tes[decode]?.controller.loadingDies ?? []
        summary.dieLoad = dieLoads ?? routing.dieLoads()
        if moeSteps > 0 { summary.moeMsPerStep = moeSeconds / Double(moeSteps) * 1e3 }
        (summary.heat, summary.hottest) = heatView(routing)
        return summary
    }

    /// Heat: the last window's counts (the popularity before the first window), relative to each
    /// layer's mean, and the twelve hottest experts above twice their layer's mean.
    private func heatView(_ routing: ExpertRouting) -> (heat: [[Double]], hottest: [HotExpert]) {
        let popularity = heat.isEmpty ? routing.popularity : nil
        if let cache = heatViewCache, cache.version == heatVersion, cache.popularity == popularity {
            return (cache.heat, cache.hottest)
        }
        let counts = popularity?.layers ?? heat.counts
        let relative = counts.map { row in
            let mean = row.reduce(0, +) / Double(max(1, row.count))
            return row.map { mean > 0 ? $0 / mean : 0 }
        }
        var hottest: [HotExpert] = []
        for (l, row) in relative.enumerated() {
            for (e, load) in row.enumerated() where load > 2 { hottest.append(HotExpert(layer: l, expert: e, load: load)) }
        }
        let top = Array(hottest.sorted { ($0.load, $1.layer, $1.expert) > ($1.load, $0.layer, $0.expert) }.prefix(12))
        heatViewCache = (heatVersion, popularity, relative, top)
        return (relative, top)
    }
}
