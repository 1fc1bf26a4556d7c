import SimKit

/// What the schedulers hold for one request: its prefill ticket (``PrefillScheduler``) and decode
/// seat (``DecodeScheduler``), read through them by number. Readers outside the schedulers
/// (snapshot, request query, eviction, drain, audit, records) see the figures below; a request
/// that has neither yet reads as one with no group, no hits and no steps.
struct RequestPlacement {
    var ticket: PrefillTicket?
    var seat: DecodeSeat?

    /// The prefill DP group (-1: not placed).
    var prefillGroup: Int { ticket?.group ?? -1 }
    /// Prompt tokens its prefill allocation found cached (group and pool hits).
    var hitTokens: Int { ticket?.hitTokens ?? 0 }
    var remainingPrefill: Int { ticket?.remaining ?? 0 }
    var allocated: Bool { ticket?.allocated ?? false }
    /// The decode DP group (-1: none yet).
    var decodeGroup: Int { seat?.group ?? -1 }
    var joinStep: Int { seat?.joinStep ?? 0 }
    var finishStep: Int { seat?.finishStep ?? 0 }
    var firstTokenAt: SimTime? { seat?.firstTokenAt }
}

extension ServingEngine {
    /// The request's prefill ticket and decode seat, as their schedulers hold them now.
    func placement(of r: RequestState) -> RequestPlacement {
        RequestPlacement(ticket: prefillTicket(of: r), seat: decodeSeat(of: r))
    }

    func prefillTicket(of r: RequestState) -> PrefillTicket? {
        guard r.prefillTicket >= 0, instances.indices.contains(r.prefillInstance) else { return nil }
        return instances[r.prefillInstance].prefill?.ticket(r.prefillTicket)
    }

    func decodeSeat(of r: RequestState) -> DecodeSeat? {
        guard r.decodeSeat >= 0, instances.indices.contains(r.decodeInstance) else { return nil }
        return instances[r.decodeInstance].decode?.seat(r.decodeSeat)
    }

    /// A request leaving the engine gives back the records it still holds (its KV, seat counts
    /// and batch place were settled before); returns what they said, for its record.
    func forgetPlacement(of r: RequestState) -> RequestPlacement {
        var placement = RequestPlacement()
        if r.prefillTicket >= 0, instances.indices.contains(r.prefillInstance) {
            placement.ticket = instances[r.prefillInstance].prefill?.forget(r.prefillTicket)
        }
        if r.decodeSeat >= 0, instances.indices.contains(r.decodeInstance) {
            placement.seat = instances[r.decodeInstance].decode?.forgetSeat(r.decodeSeat)
        }
        return placement
    }
}
