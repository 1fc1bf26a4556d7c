import PodModel
import SimKit

extension ServingEngine {
    /// `fault …`, `heal ID`, `heal all`. A rejected command changes nothing.
    func applyFaultCommand(_ command: OperatorCommand) -> CommandReply {
        switch command {
        case .faultDie, .faultNPU, .faultNode, .faultLink, .faultStraggler, .faultHBM, .faultGlitch:
            // Every heartbeat round and link refresh walks the active faults: keep them bounded.
            let active = faults.activeCount
            if active >= Self.maxActiveFaults {
                return rejectFault("\(active) faults are active (at most \(Self.maxActiveFaults)); heal some first")
            }
        default:
            break
        }
        switch command {
        case .faultDie(let die):
            if let problem = checkDie(die) { return rejectFault(problem) }
            return injectDead(dies: [die], command: command, what: hardware.dieName(die))
        case .faultNPU(let npu):
            guard npu >= 0 && npu < topology.npuCount else {
                return rejectFault(PodTopology.missing(device, npu, count: topology.npuCount))
            }
            let dies = (0..<topology.diesPerNPU).map { npu * topology.diesPerNPU + $0 }
            // A one-die GPU is its die: "GPU 2 (die 2)" named it twice, once by a part it lacks.
            let dieRange = dies.count == 1 ? "die \(dies[0])" : "dies \(dies[0])–\(dies[dies.count - 1])"
            return injectDead(dies: dies, command: command,
                              what: "\(device) \(npu)" + (hardware.dieWord == device ? "" : " (\(dieRange))"))
        case .faultNode(let node):
            guard node >= 0 && node < topology.nodes else {
                return rejectFault(PodTopology.missing("node", node, count: topology.nodes))
            }
            let perNode = topology.npusPerNode * topology.diesPerNPU
            return injectDead(dies: Array((node * perNode)..<((node + 1) * perNode)), command: command,
                              what: "node \(node) (\(device)s \(node * topology.npusPerNode)–\((node + 1) * topology.npusPerNode - 1))")
        case .faultLink(let a, let b, let degrade):
            for npu in [a, b] where npu < 0 || npu >= topology.npuCount {
                return rejectFault(PodTopology.missing(device, npu, count: topology.npuCount))
            }
            let factor = degrade.map(Self.slowdownFactor)
            let capped = factor.map { degrade! > $0 ? " (capped at \(OperatorCommand.format($0))×)" : "" } ?? ""
            let state = factor.map { "degraded \(OperatorCommand.format($0))× (bandwidth ÷ \(OperatorCommand.format($0)))\(capped)" } ?? "down"
            let reply = inject(.link(npuA: a, npuB: b, degrade: factor), command: command,
                               message: "\(linkName) \(device) \(a) ↔ \(device) \(b) \(state)")
            // The link is slow or down from now on, detected or not: the KV channels over it
            // slow down or block at once (without this a degrade never took effect, and a dead
            // link carried transfers at full speed until the probes found it).
            refreshChannels()
            return reply
        case .faultStraggler(let die, let slowdown):
            if let problem = checkDie(die) { return rejectFault(problem) }
            // Clamped: a factor beyond the engine's bound behaves as the bound (and says so).
            let asked = slowdown ?? configuration.faults.defaultStragglerSlowdown
            let factor = Self.slowdownFactor(asked)
            let capped = factor < asked ? " (capped at \(OperatorCommand.format(factor))×)" : ""
            let reply = inject(.straggler(die: die, slowdown: factor), command: command,
                               message: "\(hardware.dieName(die)) runs \(OperatorCommand.format(factor))× slower (straggler)\(capped)")
            faults.slowDie(die, by: factor)
            refreshFaultState()
            return reply
        case .faultHBM(let die):
            if let problem = checkDie(die) { return rejectFault(problem) }
            return inject(.hbm(die: die), command: command, message: "uncorrectable HBM error on \(hardware.dieName(die))")
        case .faultGlitch:
            let reply = inject(.glitch, command: command, message: "network glitch: collectives in flight fail")
            startGlitch(faults.nextID - 1)
            return reply
        case .heal(let id):
            guard faults.record(id)?.active == true else {
                let active = faults.active.map { String($0.id) }
                return rejectFault("no active fault \(id)" + (active.isEmpty ? "; there are no active faults"
                    : "; active: \(active.joined(separator: ", "))"))
            }
            heal(id)
            refreshFaultState()
            return CommandReply(accepted: true, message: "fault \(id) healed")
        case .healAll:
            let active = faults.active.map(\.id)
            guard !active.isEmpty else { return rejectFault("there are no active faults") }
            for id in active { heal(id) }
            refreshFaultState()
            return CommandReply(accepted: true, message: "\(Self.counted(active.count, "fault")) healed")
        default:
            return rejectFault("'\(command)' is not a fault command")
        }
    }

