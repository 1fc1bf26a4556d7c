import SimKit

/// The few points where the engine's step and transfer loops consult the fault model. Kept
/// apart so the engine files carry one-line calls only.
extension ServingEngine {
    /// An instance does not start steps while a dead die stalls its barrier (undetected) or
    /// while it is out of service (restart, NPU-fork, awaiting repair).
    func isHalted(_ index: Int) -> Bool { faults.isHalted(index) }

    /// Whether a step-end event completes the step. A stale event (the step was abandoned) is
    /// dropped; a stalled instance's step never completes (system.md §4: a hung collective);
    /// after a network glitch the failed iteration is rolled back and redone.
    func acceptStepEnd(_ index: Int) -> Bool {
        guard instances[index].stepEndsAt == now else { return false }
        if isHalted(index) { return false }
        let glitches = faults.takeRedo(index)
        if !glitches.isEmpty {
            abandonStep(index)
            beginStep(index)
            // One redo for every glitch that hit the failed iteration.
            for fault in glitches { noteRedo(fault: fault, instance: index) }
            return false
        }
        instances[index].stepEndsAt = nil
        return true
    }

    /// Whether a transfer-done event completes the transfer: not when stale, and not while the
    /// link is down (the transfer hangs until the link is healed or rerouted).
    func acceptTransferDone(_ c: Int) -> Bool {
        kvTransfer.acceptDone(c, now: now)
    }

    /// Straggler slowdown of a decode TE's barrier: the slowest in-service die sets the pace of
    /// every dispatch and combine (system.md §1.3), for attention and for its expert slot.
    func stragglerSlowdown(instance index: Int) -> (attention: Double, expert: Double) {
        guard let factor = faults.slowdown(of: index) else { return (1, 1) }
        // With MoE and attention on separate dies a slow die slows its own barrier: A2E waits for
        // the slowest attention die, E2A for the slowest expert die. Elsewhere each die runs both.
        if configuration.deployment.moeAttention != nil, instances[index].role == .decode {
            let byRole = faults.slowdownByRole(of: index)
            return (byRole.attention, byRole.expertOnly)
        }
        return (factor, factor)
    }

    /// A prefill batch waits at the MoE barrier for its slowest die as well.
    func prefillSlowdown(instance index: Int) -> Double {
        faults.slowdown(of: index) ?? 1
    }

    /// Drops the step in progress: its end event becomes stale, batches are rebuilt next step
    /// (chunks not applied), decode redoes the iteration (nothing advanced).
    func abandonStep(_ index: Int) {
        instances[index].stepping = false
        instances[index].stepEndsAt = nil
        instances[index].prefill?.abandonBatch()
    }

    func handleFaultTimer(_ timer: FaultTimer) {
        switch timer {
        case .heartbeatRound: heartbeatRound()
        case .outageEnds(let instance): endOutage(instance)
        case .recovered(let fault): finishGlitchRecovery(fault)
        }
    }

    func startHeartbeats() {
        buildExpertSlots()
        scheduleHeartbeatRound(at: configuration.faults.heartbeatIntervalSeconds)
    }

    // MARK: Derived state

    /// Recomputes which instances are halted and the per-instance straggler factors; instances
    /// that leave the halted set resume.
    func refreshFaultState() {
        let resumed = faults.recomputeHalted()
        let halted = faults.halted
        faults.recomputeSlowdowns { die in
            guard let (i, g) = cluster.locate(die: die) else { return nil }
            if let g, cluster.isOutOfService(te: i, group: g) { return nil }
            // A die outside every DP group is a MoE–attention layout's expert die.
            return (i, g != nil)
        }
        for i in instances.indices {
            for g in instances[i].groups {
                let lost = faults.hasOutage(i) || groupHoldsKnownDeadDie(i, group: g)
                cluster.setOutOfService(te: i, group: g, lost)
            }
        }
        followShrinks()
        refreshChannels()
        noteDevicesInService()
        // Before the resumed TEs step: a held swap goes on (or is dropped) as they come back.
        followSwaps()
        for index in resumed.sorted() { resume(index) }
        // Groups back in service (a heal, the end of an outage) may take waiting KV at once.
        for index in instances.indices where !halted.contains(index) && !resumed.contains(index) {
            if instances[index].role == .decode { pullTransfers(index) }
            startStepIfIdle(index)
        }
    }

    /// Restarts the step loop of an instance that was halted: the step it was in is redone.
    func resume(_ index: Int) {
        if instances[index].stepping { abandonStep(index) }
        for fault in faults.takeRedo(index) { noteRedo(fault: fault, instance: index) }
        if instances[index].role == .decode { pullTransfers(index) }
        startStepIfIdle(index)
    }

    /// Whether a DP group of TE `i` holds a die the control plane knows is dead.
    func hasKnownDeadDie(_ i: Int) -> Bool {
        instances[i].groups.contains { groupHoldsKnownDeadDie(i, group: $0) }
    }

    /// Whether DP group `g` of TE `i` holds a die the control plane knows is dead: such a group
    /// is out of service (``refreshFaultState()``), fenced off in the snapshot, and lost to a
    /// recovery's shrink, all by this one test.
    func groupHoldsKnownDeadDie(_ i: Int, group g: Int) -> Bool {
        faults.holdsKnownDead(cluster.dies(of: i, group: g))
    }
}
