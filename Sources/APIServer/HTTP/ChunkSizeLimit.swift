import Hummingbird
import NIOCore
import NIOHTTP1

/// `413` as soon as a chunked request body announces a chunk that cannot fit the body limit, as
/// ``AnnouncedBodyLimit`` does for a `Content-Length` over it.
///
/// NIO's parser reads a chunk's size line but tells nobody (it hands on the chunk's bytes as they
/// come), so a body of `100000000` CRLF and a few bytes was refused only once a whole megabyte had
/// arrived: a client that announced 4 GiB and then sent slowly waited for the body timeout (60 s)
/// and got a 408 instead of the 413 the size line already earned. So the raw bytes are followed
/// here, right before the decoder, as far as request framing goes (heads, `Content-Length` bodies,
/// chunk sizes, chunk data, trailers); when a chunk size takes the body past the limit, the
/// request's body stream is ended with Hummingbird's `413` error, which the route reading it
/// answers as any body over the limit (``Request/decodeJSON(_:limitBytes:maxModelLen:)``:
/// `request_too_large`), and ``OversizeBodyLinger`` closes the connection cleanly after it (the
/// rest of the body is read and dropped, then a FIN).
///
/// Anything this reader does not follow exactly (a transfer coding other than chunked, a chunk
/// size that is not hexadecimal or overflows, a head or line beyond its bounds) turns it off for
/// the connection: the bytes pass on unchanged, and the decoder answers as before (a 400 for bad
/// framing). It never holds bytes back, so it cannot delay a request. One per connection, on its
/// event loop only (`@unchecked Sendable`).
final class ChunkSizeLimit: ChannelInboundHandler, RemovableChannelHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private enum State: Equatable {
        /// Reading a request head, line by line.
        case head
        /// Reading a chunk-size line.
        case chunkSize
        /// Bytes of the current chunk's data still to come.
        case chunkData(Int)
        /// The line end after a chunk's data.
        case chunkDataEnd
        /// Trailer lines after the last chunk, until an empty one.
        case trailers
        /// Bytes of a `Content-Length` body still to come.
        case fixed(Int)
        /// Not following any more: bytes only pass on.
        case off
    }

    private let maxBodyBytes: Int
    private var state = State.head
    /// The current line, without its LF, while reading a head, a chunk size or trailers.
    private var line: [UInt8] = []
    /// The current head's bytes so far, and its framing headers.
    private var headBytes = 0
    private var headLines = 0
    private var transferEncoding: [String] = []
    private var contentLengths: [String] = []
    /// Chunk sizes announced so far in the current body.
    private var announced = 0

    /// A head, or a chunk-size or trailer line, longer than this is left to the decoder (which has
    /// its own limits).
    static let longestHead = 256 * 1024
    static let longestLine = 4 * 1024

    init(maxBodyBytes: Int) {
        self.maxBodyBytes = maxBodyBytes
    }

    /// Put among Hummingbird's extra handlers: places a ``ChunkSizeLimit`` right before NIO's
    /// request decoder, where the raw bytes are.
    static func installer(maxBodyBytes: Int) -> NextToRequestDecoder {
        NextToRequestDecoder(.before) { ChunkSizeLimit(maxBodyBytes: maxBodyBytes) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard state != .off else { return context.fireChannelRead(data) }
        let bytes = unwrapInboundIn(data).readableBytesView
        var refused = false
        var index = bytes.startIndex
        while index < bytes.endIndex, state != .off {
            switch state {
            case .chunkData(let left):
                let taken = min(left, bytes.endIndex - index)
                index += taken
                state = left == taken ? .chunkDataEnd : .chunkData(left - taken)
            case .fixed(let left):
                let taken = min(left, bytes.endIndex - index)
                index += taken
                state = left == taken ? .head : .fixed(left - taken)
            case .chunkDataEnd:
                if bytes[index] == UInt8(ascii: "\n") { state = .chunkSize }
                index += 1
            case .head, .chunkSize, .trailers:
                let byte = bytes[index]
                index += 1
                if byte != UInt8(ascii: "\n") {
                    line.append(byte)
                    if state == .head { headBytes += 1 }
                    // A head's lines are bounded by the head's size (a long cookie is fine).
                    if state == .head ? headBytes > Self.longestHead : line.count > Self.longestLine { state = .off }
                    continue
                }
                if line.last == UInt8(ascii: "\r") { line.removeLast() }
                refused = endOfLine()
                line = []
                if refused { state = .off }
            case .off:
                break
            }
        }
        context.fireChannelRead(data)
        // After the bytes that carried the size line: the head and the body so far reach the route
        // first, then the end of its body stream, as the error a body over the limit gets.
        if refused { context.fireErrorCaught(HTTPError(.contentTooLarge)) }
    }

    /// A whole line was read (in ``line``, without its line end); true when it refuses the body.
    private func endOfLine() -> Bool {
        switch state {
        case .head:
            if line.isEmpty {
                // Empty lines before a request line are skipped (RFC 9112 §2.2), as the parser does.
                if headLines == 0 { return false }
                startBody()
                return false
            }
            headLines += 1
            if headLines == 1 { return false }  // the request line
            guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else { return false }
            let name = String(decoding: line[..<colon], as: UTF8.self).lowercased()
            let value = String(decoding: line[(colon + 1)...], as: UTF8.self)
            if name == "transfer-encoding" { transferEncoding += value.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).lowercased() } }
            if name == "content-length" { contentLengths.append(value.trimmingCharacters(in: .whitespaces)) }
            return false
        case .chunkSize:
            // Hex digits, then an extension (`;name=value`) or whitespace, which are not read.
            var size = 0
            var digits = 0
            for byte in line {
                guard let digit = Self.hexValue(byte) else { break }
                let (shifted, overflow) = size.multipliedReportingOverflow(by: 16)
                guard !overflow else { state = .off; return false }  // the parser's "overflow", a 400
                size = shifted + digit
                digits += 1
            }
            guard digits > 0 else { state = .off; return false }  // not hex: the parser's 400
            if size == 0 {
                state = .trailers
                return false
            }
            let (total, overflow) = announced.addingReportingOverflow(size)
            if overflow || total > maxBodyBytes { return true }
            announced = total
            state = .chunkData(size)
            return false
        case .trailers:
            if line.isEmpty { resetHead() }
            return false
        default:
            return false
        }
    }

    /// The head is whole: what its framing headers say comes next.
    private func startBody() {
        let codings = transferEncoding
        let lengths = contentLengths
        resetHead()
        if !codings.isEmpty {
            // Only `chunked` last is followed; anything else is refused by RequestHeadCheck or the
            // parser, and the connection closes.
            state = codings.last == "chunked" && lengths.isEmpty ? .chunkSize : .off
            announced = 0
            return
        }
        guard let first = lengths.first else { return }
        guard Set(lengths).count == 1, let length = Int(first), length >= 0 else {
            state = .off  // the parser's 400
            return
        }
        state = length == 0 ? .head : .fixed(length)
    }

    private func resetHead() {
        state = .head
        headBytes = 0
        headLines = 0
        transferEncoding = []
        contentLengths = []
    }

    private static func hexValue(_ byte: UInt8) -> Int? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): Int(byte - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): Int(byte - UInt8(ascii: "a")) + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): Int(byte - UInt8(ascii: "A")) + 10
        default: nil
        }
    }
}
