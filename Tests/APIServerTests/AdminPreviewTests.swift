import APIServer
import EngineRuntime
import Foundation
import ServingEngine
import Testing
import XDSTestSupport

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// `POST /admin/preview` (issue 16) on a live engine, directly and through a remote console's link.
@Suite(.serialized, .timeLimit(.minutes(10)))
struct AdminPreviewTests {
    static func post(_ base: URL, _ body: [String: Any], token: String?) async throws -> (Int, [String: Any]) {
        var request = URLRequest(url: base.appendingPathComponent("admin/preview"))
        request.httpMethod = "POST"
        request.httpBody = try JSONSerialization.data(withJSONObject: body)
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        if let token { request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
        request.timeoutInterval = 120
        let (data, response) = try await URLSession.shared.data(for: request)
        let object = (try? JSONSerialization.jsonObject(with: data) as? [String: Any]) ?? [:]
        return ((response as? HTTPURLResponse)?.statusCode ?? 0, object)
    }

    @Test func previewOverHTTPAndFromARemoteConsole() async throws {
        var config = EngineConfiguration(deployment: TestDeployments.toyPod, seed: 3, syntheticRate: 8)
        config.expertSkew = false
        let host = EngineHost(core: try ServingEngine(configuration: config), speed: 20, publishInterval: 0.05)
        host.start()
        defer { _ = host.stop() }
        let server = APIServer(configuration: .init(adminToken: "tok", adminEventInterval: .milliseconds(50)),
                               link: host, backend: host)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await server.run() }
            let port = try await server.boundPort()
            let base = URL(string: "http://127.0.0.1:\(port)")!
            try await Task.sleep(for: .milliseconds(100))

            let (status, body) = try await Self.post(base, ["command": "drain node 1", "duration": "1m"], token: "tok")
            #expect(status == 200, "\(body)")
            #expect(body["command"] as? String == "drain node 1")
            #expect(body["duration_s"] as? Double == 60)
            #expect((body["wall_seconds"] as? Double ?? 0) > 0)
            for key in ["baseline", "with_command"] {
                let side = try #require(body[key] as? [String: Any], "\(key)")
                #expect(Set(side.keys) == ["requests", "latency_ms", "slo", "throughput", "kv"])
            }
            #expect(host.commandLog.isEmpty, "a preview is not a command")
            #expect(host.latestSnapshot().drainedNodes.isEmpty, "the live engine was not drained")

            let (rejected, reason) = try await Self.post(base, ["command": "drain node 999"], token: "tok")
            #expect(rejected == 400)
            #expect(((reason["error"] as? [String: Any])?["message"] as? String)?.contains("would reject") == true)
            let (tooLong, _) = try await Self.post(base, ["command": "drain node 1", "duration": "2h"], token: "tok")
            #expect(tooLong == 400)
            let (nested, _) = try await Self.post(base, ["command": "preview drain node 1"], token: "tok")
            #expect(nested == 400)
            let (unauthorised, _) = try await Self.post(base, ["command": "drain node 1"], token: nil)
            #expect(unauthorised == 401)

            // `xds console --connect`: the remote link previews through the same endpoint.
            let remote = RemoteEngineLink(baseURL: base, token: "tok")
            // The link blocks its thread until answered: off the cooperative pool the server needs.
            let first = try await offPool { remote.preview(commandLine: "preview drain node 0 for 30s", progress: { _ in }) }
            guard case .success(let result) = first
            else {
                Issue.record("remote preview refused")
                group.cancelAll()
                return
            }
            #expect(result.command == "drain node 0" && result.durationSeconds == 30 && result.wallSeconds > 0)
            let second = try await offPool { remote.preview(commandLine: "preview drain node 999", progress: { _ in }) }
            guard case .failure(let refusal) = second else {
                Issue.record("remote preview of a rejected command was not refused")
                group.cancelAll()
                return
            }
            #expect(refusal.message.contains("would reject"))
            group.cancelAll()
        }
    }
}
