import Prometheus
import ServingEngine
import Synchronization

/// `GET /metrics`: vLLM V1's metric names and labels (`model_name`, `engine`), so existing vLLM
/// dashboards work, plus `xds_*` metrics for what only a simulated SuperPod knows (NPUs, experts,
/// faults).
///
/// The `vllm:` series describe the whole engine, as a real vLLM's would: every request it served
/// (synthetic, trace and HTTP alike) once it left, from the engine's ``EngineFeed``, in
/// simulated seconds (the engine is paced in real time when it serves HTTP, so these are the
/// seconds a client experiences). Gauges are set from `EngineLink.latestSnapshot()` at scrape time.
/// Without a feed (a backend with no engine behind it, as in tests) the `vllm:` counters and
/// histograms count the HTTP requests this server served instead, timed on the wall clock here.
///
/// The registry is per instance, not the global `MetricsSystem`: several servers (tests) share a
/// process, and the global system can be bootstrapped only once. swift-prometheus accepts `:` in
/// metric names (Prometheus reserves it for recording rules, but vLLM uses it and so must we).
///
/// ```swift
/// let metrics = ServingMetrics(modelName: "deepseek-r1")
/// feed.subscribe { metrics.observe($0) }             // the whole engine
/// let text = metrics.exposition(for: link.latestSnapshot())
/// ```
final class ServingMetrics: Sendable {
    /// Also where swift-metrics writes once ``APIServer/bootstrapMetricsSystem()`` routed it here.
    let registry = PrometheusCollectorRegistry()
    private let labels: [(String, String)]

    private let promptTokens: Counter
    private let generationTokens: Counter
    private let prefixQueries: Counter
    private let prefixHits: Counter
    private let preemptions: Counter
    private let draftTokens: Counter
    private let drafts: Counter
    private let acceptedTokens: Counter
    private let successByReason: [String: Counter]
    private let rejectedByStatus: [Int: Counter]
    /// 408s by the request part that did not arrive ("head", "body").
    private let readTimeouts: [String: Counter]
    private let timeToFirstToken: ValueHistogram
    private let interTokenLatency: ValueHistogram
    private let timePerOutputToken: ValueHistogram
    private let endToEnd: ValueHistogram
    private let queueTime: ValueHistogram
    private let prefillTime: ValueHistogram
    private let decodeTime: ValueHistogram
    private let promptLengths: ValueHistogram
    private let generationLengths: ValueHistogram

    // Engine-wide, from the snapshot.
    private let running: Gauge
    private let waiting: Gauge
    private let kvUsage: Gauge
    private let engineGauges: EngineGauges
    /// Setting gauges and emitting must not interleave between two scrapes.
    private let scrapeLock = Mutex<EngineGauges.ScrapeState>(EngineGauges.ScrapeState())
    /// True once an engine feed drives the `vllm:` series; HTTP outcomes then count only rejections.
    private let engineFed = Atomic<Bool>(false)

    /// vLLM's `finish_reason` label values; `abort` covers cancelled and failed-after-admission.
    static let finishReasons = ["stop", "length", "abort"]
    /// Observations of `vllm:inter_token_latency_seconds` per request at most (one per gap between
    /// tokens, each the request's mean gap: the engine does not time single tokens).
    static let maxGapObservations = 4_096
    /// The value of the `engine` label (vLLM numbers its engine cores; the twin runs one engine).
    static let engineIndex = "0"

    /// Where each request's arrival lead comes from (nil: the engine's stamps as they are).
    private let arrivals: (any ArrivalStamping)?
    /// Per HTTP request: simulated seconds from its arrival at the handler to its submission
    /// (body read, parsed, prompt tokenized), until the engine reports it finished.
    private let beforeSubmission = Mutex<[Int: Double]>([:])
    /// Simulated seconds per wall second, from the latest scrape's snapshot (1 until then; 0 when
    /// paused or unpaced, where a wall wait has no simulated length).
    private let pace = Mutex<Double>(1)
    /// The engine steps' output tokens summed (fractional) and the whole tokens counted of them.
    private let generationSteps = Mutex<(total: Double, counted: Int64)>((0, 0))

