import NIOCore
import NIOHTTP1

/// HTTP/1.0 as RFC 9112 has it, which Hummingbird does not do (its request type drops the version):
/// a 1.0 request without `Connection: keep-alive` gets its answer and then the connection closes;
/// one with it gets `Connection: keep-alive` back, which a 1.0 client needs to reuse the connection;
/// and no 1.0 client is sent `Transfer-Encoding: chunked`, which it cannot read (a streamed reply
/// is sent as is and ended by closing the connection).
///
/// Without it Apache's `ab` could not measure xds at all: with or without `-k` it waited for an end
/// of reply that never came (the connection stayed open and no `keep-alive` came back) until its
/// timeout. The same `Connection: close` also ends a 1.1 connection whatever its case (Hummingbird
/// compares the header with "close" exactly), and the 1.1 answer then carries `Connection: close`.
///
/// Sits right after NIO's request decoder, where requests still carry their version. Hummingbird
/// reads requests ahead of its answers (pipelining), so the framing of each request waits in a
/// queue until its answer ends. One per connection, on its event loop only (`@unchecked Sendable`).
final class HTTP10Framing: ChannelDuplexHandler, RemovableChannelHandler, @unchecked Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private enum Framing { case http11, close11, keepAlive10, close10 }
    /// One per request read whose answer has not ended, oldest first.
    private var pending: [Framing] = []
    /// The answer being written must end by closing the connection.
    private var closeAfterEnd = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .head(var head) = unwrapInboundIn(data) else { return context.fireChannelRead(data) }
        let keepAlive = head.isKeepAlive
        pending.append(head.version.major == 1 && head.version.minor == 0 ? (keepAlive ? .keepAlive10 : .close10)
            : keepAlive ? .http11 : .close11)
        if !keepAlive { head.headers.replaceOrAdd(name: "connection", value: "close") }
        context.fireChannelRead(wrapInboundOut(.head(head)))
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(var head) where head.status.code >= 200:
            guard let framing = pending.first, framing != .http11 else { return context.write(data, promise: promise) }
            if framing == .close11 {
                // Hummingbird closes after this answer; RFC 9112 §9.6 has the answer say so. A client
                // that reads only the answer (Python's http.client) otherwise took the connection
                // for reusable and sent its next request down a closed socket.
                // Spelled as Hummingbird and the refusals spell it (a refusal's own one is replaced).
                head.headers.replaceOrAdd(name: "Connection", value: "close")
                return context.write(wrapOutboundOut(.head(head)), promise: promise)
            }
            head.version = .http1_0
            // A 1.0 reply can be kept open only when its length is known.
            let keepOpen = framing == .keepAlive10 && head.headers.contains(name: "content-length")
            head.headers.replaceOrAdd(name: "connection", value: keepOpen ? "keep-alive" : "close")
            closeAfterEnd = !keepOpen
            context.write(wrapOutboundOut(.head(head)), promise: promise)
        case .end:
            if !pending.isEmpty { pending.removeFirst() }
            guard closeAfterEnd else { return context.write(data, promise: promise) }
            closeAfterEnd = false
            let written = context.writeAndFlush(data)
            // The future completes on this channel's event loop, where the context may be used.
            let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
            written.whenComplete { _ in bound.value.close(promise: nil) }
            if let promise { written.cascade(to: promise) }
        default:
            context.write(data, promise: promise)
        }
    }

    /// Put among Hummingbird's extra handlers (which come after its HTTPTypes codec): places an
    /// ``HTTP10Framing`` right after NIO's request decoder.
    static func installer() -> NextToRequestDecoder { NextToRequestDecoder(.after) { HTTP10Framing() } }
}

/// Put among Hummingbird's extra handlers (which come after its HTTPTypes codec, too late to see
/// the raw bytes or the HTTP/1 request parts): places the handler `make` builds right before NIO's
/// request decoder (raw bytes: ``ChunkSizeLimit``) or right after it (request parts:
/// ``HTTP10Framing``, ``RequestHeadCheck``), then only passes everything on.
final class NextToRequestDecoder: ChannelInboundHandler, RemovableChannelHandler, Sendable {
    typealias InboundIn = NIOAny
    enum Side: Sendable { case before, after }
    private let side: Side
    private let make: @Sendable () -> any ChannelHandler

    init(_ side: Side, _ make: @escaping @Sendable () -> any ChannelHandler) {
        self.side = side
        self.make = make
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let pipeline = context.pipeline.syncOperations
        guard let decoder = try? pipeline.context(handlerType: ByteToMessageHandler<HTTPRequestDecoder>.self)
        else { return }
        try? pipeline.addHandler(make(), position: side == .before ? .before(decoder.handler) : .after(decoder.handler))
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.fireChannelRead(data)
    }
}
