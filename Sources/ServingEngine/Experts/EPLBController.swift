import Foundation
import PodModel
import SimKit

/// When and how expert placement changes: automatic rebalancing every interval (skipped when the
/// gain is small), the operator's `rebalance`, and the asynchronous four-phase swap of system.md
/// §4 — prefetch weights, disable the affected slots, load, re-enable — during which serving
/// never stops (disabled slots' tokens go to the expert's other replicas).
///
/// ```swift
/// var eplb = EPLBController(mode: .on, policy: GreedyEPLBPlanner(), cost: cost)
/// let events = eplb.tick(now: t, routing: &routing)        // call between steps
/// let reply = eplb.requestRebalance(now: t, routing: &routing)
/// ```
public struct EPLBController: Sendable {
    public var mode: EPLBMode
    /// The planner (``Policies/eplbPlanner``); the `policy eplb NAME` command replaces it.
    public var policy: any EPLBPlanner
    /// system.md §4: counts are aggregated periodically, "e.g. every minute".
    public var intervalSeconds: Double = 60
    /// Automatic plans that improve expected imbalance by less than this share are skipped.
    public var minimumGain: Double = 0.05
    public private(set) var rebalances = 0
    public private(set) var phase: Phase = .idle
    private var nextAutomatic: SimTime
    private let cost: CostModel

    public enum Phase: Sendable, Equatable {
        case idle
        /// Copying new experts' weights from peers into staging buffers, until `until`.
        case prefetch(until: SimTime, started: SimTime, before: Double)
        /// Slots disabled while their weights load, until `until`.
        case load(until: SimTime, started: SimTime, before: Double, dies: [Int])
    }

    public struct Outcome: Sendable, Equatable {
        public var message: String
        public var started: Bool
        /// Not started because the plan gains nothing (or too little) on the counts: an answer,
        /// not a refusal (an operator's `rebalance` then says so at info, not as a warning).
        public var nothingToGain = false
    }

    private var pending: ExpertPlacement?
    /// The swap's load phase as planned with `pending`: the placement it was planned from, and
    /// the serving placement and disabled dies ``servingDuringSwap(from:to:)`` gives for it. They
    /// come out of the walk that counts the dies' gained layers at plan time (issue 12: the two
    /// walks of 14,848 experts per swap were ~7% of a Mooncake hour), and serve the prefetch's
    /// end if the placement is still the one planned from.
    private var loadPhase: (from: ExpertPlacement, serving: ExpertPlacement, disabled: [Int])?
    /// Expected imbalance right after the last plan (or skip), under the counts it was made from:
    /// while the collected load keeps the current placement within `minimumGain` of it, a new
    /// plan cannot gain enough and is not computed (issue 12: re-plan only on a real change).
    private var lastPlanned: Double?
    /// The collected load the last plan (or skip) was made from.
    private var lastCounts: ExpertPopularity?
    private var loadSeconds = 0.0
    /// When the swap under way was held because its TE stopped serving (nil: not held). A held
    /// swap's phase clock stands still: its phase ends that much later once the TE runs again.
    /// (It ran on: a swap whose die died 5 ms in logged "rebalance done in 0.02 s" while the TE
    /// was stalled and served nothing, and counted it as a rebalance.)
    public private(set) var heldSince: SimTime?

    /// The first automatic plan is due `intervalSeconds` after `start` (the cadence is given here:
    /// set afterwards, the first plan still came after the default 60 s).
    public init(mode: EPLBMode, policy: any EPLBPlanner = GreedyEPLBPlanner(), cost: CostModel, start: SimTime = 0,
                intervalSeconds: Double = 60) {
        self.mode = mode
        self.policy = policy
        self.cost = cost
        self.intervalSeconds = intervalSeconds
        self.nextAutomatic = start + intervalSeconds
    }

