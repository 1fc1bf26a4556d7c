import PodModel
import SimKit

/// What scaling shows: the report's `scaling` section and the snapshot's instance states.
extension ServingEngine {
    func scalingReport() -> ScalingReport { scaling.report() }

    /// Instance states, phases and time left; the autoscaler's name.
    func annotateScaling(_ s: inout Snapshot) {
        s.autoscaler = scaling.autoscalerName
        for i in s.instances.indices where i < instances.count {
            let life = scaling.lifecycle[i]
            s.instances[i].state = (life?.phase ?? .inService).rawValue
            if let end = life?.phaseEndsAt, life?.phase.isStarting == true { s.instances[i].phaseSecondsLeft = max(0, end - now) }
            s.instances[i].loadPath = life?.loadPath?.rawValue
        }
    }

    /// TEs by role and lifecycle state (`/metrics` `xds_instances{role,state}`).
    public func instanceCounts() -> [(role: String, state: String, count: Int)] {
        var counts: [String: [String: Int]] = [:]
        for i in instances.indices {
            counts[instances[i].role.rawValue, default: [:]][scaling.phase(i).rawValue, default: 0] += 1
        }
        return counts.keys.sorted().flatMap { role in
            counts[role]!.keys.sorted().map { (role, $0, counts[role]![$0]!) }
        }
    }
}
