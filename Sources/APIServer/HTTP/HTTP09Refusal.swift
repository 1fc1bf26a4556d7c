import NIOCore
import NIOHTTP1

/// Spots an HTTP/0.9 request line (`GET /health` and no version: what `printf 'GET /health\r\n' |
/// nc` sends) as the first line of a connection, so that ``HeadParseErrorAnswer`` refuses it at
/// once with 505 (``APIError/http09``).
///
/// NIO's parser (llhttp) takes such a line as the start of an HTTP/0.9 request and then waits for
/// header lines, which a 0.9 client never sends: the client was answered only when the header
/// timeout ran out, 60 s later, with a 408 saying the head "did not arrive", though it had sent
/// all it meant to. The parser reports nothing at the end of that line, so the line is read here,
/// before the decoder, from the raw bytes. Only a connection's first line is read: it is the only
/// place a request line is known to start without parsing HTTP framing a second time (HTTP/0.9
/// has no kept-alive connections, so a 0.9 client's request is always the first). A 0.9 line that
/// follows a 1.1 request on the same connection still waits for the header timeout, or gets the
/// parser's own 400 (naming the version) once a blank line ends its head.
///
/// Bytes pass on unchanged as they come; when the line is a 0.9 one, it and everything after it
/// are kept from the decoder and an ``HTTPParserError`` is raised in its place (the error the
/// pipeline expects of a head that cannot be served), which ``HeadParseErrorAnswer`` answers
/// when ``sawHTTP09`` is set. Placed right before NIO's request decoder by
/// ``HeadParseErrorAnswer``. One per connection, on its event loop only (`@unchecked Sendable`).
final class HTTP09Refusal: ChannelInboundHandler, RemovableChannelHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    /// The connection's first line so far, until its LF arrives or it grows past ``longestLine``.
    private var line: [UInt8] = []
    /// The first line was read whole (or was too long to keep): bytes only pass on now.
    private var done = false
    /// The first line was an HTTP/0.9 request line: what arrives is dropped.
    private(set) var sawHTTP09 = false
    /// The first line was HTTP/2's connection preface (`PRI * HTTP/2.0`, what `curl
    /// --http2-prior-knowledge` and gRPC clients open with): what arrives is dropped. The parser
    /// reported it as a generic head error, answered 400 "its framing does not parse", which told
    /// an HTTP/2 client nothing about the version it spoke.
    private(set) var sawHTTP2Preface = false

    /// A first line longer than this is left to the decoder (which has its own limits); a 0.9
    /// line that long is answered by the header timeout, as before.
    static let longestLine = 16 * 1024

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if sawHTTP09 || sawHTTP2Preface { return }
        if done { return context.fireChannelRead(data) }
        let bytes = unwrapInboundIn(data).readableBytesView
        if let end = bytes.firstIndex(of: UInt8(ascii: "\n")) {
            line += bytes[..<end]
            done = true
            if Self.isHTTP09(line) {
                sawHTTP09 = true
                line = []
                // As the decoder reports a head it cannot parse; the answer names HTTP/0.9.
                return context.fireErrorCaught(HTTPParserError.invalidVersion)
            }
            if Self.isHTTP2Preface(line) {
                sawHTTP2Preface = true
                line = []
                // Answered 505 by HeadParseErrorAnswer, which reads ``sawHTTP2Preface``.
                return context.fireErrorCaught(HTTPParserError.invalidVersion)
            }
            line = []
        } else {
            line += bytes
            if line.count > Self.longestLine {
                done = true
                line = []
            }
        }
        context.fireChannelRead(data)
    }

    /// HTTP/2's connection preface starts `PRI * HTTP/2.0` CR LF (RFC 9113 §3.4).
    static func isHTTP2Preface(_ line: [UInt8]) -> Bool {
        line == Array("PRI * HTTP/2.0\r".utf8)
    }

    /// `METHOD SP request-target` and nothing more (a CR before the LF aside): a request line
    /// without the ` HTTP/x.y` every later version ends it with (RFC 9112 §3).
    static func isHTTP09(_ line: [UInt8]) -> Bool {
        var text = line[...]
        if text.last == UInt8(ascii: "\r") { text = text.dropLast() }
        let words = text.split(separator: UInt8(ascii: " "), omittingEmptySubsequences: false)
        guard words.count == 2, let method = words.first, let target = words.last, !method.isEmpty, !target.isEmpty
        else { return false }
        // A method NIO's parser knows: any other fails there first, with its own 400.
        if case .RAW = HTTPMethod(rawValue: String(decoding: method, as: UTF8.self)) { return false }
        return true
    }
}