    /// The earliest time at which ``isDue(now:)`` holds, nil when it never will until something
    /// changes (idle outside automatic mode): `isDue(now:)` is `now >= wakesAt`.
    public var wakesAt: SimTime? {
        if heldSince != nil { return nil }
        return switch phase {
        case .idle: mode == .on ? nextAutomatic : nil
        case .prefetch(let until, _, _), .load(let until, _, _, _): until
        }
    }

    /// When the swap phase under way ends (nil: no swap under way).
    public var swapPhaseEnds: SimTime? {
        if heldSince != nil { return nil }
        return switch phase {
        case .prefetch(let until, _, _), .load(let until, _, _, _): until
        case .idle: nil
        }
    }

    /// Dies whose slots are loading weights now.
    public var loadingDies: [Int] {
        if case .load(_, _, _, let dies) = phase { return dies }
        return []
    }

    /// The operator's `rebalance`: plan now with the current counts, whatever the mode's cadence.
    /// Plans a placement for (popularity, dies, slots per die). Identical instances (the prefill
    /// TEs of one group) can share one plan through a memoising planner.
    public typealias Planner = (ExpertPopularity, Int, Int) -> ExpertPlacement

    public mutating func requestRebalance(now: SimTime, routing: inout ExpertRouting, planner: Planner? = nil) -> Outcome {
        guard phase == .idle else { return Outcome(message: "a rebalance is already in progress", started: false) }
        guard mode != .perfect else {
            return Outcome(message: "--eplb perfect models ideal balance; there is nothing to rebalance", started: false)
        }
        // The counts collected so far in this window (the last window's when it has just opened).
        let counts = routing.collectedLoad() ?? lastCounts ?? routing.popularity
        return plan(now: now, routing: &routing, counts: counts, minimumGain: 0, planner: planner)
    }

    /// The swap under way stops where it is: its TE serves nothing (stalled by a dead die, or out
    /// of service), so no phase of it ends until ``release(now:)``. No-op without a swap.
    public mutating func hold(now: SimTime) {
        guard phase != .idle, heldSince == nil else { return }
        heldSince = now
    }

    /// The held swap goes on: its phase ends as much later as it was held.
    public mutating func release(now: SimTime) {
        guard let since = heldSince else { return }
        heldSince = nil
        let held = max(0, now - since)
        switch phase {
        case .idle: break
        case let .prefetch(until, started, before): phase = .prefetch(until: until + held, started: started, before: before)
        case let .load(until, started, before, dies): phase = .load(until: until + held, started: started, before: before, dies: dies)
        }
    }

    /// The swap under way is dropped (its TE's dies changed under it: the plan was for dies it
    /// no longer has as planned): the placement stays as it was before the swap, every slot the
    /// load phase disabled serving again, and no rebalance is counted. False without a swap.
    public mutating func abandon(routing: inout ExpertRouting) -> Bool {
        guard phase != .idle else { return false }
        // The placement is still the old one during the swap; only the serving copy was cut.
        routing.setPlacement(routing.placement)
        pending = nil
        loadPhase = nil
        heldSince = nil
        phase = .idle
        return true
    }

    /// The automatic cadence is due on a TE that must not move experts now (it holds a dead die):
    /// this window passes without a plan, its counts dropped (they were routed over dies the TE
    /// no longer serves from), and the next is due an interval on.
    public mutating func skipCadence(now: SimTime, routing: inout ExpertRouting) {
        guard phase == .idle, mode == .on, now >= nextAutomatic else { return }
        nextAutomatic = now + intervalSeconds
        routing.discardCollectedLoad()
    }

    /// Records the plan the placement started from (planned on profiled popularity before serving),
    /// so the first automatic tick re-plans only if the collected load has moved away from it.
    public mutating func notePlanned(counts: ExpertPopularity, imbalance: Double) {
        lastCounts = counts
        lastPlanned = imbalance
    }

