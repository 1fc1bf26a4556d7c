import SimKit
import Testing

@testable import ServingEngine

/// The engine's specialised queue must pop exactly what SimKit's generic queue pops (reports stay
/// byte-identical), cancel like it, and copy as a value (the engine's fork).
@Suite(.timeLimit(.minutes(10))) struct EngineEventQueueTests {
    /// Every kind of event, identified by its payload.
    static func event(_ i: Int) -> EngineEventKind {
        switch i % 8 {
        case 0: .arrival(RequestSpec(id: i, arrival: 0, promptTokens: 10, outputTokens: 1))
        case 1: .stepEnd(instance: i)
        case 2: .transferDone(channel: i)
        case 3: .telemetryTick
        case 4: .fault(.heartbeatRound)
        case 5: .fault(.outageEnds(instance: i))
        case 6: .fault(.recovered(fault: i))
        case 7: .scaling(.phaseEnds(instance: i))
        default: .expertSwap(instance: i)
        }
    }

    static func describe(_ e: EngineEventKind) -> String {
        switch e {
        case .arrival(let spec): "arrival \(spec.id)"
        case .stepEnd(let i): "step \(i)"
        case .transferDone(let c): "transfer \(c)"
        case .telemetryTick: "tick"
        case .fault(.heartbeatRound): "beat"
        case .fault(.outageEnds(let i)): "outage \(i)"
        case .fault(.recovered(let f)): "recovered \(f)"
        case .expertSwap(let i): "swap \(i)"
        case .scaling(.phaseEnds(let i)): "phase \(i)"
        case .scaling(.drainCheck): "drain check"
        case .scaling(.autoscaleTick): "autoscale"
        }
    }

    @Test func popsLikeSimKitsQueueWithTiesAndCancellations() {
        var rng = RandomStream(seed: 7)
        var ours = EngineEventQueue()
        var reference = EventQueue<EngineEventKind>()
        var ids: [(EventID, EventID)] = []
        var popped: [String] = [], expected: [String] = []
        var now = 0.0
        for i in 0..<5_000 {
            // Coarse times: many ties, which must pop in scheduling order.
            let at = now + Double(rng.int(in: 0...20)) * 0.5
            ids.append((ours.schedule(at: at, Self.event(i)), reference.schedule(at: at, Self.event(i))))
            if i % 7 == 0, let pick = ids.randomElement(using: &rng) {
                let mine = ours.cancel(pick.0), theirs = reference.cancel(pick.1)
                #expect(mine == theirs)
            }
            #expect(ours.count == reference.count)
            if i % 3 == 0 {
                let mine = ours.peekTime(), theirs = reference.peekTime()
                #expect(mine == theirs)
                let a = ours.popNext(), b = reference.popNext()
                #expect(a?.time == b?.time)
                if let a, let b {
                    popped.append(Self.describe(a.payload))
                    expected.append(Self.describe(b.payload))
                    now = a.time
                }
            }
        }
        #expect(ours.earliestTime { !$0.isPeriodic } == reference.earliestTime { !$0.isPeriodic })
        while let a = ours.popNext() { popped.append("\(a.time) " + Self.describe(a.payload)) }
        while let b = reference.popNext() { expected.append("\(b.time) " + Self.describe(b.payload)) }
        #expect(popped == expected)
        #expect(ours.isEmpty)
    }

    @Test func aCopyIsIndependent() {
        var a = EngineEventQueue()
        a.schedule(at: 2, .stepEnd(instance: 1))
        a.schedule(at: 1, .arrival(RequestSpec(id: 9, arrival: 1, promptTokens: 5, outputTokens: 2)))
        var b = a
        b.schedule(at: 0.5, .telemetryTick)
        #expect(a.count == 2 && b.count == 3)
        guard case .arrival(let spec)? = a.popNext()?.payload else { Issue.record("arrival first"); return }
        #expect(spec.id == 9)
        #expect(b.popNext()?.time == 0.5)
        guard case .arrival(let other)? = b.popNext()?.payload else { Issue.record("b keeps its arrival"); return }
        #expect(other.id == 9)
        // Same next sequence on both sides: equal-time events keep one FIFO order.
        #expect(a.nextSequence == 2 && b.nextSequence == 3)
    }

    @Test func pendingAndCancelAnswerLikeSimKit() {
        var q = EngineEventQueue()
        let tick = q.schedule(at: 1, .telemetryTick)
        let beat = q.schedule(at: 1, .fault(.heartbeatRound))
        #expect(q.isPending(tick) && q.isPending(beat))
        let cancelled = q.cancel(tick)
        let again = q.cancel(tick)
        #expect(cancelled)
        #expect(!again, "a second cancel is refused")
        #expect(!q.isPending(tick) && q.count == 1)
        let head = q.peekHead()
        #expect(head?.periodic == true)
        _ = q.popNext()
        let cancelFired = q.cancel(beat)
        #expect(!q.isPending(beat) && !cancelFired, "a fired event is no longer pending")
        let after = q.popNext()
        #expect(after == nil)
    }

    /// A rate change takes the pending arrival's request back from the queue: it is handed back
    /// once, the arrival no longer fires, and an event that is not a pending arrival gives nothing.
    @Test func cancelArrivalHandsBackItsRequestOnce() {
        var q = EngineEventQueue()
        let tick = q.schedule(at: 1, .telemetryTick)
        let arrival = q.schedule(at: 2, .arrival(RequestSpec(id: 41, arrival: 2, promptTokens: 300, outputTokens: 7,
                                                           prefixHashes: [5, 6], tag: "chat")))
        #expect(q.cancelArrival(tick) == nil, "a tick is not an arrival")
        #expect(q.isPending(tick), "and is left alone")
        let spec = q.cancelArrival(arrival)
        #expect(spec?.id == 41 && spec?.promptTokens == 300 && spec?.prefixHashes == [5, 6] && spec?.tag == "chat")
        #expect(q.cancelArrival(arrival) == nil, "handed back once")
        #expect(!q.isPending(arrival) && q.count == 1)
        #expect(q.popNext()?.time == 1)
        #expect(q.popNext() == nil, "the cancelled arrival never fires")
    }
}
