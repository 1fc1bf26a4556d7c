import APIServer
import EngineRuntime
import Foundation
import ServingEngine
import Testing
import XDSTestSupport

/// Issue 14: the `vllm:` series describe the whole engine (synthetic and HTTP traffic alike), with
/// vLLM's labels; a stop string ends a request as a success; completions keep their connection.
@Suite(.serialized, .timeLimit(.minutes(10)))
struct EngineMetricsTests {
    /// A real engine with background synthetic traffic, its finished-request feed wired as in
    /// `xds serve`, behind a live server.
    static func withServer(rate: Double, speed: Double = 20, _ body: (LiveServer, EngineHost) async throws -> Void)
        async throws
    {
        var config = EngineConfiguration(deployment: TestDeployments.toyPod)
        config.syntheticRate = rate
        let engine = try ServingEngine(configuration: config)
        let feed = EngineFeed()
        feed.observe(engine)
        let host = EngineHost(core: engine, speed: speed, publishInterval: 0.02)
        host.start()
        defer { host.stop() }
        try await LiveServer.with(host: host, engineFeed: feed) { server in try await body(server, host) }
    }

    static let listed = [
        "vllm:num_requests_running", "vllm:num_requests_waiting", "vllm:kv_cache_usage_perc",
        "vllm:prompt_tokens_total", "vllm:generation_tokens_total", "vllm:request_success_total",
        "vllm:prefix_cache_queries_total", "vllm:prefix_cache_hits_total", "vllm:num_preemptions_total",
        "vllm:spec_decode_num_accepted_tokens_total", "vllm:spec_decode_num_draft_tokens_total",
        "vllm:time_to_first_token_seconds_count", "vllm:inter_token_latency_seconds_count",
        "vllm:time_per_output_token_seconds_count", "vllm:e2e_request_latency_seconds_count",
        "vllm:request_queue_time_seconds_count", "vllm:request_prefill_time_seconds_count",
        "vllm:request_decode_time_seconds_count", "vllm:request_prompt_tokens_count",
        "vllm:request_generation_tokens_count",
    ]