    /// Whether ``tick(now:routing:planner:)`` would do anything at `now`: the automatic cadence is
    /// due, or a swap phase ends. When false, a tick changes nothing and the caller may skip it.
    public func isDue(now: SimTime) -> Bool {
        switch phase {
        case .idle: mode == .on && now >= nextAutomatic
        case .prefetch(let until, _, _), .load(let until, _, _, _): now >= until
        }
    }

    /// Advances the swap phases and the automatic cadence; returns what happened, for the event log.
    public mutating func tick(now: SimTime, routing: inout ExpertRouting, planner: Planner? = nil) -> [Outcome] {
        var outcomes: [Outcome] = []
        switch phase {
        case .idle:
            if mode == .on, now >= nextAutomatic {
                nextAutomatic = now + intervalSeconds
                // Plan from the window just collected, not from the traffic now (system.md §4: the
                // counts are aggregated periodically; the plan is as stale as its window). A window
                // with no tokens, or counts the current placement still serves within `minimumGain`
                // of what it was planned for, leave the placement alone and cost no plan.
                // An upper bound on that imbalance within the threshold (with room for rounding:
                // the exact figure is then within it too) decides it without blending the counts.
                if let last = lastPlanned, let bound = routing.collectedImbalanceBound(),
                   bound * (1 + 1e-9) <= last * (1 + minimumGain) {
                    routing.discardCollectedLoad()
                    break
                }
                guard let counts = routing.takeCollectedLoad() else { break }
                // The current placement's imbalance under the new counts is the plan's "before"
                // too: evaluated once.
                var current: Double?
                if let last = lastPlanned {
                    if counts == lastCounts { break }
                    let imbalance = routing.placementImbalance(popularity: counts)
                    if imbalance <= last * (1 + minimumGain) { break }
                    current = imbalance
                }
                let o = plan(now: now, routing: &routing, counts: counts, before: current, minimumGain: minimumGain,
                             planner: planner)
                outcomes.append(o)
            }
        case let .prefetch(until, started, before) where now >= until:
            guard let target = pending else {
                phase = .idle
                loadPhase = nil
                break
            }
            // Disable the slots that change; an expert never loses its last serving replica.
            let old = routing.placement
            // (Placements compare equal at once when they share their buffers, as here.)
            let (serving, disabled) = loadPhase.flatMap { $0.from == old ? ($0.serving, $0.disabled) : nil }
                ?? Self.servingDuringSwap(from: old, to: target)
            loadPhase = nil
            routing.setPlacement(old, serving: serving)
            phase = .load(until: now + loadSeconds, started: started, before: before, dies: disabled)
        case let .load(until, started, before, _) where now >= until:
            if let target = pending { routing.setPlacement(target) }
            pending = nil
            phase = .idle
            rebalances += 1
            let after = routing.settledExpectedImbalance()
            outcomes.append(Outcome(
                message: "rebalance done in \(Self.fixed(now - started, 2)) s: served imbalance \(Self.fixed(before, 2)) → \(Self.fixed(after, 2))",
                started: false))
        default:
            break
        }
        return outcomes
    }

