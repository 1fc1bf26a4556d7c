import PodModel
import SimKit

/// Elastic scaling as DeepServe does it (system.md §4 "Fast scaling"): TEs started on spare
/// NPUs go through allocate → load weights → warm up → in service and only then take work;
/// TEs scaled in stop taking work, finish what they hold (as a drain does) and give their NPUs
/// back. The rest of the engine sees a starting or draining TE as one whose DP groups are not
/// placeable (the cluster manager holds it off: ``noteScalingPhase(_:)``), so placement,
/// transfers and the JE need no other change.
extension ServingEngine {
    /// The scaling lifecycle and the autoscaler slot: the cluster manager's child component
    /// (``ScalingController``). The handlers below call it, the cluster's hold-off and the queue in
    /// the order events, sequence numbers and logs depend on.
    var scaling: ScalingController { cluster.scaling }

    // MARK: Hooks called from elsewhere

    /// Called once at the end of `init`: marks the pre-warmed spares and starts the autoscaler.
    /// Schedules nothing while the autoscaler is off, so a run without scaling is unchanged.
    /// More pre-warmed TEs than the spare NPUs hold is refused (it was cut to them silently).
    func setUpScaling() throws {
        let settings = configuration.scaling
        if settings.prewarmedSpareTEs > 0 {
            let spares = spareNPUs()
            let smallest = scalableGroups().map(\.npusEach).min()
            let most = smallest.map { spares.count / $0 } ?? 0
            guard settings.prewarmedSpareTEs <= most else {
                let room = Deployment.PrewarmRoom(most: most, spareNPUs: spares.count, npusPerTE: smallest)
                throw ConfigError("engine configuration: scaling.prewarmedSpareTEs is \(settings.prewarmedSpareTEs); allowed 0…\(most) "
                    + "on deployment '\(configuration.deployment.name)' (\(room.reason))")
            }
            if let smallest {
                scaling.markPrewarmed(Set(wholeNodesFirst(spares).prefix(settings.prewarmedSpareTEs * smallest)))
            }
        }
        scaling.swapAutoscaler(try makeAutoscaler(configuration.autoscalerName))
        if scaling.isAutoscaling {
            scheduleAutoscaleTick()
            if let note = autoscalerNote { logScaling(note, severity: .warning) }
        }
    }

    /// A starting or scaled-in (draining, retired) TE takes no new work.
    func scalingHoldsOff(_ i: Int) -> Bool { cluster.isHeldOff(te: i) }

    /// Whether scaling retired TE `i`: it gave its NPUs back and serves nothing, so no fault
    /// recovery restarts it.
    func isRetired(_ i: Int) -> Bool { scaling.phase(i) == .retired }

    /// Keeps TE `i`'s hold-off (the cluster manager's) in step with its lifecycle phase: called
    /// wherever a phase enters or leaves `inService` (a new TE, scale-in, the end of a start,
    /// retirement). The TE's groups take work exactly while it is in service.
    func noteScalingPhase(_ i: Int) {
        cluster.holdOffFollowsPhase(te: i)
    }

    func handleScalingTimer(_ timer: ScalingTimer) {
        switch timer {
        case .phaseEnds(let i): endPhase(i)
        case .drainCheck: checkScaleIns()
        case .autoscaleTick: autoscaleTick()
        }
    }

    // MARK: Commands

    /// `scale ROLE N|+K|-K`, optionally forcing a load path (`from pool`).
    func applyScale(role: InstanceRole, change: ScaleChange, path: LoadPath?, origin: String) -> CommandReply {
        let current = scalableCount(role)
        let target: Int
        switch change {
        case .to(let n): target = n
        case .by(let k): target = current + k
        }
        guard let group = scalableGroups().first(where: { $0.role == role }) else {
            let why = configuration.deployment.moeAttention != nil && role == .decode
                ? "its decode is the MoE–attention layout, which is not scaled by TEs"
                : configuration.deployment.groups.contains { $0.role == role }
                    ? "its \(role.rawValue) TEs run outside the pod (external)"
                    : "it has no \(role.rawValue) group to take a TE's shape from"
            return CommandReply(accepted: false, message: "deployment '\(configuration.deployment.name)' cannot scale \(role.rawValue): \(why)")
        }
        guard target >= 1 else {
            return CommandReply(accepted: false, message: "\(role.rawValue) would be left with \(target < 1 ? "no TE" : Self.counted(target, "TE")) (asked for \(target)); at least one TE per role must stay")
        }
        guard target <= CommandLimits.maxScaleTEs else {
            return CommandReply(accepted: false, message: "at most \(CommandLimits.maxScaleTEs) TEs per role, asked for \(target)")
        }
        guard target != current else {
            return CommandReply(accepted: false, message: "\(role.rawValue) already has \(Self.counted(current, "TE")) (in service or starting)")
        }
        if target > current {
            return scaleUp(role: role, group: group, from: current, to: target, path: path, origin: origin)
        }
        guard path == nil else {
            return CommandReply(accepted: false, message: "a load path applies to a scale-up; \(role.rawValue) would go down")
        }
        return scaleDown(role: role, from: current, to: target, origin: origin)
    }

