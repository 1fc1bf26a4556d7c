import SimKit

/// Requests from outside the workload (architecture.md: "arrival (workload generator, trace,
/// or HTTP)"): submitted as commands, streamed as the engine produces their tokens, cancellable.
extension ServingEngine {
    /// External request ids live far above any workload's (which count from 0).
    static let firstExternalID = ClientStreams.firstID

    /// Takes a request in now. Its output length follows the synthetic chat traffic's
    /// distribution (the data plane is simulated, so the engine decides when it stops), capped at
    /// `maxTokens`. Returns the id; progress arrives through ``takeStreamUpdates()``.
    public func submitExternal(promptTokens: Int, maxTokens: Int, tag: String = "chat") -> Int {
        submitExternal(promptTokens: promptTokens, maxTokens: maxTokens, minTokens: 0, ignoreEOS: false,
                       prefixHashes: [], prefixBlockTokens: configuration.kvBlockTokens, tag: tag)
    }

    /// Takes a request in now, with vLLM's length semantics:
    /// - `ignoreEOS`: exactly `maxTokens` output tokens (a fixed-length benchmark request);
    /// - otherwise the engine's own length (the synthetic chat distribution), raised to at least
    ///   `minTokens` and never beyond `maxTokens`.
    /// The natural length is drawn from the external-length stream in every case, so the lengths
    /// of later requests do not depend on these flags (a replay stays in step).
    /// `prefixHashes` are flat content keys of the prompt's full blocks of `prefixBlockTokens`
    /// tokens (as a trace's `hash_ids`); the engine rebases and chains them for its prefix cache.
    public func submitExternal(promptTokens: Int, maxTokens: Int, minTokens: Int, ignoreEOS: Bool,
                               prefixHashes: [UInt64], prefixBlockTokens: Int, tag: String = "chat") -> Int {
        let (id, output) = streams.open(maxTokens: maxTokens, minTokens: minTokens, ignoreEOS: ignoreEOS)
        // The prompt and the most output it may ask for must fit the model's context window:
        // the HTTP layer lowers `max_tokens` to what the window leaves and refuses a prompt that
        // fills it, so its requests never reach this refusal, but another face or a library
        // caller can.
        // Keys the engine could not re-cut into its blocks (a block size out of range, or more
        // keys than the prompt has blocks) are refused with the range, 400, before any arithmetic
        // on them: no file, flag or HTTP body reaches here with them, but a library caller can. A
        // size of 0 or less still means no prefix caching (the keys are dropped, as before).
        let refusal = contextWindowProblem(promptTokens: promptTokens, maxTokens: maxTokens)
            .map { (reason: $0, kind: "beyond the context window") }
            ?? (prefixBlockTokens > 0 ? CompletionRequest.prefixKeysProblem(
                keys: prefixHashes.count, blockTokens: prefixBlockTokens, promptTokens: promptTokens) : nil)
            .map { (reason: $0, kind: "prefix keys out of range") }
        if let refusal {
            telemetry.arrived += 1
            reject(RequestSpec(id: id, arrival: now, promptTokens: max(1, promptTokens), outputTokens: output, tag: tag),
                   reason: refusal.reason, kind: refusal.kind, status: 400)
            return id
        }
        let spec = RequestSpec(id: id, arrival: now, promptTokens: max(1, promptTokens), outputTokens: output,
                               prefixHashes: prefixBlockTokens > 0 ? prefixHashes : [],
                               prefixBlockTokens: prefixBlockTokens > 0 ? prefixBlockTokens : configuration.kvBlockTokens,
                               tag: tag)
        admit(spec)
        requests[id]?.maxTokens = maxTokens
        return id
    }

    /// Why a prompt of `promptTokens` with up to `maxTokens` of output cannot be served by the
    /// model (its context window holds prompt plus output), or nil when it fits. Compared
    /// without adding: a count near Int.max would overflow the sum.
    func contextWindowProblem(promptTokens: Int, maxTokens: Int) -> String? {
        let window = model.contextWindow, prompt = max(1, promptTokens), output = max(1, maxTokens)
        guard prompt > window || output > window - prompt else { return nil }
        return "prompt of \(prompt) tokens plus up to \(output) output tokens exceeds the model's context window of \(window) tokens"
    }

