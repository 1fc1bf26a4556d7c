import APIServer
import EngineRuntime
import ServingEngine
import Foundation
import Testing
import XDSTestSupport

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// A real ``APIServer`` on 127.0.0.1, port 0, for the duration of one test, with a client for it:
/// over a fake backend and a recording link (``with(backend:link:eventInterval:_:)``), or over a
/// real ``EngineHost``, as `xds serve` wires it (``with(host:engineFeed:_:)``).
/// No HummingbirdTesting (it would pull AsyncHTTPClient and BoringSSL into the build): plain
/// URLSession against a live socket, which also tests what a real client sees.
struct LiveServer {
    static let token = "test-token-0123456789"

    let baseURL: URL
    let session: URLSession
    let api: APIServer
    private let anyBackend: any CompletionBackend
    private let anyLink: any EngineLink
    var port: Int { baseURL.port ?? 0 }

    /// The fake backend of a server started with ``with(backend:link:eventInterval:_:)`` (a test
    /// over a real host that asks for it is wrong, and stops here).
    var backend: FakeCompletionBackend { anyBackend as! FakeCompletionBackend }
    /// The recording link of a server started with ``with(backend:link:eventInterval:_:)``.
    var link: RecordingEngineLink { anyLink as! RecordingEngineLink }

    /// Runs `body` against a fresh server over a fake backend and stops the server afterwards,
    /// whatever happens.
    static func with(
        backend: FakeCompletionBackend = FakeCompletionBackend(),
        link: RecordingEngineLink = RecordingEngineLink(),
        eventInterval: Duration = .milliseconds(50), readTimeouts: APIServer.ReadTimeouts = .init(),
        maxConnections: Int? = nil, _ body: (LiveServer) async throws -> Void
    ) async throws {
        var configuration = APIServer.Configuration(
            adminToken: token, adminEventInterval: eventInterval, readTimeouts: readTimeouts)
        configuration.maxConnections = maxConnections
        try await serve(configuration: configuration, link: link, backend: backend, engineFeed: nil, body)
    }

    /// Runs `body` against a fresh server over a real engine host. The caller owns the host (starts
    /// and stops it); `engineFeed` is the engine's feed when the test wired one (the
    /// whole-engine `vllm:` metrics).
    static func with(
        host: EngineHost, engineFeed: EngineFeed? = nil, _ body: (LiveServer) async throws -> Void
    ) async throws {
        try await serve(
            configuration: .init(adminToken: token), link: host, backend: host, engineFeed: engineFeed,
            body)
    }

    private static func serve(
        configuration: APIServer.Configuration, link: any EngineLink, backend: any CompletionBackend,
        engineFeed: EngineFeed?, _ body: (LiveServer) async throws -> Void
    ) async throws {
        // The server's tasks run on threads of their own, not on the cooperative pool that the
        // other suites hold (``ServerThreads``); so does the task that runs it.
        var configuration = configuration
        configuration.taskExecutor = ServerThreads.shared
        let server = APIServer(
            configuration: configuration, link: link, backend: backend, engineFeed: engineFeed)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask(executorPreference: ServerThreads.shared) { try await server.run() }
            let port = try await server.boundPort()
            let sessionConfiguration = URLSessionConfiguration.ephemeral
            sessionConfiguration.timeoutIntervalForRequest = 30  // generous: parallel tests share two cores
            sessionConfiguration.httpMaximumConnectionsPerHost = 64
            let live = LiveServer(
                baseURL: try #require(URL(string: "http://127.0.0.1:\(port)")),
                session: URLSession(configuration: sessionConfiguration), api: server, anyBackend: backend,
                anyLink: link)
            defer { live.session.invalidateAndCancel() }
            do {
                try await body(live)
            } catch {
                group.cancelAll()
                throw error
            }
            group.cancelAll()
        }
    }

    struct Reply {
        var status: Int
        var body: Data
        var headers: [String: String]
        var text: String { String(decoding: body, as: UTF8.self) }
        func json() throws -> [String: Any] {
            // Said with the status and headers: a body that was not JSON at all (once, empty, in
            // a loaded full run) left only the parser's "unexpected end of file" to go on.
            let object: Any
            do {
                object = try JSONSerialization.jsonObject(with: body)
            } catch {
                Issue.record("HTTP \(status), \(body.count) bytes, headers \(headers): not JSON: \(text)")
                throw error
            }
            return try #require(object as? [String: Any], "not a JSON object: \(text)")
        }
    }

    func request(_ method: String, _ path: String, body: Data? = nil, token: String? = nil) async throws
        -> Reply
    {
        var request = URLRequest(url: baseURL.appendingPathComponent(path))
        request.httpMethod = method
        if let body {
            request.httpBody = body
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        }
        if let token { request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
        let (data, response) = try await session.data(for: request)
        let http = try #require(response as? HTTPURLResponse)
        var headers: [String: String] = [:]
        for (key, value) in http.allHeaderFields {
            if let key = key as? String, let value = value as? String { headers[key.lowercased()] = value }
        }
        return Reply(status: http.statusCode, body: data, headers: headers)
    }

    func get(_ path: String, token: String? = nil) async throws -> Reply {
        try await request("GET", path, token: token)
    }

    func post(_ path: String, json: [String: Any], token: String? = nil) async throws -> Reply {
        try await request("POST", path, body: try JSONSerialization.data(withJSONObject: json), token: token)
    }

    func post(_ path: String, raw: String, token: String? = nil) async throws -> Reply {
        try await request("POST", path, body: Data(raw.utf8), token: token)
    }

    /// `POST /admin/commands` with this line.
    func command(_ line: String) async throws -> Reply {
        try await post("/admin/commands", json: ["command": line], token: Self.token)
    }

    /// The simulated time of the published snapshot, read through the admin API.
    func simTime() async throws -> Double {
        let state = try await get("/admin/state", token: Self.token)
        return try #require(try state.json()["simTime"] as? Double, "\(state.text)")
    }
}

/// Waits until `condition` holds, checking every 10 ms, for at most `seconds`. Generous on purpose:
/// in a full `swift test` other suites can hold both cooperative threads for seconds, starving the
/// server's handlers too; a passing condition returns at once anyway.
func eventually(within seconds: Double = 20, _ condition: () -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
    while ContinuousClock.now < deadline {
        if condition() { return true }
        try? await Task.sleep(for: .milliseconds(10))
    }
    return condition()
}
