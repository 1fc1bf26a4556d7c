import SimKit

/// Glitch recovery bookkeeping of the fault system (fine-grained policy, system.md §4): which
/// TE still owes a redo of its failed iteration for which glitch, when the last redone
/// iteration ends, and which TEs redid one. A value owned by ``FaultSystem``.
///
/// ```swift
/// var redo = GlitchRedo()
/// redo.schedule([0, 2], fault: 7)
/// redo.take(0)                                                      // [7]
/// redo.noteRedone(fault: 7, by: "decode-0", endingAt: 1.5, now: 1)  // nil: TE 2 still owes one
/// ```
struct GlitchRedo: Equatable {
    /// The glitches whose redo each TE still owes, in the order they hit: a second glitch during
    /// the same failed iteration is redone by the same redo (it used to replace the first, which
    /// then never recovered).
    private(set) var pending: [Int: [Int]] = [:]
    /// Per glitch: when the last redone iteration ends, and the TEs that redid one (in order).
    private(set) var ends: [Int: SimTime] = [:]
    private(set) var redone: [Int: [String]] = [:]

    /// Every TE in `instances` redoes the iteration in flight for glitch `id`.
    mutating func schedule(_ instances: [Int], fault id: Int) {
        for i in instances where pending[i]?.contains(id) != true { pending[i, default: []].append(id) }
    }

    /// The glitches whose redo TE `i` still owes (taken: the redo starts now), oldest first;
    /// empty when none.
    mutating func take(_ i: Int) -> [Int] {
        // Asked at every step's end; an empty table still hashes the key to find nothing.
        guard !pending.isEmpty else { return [] }
        return pending.removeValue(forKey: i) ?? []
    }

    /// TE `name` redoes its iteration for glitch `id`, ending at `end`. Returns when the last
    /// redone iteration ends once no TE owes a redo for it any more (the recovery time).
    mutating func noteRedone(fault id: Int, by name: String, endingAt end: SimTime, now: SimTime) -> SimTime? {
        ends[id] = max(ends[id] ?? now, end)
        redone[id, default: []].append(name)
        guard !pending.values.contains(where: { $0.contains(id) }) else { return nil }
        return ends[id]
    }

    /// Glitch `id`'s bookkeeping is over.
    mutating func end(_ id: Int) {
        ends[id] = nil
        redone[id] = nil
    }
}
