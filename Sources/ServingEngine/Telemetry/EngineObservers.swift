import Synchronization

/// One request that left the system, as the engine saw it (simulated seconds). Feeds
/// `xds run --requests-out` (one JSON row each) and the whole-engine `vllm:` series of `/metrics`.
public struct FinishedRequest: Sendable, Equatable {
    public var id: Int
    public var arrival: Double
    public var finishedAt: Double
    /// `.completed`, `.failed`, `.rejected` or `.cancelled`.
    public var stage: RequestStage
    public var promptTokens: Int
    /// Output tokens produced (for a failed request, those produced before it failed).
    public var outputTokens: Int
    /// Prompt tokens whose KV came from the prefix cache (local or pooled).
    public var cachedTokens: Int
    /// When its first prefill chunk was scheduled; nil if it never reached prefill.
    public var prefillStartedAt: Double?
    /// When its first output token was produced; nil if it never decoded.
    public var firstTokenAt: Double?
    public var prefillInstance: String?
    public var decodeInstance: String?
    /// Why it failed or was rejected; nil for a completed request.
    public var reason: String?
    /// Decode steps it took part in.
    public var decodeSteps: Int
    /// MTP draft tokens proposed and accepted for it (0 without MTP).
    public var draftTokens: Int
    public var acceptedDraftTokens: Int
    /// Completed because it reached the client's `max_tokens` (vLLM's finish reason "length").
    public var reachedMaxTokens = false

    public init(id: Int, arrival: Double, finishedAt: Double, stage: RequestStage, promptTokens: Int,
                outputTokens: Int, cachedTokens: Int = 0, prefillStartedAt: Double? = nil,
                firstTokenAt: Double? = nil, prefillInstance: String? = nil, decodeInstance: String? = nil,
                reason: String? = nil, decodeSteps: Int = 0, draftTokens: Int = 0, acceptedDraftTokens: Int = 0) {
        self.id = id
        self.arrival = arrival
        self.finishedAt = finishedAt
        self.stage = stage
        self.promptTokens = promptTokens
        self.outputTokens = outputTokens
        self.cachedTokens = cachedTokens
        self.prefillStartedAt = prefillStartedAt
        self.firstTokenAt = firstTokenAt
        self.prefillInstance = prefillInstance
        self.decodeInstance = decodeInstance
        self.reason = reason
        self.decodeSteps = decodeSteps
        self.draftTokens = draftTokens
        self.acceptedDraftTokens = acceptedDraftTokens
    }

    /// Arrival to first token (seconds), as the engine defines TTFT.
    public var ttft: Double? { firstTokenAt.map { $0 - arrival } }
    /// (E2E − TTFT) / (output − 1), as vLLM defines TPOT; nil below two tokens.
    public var tpot: Double? {
        guard let first = firstTokenAt, outputTokens > 1 else { return nil }
        return (finishedAt - first) / Double(outputTokens - 1)
    }
    public var endToEnd: Double { finishedAt - arrival }
    /// Arrival to first prefill chunk (vLLM's queue time).
    public var queueTime: Double? { prefillStartedAt.map { $0 - arrival } }
    /// First prefill chunk to first token: prefill, KV transfer and the first decode step
    /// (vLLM's prefill time runs from scheduling to the first token too).
    public var prefillTime: Double? {
        guard let start = prefillStartedAt, let first = firstTokenAt else { return nil }
        return first - start
    }
    /// First token to the last.
    public var decodeTime: Double? { firstTokenAt.map { finishedAt - $0 } }
}

/// One step of one instance (a prefill batch, a decode step, or a colocated mixed step).
public struct InstanceStep: Sendable, Equatable {
    public var instance: String
    /// `"prefill"`, `"decode"` or `"colocated"`.
    public var role: String
    public var start: Double
    public var seconds: Double
    /// Requests in the decode batch of this step.
    public var decodeBatch: Int
    /// Output tokens the step yields: decode batch × (1 + MTP acceptance) on average, but a
    /// request's last step yields only what is left of its output, so the steps of a request add
    /// up to the tokens it produced (what `vllm:generation_tokens_total` counts).
    public var outputTokens: Double = 0
}

/// One KV cache transfer from a prefill instance to a decode instance, reported when it lands.
public struct FinishedTransfer: Sendable, Equatable {
    public var requestID: Int
    public var from: String
    public var to: String
    public var start: Double
    /// From its start (or restart, after a link fault) to landing.
    public var seconds: Double
    public var tokens: Int
    /// `"ub"` or `"roce"`.
    public var plane: String
}

/// Callbacks the engine makes as things happen, for faces that keep their own record (files,
/// metrics). They are called on the engine's thread, synchronously, and must not call back into
/// the engine; they observe only, so a run with observers is the same run as one without.
public struct EngineObservers {
    public var requestFinished: ((FinishedRequest) -> Void)?
    public var step: ((InstanceStep) -> Void)?
    public var event: ((EngineEvent) -> Void)?
    public var transfer: ((FinishedTransfer) -> Void)?
    /// A request's first token came out now (vLLM observes TTFT here, not when it finishes).
    public var firstToken: ((FirstToken) -> Void)?
    public init(requestFinished: ((FinishedRequest) -> Void)? = nil, step: ((InstanceStep) -> Void)? = nil,
                event: ((EngineEvent) -> Void)? = nil) {
        self.requestFinished = requestFinished
        self.step = step
        self.event = event
    }
}