    /// " (96 more are idle on drained nodes; undrain to use them)", or nothing when none is.
    private func idleOnDrainedNodes() -> String {
        let idle = cluster.idleNPUsOnDrainedNodes(podNPUs: topology.npuCount, isDeadDie: faults.isDead)
        return idle > 0 ? " (\(idle) more \(idle == 1 ? "is" : "are") idle on drained nodes; undrain to use them)" : ""
    }

    private func scaleUp(role: InstanceRole, group: InstanceGroup, from: Int, to: Int, path: LoadPath?,
                         origin: String) -> CommandReply {
        let count = to - from
        let perTE = group.npusEach
        let spare = spareNPUs()
        guard count * perTE <= spare.count else {
            return CommandReply(accepted: false, message: "a \(role.rawValue) TE needs \(perTE) NPU\(perTE == 1 ? "" : "s"); "
                + (count > 1 ? "\(count) TEs need \(count * perTE); " : "") + "\(spare.count) \(spare.count == 1 ? "is" : "are") spare"
                + idleOnDrainedNodes())
        }
        if let path, let why = unavailable(path, role: role, npus: nil) {
            return CommandReply(accepted: false, message: "load path \(path.rawValue) is not available: \(why)")
        }
        let detail = scaling.openOperation(role: role, from: from, to: to, at: now)
        var started: [String] = []
        for _ in 0..<count {
            if let name = startTE(role: role, group: group, detail: detail, path: path) { started.append(name) }
        }
        guard !started.isEmpty else {
            scaling.withdrawOperation(detail)
            return CommandReply(accepted: false, message: "no \(role.rawValue) TE could be built on the spare NPUs")
        }
        scaling.setTarget(of: detail, to: from + started.count)
        return CommandReply(accepted: true, message: "\(origin)\(role.rawValue) \(from) → \(from + started.count) \(from + started.count == 1 ? "TE" : "TEs"): "
            + "starting \(started.joined(separator: ", ")) on spare NPUs (allocate → load weights → warm up → in service)")
    }

    /// Builds a TE on spare NPUs and starts its allocate phase. Nil when it cannot be built.
    @discardableResult
    func startTE(role: InstanceRole, group: InstanceGroup, detail: Int, path: LoadPath?) -> String? {
        let spare = spareNPUs()
        guard spare.count >= group.npusEach else { return nil }
        // Pre-warmed nodes first unless another path is forced (then they are kept for the DRAM path).
        let warmFirst = path == nil || path == .dram
        let npus = Array(wholeNodesFirst(spare, preferring: scaling.prewarmedNPUs, preferredFirst: warmFirst)
            .prefix(group.npusEach)).sorted()
        let ordinal = instances.filter { $0.role == role }.count
        let name = "\(role.rawValue)-\(ordinal)"
        do {
            let hw = try group.hardware.map { try HardwareProfile.named($0) } ?? hardware
            var spec = group
            spec.count = 1
            spec.firstNPU = npus[0]
            try addInstance(role: role, name: name, spec: spec, hardware: hw, npus: npus, firstDie: 0)
        } catch {
            return nil
        }
        let i = instances.count - 1
        scaling.beginStart(te: i, operation: detail, path: path)
        noteScalingPhase(i)
        wireNewInstance(i)
        schedulePhaseEnd(i, after: configuration.scaling.allocateSeconds)
        logScaling("\(name): allocating \(npus.count == 1 ? "NPU" : "\(npus.count) NPUs") \(Self.ranges(npus))")
        return name
    }

