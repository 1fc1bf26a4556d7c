/// Records handed out by number: a scheduler's per-request records (``PrefillTicket``,
/// ``DecodeSeat``), the request keeping only the number. A flat table with whether each number
/// is held; a given-back number is reused, last given back first. (Not an array of optionals: on
/// the saturated superpod, reading and writing those went through outlined value witnesses.)
///
/// ```swift
/// var seats = NumberedRecords<DecodeSeat>()
/// let s = seats.issue(DecodeSeat(request: 7, group: 2))   // 0
/// seats[held: s].joinStep = 40                            // in place
/// seats.giveBack(s)                                       // the record; then nil
/// ```
struct NumberedRecords<Record> {
    private struct Slot {
        var record: Record
        var held: Bool
    }

    private var slots: [Slot] = []
    private var free: [Int] = []

    /// Records held now.
    var heldCount: Int { slots.count - free.count }

    /// Record `n`, nil when `n` is not held.
    func record(_ n: Int) -> Record? {
        guard isHeld(n) else { return nil }
        return slots[n].record
    }

    func isHeld(_ n: Int) -> Bool { n >= 0 && n < slots.count && slots[n].held }

    /// Held record `n`, read and changed in place (one access, one uniqueness check of the
    /// table). `n` must be held.
    subscript(held n: Int) -> Record {
        get { slots[n].record }
        _modify { yield &slots[n].record }
    }

    /// Holds `record` under a number, returned.
    mutating func issue(_ record: Record) -> Int {
        // `removeLast`, not `popLast`: the latter was an outlined generic call here.
        if !free.isEmpty {
            let n = free.removeLast()
            slots[n] = Slot(record: record, held: true)
            return n
        }
        slots.append(Slot(record: record, held: true))
        return slots.count - 1
    }

    /// Gives number `n` back; returns its record (nil, nothing changed: not held).
    @discardableResult
    mutating func giveBack(_ n: Int) -> Record? {
        guard let record = record(n) else { return nil }
        slots[n].held = false
        free.append(n)
        return record
    }
}
