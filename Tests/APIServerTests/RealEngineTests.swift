import APIServer
import EngineRuntime
import Foundation
import PodModel
import ServingEngine
import Testing
import XDSTestSupport

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// The API over the real engine (what `xds serve` wires): tokens come from simulated decode steps.
@Suite(.serialized, .timeLimit(.minutes(10)))
struct RealEngineTests {
    @Test func completionsAreServedByTheSimulatedPod() async throws {
        var config = EngineConfiguration(deployment: TestDeployments.toyPod)
        config.syntheticRate = 0
        let engine = try ServingEngine(configuration: config)
        let host = EngineHost(core: engine, speed: 20, publishInterval: 0.02)
        host.start()
        defer { host.stop() }
        let server = APIServer(configuration: .init(adminToken: "t"), link: host, backend: host)
        try await whileServing(server) { _, base in
            func post(_ body: [String: Any]) async throws -> (Int, Data) {
                var request = URLRequest(url: base.appendingPathComponent("v1/chat/completions"))
                request.httpMethod = "POST"
                request.setValue("application/json", forHTTPHeaderField: "Content-Type")
                request.httpBody = try JSONSerialization.data(withJSONObject: body)
                let (data, response) = try await URLSession.shared.data(for: request)
                return ((response as? HTTPURLResponse)?.statusCode ?? 0, data)
            }
            let messages: [[String: Any]] = [["role": "user", "content": "How does a SuperPod decode?"]]
            let (status, data) = try await post(["model": "deepseek-r1", "messages": messages, "max_tokens": 10])
            #expect(status == 200)
            let body = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
            let usage = try #require(body["usage"] as? [String: Any])
            let completion = try #require(usage["completion_tokens"] as? Int)
            #expect(completion >= 1 && completion <= 10)
            let (streamStatus, streamData) = try await post(["model": "deepseek-r1", "messages": messages,
                                                             "max_tokens": 6, "stream": true])
            #expect(streamStatus == 200)
            let text = String(decoding: streamData, as: UTF8.self)
            #expect(text.contains("chat.completion.chunk") && text.hasSuffix("data: [DONE]\n\n"))
            // The engine counted both, and /metrics agrees with what was sent.
            let (metrics, _) = try await URLSession.shared.data(from: base.appendingPathComponent("metrics"))
            let exposition = String(decoding: metrics, as: UTF8.self)
            let successes = exposition.split(separator: "\n")
                .filter { $0.hasPrefix("vllm:request_success_total{") }
                .compactMap { Double($0.split(separator: " ").last ?? "") }.reduce(0, +)
            #expect(successes == 2)
            #expect(await eventually { host.latestSnapshot().requests.completed == 2 })
        }
    }

    /// The drain of the last node of a one-node GPU cluster leaves no capacity: the engine says so
    /// in `CommandReply.capacityLost`, the admin API in `"capacity_lost": true`, and a remote
    /// console's link reads it back (its footer warns on the flag, not on the reply's wording).
    /// A drain that leaves capacity carries no such key.
    @Test func aDrainThatLeavesNoCapacitySaysSoThroughTheAdminAPI() async throws {
        for (spec, node, lost) in [("colocated:2:llama-2-7b:nvidia-a100:tp1", 0, true), ("superpod", 5, false)] {
            var config = EngineConfiguration(deployment: try Deployment.resolve(spec))
            config.syntheticRate = 0
            let host = EngineHost(core: try ServingEngine(configuration: config), speed: 20, publishInterval: 0.02)
            host.start()
            defer { host.stop() }
            let server = APIServer(configuration: .init(adminToken: "t"), link: host, backend: host)
            try await whileServing(server) { _, base in
                var request = URLRequest(url: base.appendingPathComponent("admin/commands"))
                request.httpMethod = "POST"
                request.setValue("Bearer t", forHTTPHeaderField: "Authorization")
                request.setValue("application/json", forHTTPHeaderField: "Content-Type")
                request.httpBody = Data(#"{"command": "drain node \#(node)"}"#.utf8)
                let (data, _) = try await URLSession.shared.data(for: request)
                let body = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
                #expect(body["accepted"] as? Bool == true, "\(spec): \(body)")
                #expect(body["capacity_lost"] as? Bool == (lost ? true : nil), "\(spec): \(body)")
                let remote = RemoteEngineLink(baseURL: base, token: "t")
                let undrain = try await offPool { remote.send(commandLine: "undrain node \(node)") }
                #expect(undrain.accepted && !undrain.capacityLost, "\(spec): \(undrain.message)")
                let again = try await offPool { remote.send(commandLine: "drain node \(node)") }
                #expect(again.accepted && again.capacityLost == lost, "\(spec): \(again.message)")
            }
        }
    }
}