    private func checkDie(_ die: Int) -> String? {
        die >= 0 && die < topology.dieCount ? nil : PodTopology.missing("die", die, count: topology.dieCount)
    }

    private func rejectFault(_ message: String) -> CommandReply { CommandReply(accepted: false, message: message) }

    /// Records a fault with a fresh id and logs it.
    @discardableResult
    private func inject(_ kind: FaultKind, command: OperatorCommand, message: String, stalled: Set<Int> = []) -> CommandReply {
        let id = faults.inject(kind, label: "\(command)", listing: listing(command), at: now, stalled: stalled)
        commandsApplied += 1
        telemetry.log(EngineEvent(time: now, kind: .fault, severity: .error, message: "fault \(id): \(message)", faultId: id))
        return CommandReply(accepted: true, message: "fault \(id): \(message)")
    }

    /// A fault command as the Faults panel, the ticker and the heal event list it: the
    /// command's words with the hardware's device names. The `:` language keeps `fault die D`,
    /// `fault hbm die D` and `fault npu N` on every kind of hardware; on a one-die GPU those
    /// name GPU D (or N), and a panel beside a grid, fault menu and events that say "GPU 0" listed
    /// "fault hbm die 0". On an Ascend pod every listing is the command itself (its dies are
    /// "die D", and an NPU keeps the command's `npu N`).
    func listing(_ command: OperatorCommand) -> String {
        let word = device
        return command.description(namingDie: hardware.dieName,
                                   device: word == "NPU" ? OperatorCommand.languageDeviceName : { "\(word) \($0)" })
    }

    /// What the replies call a device: the hardware's word ("GPU" on an A100 or H100), as the
    /// console, its help and fault menu say it. An 8-GPU cluster answered `fault npu 8` with "NPU 8
    /// does not exist; the pod has NPUs 0…7". The `:` language keeps `fault npu N` for every kind.
    private var device: String { hardware.deviceKind }

    /// The link a `fault link` names: the superpod's Unified Bus between NPUs; a GPU cluster has
    /// no UB (its GPUs talk over NVLink within a node and the network between nodes).
    private var linkName: String { hardware.deviceKind == "NPU" ? "UB link" : "link" }

    /// Dies stop answering. Every TE whose barrier includes one of them stalls: its step in
    /// progress never completes, and nothing notices until the heartbeats time out.
    private func injectDead(dies: [Int], command: OperatorCommand, what: String) -> CommandReply {
        let fresh = dies.filter { !faults.isDead($0) }
        guard !fresh.isEmpty else { return rejectFault("\(what) is already dead; heal its fault first") }
        var stalled = Set<Int>()
        // NPUs an NPU-fork is taking out of a TE: the TE still holds them until the copy ends.
        var forkedAway: [(npu: Int, te: Int)] = []
        for die in fresh {
            // A killed TE uses no hardware; a group drained empty has released its dies.
            guard let (i, g) = cluster.locate(die: die), faults.outage(of: i) != .killed else { continue }
            if let g, releasedByDrain(instance: i, group: g) { continue }
            // A die lost by a TE that is running (or coming back: restart, NPU-fork, repair)
            // goes through detection and recovery again, so the expert rule is checked anew.
            if let g, cluster.isOutOfService(te: i, group: g) && !faults.hasOutage(i) { continue }
            // An NPU an NPU-fork in progress is replacing leaves the TE when the copy ends: a die
            // of it that dies now stalls nothing. Stalled, the TE came back from the fork only to
            // hang on a die it no longer held, and was then put out of service "until repaired"
            // with nothing of its own to repair (every request after it refused).
            if case .forking(_, let spares)? = faults.outage(of: i), spares[die / topology.diesPerNPU] != nil {
                if !forkedAway.contains(where: { $0.npu == die / topology.diesPerNPU }) { forkedAway.append((die / topology.diesPerNPU, i)) }
                continue
            }
            stalled.insert(i)
        }
        faults.killDies(dies)
        // "No TE uses it" was said of an NPU a fork was still replacing, which its TE held.
        let replaced = forkedAway.map { "NPU \($0.npu) leaves \(instances[$0.te].name) when its NPU-fork copy ends" }
        let where_ = !stalled.isEmpty ? "stalls " + stalled.sorted().map { instances[$0].name }.joined(separator: ", ")
            : replaced.isEmpty ? "no TE uses it" : "stalls no TE (" + replaced.joined(separator: "; ") + ")"
        let reply = inject(.dead(dies: dies), command: command, message: "\(what) dead; \(where_)", stalled: stalled)
        refreshFaultState()
        return reply
    }

