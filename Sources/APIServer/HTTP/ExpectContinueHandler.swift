import Hummingbird
import NIOCore
import NIOHTTPTypes

/// Answers `Expect: 100-continue` with `100 Continue`, so the client sends its body at once.
///
/// curl 7.88 (Debian 12's) asks so for every POST body over 1 KiB, i.e. any real prompt; Hummingbird
/// never answers it, so curl waited its one-second expect timeout before sending the body, and that
/// second counted in every latency of the request (the server's clock starts at the head).
///
/// Hummingbird reads a connection's requests ahead of its responses (HTTP/1.1 pipelining), so the
/// interim answer must not cut into a response still being written: it goes out at once only when
/// every earlier request on the connection has had its whole response, else right after the last
/// of those ends. One handler per connection; NIO calls it on the connection's event loop only,
/// which is what makes its counters safe (hence `@unchecked Sendable`).
final class ExpectContinueHandler: ChannelDuplexHandler, RemovableChannelHandler, @unchecked Sendable {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    /// Request heads read, and responses whose end was written, on this connection.
    private var requests = 0
    private var responses = 0
    /// Requests (by number, 1-based) owed a `100 Continue` once the responses before them are done.
    private var owed: [Int] = []

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .head(let head) = unwrapInboundIn(data) {
            requests += 1
            if head.headerFields[.expect]?.lowercased() == "100-continue" {
                if responses == requests - 1 { sendContinue(context) } else { owed.append(requests) }
            }
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let ends = if case .end = unwrapOutboundIn(data) { true } else { false }
        context.write(data, promise: promise)
        guard ends else { return }
        responses += 1
        if owed.first == responses + 1 {
            owed.removeFirst()
            sendContinue(context)
        }
    }

    private func sendContinue(_ context: ChannelHandlerContext) {
        context.writeAndFlush(wrapOutboundOut(.head(HTTPResponse(status: .continue))), promise: nil)
    }
}
