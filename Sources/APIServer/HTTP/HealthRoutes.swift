import Hummingbird
import ServingEngine

/// `GET /health` (liveness: the process answers) and `GET /ready` (readiness: the engine can serve a
/// request now), the split load balancers and Kubernetes probes expect.
struct HealthRoutes: Sendable {
    let link: any EngineLink
    let backend: any CompletionBackend

    func register(on router: Router<BasicRequestContext>) {
        router.get("/health") { _, _ in
            JSONWire.response(["status": "ok"])
        }
        router.get("/ready") { _, _ in
            var readiness = ServingReadiness(link.latestSnapshot())
            if let reason = backend.unavailableReason {
                (readiness.ready, readiness.reason) = (false, reason)
            }
            return JSONWire.response(readiness, status: readiness.ready ? .ok : .serviceUnavailable)
        }
    }
}

/// Whether a snapshot shows an engine that can take a request, and if not, why.
///
/// Ready means: running (not paused), with at least one healthy NPU that can decode (a decode,
/// attention or colocated NPU neither faulted, drained nor draining), and — for each of the prefill
/// and expert roles the pod has at all — at least one healthy NPU of that role. Deployments whose
/// prefill lives outside the pod (`xdeepserve-ma`) have no prefill NPUs in the snapshot and are
/// judged without them.
struct ServingReadiness: Sendable, Equatable, Encodable {
    var ready: Bool
    var reason: String

    init(_ snapshot: Snapshot) {
        func healthy(_ npu: NPUStatus) -> Bool { !npu.faulted && !npu.drained && !npu.draining }
        let decodeRoles: Set<NPURole> = [.decode, .attention, .colocated]
        let prefill = snapshot.npus.filter { $0.role == .prefill }
        let experts = snapshot.npus.filter { $0.role == .expert }
        if snapshot.npus.isEmpty {
            (ready, reason) = (false, "the engine has not published its pod yet")
        } else if snapshot.paused {
            (ready, reason) = (false, "the engine is paused")
        } else if !snapshot.npus.contains(where: { decodeRoles.contains($0.role) && healthy($0) }) {
            (ready, reason) = (false, "no healthy decode NPU")
        } else if !prefill.isEmpty && !prefill.contains(where: healthy) {
            (ready, reason) = (false, "no healthy prefill NPU")
        } else if !experts.isEmpty && !experts.contains(where: healthy) {
            (ready, reason) = (false, "no healthy expert NPU")
        } else {
            (ready, reason) = (true, "serving")
        }
    }
}