    /// A group on a drained node with nothing left on it: its hardware is released, so a fault
    /// there touches no traffic. Not while its dies are expert ranks of a TE with other groups
    /// still at work: an expert die serves the MoE layers of every group of its TE, however empty
    /// its own DP group is, so a dead one still hangs the TE's dispatch and combine (a drained
    /// decode node's chips kept serving experts while a fault on them was counted as touching
    /// nothing). Drained and empty as a whole, the TE runs no collective and is released.
    func releasedByDrain(instance i: Int, group g: Int) -> Bool {
        guard drainedEmpty(instance: i, group: g) else { return false }
        guard servesExperts(instance: i, group: g) else { return true }
        return instances[i].groups.allSatisfy { drainedEmpty(instance: i, group: $0) }
    }

    /// Group `g` of TE `i` is on a drained node and holds no request.
    private func drainedEmpty(instance i: Int, group g: Int) -> Bool {
        cluster.isOnDrainedNode(i, group: g)
            && (instances[i].decode?.slots[g] ?? 0) == 0 && (instances[i].prefill?.queues[g].isEmpty ?? true)
            && kvStore.requestsHoldingKV(GroupRef(te: i, group: g)) == 0
    }

    /// Whether the dies of TE `i`'s group `g` are expert ranks of the TE. A decode TE's expert
    /// dies are mapped (``buildExpertSlots()``; under MoE–attention disaggregation they are apart
    /// from the attention groups); a prefill or colocated TE of an MoE model spreads its experts
    /// over all its dies (EP = its dies).
    func servesExperts(instance i: Int, group g: Int) -> Bool {
        guard model.moe != nil, instances[i].groupSpec.ep > 1 else { return false }
        guard instances[i].role == .decode else { return true }
        return cluster.dies(of: i, group: g).contains { cluster.expertSlots[$0]?.instance == i }
    }

    /// Undoes a fault: the hardware is repaired (a repaired die rejoins with its weights loaded;
    /// a die replaced from the spare pool returns to the pool instead).
    private func heal(_ id: Int) {
        let waiting = faults.outages.filter { $0.value == .awaitingRepair }.keys.sorted()
        guard let record = faults.heal(id, at: now, holdsKnownDeadDie: hasKnownDeadDie) else { return }
        if case .hbm = record.kind { unmask(fault: record.id) }
        commandsApplied += 1
        telemetry.log(EngineEvent(time: now, kind: .heal, message: "fault \(record.id) healed (\(record.listing))",
                                  faultId: record.id))
        // A TE that was out until repaired returns now: say so, or its return goes unseen (its
        // fault was recovered, in the degraded sense, when it left).
        for i in waiting where !faults.hasOutage(i) {
            telemetry.log(EngineEvent(time: now, kind: .recovery,
                                      message: "fault \(record.id): \(instances[i].name) back in service (its \(hardware.dieWord)s repaired)"))
        }
    }

    /// Points each KV channel at its links' state: a down link blocks it until the probes find
    /// it and recovery reroutes it over RoCE; a degraded link slows it.
    func refreshChannels() {
        for c in channels.indices {
            let p = channels[c].prefillInstance, d = channels[c].decodeInstance
            let (blocked, rerouted, slowdown) = faults.linkState { a, b in linkJoins(a, b, p, d) }
            let plane = rerouted ? .roce : instances[p].plane
            if kvTransfer.setLink(c, plane: plane, slowdown: plane == .roce && rerouted ? 1 : Self.slowdownFactor(slowdown),
                                  blocked: blocked) {
                // The hung transfer starts over on the working path; queued ones follow.
                startTransfer(c)
            }
        }
    }

    /// Whether the UB link between NPUs a and b carries the KV path of prefill p → decode d.
    func linkJoins(_ a: Int, _ b: Int, _ p: Int, _ d: Int) -> Bool {
        (cluster.holds(p, npu: a) && cluster.holds(d, npu: b)) || (cluster.holds(p, npu: b) && cluster.holds(d, npu: a))
    }
}
