import Hummingbird
import NIOCore
import NIOHTTP1
import NIOHTTPTypes

/// Answers a request whose head does not parse (`Content-Length: abc`, a header line with a
/// space in its name, two different lengths) with the OpenAI error body every other 400 carries,
/// then closes the connection (its framing is lost) with a lingering close (``LingeringClose``):
/// the rest of the request is read and dropped until the client closes its side, so the answer
/// is followed by a FIN, not by the TCP reset that closing on unread bytes makes (a request with
/// 5,000 headers got its 431 and then a reset, and a client that read late saw only the reset).
/// An HTTP/0.9 request line, which the decoder waits on instead of reporting, is spotted before it
/// (``HTTP09Refusal``) and answered here too, 505.
/// The answer is counted in the HTTP metrics
/// (``HTTPAnswerMetrics``), as every routed answer is.
///
/// NIO's decoder reports such a head as an ``HTTPParserError`` before any route sees it, and
/// Hummingbird answered it with a bare `400` and `Content-Length: 0`: the one error a client
/// could not parse (the openai package raises its generic "Error code: 400" without a message).
/// The answer goes out only when every earlier request on the connection has had its whole
/// response (pipelining); otherwise the error passes on and Hummingbird answers as before. One
/// per connection, on its event loop only (`@unchecked Sendable`).
final class HeadParseErrorAnswer: ChannelDuplexHandler, LingeringCloseHandler, RemovableChannelHandler, @unchecked Sendable {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    /// Request heads read, and responses whose end was written, on this connection.
    private var requests = 0
    private var responses = 0
    private var answered = false
    /// After the answer: what arrives is dropped, and the connection closes on our terms.
    let linger = LingeringClose()
    /// Reads the connection's first line before the decoder, for an HTTP/0.9 request line.
    private let http09 = HTTP09Refusal()

    func handlerAdded(context: ChannelHandlerContext) {
        // Right before NIO's decoder: the raw bytes, which the decoder does not report on for a
        // 0.9 line (``HTTP09Refusal``).
        let pipeline = context.pipeline.syncOperations
        if let decoder = try? pipeline.context(handlerType: ByteToMessageHandler<HTTPRequestDecoder>.self) {
            try? pipeline.addHandler(http09, position: .before(decoder.handler))
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if linger.active {
            linger.bytesArrived()
            return
        }
        if case .head = unwrapInboundIn(data) { requests += 1 }
        context.fireChannelRead(data)
    }

    func channelInactive(context: ChannelHandlerContext) {
        linger.inactive()
        context.fireChannelInactive()
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) { responses += 1 }
        context.write(data, promise: promise)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // The decoder reports every read after its error as data received in error state: the
        // rest of the refused request, dropped while lingering.
        if linger.active, error is ByteToMessageDecoderError {
            linger.bytesArrived()
            return
        }
        guard let parserError = error as? HTTPParserError, requests == responses else {
            return context.fireErrorCaught(error)
        }
        // The decoder reports once and then drops what follows; answer once.
        guard !answered else { return }
        answered = true
        let apiError = http09.sawHTTP09 ? Self.http09Refused
            : http09.sawHTTP2Preface ? Self.http2Refused : Self.error(for: parserError)
        let body = ByteBuffer(string: apiError.json)
        let head = HTTPResponse(status: apiError.status, headerFields: [
            .contentType: "application/json", .contentLength: String(body.readableBytes), .connection: "close",
        ])
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(body)), promise: nil)
        let written = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        // No route or middleware sees this answer; count it as the middleware counts the others.
        HTTPAnswerMetrics.record(route: HTTPAnswerMetrics.malformedRoute, method: HTTPAnswerMetrics.unknownMethod,
                                 status: apiError.status, nanoseconds: nil)
        linger.begin(after: written, context: context)
    }

    /// An HTTP/0.9 request line (``HTTP09Refusal``): 505, as the version is what is refused
    /// (RFC 9110 §15.6.6), with the request line a client should send instead.
    static let http09Refused = APIError(
        status: .httpVersionNotSupported,
        message: "HTTP/0.9 is not supported: the request line has no HTTP version; send HTTP/1.1 "
            + "(e.g. 'GET /health HTTP/1.1' then a Host header and a blank line) or HTTP/1.0",
        type: "invalid_request_error", param: nil, code: "http_version_not_supported")

    /// HTTP/2's connection preface (``HTTP09Refusal/sawHTTP2Preface``), or the parser's pause on
    /// one that is not the connection's first line: 505, as for HTTP/0.9, saying which versions
    /// are spoken. The server speaks HTTP/1.x only (an `Upgrade: h2c` request is answered over
    /// HTTP/1.1).
    static let http2Refused = APIError(
        status: .httpVersionNotSupported,
        message: "HTTP/2 is not supported: this server speaks HTTP/1.1 and HTTP/1.0 only; connect without "
            + "HTTP/2 prior knowledge (e.g. curl without --http2-prior-knowledge)",
        type: "invalid_request_error", param: nil, code: "http_version_not_supported")

    /// The client's error for a head that did not parse: 431 for headers over the decoder's
    /// limits, 400 naming what was wrong otherwise.
    static func error(for parserError: HTTPParserError) -> APIError {
        let problem: String
        switch parserError {
        // llhttp pauses on a `PRI` request of version 2.0, HTTP/2's preface, and on nothing else
        // NIO lets through (NIO resumes its pause on an upgrade itself).
        case .paused:
            return http2Refused
        case .headerOverflow:
            return APIError(
                status: .requestHeaderFieldsTooLarge, message: "the request's header fields are too large",
                type: "invalid_request_error", param: nil, code: "request_header_fields_too_large")
        case .invalidContentLength:
            // llhttp says so for a Content-Length beside `Transfer-Encoding: gzip` too.
            problem = "its Content-Length must be one whole number of bytes (0 or more, digits only), "
                + "not sent with Transfer-Encoding"
        case .unexpectedContentLength:
            problem = "its Content-Length is repeated with different values or sent with Transfer-Encoding"
        case .invalidHeaderToken, .invalidCharactersUsed:
            problem = "a header name or value holds a character HTTP does not allow"
        case .invalidMethod: problem = "its method is not an HTTP method"
        case .invalidURL: problem = "its target is not a valid path"
        // llhttp says so too for a request line ended by a bare LF (`printf 'GET / HTTP/1.1\n'`),
        // whose version is fine: name both.
        case .invalidVersion: problem = "its HTTP version is not HTTP/1.0 or HTTP/1.1, or its request line does not end in CRLF"
        case .invalidChunkSize: problem = "a chunk size is not hexadecimal"
        // `.unknown` covers llhttp's other refusals (Content-Length beside Transfer-Encoding, a
        // header line ended by a bare LF, …); its own text, "unknown (http_parser error)", tells a
        // client nothing.
        default:
            problem = "its framing does not parse as HTTP/1.1 (e.g. a line that does not end in CRLF, "
                + "or Content-Length sent with Transfer-Encoding)"
        }
        return APIError(
            status: .badRequest, message: "the request is malformed: \(problem)", type: "invalid_request_error",
            param: nil, code: "malformed_request")
    }
}
