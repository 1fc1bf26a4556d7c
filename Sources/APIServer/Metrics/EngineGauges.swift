import Prometheus
import ServingEngine

/// The `xds_*` gauges: what the simulated SuperPod looks like right now, read from a snapshot.
///
/// Totals the engine keeps (requests arrived, completed…) are exported as gauges with a `state`
/// label rather than counters, because the face copies them from the snapshot instead of counting
/// events itself; they only grow while one engine runs.
struct EngineGauges: Sendable {
    private let simTime: Gauge
    private let paused: Gauge
    private let outputTokensPerSecond: Gauge
    private let requestsByState: [(state: String, gauge: Gauge, read: @Sendable (RequestCounts) -> Int)]
    private let prefixHitRate: Gauge
    private let expertImbalance: Gauge
    private let expertRebalances: Gauge
    /// The same count as a counter (``update(from:state:registry:)`` adds what is new since the
    /// last scrape): Prometheus's `rate()` and `increase()` take counters, and the gauge above
    /// (kept: scripts read it by that name, interfaces.md) is a count that only grows.
    private let expertRebalancesTotal: Counter
    private let faultsActive: Gauge
    private let nodesDrained: Gauge
    private let nodesDraining: Gauge
    /// TEs by role and lifecycle state (elastic scaling), every pair exported (0 when none).
    private let instancesByRoleState: [(role: String, state: String, gauge: Gauge)]
    static let instanceRoles = ["prefill", "decode", "colocated"]
    static let instanceStates = ["allocating", "loading", "warming-up", "in-service", "draining", "retired"]

    static let npuUtilization = "xds_npu_utilization"

    init(registry r: PrometheusCollectorRegistry) {
        simTime = r.makeGauge(
            descriptor: .named("xds_sim_time_seconds", help: "Simulated time of the engine."))
        paused = r.makeGauge(descriptor: .named("xds_engine_paused", help: "1 while the engine is paused."))
        outputTokensPerSecond = r.makeGauge(
            descriptor: .named(
                "xds_output_tokens_per_second", help: "Output token throughput of the whole engine."))
        let states: [(String, @Sendable (RequestCounts) -> Int)] = [
            ("arrived", { $0.arrived }), ("completed", { $0.completed }), ("failed", { $0.failed }),
            ("rejected", { $0.rejected }), ("in_flight", { $0.inFlight }),
        ]
        requestsByState = states.map { state, read in
            (
                state,
                r.makeGauge(
                    descriptor: .named(
                        "xds_engine_requests",
                        help: "Engine-wide request counts (all sources: HTTP, synthetic, trace)."),
                    labels: [("state", state)]),
                read
            )
        }
        prefixHitRate = r.makeGauge(
            descriptor: .named("xds_prefix_cache_hit_rate", help: "Engine-wide prefix cache hit rate, 0-1."))
        expertImbalance = r.makeGauge(
            descriptor: .named(
                "xds_expert_imbalance", help: "Max over mean of per-die MoE load in decode (1 = balanced)."))
        expertRebalances = r.makeGauge(
            descriptor: .named("xds_expert_rebalances", help: "Expert rebalances completed so far."))
        expertRebalancesTotal = r.makeCounter(
            descriptor: .named("xds_expert_rebalances_completed_total", help: "Expert rebalances completed (a counter: use rate() or increase())."))
        faultsActive = r.makeGauge(
            descriptor: .named("xds_faults_active", help: "Injected faults not yet recovered."))
        nodesDrained = r.makeGauge(
            descriptor: .named("xds_nodes_drained", help: "Nodes drained by the operator."))
        nodesDraining = r.makeGauge(descriptor: .named("xds_nodes_draining", help: "Nodes still draining."))
        instancesByRoleState = Self.instanceRoles.flatMap { role in
            Self.instanceStates.map { state in
                (role, state, r.makeGauge(
                    descriptor: .named("xds_instances", help: "TEs by role and lifecycle state (starting phases, in service, scaled in)."),
                    labels: [("role", role), ("state", state)]))
            }
        }
    }

    /// What one scrape leaves for the next (guarded by the scrape lock).
    struct ScrapeState {
        /// Per-NPU gauges by NPU id.
        var npuGauges: [Int: Gauge] = [:]
        /// Rebalances already added to `xds_expert_rebalances_completed_total`.
        var rebalancesCounted = 0
    }

    /// Sets every gauge from `snapshot`. Per-NPU gauges are created on first sight and dropped when
    /// an NPU disappears from the snapshot, so a scrape never shows a stale NPU.
    func update(from snapshot: Snapshot, state: inout ScrapeState, registry: PrometheusCollectorRegistry)
    {
        simTime.set(to: snapshot.simTime)
        paused.set(to: snapshot.paused ? 1 : 0)
        outputTokensPerSecond.set(to: snapshot.outputTokensPerSecond)
        for entry in requestsByState { entry.gauge.set(to: Double(entry.read(snapshot.requests))) }
        prefixHitRate.set(to: snapshot.kv.prefixHitRate)
        expertImbalance.set(to: snapshot.experts.imbalance)
        expertRebalances.set(to: Double(snapshot.experts.rebalances))
        // Only new rebalances are added, so the counter never goes down (a snapshot with fewer,
        // which one engine never sends, adds nothing).
        let rebalances = snapshot.experts.rebalances
        if rebalances > state.rebalancesCounted {
            expertRebalancesTotal.increment(by: Int64(rebalances - state.rebalancesCounted))
            state.rebalancesCounted = rebalances
        }
        faultsActive.set(to: Double(snapshot.activeFaults.filter { $0.recoveredAt == nil }.count))
        nodesDrained.set(to: Double(snapshot.drainedNodes.count))
        nodesDraining.set(to: Double(snapshot.drainingNodes.count))
        for entry in instancesByRoleState {
            let count = snapshot.instances.filter { $0.kind == entry.role && ($0.state ?? "in-service") == entry.state }.count
            entry.gauge.set(to: Double(count))
        }

        var seen = Set<Int>()
        var npuGauges = state.npuGauges
        defer { state.npuGauges = npuGauges }
        for npu in snapshot.npus {
            seen.insert(npu.id)
            let gauge =
                npuGauges[npu.id]
                ?? registry.makeGauge(
                    descriptor: .named(
                        Self.npuUtilization, help: "Busy share, 0-1, over the last interval of the TE that each chip serves (label npu: a chip of the pod, both its dies; the per-NPU throughput figures are per die); 0 when spare."),
                    labels: [("npu", String(npu.id))])
            npuGauges[npu.id] = gauge
            gauge.set(to: npu.utilization)
        }
        for (id, gauge) in npuGauges where !seen.contains(id) {
            registry.unregisterGauge(gauge)
            npuGauges[id] = nil
        }
    }
}
