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

    /// Reads `running` and `joinStepSum` through buffers (a loop over every group per telemetry
    /// tick: ``ServingEngine/decodeKVUsage()``).
    func withFigures<R>(_ body: (UnsafeBufferPointer<Int>, UnsafeBufferPointer<Int>) throws -> R) rethrows -> R {
        try running.withUnsafeBufferPointer { running in
            try joinStepSum.withUnsafeBufferPointer { joinStepSum in try body(running, joinStepSum) }
        }
    }

    /// Running requests over all groups: kept by ``join(_:promptTokens:joinStep:)`` and
    /// ``leave(_:promptTokens:joinStep:)`` (every telemetry tick asks each TE; summing its
    /// groups there was 0.6% of the Mooncake hour).
    private(set) var totalRunning = 0

    /// A request that joins group `g`'s batch at `joinStep`.
    mutating func join(_ g: Int, promptTokens: Int, joinStep: Int) {
        running[g] += 1
        totalRunning += 1
        promptSum[g] += promptTokens
        joinStepSum[g] += joinStep
    }

    /// A request that joined group `g`'s batch at `joinStep` leaves it.
    mutating func leave(_ g: Int, promptTokens: Int, joinStep: Int) {
        running[g] -= 1
        totalRunning -= 1
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
    /// The mean busy group: requests per group that has any, and their mean context. A dense
    /// model's DP groups meet at no collective (no dispatch), so its TE's lockstep is priced at
    /// this group rather than at the slowest (ServingEngine.decodeStepSeconds).
    func meanBusyGroup(step: Int, tokensPerStep: Double) -> (requests: Double, context: Double, total: Int) {
        var busy = 0, total = 0, promptTokens = 0, joinSteps = 0
        for g in running.indices where running[g] > 0 {
            busy += 1
            total += running[g]
            promptTokens += promptSum[g]
            joinSteps += joinStepSum[g]
        }
        guard busy > 0 else { return (0, 0, 0) }
        let context = Self.meanContext(running: total, promptSum: promptTokens, joinStepSum: joinSteps, step: step,
                                       tokensPerStep: tokensPerStep)
        return (Double(total) / Double(busy), context, total)
    }

    static func meanContext(running: Int, promptSum: Int, joinStepSum: Int, step: Int, tokensPerStep: Double) -> Double {
        guard running > 0 else { return 0 }
        let generated = Double(running * step - joinStepSum) * tokensPerStep
        return (Double(promptSum) + generated) / Double(running)
    }
}
