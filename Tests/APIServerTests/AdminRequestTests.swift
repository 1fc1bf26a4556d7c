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
        let (host, server) = try toyPodAdmin(rate: 30)
        defer { _ = host.stop() }
        #expect(await eventually { host.latestSnapshot().requests.inFlight > 5 && host.latestSnapshot().requests.completed > 0 })
        #expect(host.send(commandLine: "pause").accepted)
        // The reply comes before the next snapshot is published: wait for a paused one (not a
        // fixed sleep, which a loaded machine outlasted), so the counts below stay still.
        #expect(await eventually { host.latestSnapshot().paused })
        try await whileServing(server) { _, base in
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

    /// The read routes check their query string whole: a name given twice was answered with the
    /// first, a misspelt one ignored (a default answered in its place); both are 400s naming the
    /// parameter now. A control character in an echoed value is spelt out, never sent raw.
    @Test func queryStringsAreCheckedWhole() async throws {
        let (host, server) = try toyPodAdmin(rate: 30)
        defer { _ = host.stop() }
        #expect(await eventually { host.latestSnapshot().requests.inFlight > 5 })
        #expect(host.send(commandLine: "pause").accepted)
        // The reply comes before the next snapshot is published: wait for a paused one (not a
        // fixed sleep, which a loaded machine outlasted), so the counts below stay still.
        #expect(await eventually { host.latestSnapshot().paused })
        try await whileServing(server) { _, base in
            func error(_ body: [String: Any]) -> [String: Any] { body["error"] as? [String: Any] ?? [:] }
            let takes = "GET /admin/requests takes sort, reverse, filter, offset, limit"
            let cases: [(String, message: String, param: String, code: String)] = [
                ("admin/requests?limit=5&limit=7",
                 "query parameter 'limit' is given 2 times; GET /admin/requests takes each parameter once", "limit",
                 "duplicate_parameter"),
                ("admin/requests?sort=id&limit=5&sort=age&sort=id",
                 "query parameter 'sort' is given 3 times; GET /admin/requests takes each parameter once", "sort",
                 "duplicate_parameter"),
                ("admin/requests?limmit=5", "unknown query parameter 'limmit': \(takes)", "limmit", "unknown_parameter"),
                ("admin/requests?limit=5&=3", "unknown query parameter '': \(takes)", "", "unknown_parameter"),
                ("admin/state?x=1", "unknown query parameter 'x': GET /admin/state takes no query parameters", "x",
                 "unknown_parameter"),
                ("admin/events?since=0", "unknown query parameter 'since': GET /admin/events takes no query parameters",
                 "since", "unknown_parameter"),
                ("admin/requests/1?verbose=1",
                 "unknown query parameter 'verbose': GET /admin/requests/{id} takes no query parameters", "verbose",
                 "unknown_parameter"),
                ("admin/requests?limit=%00", "limit must be a whole number within 1…1000, got '\\u{0}'", "limit",
                 "invalid_parameter"),
                ("admin/requests?offset=1%0D%0A2", "offset must be a whole number within 0…10000000, got '1\\u{D}\\u{A}2'",
                 "offset", "invalid_parameter"),
                // %-escapes that are not UTF-8 were read as U+FFFD: `filter=%FF` filtered for '�'.
                ("admin/requests?filter=ab%FF", "query parameter 'filter' is not UTF-8 text once its %-escapes are undone "
                 + "(got 'ab%FF')", "filter", "invalid_parameter"),
                ("admin/requests?sort=%C3", "query parameter 'sort' is not UTF-8 text once its %-escapes are undone "
                 + "(got '%C3')", "sort", "invalid_parameter"),
            ]
            for (path, message, param, code) in cases {
                let (status, body) = try await Self.get(URL(string: "\(base)/\(path)")!, token: "tok")
                let e = error(body)
                #expect(status == 400, "\(path): \(body)")
                #expect(e["message"] as? String == message && e["param"] as? String == param
                    && e["code"] as? String == code, "\(path): \(body)")
                let echoed = e["message"] as? String ?? ""
                #expect(!echoed.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7F }, "\(path) echoed a control character")
            }
            // Well-formed queries answer as before (an empty pair, as from a trailing `&`, names nothing).
            let (plain, page) = try await Self.get(URL(string: "\(base)/admin/requests?sort=id&limit=3")!, token: "tok")
            let (trailing, same) = try await Self.get(URL(string: "\(base)/admin/requests?sort=id&&limit=3&")!, token: "tok")
            #expect(plain == 200 && trailing == 200)
            #expect(NSDictionary(dictionary: page) == NSDictionary(dictionary: same))
            #expect((page["rows"] as? [[String: Any]])?.count == 3)
            let (accented, _) = try await Self.get(URL(string: "\(base)/admin/requests?filter=%C3%A9")!, token: "tok")
            #expect(accented == 200)
            let (state, _) = try await Self.get(base.appendingPathComponent("admin/state"), token: "tok")
            #expect(state == 200)
        }
    }

    /// An id past the largest request id was told it "must be a whole number ≥ 0", which it is;
    /// the message now gives the range. Hostile ids get one 400 each, naming the id.
    @Test func requestIDsOutOfRangeAreRefusedWithTheRange() async throws {
        try await LiveServer.with { server in
            let range = "request id must be a whole number within 0…\(Int.max)"
            // A sign is not a digit: "+5" and "-0" were read as ids 5 and 0 (Swift's Int() takes a sign).
            for id in ["99999999999999999999", "9223372036854775808", "-1", "abc", "1e3", "%E9", "+5", "-0", "%2B5",
                       String(repeating: "9", count: 5000)] {
                let reply = try await server.get("/admin/requests/\(id)", token: LiveServer.token)
                #expect(reply.status == 400, "\(id.prefix(30)): \(reply.text)")
                let error = try #require(try reply.json()["error"] as? [String: Any])
                let message = try #require(error["message"] as? String)
                #expect(message.hasPrefix(range + ", got '"), "\(message)")
                #expect(error["param"] as? String == "id" && error["code"] as? String == "invalid_parameter")
                #expect(message.count < 200, "\(message)")
            }
        }
    }
}
