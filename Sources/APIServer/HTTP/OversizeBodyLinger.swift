import NIOCore
import NIOHTTPTypes

/// A request refused with `413` while its body was still arriving (the body went over the limit
/// as it was read) gets `Connection: close`, and the connection then closes with a lingering
/// close, as nginx's: the 413 goes out and the sending side closes, the rest of the body is read
/// and dropped, and the connection closes when the client closes its side, or after
/// ``quiet`` without a byte, or ``most`` in all.
///
/// Without it a client that writes its whole request before it reads (Python's urllib, which also
/// says `Connection: close`) never saw the 413: the server stopped reading at the limit and
/// half-closed, the client's send stalled on a full socket, and it gave up after its own timeout
/// (urllib: 30 s) with a timeout error instead of "request body exceeds 1048576 bytes". A
/// keep-alive request had its whole body read whatever its size; it now also ends the connection,
/// within the same bounds.
///
/// A request that announced the oversize body with `Expect: 100-continue` never sends it and is
/// handled by ``ExpectContinueHandler`` (its body is ended for the router before the answer, so
/// this handler sees no open body). One per connection, on its event loop only (`@unchecked
/// Sendable`).
final class OversizeBodyLinger: ChannelDuplexHandler, RemovableChannelHandler, @unchecked Sendable {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    /// The longest a lingering close waits for the next bytes, and for everything.
    static let quiet = TimeAmount.seconds(2)
    static let most = TimeAmount.seconds(30)

    /// The last request's head is read and its end is not.
    private var bodyOpen = false
    /// A 413 is being written while its request's body is open: linger once its end is written.
    private var refusing = false
    /// Lingering: the 413 is out, what arrives is dropped, and the connection closes on our terms.
    private var lingering = false
    private var lastBytes = NIODeadline.now()
    private var startedAt = NIODeadline.now()
    private var timer: Scheduled<Void>?
    /// A close asked for from above while lingering (Hummingbird closes a `Connection: close`
    /// connection as soon as the answer is written): done when the lingering ends.
    private var deferredClose: EventLoopPromise<Void>?
    private var closed = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if lingering {
            lastBytes = .now()
            return
        }
        switch unwrapInboundIn(data) {
        case .head: bodyOpen = true
        case .body: break
        case .end: bodyOpen = false
        }
        context.fireChannelRead(data)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        // Nothing above reads any more: keep the bytes coming so they can be dropped.
        if lingering { context.read() }
        context.fireChannelReadComplete()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // The client closed its side: it has sent all it will, and has the 413.
        if lingering, let event = event as? ChannelEvent, event == .inputClosed { finish(context) }
        context.fireUserInboundEventTriggered(event)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(var head) where head.status == .contentTooLarge && bodyOpen:
            refusing = true
            head.headerFields[.connection] = "close"
            context.write(wrapOutboundOut(.head(head)), promise: promise)
        case .end where refusing:
            refusing = false
            lingering = true
            startedAt = .now()
            lastBytes = .now()
            let written = context.writeAndFlush(data)
            if let promise { written.cascade(to: promise) }
            // The future completes on this channel's event loop, where the context may be used.
            let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
            written.whenComplete { [self] _ in
                let context = bound.value
                context.close(mode: .output, promise: nil)
                context.read()
                arm(context)
            }
        default:
            context.write(data, promise: promise)
        }
    }

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        guard lingering, !closed, mode == .all else { return context.close(mode: mode, promise: promise) }
        if let deferredClose, let promise { deferredClose.futureResult.cascade(to: promise) }
        else if deferredClose == nil { deferredClose = promise ?? context.eventLoop.makePromise() }
    }

    func channelInactive(context: ChannelHandlerContext) {
        closed = true
        timer?.cancel()
        timer = nil
        deferredClose?.succeed()
        deferredClose = nil
        context.fireChannelInactive()
    }

    /// Fires at the earlier of ``quiet`` after the last bytes and ``most`` after the 413.
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
