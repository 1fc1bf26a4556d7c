import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// A loopback TCP server that answers with exactly the bytes a test scripts, for what a real
/// `xds serve` never does: hang up mid-answer, send a malformed event stream, answer with
/// something that is not HTTP, or say nothing at all. Each connection runs on a thread of its own:
/// the server reads the request (head and Content-Length body), records it, and hands the
/// connection to `script` with the connection's number (0, 1, …). The connection closes when the
/// script returns.
///
/// ```swift
/// let server = try ScriptedServer { request, connection, number in
///     connection.write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
/// }
/// defer { server.close() }
/// ```
final class ScriptedServer: @unchecked Sendable {
    final class Connection: @unchecked Sendable {
        fileprivate let fd: Int32
        fileprivate init(fd: Int32) { self.fd = fd }

        func write(_ text: String) {
            let bytes = Array(text.utf8)
            _ = bytes.withUnsafeBufferPointer { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        }

        /// Blocks until the client hangs up (or `seconds` pass): a stream kept open.
        func waitForHangUp(seconds: Int = 20) {
            var timeout = timeval(tv_sec: seconds, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            var buffer = [UInt8](repeating: 0, count: 512)
            while recv(fd, &buffer, buffer.count, 0) > 0 {}
        }
    }

    let port: Int
    private let listener: Int32
    private let recorded = Mutex<[String]>([])
    private let closed = Mutex(false)

    /// Requests as received (head and body, CRLFs kept), in arrival order.
    var requests: [String] { recorded.withLock { $0 } }

    init(script: @escaping @Sendable (_ request: String, _ connection: Connection, _ number: Int) -> Void) throws {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.listener = listener
        var yes: Int32 = 1
        setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(listener, $0, length) == 0 && listen(listener, 16) == 0 && getsockname(listener, $0, &length) == 0
            }
        }
        guard bound else {
            Glibc.close(listener)
            throw POSIXError(.EADDRNOTAVAIL)
        }
        port = Int(UInt16(bigEndian: address.sin_port))
        let thread = Thread { [self] in
            var number = 0
            while true {
                let fd = accept(listener, nil, nil)
                if fd < 0 { return }
                let index = number
                number += 1
                let handler = Thread { [self] in
                    let request = Self.readRequest(fd)
                    recorded.withLock { $0.append(request) }
                    script(request, Connection(fd: fd), index)
                    Glibc.close(fd)
                }
                handler.start()
            }
        }
        thread.start()
    }

    /// Stops accepting; connections already running finish their scripts.
    func close() {
        let wasClosed = closed.withLock { closed in
            defer { closed = true }
            return closed
        }
        guard !wasClosed else { return }
        shutdown(listener, Int32(SHUT_RDWR))
        Glibc.close(listener)
    }

    deinit { close() }

    /// A port nothing listens on (bound for a moment, then released).
    static func unusedPort() throws -> Int {
        let server = try ScriptedServer { _, _, _ in }
        server.close()
        return server.port
    }

    private static func readRequest(_ fd: Int32) -> String {
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        let separator = Array("\r\n\r\n".utf8)
        while true {
            if let end = received.firstRange(of: separator)?.upperBound {
                let head = String(decoding: received[..<end], as: UTF8.self).lowercased()
                let length = head.split(separator: "\r\n")
                    .first { $0.hasPrefix("content-length:") }
                    .flatMap { Int($0.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) } ?? 0
                if received.count >= end + length { break }
            }
            let count = recv(fd, &buffer, buffer.count, 0)
            if count <= 0 { break }
            received.append(contentsOf: buffer[0..<count])
        }
        return String(decoding: received, as: UTF8.self)
    }
}
