import NIOCore
import NIOHTTPTypes

/// A request refused with `413` while its body was still arriving (the body went over the limit
/// as it was read, or its `Content-Length` already did: ``AnnouncedBodyLimit``) gets `Connection: close`, and the connection then closes with a lingering
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
final class OversizeBodyLinger: ChannelDuplexHandler, LingeringCloseHandler, RemovableChannelHandler, @unchecked Sendable {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    /// The last request's head is read and its end is not.
    private var bodyOpen = false
    /// A 413 is being written while its request's body is open: linger once its end is written.
    private var refusing = false
    /// Lingering: the 413 is out, what arrives is dropped, and the connection closes on our terms.
    let linger = LingeringClose()

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if linger.active {
            linger.bytesArrived()
            return
        }
        switch unwrapInboundIn(data) {
        case .head: bodyOpen = true
        case .body: break
        case .end: bodyOpen = false
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(var head) where head.status == .contentTooLarge && bodyOpen:
            refusing = true
            head.headerFields[.connection] = "close"
            context.write(wrapOutboundOut(.head(head)), promise: promise)
        case .end where refusing:
            refusing = false
            let written = context.writeAndFlush(data)
            linger.begin(after: written, context: context)
            if let promise { written.cascade(to: promise) }
        default:
            context.write(data, promise: promise)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        linger.inactive()
        context.fireChannelInactive()
    }
}
