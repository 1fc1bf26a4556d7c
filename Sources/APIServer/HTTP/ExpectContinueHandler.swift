import Hummingbird
import NIOCore
// In the graph through Hummingbird (its HTTP/1 codec speaks these parts); not named in
// Package.swift, which this round may not edit.
import NIOHTTPTypes

/// Answers `Expect: 100-continue` with `100 Continue`, so the client sends its body at once.
///
/// curl 7.88 (Debian 12's) asks so for every POST body over 1 KiB, i.e. any real prompt; Hummingbird
/// never answers it: curl then waited its one-second expect timeout before sending the body, and
/// that second counted in every latency of the request (the server's clock starts at the head).
/// The head reaches this handler only once the previous response on the connection is done (NIO's
/// pipelining assistance holds it back), so the interim response cannot cut into another one.
final class ExpectContinueHandler: ChannelInboundHandler, RemovableChannelHandler, Sendable {
    typealias InboundIn = HTTPRequestPart
    typealias OutboundOut = HTTPResponsePart

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .head(let head) = unwrapInboundIn(data),
           head.headerFields[.expect]?.lowercased() == "100-continue"
        {
            context.writeAndFlush(wrapOutboundOut(.head(HTTPResponse(status: .continue))), promise: nil)
        }
        context.fireChannelRead(data)
    }
}