/// A request's first token: its id and the seconds since the engine's arrival stamp.
public struct FirstToken: Sendable, Equatable {
    public var id: Int
    public var ttft: Double
    public init(id: Int, ttft: Double) {
        self.id = id
        self.ttft = ttft
    }
}

/// Hands finished requests and instance steps from the engine thread to any number of
/// subscribers on other threads (the HTTP face's metrics). Install it with ``observe(_:)`` before
/// the engine thread starts; subscribers may come and go at any time.
public final class EngineFeed: Sendable {
    private let requestSubscribers = Mutex<[@Sendable (FinishedRequest) -> Void]>([])
    private let stepSubscribers = Mutex<[@Sendable (InstanceStep) -> Void]>([])
    private let firstTokenSubscribers = Mutex<[@Sendable (FirstToken) -> Void]>([])

    public init() {}

    /// Sets the engine's request and step observers to this feed (before the engine runs).
    public func observe(_ engine: ServingEngine) {
        engine.observers.requestFinished = { [self] in publish($0) }
        engine.observers.step = { [self] in publish($0) }
        engine.observers.firstToken = { [self] in publish($0) }
    }

    public func subscribe(requests: @escaping @Sendable (FinishedRequest) -> Void,
                          steps: (@Sendable (InstanceStep) -> Void)? = nil,
                          firstTokens: (@Sendable (FirstToken) -> Void)? = nil) {
        requestSubscribers.withLock { $0.append(requests) }
        if let steps { stepSubscribers.withLock { $0.append(steps) } }
        if let firstTokens { firstTokenSubscribers.withLock { $0.append(firstTokens) } }
    }

    public func publish(_ token: FirstToken) {
        for subscriber in firstTokenSubscribers.withLock({ $0 }) { subscriber(token) }
    }

    public func publish(_ request: FinishedRequest) {
        for subscriber in requestSubscribers.withLock({ $0 }) { subscriber(request) }
    }

    public func publish(_ step: InstanceStep) {
        for subscriber in stepSubscribers.withLock({ $0 }) { subscriber(step) }
    }
}

extension ServingEngine {
    /// What the engine tells observers; set before running (or on the engine's thread).
    public var observers: EngineObservers {
        get { telemetry.observers }
        set { telemetry.observers = newValue }
    }

    /// Tells the request observer, if any, that `request` left with `stage` (`outputTokens` counts
    /// for a completed request; otherwise what its decode steps produced is reported).
    /// `placement`: what its schedulers held as it left. The request's state ends in the ring of
    /// requests that left (``keepFinished(_:placement:stage:outputTokens:reason:)``): moved there,
    /// after the observer's record is made from it.
    func observeFinished(_ request: consuming RequestState, placement: RequestPlacement, stage: RequestStage,
                         outputTokens: Int, reason: String? = nil) {
        let record = telemetry.observers.requestFinished == nil ? nil
            : finishedRecord(request, placement: placement, stage: stage, outputTokens: outputTokens, reason: reason)
        keepFinished(request, placement: placement, stage: stage, outputTokens: outputTokens, reason: reason)
        guard let record, let observer = telemetry.observers.requestFinished else { return }
        observer(record)
    }

    /// What the request observer is told of `request` leaving.
    private func finishedRecord(_ request: borrowing RequestState, placement: RequestPlacement, stage: RequestStage,
                                outputTokens: Int, reason: String?) -> FinishedRequest {
        let steps = stepsBeforeLeaving(request, placement)
        let drafts = tokensPerStep > 1 ? max(0, steps) : 0
        let produced = stage == .completed ? outputTokens : producedBeforeLeaving(request, steps: steps)
        var record = FinishedRequest(
            id: request.spec.id, arrival: request.spec.arrival, finishedAt: now, stage: stage,
            promptTokens: request.spec.promptTokens, outputTokens: produced, cachedTokens: placement.hitTokens,
            prefillStartedAt: request.prefillStartedAt, firstTokenAt: placement.firstTokenAt,
            prefillInstance: request.prefillInstance >= 0 ? instances[request.prefillInstance].name : nil,
            decodeInstance: request.decodeInstance >= 0 ? instances[request.decodeInstance].name : nil,
            reason: reason, decodeSteps: max(0, steps), draftTokens: drafts,
            acceptedDraftTokens: drafts > 0 ? min(drafts, max(0, produced - steps)) : 0)
        record.reachedMaxTokens = stage == .completed && request.spec.outputTokens >= request.maxTokens
        return record
    }

