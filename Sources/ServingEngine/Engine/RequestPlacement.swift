import SimKit

/// What the schedulers hold for one request, as figures: its prefill ticket
/// (``PrefillScheduler``) and decode seat (``DecodeScheduler``), read through them by number.
/// Readers outside the schedulers (snapshot, request query, eviction, drain, audit, records) see
/// these; a request with neither yet reads as one with no group, no hits and no steps. Flat (not
/// the two records as optionals): a leaving request keeps one in the finished ring.
struct RequestPlacement {
    /// The prefill DP group (-1: not placed).
    var prefillGroup = -1
    /// Prompt tokens it still has to compute, and whether its prefill KV is allocated.
    var remainingPrefill = 0
    var allocated = false
    /// Prompt tokens its prefill allocation found cached (group and pool hits).
    var hitTokens = 0
    /// The decode DP group (-1: none yet), the steps it joined and finishes at (0 until it joins).
    var decodeGroup = -1
    var joinStep = 0
    var finishStep = 0
    private var firstToken: SimTime = .nan

    init() {}

    @inline(__always)
    init(ticket: PrefillTicket?, seat: DecodeSeat?) {
        if let ticket {
            prefillGroup = ticket.group
            remainingPrefill = ticket.remaining
            allocated = ticket.allocated
            hitTokens = ticket.hitTokens
        }
        if let seat {
            decodeGroup = seat.group
            joinStep = seat.joinStep
            finishStep = seat.finishStep
            firstToken = seat.firstTokenAt ?? .nan
        }
    }

    var firstTokenAt: SimTime? { RequestTimes.time(firstToken) }
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
        var ticket: PrefillTicket?, seat: DecodeSeat?
        if r.prefillTicket >= 0, instances.indices.contains(r.prefillInstance) {
            ticket = instances[r.prefillInstance].prefill?.forget(r.prefillTicket)
        }
        if r.decodeSeat >= 0, instances.indices.contains(r.decodeInstance) {
            seat = instances[r.decodeInstance].decode?.forgetSeat(r.decodeSeat)
        }
        return RequestPlacement(ticket: ticket, seat: seat)
    }
}
