import APIServer
import EngineRuntime
import Foundation
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
}
