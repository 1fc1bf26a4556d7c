import Foundation
import Hummingbird
import NIOCore
import NIOHTTPTypes
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// At most ``limit`` connections open at once; one more is answered `503` (`too_many_connections`)
/// and closed with a lingering close (``LingeringClose``), so it holds its file descriptor for a
/// moment only: until the client closes its side, or a short quiet, and at most ``lingerLimit`` of
/// them linger at once (past that, one is closed at once).
///
/// Every connection is a file descriptor. Without a cap, clients that opened as many connections
/// as the process may have descriptors (`ulimit -n`; 1024 on many machines) ran it out, and then
/// libdispatch, which reads `/proc` to watch its worker threads, failed to open a file and killed
/// the process (SIGILL in `_dispatch_workq_monitor_pools`): `xds serve` died, every client with it.
/// The default cap leaves ``reserve`` descriptors for everything else (the engine, logs, the event
/// loops, libdispatch); past it new connections are refused while the open ones are served.
final class ConnectionLimit: Sendable {
    let limit: Int
    private let open = Atomic<Int>(0)
    /// Refused connections lingering at once, at most: a quarter of ``limit``, 8 to 64, so that
    /// the refusals of a flood cannot take the descriptors the cap keeps for everything else
    /// (at `ulimit -n 64`: 32 connections, 8 lingering, 17 for an idle server; at `ulimit -n 32`,
    /// 1 connection and 8 lingering).
    let lingerLimit: Int
    private let lingering = Atomic<Int>(0)

    init(limit: Int) {
        self.limit = max(1, limit)
        self.lingerLimit = min(64, max(8, self.limit / 4))
    }

    /// Descriptors kept for what is not a connection, out of `descriptors`: a quarter, at least 32
    /// and at most 128. An idle `xds serve` already holds 17 (stdio, event loops, the engine's
    /// pipes); at `ulimit -n 64` a quarter (16) left too few, and the 49th connection hung in
    /// accept instead of getting the 503.
    static func reserve(outOf descriptors: Int) -> Int { min(128, max(32, descriptors / 4)) }

    /// The cap for a process that may open `descriptors` files.
    static func limit(forDescriptors descriptors: Int) -> Int { max(1, descriptors - reserve(outOf: descriptors)) }

    /// The cap for this process: its soft `RLIMIT_NOFILE` (an unlimited one, RLIM_INFINITY, counts as 1,048,576).
    static func forThisProcess() -> Int {
        var limits = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limits) == 0 else { return limit(forDescriptors: 1024) }
        let soft = limits.rlim_cur == rlim_t.max ? 1 << 20 : Int(clamping: limits.rlim_cur)
        return limit(forDescriptors: soft)
    }

    /// Takes a place; false when all ``limit`` are taken.
    func take() -> Bool { Self.increment(open, below: limit) }

    func release() { open.subtract(1, ordering: .acquiringAndReleasing) }

    /// Takes a place for a refused connection to linger in; false when ``lingerLimit`` linger.
    func takeLingering() -> Bool { Self.increment(lingering, below: lingerLimit) }

    /// Adds 1 to `counter` unless it has reached `bound`, as one atomic step (another thread may
    /// take the last place between the load and the exchange: the loop then sees its count).
    private static func increment(_ counter: borrowing Atomic<Int>, below bound: Int) -> Bool {
        var current = counter.load(ordering: .relaxed)
        while current < bound {
            let (exchanged, original) = counter.compareExchange(
                expected: current, desired: current + 1, ordering: .acquiringAndReleasing)
            if exchanged { return true }
            current = original
        }
        return false
    }

    func releaseLingering() { lingering.subtract(1, ordering: .acquiringAndReleasing) }

    /// Refused connections lingering now.
    var lingeringCount: Int { lingering.load(ordering: .acquiring) }

    /// Connections open now.
    var count: Int { open.load(ordering: .acquiring) }

    static let refusal = APIError(
        status: .serviceUnavailable,
        message: "too many connections open at once; close one (or reuse it with keep-alive) and retry",
        type: "service_unavailable_error", param: nil, code: "too_many_connections")

    /// The handler that counts one connection.
    func handler() -> Handler { Handler(limit: self) }

    /// Counts its connection while it is open, or refuses it. One per connection, on its event
    /// loop only (`@unchecked Sendable`).
    final class Handler: ChannelDuplexHandler, LingeringCloseHandler, RemovableChannelHandler, @unchecked Sendable {
        typealias InboundIn = HTTPRequestPart
        typealias InboundOut = HTTPRequestPart
        typealias OutboundIn = HTTPResponsePart
        typealias OutboundOut = HTTPResponsePart

        private let limit: ConnectionLimit
        private var decided = false
        private var counted = false
        private var refused = false
        /// A refused connection holds a lingering place until it closes.
        private var lingerCounted = false
        /// After the refusal: what arrives is dropped, and the connection closes on our terms.
        /// Closed at once instead, a client whose request was already on its way (sent right
        /// after connecting, as every client does) got a TCP reset for its unread bytes and saw
        /// "connection reset by peer" or a broken pipe instead of the 503 (12 of 20 such clients).
        let linger = LingeringClose()

        init(limit: ConnectionLimit) { self.limit = limit }

        func handlerAdded(context: ChannelHandlerContext) {
            if context.channel.isActive { admit(context: context) }
        }

        func channelActive(context: ChannelHandlerContext) {
            admit(context: context)
            context.fireChannelActive()
        }

        private func admit(context: ChannelHandlerContext) {
            guard !decided else { return }
            decided = true
            if limit.take() {
                counted = true
                return
            }
            refused = true
            let body = ByteBuffer(string: ConnectionLimit.refusal.json)
            let head = HTTPResponse(status: .serviceUnavailable, headerFields: [
                .contentType: "application/json", .contentLength: String(body.readableBytes), .connection: "close",
            ])
            context.write(wrapOutboundOut(.head(head)), promise: nil)
            context.write(wrapOutboundOut(.body(body)), promise: nil)
            let written = context.writeAndFlush(wrapOutboundOut(.end(nil)))
            // No route or middleware sees this answer; count it as the middleware counts the
            // others (an operator saw clients get 503s that no /metrics series held).
            HTTPAnswerMetrics.record(route: HTTPAnswerMetrics.refusedConnectionRoute, method: HTTPAnswerMetrics.unknownMethod,
                                     status: ConnectionLimit.refusal.status, nanoseconds: nil)
            if limit.takeLingering() {
                lingerCounted = true
                linger.begin(after: written, context: context)
                return
            }
            // Too many linger already: this one closes at once, as all did before.
            // The future completes on this channel's event loop, where the context may be used.
            let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
            written.whenComplete { _ in bound.value.close(promise: nil) }
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            // A refused connection's request goes nowhere: it was answered already.
            guard !refused else { return linger.bytesArrived() }
            context.fireChannelRead(data)
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            // What a refused connection sends is dropped, errors of its framing with it: passed
            // on, HeadParseErrorAnswer (which saw no request of its) would answer them after the 503.
            guard !refused else { return linger.bytesArrived() }
            context.fireErrorCaught(error)
        }

        func channelInactive(context: ChannelHandlerContext) {
            linger.inactive()
            releasePlace()
            context.fireChannelInactive()
        }

        func handlerRemoved(context: ChannelHandlerContext) { releasePlace() }

        /// Gives the connection's place back, once, whichever of the two ends comes first.
        private func releasePlace() {
            if lingerCounted {
                lingerCounted = false
                limit.releaseLingering()
            }
            guard counted else { return }
            counted = false
            limit.release()
        }
    }
}
