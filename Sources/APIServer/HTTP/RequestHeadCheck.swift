import Foundation
import Hummingbird
import NIOCore
import NIOHTTP1
import PodModel

/// Refuses, before any route sees it, a request head that parses but that HTTP/1.1 (RFC 9112)
/// says a server must not serve as it stands, with one OpenAI-shaped error and `Connection:
/// close`, then ends the connection with a lingering close (``LingeringClose``), as the 400/431
/// of a head that does not parse (``HeadParseErrorAnswer``):
///
/// - `CONNECT` → 405 `method_not_allowed`. No route takes it (xds is not a proxy), and NIO's codec
///   treats it as a tunnel: its decoder stops parsing after the head (a pipelined `GET /health`
///   behind it was never answered and the connection hung until the client gave up), and its
///   encoder strips the framing headers and drops the body of any reply to CONNECT (the 404 went
///   out with a JSON content type, no length and no body). RFC 9112 §6.3 makes only a 2xx reply to
///   CONNECT bodiless, so the refusal is written as raw bytes below NIO's encoder, body and
///   `Content-Length` included.
/// - An HTTP/1.1 request with no `Host` or more than one → 400 (RFC 9112 §3.2: "MUST respond with
///   a 400"). HTTP/1.0 has no such rule and is served as before.
/// - A `Transfer-Encoding` with a coding other than `chunked` (`gzip, chunked`) → 501 (RFC 9112
///   §6.1). NIO's parser only undoes the chunked framing, so the body was read still gzipped, as
///   if it were plain (a JSON parse error at best). A coding list that does not end in chunked is
///   already a 400 from the parser (``HeadParseErrorAnswer``).
/// - An `Expect` with an expectation other than `100-continue` (`Expect: foo`) → 417 (RFC 9110
///   §10.1.1): it was served as if the header were absent, though the client asked for something
///   the server never does. A list of `100-continue` alone (`100-Continue`, or the same listed twice)
///   is passed on as one plain `100-continue`, the one form ``ExpectContinueHandler`` answers
///   (two `Expect: 100-continue` lines were joined into a value it did not recognise, and the
///   client waited out its own timeout before sending the body). An HTTP/1.0 request's
///   100-continue is dropped: it was answered `HTTP/1.1 100 Continue`, a 1xx a 1.0 client takes
///   for the answer itself.
///
/// Sits right after NIO's request decoder, where heads still carry their version and every header
/// field as sent (one `Host` per line). The refusal waits until every earlier request on the
/// connection has had its whole answer (pipelining); the refused request and everything after it
/// is dropped. One per connection, on its event loop only (`@unchecked Sendable`).
final class RequestHeadCheck: ChannelDuplexHandler, LingeringCloseHandler, RemovableChannelHandler, @unchecked Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    /// What a refused head gets: the error, the `Allow` header of a 405, the method for the metrics.
    struct Refusal: Equatable {
        var error: APIError
        var allow: String?
        var method: String
    }

    /// Request heads passed on, and answers whose end was written, on this connection.
    private var requests = 0
    private var responses = 0
    /// A head was refused: nothing more is passed on (the bytes after it are no longer framed as
    /// requests for us; for CONNECT not at all).
    private var refusing = false
    /// The refusal, until every earlier answer has ended and it is written.
    private var pending: Refusal?
    /// The number of the request that asked to upgrade (`Upgrade` + `Connection: upgrade`): NIO's
    /// decoder parses nothing after it (it takes the rest for the new protocol), so a request
    /// pipelined behind it hung unanswered. Its answer says `Connection: close` and ends the connection.
    private var upgradeRequest: Int?
    /// After the refusal: what arrives is dropped, and the connection closes on our terms.
    let linger = LingeringClose()

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // Checked before unwrapping: once the decoder is gone (``answer(_:)``) raw bytes arrive.
        if refusing {
            linger.bytesArrived()
            return
        }
        guard case .head(var head) = unwrapInboundIn(data) else { return context.fireChannelRead(data) }
        if let refusal = Self.refusal(for: head) {
            refusing = true
            pending = refusal
            if requests == responses { answer(context) }
            return
        }
        requests += 1
        if head.headers.contains(name: "expect") {
            // Only 100-continue is left here (any other was refused above); an empty value asks
            // nothing. HTTP/1.0's is ignored (RFC 9110 §10.1.1), as no 1xx may go to a 1.0 client (§15.2).
            let asks = !Self.expectations(head).isEmpty && (head.version.major, head.version.minor) >= (1, 1)
            head.headers.remove(name: "expect")
            if asks { head.headers.add(name: "expect", value: "100-continue") }
        }
        guard Self.asksToUpgrade(head) else { return context.fireChannelRead(wrapInboundOut(.head(head))) }
        upgradeRequest = requests
        var closing = head
        closing.headers.replaceOrAdd(name: "connection", value: "close")  // Hummingbird closes after its answer
        context.fireChannelRead(wrapInboundOut(.head(closing)))
    }

    /// As llhttp decides it: an `Upgrade` field and `upgrade` among the `Connection` tokens.
    private static func asksToUpgrade(_ head: HTTPRequestHead) -> Bool {
        head.headers.contains(name: "upgrade")
            && head.headers["connection"].flatMap { $0.split(separator: ",") }
                .contains { $0.trimmingCharacters(in: .whitespaces).lowercased() == "upgrade" }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .head(var head) = unwrapOutboundIn(data), head.status.code >= 200, upgradeRequest == responses + 1 {
            head.headers.replaceOrAdd(name: "connection", value: "close")
            return context.write(wrapOutboundOut(.head(head)), promise: promise)
        }
        guard case .end = unwrapOutboundIn(data) else { return context.write(data, promise: promise) }
        responses += 1
        context.write(data, promise: promise)
        if pending != nil, requests == responses { answer(context) }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // What follows a refused head may not parse (CONNECT's tunnel bytes): dropped, not answered.
        if refusing { return linger.bytesArrived() }
        context.fireErrorCaught(error)
    }

    func channelInactive(context: ChannelHandlerContext) {
        linger.inactive()
        context.fireChannelInactive()
    }

    /// Writes the refusal and starts the lingering close.
    private func answer(_ context: ChannelHandlerContext) {
        guard let refusal = pending else { return }
        pending = nil
        let body = refusal.error.json
        var head = "HTTP/1.1 \(refusal.error.status.code) \(refusal.error.status.reasonPhrase)\r\n"
            + "Content-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n"
        if let allow = refusal.allow { head += "Allow: \(allow)\r\n" }
        let bytes = ByteBuffer(string: head + "\r\n" + body)
        let pipeline = context.pipeline.syncOperations
        // Written from the encoder's own context, so the bytes go out below it: through the
        // encoder a reply to CONNECT loses its body and its length (see above).
        guard let encoder = try? pipeline.context(handlerType: HTTPResponseEncoder.self) else {
            return context.close(promise: nil)
        }
        let written = encoder.writeAndFlush(NIOAny(bytes))
        HTTPAnswerMetrics.record(route: HTTPAnswerMetrics.malformedRoute, method: refusal.method,
                                 status: refusal.error.status, nanoseconds: nil)
        linger.begin(after: written, context: context)
        // The decoder would keep what follows CONNECT in its buffer, unparsed, for as long as the
        // linger lasts; without it the bytes reach this handler and are dropped. Removed on a
        // later turn of the loop: this may run inside the decoder's own read.
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.eventLoop.assumeIsolated().execute {
            let pipeline = bound.value.pipeline.syncOperations
            if let decoder = try? pipeline.context(handlerType: ByteToMessageHandler<HTTPRequestDecoder>.self) {
                pipeline.removeHandler(context: decoder, promise: nil)
            }
        }
    }

    /// The refusal `head` gets, or nil if it may be served.
    static func refusal(for head: HTTPRequestHead) -> Refusal? {
        let method = HTTPAnswerMetrics.methodLabel(head.method.rawValue)
        if head.method == .CONNECT {
            // No resource here takes any method by CONNECT: an empty Allow says so (RFC 9110 §10.2.1).
            return Refusal(error: APIError(
                status: .methodNotAllowed,
                message: "CONNECT is not supported: xds is an API server, not a proxy; no route takes it",
                type: "invalid_request_error", param: nil, code: "method_not_allowed"), allow: "", method: method)
        }
        if head.version.major == 1, head.version.minor >= 1 {
            let hosts = head.headers["host"].count
            if hosts != 1 {
                return Refusal(error: .invalidRequest(
                    "the request is malformed: an HTTP/1.1 request must carry exactly one Host header; it carried "
                        + (hosts == 0 ? "none" : String(hosts)),
                    param: nil, code: "malformed_request"), allow: nil, method: method)
            }
        }
        // Only 100-continue is met (case-insensitive; one with parameters is another expectation).
        if let unmet = expectations(head).first(where: { $0.lowercased() != "100-continue" }) {
            return Refusal(error: APIError(
                status: .expectationFailed,
                message: "Expect \(InputEcho.quoted(unmet)) cannot be met: this server meets only 100-continue "
                    + "(send the request without that expectation)",
                type: "invalid_request_error", param: nil, code: "expectation_failed"),
                allow: nil, method: method)
        }
        let codings = head.headers["transfer-encoding"].flatMap { $0.split(separator: ",") }
            .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        if let coding = codings.first(where: { $0.lowercased() != "chunked" }) {
            return Refusal(error: APIError(
                status: .notImplemented,
                message: "Transfer-Encoding \(InputEcho.quoted(coding)) is not supported; only chunked is "
                    + "(send the body uncompressed, or say Content-Length)",
                type: "invalid_request_error", param: nil, code: "unsupported_transfer_coding"),
                allow: nil, method: method)
        }
        return nil
    }

    /// The members of the head's `Expect` list (RFC 9110 §10.1.1), every field line's, empty
    /// ones skipped (RFC 9110 §5.6.1).
    private static func expectations(_ head: HTTPRequestHead) -> [String] {
        head.headers["expect"].flatMap { $0.split(separator: ",") }
            .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    /// Put among Hummingbird's extra handlers after ``HTTP10Framing``'s: places a
    /// ``RequestHeadCheck`` right after NIO's request decoder (so before ``HTTP10Framing``, which
    /// never sees a refused head).
    static func installer() -> NextToRequestDecoder { NextToRequestDecoder(.after) { RequestHeadCheck() } }
}
