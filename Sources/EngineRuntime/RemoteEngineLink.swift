import Foundation
import ServingEngine
import Synchronization

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// An ``EngineLink`` to a running `xds serve`: snapshots from the admin event stream
/// (`GET /admin/events`, server-sent events), commands through `POST /admin/commands`.
///
/// When the stream drops, the last snapshot stays on screen marked "reconnecting…" (its
/// `linkStatus`) and the link retries every second.
///
/// ```swift
/// let link = RemoteEngineLink(baseURL: URL(string: "http://127.0.0.1:8000")!, token: "T")
/// link.start()
/// ConsoleApp.run(link: link)
/// link.stop()
/// ```
public final class RemoteEngineLink: NSObject, EngineLink, URLSessionDataDelegate, @unchecked Sendable {
    public let baseURL: URL
    let token: String
    public let capabilities: Set<EngineCapability> = [.drain, .speed, .rebalance]

    private struct State {
        var snapshot = Snapshot()
        var events = ServerSentEventReader()
        var connected = false
        var stopped = false
        var lastError: String?
    }
    private let state = Mutex(State())
    // Touched only by the reconnect thread.
    private var session: URLSession?

    public init(baseURL: URL, token: String) {
        self.baseURL = baseURL
        self.token = token
        super.init()
        state.withLock { $0.snapshot.linkStatus = "connecting to \(baseURL.absoluteString)…" }
    }

    public func start() {
        let thread = Thread { [self] in
            while !state.withLock({ $0.stopped }) {
                if !state.withLock({ $0.connected }) { connect() }
                Thread.sleep(forTimeInterval: 1)
            }
        }
        thread.name = "xds-remote-link"
        thread.start()
    }

    public func stop() {
        state.withLock { $0.stopped = true }
        session?.invalidateAndCancel()
    }

    public func latestSnapshot() -> Snapshot { state.withLock { $0.snapshot } }

    public func send(commandLine: String) -> CommandReply {
        if case .failure(let error) = OperatorCommand.parse(commandLine) {
            return CommandReply(accepted: false, message: error.message)
        }
        var request = URLRequest(url: baseURL.appendingPathComponent("admin/commands"))
        request.httpMethod = "POST"
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization")
        request.httpBody = try? JSONEncoder().encode(AdminCommandBody(command: commandLine))
        request.timeoutInterval = 10
        let reply = Mutex(CommandReply(accepted: false, message: "no answer from \(baseURL.absoluteString)"))
        let done = DispatchSemaphore(value: 0)
        URLSession.shared.dataTask(with: request) { data, _, error in
            defer { done.signal() }
            if let error { reply.withLock { $0.message = "not connected to \(self.baseURL.absoluteString): \(Self.explain(error))" }; return }
            guard let data, let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return }
            if let accepted = object["accepted"] as? Bool {
                reply.withLock { $0 = CommandReply(accepted: accepted, message: object["message"] as? String ?? "") }
            } else if let error = object["error"] as? [String: Any] {
                reply.withLock { $0 = CommandReply(accepted: false, message: error["message"] as? String ?? "rejected") }
            }
        }.resume()
        done.wait()
        return reply.withLock { $0 }
    }

    // MARK: The event stream

    private func connect() {
        var request = URLRequest(url: baseURL.appendingPathComponent("admin/events"))
        request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization")
        request.timeoutInterval = 30
        session?.invalidateAndCancel()
        let configuration = URLSessionConfiguration.ephemeral
        configuration.timeoutIntervalForRequest = 30
        let session = URLSession(configuration: configuration, delegate: self, delegateQueue: nil)
        self.session = session
        state.withLock {
            $0.connected = true
            $0.events = ServerSentEventReader()
        }
        session.dataTask(with: request).resume()
    }

    private func lost(_ why: String) {
        state.withLock {
            $0.connected = false
            $0.snapshot.linkStatus = "\(why) — reconnecting…"
        }
    }

    public func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive response: URLResponse,
                           completionHandler: @escaping (URLSession.ResponseDisposition) -> Void) {
        let status = (response as? HTTPURLResponse)?.statusCode ?? 0
        if status != 200 {
            lost(status == 401 ? "wrong admin token" : "HTTP \(status)")
            completionHandler(.cancel)
            return
        }
        completionHandler(.allow)
    }

    public func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive data: Data) {
        let events = state.withLock { $0.events.feed(data) }
        for event in events where event.name == "snapshot" {
            guard let snapshot = Self.decode(event.data) else { continue }
            state.withLock { $0.snapshot = snapshot }
        }
    }

    public func urlSession(_ session: URLSession, task: URLSessionTask, didCompleteWithError error: Error?) {
        // A refusal (401, HTTP error) has already said why; keep that message.
        guard !state.withLock({ $0.stopped || !$0.connected }) else { return }
        lost(error == nil ? "stream ended" : "disconnected")
    }

    /// A connection failure in words, not Foundation's error dump.
    static func explain(_ error: any Error) -> String {
        guard let error = error as? URLError else { return "the request failed" }
        switch error.code {
        case .cannotConnectToHost: return "connection refused (is xds serve running there?)"
        case .timedOut: return "no answer in time"
        case .cannotFindHost, .dnsLookupFailed: return "the host name does not resolve"
        case .networkConnectionLost: return "the connection was lost"
        case .notConnectedToInternet: return "no network"
        case .badURL, .unsupportedURL: return "not a usable URL"
        case .cancelled: return "cancelled"
        default: return "the request failed (URL error \(error.code.rawValue))"
        }
    }

    /// Snapshot JSON as the admin API writes it (NaN and infinities as strings).
    static func decode(_ json: String) -> Snapshot? {
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(
            positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        return try? decoder.decode(Snapshot.self, from: Data(json.utf8))
    }
}

/// The body of `POST /admin/commands` (interfaces.md): `{"command": "drain node 5"}`.
struct AdminCommandBody: Encodable {
    var command: String
}
