import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A bare TCP connection to the test server, for the one thing URLSession cannot promise: closing
/// the socket mid-response, exactly when the test says (libcurl may keep a cancelled connection
/// around). Blocking calls run on a Dispatch thread, never on the test's cooperative threads.
final class RawConnection: @unchecked Sendable {
    private let fd: Int32

    /// `readTimeout`: seconds a read waits for more bytes before giving up.
    init(port: Int, readTimeout: Int = 2) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard result == 0 else {
            Glibc.close(fd)
            throw POSIXError(.ECONNREFUSED)
        }
        // Reads give up after a few seconds so a broken server cannot hang the test.
        var timeout = timeval(tv_sec: readTimeout, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        // So do sends, to a server that stopped reading (``send(all:)``).
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    /// Sends a POST with a JSON body.
    func post(_ path: String, json: String) {
        let request =
            "POST \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            + "Content-Length: \(json.utf8.count)\r\n\r\n\(json)"
        _ = request.withCString { send(fd, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
    }

    /// Runs a blocking read or write on a thread of its own. Dispatch's global queue is as wide
    /// as the machine (two threads here): in the full suite, other tests' blocking reads held both
    /// and a read queued behind them began seconds late, so a test that timed the server's answer
    /// measured the queue instead (a 1 s header timeout came out as 10 s).
    static func onThreadOfItsOwn(_ work: @escaping @Sendable () -> Void) {
        Thread.detachNewThread(work)
    }

    /// Sends bytes exactly as given (a hand-made request, malformed on purpose).
    func write(raw: String) {
        let bytes = Array(raw.utf8)
        _ = bytes.withUnsafeBufferPointer { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    }

    /// Reads until the received text contains `marker` (or 2 s pass); returns what was read.
    func read(until marker: String) async -> String {
        await withCheckedContinuation { continuation in
            Self.onThreadOfItsOwn { [fd] in
                var received = Data()
                var buffer = [UInt8](repeating: 0, count: 4096)
                while !String(decoding: received, as: UTF8.self).contains(marker) {
                    let count = recv(fd, &buffer, buffer.count, 0)
                    if count <= 0 { break }
                    received.append(contentsOf: buffer[0..<count])
                }
                continuation.resume(returning: String(decoding: received, as: UTF8.self))
            }
        }
    }

    /// Sends these bytes exactly (a header with bytes that are not UTF-8).
    func write(bytes: [UInt8]) {
        _ = bytes.withUnsafeBufferPointer { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    }

    /// Sends all of `bytes` before returning, as a client that writes its whole request before it
    /// reads (Python's urllib); false if the server stopped taking them (a send timed out or failed).
    /// Blocking: call it from a thread of its own (``sendAllOffPool(_:)``).
    func sendAll(_ bytes: [UInt8]) -> Bool {
        var sent = 0
        while sent < bytes.count {
            let count = bytes.withUnsafeBufferPointer {
                send(fd, $0.baseAddress! + sent, $0.count - sent, Int32(MSG_NOSIGNAL))
            }
            if count <= 0 { return false }
            sent += count
        }
        return true
    }

    /// ``sendAll(_:)`` on a Dispatch thread.
    func sendAllOffPool(_ bytes: [UInt8]) async -> Bool {
        await withCheckedContinuation { continuation in
            Self.onThreadOfItsOwn { continuation.resume(returning: self.sendAll(bytes)) }
        }
    }

    /// As ``readUntilClosed()``, the bytes as they came (no UTF-8 repair of what is not UTF-8).
    func readBytesUntilClosed() async -> [UInt8] {
        await withCheckedContinuation { continuation in
            Self.onThreadOfItsOwn { [fd] in
                var received: [UInt8] = []
                var buffer = [UInt8](repeating: 0, count: 4096)
                var count = recv(fd, &buffer, buffer.count, 0)
                while count > 0 {
                    received.append(contentsOf: buffer[0..<count])
                    count = recv(fd, &buffer, buffer.count, 0)
                }
                continuation.resume(returning: received)
            }
        }
    }

    /// Reads until the server closes the connection or `readTimeout` passes without a byte: what
    /// was read, and whether the server closed it (end of stream or reset) rather than went quiet.
    func readUntilClosed() async -> (text: String, closed: Bool) {
        let (text, ending) = await readToEnd()
        return (text, ending != .quiet)
    }

    /// How a read to the end stopped: the server closed cleanly (FIN), reset the connection, or
    /// went quiet for `readTimeout`.
    enum Ending: Equatable { case closed, reset, quiet }

    /// Reads until the server closes the connection, resets it, or goes quiet: what was read and
    /// which it was (``readUntilClosed()`` counts a reset as closed).
    func readToEnd() async -> (text: String, ending: Ending) {
        await withCheckedContinuation { continuation in
            Self.onThreadOfItsOwn { continuation.resume(returning: self.readToEndBlocking()) }
        }
    }

    /// ``readToEnd()`` on the calling thread. Blocking: for a client's exchange run whole on a
    /// thread of its own (``offPool(_:)``).
    func readToEndBlocking() -> (text: String, ending: Ending) {
        var received = Data()
        var buffer = [UInt8](repeating: 0, count: 4096)
        var count = recv(fd, &buffer, buffer.count, 0)
        while count > 0 {
            received.append(contentsOf: buffer[0..<count])
            count = recv(fd, &buffer, buffer.count, 0)
        }
        let ending: Ending = count == 0 ? .closed : errno == ECONNRESET ? .reset : .quiet
        return (String(decoding: received, as: UTF8.self), ending)
    }

    /// Blocks until some bytes of an answer arrive (or the read times out, or the server hangs
    /// up); for callers on a thread of their own that only need the server to have answered.
    func readSomeBlocking() {
        var buffer = [UInt8](repeating: 0, count: 4096)
        _ = recv(fd, &buffer, buffer.count, 0)
    }

    func close() { Glibc.close(fd) }

    /// Closes with a TCP reset (SO_LINGER 0), as a client killed mid-request does: the server's
    /// next write on the connection fails at once.
    func reset() {
        var option = linger(l_onoff: 1, l_linger: 0)
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &option, socklen_t(MemoryLayout<linger>.size))
        Glibc.close(fd)
    }
}