    /// The HTTP face's share of a request's time before the engine had it: `seconds` of wall time
    /// from its arrival to its submission. Only with an engine feed (otherwise the face times
    /// the whole request itself, from its arrival).
    func noteTimeBeforeSubmission(requestID: Int, seconds: Double) {
        guard engineFed.load(ordering: .acquiring), seconds > 0 else { return }
        let simulated = seconds * pace.withLock { $0 }
        beforeSubmission.withLock { notes in
            if notes.count >= 65_536 { notes.removeAll() }  // notes of requests never observed: bounded
            notes[requestID] = simulated
        }
    }

    init(modelName: String, arrivals: (any ArrivalStamping)? = nil) {
        self.arrivals = arrivals
        let labels = [("model_name", modelName), ("engine", Self.engineIndex)]
        self.labels = labels
        let r = registry
        func counter(_ name: String, _ help: String) -> Counter {
            r.makeCounter(descriptor: .named(name, help: help), labels: labels)
        }
        func histogram(_ name: String, _ help: String, _ buckets: [Double]) -> ValueHistogram {
            r.makeValueHistogram(descriptor: .named(name, help: help), labels: labels, buckets: buckets)
        }
        promptTokens = counter("vllm:prompt_tokens_total", "Number of prefill tokens processed.")
        generationTokens = counter("vllm:generation_tokens_total", "Number of generation tokens processed.")
        prefixQueries = counter(
            "vllm:prefix_cache_queries_total", "Prefix cache queries, in terms of number of queried tokens.")
        prefixHits = counter("vllm:prefix_cache_hits_total", "Prefix cache hits, in terms of number of cached tokens.")
        preemptions = counter(
            "vllm:num_preemptions_total",
            "Cumulative number of preemptions from the engine (xds reserves output KV at admission: none).")
        drafts = counter("vllm:spec_decode_num_drafts_total", "Number of spec decoding drafts (MTP).")
        draftTokens = counter("vllm:spec_decode_num_draft_tokens_total", "Number of draft tokens (MTP).")
        acceptedTokens = counter("vllm:spec_decode_num_accepted_tokens_total", "Number of accepted tokens (MTP).")
        var success: [String: Counter] = [:]
        for reason in Self.finishReasons {
            success[reason] = r.makeCounter(
                descriptor: .named("vllm:request_success_total", help: "Count of successfully processed requests."),
                labels: labels + [("finished_reason", reason)])
        }
        successByReason = success
        var rejected: [Int: Counter] = [:]
        for status in [429, 503] {
            rejected[status] = r.makeCounter(
                descriptor: .named("xds_http_requests_rejected_total", help: Self.rejectedHelp),
                labels: labels + [("status", String(status))])
        }
        rejectedByStatus = rejected
        var timeouts: [String: Counter] = [:]
        for part in ["head", "body"] {
            timeouts[part] = r.makeCounter(
                descriptor: .named("xds_http_read_timeouts_total",
                                   help: "HTTP requests answered 408 because their head or body did not arrive in time."),
                labels: labels + [("part", part)])
        }
        readTimeouts = timeouts
        // Bucket bounds are vLLM V1's (vllm/v1/metrics/loggers.py), so dashboards' quantiles line up.
        timeToFirstToken = histogram(
            "vllm:time_to_first_token_seconds", "Histogram of time to first token in seconds.",
            [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5,
             10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0])
        let tokenGapBuckets: [Double] = [
            0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0,
        ]
        interTokenLatency = histogram(
            "vllm:inter_token_latency_seconds", "Histogram of inter-token latency in seconds.", tokenGapBuckets)
        timePerOutputToken = histogram(
            "vllm:time_per_output_token_seconds",
            "Histogram of time per output token in seconds (one observation per request: its TPOT).",
            tokenGapBuckets)
        let requestTimeBuckets: [Double] = [
            0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0,
            240.0, 480.0, 960.0, 1920.0, 7680.0,
        ]
        endToEnd = histogram(
            "vllm:e2e_request_latency_seconds", "Histogram of e2e request latency in seconds.", requestTimeBuckets)
        queueTime = histogram(
            "vllm:request_queue_time_seconds", "Histogram of time spent in WAITING phase for request.",
            requestTimeBuckets)
        prefillTime = histogram(
            "vllm:request_prefill_time_seconds",
            "Histogram of time spent in PREFILL phase for request (to its first token, KV transfer included).",
            requestTimeBuckets)
        decodeTime = histogram(
            "vllm:request_decode_time_seconds", "Histogram of time spent in DECODE phase for request.",
            requestTimeBuckets)
        let lengthBuckets: [Double] = [
            1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000,
        ]
        promptLengths = histogram("vllm:request_prompt_tokens", "Number of prefill tokens processed.", lengthBuckets)
        generationLengths = histogram(
            "vllm:request_generation_tokens", "Number of generation tokens processed.", lengthBuckets)
        running = r.makeGauge(
            descriptor: .named("vllm:num_requests_running", help: "Number of requests in model execution batches."),
            labels: labels)
        waiting = r.makeGauge(
            descriptor: .named("vllm:num_requests_waiting", help: "Number of requests waiting to be processed."),
            labels: labels)
        kvUsage = r.makeGauge(
            descriptor: .named("vllm:kv_cache_usage_perc", help: "KV-cache usage. 1 means 100 percent usage."),
            labels: labels)
        engineGauges = EngineGauges(registry: r)
    }

