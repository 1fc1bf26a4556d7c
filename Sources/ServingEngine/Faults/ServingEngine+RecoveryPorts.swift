import PodModel
import SimKit

/// The engine's side of the fault ports (engine-components.md §2): a read-only view of the pod
/// for recovery policies and the drain, made per call and never stored (it holds the engine
/// only for the call).
struct EnginePodView: HeartbeatView, DrainView {
    let engine: ServingEngine

    var faultSettings: FaultSettings { engine.faults.settings }
    var teCount: Int { engine.instances.count }
    func role(of te: Int) -> InstanceRole { engine.instances[te].role }
    func name(of te: Int) -> String { engine.instances[te].name }
    func decodes(_ te: Int) -> Bool { engine.instances[te].hasDecode && !engine.isRetired(te) }
    func isExternal(_ te: Int) -> Bool { engine.instances[te].external }
    func npus(of te: Int) -> [Int] { engine.cluster.npus(of: te) }
    func groupCount(of te: Int) -> Int { engine.instances[te].groupCount }
    func isOutOfService(_ te: Int, group g: Int) -> Bool { engine.cluster.isOutOfService(te: te, group: g) }
    func holdsKnownDeadDie(_ te: Int, group g: Int) -> Bool { engine.groupHoldsKnownDeadDie(te, group: g) }
    func hasOutage(_ te: Int) -> Bool { engine.faults.hasOutage(te) }
    func isRestarting(_ te: Int) -> Bool {
        if case .restarting = engine.faults.outage(of: te) { return true }
        return false
    }
    func isRetired(_ te: Int) -> Bool { engine.isRetired(te) }
    func isScalingIn(_ te: Int) -> Bool { engine.scaling.phase(te) == .draining }
    func hasIterationInFlight(_ te: Int) -> Bool { engine.instances[te].stepping && !engine.isHalted(te) }
    func knownDeadNPUs(of te: Int) -> [Int] { engine.knownDeadNPUs(of: te) }
    func spareNPUs() -> [Int] { engine.spareNPUs() }
    func missingExperts(of te: Int) -> [Int] { engine.missingExperts(instance: te) }
    func locate(die: Int) -> (te: Int, group: Int?)? { engine.cluster.locate(die: die) }
    func dieName(_ die: Int) -> String { engine.hardware.dieName(die) }
    func deviceName(_ npu: Int) -> String { "\(engine.hardware.deviceKind) \(npu)" }
    var dieWord: String { engine.hardware.dieWord }

    // The heartbeat round's view.
    func isStepping(_ te: Int) -> Bool { engine.instances[te].stepping }
    func kvPaths(joining a: Int, _ b: Int) -> [Int] {
        let channels = engine.channels
        return channels.indices.filter { engine.linkJoins(a, b, channels[$0].prefillInstance, channels[$0].decodeInstance) }
    }
    func transfersWaiting(on te: Int) -> Int { engine.instances[te].decode?.transferQueue.count ?? 0 }

    // The drain's view.
    var npusPerNode: Int { engine.topology.npusPerNode }
    var tokensPerStep: Double { engine.tokensPerStep }
    func isDrained(_ te: Int, group g: Int) -> Bool { !engine.cluster.isPlaceable(te: te, group: g) }
    func npus(of te: Int, group g: Int) -> [Int] { engine.cluster.npus(of: te, group: g) }
    func stepIndex(of te: Int) -> Int { engine.instances[te].stepIndex }
    func decodingRequests(on te: Int) -> [DecodingRequest] {
        let joining = Set(engine.instances[te].decode?.joining ?? [])
        return engine.requests.values.filter { $0.decodeInstance == te && $0.stage == .decode }.map {
            let seat = engine.placement(of: $0)
            return DecodingRequest(id: $0.id, group: seat.decodeGroup, promptTokens: $0.spec.promptTokens,
                                   joinStep: seat.joinStep, joining: joining.contains($0.id))
        }
    }
    func kvCopySeconds(tokens: Double) -> Double { engine.cost.kvTransfer(tokens: tokens, plane: .ub) }
    func forEachPlacedRequest(_ body: (PlacedRequest) -> Void) {
        for r in engine.requests.values {
            // The groups are the schedulers' (the request's ticket and seat), read by number.
            let p = engine.placement(of: r)
            body(PlacedRequest(id: r.id, stage: r.stage, prefillTE: r.prefillInstance, prefillGroup: p.prefillGroup,
                               decodeTE: r.decodeInstance, decodeGroup: p.decodeGroup))
        }
    }
}

/// The recovery mechanisms (``RecoveryActuator``) as the engine carries them out
/// (ServingEngine+Recovery, +TransientFaults).
struct EngineRecoveryActuator: HeartbeatActuator {
    let engine: ServingEngine

    func note(_ faults: [Int], _ step: String) { engine.note(faults, step) }
    func finish(_ faults: [Int], _ message: String) { engine.finish(faults, (0, 0), message) }
    func markDetected(_ fault: Int, how: String) {
        engine.faults.markDetected(fault, at: engine.now, how: how)
        engine.logDetected([fault], how)
    }
    func shrink(_ te: Int, dropping groups: Set<Int>, live: Int, faults: [Int]) {
        engine.shrink(te, lost: groups, live: live, ids: faults)
    }
    func fork(_ te: Int, replacing dead: [Int], with donors: [Int], how: String, dropping groups: Set<Int>, faults: [Int]) {
        engine.startFork(te, ids: faults, lost: groups, deadNPUs: dead, donors: donors, how: how)
    }
    func killPrefill(_ te: Int, giving npus: [Int], faults: [Int]) { engine.killPrefill(te, giving: npus, ids: faults) }
    func restart(_ te: Int, faults: [Int], why: String) { engine.restartInstance(te, ids: faults, why: why) }
    func restartTogether(_ tes: [Int], faults: [Int], why: String) {
        engine.restartInstances(tes, ids: faults) { "\(engine.instances[$0].name) \(why)" }
    }
    func restartWorld(faults: [Int]) { engine.restartWorld(ids: faults) }
    func awaitRepair(_ te: Int, faults: [Int]) { engine.awaitRepair(te, ids: faults) }
    func joinRestart(_ te: Int, faults: [Int]) { engine.joinRestart(te, ids: faults) }
    func maskAndFail(fault: Int, te: Int, group: Int, die: Int) {
        engine.maskAndFail(fault: fault, instance: te, group: group, die: die)
    }
    func redoIteration(on tes: [Int], fault: Int) { engine.redoIteration(on: tes, fault: fault) }
    func rerouteOverRoCE(fault: Int, paths: [Int]) { engine.rerouteOverRoCE(fault, paths: paths) }

    // The heartbeat round's.
    func log(_ event: EngineEvent) { engine.telemetry.log(event) }
    func scalingTakesRecovery(_ te: Int, faults: [Int]) -> Bool { engine.scalingTakesRecovery(instance: te, faults: faults) }
    func applyFaultState() { engine.refreshFaultState() }
}

/// A drain's moves (``MigrationActuator``) as the engine carries them out.
struct EngineMigrationActuator: MigrationActuator {
    let engine: ServingEngine

    func moveQueued(_ ids: [Int]) -> Int { engine.evict(ids, outcome: .move).failed }

    func pickTarget(_ te: Int) -> Int? { engine.pickDecodeGroup(te) }
    func move(_ id: Int, on te: Int, from source: Int, to target: Int) -> Bool {
        engine.migrateDecodeRequest(id, on: te, from: source, to: target)
    }
    func pause(_ te: Int, for seconds: SimTime) { engine.haltForMigration(te, until: engine.now.after(seconds)) }
}