    private func scaleDown(role: InstanceRole, from: Int, to: Int, origin: String) -> CommandReply {
        var remove = from - to
        let members = instances.indices.filter { instances[$0].role == role && !instances[$0].external }
        let starting = members.filter { scaling.phase($0).isStarting }.reversed()
        let serving = members.filter { scaling.phase($0) == .inService && faults.outage(of: $0) != .killed }
        let cancelled = Array(starting.prefix(remove))
        remove -= cancelled.count
        guard serving.count - remove >= 1 else {
            return CommandReply(accepted: false, message: "\(role.rawValue) has \(Self.counted(serving.count, "TE")) in service; "
                + "at least one must stay in service")
        }
        let detail = scaling.openOperation(role: role, from: from, to: to, at: now)
        var cancelledNames: [String] = [], names: [String] = []
        for i in cancelled {
            cancelledNames.append(instances[i].name + " (start cancelled)")
            cancelStart(i)
            retire(i)
        }
        // Newest first, but a TE that takes no work anyway (every group on a drained node or out
        // of service) goes before any that does: `scale prefill 1` after `drain node 0` and
        // `drain node 1` used to retire prefill-5 … prefill-1 and keep the drained prefill-0, so
        // the pod took no prompt at all and every arrival was rejected.
        let newestFirst = serving.reversed()
        let victims = newestFirst.filter { !cluster.hasPlaceableGroup(te: $0) } + newestFirst.filter { cluster.hasPlaceableGroup(te: $0) }
        for i in victims.prefix(remove) {
            names.append(instances[i].name)
            beginScaleIn(i, detail: detail)
        }
        scaling.readyIfNothingPending(detail, at: now)
        scheduleDrainCheck()
        // A cancelled start held no work: it never came into service and its NPUs are spare at once
        // (the reply said it "stops taking work, finishes what it holds" like a TE scaled in).
        var parts: [String] = []
        if !cancelledNames.isEmpty {
            parts.append("\(cancelledNames.joined(separator: ", ")) never came into service; "
                + "\(cancelledNames.count == 1 ? "its NPUs are" : "their NPUs are") back in the spare pool")
        }
        if !names.isEmpty {
            parts.append("\(names.joined(separator: ", ")) \(names.count == 1 ? "stops taking work, finishes what it holds, then returns its NPUs" : "stop taking work, finish what they hold, then return their NPUs")")
        }
        return CommandReply(accepted: true, message: "\(origin)\(role.rawValue) \(from) → \(to) \(to == 1 ? "TE" : "TEs"): "
            + parts.joined(separator: "; "))
    }

    /// A TE scaled in: no new work; queued prefills that have not started move to other TEs;
    /// transfers waiting for its KV go to another decode TE; what runs finishes in place.
    private func beginScaleIn(_ i: Int, detail: Int) {
        scaling.beginScaleIn(te: i, operation: detail)
        noteScalingPhase(i)
        var queued: [Int] = []
        for (id, r) in requests where r.stage == .queued && r.prefillInstance == i && prefillTicket(of: r) != nil {
            queued.append(id)
        }
        let moved = evict(queued.sorted(), outcome: .move)
        let waiting = instances[i].decode?.takeTransferQueue() ?? []
        for id in waiting { registerTransfer(id) }
        logScaling("\(instances[i].name): scaling in — takes no new work; \(Self.counted(queued.count - moved.failed, "queued prefill")) "
            + "moved elsewhere, \(waiting.count) waiting transfers sent to other decode TEs")
    }

    // MARK: Phases of a start

    private func schedulePhaseEnd(_ i: Int, after seconds: Double) {
        scaling.schedulePhaseEnd(te: i, at: now.after(Self.delay(seconds)), queue: &queue)
    }

