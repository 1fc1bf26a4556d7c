import SimKit

/// Faults that leave the hardware running: an HBM error, a network glitch, a dead UB link.
extension ServingEngine {
    // MARK: HBM

    /// Fine-grained handling (system.md §4): the requests whose KV lived on the die fail with
    /// that reason and the region is masked; the service stays up.
    func maskAndFail(fault id: Int, instance i: Int, group g: Int, die: Int) {
        let group = GroupRef(te: i, group: g)
        let holders = requestsOn(instance: i, groups: [g]).filter { kvStore.contains(group, $0) }
        let tokens = holders.reduce(0) { $0 + (kvStore.tokens(of: $1, in: group) ?? 0) }
        let moved = evict(holders, outcome: .fail("hbm fault on \(hardware.dieName(die))"))
        let blocks = kvStore.mask(group, tokens: tokens, fault: id)
        if blocks > 0 { instances[i].decode?.noteLoadChanged(g, te: i, kv: kvStore) }
        finish([id], moved, "\(Self.counted(blocks, "KV block")) masked on \(hardware.dieName(die)) (\(instances[i].name)/dp\(g)); "
            + "\(Self.counted(moved.failed, "request")) whose KV lived there failed; the service stays up")
    }

    /// Heal: the masked region returns to the allocator (the KV store's), and the TE may use it.
    func unmask(fault id: Int) {
        guard let m = kvStore.unmask(fault: id) else { return }
        instances[m.te].decode?.noteLoadChanged(m.group, te: m.te, kv: kvStore)
        if instances[m.te].role == .decode { pullTransfers(m.te) }
        startStepIfIdle(m.te)
    }

    // MARK: Glitch

    /// A glitch fails the collectives in flight: recover by the configured policy (fine-grained:
    /// every stepping TE notices when its iteration ends in error, rolls back and redoes it; the
    /// step time is lost, no request fails; other policies restart).
    func startGlitch(_ id: Int) {
        guard faults.record(id) != nil else { return }
        var act = EngineRecoveryActuator(engine: self)
        faults.policy.recoverGlitch(id, pod: EnginePodView(engine: self), act: &act)
    }

    /// Glitch `id`: `stepping` TEs redo their iteration in flight; with none, it is over at once.
    func redoIteration(on stepping: [Int], fault id: Int) {
        faults.scheduleRedo(stepping, fault: id)
        if stepping.isEmpty {
            faults.markDetected(id, at: now, how: "no collective in flight")
            finish([id], (0, 0), "nothing to redo")
            faults.markHealed(id, at: now)
        }
    }

    /// A TE's iteration failed in the glitch and is being redone (its new step is scheduled).
    func noteRedo(fault id: Int, instance i: Int) {
        guard let record = faults.record(id), !record.recoveryOver else { return }
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
        guard let record = faults.record(id), !record.recoveryOver else { return }
        let names = faults.redone(fault: id)
        finish([id], (0, 0), "\(Self.counted(names.count, "TE")) rolled back and redid \(names.count == 1 ? "its" : "their") last iteration "
            + "(\(names.joined(separator: ", "))); no request failed")
        if record.healedAt == nil { faults.markHealed(id, at: now) }
        faults.endGlitch(id)
    }

    // MARK: Links

    /// Transfers on the `paths` move to the RoCE plane (our choice; system.md §2: every die also
    /// has 200 Gbit/s of RoCE) until the link is healed.
    func rerouteOverRoCE(_ id: Int, paths: [Int]) {
        faults.markRecovered(id, at: now)
        refreshChannels()
        let names = paths.map { "\(instances[channels[$0].prefillInstance].name) → \(instances[channels[$0].decodeInstance].name)" }
        finish([id], (0, 0), "KV transfers \(names.joined(separator: ", ")) rerouted over RoCE")
    }
}
