import SimKit

/// Faults that leave the hardware running: an HBM error, a network glitch, a dead UB link.
extension ServingEngine {
    // MARK: HBM

    /// Fine-grained handling (system.md §4): the region is masked and the requests whose KV
    /// lived on the die fail with that reason; the service stays up. Other policies restart.
    func recoverHBM(_ id: Int, die: Int) {
        guard let kind = faults.record(id)?.kind else { return }
        guard let (i, g) = locate(die: die), let g else {
            finish([id], (0, 0), "no KV cache on die \(die); nothing to fail")
            return
        }
        switch faults.plan(kind, role: instances[i].role) {
        case .maskAndFail:
            let holders = requestsOn(instance: i, groups: [g]).filter { instances[i].dp[g].kv.contains(requestID: $0) }
            let tokens = holders.reduce(0) { $0 + (instances[i].dp[g].kv.tokens(of: $1) ?? 0) }
            let moved = evict(holders, outcome: .fail("hbm fault on die \(die)"))
            let blocks = mask(instance: i, group: g, tokens: tokens, fault: id)
            finish([id], moved, "\(blocks) KV blocks masked on die \(die) (\(instances[i].name)/dp\(g)); "
                + "\(moved.failed) requests whose KV lived there failed; the service stays up")
        case .restartWorld:
            restartWorld(ids: [id])
        default:
            restartInstance(i, ids: [id], why: "\(instances[i].name) restarts after an HBM fault on die \(die)")
        }
    }

    /// Takes the failed requests' blocks out of use (at least one block, at most what is free):
    /// the allocator never hands the bad region out again until the fault is healed.
    private func mask(instance i: Int, group g: Int, tokens: Int, fault id: Int) -> Int {
        let blockTokens = configuration.kvBlockTokens
        let blocks = min(max(1, Saturating.ceilDiv(tokens, blockTokens)), instances[i].dp[g].kv.freeBlocks)
        guard blocks > 0 else { return 0 }
        let holder = HBMMask.holder(forFault: id)
        guard instances[i].dp[g].kv.allocate(requestID: holder, promptTokens: blocks * blockTokens, prefixHashes: []) != nil
        else { return 0 }
        instances[i].decode?.noteLoadChanged(g, groups: instances[i].dp)
        faults.addMask(HBMMask(instance: i, group: g, holder: holder), fault: id)
        return blocks
    }

    /// Heal: the masked region returns to the allocator.
    func unmask(fault id: Int) {
        guard let m = faults.removeMask(fault: id) else { return }
        instances[m.instance].dp[m.group].kv.free(requestID: m.holder)
        instances[m.instance].decode?.noteLoadChanged(m.group, groups: instances[m.instance].dp)
        if instances[m.instance].role == .decode { pullTransfers(m.instance) }
        startStepIfIdle(m.instance)
    }

    // MARK: Glitch

    /// A glitch fails the collectives in flight. Fine-grained: every stepping TE notices when its
    /// iteration ends in error, rolls back and redoes it (the step time is lost, no request
    /// fails). Other policies restart.
    func startGlitch(_ id: Int) {
        guard faults.record(id) != nil else { return }
        switch faults.plan(.glitch, role: .decode) {
        case .redoIteration:
            let stepping = instances.indices.filter { instances[$0].stepping && !isHalted($0) }
            faults.scheduleRedo(stepping, fault: id)
            if stepping.isEmpty {
                faults.markDetected(id, at: now, how: "no collective in flight")
                finish([id], (0, 0), "nothing to redo")
                faults.markHealed(id, at: now)
            }
        case .restartWorld:
            markGlitchDetected(id)
            restartWorld(ids: [id])
        default:
            markGlitchDetected(id)
            // Every TE that decodes restarts: decode TEs, or the colocated ones of a layout without
            // a decode side (restarting only role == .decode left a colocated pod never recovered).
            let restartable = instances.indices.filter { instances[$0].hasDecode && !faults.hasOutage($0) }
            for i in restartable {
                restartInstance(i, ids: [id], why: "\(instances[i].name) restarts after a network glitch")
            }
            // Every one is already restarting: the glitch has nothing left to break, so it is
            // recovered at once rather than never.
            if restartable.isEmpty { finish([id], (0, 0), "every decoding TE is already restarting; nothing more to restart") }
        }
    }

    private func markGlitchDetected(_ id: Int) {
        faults.markDetected(id, at: now, how: "collectives fail with a network error")
        logDetected([id], "collectives fail with a network error")
    }

    /// A TE's iteration failed in the glitch and is being redone (its new step is scheduled).
    func noteRedo(fault id: Int, instance i: Int) {
        guard let record = faults.record(id), record.recoveredAt == nil else { return }
        if record.detectedAt == nil {
            faults.markDetected(id, at: now, how: "\(instances[i].name): iteration ends with a collective error")
            logDetected([id], "\(instances[i].name): iteration ends with a collective error; DP groups roll back")
        }
        let end = instances[i].stepEndsAt ?? now
        if let until = faults.noteRedone(fault: id, by: instances[i].name, endingAt: end, now: now) {
            queue.schedule(at: until, .fault(.recovered(fault: id)))
        }
    }

    /// The last redone iteration of a glitch has finished: recovered, and the glitch is over.
    func finishGlitchRecovery(_ id: Int) {
        guard let record = faults.record(id), record.recoveredAt == nil else { return }
        let names = faults.redone(fault: id)
        finish([id], (0, 0), "\(names.count) TEs rolled back and redid their last iteration "
            + "(\(names.joined(separator: ", "))); no request failed")
        if record.healedAt == nil { faults.markHealed(id, at: now) }
        faults.endGlitch(id)
    }

    // MARK: Links

    /// A dead UB link on KV paths: transfers move to the RoCE plane (our choice; system.md §2:
    /// every die also has 200 Gbit/s of RoCE) until the link is healed.
    func rerouteLink(_ id: Int, paths: [Int]) {
        guard let kind = faults.record(id)?.kind else { return }
        switch faults.plan(kind, role: .decode) {
        case .restartWorld:
            restartWorld(ids: [id])
        default:
            faults.markRecovered(id, at: now)
            refreshChannels()
            let names = paths.map { "\(instances[channels[$0].prefillInstance].name) → \(instances[channels[$0].decodeInstance].name)" }
            finish([id], (0, 0), "KV transfers \(names.joined(separator: ", ")) rerouted over RoCE")
        }
    }
}
