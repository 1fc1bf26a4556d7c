import Hummingbird
import NIOCore
import NIOHTTPTypes

extension APIServer {
    /// How long the server waits for a client's bytes, as nginx's `client_header_timeout`,
    /// `client_body_timeout` and `keepalive_timeout` (and Go's `ReadHeaderTimeout`/`IdleTimeout`)
    /// do: without them a client that sends half a request head, or announces a body and sends part
    /// of it, held its connection (a socket and a task) for ever, and so did an idle kept-alive
    /// connection. They count only while the server waits for the client: a connection whose
    /// answer is being produced or streamed (an SSE completion quiet between tokens while the
    /// engine is paused) is never closed by them.
    public struct ReadTimeouts: Sendable, Equatable {
        /// A request head (request line and headers) must be whole within this, counted from its
        /// first byte, or from the connection's opening for its first request: else `408` and the
        /// connection closes (a new connection that sent nothing is closed without an answer).
        public var header: Duration
        /// The longest time between two reads of a request body's bytes (progress, not the whole
        /// body): past it, `408` and the connection closes.
        public var body: Duration
        /// A kept-alive connection with no request in progress is closed after this, without an
        /// answer (none was asked for).
        public var keepAlive: Duration

        /// nginx's defaults: 60 s for a head and between body reads, 75 s for an idle connection.
        public init(header: Duration = .seconds(60), body: Duration = .seconds(60), keepAlive: Duration = .seconds(75)) {
            self.header = header
            self.body = body
            self.keepAlive = keepAlive
        }
    }
}

/// Enforces ``APIServer/ReadTimeouts`` on one connection.
///
/// Hummingbird's `HTTP1Channel.Configuration(idleTimeout:)` is one timer for every wait: it only
/// sees whole decoded request parts, so it cannot tell an idle kept-alive connection from one
/// half-way through a head, it closes without the `408` a client can read, and while a response
/// streams it still closes the connection when a pipelined request's body stalls. NIO's
/// `IdleStateHandler` knows nothing of requests and would cut a quiet SSE stream. Hence this
/// handler, which follows the requests and answers on the connection:
///
/// - the server waits for the client only when every request read whole has had its whole
///   answer and no answer is being written; otherwise no timer runs;
/// - waiting with a body open → the body timeout, from its last bytes; with part of a head read →
///   the header timeout, from the head's first byte; with nothing → the keep-alive timeout from
///   the last answer (the header timeout on a connection that has not sent a head yet).
///
/// It sits among Hummingbird's extra handlers, after ``ExpectContinueHandler``, so it sees the
/// request parts the router sees and the answers the router writes; the bytes themselves (a head
/// is a request part only once whole) are seen by a ``BytesArrived`` it puts at the front of the
/// pipeline. The start of a pipelined head that came in the same read as the end of the request
/// before it is not seen as such (the decoder holds it): until more of it arrives, that connection
/// is timed as idle, and closed without a 408. One per connection, on its event loop only
/// (`@unchecked Sendable`).
final class ReadTimeoutHandler: ChannelDuplexHandler, RemovableChannelHandler, @unchecked Sendable {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private let limits: APIServer.ReadTimeouts
    /// Request heads read, and final answers whose end was written.
    private var requests = 0
    private var answered = 0
    /// A final answer's head is written and its end is not.
    private var answering = false
    /// The last request's head is read and its end is not.
    private var bodyOpen = false
    /// Bytes of a request head arrived that do not make a whole head yet.
    private var headStarted = false
    /// The last request's `X-Request-Id`, for its 408 (the router's middleware echoes it on every
    /// other answer; this one goes out below the router).
    private var requestID: HTTPFields.Element?
    /// When the current wait began; for a body, when its last bytes arrived.
    private var since = NIODeadline.now()
    private var timer: Scheduled<Void>?
    private var timerDeadline: NIODeadline?
    /// Timed out: the connection is closing, and what the client sends now goes nowhere.
    private var expired = false
    /// This handler's place in the pipeline, for the bytes ``BytesArrived`` reports.
    private var context: ChannelHandlerContext?

    /// Told of each 408 this handler sends, with the part that did not arrive ("head" or "body"):
    /// the answer goes out below the router, which never sees it (the `/metrics` count).
    private let timedOut: (@Sendable (String) -> Void)?

    init(_ limits: APIServer.ReadTimeouts, timedOut: (@Sendable (String) -> Void)? = nil) {
        self.limits = limits
        self.timedOut = timedOut
    }

    private enum Wait {
        /// Not waiting for the client: an answer is owed or being written.
        case none
        case idle, head, body
    }

    private var wait: Wait {
        if answering || answered < requests - (bodyOpen ? 1 : 0) { return .none }
        if bodyOpen { return .body }
        return headStarted ? .head : .idle
    }

