import APIServer
import Foundation

/// Runs `server` on its loopback port for the duration of `body` (given the port and
/// `http://127.0.0.1:PORT`), then stops it, whether `body` returns or throws. The live-server
/// tests of the API and the console share it, so each states only what it sends.
///
/// ```swift
/// try await whileServing(APIServer(configuration: .init(adminToken: "tok"), link: host, backend: host)) { port, base in
///     let remote = RemoteEngineLink(baseURL: base, token: "tok")
/// }
/// ```
public func whileServing(_ server: APIServer, _ body: (_ port: Int, _ base: URL) async throws -> Void) async throws {
    try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await server.run() }
        do {
            let port = try await server.boundPort()
            guard let base = URL(string: "http://127.0.0.1:\(port)") else { throw URLError(.badURL) }
            try await body(port, base)
        } catch {
            group.cancelAll()
            throw error
        }
        group.cancelAll()
    }
}