    /// Plans a placement for `counts` (the collected load) and starts the swap if it gains enough
    /// on those counts; `before` and `after` are imbalances under the counts the planner saw.
    private mutating func plan(now: SimTime, routing: inout ExpertRouting, counts: ExpertPopularity,
                               before known: Double? = nil, minimumGain: Double, planner: Planner?) -> Outcome {
        let before = known ?? routing.placementImbalance(popularity: counts)
        let target = planner?(counts, routing.dies, routing.slotsPerDie)
            ?? policy.plan(popularity: counts, dies: routing.dies, slotsPerDie: routing.slotsPerDie)
        let after = target.imbalance(popularity: counts)
        lastPlanned = min(before, after)
        lastCounts = counts
        guard after < before * (1 - minimumGain) else {
            // An operator's rebalance asks for any gain (minimum 0): "gain under 0%" misread it.
            let why = minimumGain > 0 ? "gain under \(Self.fixed(minimumGain * 100, 0))%"
                : "the current placement is already as good"
            return Outcome(message: "rebalance skipped: collected-load imbalance \(Self.fixed(before, 2)), plan \(Self.fixed(after, 2)) (\(why))",
                           started: false, nothingToGain: true)
        }
        // Weights to move: per die, one expert's weights for every layer whose slot changes.
        let swap = Self.swapWork(from: routing.placement, to: target)
        let layersChanged = swap.gained
        loadPhase = swap.serving.map { (routing.placement, $0.placement, $0.disabled) }
        let busiest = layersChanged.max() ?? 0
        let prefetch = cost.expertWeightCopy(experts: 1, layers: busiest)
        let bytes = Double(busiest) * cost.model.expertWeightBytes
        loadSeconds = bytes / (cost.hardware.hbmBytesPerSecondPerDie * cost.constants.hbmEfficiency)
        pending = target
        // The done message compares the imbalance actually served before and after the swap.
        phase = .prefetch(until: now + prefetch, started: now, before: routing.settledExpectedImbalance())
        let dies = layersChanged.filter { $0 > 0 }.count
        // Two scopes, named so that the started and done lines are not read as one figure: the plan
        // is weighed on the collected window's counts, the done line on the traffic served now.
        return Outcome(message: "rebalance started (\(policy.name)): collected-load imbalance \(Self.fixed(before, 2)) → \(Self.fixed(after, 2)) planned; \(dies) \(dies == 1 ? "die gets" : "dies get") new experts",
                       started: true)
    }

    /// `x` with `digits` decimals, as `String(format: "%.<digits>f", x)` writes it (issue 12:
    /// Foundation's format-string machinery cost 40–90 k instructions a message, 166 rebalance
    /// messages in a Mooncake hour). The C formatter rounds the double's exact binary value to
    /// nearest, ties to even, and keeps a negative sign on a figure that rounds to zero; so does
    /// this, in integers: x = m·2⁻ᵏ exactly, so x·10ᵈ rounds to ⌊m·10ᵈ / 2ᵏ⌉. Figures it was not
    /// written for (not finite, 10¹² or more, over 4 decimals) go to `String(format:)`.
    static func fixed(_ x: Double, _ digits: Int) -> String {
        let magnitude = x.magnitude
        guard magnitude.isFinite, magnitude < 1e12, digits >= 0, digits <= 4 else {
            return String(format: "%.*f", digits, x)
        }
        var scale: UInt64 = 1
        for _ in 0..<digits { scale *= 10 }
        // x = m · 2^-shift (a subnormal's significand has no implicit bit).
        let m: UInt64, shift: Int
        if magnitude.isNormal {
            m = magnitude.significandBitPattern | 1 << 52
            shift = 52 - Int(magnitude.exponent)
        } else {
            m = magnitude.significandBitPattern
            shift = 1074
        }
        let product = UInt128(m) * UInt128(scale)
        var scaled: UInt128
        if shift <= 0 {
            scaled = product << -shift
        } else if shift >= 127 {
            scaled = 0  // below 2^67 / 2^127: under half of the last decimal
        } else {
            scaled = product >> shift
            let rest = product - (scaled << shift), half = UInt128(1) << (shift - 1)
            if rest > half || (rest == half && scaled & 1 == 1) { scaled += 1 }
        }
        let whole = scaled / UInt128(scale), fraction = scaled % UInt128(scale)
        var text = x.sign == .minus ? "-" : ""
        text += String(UInt64(whole))
        guard digits > 0 else { return text }
        let decimals = String(UInt64(fraction))
        text += "."
        text += String(repeating: "0", count: digits - decimals.count)
        text += decimals
        return text
    }

