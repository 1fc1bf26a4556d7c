import HeapModule

/// Identifies one scheduled event so it can be cancelled.
public struct EventID: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// Insertion sequence number; also the tie-breaker at equal times.
    public let sequence: UInt64
    /// For specialised queues that number their events the same way (the engine's own queue).
    public init(sequence: UInt64) { self.sequence = sequence }
    public static func < (a: EventID, b: EventID) -> Bool { a.sequence < b.sequence }
    public var description: String { "event#\(sequence)" }
}

/// A future-event list: events pop in time order, and events at the same time pop in the
/// order they were scheduled (FIFO), so a run never depends on heap internals.
///
/// Cancellation is lazy: a cancelled event stays in the heap and is skipped when it
/// surfaces, which keeps `cancel` O(1).
///
/// ```swift
/// var queue = EventQueue<String>()
/// let id = queue.schedule(at: 2.0, "decode step")
/// queue.schedule(at: 1.0, "arrival")
/// queue.cancel(id)
/// while let (time, what) = queue.popNext() { print(time, what) }   // 1.0 arrival
/// ```
public struct EventQueue<Payload> {
    @usableFromInline
    struct Entry: Comparable {
        let time: SimTime
        let sequence: UInt64
        let payload: Payload

        @usableFromInline static func < (a: Entry, b: Entry) -> Bool {
            a.time < b.time || (a.time == b.time && a.sequence < b.sequence)
        }
        @usableFromInline static func == (a: Entry, b: Entry) -> Bool { a.sequence == b.sequence }
    }

    @usableFromInline var heap = Heap<Entry>()
    @usableFromInline var nextSequence: UInt64 = 0
    /// Sequence numbers scheduled and neither popped nor cancelled. Membership answers
    /// "is this id still pending?" so cancelling a fired event is a harmless no-op.
    @usableFromInline var pending = Set<UInt64>()

    public init() {}

    /// Schedules `payload` at simulated time `time`; returns an id for `cancel`.
    @discardableResult
    public mutating func schedule(at time: SimTime, _ payload: Payload) -> EventID {
        precondition(!time.isNaN, "event time must not be NaN")
        let sequence = nextSequence
        nextSequence += 1
        heap.insert(Entry(time: time, sequence: sequence, payload: payload))
        pending.insert(sequence)
        return EventID(sequence: sequence)
    }

    /// Cancels a pending event. Returns false if it already fired or was cancelled.
    @discardableResult
    public mutating func cancel(_ id: EventID) -> Bool {
        pending.remove(id.sequence) != nil
    }

    /// Whether `id` is scheduled and has neither fired nor been cancelled.
    public func isPending(_ id: EventID) -> Bool { pending.contains(id.sequence) }

    /// Removes and returns the earliest pending event.
    public mutating func popNext() -> (time: SimTime, payload: Payload)? {
        while let entry = heap.popMin() {
            if pending.remove(entry.sequence) != nil { return (entry.time, entry.payload) }
        }
        return nil
    }

    /// Time of the earliest pending event, if any.
    public mutating func peekTime() -> SimTime? {
        dropCancelledHead()
        return heap.min?.time
    }

    /// The earliest pending event without removing it.
    public mutating func peek() -> (time: SimTime, payload: Payload)? {
        dropCancelledHead()
        return heap.min.map { ($0.time, $0.payload) }
    }

    /// Time of the earliest pending event whose payload satisfies `predicate`. A linear scan of
    /// the queue, for rare questions such as "when does anything but bookkeeping happen next?".
    public func earliestTime(where predicate: (Payload) -> Bool) -> SimTime? {
        var earliest: SimTime?
        for entry in heap.unordered where pending.contains(entry.sequence) && predicate(entry.payload) {
            if earliest.map({ entry.time < $0 }) ?? true { earliest = entry.time }
        }
        return earliest
    }

    /// Number of pending (not cancelled) events.
    public var count: Int { pending.count }
    public var isEmpty: Bool { pending.isEmpty }

    private mutating func dropCancelledHead() {
        while let head = heap.min, !pending.contains(head.sequence) { _ = heap.popMin() }
    }
}