    /// The client went away. A decoding request stops at its next decode step; one that has not
    /// had a decode step leaves at once (queued for prefill, in the prefill batch computing its
    /// chunk, waiting for decode room, moving its KV, or waiting to join the decode batch). Its
    /// KV is freed and it counts as failed with reason "cancelled". Unknown or finished ids are
    /// ignored.
    ///
    /// Before, a request not yet decoding was still prefilled, handed to decode and freed after
    /// one step there: twenty 60k-token prompts whose clients left after a second held the
    /// prefill TE for 12–40 s, and a client could spend prefill capacity by disconnecting.
    /// One whose chunk was in the running batch then stayed until the batch ended (up to ~5 s
    /// for a 32k chunk, and for ever on a TE hung by a fault), listed as prefilling for a client
    /// that was gone. As vLLM's abort, it now leaves at once: its chunk is taken out of the
    /// batch (not applied at the batch's end) and its blocks freed; the batch keeps its time
    /// (the hardware computes the chunk anyway), and nothing allocates on the TE before it ends.
    public func cancelExternal(id: Int) {
        guard var request = requests[id], !request.cancelled else { return }
        request.cancelled = true
        requests[id] = request
        streams.close(id)
        if request.stage == .decode && !isJoining(request) {
            finishAtNextStep(request)
        } else {
            evict([id], outcome: .cancel)
        }
    }

    /// The client's stop string matched: the reply is over. The request stops at its next decode
    /// step and counts as completed with the tokens reported so far (vLLM finishes such a request
    /// with reason "stop"; it is a success, not a cancellation). Not yet decoding: as cancel.
    public func stopExternal(id: Int) {
        guard var request = requests[id], !request.cancelled else { return }
        guard let reported = streams.close(id), reported > 0, request.decodeInstance >= 0 else {
            cancelExternal(id: id)
            return
        }
        request.spec.outputTokens = min(request.spec.outputTokens, reported)
        requests[id] = request
        finishAtNextStep(request)
    }

    /// Whether `request`'s KV is on the decode side but it waits for the step boundary to join
    /// the running batch: it has had no decode step, so a cancelled one leaves at once.
    private func isJoining(_ request: RequestState) -> Bool {
        instances.indices.contains(request.decodeInstance)
            && instances[request.decodeInstance].decode?.joining.contains(request.id) == true
    }

    /// Moves a decoding request's finish to the next step of its instance.
    private func finishAtNextStep(_ request: RequestState) {
        let index = request.decodeInstance
        guard index >= 0, placement(of: request).finishStep > instances[index].stepIndex + 1,
              let decode = instances[index].decode
        else { return }
        // The seat's finish step follows (``DecodeScheduler/reschedule(seat:to:)``).
        decode.reschedule(seat: request.decodeSeat, to: instances[index].stepIndex + 1)
        noteCutShort(request)
    }

    /// Progress of external requests since the last call, in the order it happened.
    public func takeStreamUpdates() -> [StreamUpdate] {
        streams.take()
    }

    /// A request's fixed rounding phase in [0, 1): its n-th decode step has produced
    /// ⌊n·(1 + acceptance) + phase⌋ tokens.
    func tokenPhase(_ id: Int) -> Double {
        Double(StableHash.mix(UInt64(bitPattern: Int64(id))) >> 11) / Double(1 << 53)
    }

    /// Tokens produced this step by the watched requests decoding on `index`.
    func reportTokens(_ index: Int, step: Int) {
        // In the order the streams opened (request id order), the same in every process: the
        // streams' dictionary order is Swift's per-process hash seeding (engine-components.md
        // §7.7), and it decided the order of each step's updates. Opening order because it is
        // the streams' own (ids count up as they open) and the one clients see requests in. The
        // loop walks a snapshot; `progress` writes the live counts and closes nothing.
        for id in streams.openOrder {
            guard let request = requests[id], request.decodeInstance == index, request.stage == .decode else { continue }
            let placement = placement(of: request)
            guard placement.finishStep > 0, step > placement.joinStep, step < placement.finishStep else { continue }
            let produced = min(request.outputTokens,
                               Int(saturating: (Double(step - placement.joinStep) * tokensPerStep + tokenPhase(id)).rounded(.down)))
            streams.progress(id, tokensSoFar: produced, cachedPromptTokens: placement.hitTokens)
        }
    }

    /// Bookkeeping of a cancelled request that has released its resources.
    func leaveCancelled(_ request: RequestState, placement: RequestPlacement, location: String) {
        let id = request.spec.id
        telemetry.failed += 1
        telemetry.count(&telemetry.failureReasons, "cancelled")
        telemetry.log(EngineEvent(time: now, kind: .requestCancelled, message: "request \(id) cancelled by its client",
                                  requestId: id))
        telemetry.remember(RequestStatus(id: id, arrivedAt: request.spec.arrival, stage: .cancelled,
                                         promptTokens: request.spec.promptTokens, outputTokens: request.outputTokens,
                                         location: location, finishedAt: now, reason: "cancelled"))
        observeFinished(request, placement: placement, stage: .cancelled, outputTokens: 0, reason: "cancelled")
    }
}
