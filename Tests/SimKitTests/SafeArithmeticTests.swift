import Testing

@testable import SimKit

@Suite struct SafeArithmeticTests {
    @Test func doubleToIntSaturatesAndNeverTraps() {
        #expect(Int(saturating: 1e300) == .max)
        #expect(Int(saturating: -1e300) == .min)
        #expect(Int(saturating: .infinity) == .max)
        #expect(Int(saturating: -.infinity) == .min)
        #expect(Int(saturating: .nan) == 0)
        #expect(Int(saturating: .nan, nan: -1) == -1)
        #expect(Int(saturating: 0x1p63) == .max)
        #expect(Int(saturating: -0x1p63) == .min)
        // Where Int(_:) works, the same answer.
        for x in [0.0, 1.9, -1.9, 123_456.7, 0x1p62, -0x1p62, 9_007_199_254_740_992] {
            #expect(Int(saturating: x) == Int(x))
        }
    }

    @Test func integerOperationsSaturate() {
        #expect(Saturating.add(.max, 1) == .max)
        #expect(Saturating.add(.min, -1) == .min)
        #expect(Saturating.add(2, 3) == 5)
        #expect(Saturating.subtract(.min, 1) == .min)
        #expect(Saturating.subtract(.max, -1) == .max)
        #expect(Saturating.multiply(.max, 2) == .max)
        #expect(Saturating.multiply(.max, -2) == .min)
        #expect(Saturating.multiply(-3, 4) == -12)
    }

    @Test func ceilingDivisionHasNoOverflow() {
        #expect(Saturating.ceilDiv(.max, 128) == Int.max / 128 + 1)
        #expect(Saturating.ceilDiv(256, 128) == 2)
        #expect(Saturating.ceilDiv(257, 128) == 3)
        #expect(Saturating.ceilDiv(0, 128) == 0)
        #expect(Saturating.ceilDiv(-5, 128) == 0)
        #expect(Saturating.ceilDiv(5, 0) == .max)
        for x in 0..<1_000 { #expect(Saturating.ceilDiv(x, 7) == (x + 6) / 7) }
    }

    @Test func durationsAreFiniteAndNonNegative() {
        #expect(Saturating.duration(.nan, limit: 10) == 0)
        #expect(Saturating.duration(-1, limit: 10) == 0)
        #expect(Saturating.duration(.infinity, limit: 10) == 10)
        #expect(Saturating.duration(3, limit: 10) == 3)
    }

    @Test func afterAlwaysMovesTheClock() {
        let late: SimTime = 1e300
        #expect(late + 0.5 == late)
        #expect(late.after(0.5) > late)
        #expect(SimTime(2).after(0.5) == 2.5)
        #expect(SimTime(0).after(1e-300) > 0)
    }

    @Test func peekAndEarliestMatchingTime() {
        var queue = EventQueue<String>()
        let a = queue.schedule(at: 1, "tick")
        queue.schedule(at: 5, "arrival")
        queue.schedule(at: 2, "tick")
        queue.schedule(at: 3, "step")
        #expect(queue.peek()?.payload == "tick" && queue.peek()?.time == 1)
        queue.cancel(a)
        #expect(queue.peek()?.time == 2)
        #expect(queue.earliestTime { $0 != "tick" } == 3)
        #expect(queue.earliestTime { $0 == "none" } == nil)
        #expect(queue.count == 3)
    }

    @Test func cadencePointsLandOnTheDecimalTimesTyped() {
        // Adding 0.1 thirty-three times drifts to 3.3000000000000016; the grid keeps 3.3.
        var summed: SimTime = 0, gridded: SimTime = 0
        for _ in 0..<33 {
            summed = summed.after(0.1)
            gridded = gridded.nextOnGrid(every: 0.1)
        }
        #expect(summed != 3.3 && gridded == 3.3)
        #expect((3.3 as SimTime).nextOnGrid(every: 0.1) == 3.4)
        #expect((3.35 as SimTime).nextOnGrid(every: 0.1) == 3.4)
        #expect((2.0 as SimTime).nextOnGrid(every: 0.5) == 2.5)
        #expect((0.9999999999999999 as SimTime).nearestOnGrid(every: 0.1) == 1.0)
        // Where the grid cannot apply, the plain successor: never the same instant.
        #expect((2e9 as SimTime).nextOnGrid(every: 0.1) > 2e9)
        #expect((1.0 as SimTime).nextOnGrid(every: 1e-7) > 1.0)
        #expect((1e300 as SimTime).nextOnGrid(every: 0.5) > 1e300)
    }
}