    private var limit: Duration? {
        switch wait {
        case .none: nil
        case .body: limits.body
        case .head: limits.header
        case .idle: requests == 0 ? limits.header : limits.keepAlive
        }
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        try? context.pipeline.syncOperations.addHandler(BytesArrived(self), position: .first)
        if context.channel.isActive { restart(context) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        cancelTimer()
    }

    func channelActive(context: ChannelHandlerContext) {
        restart(context)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        cancelTimer()
        context.fireChannelInactive()
    }

    /// Bytes reached the connection, before its decoder turns them into request parts.
    fileprivate func bytesArrived() {
        guard let context else { return }
        if bodyOpen {
            since = .now()
        } else if !headStarted {
            headStarted = true
            since = .now()
        }
        arm(context)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if expired { return }
        switch unwrapInboundIn(data) {
        case .head(let head):
            requestID = RequestIDRule.echoed(head.headerFields)
            requests += 1
            headStarted = false
            bodyOpen = true
        case .body: break
        case .end: bodyOpen = false
        }
        restart(context)
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(let head) where head.status.code >= 200: answering = true
        case .end:
            answering = false
            answered += 1
        default: break
        }
        restart(context)
        context.write(data, promise: promise)
    }

    private func restart(_ context: ChannelHandlerContext) {
        since = .now()
        arm(context)
    }

    /// Makes sure a timer fires no later than the current wait's deadline. A timer due earlier is
    /// kept: when it fires it looks again (one timer per connection, not one per read).
    private func arm(_ context: ChannelHandlerContext) {
        guard !expired, let limit else { return }
        let deadline = since + TimeAmount(limit)
        if let timerDeadline, timerDeadline <= deadline { return }
        timer?.cancel()
        timerDeadline = deadline
        timer = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [self] in
            timer = nil
            timerDeadline = nil
            guard let limit = self.limit else { return }
            if NIODeadline.now() < since + TimeAmount(limit) { return arm(context) }
            expire(context)
        }
    }

    private func cancelTimer() {
        timer?.cancel()
        timer = nil
        timerDeadline = nil
    }

    /// nginx's answers: `408` to a client that began a request and did not finish it in time (unless
    /// its request was already answered), nothing to one that asked for nothing; then close.
    private func expire(_ context: ChannelHandlerContext) {
        let begunUnanswered: String? =
            switch wait {
            case .head: "the request head did not arrive within \(Self.seconds(limits.header))"
            case .body where answered < requests:
                "the request body made no progress for \(Self.seconds(limits.body))"
            default: nil
            }
        expired = true
        cancelTimer()
        guard let message = begunUnanswered else { return context.close(promise: nil) }
        timedOut?(wait == .head ? "head" : "body")
        let body = ByteBuffer(string: APIError.requestTimeout(message).json)
        var head = HTTPResponse(
            status: .requestTimeout,
            headerFields: [.contentType: "application/json", .contentLength: String(body.readableBytes), .connection: "close"])
        // A head that did not arrive whole has no id to echo.
        if wait == .body, let requestID { head.headerFields.append(requestID) }
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(body)), promise: nil)
        let written = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        // A lingering close, as nginx's: closing a socket with unread bytes (a client still
        // sending its head or body) resets it, and a reset can cost the client the 408 not yet
        // delivered. So only the sending side closes (the 408, then end of stream), what the
        // client still sends is read and dropped, and the connection closes when the client
        // closes its side or `linger` later. The future completes on this channel's event loop,
        // where the context may be used.
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        written.whenComplete { _ in
            bound.value.close(mode: .output, promise: nil)
            bound.value.eventLoop.assumeIsolated().scheduleTask(in: Self.linger) { bound.value.close(promise: nil) }
        }
    }

    /// The most a lingering close waits for the client to close its side after a 408.
    static let linger = TimeAmount.seconds(2)

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // The client closed its side during a lingering close: nothing is left to deliver.
        if expired, let event = event as? ChannelEvent, event == .inputClosed { context.close(promise: nil) }
        context.fireUserInboundEventTriggered(event)
    }

    /// "60 s", "1.5 s".
    private static func seconds(_ duration: Duration) -> String {
        let (whole, attoseconds) = duration.components
        let value = Double(whole) + Double(attoseconds) / 1e18
        return value.rounded() == value ? "\(Int(value)) s" : "\(value) s"
    }

    /// At the front of the pipeline, where the socket's bytes arrive: tells the handler before its
    /// decoder sees them, then passes them on.
    final class BytesArrived: ChannelInboundHandler, RemovableChannelHandler, @unchecked Sendable {
        typealias InboundIn = NIOAny
        private let timeouts: ReadTimeoutHandler

        init(_ timeouts: ReadTimeoutHandler) {
            self.timeouts = timeouts
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            timeouts.bytesArrived()
            context.fireChannelRead(data)
        }
    }
}