    /// The placement that serves while `old`'s changed slots load `target`'s weights, and the dies
    /// disabled meanwhile (sorted): an expert whose hosts change keeps only the hosts `target`
    /// keeps, and those it loses are disabled, unless it would keep none (then it keeps all and
    /// disables none: an expert never loses its last serving replica).
    static func servingDuringSwap(from old: ExpertPlacement, to target: ExpertPlacement) -> (ExpertPlacement, [Int]) {
        var disabled = [Bool](repeating: false, count: max(old.dies, 0))
        var builder = ExpertPlacement.Builder(layers: old.layerCount, experts: old.experts, hosts: old.hostDies.count)
        let count = old.layerCount * old.experts
        disabled.withUnsafeMutableBufferPointer { disabled in
            old.withBuffers { oldStarts, oldHosts in
                target.withBuffers { nextStarts, nextHosts in
                    // Written straight into the placement's buffers (no append per host: issue 12).
                    builder.appendExperts(count, hosts: oldHosts.count) { room in
                        var k = 0
                        var expert = 0  // i's expert in its layer
                        for i in 0..<count {
                            let was = Int(oldStarts[i])..<Int(oldStarts[i + 1])
                            let nextFrom = Int(nextStarts[i]), nextTo = Int(nextStarts[i + 1])
                            let from = k
                            if was.count == 1 && nextTo - nextFrom == 1 {
                                // The common case, one host before and after: kept or moved (then it
                                // keeps it), written as ``Room/close`` would write it.
                                room.hosts[k] = oldHosts[was.lowerBound]
                                room.slotExpert[k] = Int32(truncatingIfNeeded: expert)
                                room.slotReplicas[k] = 1
                                k += 1
                                room.ends[i] = room.base &+ Int32(truncatingIfNeeded: k)
                            } else {
                                k = keptHosts(was: UnsafeBufferPointer(rebasing: oldHosts[was]),
                                              next: UnsafeBufferPointer(rebasing: nextHosts[nextFrom..<nextTo]),
                                              into: room, at: k, disabled: disabled)
                                room.close(i, expert: expert, from: from, to: k)
                            }
                            expert += 1
                            if expert == old.experts { expert = 0 }
                        }
                        return k
                    }
                }
            }
        }
        let serving = builder.placement(dies: old.dies, slotsPerDie: old.slotsPerDie)
        return (serving, disabled.indices.filter { disabled[$0] })
    }

    /// The hosts `was` of an expert that keeps serving while a swap loads its new hosts `next`,
    /// written to `room`'s hosts from `k` on (the next free position is returned): the hosts
    /// `next` keeps, the others marked in `disabled`; all of them (none disabled) when it keeps
    /// every host or none (an expert never loses its last serving replica). One rule for both
    /// walks; inlined, as a call cost the Mooncake hour 8 M more instructions (a (32 dies, 9 slots)
    /// TE's replicated experts take this path on every swap).
    @inline(__always)
    private static func keptHosts(was: UnsafeBufferPointer<Int32>, next: UnsafeBufferPointer<Int32>,
                                  into room: ExpertPlacement.Builder.Room, at start: Int,
                                  disabled: UnsafeMutableBufferPointer<Bool>) -> Int {
        var k = start
        // Most experts keep every host: copied as they are.
        var keeps = 0
        for host in was where next.contains(host) { keeps += 1 }
        if keeps == was.count || keeps == 0 {
            for host in was {
                room.hosts[k] = host
                k += 1
            }
        } else {
            for host in was {
                if next.contains(host) {
                    room.hosts[k] = host
                    k += 1
                } else {
                    disabled[Int(host)] = true
                }
            }
        }
        return k
    }

