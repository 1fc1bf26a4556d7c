import APIServer
@testable import EngineRuntime
import Synchronization
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
        let (host, server) = try toyPodAdmin(rate: 8)
        defer { _ = host.stop() }
        try await whileServing(server) { _, base in
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

            // Errors in the `/v1/*` shape: message, type, param and code (null when absent).
            func expectOpenAIShape(_ body: [String: Any], param: String) {
                let error = body["error"] as? [String: Any] ?? [:]
                #expect(Set(error.keys) == ["message", "type", "param", "code"], "\(body)")
                #expect(error["type"] as? String == "invalid_request_error" && error["param"] as? String == param, "\(body)")
            }
            let (rejected, reason) = try await Self.post(base, ["command": "drain node 999"], token: "tok")
            #expect(rejected == 400)
            #expect(((reason["error"] as? [String: Any])?["message"] as? String)?.contains("would reject") == true)
            expectOpenAIShape(reason, param: "command")
            let (tooLong, tooLongReason) = try await Self.post(base, ["command": "drain node 1", "duration": "2h"], token: "tok")
            #expect(tooLong == 400)
            expectOpenAIShape(tooLongReason, param: "duration")
            // A number of seconds: the message says what a duration is (it said only "wrong type").
            let (number, numberReason) = try await Self.post(base, ["command": "drain node 1", "duration": 90], token: "tok")
            #expect(number == 400)
            expectOpenAIShape(numberReason, param: "duration")
            #expect(((numberReason["error"] as? [String: Any])?["message"] as? String)
                == "field 'duration' has the wrong type (expected a string from 1s to 1h, such as 90s, 10m or 1h)")
            let (nested, nestedReason) = try await Self.post(base, ["command": "preview drain node 1"], token: "tok")
            #expect(nested == 400)
            expectOpenAIShape(nestedReason, param: "command")
            let (unparsed, unparsedReason) = try await Self.post(base, ["command": "drain nod 1", "duration": "1m"], token: "tok")
            #expect(unparsed == 400)
            expectOpenAIShape(unparsedReason, param: "command")
            let (unauthorised, _) = try await Self.post(base, ["command": "drain node 1"], token: nil)
            #expect(unauthorised == 401)

            // `xds console --connect`: the remote link previews through the same endpoint.
            let remote = RemoteEngineLink(baseURL: base, token: "tok")
            // The link blocks its thread until answered: off the cooperative pool the server needs.
            let first = try await offPool { remote.preview(commandLine: "preview drain node 0 for 30s", progress: { _ in }) }
            guard case .success(let result) = first
            else {
                Issue.record("remote preview refused")
                return
            }
            #expect(result.command == "drain node 0" && result.durationSeconds == 30 && result.wallSeconds > 0)
            let second = try await offPool { remote.preview(commandLine: "preview drain node 999", progress: { _ in }) }
            guard case .failure(let refusal) = second else {
                Issue.record("remote preview of a rejected command was not refused")
                return
            }
            #expect(refusal.message.contains("would reject"))
        }
    }

    /// A bad index in a preview, or in a command from a remote console, named the grammar's range
    /// ("between 0 and 999999"), where the `:` line and `POST /admin/commands` name the pod's
    /// ("the pod has nodes 0…3"): the preview route and the remote link parsed without the pod.
    @Test func previewsAndRemoteCommandsNameThePodsRange() async throws {
        let (host, server) = try toyPodAdmin(rate: 8)
        defer { _ = host.stop() }
        let nodes = "; the pod has nodes 0…3"
        #expect(host.send(commandLine: "drain node -1").message.hasSuffix(nodes))
        try await whileServing(server) { _, base in
            try await Task.sleep(for: .milliseconds(100))
            for (command, range) in [("drain node -1", nodes), ("fault npu x", "; the pod has NPUs 0…31"),
                                     ("fault die 1.5", "; the pod has dies 0…63")] {
                let (status, body) = try await Self.post(base, ["command": command], token: "tok")
                let message = (body["error"] as? [String: Any])?["message"] as? String ?? ""
                #expect(status == 400 && message.hasSuffix(range), "\(command): \(body)")
                #expect(!message.contains("999999"), "\(command): \(message)")
            }
            let remote = RemoteEngineLink(baseURL: base, token: "tok")
            remote.start()
            defer { remote.stop() }
            #expect(await eventually { !remote.latestSnapshot().npus.isEmpty })
            let sent = try await offPool { remote.send(commandLine: "drain node -1") }
            #expect(!sent.accepted && sent.message == host.send(commandLine: "drain node -1").message, "\(sent)")
            let previewed = try await offPool { remote.preview(commandLine: "preview undrain node z for 1m") }
            guard case .failure(let refusal) = previewed else {
                Issue.record("a preview with a bad node word was not refused")
                return
            }
            #expect(refusal.message.hasSuffix(nodes), "\(refusal.message)")
            #expect(host.commandLog.isEmpty && host.latestSnapshot().drainedNodes.isEmpty, "nothing changed")
        }
    }

    /// Every refusal of `POST /admin/preview` names itself with a stable `code` (several came
    /// back with `"code": null`), and the hint for an empty command shows the form the route
    /// takes (it showed the console's `preview drain node 20 for 10m`, which the route refuses).
    @Test func everyPreviewRefusalHasACodeAndTheEmptyHintIsAFormTheRouteTakes() async throws {
        let (host, server) = try toyPodAdmin(rate: 8)
        defer { _ = host.stop() }
        try await whileServing(server) { port, base in
            func error(_ body: [String: Any]) -> (code: String?, param: String?, message: String) {
                let error = body["error"] as? [String: Any] ?? [:]
                return (error["code"] as? String, error["param"] as? String, error["message"] as? String ?? "")
            }
            let cases: [([String: Any], code: String, param: String)] = [
                (["command": ""], "command_rejected", "command"),
                (["command": "drain nod 1"], "command_rejected", "command"),
                (["command": "drain node 999"], "command_rejected", "command"),
                (["command": "speed 2"], "not_previewable", "command"),
                (["command": "pause"], "not_previewable", "command"),
                (["command": "preview drain node 1"], "not_previewable", "command"),
                (["command": "drain node 1", "duration": "2h"], "invalid_duration", "duration"),
                (["command": "drain node 1", "duration": 90], "invalid_body", "duration"),
                (["duration": "10m"], "invalid_body", "command"),
                (["command": String(repeating: "x", count: 2_000)], "command_too_long", "command"),
            ]
            for (body, code, param) in cases {
                let (status, answer) = try await Self.post(base, body, token: "tok")
                let got = error(answer)
                #expect(status == 400 && got.code == code && got.param == param, "\(body): \(answer)")
            }
            // A key given twice: the body is ambiguous, not the command.
            let twice = #"{"command": "drain node 1", "command": "drain node 2"}"#
            let raw = try RawConnection(port: port, readTimeout: 15)  // a busy machine is slow
            defer { raw.close() }
            raw.write(raw: "POST /admin/preview HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer tok\r\n"
                + "Content-Type: application/json\r\nContent-Length: \(twice.utf8.count)\r\n\r\n\(twice)")
            let reply = await raw.read(until: "}}")
            #expect(reply.hasPrefix("HTTP/1.1 400") && reply.contains(#""code":"invalid_body""#), "\(reply)")

            // The hint lists the command words a preview takes (not speed, pause or resume), in
            // the route's own form; a command it names is then previewed.
            let (_, empty) = try await Self.post(base, ["command": "  "], token: "tok")
            let hint = error(empty).message
            #expect(hint == "'command' is empty: give the command to preview as POST /admin/commands takes it, starting with "
                + "drain, undrain, fault, heal, rebalance, rate, scale, autoscale or policy, without 'preview' or 'for'; "
                + "the simulated time goes in 'duration' (1s…1h, default 10m)", "\(empty)")
            #expect(!hint.contains("e.g. 'preview"))
            let (followed, answer) = try await Self.post(base, ["command": "fault glitch", "duration": "10m"], token: "tok")
            #expect(followed == 200, "\(answer)")

            // The same codes on `POST /admin/commands`, which shares the body and length checks.
            var request = URLRequest(url: base.appendingPathComponent("admin/commands"))
            request.httpMethod = "POST"
            request.setValue("Bearer tok", forHTTPHeaderField: "Authorization")
            for (body, code) in [(#"{"command": 5}"#, "invalid_body"),
                                 (#"{"command": "\#(String(repeating: "x", count: 2_000))"}"#, "command_too_long")] {
                request.httpBody = Data(body.utf8)
                let (data, response) = try await URLSession.shared.data(for: request)
                let answer = (try? JSONSerialization.jsonObject(with: data) as? [String: Any]) ?? [:]
                #expect((response as? HTTPURLResponse)?.statusCode == 400 && error(answer).code == code, "\(answer)")
            }

            // An engine that has stopped cannot compute one: 503 `service_unavailable`.
            _ = host.stop()
            let (stopped, stoppedAnswer) = try await Self.post(base, Self.shortPreview, token: "tok")
            #expect(stopped == 503 && error(stoppedAnswer).code == "service_unavailable", "\(stoppedAnswer)")
        }
    }

    /// A short preview: computed at once when a place is free, else refused 503.
    static var shortPreview: [String: Any] { ["command": "drain node 1", "duration": "30s"] }

    /// A started host that computes one preview at a time, and a server in front of it (admin
    /// token "tok"); the caller runs the server and stops the host.
    static func onePreviewAtATime() throws -> (EngineHost, APIServer) {
        try toyPodAdmin(rate: 8, bounds: EngineHost.Bounds(previews: 1))
    }

    /// Posts an hour at 300 requests/s (over 40 s of work in a debug build, were it run to the end)
    /// on a raw connection, and waits until it holds the one place (the host counts it as
    /// computing); a short preview is then refused 503. The caller closes the connection.
    /// (Probing the place with short previews raced: on a loaded machine a short one could reach
    /// the host first, and the long one was refused instead.)
    static func takeThePlace(port: Int, base: URL, host: EngineHost) async throws -> RawConnection {
        let body = #"{"command": "rate 300", "duration": "1h"}"#
        let connection = try RawConnection(port: port)
        connection.write(raw: "POST /admin/preview HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer tok\r\n"
            + "Content-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)")
        let posted = ContinuousClock.now
        while host.previewsRunning.load(ordering: .acquiring) == 0, ContinuousClock.now - posted < .seconds(30) {
            try await Task.sleep(for: .milliseconds(20))
        }
        let (busy, _) = try await post(base, shortPreview, token: "tok")
        #expect(busy == 503, "the long preview never took the place")
        return connection
    }

    /// A client that hangs up stops its preview (nobody would read it): the one place it held is
    /// free again within a slice, so the next preview is computed rather than refused 503.
    @Test func aClientThatHangsUpFreesItsPreviewsPlace() async throws {
        let (host, server) = try Self.onePreviewAtATime()
        defer { _ = host.stop() }
        try await whileServing(server) { port, base in
            let leaving = try await Self.takeThePlace(port: port, base: base, host: host)
            leaving.close()
            let hungUp = ContinuousClock.now
            var status = 503
            while status == 503, ContinuousClock.now - hungUp < .seconds(20) {
                try await Task.sleep(for: .milliseconds(50))
                (status, _) = try await Self.post(base, Self.shortPreview, token: "tok")
            }
            #expect(status == 200, "the place of a preview whose client left was not freed")
            #expect(ContinuousClock.now - hungUp < .seconds(20))
        }
    }

    /// Stopping the server stops the previews it computes: it does not wait for them, and their
    /// place is free for the next one.
    @Test func stoppingTheServerStopsItsPreviews() async throws {
        let (host, server) = try Self.onePreviewAtATime()
        defer { _ = host.stop() }
        var stopped = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await server.run() }
            let port = try await server.boundPort()
            let base = URL(string: "http://127.0.0.1:\(port)")!
            let waiting = try await Self.takeThePlace(port: port, base: base, host: host)
            defer { waiting.close() }
            stopped = ContinuousClock.now
            group.cancelAll()
            try? await group.waitForAll()
        }
        #expect(ContinuousClock.now - stopped < .seconds(20), "the server waited for its preview")
        let next = try await offPool { host.preview(commandLine: "preview drain node 1 for 30s") }
        guard case .success = next else {
            Issue.record("the place of a preview stopped with its server was not freed: \(next)")
            return
        }
    }
}