    /// From now on the `vllm:` counters and histograms count what `feed` reports (the whole
    /// engine), and HTTP outcomes only count rejections.
    func follow(_ feed: EngineFeed) {
        engineFed.store(true, ordering: .releasing)
        feed.subscribe(
            requests: { [weak self] request in self?.observe(request) },
            steps: { [weak self] step in self?.observe(step) },
            firstTokens: { [weak self] token in self?.observe(token) })
    }

    /// Counts the tokens of one engine step as it ends, as vLLM counts generated tokens per step
    /// (so `rate(vllm:generation_tokens_total)` follows the engine's throughput, not completions).
    func observe(_ step: InstanceStep) {
        guard step.outputTokens > 0 else { return }
        // A step yields (1 + MTP acceptance) tokens per request on average, so its count is
        // fractional; the counter moves by whole tokens only (it showed 66386.99999995237). The
        // running sum is kept exactly as the steps add it, and a token is counted once the sum
        // reaches it (within 1e-6, the rounding of those additions).
        let whole = generationSteps.withLock { sum -> Int64 in
            sum.total += step.outputTokens
            let reached = Int64((sum.total + 1e-6).rounded(.down))
            defer { sum.counted = max(sum.counted, reached) }
            return max(0, reached - sum.counted)
        }
        if whole > 0 { generationTokens.increment(by: whole) }
    }

    /// Records a request's TTFT when its first token comes out, as vLLM does (recorded at the
    /// finish, the histogram lagged by each request's whole decode, and a request that failed
    /// after its first token never showed). Timed from its arrival at the server, as at the finish.
    func observe(_ token: FirstToken) {
        let beforeSubmission = beforeSubmission.withLock { $0[token.id] } ?? 0
        timeToFirstToken.record(token.ttft + (arrivals?.arrivalLead(requestID: token.id) ?? 0) + beforeSubmission)
    }

    /// Counts one request that left the engine (any source). Rejected requests never ran: vLLM
    /// has no series for them (HTTP rejections are counted by status in `xds_http_*`).
    /// HTTP requests are timed from their arrival at the server (``ArrivalStamping``). An HTTP
    /// request's success is counted by the face (``record(_:)``) under the reason its client was
    /// told, as vLLM's front end counts it: only the face sees a stop string in the text, and the
    /// engine may have made all `max_tokens` (or finished) before the face's stop reached it.
    func observe(_ request: FinishedRequest) {
        let beforeSubmission = beforeSubmission.withLock { $0.removeValue(forKey: request.id) } ?? 0
        let lead = (arrivals?.takeArrivalLead(requestID: request.id) ?? 0) + beforeSubmission
        guard request.stage != .rejected else { return }
        let reason: String? =
            request.stage == .completed ? (request.reachedMaxTokens ? "length" : "stop") : nil
        served(
            promptTokens: request.promptTokens, cachedTokens: request.cachedTokens,
            outputTokens: request.outputTokens, finishReason: reason, ttft: request.ttft.map { $0 + lead },
            endToEnd: request.endToEnd + lead, countsGeneration: false, recordsTTFT: false,
            countsSuccess: !request.fromClient)
        if let value = request.queueTime { queueTime.record(value + lead) }
        if let value = request.prefillTime { prefillTime.record(value) }
        if let value = request.decodeTime { decodeTime.record(value) }
        if request.draftTokens > 0 {
            drafts.increment(by: Int64(request.decodeSteps))
            draftTokens.increment(by: Int64(request.draftTokens))
            acceptedTokens.increment(by: Int64(request.acceptedDraftTokens))
        }
    }