    /// Tells the request observer about a request turned away at admission.
    func observeRejected(_ spec: RequestSpec, reason: String) {
        telemetry.observers.requestFinished?(FinishedRequest(
            id: spec.id, arrival: spec.arrival, finishedAt: now, stage: .rejected,
            promptTokens: spec.promptTokens, outputTokens: 0, reason: reason))
    }

    /// Tells the transfer observer, if any, that channel `c`'s running transfer landed now.
    func observeTransfer(_ c: Int, request: RequestState) {
        guard let observer = telemetry.observers.transfer else { return }
        let channel = channels[c]
        observer(FinishedTransfer(requestID: request.spec.id, from: instances[channel.prefillInstance].name,
                            to: instances[channel.decodeInstance].name, start: channel.startedAt,
                            seconds: now - channel.startedAt, tokens: request.spec.promptTokens,
                            plane: channel.plane.rawValue))
    }

    /// Tells the step observer, if any, about the step instance `index` begins now.
    func observeStep(_ index: Int, seconds: Double, decodeBatch: Int) {
        guard let observer = telemetry.observers.step else { return }
        let instance = instances[index]
        observer(InstanceStep(instance: instance.name, role: instance.hasPrefill && instance.hasDecode ? "colocated"
                                  : instance.hasPrefill ? "prefill" : "decode",
                              start: now, seconds: seconds, decodeBatch: decodeBatch,
                              outputTokens: stepOutputTokens(index, decodeBatch: decodeBatch)))
    }

    /// What a request that did not complete produced: what its `steps` decode steps yielded.
    /// 1 when a request leaving now also has its TE's running step: its client left, and it
    /// leaves at that step's end. A request that failed lost that step with its TE (the same
    /// count as ``ServingEngine/decodedSoFar(_:_:)``, so the report's `tokens.generated` is the
    /// sum of the rows' `output_tokens`).
    func runningStep(_ request: RequestState) -> Int { request.cancelled ? 1 : 0 }

    /// Decode steps `request` (placed at `p`) has had when it leaves now: the steps its TE
    /// finished since it joined, the running one too if its client left (``runningStep(_:)``);
    /// 0 before decode. The rows, the request detail and `tokens.generated` all count by it.
    func stepsBeforeLeaving(_ request: RequestState, _ p: RequestPlacement) -> Int {
        guard request.decodeInstance >= 0, p.finishStep > p.joinStep else { return 0 }
        return min(p.finishStep, instances[request.decodeInstance].stepIndex + runningStep(request)) - p.joinStep
    }

    func producedBeforeLeaving(_ request: RequestState, steps: Int) -> Int {
        min(request.outputTokens, Int(saturating: (Double(max(0, steps)) * tokensPerStep).rounded(.down)))
    }

    /// What a request leaving after `steps` decode steps produced: its whole output, or what its
    /// steps yielded if its client left.
    private func produced(_ request: RequestState, steps: Int) -> Int {
        request.cancelled ? producedBeforeLeaving(request, steps: steps) : request.outputTokens
    }

    /// Output tokens of the decode step instance `index` begins now, for the generation counter:
    /// `1 + acceptance` per request in the batch on average, except that a request whose last step
    /// this is yields only what is left of its output after the average of its earlier steps — so
    /// a request's steps add up to exactly the tokens it produced (crediting the average on the
    /// last step too overcounted: 20 one-token requests credited 34 tokens at 1.7 per step).
    /// Only a step observer pays for the lookup of this step's finishers.
    private func stepOutputTokens(_ index: Int, decodeBatch: Int) -> Double {
        let average = Double(decodeBatch) * tokensPerStep
        guard decodeBatch > 0, let decode = instances[index].decode,
              let finishers = decode.finishing[instances[index].stepIndex + 1]
        else { return average }
        var tokens = average
        for id in finishers {
            guard let request = requests[id], let seat = decodeSeat(of: request), seat.inBatch else { continue }
            let steps = seat.finishStep - seat.joinStep
            let produced = produced(request, steps: steps)
            let earlier = Double(max(0, steps - 1)) * tokensPerStep
            tokens += max(0, Double(produced) - earlier) - tokensPerStep
        }
        tokens = max(0, tokens)
        // What requests cut short were credited beyond their output is taken off here.
        let settled = min(telemetry.generationCreditOwed, tokens)
        telemetry.generationCreditOwed -= settled
        return tokens - settled
    }

    /// `request` now finishes at the end of the step its TE is running (a stop string matched,
    /// its client left): that step was credited the average for it when it began, and it yields
    /// only what is left of its output, so the difference is owed back from the next steps'
    /// credit. (A request already in its own last step when cut keeps that step's credit.)
    func noteCutShort(_ request: RequestState) {
        let index = request.decodeInstance
        guard telemetry.observers.step != nil, index >= 0, instances[index].stepping,
              let seat = decodeSeat(of: request), seat.inBatch
        else { return }
        let steps = instances[index].stepIndex + 1 - seat.joinStep  // begun, the running one included
        let produced = produced(request, steps: steps)
        telemetry.generationCreditOwed += Double(steps) * tokensPerStep - Double(produced)
    }
}
