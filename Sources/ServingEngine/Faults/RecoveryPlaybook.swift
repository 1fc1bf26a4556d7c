import PodModel

/// How every recovery policy carries out its plan (system.md §4 "Faults"): the policy's
/// ``RecoveryPolicy/plan(_:role:settings:)`` picks the action; these resolve it against the pod
/// (which decode fallback is possible, which spares, which prefill TE gives its NPUs) and drive
/// the ``RecoveryActuator``. They read the pod only through a ``PodView`` and store nothing, so
/// the same calls on the same pod make the same steps in the same order.
///
/// ```swift
/// var act = recorder                                  // any RecoveryActuator
/// policy.recoverDead(te: 3, faults: [1], kind: .dead(dies: [40, 41]), pod: pod, act: &act)
/// ```
extension RecoveryPolicy {
    /// Dead dies were found in TE `te` (faults `ids`, the first one's `kind`).
    func recoverDead(te: Int, faults ids: [Int], kind: FaultKind, pod: some PodView, act: inout some RecoveryActuator) {
        // A TE in the middle of a restart is down already; a fork or a shrink now would end its
        // outage early (a 300 s restart was cut to an 8 s NPU-fork copied from no running TE).
        if pod.isRestarting(te) { return act.joinRestart(te, faults: ids) }
        switch plan(kind, role: pod.role(of: te), settings: pod.faultSettings) {
        case .decodeFailover(let fallbacks): decodeFailover(te, ids: ids, fallbacks: fallbacks, pod: pod, act: &act)
        case .requeuePrefill(let restartFirst): requeuePrefill(te, ids: ids, restartFirst: restartFirst, pod: pod, act: &act)
        case .restartWorld: act.restartWorld(faults: ids)
        case .redoIteration, .maskAndFail, .rerouteOverRoCE, .observe:
            requeuePrefill(te, ids: ids, restartFirst: false, pod: pod, act: &act)
        }
    }

    /// An uncorrectable HBM error on `die` (fault `id` of `kind`): fine-grained handling masks
    /// the region and fails the requests whose KV lived there; other plans restart.
    func recoverHBM(_ id: Int, die: Int, kind: FaultKind, pod: some PodView, act: inout some RecoveryActuator) {
        guard let (te, g) = pod.locate(die: die), let g else {
            act.finish([id], "no KV cache on \(pod.dieName(die)); nothing to fail")
            return
        }
        switch plan(kind, role: pod.role(of: te), settings: pod.faultSettings) {
        case .maskAndFail: act.maskAndFail(fault: id, te: te, group: g, die: die)
        case .restartWorld: act.restartWorld(faults: [id])
        default: act.restart(te, faults: [id], why: "\(pod.name(of: te)) restarts after an HBM fault on \(pod.dieName(die))")
        }
    }

    /// A network glitch (fault `id`) fails the collectives in flight: every TE with an iteration
    /// in flight redoes it, or the decoding TEs restart, or the world does.
    func recoverGlitch(_ id: Int, pod: some PodView, act: inout some RecoveryActuator) {
        switch plan(.glitch, role: .decode, settings: pod.faultSettings) {
        case .redoIteration:
            act.redoIteration(on: (0..<pod.teCount).filter(pod.hasIterationInFlight), fault: id)
        case .restartWorld:
            act.markDetected(id, how: "collectives fail with a network error")
            // As pd-failover's case below: with every TE already out (the world restarting) the
            // glitch has no collective to break. Restarting the world again pushed its return
            // out by the gap between the two glitches.
            if (0..<pod.teCount).allSatisfy({ pod.hasOutage($0) || pod.isRetired($0) }) {
                act.finish([id], "the world is already restarting; nothing more to restart")
            } else {
                act.restartWorld(faults: [id])
            }
        default:
            act.markDetected(id, how: "collectives fail with a network error")
            // Every TE that decodes restarts: decode TEs, or the colocated ones of a layout without
            // a decode side (restarting only role == .decode left a colocated pod never recovered).
            let restartable = (0..<pod.teCount).filter { pod.decodes($0) && !pod.hasOutage($0) }
            if restartable.isEmpty {
                // Every one is already restarting: the glitch has nothing left to break, so it is
                // recovered at once rather than never.
                act.finish([id], "every decoding TE is already restarting; nothing more to restart")
            } else {
                act.restartTogether(restartable, faults: [id], why: "restarts after a network glitch")
            }
        }
    }

