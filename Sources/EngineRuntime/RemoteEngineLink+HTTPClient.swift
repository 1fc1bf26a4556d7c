import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

/// The link's HTTP/1.1 client on SwiftNIO: one request per connection (`Connection: close`), plain
/// HTTP (`xds serve` speaks no TLS).
///
/// Why not URLSession: on Linux it lives in FoundationNetworking, which loads libcurl, OpenSSL,
/// GnuTLS, Kerberos, LDAP and some 30 libraries more into every `xds` process (a replay that never
/// opens a socket spent ~37 M instructions in the dynamic loader for them); NIO is already in the
/// binary for the server.
///
/// A timeout is an idle timeout, as URLSession's `timeoutInterval`: the connection must open, and
/// then bytes must keep arriving, within that time (a long preview waits up to the whole of it for
/// its first byte).
///
/// ```swift
/// let client = RemoteEngineLink.HTTPClient(token: "T")
/// let answer = client.exchange(URL(string: "http://127.0.0.1:8000/admin/requests/7")!, timeout: .seconds(10))
/// // .success(HTTPAnswer(status: 200, body: […])) or .failure(.refused)
/// ```
extension RemoteEngineLink {
    /// Why a request got no HTTP answer, as the console words it (one line).
    enum Failure: Error, Equatable, Sendable {
        case refused
        case timedOut
        case unresolvable
        case lost
        case unusableURL
        case tooLarge
        case notHTTP
        /// The caller stopped waiting (``HTTPClient/exchange(_:method:json:timeout:cancelled:)``).
        case cancelled
        case other(String)

        var explanation: String {
            switch self {
            case .refused: "connection refused (is xds serve running there?)"
            case .timedOut: "no answer in time"
            case .unresolvable: "the host name does not resolve"
            case .lost: "the connection was lost"
            case .unusableURL: "not a usable URL (the link speaks plain http://)"
            case .tooLarge: "the answer was larger than \(HTTPClient.largestBody >> 20) MB"
            case .notHTTP: "the answer was not HTTP"
            case .cancelled: "cancelled"
            case .other(let what): "the request failed (\(what))"
            }
        }

        /// NIO's errors in the console's words.
        init(_ error: any Error) {
            switch error {
            case let failure as Failure:
                self = failure
            case let connection as NIOConnectionError:
                if connection.connectionErrors.isEmpty {
                    self = connection.dnsAError != nil || connection.dnsAAAAError != nil ? .unresolvable : .refused
                } else if connection.connectionErrors.contains(where: { ($0.error as? IOError)?.errnoCode == ECONNREFUSED }) {
                    self = .refused
                } else if connection.connectionErrors.contains(where: { Self.isTimeout($0.error) }) {
                    self = .timedOut
                } else {
                    self = .other("\(connection.connectionErrors[0].error)")
                }
            case is SocketAddressError:
                self = .unresolvable
            case let io as IOError where io.errnoCode == ECONNREFUSED:
                self = .refused
            case let io as IOError where [ECONNRESET, EPIPE].contains(io.errnoCode):
                self = .lost
            case let parser as HTTPParserError:
                // The server hung up before the answer was whole; anything else is not HTTP.
                self = parser == .invalidEOFState ? .lost : .notHTTP
            case let channel as ChannelError:
                switch channel {
                case .connectTimeout: self = .timedOut
                case .ioOnClosedChannel, .eof, .alreadyClosed, .outputClosed, .inputClosed: self = .lost
                default: self = .other("\(channel)")
                }
            default:
                self = Self.isTimeout(error) ? .timedOut : .other("\(error)")
            }
        }

        private static func isTimeout(_ error: any Error) -> Bool {
            if case .connectTimeout = error as? ChannelError { return true }
            return (error as? IOError)?.errnoCode == ETIMEDOUT
        }
    }

    /// A whole answer: status and body.
    struct HTTPAnswer: Sendable {
        var status: Int
        var body: [UInt8]
    }

    struct HTTPClient: Sendable {
        /// Bigger answers are refused rather than held: a snapshot or a preview is well under a
        /// megabyte, a page of requests a few hundred kilobytes.
        static let largestBody = 64 << 20

        /// The link's own event loop, started on first use (a replay never starts it). One thread
        /// is plenty for a console's few requests and one stream; it lives as long as the process.
        static let eventLoops = MultiThreadedEventLoopGroup(numberOfThreads: 1)

        let token: String

        /// How often a cancellable exchange asks whether its caller still waits.
        static let cancellationPoll = TimeAmount.milliseconds(50)

