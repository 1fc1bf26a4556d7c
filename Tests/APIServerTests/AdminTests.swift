import Foundation
import PodModel
import ServingEngine
import Testing
import XDSTestSupport

@testable import APIServer

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// The admin API: bearer token, snapshot, commands, and the event stream a remote console reads.
@Suite(.serialized, .timeLimit(.minutes(10)))
struct AdminTests {
    @Test func withoutTheRightTokenNothingHappens() async throws {
        try await LiveServer.with { server in
            for token in [nil, "wrong-token", ""] as [String?] {
                let command = try await server.post(
                    "/admin/commands", json: ["command": "drain node 5"], token: token)
                #expect(command.status == 401)
                #expect(command.headers["www-authenticate"] == "Bearer")
                let error = try #require(try command.json()["error"] as? [String: Any])
                #expect(error["type"] as? String == "authentication_error")
                #expect(try await server.get("/admin/state", token: token).status == 401)
                #expect(try await server.get("/admin/events", token: token).status == 401)
            }
            // A raw header that is not a bearer credential is refused too.
            var request = URLRequest(url: server.baseURL.appendingPathComponent("/admin/state"))
            request.setValue(LiveServer.token, forHTTPHeaderField: "Authorization")
            let (_, response) = try await server.session.data(for: request)
            #expect((response as? HTTPURLResponse)?.statusCode == 401)
            #expect(server.link.receivedCommands.isEmpty)
            #expect(server.link.latestSnapshot().drainedNodes.isEmpty)
        }
    }

    @Test func stateIsTheSnapshotAsJSON() async throws {
        try await LiveServer.with { server in
            let reply = try await server.get("/admin/state", token: LiveServer.token)
            #expect(reply.status == 200)
            let snapshot = try JSONDecoder().decode(Snapshot.self, from: reply.body)
            #expect(snapshot == server.link.latestSnapshot())
        }
    }