    private func endPhase(_ i: Int) {
        guard let life = scaling.lifecycle[i], life.phaseEndsAt == now else { return }
        switch life.phase {
        case .allocating:
            beginLoading(i)
        case .loading:
            scaling.beginWarmUp(te: i)
            schedulePhaseEnd(i, after: configuration.scaling.warmUpSeconds)
            logScaling("\(instances[i].name): weights loaded; warming up (\(OperatorCommand.format(configuration.scaling.warmUpSeconds)) s)")
        case .warmingUp:
            finishStart(i, ready: true)
            if instances[i].role == .decode { pullTransfers(i) }
            startStepIfIdle(i)
            let record = scaling.operation(life.detail)
            logScaling("\(instances[i].name): in service (\(instances[i].role.rawValue) \(record.from) → \(record.to), "
                + "\(OperatorCommand.format(((now - record.requestedS) * 1000).rounded() / 1000)) s after the decision, "
                + "weights by \(life.loadPath?.rawValue ?? "?"))")
        case .inService, .draining, .retired:
            return
        }
    }

    /// Picks the load path (the forced one if still available, else the fastest available) and
    /// starts the load.
    private func beginLoading(_ i: Int, note: String = "") {
        guard let life = scaling.lifecycle[i] else { return }
        let role = instances[i].role
        var choice: (path: LoadPath, seconds: Double, source: Int?)?
        var fallback = ""
        if let forced = life.loadPath, life.phase == .allocating {
            if let why = unavailable(forced, role: role, npus: cluster.npus(of: i)) {
                fallback = "; \(forced.rawValue) no longer available (\(why)), fastest available instead"
            } else {
                choice = loadTime(forced, instance: i)
            }
        }
        if choice == nil {
            for path in LoadPath.allCases where unavailable(path, role: role, npus: cluster.npus(of: i)) == nil {
                let candidate = loadTime(path, instance: i)
                if choice == nil || candidate.seconds < choice!.seconds { choice = candidate }
            }
        }
        guard let choice else { return }  // object storage is always available
        scaling.beginLoading(te: i, path: choice.path, source: choice.source)
        schedulePhaseEnd(i, after: choice.seconds)
        let from = choice.source.map { " from \(instances[$0].name)" } ?? ""
        logScaling("\(instances[i].name): loading weights by \(choice.path.rawValue)\(from), "
            + "\(OperatorCommand.format((choice.seconds * 1000).rounded() / 1000)) s\(fallback)\(note)")
    }

    /// Why a load path cannot serve a start now, or nil. `npus` nil: the NPUs are not chosen yet
    /// (the DRAM path then asks whether enough pre-warmed spares exist).
    func unavailable(_ path: LoadPath, role: InstanceRole, npus: [Int]?) -> String? {
        let settings = configuration.scaling
        switch path {
        case .npuFork:
            guard settings.npuForkEnabled else { return "NPU-fork is turned off" }
            return forkSource() == nil ? "no TE of the model is in service to fork from" : nil
        case .dram:
            if let npus { return npus.allSatisfy(scaling.isPrewarmed) ? nil : "its NPUs are not pre-warmed" }
            let warm = spareNPUs().filter(scaling.isPrewarmed).count
            let need = scalableGroups().first { $0.role == role }?.npusEach ?? 0
            return warm >= need && need > 0 ? nil : "\(warm) pre-warmed spare NPUs, a \(role.rawValue) TE needs \(need)"
        case .pool:
            guard settings.modelInPool else { return "the model is not held in the pooled DRAM cache" }
            return kvStore.poolCapacityBytes > 0 ? nil : "the pod has no pooled DRAM cache"
        case .objectStore:
            return nil
        }
    }

    /// Seconds to load TE `i`'s weights by `path`. Object store, pool and DRAM: the model's bytes
    /// over the path's bandwidth (system.md §4 anchors). NPU-fork: every die of the new TE
    /// receives its share from the source TE's dies over UB in parallel (the fabric model, as the
    /// fault path's fork); a source with fewer dies sends several shares per die.
    func loadTime(_ path: LoadPath, instance i: Int) -> (path: LoadPath, seconds: Double, source: Int?) {
        let settings = configuration.scaling
        let bytes = model.weightBytes
        if let seconds = settings.streamSeconds(path, bytes: bytes) { return (path, seconds, nil) }
        guard let source = forkSource() else { return (path, .infinity, nil) }
        let spec = instances[i].groupSpec
        let targetDies = spec.dp * spec.tp
        let sourceSpec = instances[source].groupSpec
        let sourceDies = max(1, sourceSpec.dp * sourceSpec.tp)
        let total = weightBytesPerDie(spec) * Double(targetDies)
        return (path, cost.weightCopy(bytes: total / Double(min(sourceDies, targetDies))), source)
    }