        /// Sends one request and waits for the whole answer. Call it off the event loop (the
        /// console's thread or a test's). Once `cancelled` answers true (asked every
        /// ``cancellationPoll``), the connection is closed (the server sees its client leave)
        /// and the answer is `.cancelled`.
        func exchange(_ url: URL, method: HTTPMethod = .GET, json body: [UInt8]? = nil, timeout: TimeAmount,
                      cancelled: (@Sendable () -> Bool)? = nil)
            -> Result<HTTPAnswer, Failure>
        {
            guard let target = Target(url) else { return .failure(.unusableURL) }
            let loop = Self.eventLoops.next()
            let answer = loop.makePromise(of: HTTPAnswer.self)
            let head = requestHead(target, method: method, body: body)
            ClientBootstrap(group: loop)
                .connectTimeout(timeout)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHTTPClientHandlers()
                        try channel.pipeline.syncOperations.addHandlers(
                            IdleStateHandler(readTimeout: timeout), AnswerCollector(answer),
                            ConnectionEnd(fail: { answer.fail($0) }))
                    }
                }
                .connect(host: target.host, port: target.port)
                .whenComplete { connected in
                    switch connected {
                    case .failure(let error): answer.fail(error)
                    case .success(let channel):
                        if let cancelled { Self.hangUp(channel, when: cancelled, failing: answer) }
                        Self.write(head, body: body, to: channel, orFail: answer)
                    }
                }
            do { return .success(try answer.futureResult.wait()) } catch { return .failure(Failure(error)) }
        }

        /// Closes `channel` once `cancelled` says so, failing `answer` with `.cancelled`; stops
        /// asking when the answer is in.
        private static func hangUp(_ channel: any Channel, when cancelled: @escaping @Sendable () -> Bool,
                                   failing answer: EventLoopPromise<HTTPAnswer>) {
            let poll = channel.eventLoop.scheduleRepeatedTask(initialDelay: .zero, delay: cancellationPoll) { _ in
                guard cancelled() else { return }
                answer.fail(Failure.cancelled)
                channel.close(promise: nil)
            }
            answer.futureResult.whenComplete { _ in poll.cancel() }
        }

        /// Opens a long-lived GET (the admin event stream) and returns at once. `head` gets the
        /// status (answer false to hang up), `body` each piece of the body as it arrives, and
        /// `end` is called exactly once: nil when the server ended the stream, else why it broke.
        /// The returned future gives the channel, to close it.
        func stream(
            _ url: URL, idleTimeout: TimeAmount,
            head: @escaping @Sendable (Int) -> Bool,
            body: @escaping @Sendable (ByteBuffer) -> Void,
            end: @escaping @Sendable (Failure?) -> Void
        ) -> EventLoopFuture<any Channel> {
            let loop = Self.eventLoops.next()
            guard let target = Target(url) else {
                end(.unusableURL)
                return loop.makeFailedFuture(Failure.unusableURL)
            }
            let ended = loop.makePromise(of: Void.self)
            ended.futureResult.whenComplete { result in
                if case .failure(let error) = result { end(Failure(error)) } else { end(nil) }
            }
            let request = requestHead(target, method: .GET, body: nil)
            let connecting = ClientBootstrap(group: loop)
                .connectTimeout(idleTimeout)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHTTPClientHandlers()
                        try channel.pipeline.syncOperations.addHandlers(
                            IdleStateHandler(readTimeout: idleTimeout),
                            StreamForwarder(head: head, body: body, ended: ended),
                            ConnectionEnd(fail: { ended.fail($0) }))
                    }
                }
                .connect(host: target.host, port: target.port)
            connecting.whenComplete { connected in
                switch connected {
                case .failure(let error): ended.fail(error)
                case .success(let channel): Self.write(request, body: nil, to: channel, orFail: ended)
                }
            }
            return connecting
        }

        private func requestHead(_ target: Target, method: HTTPMethod, body: [UInt8]?) -> HTTPRequestHead {
            var headers = HTTPHeaders()
            headers.add(name: "Host", value: target.hostHeader)
            headers.add(name: "Authorization", value: "Bearer \(token)")
            headers.add(name: "Connection", value: "close")
            if let body {
                headers.add(name: "Content-Type", value: "application/json")
                headers.add(name: "Content-Length", value: String(body.count))
            }
            return HTTPRequestHead(version: .http1_1, method: method, uri: target.path, headers: headers)
        }

        private static func write<T>(
            _ head: HTTPRequestHead, body: [UInt8]?, to channel: any Channel, orFail promise: EventLoopPromise<T>
        ) {
            channel.write(HTTPClientRequestPart.head(head), promise: nil)
            if let body { channel.write(HTTPClientRequestPart.body(.byteBuffer(ByteBuffer(bytes: body))), promise: nil) }
            channel.writeAndFlush(HTTPClientRequestPart.end(nil)).whenFailure { error in
                promise.fail(error)
                channel.close(promise: nil)
            }
        }
    }

    /// Where a URL points: host and port to connect to, the request target (path and query, as
    /// percent-encoded in the URL) and the Host header.
    struct Target: Equatable {
        var host: String
        var port: Int
        var path: String
        var hostHeader: String

        init?(_ url: URL) {
            guard let components = URLComponents(url: url, resolvingAgainstBaseURL: false),
                  components.scheme?.lowercased() == "http",
                  let rawHost = components.host, !rawHost.isEmpty
            else { return nil }
            let bare = rawHost.hasPrefix("[") && rawHost.hasSuffix("]") ? String(rawHost.dropFirst().dropLast()) : rawHost
            host = bare
            port = components.port ?? 80
            guard (1...65_535).contains(port) else { return nil }
            let encodedPath = components.percentEncodedPath
            path = (encodedPath.isEmpty ? "/" : encodedPath) + (components.percentEncodedQuery.map { "?\($0)" } ?? "")
            hostHeader = (bare.contains(":") ? "[\(bare)]" : bare) + (components.port.map { ":\($0)" } ?? "")
        }
    }
}

