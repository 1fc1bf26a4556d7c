import PodModel
import SimKit

/// KV transfer from prefill to decode (system.md §4): one channel per prefill–decode TE pair,
/// the transfers on a channel one after the other, each channel on its fabric plane with its
/// link's state (a degraded link slows it, a down one blocks it until rerouted).
///
/// Owns the channels and nothing else: which request moves, when it was pulled and what the
/// fabric charges are the engine's (the coordinator); this component keeps the queues, which
/// transfer runs on each channel and until when (a `.transferDone` at another time is stale).
/// Channel numbers (``channel(from:to:)``) are the ids the event queue carries: a channel
/// keeps its number for the engine's life, new pairs get the next ones.
///
/// ```swift
/// let c = transfer.connect(prefill: 0, decode: 2, plane: .ub)
/// transfer.enqueue(7, on: c)
/// if let id = transfer.nextToStart(c) { transfer.start(c, doneAt: now.after(seconds)) }   // id == 7
/// if transfer.acceptDone(c, now: doneAt) { let moved = transfer.finish(c) }                // 7
/// ```
final class KVTransfer {
    /// The channels by number, in the order they were connected.
    private(set) var channels: [TransferChannel] = []
    /// Channel number by prefill TE, then decode TE (-1: not connected). TE numbers are small
    /// and dense, so a table, not a dictionary: every pulled transfer looks its channel up, and
    /// SipHashing the pair was ~0.8% of a saturated superpod.
    private var byPair: [[Int32]] = []

    init() {}

    /// A deep, independent copy (for the engine's `fork()`): the channels are values.
    func copy() -> KVTransfer {
        let copy = KVTransfer()
        copy.channels = channels
        copy.byPair = byPair
        return copy
    }

    // MARK: Channels

    /// The channel carrying KV from prefill TE `p` to decode TE `d`, if connected. Inlined: a
    /// table read, asked once per pulled transfer.
    @inline(__always)
    func channel(from p: Int, to d: Int) -> Int? {
        guard p >= 0, p < byPair.count, d >= 0, d < byPair[p].count else { return nil }
        let c = byPair[p][d]
        return c >= 0 ? Int(c) : nil
    }

    /// Connects prefill TE `p` to decode TE `d` unless they are (at build, and for TEs added
    /// by scaling); returns the channel's number.
    @discardableResult
    func connect(prefill p: Int, decode d: Int, plane: FabricPlane) -> Int {
        precondition(p >= 0 && d >= 0, "TE numbers are non-negative")
        if let c = channel(from: p, to: d) { return c }
        let c = channels.count
        if p >= byPair.count { byPair.append(contentsOf: repeatElement([], count: p + 1 - byPair.count)) }
        if d >= byPair[p].count { byPair[p].append(contentsOf: repeatElement(-1, count: d + 1 - byPair[p].count)) }
        byPair[p][d] = Int32(c)
        channels.append(TransferChannel(prefillInstance: p, decodeInstance: d, plane: plane))
        return c
    }

    /// What pricing a transfer on channel `c` reads: where it comes from, its plane and its
    /// link's slowdown, read in place (a copy of the channel retained and released its queue).
    func route(_ c: Int) -> (prefillInstance: Int, plane: FabricPlane, slowdown: Double) {
        (channels[c].prefillInstance, channels[c].plane, channels[c].slowdown)
    }

    // MARK: Transfers

    /// Queues request `id` on channel `c` (behind the transfers already there).
    func enqueue(_ id: Int, on c: Int) {
        channels[c].queue.append(id)
    }

    /// The request whose transfer can start on channel `c` now: the head of its queue, when
    /// the channel is idle and its link is up; nil otherwise.
    func nextToStart(_ c: Int) -> Int? {
        guard !channels[c].busy, !channels[c].blocked else { return nil }
        return channels[c].queue.first
    }

    /// The head transfer of channel `c` runs from `startedAt` until `doneAt` (the
    /// `.transferDone` the engine schedules for then); the start is kept for the timeline.
    func start(_ c: Int, at startedAt: SimTime = 0, doneAt: SimTime) {
        Self.start(&channels[c], at: startedAt, doneAt: doneAt)
    }

    /// ``start(_:at:doneAt:)`` on the channel in place: one access to the table (three
    /// subscripts were three uniqueness checks of it, per pulled transfer).
    private static func start(_ channel: inout TransferChannel, at startedAt: SimTime, doneAt: SimTime) {
        channel.busy = true
        channel.startedAt = startedAt
        channel.doneAt = doneAt
    }

    /// Whether a `.transferDone` of channel `c` at `now` completes its transfer: not when stale
    /// (another time: the transfer was abandoned or restarted), not while the link is down (the
    /// transfer hangs until healed or rerouted). Accepting clears the pending time.
    func acceptDone(_ c: Int, now: SimTime) -> Bool { Self.acceptDone(&channels[c], now: now) }

    /// ``acceptDone(_:now:)`` on the channel in place.
    private static func acceptDone(_ channel: inout TransferChannel, now: SimTime) -> Bool {
        guard channel.doneAt == now, !channel.blocked else { return false }
        channel.doneAt = nil
        return true
    }

    /// The transfer at the head of channel `c` is done: removed from the queue, the channel idle.
    func finish(_ c: Int) -> Int? { Self.finish(&channels[c]) }

    /// ``finish(_:)`` on the channel in place (one access to the table, not two).
    private static func finish(_ channel: inout TransferChannel) -> Int? {
        guard let id = channel.queue.popFirst() else { return nil }
        channel.busy = false
        return id
    }

    /// Takes requests `ids` off every channel (a fault evicts them). A transfer in progress
    /// among them is abandoned: the channel goes idle and its done event becomes stale.
    /// Returns the channels that held any of them, ascending (the engine restarts them).
    func remove(_ ids: Set<Int>) -> [Int] {
        var touched: [Int] = []
        for c in channels.indices where channels[c].queue.contains(where: ids.contains) {
            if channels[c].busy, let head = channels[c].queue.first, ids.contains(head) {
                channels[c].busy = false
                channels[c].doneAt = nil
            }
            channels[c].queue.removeAll(where: ids.contains)
            touched.append(c)
        }
        return touched
    }

    /// Channel `c`'s link state: its plane (RoCE once rerouted), how many times slower a
    /// transfer takes, and whether the link is down. Returns true when this unblocks the
    /// channel: its hung transfer is abandoned, to start over on the working path.
    func setLink(_ c: Int, plane: FabricPlane, slowdown: Double, blocked: Bool) -> Bool {
        let wasBlocked = channels[c].blocked
        channels[c].slowdown = slowdown
        channels[c].plane = plane
        channels[c].blocked = blocked
        guard wasBlocked && !blocked else { return false }
        channels[c].busy = false
        channels[c].doneAt = nil
        return true
    }

    // MARK: Reading

    /// Requests queued or moving on any channel.
    var transfersInProgress: Int {
        var total = 0
        for c in channels.indices { total += channels[c].queue.count }
        return total
    }
}

extension ServingEngine {
    /// The KV channels, read-only (readers: heartbeats, audits, the snapshot, tests).
    var channels: [TransferChannel] { kvTransfer.channels }
}