    @Test func vllmSeriesDescribeTheWholeEngineWithItsLabels() async throws {
        try await Self.withServer(rate: 4) { server, host in
            // A few HTTP requests beside the synthetic traffic.
            for _ in 0..<3 {
                let reply = try await server.post(
                    "/v1/completions", json: ["prompt": "Hello there", "max_tokens": 20, "ignore_eos": true])
                #expect(reply.status == 200)
            }
            #expect(await eventually { host.latestSnapshot().requests.completed >= 20 })
            let completed = host.latestSnapshot().requests.completed
            // Paused for the scrape: finished requests are recorded on the engine thread, series by
            // series, and at 20× a busy machine let several finish between two series of one
            // scrape (CI saw queue-time and e2e counts 4 apart). Once the engine says it is
            // paused, every finish before it is recorded and none comes during the scrape.
            #expect(host.send(commandLine: "pause").accepted)
            #expect(await eventually { host.latestSnapshot().paused })
            let m = PrometheusText(try await server.get("/metrics").text)
            for name in Self.listed {
                let series = m.samples.keys.filter { $0.hasPrefix(name + "{") }
                #expect(!series.isEmpty, "\(name) missing")
                #expect(series.allSatisfy { $0.contains(#"model_name="deepseek-r1""#) && $0.contains(#"engine="0""#) },
                        "\(series)")
            }
            // Synthetic requests count too: far more successes than the three HTTP ones, and no fewer
            // than the engine had completed when this scrape's snapshot was published.
            let success = m.sum("vllm:request_success_total")
            #expect(success >= 20 && success >= Double(completed) - 5, "success \(success), engine \(completed)")
            let generated = m.sum("vllm:generation_tokens_total")
            // MTP steps yield fractional tokens on average; the counter moves by whole tokens.
            #expect(generated > 60 && generated == generated.rounded(), "\(generated)")
            #expect(m.sum("vllm:inter_token_latency_seconds_count") > m.sum("vllm:time_to_first_token_seconds_count"))
            // TTFT is observed at the first token: every success had one, and requests still
            // decoding have theirs counted already.
            #expect(m.sum("vllm:time_to_first_token_seconds_count") >= success)
            // Every finished request lands in both, but one that left before its prefill started
            // has no queue time (a few at most).
            #expect(abs(m.sum("vllm:request_queue_time_seconds_count") - m.sum("vllm:e2e_request_latency_seconds_count")) <= 2)
            #expect(m.sum("vllm:num_preemptions_total") == 0)
            // The toy pod's model has MTP: drafts proposed, most accepted, never more than proposed.
            let drafts = m.sum("vllm:spec_decode_num_draft_tokens_total")
            let accepted = m.sum("vllm:spec_decode_num_accepted_tokens_total")
            #expect(drafts > 0 && accepted > 0 && accepted <= drafts, "drafts \(drafts) accepted \(accepted)")
        }
    }

    /// dashboards/xds.json: every query names metrics that `/metrics` exports.
    @Test func everyDashboardQueryNamesAnExportedMetric() async throws {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("dashboards/xds.json")
        let dashboard = try #require(
            try JSONSerialization.jsonObject(with: Data(contentsOf: path)) as? [String: Any])
        let panels = try #require(dashboard["panels"] as? [[String: Any]])
        let queries = panels.flatMap { ($0["targets"] as? [[String: Any]] ?? []).compactMap { $0["expr"] as? String } }
        #expect(panels.count >= 10 && queries.count >= panels.count)
        try await Self.withServer(rate: 2) { server, host in
            #expect(await eventually { host.latestSnapshot().requests.completed >= 1 })
            let text = try await server.get("/metrics").text
            let exported = Set(text.split(separator: "\n").filter { $0.hasPrefix("# TYPE ") }
                .compactMap { $0.split(separator: " ").dropFirst(2).first.map(String.init) })
            for query in queries {
                let names = query.matches(of: /(?:xds_|vllm:)[A-Za-z0-9_:]+/).map { String($0.output) }
                #expect(!names.isEmpty, "\(query)")
                for name in names {
                    let base = name.replacing(/_(bucket|sum|count)$/, with: "")
                    #expect(exported.contains(name) || exported.contains(base), "\(name) in '\(query)' is not exported")
                }
            }
        }
    }

    @Test func generationTokenRateAgreesWithTheEngine() async throws {
        try await Self.withServer(rate: 6, speed: 40) { server, host in
            #expect(await eventually { host.latestSnapshot().simTime > 20 })
            // Each end of the window is scraped with the engine paused: the token counter follows
            // the engine's steps as they end, the clock its published snapshots, and on a busy
            // machine (the full suite on two cores) the two drifted apart by tens of simulated
            // seconds at 40×, twice the 20% bound over the window. Paused, they agree.
            func pausedScrape() async throws -> (PrometheusText, Double) {
                #expect(host.send(commandLine: "pause").accepted)
                #expect(await eventually { host.latestSnapshot().paused })
                return (PrometheusText(try await server.get("/metrics").text), host.latestSnapshot().simTime)
            }
            let (first, t0) = try await pausedScrape()
            #expect(host.send(commandLine: "resume").accepted)
            // A window of 160 simulated seconds (slower than 40× on a busy machine: waits longer).
            #expect(await eventually(within: 180) { host.latestSnapshot().simTime > t0 + 160 })
            let (second, t1) = try await pausedScrape()
            let snapshot = host.latestSnapshot()
            let rate = (second.sum("vllm:generation_tokens_total") - first.sum("vllm:generation_tokens_total")) / (t1 - t0)
            // The engine's own per-interval rate over the same window.
            let points = Int(((t1 - t0) / snapshot.series.intervalSeconds).rounded())
            let engineRate = snapshot.series.outputTokensPerSecond.suffix(points).reduce(0, +) / Double(max(1, points))
            #expect(engineRate > 0)
            #expect(abs(rate - engineRate) <= 0.2 * engineRate, "metrics \(rate) tok/s, engine \(engineRate) tok/s")
            // The running gauge is the snapshot's: the requests in its TEs' prefill and decode batches.
            let running = second.sum("vllm:num_requests_running")
            let inBatches = snapshot.instances.reduce(0) { $0 + $1.running }
            #expect(abs(running - Double(inBatches)) <= max(3, 0.2 * running),
                    "gauge \(running), snapshot \(inBatches)")
        }
    }

    /// vLLM counts a request being prefilled as running (it is in the model's batch); the
    /// gauges followed the engine's own run/wait split, where it was waiting. Scraped with the
    /// engine paused while a prefill TE has a batch, so the gauges and the snapshot are one moment.
    @Test func vllmRunningCountsRequestsInAPrefillBatch() async throws {
        try await Self.withServer(rate: 40, speed: 10) { server, host in
            var caught: (metrics: PrometheusText, snapshot: Snapshot)?
            // Bounded: a prefill TE of the toy pod is busy most of the time at 40 req/s.
            for _ in 0..<60 where caught == nil {
                try await Task.sleep(for: .milliseconds(53))
                #expect(host.send(commandLine: "pause").accepted)
                #expect(await eventually { host.latestSnapshot().paused })
                let snapshot = host.latestSnapshot()
                if snapshot.instances.contains(where: { $0.kind == "prefill" && $0.running > 0 }) {
                    caught = (PrometheusText(try await server.get("/metrics").text), host.latestSnapshot())
                } else {
                    #expect(host.send(commandLine: "resume").accepted)
                }
            }
            let (m, snapshot) = try #require(caught, "no paused snapshot had a prefill batch")
            let inBatches = snapshot.instances.reduce(0) { $0 + $1.running }
            #expect(inBatches > snapshot.requests.running, "a prefill batch is counted")
            #expect(m.sum("vllm:num_requests_running") == Double(inBatches))
            #expect(m.sum("vllm:num_requests_waiting") == Double(snapshot.requests.inFlight - inBatches))
            // The engine's own split (the console header's) is unchanged: decode batch / the rest.
            #expect(snapshot.requests.running + snapshot.requests.waiting == snapshot.requests.inFlight)
        }
    }

    @Test func aStopStringEndsTheRequestAsCompletedNotCancelled() async throws {
        try await Self.withServer(rate: 0) { server, host in
            let before = host.latestSnapshot().requests
            let reply = try await server.post(
                "/v1/completions", json: ["prompt": "Go", "max_tokens": 300, "ignore_eos": true, "stop": ["."]])
            #expect(reply.status == 200)
            let choice = try #require((try reply.json()["choices"] as? [[String: Any]])?.first)
            #expect(choice["finish_reason"] as? String == "stop")
            #expect(await eventually { host.latestSnapshot().requests.completed == before.completed + 1 })
            let after = host.latestSnapshot().requests
            #expect(after.failed == before.failed, "a stop-string reply is not a failure")
            #expect(after.inFlight == 0)
            // The metrics follow the engine through an asynchronous feed: wait for the count.
            // (How many tokens the engine made before the stop reached it depends on timing, so
            // it is not asserted here.)
            var m = PrometheusText(try await server.get("/metrics").text)
            let deadline = ContinuousClock.now + .seconds(30)  // generous: a loaded machine is slow
            while ContinuousClock.now < deadline, m.sum("vllm:request_success_total", containing: [#"finished_reason="stop""#]) < 1 {
                try await Task.sleep(for: .milliseconds(50))
                m = PrometheusText(try await server.get("/metrics").text)
            }
            #expect(m.sum("vllm:request_success_total", containing: [#"finished_reason="stop""#]) == 1,
                    "the stop-string reply is counted as a success with finished_reason=stop")
            #expect(m.sum("vllm:request_success_total", containing: [#"finished_reason="abort""#]) == 0)
        }
    }

    /// A stop string that only the last token completes: the client was told "stop", and so must
    /// `/metrics` be. The engine had already produced all `max_tokens` when the face found the
    /// stop, so it counted the request under "length" (and, when the face's stop reached it after
    /// the request finished, it could not tell): the series disagreed with the reply.
    @Test func aStopStringCompletedByTheLastTokenIsCountedAsAStop() async throws {
        try await Self.withServer(rate: 0) { server, _ in
            // The first HTTP request has the engine's first external id, and its text is seeded by it.
            let firstID = 1 << 40
            let maxTokens = 40
            var words = SyntheticText(seed: firstID)
            let text = words.next(maxTokens)
            // The shortest tail of the reply that occurs nowhere earlier in it.
            let stop = try #require((3...text.count).lazy.map { String(text.suffix($0)) }
                .first { text.ranges(of: $0).count == 1 })
            let reply = try await server.post(
                "/v1/completions", json: ["prompt": "Go", "max_tokens": maxTokens, "ignore_eos": true, "stop": [stop]])
            #expect(reply.status == 200)
            let json = try reply.json()
            #expect(json["id"] as? String == "cmpl-\(firstID)", "\(reply.text)")
            let choice = try #require((json["choices"] as? [[String: Any]])?.first)
            #expect(choice["finish_reason"] as? String == "stop")
            #expect(choice["text"] as? String == String(text.dropLast(stop.count)))
            var m = PrometheusText(try await server.get("/metrics").text)
            let deadline = ContinuousClock.now + .seconds(30)
            while ContinuousClock.now < deadline, m.sum("vllm:request_success_total") < 1 {
                try await Task.sleep(for: .milliseconds(50))
                m = PrometheusText(try await server.get("/metrics").text)
            }
            #expect(m.sum("vllm:request_success_total", containing: [#"finished_reason="stop""#]) == 1,
                    "the reply said stop: \(m.sum("vllm:request_success_total", containing: [#"finished_reason="length""#])) counted as length")
            #expect(m.sum("vllm:request_success_total", containing: [#"finished_reason="length""#]) == 0)
        }
    }

    @Test func completionsKeepTheirConnectionAlive() async throws {
        try await Self.withServer(rate: 0) { server, _ in
            let connection = try RawConnection(port: server.port, readTimeout: 10)
            defer { connection.close() }
            let streamed = #"{"prompt": "one", "max_tokens": 5, "stream": true}"#
            let whole = #"{"prompt": "two", "max_tokens": 5}"#
            connection.post("/v1/completions", json: streamed)
            let first = await connection.read(until: "[DONE]")
            #expect(first.hasPrefix("HTTP/1.1 200") && first.contains("[DONE]"), "\(first)")
            #expect(!first.lowercased().contains("connection: close"))
            connection.post("/v1/completions", json: whole)
            let second = await connection.read(until: "total_tokens")
            #expect(second.contains("HTTP/1.1 200") && second.contains("completion_tokens"), "\(second)")
            #expect(!second.lowercased().contains("connection: close"))
            connection.post("/v1/completions", json: streamed)
            let third = await connection.read(until: "[DONE]")
            #expect(third.contains("HTTP/1.1 200") && third.contains("[DONE]"), "the same socket serves a third: \(third)")
        }
    }
}