/// Collects one whole answer; the promise completes once (NIO ignores a second completion), on
/// the answer's end or on whatever ends the connection first.
private final class AnswerCollector: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart

    private let answer: EventLoopPromise<RemoteEngineLink.HTTPAnswer>
    private var status = 0
    private var body: [UInt8] = []

    init(_ answer: EventLoopPromise<RemoteEngineLink.HTTPAnswer>) { self.answer = answer }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            status = Int(head.status.code)
        case .body(let piece):
            guard body.count + piece.readableBytes <= RemoteEngineLink.HTTPClient.largestBody else {
                answer.fail(RemoteEngineLink.Failure.tooLarge)
                context.close(promise: nil)
                return
            }
            body.append(contentsOf: piece.readableBytesView)
        case .end:
            answer.succeed(RemoteEngineLink.HTTPAnswer(status: status, body: body))
            context.close(promise: nil)
        }
    }
}

/// Hands a streamed answer to the link as it arrives; `ended` completes once.
private final class StreamForwarder: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart

    private let head: @Sendable (Int) -> Bool
    private let body: @Sendable (ByteBuffer) -> Void
    private let ended: EventLoopPromise<Void>
    private var hungUp = false

    init(head: @escaping @Sendable (Int) -> Bool, body: @escaping @Sendable (ByteBuffer) -> Void,
         ended: EventLoopPromise<Void>) {
        self.head = head
        self.body = body
        self.ended = ended
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !hungUp else { return }
        switch unwrapInboundIn(data) {
        case .head(let response):
            if !head(Int(response.status.code)) {
                hungUp = true
                ended.succeed()
                context.close(promise: nil)
            }
        case .body(let piece):
            body(piece)
        case .end:
            ended.succeed()
            context.close(promise: nil)
        }
    }
}

/// What ends an exchange when the answer does not: a silent connection (the idle timeout), an
/// error, or a connection that closes first. Sits after the answer's reader (which forwards these
/// events), so both readers share it; `fail` completes the reader's promise, which ignores a
/// failure after the answer's end.
private final class ConnectionEnd: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart

    private let fail: (any Error) -> Void
    private var connected = false

    init(fail: @escaping (any Error) -> Void) { self.fail = fail }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .read = event as? IdleStateHandler.IdleStateEvent {
            fail(RemoteEngineLink.Failure.timedOut)
            context.close(promise: nil)
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail(error)
        context.close(promise: nil)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        connected = context.channel.isActive
    }

    func channelActive(context: ChannelHandlerContext) {
        connected = true
        context.fireChannelActive()
    }

    // A connection that never opened is the connect's failure to report (refused, timed out), not "lost".
    func channelInactive(context: ChannelHandlerContext) {
        if connected { fail(RemoteEngineLink.Failure.lost) }
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        if connected { fail(RemoteEngineLink.Failure.lost) }
    }
}
