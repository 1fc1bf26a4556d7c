import Testing

@testable import SimKit

@Suite struct EventQueueTests {
    @Test func popsInTimeOrder() {
        var queue = EventQueue<String>()
        queue.schedule(at: 3, "c")
        queue.schedule(at: 1, "a")
        queue.schedule(at: 2, "b")
        var seen: [String] = []
        while let (_, what) = queue.popNext() { seen.append(what) }
        #expect(seen == ["a", "b", "c"])
    }

    @Test func equalTimesPopInInsertionOrder() {
        var queue = EventQueue<Int>()
        for i in 0..<100 { queue.schedule(at: Double(i % 3), i) }
        var seen: [(SimTime, Int)] = []
        while let event = queue.popNext() { seen.append((event.time, event.payload)) }
        #expect(seen.count == 100)
        for (a, b) in zip(seen, seen.dropFirst()) {
            #expect(a.0 < b.0 || (a.0 == b.0 && a.1 < b.1))
        }
    }

    @Test func cancellationSkipsEventAndKeepsCount() {
        var queue = EventQueue<String>()
        let first = queue.schedule(at: 1, "first")
        queue.schedule(at: 2, "second")
        #expect(queue.count == 2)
        let cancelled = queue.cancel(first)
        let cancelledAgain = queue.cancel(first)
        #expect(cancelled)
        #expect(!cancelledAgain, "second cancel is a no-op")
        #expect(queue.count == 1)
        let head = queue.peekTime()
        #expect(head == 2)
        let next = queue.popNext()
        #expect(next?.payload == "second")
        #expect(queue.isEmpty)
        let none = queue.popNext()
        #expect(none == nil)
    }

    @Test func cancellingAFiredEventDoesNothing() {
        var queue = EventQueue<Int>()
        let id = queue.schedule(at: 0, 1)
        queue.schedule(at: 5, 2)
        _ = queue.popNext()
        #expect(!queue.isPending(id))
        let cancelled = queue.cancel(id)
        #expect(!cancelled)
        #expect(queue.count == 1)
    }

    @Test func timeHelpersConvertUnits() {
        #expect(SimTime.milliseconds(49.4) == 0.0494)
        #expect(SimTime.minutes(5) == 300)
        #expect(abs(SimTime(0.0012).microseconds - 1200) < 1e-9)
    }
}
