import NIOCore

/// A lingering close, as nginx's (`lingering_close`), for a connection the server ends while the
/// client may still be sending (a refusal written before the whole request was read): once the
/// refusal is flushed the sending side closes (FIN), what arrives is read and dropped, and the
/// connection closes when the client closes its side, or after ``quiet`` without a byte, or
/// ``most`` in all.
///
/// Closing at once with unread bytes in the socket makes the kernel send a TCP reset instead of
/// a FIN, and a client that had not yet read the refusal (or reads it after the reset arrives)
/// sees only "connection reset by peer". Bounded both ways, so a client that trickles bytes
/// cannot hold the connection past ``most``.
///
/// Owned by one handler of one connection and used on its event loop only, so `@unchecked
/// Sendable` as the handlers that own it are (its closures run on that loop): the handler calls ``begin(after:context:)``
/// when it writes the refusal's end, ``bytesArrived()`` for what it drops, ``readComplete(_:)``,
/// ``inputClosed(_:)``, ``close(context:mode:promise:)`` and ``inactive()`` from its own callbacks.
final class LingeringClose: @unchecked Sendable {
    /// The longest a lingering close waits for the next bytes, and for everything.
    static let quiet = TimeAmount.seconds(2)
    static let most = TimeAmount.seconds(30)

    /// Lingering: the refusal is (being) written, what arrives is dropped, and the connection
    /// closes on our terms.
    private(set) var active = false
    private var lastBytes = NIODeadline.now()
    private var startedAt = NIODeadline.now()
    private var timer: Scheduled<Void>?
    /// A close asked for from above while lingering (Hummingbird closes a `Connection: close`
    /// connection as soon as the answer is written): done when the lingering ends.
    private var deferredClose: EventLoopPromise<Void>?
    private var closed = false

    /// Starts lingering: from now on arriving bytes are to be dropped; once `written` (the
    /// refusal's flushed end) completes, the sending side closes and the wait begins.
    func begin(after written: EventLoopFuture<Void>, context: ChannelHandlerContext) {
        active = true
        startedAt = .now()
        lastBytes = .now()
        // The future completes on this channel's event loop, where the context may be used.
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        written.whenComplete { [self] _ in
            let context = bound.value
            guard !closed else { return }
            context.close(mode: .output, promise: nil)
            context.read()
            arm(context)
        }
    }

    /// Bytes arrived (and were dropped) while lingering.
    func bytesArrived() { lastBytes = .now() }

    /// Nothing above reads any more: keep the bytes coming so they can be dropped.
    func readComplete(_ context: ChannelHandlerContext) {
        if active { context.read() }
    }

    /// The client closed its side: it has sent all it will, and has the refusal.
    func inputClosed(_ context: ChannelHandlerContext) {
        if active { finish(context) }
    }

    /// A close from above: deferred while lingering (true), else left to the caller (false).
    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) -> Bool {
        guard active, !closed, mode == .all else { return false }
        if let deferredClose, let promise { deferredClose.futureResult.cascade(to: promise) }
        else if deferredClose == nil { deferredClose = promise ?? context.eventLoop.makePromise() }
        return true
    }

    /// The connection closed, whoever closed it.
    func inactive() {
        closed = true
        timer?.cancel()
        timer = nil
        deferredClose?.succeed()
        deferredClose = nil
    }

    /// Fires at the earlier of ``quiet`` after the last bytes and ``most`` after the refusal.
    private func arm(_ context: ChannelHandlerContext) {
        guard !closed else { return }
        let deadline = min(lastBytes + Self.quiet, startedAt + Self.most)
        timer = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [self] in
            timer = nil
            if NIODeadline.now() < min(lastBytes + Self.quiet, startedAt + Self.most) { return arm(context) }
            finish(context)
        }
    }

    private func finish(_ context: ChannelHandlerContext) {
        guard !closed else { return }
        closed = true
        timer?.cancel()
        timer = nil
        let promise = deferredClose
        deferredClose = nil
        context.close(mode: .all, promise: promise)
    }
}

/// A handler that may end its connection with a ``LingeringClose``: the three callbacks the
/// linger needs whole are forwarded here, once for every such handler (the 413, head-error and
/// connection-cap refusals); each handler still drops what arrives and reports ``LingeringClose/inactive()``
/// itself, as what else it does there differs.
protocol LingeringCloseHandler: ChannelDuplexHandler {
    var linger: LingeringClose { get }
}

extension LingeringCloseHandler {
    func channelReadComplete(context: ChannelHandlerContext) {
        linger.readComplete(context)
        context.fireChannelReadComplete()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed { linger.inputClosed(context) }
        context.fireUserInboundEventTriggered(event)
    }

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        if !linger.close(context: context, mode: mode, promise: promise) { context.close(mode: mode, promise: promise) }
    }
}
