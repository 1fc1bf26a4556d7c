import APIServer
import EngineRuntime
import Foundation
import ServingEngine
import Testing

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// A live ``APIServer`` on 127.0.0.1 over a real ``EngineHost`` (what `xds serve` wires), with a
/// small client. The caller owns the host (starts and stops it).
struct HostServer {
    static let token = "host-token-0123456789"
    let baseURL: URL
    let session: URLSession
    var port: Int { baseURL.port ?? 0 }

    static func with(host: EngineHost, _ body: (HostServer) async throws -> Void) async throws {
        let server = APIServer(configuration: .init(adminToken: token), link: host, backend: host)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await server.run() }
            let port = try await server.boundPort()
            let configuration = URLSessionConfiguration.ephemeral
            configuration.timeoutIntervalForRequest = 30
            let live = HostServer(
                baseURL: try #require(URL(string: "http://127.0.0.1:\(port)")),
                session: URLSession(configuration: configuration))
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

    func request(_ method: String, _ path: String, body: Data? = nil, token: String? = nil) async throws
        -> LiveServer.Reply
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
        return LiveServer.Reply(status: http.statusCode, body: data, headers: [:])
    }

    func get(_ path: String, token: String? = nil) async throws -> LiveServer.Reply {
        try await request("GET", path, token: token)
    }

    func post(_ path: String, json: [String: Any], token: String? = nil) async throws -> LiveServer.Reply {
        try await request("POST", path, body: try JSONSerialization.data(withJSONObject: json), token: token)
    }

    /// `POST /admin/commands` with this line.
    func command(_ line: String) async throws -> LiveServer.Reply {
        try await post("/admin/commands", json: ["command": line], token: Self.token)
    }

    /// The simulated time of the published snapshot, read through the admin API.
    func simTime() async throws -> Double {
        let state = try await get("/admin/state", token: Self.token)
        return try #require(try state.json()["simTime"] as? Double, "\(state.text)")
    }
}
