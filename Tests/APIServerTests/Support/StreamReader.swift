import Foundation
import Synchronization

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// Reads a response body as it arrives (for streams that never end, or that the test abandons
/// midway), through URLSession's delegate callbacks.
final class StreamReader: NSObject, URLSessionDataDelegate, @unchecked Sendable {
    // The delegate queue writes, the test reads: all access goes through the mutex.
    private let received = Mutex<(status: Int?, data: Data)>((nil, Data()))
    private var session: URLSession!
    private var task: URLSessionDataTask!

    init(_ request: URLRequest) {
        super.init()
        let configuration = URLSessionConfiguration.ephemeral
        configuration.timeoutIntervalForRequest = 30  // generous: parallel tests share two cores
        session = URLSession(configuration: configuration, delegate: self, delegateQueue: nil)
        task = session.dataTask(with: request)
        task.resume()
    }

    var text: String { received.withLock { String(decoding: $0.data, as: UTF8.self) } }
    var status: Int? { received.withLock { $0.status } }

    /// Closes the connection, as a client that goes away would.
    func disconnect() {
        task.cancel()
        session.invalidateAndCancel()
    }

    func urlSession(
        _ session: URLSession, dataTask: URLSessionDataTask, didReceive response: URLResponse,
        completionHandler: @escaping (URLSession.ResponseDisposition) -> Void
    ) {
        received.withLock { $0.status = (response as? HTTPURLResponse)?.statusCode }
        completionHandler(.allow)
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive data: Data) {
        received.withLock { $0.data.append(data) }
    }
}