    /// The running TE a fork copies from: in service inside the pod, no outage or stall, the
    /// one with the most dies (most UB links to copy over), then the lowest index.
    func forkSource() -> Int? {
        var best: Int?
        for i in instances.indices where !instances[i].external && scaling.phase(i) == .inService
            && !faults.hasOutage(i) && !isHalted(i) && cluster.hasNPUs(i) {
            let dies = instances[i].groupSpec.dp * instances[i].groupSpec.tp
            if best == nil || dies > instances[best!].groupSpec.dp * instances[best!].groupSpec.tp { best = i }
        }
        return best
    }

    /// The TE leaves its start: in service (`ready`) or cancelled; the operation completes when
    /// its last TE does.
    private func finishStart(_ i: Int, ready: Bool) {
        guard scaling.finishStart(te: i, ready: ready, at: now) else { return }
        noteScalingPhase(i)
    }

    /// A scale-down cancels TE `i`'s start: its scale-up reaches one TE fewer. When that leaves
    /// the scale-up with nothing reached and nothing starting, the log says it came to nothing.
    private func cancelStart(_ i: Int) {
        guard let index = scaling.cancelStart(te: i, at: now) else { return }
        noteScalingPhase(i)
        let record = scaling.operation(index)
        guard scaling.pendingTEs(of: index) == 0, record.to == record.from else { return }
        logScaling(Self.cameToNothing(record))
    }

    /// The event of a scale-up none of whose starts came into service: each was cancelled by a
    /// scale-down or lost its hardware to a fault (with no spares to start over on).
    static func cameToNothing(_ record: ScaleDetail) -> String {
        let how = switch (record.cancelled, record.lost) {
        case (1, 0): "its start was cancelled"
        case (let n, 0): "all \(n) of its starts were cancelled"
        case (0, 1): "its start lost its hardware"
        case (0, let n): "all \(n) of its starts lost their hardware"
        case (let c, let l): "\(c) of its starts \(c == 1 ? "was" : "were") cancelled and \(l) lost \(l == 1 ? "its" : "their") hardware"
        }
        return "\(record.role) scale-up asked for at \(OperatorCommand.format(record.requestedS)) s came to nothing: \(how) before coming into service"
    }

    // MARK: Scale-in completion

    private func scheduleDrainCheck() {
        scaling.scheduleDrainCheck(at: now.after(Self.scaleInCheckSeconds), queue: &queue)
    }

    /// How often draining TEs are checked for emptiness (1 s, as the heartbeat round).
    static let scaleInCheckSeconds = 1.0

    private func checkScaleIns() {
        scaling.drainCheckFired()
        let draining = scaling.drainingTEs()
        guard !draining.isEmpty else { return }
        var holding: [Int: Int] = [:]
        for r in requests.values {
            if r.prefillInstance >= 0, r.stage != .decode || instances[r.prefillInstance].role == .colocated {
                holding[r.prefillInstance, default: 0] += 1
            }
            if r.decodeInstance >= 0 { holding[r.decodeInstance, default: 0] += 1 }
        }
        var stillDraining = false
        for i in draining {
            // A TE out for a restart or awaiting repair is still "stepping" in the step its dead
            // die stopped; that step is redone only if it comes back, and what it held has gone
            // to other TEs. Waiting on it kept a TE awaiting repair from ever being retired.
            let outOfService = switch faults.outage(of: i) {
            case .restarting, .awaitingRepair: true
            default: false
            }
            let busy = holding[i, default: 0] > 0 || (instances[i].decode?.hasIncoming ?? false)
                || (instances[i].stepping && !outOfService)
            if busy {
                stillDraining = true
                continue
            }
            let detail = scaling.lifecycle[i]!.detail
            let npus = cluster.npus(of: i)
            // The stopped step ends with the TE: its end event must not complete it later.
            if instances[i].stepping { abandonStep(i) }
            retire(i)
            scaling.finishOne(of: detail, at: now)
            logScaling("\(instances[i].name): scaled in — nothing left on it; \(npus.count == 1 ? "NPU" : "\(npus.count) NPUs") \(Self.ranges(npus)) "
                + "back in the spare pool")
        }
        if stillDraining { scheduleDrainCheck() }
    }