    /// A dead UB link (fault `id` of `kind`) on the KV `paths`.
    func recoverLink(_ id: Int, paths: [Int], kind: FaultKind, pod: some PodView, act: inout some RecoveryActuator) {
        switch plan(kind, role: .decode, settings: pod.faultSettings) {
        case .restartWorld: act.restartWorld(faults: [id])
        default: act.rerouteOverRoCE(fault: id, paths: paths)
        }
    }

    // MARK: Decode: shrink, spare, kill prefill, restart

    /// The first fallback the pod allows, each impossible one noted on the way.
    private func decodeFailover(_ te: Int, ids: [Int], fallbacks: [DecodeFallback], pod: some PodView,
                                act: inout some RecoveryActuator) {
        let groups = 0..<pod.groupCount(of: te)
        let lost = Set(groups.filter { pod.holdsKnownDeadDie(te, group: $0) })
        let deadNPUs = Set(pod.knownDeadNPUs(of: te)).sorted()
        for fallback in fallbacks {
            switch fallback {
            case .shrink:
                let missing = pod.missingExperts(of: te)
                let live = groups.filter { !lost.contains($0) && !pod.isOutOfService(te, group: $0) }
                guard missing.isEmpty, !live.isEmpty else {
                    act.note(ids, "vertical shrink impossible: " + (live.isEmpty ? "no DP group left"
                        : "experts \(missing.prefix(8).map(String.init).joined(separator: ", "))\(missing.count > 8 ? "…" : "") "
                        + "would lose their last replica"))
                    continue
                }
                act.shrink(te, dropping: lost, live: live.count, faults: ids)
                return
            case .spare where pod.isScalingIn(te), .killPrefill where pod.isScalingIn(te):
                // The TE retires as soon as it is empty: NPUs given to it now would come straight
                // back, and meanwhile a starting TE or another fault could not have them.
                act.note(ids, "\(fallback == .spare ? "no spare NPU" : "no prefill TE's NPUs") spent on "
                    + "\(pod.name(of: te)): it is being scaled in")
                continue
            case .spare:
                let spares = pod.spareNPUs()
                guard spares.count >= deadNPUs.count else {
                    act.note(ids, "spare pool has \(spares.count) healthy NPUs, \(deadNPUs.count) needed")
                    continue
                }
                act.fork(te, replacing: deadNPUs, with: Array(spares.prefix(deadNPUs.count)), how: "spare",
                         dropping: lost, faults: ids)
                return
            case .killPrefill:
                guard let donor = Self.prefillDonor(needing: deadNPUs.count, pod: pod) else {
                    act.note(ids, "no prefill TE can give \(ServingEngine.counted(deadNPUs.count, "NPU"))")
                    continue
                }
                let given = Array(pod.npus(of: donor).suffix(deadNPUs.count))
                act.killPrefill(donor, giving: given, faults: ids)
                act.fork(te, replacing: deadNPUs, with: given, how: "\(pod.name(of: donor))'s", dropping: lost,
                         faults: ids)
                return
            case .restart:
                act.restart(te, faults: ids, why: "decode failover fell back to a restart of \(pod.name(of: te))")
                return
            }
        }
    }

    /// A prefill TE in service with enough NPUs to give, the last one first.
    static func prefillDonor(needing count: Int, pod: some PodView) -> Int? {
        (0..<pod.teCount).reversed().first {
            pod.role(of: $0) == .prefill && !pod.hasOutage($0) && pod.npus(of: $0).count >= count && !pod.isExternal($0)
        }
    }

    // MARK: Prefill

    /// A prefill (or colocated) TE lost a die: it leaves service, its requests are re-queued on
    /// the other prefill TEs; it comes back on spare NPUs (NPU-fork), or after a restart, or
    /// when healed.
    private func requeuePrefill(_ te: Int, ids: [Int], restartFirst: Bool, pod: some PodView,
                                act: inout some RecoveryActuator) {
        if restartFirst {
            act.restart(te, faults: ids, why: "\(pod.name(of: te)) restarts while the other TEs take its work")
            return
        }
        let deadNPUs = Set(pod.knownDeadNPUs(of: te)).sorted()
        // A TE being scaled in retires once empty: spares forked onto it would come straight back.
        let spares = pod.isScalingIn(te) ? [] : Array(pod.spareNPUs().prefix(deadNPUs.count))
        if !deadNPUs.isEmpty && spares.count == deadNPUs.count {
            act.fork(te, replacing: deadNPUs, with: spares, how: "spare", dropping: Set(0..<pod.groupCount(of: te)),
                     faults: ids)
            return
        }
        act.awaitRepair(te, faults: ids)
    }
}
