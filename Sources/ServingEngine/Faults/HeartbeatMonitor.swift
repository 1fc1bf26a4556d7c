/// The heartbeat side of the fault system (system.md §4 "Faults"): how many consecutive
/// rounds each TE's DP masters have been silent, and which decode TEs' KV probes are in a
/// "delayed, not blocked" episode. A value owned by ``FaultSystem``, which tells it per call
/// whether a TE is silent or halted (it keeps no fault records of its own).
///
/// ```swift
/// var monitor = HeartbeatMonitor()
/// monitor.round(instance: 2, silent: true, declareAfter: 3)    // nil (1 round)
/// monitor.round(instance: 2, silent: false, declareAfter: 3)   // nil: answered, count cleared
/// ```
struct HeartbeatMonitor: Equatable {
    /// Consecutive silent rounds per TE (absent: answering).
    private(set) var silentRounds: [Int: Int] = [:]
    /// Decode TEs whose KV probes reported "delayed" in the current episode (logged once).
    private(set) var delayedChannels: Set<Int> = []

    /// One heartbeat round for TE `i`: an answer clears its count; silence counts a round.
    /// Returns the rounds when they reach `declareAfter` (the TE is declared and the count
    /// starts over), nil otherwise.
    mutating func round(instance i: Int, silent: Bool, declareAfter: Int) -> Int? {
        guard silent else {
            silentRounds[i] = nil
            return nil
        }
        let rounds = silentRounds[i, default: 0] + 1
        silentRounds[i] = rounds
        guard rounds >= declareAfter else { return nil }
        silentRounds[i] = nil
        return rounds
    }

    /// KV probes to decode TE `d` with `waiting` transfers queued: true when this starts a
    /// "delayed" episode (a halted TE's queue is not back-pressure); an empty queue ends it.
    mutating func probeKV(decode d: Int, waiting: Int, halted: Bool) -> Bool {
        if waiting == 0 {
            delayedChannels.remove(d)
            return false
        }
        guard !delayedChannels.contains(d) && !halted else { return false }
        delayedChannels.insert(d)
        return true
    }
}
