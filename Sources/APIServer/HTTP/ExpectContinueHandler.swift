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
///
/// A request that waits for `100 Continue` with a `Content-Length` over the body limit is never
/// asked for its body: the 1 MiB limit is known from the header, so it gets its 413 at once (from
/// ``AnnouncedBodyLimit``, with the error body an oversize body gets) where it used to be told to
/// send 2 MB only to have them refused. Its body is ended here for the router (nothing reads
/// it), whatever the client sends for it afterwards is dropped, and the connection closes after
/// that answer (`Connection: close`), since the client may or may not send the body it announced
/// (RFC 9110 §10.1.1) and the framing of what follows is unknown.
final class ExpectContinueHandler: ChannelDuplexHandler, RemovableChannelHandler, @unchecked Sendable {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    /// Larger bodies get 413 (``APIServer/Configuration/maxBodyBytes``).
    private let maxBodyBytes: Int
    /// Request heads read, and responses whose end was written, on this connection.
    private var requests = 0
    private var responses = 0
    /// Requests (by number, 1-based) owed a `100 Continue` once the responses before them are done.
    private var owed: [Int] = []
    /// The request (by number) refused for the body it announced: the connection closes once
    /// its answer has been written.
    private var refused: Int?
    /// Body parts of the refused request, should its client send them anyway, go no further.
    private var droppingBody = false

    init(maxBodyBytes: Int) {
        self.maxBodyBytes = maxBodyBytes
    }

    /// Whether a request waits for `100 Continue` before sending a body its `Content-Length` says
    /// is over `limit`. The handler (which never asks for that body) and ``AnnouncedBodyLimit``
    /// (which answers 413) decide by this one rule.
    static func announcesOversizeBody(_ fields: HTTPFields, limit: Int) -> Bool {
        guard fields[.expect]?.lowercased() == "100-continue", let length = fields.announcedBodyBytes
        else { return false }
        return length > limit
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            requests += 1
            if Self.announcesOversizeBody(head.headerFields, limit: maxBodyBytes) {
                refused = requests
                droppingBody = true
                context.fireChannelRead(data)
                context.fireChannelRead(wrapInboundOut(.end(nil)))
                return
            }
            if head.headerFields[.expect]?.lowercased() == "100-continue" {
                if responses == requests - 1 { sendContinue(context) } else { owed.append(requests) }
            }
        case .body:
            if droppingBody { return }
        case .end:
            if droppingBody {
                droppingBody = false
                return
            }
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let part = unwrapOutboundIn(data)
        if case .head(var head) = part, head.status.code >= 200, refused == responses + 1 {
            head.headerFields[.connection] = "close"
            context.write(wrapOutboundOut(.head(head)), promise: promise)
            return
        }
        guard case .end = part else { return context.write(data, promise: promise) }
        responses += 1
        if refused == responses {
            let written = context.writeAndFlush(data)
            // The future completes on this channel's event loop, where the context may be used.
            let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
            written.whenComplete { _ in bound.value.close(promise: nil) }
            if let promise { written.cascade(to: promise) }
            return
        }
        context.write(data, promise: promise)
        if owed.first == responses + 1 {
            owed.removeFirst()
            sendContinue(context)
        }
    }

    private func sendContinue(_ context: ChannelHandlerContext) {
        context.writeAndFlush(wrapOutboundOut(.head(HTTPResponse(status: .continue))), promise: nil)
    }
}

/// `413` at once for a request whose `Content-Length` is over the limit: the same limit and the
/// same error body as a body found too large while read (`request_too_large`), on every path,
/// before any route (none takes a larger body). One that waits for `100 Continue`
/// (``ExpectContinueHandler/announcesOversizeBody(_:limit:)``) never sends the body, and its
/// connection closes after this answer (``ExpectContinueHandler``); one that sends the body anyway
/// has it read and dropped while the connection closes (``OversizeBodyLinger``).
///
/// Without `Expect`, such a request was refused only once a whole megabyte of its body had
/// arrived: `Content-Length: 999999999` with a few bytes behind it waited for the body timeout
/// (60 s) and got a 408 instead of the 413 its head already earned.
struct AnnouncedBodyLimit<Context: RequestContext>: RouterMiddleware {
    let maxBodyBytes: Int

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response)
        async throws -> Response
    {
        guard let length = request.headers.announcedBodyBytes, length > maxBodyBytes else {
            return try await next(request, context)
        }
        throw APIError.bodyTooLarge(limitBytes: maxBodyBytes)
    }
}

extension HTTPFields {
    /// The body length the head's `Content-Length` announces, as the parser takes it: up to
    /// 2^64 − 1. Read as an `Int`, a length from 2^63 on was no length at all, and such a request
    /// waited for the body timeout (or was told `100 Continue`) instead of its 413.
    var announcedBodyBytes: UInt64? { self[.contentLength].flatMap { UInt64($0) } }
}
