import Hummingbird
import ServingEngine

/// `GET /health` (liveness: the process answers) and `GET /ready` (readiness: the engine can serve a
/// request now), the split load balancers and Kubernetes probes expect.
///
/// `/ready` answers one of three states, always with the keys `ready`, `status` and `reason`:
///
/// | `status` | HTTP | `ready` | when |
/// |---|---|---|---|
/// | `"ready"` | 200 | true | serving |
/// | `"degraded"` | 200 | true | serving, but a fault is being recovered from (e.g. a TE restart under way): requests are taken and wait for the recovery |
/// | `"not_ready"` | 503 | false | paused, no healthy NPU of a needed role, or the engine thread breaks its liveness contract (not advancing simulated time, not taking commands in) |
///
/// `/health` is always 200 while the process answers; its `engine` key says whether the engine
/// thread keeps its contract (`"ok"`) or not (the reason), for a human reading it.
struct HealthRoutes: Sendable {
    let link: any EngineLink
    let backend: any CompletionBackend

    func register(on router: Router<ServerContext>) {
        router.get("/health") { _, _ in health() }
        router.get("/ready") { _, _ in ready() }
        // Probes (curl -I, some load balancers) may ask with HEAD: the router answers HEAD on
        // every GET route with the GET answer's status and headers (APIServer.makeRouter).
    }

    private func health() -> Response {
        JSONWire.response(["status": "ok", "engine": backend.unavailableReason ?? "ok"])
    }

    private func ready() -> Response {
        var readiness = ServingReadiness(link.latestSnapshot())
        if let reason = backend.unavailableReason {
            readiness = ServingReadiness(notReady: reason)
        }
        return JSONWire.response(readiness, status: readiness.ready ? .ok : .serviceUnavailable)
    }
}

/// Whether a snapshot shows an engine that can take a request, and if not, why.
///
/// Ready means: running (not paused), with at least one healthy NPU that can decode (a decode,
/// attention or colocated NPU neither faulted, drained nor draining), and — for each of the prefill
/// and expert roles the pod has at all — at least one healthy NPU of that role. Deployments whose
/// prefill lives outside the pod (`xdeepserve-ma`) have no prefill NPUs in the snapshot and are
/// judged without them. A ready engine is degraded while a detected fault is not yet recovered
/// from (a TE restart, an NPU-fork, a TE awaiting repair) or a performance fault is in force.
struct ServingReadiness: Sendable, Equatable, Encodable {
    var ready: Bool
    /// "ready", "degraded" or "not_ready".
    var status: String
    var reason: String

    init(notReady reason: String) {
        (ready, status, self.reason) = (false, "not_ready", reason)
    }

    init(_ snapshot: Snapshot) {
        func healthy(_ npu: NPUStatus) -> Bool { !npu.faulted && !npu.drained && !npu.draining }
        let decodeRoles: Set<NPURole> = [.decode, .attention, .colocated]
        let prefill = snapshot.npus.filter { $0.role == .prefill }
        let experts = snapshot.npus.filter { $0.role == .expert }
        (ready, status) = (false, "not_ready")
        if snapshot.npus.isEmpty {
            reason = "the engine has not published its pod yet"
        } else if snapshot.paused {
            reason = "the engine is paused"
        } else if !snapshot.npus.contains(where: { decodeRoles.contains($0.role) && healthy($0) }) {
            reason = "no healthy decode NPU"
        } else if !prefill.isEmpty && !prefill.contains(where: healthy) {
            reason = "no healthy prefill NPU"
        } else if !experts.isEmpty && !experts.contains(where: healthy) {
            reason = "no healthy expert NPU"
        } else if let degradation = Self.degradation(snapshot) {
            (ready, status, reason) = (true, "degraded", degradation)
        } else {
            (ready, status, reason) = (true, "ready", "serving")
        }
    }

    /// Why a serving engine is degraded, or nil: TE restarts under way first (the events say
    /// which fault caused them and for how long), then other recoveries in progress, then
    /// performance faults in force. Undetected faults are not reported: the control plane of the
    /// real system does not know of them yet either.
    static func degradation(_ snapshot: Snapshot) -> String? {
        let recovering = snapshot.activeFaults.filter { $0.detectedAt != nil && $0.recoveredAt == nil }
        guard !recovering.isEmpty else { return nil }
        let ids = Set(recovering.map(\.id))
        // Recovery notes read "fault 3: …" or "faults 3, 4: …"; a restart says "restart".
        let restarts = snapshot.events.filter { event in
            guard event.kind == .recovery, event.message.contains("restart"),
                  let colon = event.message.firstIndex(of: ":") else { return false }
            let label = event.message[..<colon]
            guard label.hasPrefix("fault") else { return false }
            return label.split(whereSeparator: { !$0.isNumber }).compactMap { Int($0) }.contains(where: ids.contains)
        }
        if let restart = restarts.last {
            return "restart under way since t=\(Self.format(restart.time)) s: \(restart.message)"
        }
        let hard = recovering.filter { !$0.description.contains("kept until healed") }
        if let first = hard.first {
            return "recovering from fault \(first.id) (\(first.description))"
                + (hard.count > 1 ? " and \(hard.count - 1) more" : "")
        }
        let first = recovering[0]
        return "performance fault \(first.id) in force (\(first.description))"
            + (recovering.count > 1 ? " and \(recovering.count - 1) more" : "")
    }

    private static func format(_ t: Double) -> String {
        t.isFinite ? String(Int(t.rounded())) : "?"
    }
}
