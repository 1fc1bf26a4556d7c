import Prometheus
import ServingEngine
import Synchronization

/// `GET /metrics`: vLLM V1's metric names, so existing vLLM dashboards work, plus `xds_*` metrics
/// for what only a simulated SuperPod knows (NPUs, experts, faults).
///
/// Two sources, kept apart on purpose:
/// - **Gauges** describe the whole engine (HTTP and synthetic load alike) and are set from
///   `EngineLink.latestSnapshot()` at scrape time — the face never keeps its own copy of engine state.
/// - **Counters and histograms** describe the requests *this server* served; they are updated as each
///   HTTP request ends, with latencies measured on the wall clock here (the engine is paced in
///   real time when it serves HTTP, so wall time is what a client experiences).
///
/// The registry is per instance, not the global `MetricsSystem`: several servers (tests) share a
/// process, and the global system can be bootstrapped only once. swift-prometheus accepts `:` in
/// metric names (Prometheus reserves it for recording rules, but vLLM uses it and so must we).
///
/// ```swift
/// let metrics = ServingMetrics(modelName: "deepseek-r1")
/// metrics.record(RequestOutcome(promptTokens: 12, generatedTokens: 40, finishReason: "stop", ...))
/// let text = metrics.exposition(for: link.latestSnapshot())
/// ```
final class ServingMetrics: Sendable {
    /// Also where swift-metrics writes once ``APIServer/bootstrapMetricsSystem()`` routed it here.
    let registry = PrometheusCollectorRegistry()
    private let modelLabel: [(String, String)]

    // Per HTTP request, as vLLM counts them (tokens, not requests, for the prefix cache).
    private let promptTokens: Counter
    private let generationTokens: Counter
    private let prefixQueries: Counter
    private let prefixHits: Counter
    private let successByReason: [String: Counter]
    private let rejectedByStatus: [Int: Counter]
    private let timeToFirstToken: ValueHistogram
    private let timePerOutputToken: ValueHistogram
    private let endToEnd: ValueHistogram
    private let promptLengths: ValueHistogram
    private let generationLengths: ValueHistogram

    // Engine-wide, from the snapshot.
    private let running: Gauge
    private let waiting: Gauge
    private let kvUsage: Gauge
    private let engineGauges: EngineGauges
    /// Setting gauges and emitting must not interleave between two scrapes.
    private let scrapeLock = Mutex<[Int: Gauge]>([:])

    /// vLLM's `finish_reason` label values; `abort` covers cancelled and failed-after-admission.
    static let finishReasons = ["stop", "length", "abort"]

    init(modelName: String) {
        let model = [("model_name", modelName)]
        modelLabel = model
        let r = registry
        promptTokens = r.makeCounter(
            descriptor: .named("vllm:prompt_tokens_total", help: "Number of prefill tokens processed."),
            labels: model)
        generationTokens = r.makeCounter(
            descriptor: .named(
                "vllm:generation_tokens_total", help: "Number of generation tokens processed."), labels: model
        )
        prefixQueries = r.makeCounter(
            descriptor: .named(
                "vllm:prefix_cache_queries_total",
                help: "Prefix cache queries, in terms of number of queried tokens."), labels: model)
        prefixHits = r.makeCounter(
            descriptor: .named(
                "vllm:prefix_cache_hits_total",
                help: "Prefix cache hits, in terms of number of cached tokens."), labels: model)
        var success: [String: Counter] = [:]
        for reason in Self.finishReasons {
            success[reason] = r.makeCounter(
                descriptor: .named(
                    "vllm:request_success_total", help: "Count of successfully processed requests."),
                labels: model + [("finished_reason", reason)])
        }
        successByReason = success
        var rejected: [Int: Counter] = [:]
        for status in [429, 503] {
            rejected[status] = r.makeCounter(
                descriptor: .named("xds_http_requests_rejected_total", help: Self.rejectedHelp),
                labels: model + [("status", String(status))])
        }
        rejectedByStatus = rejected
        // Bucket bounds are vLLM V1's (vllm/v1/metrics/loggers.py), so dashboards' quantiles line up.
        timeToFirstToken = r.makeValueHistogram(
            descriptor: .named(
                "vllm:time_to_first_token_seconds", help: "Histogram of time to first token in seconds."),
            labels: model,
            buckets: [
                0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5,
                10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0,
            ])
        timePerOutputToken = r.makeValueHistogram(
            descriptor: .named(
                "vllm:time_per_output_token_seconds", help: "Histogram of time per output token in seconds."),
            labels: model,
            buckets: [
                0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
                20.0, 40.0, 80.0,
            ])
        endToEnd = r.makeValueHistogram(
            descriptor: .named(
                "vllm:e2e_request_latency_seconds", help: "Histogram of e2e request latency in seconds."),
            labels: model,
            buckets: [
                0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0,
                240.0, 480.0, 960.0, 1920.0, 7680.0,
            ])
        let lengthBuckets: [Double] = [
            1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000,
        ]
        promptLengths = r.makeValueHistogram(
            descriptor: .named("vllm:request_prompt_tokens", help: "Number of prefill tokens processed."),
            labels: model, buckets: lengthBuckets)
        generationLengths = r.makeValueHistogram(
            descriptor: .named(
                "vllm:request_generation_tokens", help: "Number of generation tokens processed."),
            labels: model, buckets: lengthBuckets)
        running = r.makeGauge(
            descriptor: .named(
                "vllm:num_requests_running", help: "Number of requests in model execution batches."),
            labels: model)
        waiting = r.makeGauge(
            descriptor: .named(
                "vllm:num_requests_waiting", help: "Number of requests waiting to be processed."),
            labels: model)
        kvUsage = r.makeGauge(
            descriptor: .named(
                "vllm:kv_cache_usage_perc", help: "KV-cache usage. 1 means 100 percent usage."), labels: model
        )
        engineGauges = EngineGauges(registry: r)
    }