    /// The TE gives up its hardware: its NPUs return to the spare pool (dead ones stay out for
    /// repair: ``spareNPUs()`` skips dead dies), its DP groups hold nothing.
    func retire(_ i: Int) {
        // Taken before the outage is forgotten: faults whose recovery ends when this TE returns
        // from a restart or fork would otherwise wait for a return that never comes.
        let awaiting = faults.takePendingRecovery(of: i)
        let outage = faults.outage(of: i)
        scaling.retire(te: i)
        noteScalingPhase(i)
        // The DP groups stay (empty, held off, on no hardware): requests that passed through keep
        // valid indices, and their prefix-cache counters stay in the report's hit rate.
        faults.forget(instance: i)
        experts.retire(i)
        cluster.release(i)
        layoutChanged()
        handOverRecoveries(awaiting, from: i, outage: outage)
    }

    /// Faults `ids` were to be recovered when TE `i` came back, and scaling retired it first
    /// (a TE out for a restart holds nothing, so a scale-in retires it at once). A restart of
    /// the world is over when the rest of its wave returns (the TEs restarting until the same
    /// time); otherwise nothing is left to wait for, and the faults are recovered now.
    private func handOverRecoveries(_ ids: [Int], from i: Int, outage: InstanceOutage?) {
        guard !ids.isEmpty else { return }
        if case .restarting(let until) = outage,
           let heir = instances.indices.last(where: { $0 != i && faults.outage(of: $0) == .restarting(until: until) }) {
            faults.awaitRecovery(ids, onReturnOf: heir)
            note(ids, "\(instances[i].name) scaled in while restarting; the restart is over when \(instances[heir].name) returns")
            return
        }
        for id in ids where faults.record(id).map({ !$0.recoveryOver }) == true {
            faults.markRecovered(id, at: now)
            logRecovered(id, "\(instances[i].name) scaled in before it returned; the TEs left serve without it")
        }
    }

    // MARK: Faults during a scale

    /// Recovery hook: dead dies found in TE `i`. A starting TE is rebuilt on fresh spares (its
    /// start begins again) or, with no spares, given up; starts forking from `i` switch to
    /// another source or path. Returns true when scaling handled the TE.
    func scalingTakesRecovery(instance i: Int, faults ids: [Int]) -> Bool {
        guard scaling.hasLifecycles else { return false }
        for (loader, life) in scaling.lifecycle.sorted(by: { $0.key < $1.key })
        where life.phase == .loading && life.forkSource == i {
            scaling.restartLoad(te: loader)
            beginLoading(loader, note: " (the fork source \(instances[i].name) failed; the copy starts over)")
        }
        guard let life = scaling.lifecycle[i], life.phase.isStarting else { return false }
        let role = instances[i].role
        let name = instances[i].name
        let group = instances[i].groupSpec
        let path = life.loadPath
        let forced = life.phase == .allocating ? path : nil
        finishStart(i, ready: false)
        retire(i)
        // The replacement belongs to the same operation.
        scaling.awaitReplacement(of: life.detail)
        let replacement = startTE(role: role, group: group, detail: life.detail, path: forced)
        scaling.replacementTried(for: life.detail, started: replacement != nil, at: now)
        let message = "\(name) was starting (\(life.phase.rawValue)) and lost hardware: start abandoned, its healthy NPUs "
            + "back in the spare pool; " + (replacement.map { "\($0) starts over on fresh spare NPUs" }
                ?? "no spare NPUs for a replacement — the scale falls one TE short")
        logScaling(message, severity: .warning)
        let record = scaling.operation(life.detail)
        if replacement == nil, scaling.pendingTEs(of: life.detail) == 0, record.to == record.from {
            logScaling(Self.cameToNothing(record), severity: .warning)
        }
        finish(ids, (0, 0), message)
        refreshFaultState()
        return true
    }

    // MARK: Wiring a new TE into the engine