    /// ``layersGained(from:to:)`` and, for placements of one shape, ``servingDuringSwap(from:to:)``
    /// in one walk of the two placements: the same figures and the same placement.
    ///
    /// The serving placement is `old` except for the experts that keep some but not all of their
    /// hosts (an expert keeping all or none serves from all of them). The walk therefore only
    /// compares hosts, counts the gained layers and notes those few experts; the serving
    /// placement is then `old` itself when there are none, else `old`'s buffers copied run by
    /// run with those experts cut down (issue 12: writing every host, slot and end one by one in
    /// the compare loop cost ~45 instructions per expert, 14,848 experts per swap, 248 swaps in
    /// a Mooncake hour).
    static func swapWork(from old: ExpertPlacement, to target: ExpertPlacement)
        -> (gained: [Int], serving: (placement: ExpertPlacement, disabled: [Int])?) {
        let count = old.layerCount * old.experts
        guard old.layerCount == target.layerCount, old.experts == target.experts, old.dies == target.dies,
              old.slotsPerDie == target.slotsPerDie, old.hostStart.count == count + 1,
              target.hostStart.count == count + 1
        else { return (layersGained(from: old, to: target), nil) }
        var changed = [Int](repeating: 0, count: target.dies)
        var disabled = [Bool](repeating: false, count: max(old.dies, 0))
        // Experts (flat index, layer by layer) that keep some but not all of their hosts.
        var cut = [Int32]()
        changed.withUnsafeMutableBufferPointer { changed in
            disabled.withUnsafeMutableBufferPointer { disabled in
                old.withBuffers { oldStarts, oldHosts in
                    target.withBuffers { nextStarts, nextHosts in
                        var i = 0
                        var wasFrom = Int(oldStarts[0]), nextFrom = Int(nextStarts[0])
                        while i < count {
                            let wasTo = Int(oldStarts[i &+ 1]), nextTo = Int(nextStarts[i &+ 1])
                            if wasTo &- wasFrom == 1 && nextTo &- nextFrom == 1 {
                                // Most experts have one host before and after: gained where it
                                // moved; it keeps its host meanwhile.
                                let next = nextHosts[nextFrom]
                                if next != oldHosts[wasFrom] { changed[Int(next)] &+= 1 }
                            } else {
                                let was = UnsafeBufferPointer(rebasing: oldHosts[wasFrom..<wasTo])
                                let next = UnsafeBufferPointer(rebasing: nextHosts[nextFrom..<nextTo])
                                for host in next where !was.contains(host) { changed[Int(host)] += 1 }
                                if keepsSome(was: was, next: next, disabled: disabled) {
                                    cut.append(Int32(truncatingIfNeeded: i))
                                }
                            }
                            wasFrom = wasTo
                            nextFrom = nextTo
                            i &+= 1
                        }
                    }
                }
            }
        }
        let disabledDies = disabled.indices.filter { disabled[$0] }
        guard !cut.isEmpty else { return (changed, (old, disabledDies)) }
        guard let serving = servingCopy(of: old, cutting: cut, to: target) else {
            return (changed, Self.servingDuringSwap(from: old, to: target))
        }
        return (changed, (serving, disabledDies))
    }

    /// Whether an expert on hosts `was`, to be on `next`, keeps some but not all of them while
    /// the swap loads (``keptHosts(was:next:into:at:disabled:)``'s rule); the hosts it then
    /// loses are marked in `disabled`.
    @inline(__always)
    private static func keepsSome(was: UnsafeBufferPointer<Int32>, next: UnsafeBufferPointer<Int32>,
                                  disabled: UnsafeMutableBufferPointer<Bool>) -> Bool {
        var keeps = 0
        for host in was where next.contains(host) { keeps += 1 }
        guard keeps != was.count && keeps != 0 else { return false }
        for host in was where !next.contains(host) { disabled[Int(host)] = true }
        return true
    }