    @Test func commandsAreSentAndRepliedTo() async throws {
        try await LiveServer.with { server in
            let accepted = try await server.post(
                "/admin/commands", json: ["command": "drain node 1"], token: LiveServer.token)
            #expect(accepted.status == 200)
            let body = try accepted.json()
            #expect(body["accepted"] as? Bool == true)
            #expect((body["message"] as? String)?.contains("drain node 1") == true)
            #expect(server.link.latestSnapshot().drainedNodes == [1])

            let rejected = try await server.post(
                "/admin/commands", json: ["command": "drain nod 1"], token: LiveServer.token)
            #expect(rejected.status == 400)
            let reason = try rejected.json()
            #expect(reason["accepted"] as? Bool == false)
            #expect((reason["message"] as? String)?.isEmpty == false)
            // Beside accepted/message, the `/v1/*` error object (one error shape on every route).
            let error = try #require(reason["error"] as? [String: Any], "\(reason)")
            #expect(error["message"] as? String == reason["message"] as? String)
            #expect(error["type"] as? String == "invalid_request_error")
            #expect(error["param"] as? String == "command" && error["code"] as? String == "command_rejected")
            // Keys sorted (the project's one writer configuration): the same answer is the same
            // bytes in every process.
            #expect(rejected.text.hasPrefix(#"{"accepted":false,"error":{"code":"command_rejected","message":"#),
                    "\(rejected.text)")
            #expect(body["error"] == nil, "an applied command carries no error")
            #expect(server.link.receivedCommands == ["drain node 1", "drain nod 1"])

            let malformed = try await server.post(
                "/admin/commands", json: ["cmd": "x"], token: LiveServer.token)
            #expect(malformed.status == 400)
            #expect(server.link.receivedCommands.count == 2)
        }
    }

    /// A field an admin body does not take was ignored: a misspelt `duration` previewed the
    /// default 10 minutes, a misspelt `command` was blamed as missing. Each is a 400
    /// `unknown_parameter` naming the field and what the route takes; nothing is applied.
    @Test func adminBodiesRefuseFieldsTheyDoNotTake() async throws {
        try await LiveServer.with { server in
            let cases: [(path: String, body: [String: Any], param: String, message: String)] = [
                ("/admin/preview", ["command": "drain node 1", "duraton": "1h"], "duraton",
                 "unknown field 'duraton': POST /admin/preview takes command, duration"),
                ("/admin/commands", ["command": "drain node 1", "dry_run": true], "dry_run",
                 "unknown field 'dry_run': POST /admin/commands takes command"),
                ("/admin/commands", ["cmd": "drain node 1"], "cmd",
                 "unknown field 'cmd': POST /admin/commands takes command"),
            ]
            for (path, body, param, message) in cases {
                let reply = try await server.post(path, json: body, token: LiveServer.token)
                #expect(reply.status == 400, "\(path): \(reply.text)")
                let error = try #require(try reply.json()["error"] as? [String: Any], "\(reply.text)")
                #expect(error["message"] as? String == message, "\(reply.text)")
                #expect(error["param"] as? String == param && error["code"] as? String == "unknown_parameter",
                        "\(reply.text)")
            }
            #expect(server.link.receivedCommands.isEmpty)
            // The fields each route takes are still served.
            #expect(try await server.post("/admin/commands", json: ["command": "drain node 1"], token: LiveServer.token)
                .status == 200)
        }
    }

    @Test func eventStreamSendsSnapshotsAndEachEventOnce() async throws {
        let link = RecordingEngineLink()
        link.log(EngineEvent(time: 0.5, kind: .info, message: "engine started"))
        try await LiveServer.with(link: link, eventInterval: .milliseconds(20)) { server in
            var request = URLRequest(url: server.baseURL.appendingPathComponent("/admin/events"))
            request.setValue("Bearer \(LiveServer.token)", forHTTPHeaderField: "Authorization")
            let reader = StreamReader(request)
            #expect(await eventually { reader.text.contains("engine started") })
            link.log(EngineEvent(time: 2, kind: .fault, severity: .error, message: "fault npu 3"))
            #expect(await eventually { reader.text.contains("fault npu 3") })
            // Frames received whole so far (the stream may stop mid-frame when we disconnect).
            func completeFrames() -> [SSEFrame] {
                let text = reader.text
                guard let end = text.range(of: "\n\n", options: .backwards) else { return [] }
                return parseSSE(String(text[..<end.upperBound]))
            }
            // Wait for three snapshots that came after the fault (not a fixed sleep: under heavy
            // load the 20 ms snapshot interval can stretch to far longer).
            func snapshotsAfterFault() -> Int {
                let frames = completeFrames()
                guard let fault = frames.firstIndex(where: { $0.event == "event" && $0.data.contains("fault npu 3") })
                else { return 0 }
                return frames[fault...].filter { $0.event == "snapshot" }.count
            }
            #expect(await eventually { snapshotsAfterFault() >= 3 })
            reader.disconnect()
            #expect(reader.status == 200)
            let frames = completeFrames()
            let snapshots = frames.filter { $0.event == "snapshot" }
            let events = frames.filter { $0.event == "event" }
            #expect(snapshots.count >= 3)
            #expect(
                try events.map { try JSONDecoder().decode(EngineEvent.self, from: Data($0.data.utf8)).message }
                    == ["engine started", "fault npu 3"])
            let last = try JSONDecoder().decode(
                Snapshot.self, from: Data(try #require(snapshots.last).data.utf8))
            #expect(last.events.count == 2)
        }
    }

    /// `/admin/events` streams were uncapped: a script that opened streams and never read them
    /// held hundreds of connections and writer tasks. At most 64 run at once; one more is a 503
    /// with the error object saying so, and a place frees when a stream's client leaves.
    @Test func eventStreamsAreCappedAndAPlaceFreesWhenOneCloses() async throws {
        try await LiveServer.with(eventInterval: .seconds(1)) { server in
            func open() async throws -> (RawConnection, String) {
                let connection = try RawConnection(port: server.port, readTimeout: 15)  // a busy machine is slow
                connection.write(raw:
                    "GET /admin/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \(LiveServer.token)\r\n\r\n")
                return (connection, await connection.read(until: "\r\n\r\n"))
            }
            var streams: [RawConnection] = []
            defer { streams.forEach { $0.close() } }
            for _ in 0..<AdminEventStream.maxConcurrentStreams {
                let (connection, answer) = try await open()
                streams.append(connection)
                #expect(answer.hasPrefix("HTTP/1.1 200"), "stream \(streams.count): \(answer.prefix(200))")
            }
            let (refused, answer) = try await open()
            let refusal = answer.contains("}}") ? answer : answer + (await refused.read(until: "}}"))
            refused.close()
            #expect(refusal.hasPrefix("HTTP/1.1 503"), "\(refusal)")
            #expect(refusal.contains(#""code":"too_many_streams""#), "\(refusal)")
            #expect(refusal.contains("too many /admin/events streams open (at most 64 at once)"), "\(refusal)")
            // Other routes still answer while the streams hold every place.
            #expect(try await server.get("/admin/state", token: LiveServer.token).status == 200)
            // The server notices a client left at its next write (an interval later).
            streams.removeFirst().close()
            var reopened = false
            let deadline = ContinuousClock.now + .seconds(30)  // generous: a loaded machine is slow
            while !reopened, ContinuousClock.now < deadline {
                let (connection, answer) = try await open()
                reopened = answer.hasPrefix("HTTP/1.1 200")
                if reopened { streams.append(connection) } else { connection.close() }
                if !reopened { try await Task.sleep(for: .milliseconds(200)) }
            }
            #expect(reopened, "no place freed after a stream's client left")
        }
    }

    @Test func ringFollowerReturnsOnlyUnseenEvents() {
        func e(_ n: Int) -> EngineEvent { EngineEvent(time: Double(n), kind: .info, message: "e\(n)") }
        var follower = EventRingFollower()
        #expect(Array(follower.newEvents(in: [e(1), e(2)])) == [e(1), e(2)])
        #expect(follower.newEvents(in: [e(1), e(2)]).isEmpty)
        #expect(Array(follower.newEvents(in: [e(2), e(3), e(4)])) == [e(3), e(4)])  // ring dropped e1
        #expect(Array(follower.newEvents(in: [e(7), e(8)])) == [e(7), e(8)])  // overran the ring
        #expect(follower.newEvents(in: []).isEmpty)
    }

    /// Every `/admin/events` stream encoded the snapshot itself each interval (a tenth of a core
    /// per frame on the superpod), so 300 streams left open kept `/ready` from answering. Streams
    /// now share one encoding per published snapshot, byte for byte what `/admin/state` sends.
    @Test func eventStreamsShareOneEncodingOfEachSnapshot() {
        let link = RecordingEngineLink()
        link.update { $0.simTime = 1; $0.modelName = "deepseek-r1" }
        let cache = SnapshotJSONCache()
        let streams = (0..<50).map { _ in cache.json(for: link.latestSnapshot()) }
        #expect(Set(streams) == [AdminWire.string(link.latestSnapshot())])
        #expect(cache.encodings.load(ordering: .relaxed) == 1)
        link.update { $0.simTime = 2 }
        #expect(cache.json(for: link.latestSnapshot()) == AdminWire.string(link.latestSnapshot()))
        #expect(cache.encodings.load(ordering: .relaxed) == 2)
    }

    @Test func generatedTokensAreRandomAndLongEnough() {
        let a = AdminToken.generate(), b = AdminToken.generate()
        #expect(a.count == 64 && b.count == 64)
        #expect(a != b)
        #expect(a.allSatisfy { $0.isHexDigit })
        #expect(AdminToken.authorizes(header: "Bearer \(a)", expected: a))
        #expect(AdminToken.authorizes(header: "bearer \(a)", expected: a))
        #expect(!AdminToken.authorizes(header: "Bearer \(b)", expected: a))
        #expect(!AdminToken.authorizes(header: "Bearer ", expected: ""))
        #expect(!AdminToken.authorizes(header: nil, expected: a))
    }

    /// A token no client could send (empty, a space, a newline, non-ASCII) is refused with one
    /// line instead of starting a server whose admin API answers 401 to everyone; an empty
    /// XDS_ADMIN_TOKEN counts as unset, so one is generated and printed.
    @Test func unusableAdminTokensAreRefusedNotSilentlyLocked() throws {
        for bad in ["", "two words", "line\nbreak", "tökén", "\u{1B}[2J", String(repeating: "a", count: 1025)] {
            #expect(throws: ConfigError.self) { try AdminToken.resolve(flag: bad, environment: "fine") }
            #expect(throws: ConfigError.self) { try AdminToken.resolve(flag: nil, environment: bad.isEmpty ? "\t" : bad) }
        }
        do {
            _ = try AdminToken.resolve(flag: "", environment: nil)
        } catch {
            #expect(error.description.contains("--admin-token must not be empty"), "\(error)")
            #expect(!error.description.contains("\n"))
        }
        #expect(try AdminToken.resolve(flag: "ci-token", environment: "other") == ("ci-token", false))
        #expect(try AdminToken.resolve(flag: nil, environment: "env-token") == ("env-token", false))
        let generated = try AdminToken.resolve(flag: nil, environment: "")
        #expect(generated.generated && generated.token.count == 64)
        #expect(try AdminToken.resolve(flag: nil, environment: nil).generated)
    }

    /// Two `Authorization` headers, even both with the right token, were joined into one value
    /// and answered "missing or wrong admin token", which sent an operator hunting a typo. Still
    /// refused (a request carries one credential), the 401 now says the header came twice.
    @Test func twoAuthorizationHeadersAreRefusedSayingSo() async throws {
        try await LiveServer.with { server in
            func ask(_ headers: [String]) async throws -> String {
                let connection = try RawConnection(port: server.port, readTimeout: 15)
                defer { connection.close() }
                connection.write(raw: "GET /admin/state HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                    + headers.map { "Authorization: \($0)\r\n" }.joined() + "\r\n")
                return String(decoding: await connection.readBytesUntilClosed(), as: UTF8.self)
            }
            let right = "Bearer \(LiveServer.token)"
            for pair in [[right, right], [right, "Bearer wrong"], ["Bearer wrong", right]] {
                let answer = try await ask(pair)
                #expect(answer.hasPrefix("HTTP/1.1 401"), "\(answer)")
                #expect(answer.contains("Authorization was sent 2 times"), "\(answer)")
                #expect(answer.contains("invalid_token"), "\(answer)")
            }
            #expect(try await ask([right]).hasPrefix("HTTP/1.1 200"))
            #expect(try await ask(["Bearer wrong"]).contains("missing or wrong admin token"))
        }
    }
}