    /// Channels to and from the new TE, its expert routing and expert-die slots, and the
    /// smallest-group bounds.
    private func wireNewInstance(_ i: Int) {
        for p in instances.indices where instances[p].role == .prefill {
            for d in instances.indices where instances[d].role == .decode {
                kvTransfer.connect(prefill: p, decode: d, plane: instances[p].plane)
            }
        }
        experts.add(i, host: expertHost(instances[i]), seed: configuration.seed &+ UInt64(i), now: now)
        if instances[i].role == .decode {
            let dies = cluster.dies(of: i)
            cluster.mapExpertDies(of: i, onto: dies.prefix(instances[i].groupSpec.ep))
        }
        je.noteGroupBlocks(of: i..<(i + 1), instances: instances, kv: kvStore)
    }

    // MARK: Helpers

    /// Deployment groups a TE can be scaled from: inside the pod, not the MoE–attention decode.
    func scalableGroups() -> [InstanceGroup] {
        configuration.deployment.groups.filter { !$0.external }
    }

    /// TEs of a role in service or starting (what a scale target counts).
    func scalableCount(_ role: InstanceRole) -> Int {
        instances.indices.filter {
            instances[$0].role == role && !instances[$0].external
                && (scaling.phase($0) == .inService || scaling.phase($0).isStarting) && faults.outage(of: $0) != .killed
        }.count
    }

    /// NPUs ordered so that whole free nodes come first (those in `preferred` before the rest),
    /// then the NPUs of partly used nodes, each in id order.
    func wholeNodesFirst(_ npus: [Int], preferring preferred: Set<Int> = [], preferredFirst: Bool = true) -> [Int] {
        let perNode = topology.npusPerNode
        var byNode: [Int: [Int]] = [:]
        for npu in npus { byNode[npu / perNode, default: []].append(npu) }
        let nodes = byNode.keys.sorted()
        let whole = nodes.filter { byNode[$0]!.count == perNode }
        let warm = whole.filter { byNode[$0]!.allSatisfy(preferred.contains) }
        let cold = whole.filter { !byNode[$0]!.allSatisfy(preferred.contains) }
        let partial = nodes.filter { byNode[$0]!.count < perNode }
        return ((preferredFirst ? warm + cold : cold + warm) + partial).flatMap { byNode[$0]! }
    }

    /// "288–303" style NPU ranges.
    static func ranges(_ npus: [Int]) -> String {
        var parts: [String] = []
        var start: Int?
        var last = -2
        for npu in npus.sorted() {
            if npu != last + 1 {
                if let s = start { parts.append(s == last ? "\(s)" : "\(s)–\(last)") }
                start = npu
            }
            last = npu
        }
        if let s = start { parts.append(s == last ? "\(s)" : "\(s)–\(last)") }
        return parts.joined(separator: ", ")
    }

    func logScaling(_ message: String, severity: EngineEvent.Severity = .info) {
        telemetry.log(EngineEvent(time: now, kind: .scaling, severity: severity, message: message))
    }
}

/// A scale target: absolute (`scale prefill 12`) or relative (`+4`, `-2`).
public enum ScaleChange: Sendable, Equatable {
    case to(Int)
    case by(Int)
}

extension ServingEngine {
    /// Fault hook, right after a fault command: a starting TE sees its own device fail at once
    /// (its load errors out), and a fork whose source lost a die fails its copy at once; neither
    /// waits for the heartbeats.
    func scalingNoteFaults() {
        guard scaling.hasLifecycles else { return }
        func hasDeadDie(_ i: Int) -> Bool { cluster.dies(of: i).contains(where: faults.isDead) }
        for (loader, life) in scaling.lifecycle.sorted(by: { $0.key < $1.key }) where life.phase == .loading {
            guard let source = life.forkSource, hasDeadDie(source) else { continue }
            scaling.restartLoad(te: loader)
            beginLoading(loader, note: " (the fork source \(instances[source].name) lost a die mid-copy; the copy starts over)")
        }
        for (i, life) in scaling.lifecycle.sorted(by: { $0.key < $1.key }) where life.phase.isStarting && hasDeadDie(i) {
            let dies = Set(cluster.dies(of: i))
            let settled = faults.settleFailedStart(instance: i, dies: dies, at: now,
                                                   how: "\(instances[i].name) was starting: its weight load failed on the dead device")
            _ = scalingTakesRecovery(instance: i, faults: settled)
        }
        refreshFaultState()
    }
}
