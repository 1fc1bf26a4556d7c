import PodModel

/// What recovery does with a detected fault, as steps the engine knows how to carry out.
public enum RecoveryAction: Equatable, Sendable {
    /// Network glitch: every DP group rolls back and redoes its last iteration.
    case redoIteration
    /// HBM fault: mask the region, fail the requests whose KV lived on the die.
    case maskAndFail
    /// Lost decode hardware: try these in order (system.md §4, the decode-shrink failover).
    case decodeFailover([DecodeFallback])
    /// Lost prefill (or colocated) hardware: re-queue its requests on the other prefill TEs,
    /// then bring the TE back on spares (NPU-fork) or keep it out until healed.
    case requeuePrefill(restartFirst: Bool)
    /// Restart every TE; everything in flight fails (the baseline).
    case restartWorld
    /// A dead UB link: route KV transfers over RoCE instead (scale-out plane, system.md §2).
    case rerouteOverRoCE
    /// Performance faults (straggler, degraded link): reported, kept until healed.
    case observe
}

public enum DecodeFallback: String, Equatable, Sendable {
    /// Fewer DP groups and EP ranks; needs one live replica of every expert.
    case shrink
    /// Replace the lost NPUs from the spare pool with an NPU-fork weight copy.
    case spare
    /// Take a prefill TE's NPUs ("kill prefill to preserve decode"), then fork onto them.
    case killPrefill
    /// Restart the decode TE (its requests re-prefilled); always possible.
    case restart
}

/// A recovery policy: how each kind of fault is handled (engine-components.md §3). Selected by
/// name from the configuration (``Policies/recovery``); a value, like every policy, so a fork
/// copies it.
///
/// A policy only maps a fault to a ``RecoveryAction``. Carrying the action out against the pod
/// (which fallback of a decode failover is possible, which spares, which donor) is shared by
/// every policy (RecoveryPlaybook.swift): it reads the pod through a ``PodView`` and acts through
/// a ``RecoveryActuator``, never through the engine itself.
///
/// ```swift
/// let policy = try Policies.recovery.make("restart-world")
/// policy.plan(.hbm(die: 4), role: .decode, settings: FaultSettings())   // .restartWorld
/// ```
public protocol RecoveryPolicy: Sendable {
    var name: String { get }
    /// What this policy does with a fault of `kind` on a TE of `role` (a glitch or a link fault
    /// is planned as the decode side's).
    func plan(_ kind: FaultKind, role: InstanceRole?, settings: FaultSettings) -> RecoveryAction
}

/// Glitch → redo the iteration; HBM → mask and fail; decode die → shrink, else spare, else
/// (optionally) kill a prefill TE, else restart the TE; prefill die → re-queue; dead link →
/// reroute over RoCE.
public struct FineGrainedRecovery: RecoveryPolicy {
    public var name: String { "fine-grained" }
    public init() {}

    public func plan(_ kind: FaultKind, role: InstanceRole?, settings: FaultSettings) -> RecoveryAction {
        switch kind {
        case .glitch: return .redoIteration
        case .hbm: return .maskAndFail
        case .link(_, _, let degrade): return degrade == nil ? .rerouteOverRoCE : .observe
        case .straggler: return .observe
        case .dead:
            if role == .decode {
                return .decodeFailover(RecoveryPolicies.decodeChain(settings))
            }
            return .requeuePrefill(restartFirst: false)
        }
    }
}

/// Separate P/D failover, before fine-grained handling: a glitch or an HBM fault restarts the
/// TEs it touches (decode first), a lost decode die shrinks decode, a lost prefill die restarts
/// that prefill TE while the others take its work.
public struct PDFailoverRecovery: RecoveryPolicy {
    public var name: String { "pd-failover" }
    public init() {}

    public func plan(_ kind: FaultKind, role: InstanceRole?, settings: FaultSettings) -> RecoveryAction {
        switch kind {
        case .glitch, .hbm:
            return role == .decode ? .decodeFailover([.restart]) : .requeuePrefill(restartFirst: true)
        case .link(_, _, let degrade): return degrade == nil ? .rerouteOverRoCE : .observe
        case .straggler: return .observe
        case .dead:
            if role == .decode {
                return .decodeFailover(RecoveryPolicies.decodeChain(settings))
            }
            return .requeuePrefill(restartFirst: true)
        }
    }
}

/// The baseline: any hard fault restarts the world (decode before prefill).
public struct RestartWorldRecovery: RecoveryPolicy {
    public var name: String { "restart-world" }
    public init() {}

    public func plan(_ kind: FaultKind, role: InstanceRole?, settings: FaultSettings) -> RecoveryAction {
        kind.isPerformance ? .observe : .restartWorld
    }
}

/// The recovery policies, following the paper's evolution (system.md §4): restart-the-world →
/// separate P/D failover → fine-grained handling. The registry itself is ``Policies/recovery``;
/// these are the old spellings of its names.
public enum RecoveryPolicies {
    public static var defaultName: String { Policies.recovery.defaultName }
    public static var names: [String] { Policies.recovery.names }

    /// The registry's entries, in listing order (help text, completion).
    static let entries: [PolicyRegistry<any RecoveryPolicy>.Entry] = [
        .init("fine-grained", "redo on glitch, mask HBM, shrink decode, re-queue prefill") { FineGrainedRecovery() },
        .init("pd-failover", "separate P/D failover: restart the touched TE, shrink decode") { PDFailoverRecovery() },
        .init("restart-world", "restart every TE; in-flight requests fail") { RestartWorldRecovery() },
    ]

    /// A lost decode die: shrink, else a spare, else (optionally) a prefill TE's NPUs, else restart.
    static func decodeChain(_ settings: FaultSettings) -> [DecodeFallback] {
        settings.killPrefillToPreserveDecode ? [.shrink, .spare, .killPrefill, .restart] : [.shrink, .spare, .restart]
    }
}