    /// `old` with the experts in `cut` (ascending flat indices, each keeping some but not all of
    /// its hosts) cut down to the hosts `target` keeps: the other experts' hosts and per-slot
    /// figures copied in runs, their ends shifted by the hosts cut before them. The placement
    /// ``servingDuringSwap(from:to:)`` builds host by host. Nil when `old` keeps no per-slot arrays.
    private static func servingCopy(of old: ExpertPlacement, cutting cut: [Int32],
                                    to target: ExpertPlacement) -> ExpertPlacement? {
        let count = old.layerCount * old.experts, experts = old.experts
        var builder = ExpertPlacement.Builder(layers: old.layerCount, experts: experts, hosts: old.hostDies.count)
        let copied: Void? = old.withSlots { oldExperts, oldReplicas in
            old.withBuffers { oldStarts, oldHosts in
                target.withBuffers { nextStarts, nextHosts in
                    builder.appendExperts(count, hosts: oldHosts.count) { room in
                        let first = Int(oldStarts[0])
                        var k = 0          // hosts written
                        var read = first   // the next old slot to copy
                        var shift: Int32 = 0
                        var i = 0          // the next expert whose end to write
                        // Old slots `read ..< to` as they are, and the ends of experts `i ..< last`.
                        func copyRun(to: Int, endsBefore last: Int) {
                            let n = to - read
                            if n > 0 {
                                room.hosts.advanced(by: k).update(from: oldHosts.baseAddress! + read, count: n)
                                room.slotExpert.advanced(by: k).update(from: oldExperts.baseAddress! + read, count: n)
                                room.slotReplicas.advanced(by: k).update(from: oldReplicas.baseAddress! + read, count: n)
                                k += n
                            }
                            let offset = room.base &- Int32(truncatingIfNeeded: first) &- shift
                            while i < last {
                                room.ends[i] = oldStarts[i &+ 1] &+ offset
                                i &+= 1
                            }
                            read = to
                        }
                        for c in cut {
                            let e = Int(c)
                            let wasFrom = Int(oldStarts[e]), wasTo = Int(oldStarts[e + 1])
                            copyRun(to: wasFrom, endsBefore: e)
                            let next = UnsafeBufferPointer(rebasing: nextHosts[Int(nextStarts[e])..<Int(nextStarts[e + 1])])
                            let from = k
                            for s in wasFrom..<wasTo where next.contains(oldHosts[s]) {
                                room.hosts[k] = oldHosts[s]
                                k += 1
                            }
                            room.close(e, expert: e % experts, from: from, to: k)
                            shift &+= Int32(truncatingIfNeeded: (wasTo - wasFrom) - (k - from))
                            read = wasTo
                            i = e + 1
                        }
                        copyRun(to: oldHosts.count, endsBefore: count)
                        return k
                    }
                }
            }
        }
        guard copied != nil else { return nil }
        return builder.placement(dies: old.dies, slotsPerDie: old.slotsPerDie)
    }

    /// Per die of `target`, the layers in which it holds an expert it does not hold in `old` (the
    /// weights a swap to `target` loads there).
    static func layersGained(from old: ExpertPlacement, to target: ExpertPlacement) -> [Int] {
        var changed = [Int](repeating: 0, count: target.dies)
        changed.withUnsafeMutableBufferPointer { changed in
            old.withBuffers { oldStarts, oldHosts in
                target.withBuffers { nextStarts, nextHosts in
                    for i in 0..<(target.layerCount * target.experts) {
                        let wasFrom = Int(oldStarts[i]), wasTo = Int(oldStarts[i + 1])
                        let nextFrom = Int(nextStarts[i]), nextTo = Int(nextStarts[i + 1])
                        if wasTo - wasFrom == 1 && nextTo - nextFrom == 1 {
                            // Most experts have one host before and after: gained where it moved
                            // (the general walk below for one host each; issue 12: 14,848
                            // experts per swap).
                            let host = nextHosts[nextFrom]
                            if host != oldHosts[wasFrom] { changed[Int(host)] += 1 }
                            continue
                        }
                        let was = UnsafeBufferPointer(rebasing: oldHosts[wasFrom..<wasTo])
                        for s in nextFrom..<nextTo where !was.contains(nextHosts[s]) {
                            changed[Int(nextHosts[s])] += 1
                        }
                    }
                }
            }
        }
        return changed
    }
}
