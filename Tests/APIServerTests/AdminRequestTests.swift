import APIServer
import EngineRuntime
import Foundation
import ServingEngine
import Testing
import XDSTestSupport

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// `GET /admin/requests` and `GET /admin/requests/{id}` (issue 13): the engine's request table
/// over HTTP, directly and through a remote console's link.
@Suite(.serialized, .timeLimit(.minutes(10)))
struct AdminRequestTests {
    static func get(_ url: URL, token: String?) async throws -> (Int, [String: Any]) {
        var request = URLRequest(url: url)
        if let token { request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
        request.timeoutInterval = 30
        let (data, response) = try await URLSession.shared.data(for: request)
        let object = (try? JSONSerialization.jsonObject(with: data) as? [String: Any]) ?? [:]
        return ((response as? HTTPURLResponse)?.statusCode ?? 0, object)
    }

    static func message(_ body: [String: Any]) -> String {
        (body["error"] as? [String: Any])?["message"] as? String ?? ""
    }

    @Test func requestTableOverHTTPAndFromARemoteConsole() async throws {
        var config = EngineConfiguration(deployment: TestDeployments.toyPod, seed: 3, syntheticRate: 30)
        config.expertSkew = false
        let host = EngineHost(core: try ServingEngine(configuration: config), speed: 20, publishInterval: 0.05)
        host.start()
        defer { _ = host.stop() }
        #expect(await eventually { host.latestSnapshot().requests.inFlight > 5 && host.latestSnapshot().requests.completed > 0 })
        #expect(host.send(commandLine: "pause").accepted)
        let server = APIServer(configuration: .init(adminToken: "tok", adminEventInterval: .milliseconds(50)),
                               link: host, backend: host)
        try await whileServing(server) { _, base in
            try await Task.sleep(for: .milliseconds(100))
            let inFlight = host.latestSnapshot().requests.inFlight

            let (status, page) = try await Self.get(URL(string: "\(base)/admin/requests?sort=id&limit=3&offset=1")!, token: "tok")
            #expect(status == 200, "\(page)")
            #expect(page["inFlight"] as? Int == inFlight && page["matching"] as? Int == inFlight)
            let rows = try #require(page["rows"] as? [[String: Any]])
            #expect(rows.count == min(3, inFlight - 1))
            let ids = rows.compactMap { $0["id"] as? Int }
            #expect(ids == ids.sorted())

            let id = try #require(ids.first)
            let (found, detail) = try await Self.get(base.appendingPathComponent("admin/requests/\(id)"), token: "tok")
            #expect(found == 200 && detail["id"] as? Int == id && detail["arrivedAt"] != nil, "\(detail)")

            for (query, problem) in [("limit=0", "limit must be a whole number within 1…1000, got '0'"),
                                     ("offset=-5", "offset must be a whole number within 0…10000000, got '-5'"),
                                     ("sort=colour", "sort must be one of age, stage, tokens, id, prompt, ttft, got 'colour'"),
                                     ("reverse=yes", "reverse must be 0 or 1, got 'yes'")] {
                let (bad, body) = try await Self.get(URL(string: "\(base)/admin/requests?\(query)")!, token: "tok")
                #expect(bad == 400 && Self.message(body) == problem, "\(query): \(body)")
            }
            let (missing, body) = try await Self.get(base.appendingPathComponent("admin/requests/99999999"), token: "tok")
            #expect(missing == 404 && Self.message(body).contains("request 99999999 is unknown"))
            let (notANumber, _) = try await Self.get(base.appendingPathComponent("admin/requests/abc"), token: "tok")
            #expect(notANumber == 400)
            let (unauthorised, _) = try await Self.get(base.appendingPathComponent("admin/requests"), token: nil)
            #expect(unauthorised == 401)
            #expect(host.commandLog.map(\.line) == ["pause"], "queries are not commands")

            // `xds console --connect`: the remote link pages through the same endpoints.
            let remote = RemoteEngineLink(baseURL: base, token: "tok")
            let remotePage = try await offPool { remote.requestPage(RequestQuery(sort: .id, reversed: true, limit: 2)) }
            let local = host.requestPage(RequestQuery(sort: .id, reversed: true, limit: 2))
            #expect(try remotePage.get() == local.get())
            let remoteDetail = try await offPool { remote.requestDetail(id: id) }
            #expect(try remoteDetail.get() == host.requestDetail(id: id).get())
            guard case .failure(let refusal) = try await offPool({ remote.requestDetail(id: 99_999_999) }) else {
                Issue.record("an unknown request was found")
                return
            }
            #expect(refusal.notFound)
        }
    }
}
