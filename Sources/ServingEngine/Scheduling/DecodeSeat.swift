import SimKit

/// A request's place on a decode-capable TE (engine-components.md §2), kept by its
/// ``DecodeScheduler`` from the moment it has a group there until it leaves: the DP group, the
/// step it joined the running batch at and the one it finishes at (0 until it joins), whether it
/// is in the running batch (joined at a step boundary: an eviction takes it out of the batch
/// figures too), and when its first token came (NaN until then, read as an optional).
struct DecodeSeat: Equatable, Sendable {
    let request: Int
    var group: Int
    var joinStep = 0
    var finishStep = 0
    var inBatch = false
    private var firstToken: SimTime = .nan

    init(request: Int, group: Int) {
        self.request = request
        self.group = group
    }

    var firstTokenAt: SimTime? {
        get { RequestTimes.time(firstToken) }
        set { firstToken = newValue ?? .nan }
    }

    static func == (a: DecodeSeat, b: DecodeSeat) -> Bool {
        a.request == b.request && a.group == b.group && a.joinStep == b.joinStep && a.finishStep == b.finishStep
            && a.inBatch == b.inBatch
            && a.firstToken.bitPattern == b.firstToken.bitPattern
    }
}
