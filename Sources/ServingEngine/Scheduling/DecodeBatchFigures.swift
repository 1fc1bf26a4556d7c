/// What a decode step's cost reads of each DP group's running batch, struct of arrays: the
/// number of running requests and the two sums that give their mean context in O(1) (the mean
/// after `step` steps is `(promptSum + (running × step − joinStepSum) × tokensPerStep) / running`).
///
/// Owned by a ``DecodeScheduler``, whose ``DecodeScheduler/admit(_:group:promptTokens:joinStep:finishStep:)``
/// and leaving calls are its only writers; ``SlowestDecodeGroup`` indexes it.
///
/// ```swift
/// var batches = DecodeBatchFigures(groups: 4)
/// batches.join(2, promptTokens: 500, joinStep: 7)
/// batches.meanContext(2, step: 9, tokensPerStep: 1.5)   // 503
/// ```
struct DecodeBatchFigures: Equatable {
    private(set) var running: [Int]
    private(set) var promptSum: [Int]
    private(set) var joinStepSum: [Int]

    init(groups count: Int) {
        running = Array(repeating: 0, count: count)
        promptSum = Array(repeating: 0, count: count)
        joinStepSum = Array(repeating: 0, count: count)
    }

    var count: Int { running.count }

    /// Running requests over all groups (summed in group order).
    var totalRunning: Int {
        var total = 0
        for g in running.indices { total += running[g] }
        return total
    }

    /// A request that joins group `g`'s batch at `joinStep`.
    mutating func join(_ g: Int, promptTokens: Int, joinStep: Int) {
        running[g] += 1
        promptSum[g] += promptTokens
        joinStepSum[g] += joinStep
    }

    /// A request that joined group `g`'s batch at `joinStep` leaves it.
    mutating func leave(_ g: Int, promptTokens: Int, joinStep: Int) {
        running[g] -= 1
        promptSum[g] -= promptTokens
        joinStepSum[g] -= joinStep
    }

    /// Mean context length of group `g`'s running requests after `step` steps at `tokensPerStep`.
    func meanContext(_ g: Int, step: Int, tokensPerStep: Double) -> Double {
        Self.meanContext(running: running[g], promptSum: promptSum[g], joinStepSum: joinStepSum[g], step: step,
                         tokensPerStep: tokensPerStep)
    }

    /// The same from the figures (one formula for the scan and ``SlowestDecodeGroup``: same bits).
    @inline(__always)
    static func meanContext(running: Int, promptSum: Int, joinStepSum: Int, step: Int, tokensPerStep: Double) -> Double {
        guard running > 0 else { return 0 }
        let generated = Double(running * step - joinStepSum) * tokensPerStep
        return (Double(promptSum) + generated) / Double(running)
    }
}
