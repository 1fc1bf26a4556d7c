import SimKit

/// Answers ``RequestQueryLink`` questions on the engine's thread: a window of the whole in-flight
/// table, and one request's engine-recorded timeline. Nothing here changes the engine.
extension ServingEngine {
    /// One window of the in-flight table, filtered and sorted as `query` says (the offset is
    /// clamped to the list). Cost: one pass over the requests in flight plus a sort of those
    /// that match; strings are built only for a non-empty filter's place match and for the rows
    /// returned.
    public func requestPage(_ query: RequestQuery) -> RequestPage {
        let needle = query.filter.lowercased()
        var keys: [(id: Int, r: RequestState)] = []
        keys.reserveCapacity(requests.count)
        for (id, r) in requests where needle.isEmpty || matches(id, r, needle) { keys.append((id, r)) }
        let firstTokenAt = { [self] (r: RequestState) in placement(of: r).firstTokenAt }
        let order = Self.stageRank
        let natural: (Int, RequestState, Int, RequestState) -> Bool
        switch query.sort {
        case .age: natural = { ($1.spec.arrival, $0) < ($3.spec.arrival, $2) }
        case .stage: natural = { (order[$1.stage]!, $1.spec.arrival, $0) < (order[$3.stage]!, $3.spec.arrival, $2) }
        case .tokens:
            natural = { (Saturating.add($1.spec.promptTokens, $1.outputTokens), $2) > (Saturating.add($3.spec.promptTokens, $3.outputTokens), $0) }
        case .id: natural = { a, _, b, _ in a < b }
        case .prompt: natural = { ($1.spec.promptTokens, $2) > ($3.spec.promptTokens, $0) }
        case .ttft:
            natural = { a, ra, b, rb in
                let ta = firstTokenAt(ra).map { $0 - ra.spec.arrival } ?? -1, tb = firstTokenAt(rb).map { $0 - rb.spec.arrival } ?? -1
                return (ta, b) > (tb, a)
            }
        }
        keys.sort { query.reversed ? natural($1.id, $1.r, $0.id, $0.r) : natural($0.id, $0.r, $1.id, $1.r) }
        var answered = query
        answered.offset = min(query.offset, max(0, keys.count - 1))
        let rows = keys.dropFirst(answered.offset).prefix(query.limit).map { inFlightStatus($0.id, $0.r) }
        return RequestPage(query: answered, simTime: now, inFlight: requests.count, matching: keys.count, rows: rows)
    }

    /// The engine-recorded timeline of a request in flight or among the last
    /// ``FinishedRequestRing/capacity`` that left (rejected ones from the recent list); nil when
    /// the engine no longer remembers it.
    public func requestDetail(id: Int) -> RequestDetail? {
        if let r = requests[id] {
            let status = inFlightStatus(id, r)
            return detail(r, placement(of: r), stage: r.stage, generated: status.generatedTokens, finishedAt: nil, reason: nil)
        }
        if let e = telemetry.finished.find(id) {
            return detail(e.request, e.placement, stage: e.stage, generated: e.outputTokens, finishedAt: e.finishedAt, reason: e.reason)
        }
        if let s = telemetry.recent.last(where: { $0.id == id }) {
            var d = RequestDetail(id: id, stage: s.stage, arrivedAt: s.arrivedAt, promptTokens: s.promptTokens,
                                  outputTokens: s.outputTokens, generatedTokens: s.generatedTokens, simTime: now)
            d.finishedAt = s.finishedAt
            d.reason = s.reason
            return d
        }
        return nil
    }

    /// Called for every request that leaves (completed, failed, cancelled): kept for its detail.
    func keepFinished(_ request: consuming RequestState, placement p: RequestPlacement, stage: RequestStage, outputTokens: Int,
                      reason: String?) {
        let produced: Int
        if stage == .completed {
            produced = outputTokens
        } else if request.times.decodeJoinedAt != nil {
            produced = producedBeforeLeaving(request, steps: stepsBeforeLeaving(request, p))
        } else {
            produced = 0
        }
        telemetry.finished.append(.init(request: consume request, placement: p, stage: stage, finishedAt: now,
                                        outputTokens: produced, reason: reason))
    }

    private func detail(_ r: RequestState, _ p: RequestPlacement, stage: RequestStage, generated: Int,
                        finishedAt: SimTime?, reason: String?) -> RequestDetail
    {
        var d = RequestDetail(id: r.spec.id, stage: stage, arrivedAt: r.spec.arrival, promptTokens: r.spec.promptTokens,
                              cachedPromptTokens: p.hitTokens, outputTokens: r.outputTokens, generatedTokens: generated,
                              simTime: now)
        if instances.indices.contains(r.prefillInstance) {
            d.prefillInstance = instances[r.prefillInstance].name
            d.prefillGroup = p.prefillGroup >= 0 ? p.prefillGroup : nil
        }
        if instances.indices.contains(r.decodeInstance) {
            d.decodeInstance = instances[r.decodeInstance].name
            d.decodeGroup = p.decodeGroup >= 0 ? p.decodeGroup : nil
        }
        d.prefillStartedAt = r.times.prefillStartedAt
        d.prefillEndedAt = r.times.prefillEndedAt
        d.transferStartedAt = r.times.transferStartedAt
        d.transferEndedAt = r.times.transferEndedAt
        d.decodeJoinedAt = r.times.decodeJoinedAt
        d.firstTokenAt = p.firstTokenAt
        d.finishedAt = finishedAt
        d.reason = reason
        d.reprefills = r.times.reprefills
        d.requeuedAt = r.times.requeuedAt
        return d
    }

    static let stageRank = Dictionary(uniqueKeysWithValues: RequestStage.allCases.enumerated().map { ($1, $0) })

    /// The place a request in flight is shown at: its decode TE/group once it is transferring
    /// or decoding, its prefill TE/group before.
    func place(_ r: RequestState) -> String {
        if r.stage == .decode || r.stage == .transfer, r.decodeInstance >= 0 {
            let g = placement(of: r).decodeGroup
            return instances[r.decodeInstance].name + (g >= 0 ? "/dp\(g)" : "")
        } else if r.prefillInstance >= 0 {
            return "\(instances[r.prefillInstance].name)/dp\(placement(of: r).prefillGroup)"
        }
        return ""
    }

    /// The snapshot's row for a request in flight (same fields as ``Snapshot/inFlight``).
    func inFlightStatus(_ id: Int, _ r: RequestState) -> RequestStatus {
        let p = placement(of: r)
        let generated = r.stage == .decode && p.finishStep > 0
            ? min(r.outputTokens, Int(saturating: Double(max(0, instances[r.decodeInstance].stepIndex - p.joinStep)) * tokensPerStep))
            : 0
        return RequestStatus(id: id, arrivedAt: r.spec.arrival, stage: r.stage, promptTokens: r.spec.promptTokens,
                             outputTokens: r.outputTokens, generatedTokens: generated, location: place(r),
                             ttftMs: p.firstTokenAt.map { ($0 - r.spec.arrival) * 1_000 })
    }

    /// The `/` filter of the console's Requests view: `#id`, stage or place, case-insensitive.
    private func matches(_ id: Int, _ r: RequestState, _ needle: String) -> Bool {
        "#\(id)".contains(needle) || r.stage.rawValue.contains(needle) || place(r).lowercased().contains(needle)
    }
}