    /// Counts one finished HTTP request (served, cancelled, failed or rejected).
    func record(_ outcome: RequestOutcome) {
        guard outcome.admitted else {
            rejectedCounter(status: outcome.rejectedStatus).increment()
            return
        }
        promptTokens.increment(by: Int64(outcome.promptTokens))
        generationTokens.increment(by: Int64(outcome.generatedTokens))
        prefixQueries.increment(by: Int64(outcome.promptTokens))
        prefixHits.increment(by: Int64(outcome.cachedPromptTokens))
        successByReason[outcome.finishReason ?? "abort"]?.increment()
        promptLengths.record(Double(outcome.promptTokens))
        generationLengths.record(Double(outcome.generatedTokens))
        endToEnd.record(outcome.endToEndSeconds)
        if let ttft = outcome.timeToFirstTokenSeconds {
            timeToFirstToken.record(ttft)
            // One observation per request: the mean gap after the first token (vLLM observes per
            // step; a per-request mean keeps this face's cost per request, not per token).
            if outcome.generatedTokens > 1 {
                timePerOutputToken.record(
                    (outcome.endToEndSeconds - ttft) / Double(outcome.generatedTokens - 1))
            }
        }
    }

    /// 429 and 503 exist from the start (so dashboards see zeros); any other status the engine
    /// uses (e.g. 400 for a prompt no instance can ever hold) gets its series on first use.
    private func rejectedCounter(status: Int) -> Counter {
        rejectedByStatus[status]
            ?? registry.makeCounter(
                descriptor: .named("xds_http_requests_rejected_total", help: Self.rejectedHelp),
                labels: modelLabel + [("status", String(status))])
    }

    private static let rejectedHelp = "HTTP completion requests the engine refused before admission."

    /// The exposition text for a scrape: gauges set from `snapshot`, then everything emitted.
    func exposition(for snapshot: Snapshot) -> String {
        scrapeLock.withLock { npuGauges in
            running.set(to: Double(snapshot.requests.running))
            waiting.set(to: Double(snapshot.requests.waiting))
            kvUsage.set(to: snapshot.kv.decodeUsage)
            engineGauges.update(from: snapshot, npuGauges: &npuGauges, registry: registry)
            return registry.emitToString()
        }
    }
}

/// How one HTTP completion request ended, for ``ServingMetrics/record(_:)``.
struct RequestOutcome: Sendable {
    /// False when the engine refused it before admission (then only `rejectedStatus` matters).
    var admitted: Bool
    var rejectedStatus: Int = 0
    var promptTokens: Int = 0
    var cachedPromptTokens: Int = 0
    var generatedTokens: Int = 0
    /// `"stop"`/`"length"` when completed; nil when cancelled or failed after admission.
    var finishReason: String?
    var timeToFirstTokenSeconds: Double?
    var endToEndSeconds: Double = 0
}

extension MetricNameDescriptor {
    /// A descriptor for a metric whose full name is given as is (vLLM's names carry their unit
    /// already, e.g. `vllm:prompt_tokens_total`), so nothing is appended.
    static func named(_ name: String, help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
    }
}