    /// Counts one finished HTTP request (served, cancelled, failed or rejected). With an engine
    /// feed only its rejection or its success (under the finish reason its client got) counts here.
    func record(_ outcome: RequestOutcome) {
        guard outcome.admitted else {
            rejectedCounter(status: outcome.rejectedStatus).increment()
            return
        }
        guard !engineFed.load(ordering: .acquiring) else {
            successByReason[outcome.finishReason ?? "abort"]?.increment()
            return
        }
        served(
            promptTokens: outcome.promptTokens, cachedTokens: outcome.cachedPromptTokens,
            outputTokens: outcome.generatedTokens, finishReason: outcome.finishReason,
            ttft: outcome.timeToFirstTokenSeconds, endToEnd: outcome.endToEndSeconds, countsGeneration: true)
    }

    private func served(
        promptTokens prompt: Int, cachedTokens: Int, outputTokens: Int, finishReason: String?, ttft: Double?,
        endToEnd e2e: Double, countsGeneration: Bool, recordsTTFT: Bool = true, countsSuccess: Bool = true
    ) {
        promptTokens.increment(by: Int64(prompt))
        if countsGeneration { generationTokens.increment(by: Int64(outputTokens)) }
        prefixQueries.increment(by: Int64(prompt))
        prefixHits.increment(by: Int64(cachedTokens))
        if countsSuccess { successByReason[finishReason ?? "abort"]?.increment() }
        promptLengths.record(Double(prompt))
        generationLengths.record(Double(outputTokens))
        endToEnd.record(e2e)
        guard let ttft else { return }
        // The engine feed records TTFT at the first token (the first-token observer above).
        if recordsTTFT { timeToFirstToken.record(ttft) }
        guard outputTokens > 1 else { return }
        // The engine times a request's tokens as a whole: its mean gap stands for each gap.
        let gap = (e2e - ttft) / Double(outputTokens - 1)
        timePerOutputToken.record(gap)
        for _ in 0..<min(outputTokens - 1, Self.maxGapObservations) { interTokenLatency.record(gap) }
    }

    /// 429 and 503 exist from the start (so dashboards see zeros); any other status the engine
    /// uses (e.g. 400 for a prompt no instance can ever hold) gets its series on first use.
    private func rejectedCounter(status: Int) -> Counter {
        rejectedByStatus[status]
            ?? registry.makeCounter(
                descriptor: .named("xds_http_requests_rejected_total", help: Self.rejectedHelp),
                labels: labels + [("status", String(status))])
    }

    /// A `408` sent because a request's `part` ("head" or "body") did not arrive in time.
    func readTimedOut(_ part: String) {
        readTimeouts[part]?.increment()
    }

    private static let rejectedHelp = "HTTP completion requests the engine refused before admission."

    /// The exposition text for a scrape: gauges set from `snapshot`, then everything emitted.
    func exposition(for snapshot: Snapshot) -> String {
        pace.withLock { $0 = snapshot.paused ? 0 : snapshot.speed ?? 0 }
        return scrapeLock.withLock { scrape in
            // vLLM's meaning (its names are kept so its dashboards work): a request being
            // prefilled is in the model's running batch. The engine's own split (the console
            // header's run/wait) counts it as waiting; each TE's `running` (the Instances table's)
            // holds its prefill batch and its decode batch, so their sum is vLLM's running, and
            // the rest in flight wait for prefill, a KV transfer or a decode seat.
            let inBatches = snapshot.instances.reduce(0) { $0 + $1.running }
            running.set(to: Double(inBatches))
            waiting.set(to: Double(max(0, snapshot.requests.inFlight - inBatches)))
            kvUsage.set(to: snapshot.kv.decodeUsage)
            engineGauges.update(from: snapshot, state: &scrape, registry: registry)
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
