import PodModel
import SimKit
import Testing

@testable import ServingEngine

/// ``KVTransfer`` through its own API: channels by pair, one transfer at a time per channel,
/// stale done events, link state, eviction; and the engine's fork owns its own copy.
@Suite(.timeLimit(.minutes(10))) struct KVTransferTests {
    @Test func channelsAreNumberedInConnectionOrderOncePerPair() {
        let t = KVTransfer()
        #expect(t.connect(prefill: 0, decode: 2, plane: .ub) == 0)
        #expect(t.connect(prefill: 1, decode: 2, plane: .roce) == 1)
        #expect(t.connect(prefill: 0, decode: 2, plane: .roce) == 0, "a pair keeps its channel")
        #expect(t.channel(from: 1, to: 2) == 1)
        #expect(t.channel(from: 2, to: 1) == nil, "pairs are directed")
        #expect(t.channel(from: 0, to: 3) == nil)
        #expect(t.channels.map(\.plane) == [.ub, .roce])
        // A TE added later (scaling) gets the next numbers; old ones stay.
        #expect(t.connect(prefill: 5, decode: 2, plane: .ub) == 2)
        #expect(t.channel(from: 0, to: 2) == 0 && t.channel(from: 5, to: 2) == 2)
    }

    /// The pair table grows with either TE number and answers nil outside what is connected,
    /// negative numbers included (a colocated request has no prefill TE).
    @Test func channelLookupsOutsideTheConnectedPairsAreNil() {
        let t = KVTransfer()
        #expect(t.channel(from: 0, to: 0) == nil, "nothing connected yet")
        #expect(t.connect(prefill: 3, decode: 9, plane: .ub) == 0)
        #expect(t.connect(prefill: 3, decode: 1, plane: .ub) == 1, "a lower decode TE of a known prefill TE")
        #expect(t.connect(prefill: 0, decode: 12, plane: .roce) == 2)
        #expect(t.channel(from: 3, to: 9) == 0 && t.channel(from: 3, to: 1) == 1 && t.channel(from: 0, to: 12) == 2)
        for (p, d) in [(3, 0), (3, 5), (3, 10), (0, 11), (1, 9), (2, 1), (4, 9), (-1, 9), (3, -1), (99, 99)] {
            #expect(t.channel(from: p, to: d) == nil, "(\(p), \(d)) is not connected")
        }
        let copy = t.copy()
        #expect(copy.connect(prefill: 2, decode: 1, plane: .ub) == 3)
        #expect(t.channel(from: 2, to: 1) == nil, "a copy's pairs are its own")
        #expect(copy.channel(from: 3, to: 1) == 1)
    }

    @Test func transfersOnAChannelRunOneAtATimeInOrder() {
        let t = KVTransfer()
        let c = t.connect(prefill: 0, decode: 1, plane: .ub)
        #expect(t.nextToStart(c) == nil, "nothing queued")
        t.enqueue(7, on: c)
        t.enqueue(8, on: c)
        #expect(t.transfersInProgress == 2)
        #expect(t.nextToStart(c) == 7)
        t.start(c, doneAt: 1.5)
        #expect(t.nextToStart(c) == nil, "busy: the next waits")
        #expect(!t.acceptDone(c, now: 1.0), "a done event at another time is stale")
        #expect(t.acceptDone(c, now: 1.5))
        #expect(!t.acceptDone(c, now: 1.5), "accepted once")
        #expect(t.finish(c) == 7)
        #expect(t.transfersInProgress == 1)
        #expect(t.nextToStart(c) == 8)
        t.start(c, doneAt: 2)
        #expect(t.acceptDone(c, now: 2))
        #expect(t.finish(c) == 8)
        #expect(t.finish(c) == nil)
        #expect(t.transfersInProgress == 0)
    }

    @Test func aDownLinkHoldsTheTransferUntilItIsRerouted() {
        let t = KVTransfer()
        let c = t.connect(prefill: 0, decode: 1, plane: .ub)
        t.enqueue(3, on: c)
        t.start(c, doneAt: 4)
        #expect(!t.setLink(c, plane: .ub, slowdown: 1, blocked: true), "blocking unblocks nothing")
        #expect(!t.acceptDone(c, now: 4), "the transfer hangs while the link is down")
        #expect(t.nextToStart(c) == nil)
        // Rerouted over RoCE: the hung transfer is abandoned, to start over.
        #expect(t.setLink(c, plane: .roce, slowdown: 1, blocked: false))
        #expect(t.channels[c].plane == .roce)
        #expect(t.nextToStart(c) == 3)
        #expect(!t.acceptDone(c, now: 4), "the old done event is stale")
        // A degraded link only slows it.
        #expect(!t.setLink(c, plane: .ub, slowdown: 2.5, blocked: false))
        #expect(t.channels[c].slowdown == 2.5)
    }

    @Test func aChannelsRouteIsItsPrefillTEPlaneAndSlowdownAsTheLinkChanges() {
        let t = KVTransfer()
        _ = t.connect(prefill: 0, decode: 2, plane: .ub)
        let c = t.connect(prefill: 1, decode: 2, plane: .ub)
        t.enqueue(5, on: c)
        #expect(t.route(c) == (1, FabricPlane.ub, 1.0))
        // What pricing a transfer reads follows the link: degraded, then rerouted over RoCE.
        _ = t.setLink(c, plane: .ub, slowdown: 3, blocked: false)
        #expect(t.route(c) == (1, FabricPlane.ub, 3.0))
        _ = t.setLink(c, plane: .roce, slowdown: 1, blocked: false)
        #expect(t.route(c) == (1, FabricPlane.roce, 1.0))
        #expect(t.route(0) == (0, FabricPlane.ub, 1.0), "the other channel is untouched")
    }

    @Test func removingRequestsAbandonsTheRunningTransferAndNamesTheChannels() {
        let t = KVTransfer()
        let a = t.connect(prefill: 0, decode: 2, plane: .ub)
        let b = t.connect(prefill: 1, decode: 2, plane: .ub)
        let c = t.connect(prefill: 1, decode: 3, plane: .ub)
        for id in [10, 11] { t.enqueue(id, on: a) }
        for id in [20, 21] { t.enqueue(id, on: b) }
        t.enqueue(30, on: c)
        t.start(a, doneAt: 1)
        t.start(b, doneAt: 1)
        #expect(t.remove([10, 21, 99]) == [a, b])
        // a's running head went: idle, its done event stale, 11 next.
        #expect(t.nextToStart(a) == 11)
        #expect(!t.acceptDone(a, now: 1))
        // b's head (20) was not removed: still running.
        #expect(t.nextToStart(b) == nil)
        #expect(t.acceptDone(b, now: 1))
        #expect(t.finish(b) == 20)
        #expect(t.transfersInProgress == 2)
        #expect(t.remove([]) == [])
    }

    @Test func aCopyIsIndependent() {
        let t = KVTransfer()
        let c = t.connect(prefill: 0, decode: 1, plane: .ub)
        t.enqueue(1, on: c)
        let copy = t.copy()
        #expect(copy !== t)
        copy.enqueue(2, on: c)
        #expect(copy.connect(prefill: 4, decode: 1, plane: .ub) == 1)
        #expect(t.transfersInProgress == 1 && copy.transfersInProgress == 2)
        #expect(t.channel(from: 4, to: 1) == nil)
    }

    @Test func aForkSharesNoComponentWithItsOriginal() throws {
        let a = try ForkTests.busyEngine()
        let b = try a.fork()
        #expect(a.componentIdentities().isDisjoint(with: b.componentIdentities()))
        #expect(a.kvTransfer.channels.map(\.queue) == b.kvTransfer.channels.map(\.queue))
        // Transfers on one side never show on the other.
        b.run(until: b.now + 2)
        #expect(a.audit() == [] && b.audit() == [])
        #expect(a.inFlightProblems() == [] && b.inFlightProblems() == [])
    }
}
